/*
 * wagi.c — the WAGI mapping (CGI 1.1, RFC 3875, over WASI): an HTTP
 * request becomes a CGI environment, and a guest's stdout becomes an HTTP
 * response. See docs/serving.md for the table.
 *
 * Both directions treat their input as hostile: header values come from
 * any client and the CGI output from any guest. The response parser
 * refuses control characters in values (a stray CR would let a guest
 * split the response) and bounds the header section; the environment
 * builder drops the Proxy header (httpoxy).
 */
#define _GNU_SOURCE
#include "serving/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the environment ---------------------------------------------------- */

/* The CGI name of a header: HTTP_ + the name upper-cased, every byte that
 * is not a letter or digit turned into '_'. */
static char cgi_key_char(unsigned char c) { return isalnum(c) ? (char)toupper(c) : '_'; }

/* Orders header names by their CGI name (strcmp order of HTTP_...). */
static int cgi_key_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = *a ? cgi_key_char((unsigned char)*a) : 0;
        int y = *b ? cgi_key_char((unsigned char)*b) : 0;
        if (x != y || x == 0) return x - y;
    }
}

/* Headers with one CGI name become one variable. They are found by
 * sorting (name, position) pairs rather than by comparing every header
 * with every other: with thousands of headers the pairwise way took
 * seconds of the event loop (issue 14). */
typedef struct env_hdr {
    const char *name;
    uint32_t idx; /* position in the request */
} env_hdr_t;

static int env_hdr_cmp(const void *pa, const void *pb)
{
    const env_hdr_t *a = pa, *b = pb;
    int d = cgi_key_cmp(a->name, b->name);
    if (d) return d;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* A header's place in its group: the next header with its CGI name (or
 * ENV_END), and whether it is the group's first. */
typedef struct env_link {
    uint32_t next;
    bool first;
} env_link_t;

#define ENV_END UINT32_MAX
#define ENV_STACK_HEADERS 128

static bool cgi_header_skipped(const char *name)
{
    return strcasecmp(name, "Content-Type") == 0 || strcasecmp(name, "Content-Length") == 0 ||
           strcasecmp(name, "Proxy") == 0;
}

/* Writes into a block sized in advance, so a request costs one malloc. */
typedef struct env_block {
    char **vars;
    uint32_t n;
    char *p, *end;
} env_block_t;

/* Appends s at b->p; the block was sized for it in advance (the check
 * cannot fail). The environment is built on the event loop for every
 * call: plain copies, no printf, which was 4% of the daemon's time
 * serving a printf hello (perf, docs/benchmarks.md). */
static void env_cat(env_block_t *b, const char *s)
{
    size_t n = strlen(s);
    if (n >= (size_t)(b->end - b->p)) n = 0;
    memcpy(b->p, s, n);
    b->p += n;
}

/* "NAME=value" as the next variable. */
static void env_add(env_block_t *b, const char *name_eq, const char *value)
{
    b->vars[b->n++] = b->p;
    env_cat(b, name_eq);
    env_cat(b, value);
    *b->p++ = '\0';
}

static void env_add_uint(env_block_t *b, const char *name_eq, uint64_t v)
{
    char digits[24], *d = digits + sizeof digits;
    *--d = '\0';
    do *--d = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    env_add(b, name_eq, d);
}

