/*
 * client.c — the admin API client the CLI's subcommands share: finds the
 * API and its token the way DESIGN.md §4 says ($WASMFN_API, $WASMFN_TOKEN,
 * else DATA/admin.token of the default data dir), sends requests with
 * libcurl, and turns failures into one line a user can act on ("cannot
 * reach the admin API at URL: Connection refused (is `wasmfn serve`
 * running?)"). Also the small helpers every subcommand needs: a byte
 * buffer, option parsing, tables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/client.h"
#include "common/logring.h"

#define DEFAULT_API "http://127.0.0.1:8081"

int cli_file_read(const char *path, cm_buf_t *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return -1;
    char chunk[65536];
    int rc = 0;
    size_t r;
    if (cm_buf_append(b, "", 0) != 0) rc = -1; /* an empty file still gets data */
    while (rc == 0 && (r = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cm_buf_append(b, chunk, r) != 0) {
            errno = ENOMEM;
            rc = -1;
        }
    if (rc == 0 && ferror(f)) {
        errno = EIO;
        rc = -1;
    }
    if (f != stdin) {
        int e = errno;
        fclose(f);
        errno = e;
    }
    return rc;
}

uint8_t *cli_file_bytes(const char *path, size_t *len)
{
    cm_buf_t b = {0};
    if (cli_file_read(path, &b) != 0) {
        int e = errno;
        cm_buf_free(&b);
        errno = e;
        return NULL;
    }
    *len = b.len;
    return (uint8_t *)cm_buf_take(&b);
}

/* "256 MiB" for limits that are whole MiB, else bytes. */
static void size_text(size_t n, char *out, size_t len)
{
    if (n % (1u << 20) == 0) snprintf(out, len, "%zu MiB", n >> 20);
    else snprintf(out, len, "%zu bytes", n);
}

int cli_file_read_max(const char *path, size_t max, bool regular_only, cm_buf_t *b, char *err,
                      size_t errlen)
{
    bool is_stdin = strcmp(path, "-") == 0;
    char limit[32];
    size_text(max, limit, sizeof limit);
    struct stat st;
    if (!is_stdin && regular_only) {
        /* Before opening: opening a FIFO would wait for a writer. */
        if (stat(path, &st) != 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "not a regular file (%s); give the path of a .wasm file",
                     S_ISDIR(st.st_mode) ? "a directory" : S_ISCHR(st.st_mode) ? "a character device"
                     : S_ISBLK(st.st_mode) ? "a block device" : S_ISFIFO(st.st_mode) ? "a pipe"
                     : "not a file");
            return -1;
        }
    }
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    int rc = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        snprintf(err, errlen, "larger than %s (%lld bytes), the most wasmfn reads for it", limit,
                 (long long)st.st_size);
        rc = -1;
    }
    char chunk[65536];
    size_t r;
    if (rc == 0 && cm_buf_append(b, "", 0) != 0) rc = -1; /* an empty file still gets data */
    while (rc == 0 && (r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (r > max - b->len) {
            snprintf(err, errlen, "larger than %s, the most wasmfn reads for it", limit);
            rc = -1;
        } else if (cm_buf_append(b, chunk, r) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s", strerror(EIO));
        rc = -1;
    }
    if (f != stdin) fclose(f);
    return rc;
}

/* ---- finding the API and the token ---- */

static char *default_token_path(void)
{
    const char *state = getenv("XDG_STATE_HOME");
    char *p = NULL;
    if (state && *state) {
        if (asprintf(&p, "%s/wasmfn/admin.token", state) < 0) return NULL;
        return p;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home) return NULL;
    if (asprintf(&p, "%s/.local/state/wasmfn/admin.token", home) < 0) return NULL;
    return p;
}

static char *trim_dup(const char *s, size_t n)
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    return strndup(s, n);
}