char **srv_cgi_env_new(const hs_req_t *req, const char *script_name, const char *path_info,
                       uint32_t *n)
{
    const char *ctype = hs_req_header(req, "Content-Type");
    const char *host = hs_req_header(req, "Host");
    const char *query = req->query ? req->query : "";
    const char *raddr = req->remote_addr ? req->remote_addr : "";
    char server_name[256];
    if (host && *host) {
        /* Drop ":PORT" (but not the colons of "[v6]"). */
        size_t hl = strlen(host);
        const char *colon = strrchr(host, ':');
        const char *bracket = strrchr(host, ']');
        if (colon && (!bracket || colon > bracket)) hl = (size_t)(colon - host);
        if (hl >= sizeof server_name) hl = sizeof server_name - 1;
        memcpy(server_name, host, hl);
        server_name[hl] = 0;
    } else {
        snprintf(server_name, sizeof server_name, "%s", req->local_addr ? req->local_addr : "");
    }

    /* Size: 14 fixed variables (a name, a constant or a number of at
     * most 20 digits, and the NUL fit in 40 bytes each) plus their
     * strings, plus each header as "HTTP_NAME=VALUE" or as "; VALUE"
     * joined to an earlier one. Kept tight: a request with a few headers
     * then stays under glibc's 1 KiB small-request bound, above which
     * every malloc first consolidates the fast bins (1% of the daemon's
     * CPU under a hello load). */
    size_t nvars = 14 + req->nheaders + SRV_CGI_ENV_SPARE;
    size_t bytes = 14 * 40 + strlen(req->method) + strlen(script_name) + strlen(path_info) +
                   strlen(query) + strlen(req->target) + (ctype ? strlen(ctype) : 0) +
                   strlen(server_name) + strlen(raddr);
    for (size_t i = 0; i < req->nheaders; i++)
        bytes += 5 + strlen(req->headers[i].name) + 3 + strlen(req->headers[i].value);
    if (req->nheaders >= ENV_END) return NULL;

    /* Group the headers (see env_hdr_t); the usual few fit on the stack. */
    env_hdr_t hstack[ENV_STACK_HEADERS];
    env_link_t lstack[ENV_STACK_HEADERS];
    env_hdr_t *ent = hstack;
    env_link_t *link = lstack;
    if (req->nheaders > ENV_STACK_HEADERS) {
        ent = malloc(req->nheaders * sizeof *ent);
        link = malloc(req->nheaders * sizeof *link);
        if (!ent || !link) {
            free(ent);
            free(link);
            return NULL;
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        link[i] = (env_link_t){ENV_END, false};
        if (!cgi_header_skipped(req->headers[i].name))
            ent[m++] = (env_hdr_t){req->headers[i].name, (uint32_t)i};
    }
    qsort(ent, m, sizeof *ent, env_hdr_cmp);
    for (size_t k = 0; k < m; k++) {
        if (k == 0 || cgi_key_cmp(ent[k - 1].name, ent[k].name) != 0)
            link[ent[k].idx].first = true;
        else
            link[ent[k - 1].idx].next = ent[k].idx;
    }
    if (ent != hstack) free(ent);

    char **vars = malloc((nvars + 1) * sizeof(char *) + bytes);
    if (!vars) {
        if (link != lstack) free(link);
        return NULL;
    }
    env_block_t b = {vars, 0, (char *)(vars + nvars + 1), (char *)(vars + nvars + 1) + bytes};

    env_add(&b, "GATEWAY_INTERFACE=", "CGI/1.1");
    env_add(&b, "SERVER_SOFTWARE=", "wasmfn");
    env_add(&b, "REQUEST_METHOD=", req->method);
    env_add(&b, "SCRIPT_NAME=", script_name);
    env_add(&b, "PATH_INFO=", path_info);
    env_add(&b, "QUERY_STRING=", query);
    env_add(&b, "REQUEST_URI=", req->target);
    env_add(&b, "CONTENT_TYPE=", ctype ? ctype : "");
    env_add_uint(&b, "CONTENT_LENGTH=", req->body_len);
    env_add(&b, "SERVER_NAME=", server_name);
    env_add_uint(&b, "SERVER_PORT=", req->local_port);
    env_add(&b, "SERVER_PROTOCOL=", req->http_minor >= 1 ? "HTTP/1.1" : "HTTP/1.0");
    env_add(&b, "REMOTE_ADDR=", raddr);
    env_add_uint(&b, "REMOTE_PORT=", req->remote_port);

    /* In request order: a repeated header is written with its first
     * occurrence, its values joined in the order received. */
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!link[i].first) continue;
        const char *name = req->headers[i].name;
        vars[b.n++] = b.p;
        env_cat(&b, "HTTP_");
        for (const char *c = name; *c; c++) *b.p++ = cgi_key_char((unsigned char)*c);
        *b.p++ = '=';
        env_cat(&b, req->headers[i].value);
        for (uint32_t k = link[i].next; k != ENV_END; k = link[k].next) {
            env_cat(&b, strcasecmp(name, "Cookie") == 0 ? "; " : ", ");
            env_cat(&b, req->headers[k].value);
        }
        *b.p++ = '\0';
    }
    vars[b.n] = NULL;
    if (link != lstack) free(link);
    *n = b.n;
    return vars;
}