int cli_api_open(cli_api_t *api)
{
    memset(api, 0, sizeof *api);
    const char *base = getenv("WASMFN_API");
    if (!base || !*base) base = DEFAULT_API;
    size_t n = strlen(base);
    while (n && base[n - 1] == '/') n--;
    /* "127.0.0.1:8081" without a scheme is what people type; accept it. */
    if (strstr(base, "://") == NULL) {
        if (asprintf(&api->base, "http://%.*s", (int)n, base) < 0) api->base = NULL;
    } else {
        api->base = strndup(base, n);
    }

    const char *tok = getenv("WASMFN_TOKEN");
    if (tok && *tok) {
        api->token = trim_dup(tok, strlen(tok));
        api->token_source = strdup("$WASMFN_TOKEN");
    } else {
        api->token_source = default_token_path();
        cm_buf_t b = {0};
        if (api->token_source && cli_file_read(api->token_source, &b) == 0 && b.len > 0)
            api->token = trim_dup(b.data, b.len);
        cm_buf_free(&b);
    }

    if (!api->base) {
        fprintf(stderr, "wasmfn: out of memory\n");
        return -1;
    }
    static bool inited;
    if (!inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "wasmfn: cannot initialise libcurl\n");
            return -1;
        }
        inited = true;
    }
    api->curl = curl_easy_init();
    if (!api->curl) {
        fprintf(stderr, "wasmfn: cannot initialise libcurl\n");
        return -1;
    }
    return 0;
}

void cli_api_close(cli_api_t *api)
{
    if (api->curl) curl_easy_cleanup(api->curl);
    if (api->token) {
        memset(api->token, 0, strlen(api->token));
        free(api->token);
    }
    free(api->token_source);
    free(api->base);
    memset(api, 0, sizeof *api);
}

/* ---- requests ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    cm_buf_t *b = ud;
    return cm_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* A streamed body (log lines) is printed a line at a time as it arrives,
 * escaped for the terminal (lr_escape, newlines kept): the daemon escapes
 * log text already; this also covers an older or a hostile one. Printing
 * whole lines never cuts a UTF-8 sequence in two; a partial line is held
 * until its end arrives (or it passes STREAM_HOLD_MAX, or the body ends). */
#define STREAM_HOLD_MAX (64u << 10)

static void stream_print(const char *p, size_t n)
{
    char buf[4096];
    while (n) {
        size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
        fwrite(buf, 1, lr_escape(p, k, buf, 1), stdout);
        p += k;
        n -= k;
    }
    fflush(stdout);
}