void srv_cgi_env_put(char **env, uint32_t *n, const char *var)
{
    const char *eq = strchr(var, '=');
    size_t klen = eq ? (size_t)(eq - var) : strlen(var);
    for (uint32_t k = 0; k < *n; k++) {
        if (strncmp(env[k], var, klen) != 0 || env[k][klen] != '=') continue;
        if (eq) {
            env[k] = (char *)var;
        } else {
            memmove(env + k, env + k + 1, (*n - k) * sizeof *env); /* with the NULL */
            (*n)--;
        }
        return;
    }
    if (!eq) return;
    env[(*n)++] = (char *)var;
    env[*n] = NULL;
}

/* ---- the response ------------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int srv_cgi_parse(uint8_t *buf, size_t len, srv_cgi_response_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    const char *location = NULL;
    size_t pos = 0;
    for (unsigned line = 1;; line++) {
        if (pos > SRV_CGI_MAX_HEADER_BYTES) {
            snprintf(err, errlen, "CGI header section longer than %u bytes",
                     SRV_CGI_MAX_HEADER_BYTES);
            return -1;
        }
        uint8_t *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
        if (!nl) {
            snprintf(err, errlen,
                     len == 0 ? "empty output: no CGI headers"
                              : "output has no blank line ending the CGI headers");
            return -1;
        }
        char *s = (char *)buf + pos;
        size_t l = (size_t)((char *)nl - s);
        size_t next = pos + l + 1;
        if (l && s[l - 1] == '\r') l--;
        if (l == 0) {
            if (r->nheaders == 0 && r->status == 0) {
                snprintf(err, errlen, "no CGI header before the blank line");
                return -1;
            }
            r->body = buf + next;
            r->body_len = len - next;
            break;
        }
        char *colon = memchr(s, ':', l);
        if (!colon || colon == s) {
            snprintf(err, errlen, "CGI header line %u has no 'Name:'", line);
            return -1;
        }
        for (char *c = s; c < colon; c++) {
            if (!is_tchar((unsigned char)*c)) {
                snprintf(err, errlen, "CGI header line %u: bad character in header name", line);
                return -1;
            }
        }
        char *v = colon + 1, *end = s + l;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
        for (char *c = v; c < end; c++) {
            unsigned char ch = (unsigned char)*c;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                snprintf(err, errlen, "CGI header line %u: control character in value", line);
                return -1;
            }
        }
        *colon = 0;
        *end = 0;
        if (strcasecmp(s, "Status") == 0) {
            if (r->status) {
                snprintf(err, errlen, "CGI header line %u: Status given twice", line);
                return -1;
            }
            int st = 0, k = 0;
            for (; k < 3 && v[k] >= '0' && v[k] <= '9'; k++) st = st * 10 + (v[k] - '0');
            if (k != 3 || (v[3] && v[3] != ' ') || st < 200 || st > 599) {
                snprintf(err, errlen, "CGI header line %u: Status '%.40s' is not a code 200..599",
                         line, v);
                return -1;
            }
            r->status = st;
        } else {
            if (r->nheaders == SRV_CGI_MAX_HEADERS) {
                snprintf(err, errlen, "more than %d CGI headers", SRV_CGI_MAX_HEADERS);
                return -1;
            }
            if (strcasecmp(s, "Location") == 0) location = v;
            r->headers[r->nheaders].name = s;
            r->headers[r->nheaders].value = v;
            r->nheaders++;
        }
        pos = next;
    }
    if (!r->status) r->status = location && *location ? 302 : 200;
    return 0;
}