static size_t on_body_stream(char *p, size_t size, size_t n, void *ud)
{
    cm_buf_t *held = ud;
    if (cm_buf_append(held, p, size * n) != 0) return 0;
    size_t upto = held->len;
    while (upto && held->data[upto - 1] != '\n') upto--;
    if (!upto && held->len > STREAM_HOLD_MAX) upto = held->len;
    if (upto) {
        stream_print(held->data, upto);
        memmove(held->data, held->data + upto, held->len - upto);
        held->len -= upto;
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    cm_buf_t *b = ud;
    /* A redirect or 100-continue starts a new header block: keep the last. */
    if (size * n >= 5 && memcmp(p, "HTTP/", 5) == 0) b->len = 0;
    return cm_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

void cli_response_free(cli_response_t *r)
{
    cm_buf_free(&r->body);
    cm_buf_free(&r->headers);
    r->status = 0;
}

int cli_api_do(cli_api_t *api, const cli_request_t *req, cli_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    CURL *c = api->curl;
    curl_easy_reset(c);

    char *url = NULL;
    if (asprintf(&url, "%s%s", api->base, req->path) < 0) {
        fprintf(stderr, "wasmfn: out of memory\n");
        return -1;
    }
    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    if (api->token && asprintf(&auth, "Authorization: Bearer %s", api->token) >= 0)
        hdrs = curl_slist_append(hdrs, auth);
    /* The daemon answers at once; curl's "Expect: 100-continue" wait on
     * large uploads would only add a second of latency. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (req->content_type) {
        char *ct = NULL;
        if (asprintf(&ct, "Content-Type: %s", req->content_type) >= 0) {
            hdrs = curl_slist_append(hdrs, ct);
            free(ct);
        }
    } else if (req->body) {
        bool has_ct = false;
        for (size_t i = 0; i < req->nheaders; i++)
            if (strncasecmp(req->headers[i], "content-type:", 13) == 0) has_ct = true;
        /* libcurl would add x-www-form-urlencoded; send no type instead. */
        if (!has_ct) hdrs = curl_slist_append(hdrs, "Content-Type:");
    }
    for (size_t i = 0; i < req->nheaders; i++) hdrs = curl_slist_append(hdrs, req->headers[i]);

    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "wasmfn-cli");
    if (req->timeout_s > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT, req->timeout_s);
    if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    const char *method = req->method ? req->method : "GET";
    if (strcmp(method, "GET") == 0 && !req->body)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else {
        bool wants_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                          strcmp(method, "PATCH") == 0;
        if (!req->body && wants_body) {
            /* POST/PUT with an empty body still sends Content-Length: 0. */
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    cm_buf_t held = {0};
    if (req->stream) {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_stream);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &held);
    } else {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp->headers);

    CURLcode rc = curl_easy_perform(c);
    if (held.len) stream_print(held.data, held.len);
    cm_buf_free(&held);
    int ret = 0;
    if (rc != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        curl_off_t connect_us = 0;
        curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
            (rc == CURLE_OPERATION_TIMEDOUT && connect_us == 0)) {
            fprintf(stderr,
                    "wasmfn: cannot reach the admin API at %s: %s (is `wasmfn serve` running?)\n",
                    api->base, oserr ? strerror((int)oserr) : why);
        } else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
            fprintf(stderr, "wasmfn: bad admin API address '%s' ($WASMFN_API): %s\n",
                    api->base, why);
        } else {
            fprintf(stderr, "wasmfn: %s %s: %s\n", method, url, why);
        }
        ret = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    }
    /* Body and headers of an answer that never completed are not kept. */
    if (ret != 0) cli_response_free(resp);
    else if (!resp->body.data)
        cm_buf_append(&resp->body, "", 0); /* callers may read an empty body as a string */
    curl_slist_free_all(hdrs);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    free(url);
    return ret;
}

int cli_api_json(cli_api_t *api, const char *method, const char *path, const cJSON *body,
                 cli_response_t *resp)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    if (body && !text) {
        memset(resp, 0, sizeof *resp);
        fprintf(stderr, "wasmfn: out of memory\n");
        return -1;
    }
    cli_request_t req = {
        .method = method,
        .path = path,
        .body = text,
        .body_len = text ? strlen(text) : 0,
        .content_type = text ? "application/json" : NULL,
        .timeout_s = 300,
    };
    int rc = cli_api_do(api, &req, resp);
    free(text);
    return rc;
}

void cli_response_error(const cli_response_t *r, char *out, size_t n)
{
    if (r->body.len) {
        cJSON *j = cJSON_ParseWithLength(r->body.data, r->body.len);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(e)) {
            snprintf(out, n, "%s", e->valuestring);
            cJSON_Delete(j);
            return;
        }
        cJSON_Delete(j);
        size_t len = strcspn(r->body.data, "\r\n");
        if (len > 0) {
            snprintf(out, n, "%ld: %.*s", r->status, (int)len, r->body.data);
            return;
        }
    }
    snprintf(out, n, "the admin API answered %ld", r->status);
}

int cli_api_fail(const cli_api_t *api, const char *cmd, const char *what,
                 const cli_response_t *r)
{
    char msg[1024];
    cli_response_error(r, msg, sizeof msg);
    fprintf(stderr, "wasmfn %s: %s%s%s\n", cmd, what ? what : "", what ? ": " : "", msg);
    if (r->status == 401) {
        if (!api->token)
            fprintf(stderr,
                    "wasmfn %s: no admin token: set $WASMFN_TOKEN, or run `wasmfn serve` with the "
                    "default data dir (its token file %s was not readable)\n",
                    cmd, api->token_source ? api->token_source : "DATA/admin.token");
        else
            fprintf(stderr, "wasmfn %s: the token from %s was refused (it is DATA/admin.token of "
                    "the daemon at %s)\n", cmd, api->token_source, api->base);
    }
    return CLI_EXIT_FAIL;
}

const char *cli_json_str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

char *cli_escape(const char *s)
{
    /* Unreserved characters pass; everything else is %XX. */
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = 0;
    return out;
}

int cli_blob_upload(cli_api_t *api, const char *path, char *digest, size_t digest_len,
                    char *err, size_t errlen)
{
    cm_buf_t b = {0};
    if (cli_file_read_max(path, CLI_UPLOAD_MAX_BYTES, true, &b, err, errlen) != 0) {
        cm_buf_free(&b);
        return -1;
    }
    cli_request_t req = {
        .method = "POST",
        .path = "/v1/blobs",
        .body = b.data,
        .body_len = b.len,
        .content_type = "application/wasm",
        .timeout_s = 300,
    };
    cli_response_t resp;
    int rc = -1;
    if (cli_api_do(api, &req, &resp) != 0) {
        snprintf(err, errlen, "upload failed");
        rc = -2; /* cli_api_do printed why */
    } else if (resp.status / 100 != 2) {
        cli_response_error(&resp, err, errlen);
        if (resp.status == 401) snprintf(err, errlen, "the admin API refused the token (401)");
    } else {
        cJSON *j = cJSON_ParseWithLength(resp.body.data, resp.body.len);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "digest");
        if (cJSON_IsString(d) && strncmp(d->valuestring, "sha256:", 7) == 0 &&
            strlen(d->valuestring) < digest_len) {
            snprintf(digest, digest_len, "%s", d->valuestring);
            rc = 0;
        } else {
            snprintf(err, errlen, "the admin API's answer to POST /v1/blobs has no digest");
        }
        cJSON_Delete(j);
    }
    cli_response_free(&resp);
    cm_buf_free(&b);
    return rc;
}

/* ---- options ---- */

const char *cli_opt(const char *name, int argc, char **argv, int *i, bool *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    *missing = false;
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=' && name[1] == '-') return a + n + 1;
    if (a[n] != 0) {
        /* "-dDATA", "-ojson": one-letter options take an attached value. */
        if (name[1] != '-' && n == 2) return a + n;
        return NULL;
    }
    if (*i + 1 >= argc) {
        *missing = true;
        return "";
    }
    return argv[++*i];
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return -1;
    *out = v;
    return 0;
}

/* ---- tables ---- */

void cli_table_init(cli_table_t *t, size_t ncols, const char *const *header)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    cli_table_row(t, header);
}

void cli_table_row(cli_table_t *t, const char *const *cells)
{
    char **nc = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *nc);
    if (!nc) return; /* a row fewer on OOM beats a crash in a listing */
    t->cells = nc;
    for (size_t c = 0; c < t->ncols; c++)
        nc[t->nrows * t->ncols + c] = strdup(cells[c] ? cells[c] : "-");
    t->nrows++;
}

void cli_table_print(cli_table_t *t, FILE *out, const char *indent)
{
    size_t width[32] = {0};
    size_t ncols = t->ncols < 32 ? t->ncols : 32;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t w = s ? strlen(s) : 1;
            if (w > width[c]) width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        fputs(indent ? indent : "", out);
        for (size_t c = 0; c < ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == ncols)
                fprintf(out, "%s\n", s ? s : "-");
            else
                fprintf(out, "%-*s  ", (int)width[c], s ? s : "-");
        }
    }
}

void cli_table_free(cli_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
