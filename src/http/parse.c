/*
 * parse.c — http-parser's callbacks: the request line, headers and body
 * copied into the connection's arena, limits enforced as they arrive, and
 * the strict checks (RFC 9112) that make an ambiguous request a 400.
 */
#define _GNU_SOURCE
#include "http/internal.h"
#include "common/buf.h"
#include "common/percent.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *printable(const char *in, size_t len, char *out, size_t outlen);

/* ---- parser callbacks --------------------------------------------------- */

static int hdr_limit(hs_conn_t *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > c->srv->lim.max_header_bytes) {
        c->error_status = 431;
        c->error_reason = "request headers too large";
        return -1;
    }
    return 0;
}

static int oom(hs_conn_t *c)
{
    c->error_status = 500;
    c->error_reason = "out of memory";
    return -1;
}

static int fail(hs_conn_t *c, int status, const char *reason)
{
    c->error_status = status;
    c->error_reason = reason;
    return -1;
}
static int failf(hs_conn_t *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason_buf, sizeof c->reason_buf, fmt, ap);
    va_end(ap);
    return fail(c, status, c->reason_buf);
}

/* A client's bytes, made printable for an error message. */
static const char *printable(const char *in, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)in[i];
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[o] = 0;
    return out;
}

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. http-parser
 * (outside its strict build) also lets a space through, which would make
 * "Content-Length : 3" a header some other parser ignores. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int on_message_begin(http_parser *p)
{
    hs_conn_t *c = p->data;
    c->arena.len = 0;
    c->body.len = 0;
    c->nhoff = 0;
    c->header_bytes = 0;
    c->hstate = HDR_NONE;
    if (c->served_any) c->head_start_ms = uv_now(c->srv->loop);
    c->msg_started = true;
    c->headers_done = false;
    c->msg_complete = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    if (hdr_limit(c, len)) return -1;
    return cm_buf_append(&c->arena, at, len) ? oom(c) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    if (hdr_limit(c, len + 4)) return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar((unsigned char)at[i])) {
            char name[48];
            printable(at, len < 40 ? len : 40, name, sizeof name);
            return failf(c, 400, "header '%s': %s", name,
                         at[i] == ' ' || at[i] == '\t'
                             ? "whitespace in a header name or before its colon"
                             : "bad character in a header name");
        }
    }
    /* Trailers (after a chunked body) are checked and counted, not kept:
     * the request's strings are already handed out. */
    if (c->headers_done) return 0;
    if (c->hstate != HDR_FIELD) {
        if (c->nhoff >= c->srv->lim.max_headers)
            return failf(c, 431, "more than %u request headers", c->srv->lim.max_headers);
        /* Ends the URL or the previous value; starts a header. */
        if (cm_buf_append(&c->arena, "", 1)) return oom(c);
        if (c->nhoff == c->hoff_cap) {
            size_t cap = c->hoff_cap ? c->hoff_cap * 2 : 16;
            hs_hdr_off_t *n = realloc(c->hoff, cap * sizeof *n);
            if (!n) return oom(c);
            c->hoff = n;
            c->hoff_cap = cap;
        }
        c->hoff[c->nhoff].name = c->arena.len;
        c->hoff[c->nhoff].value = SIZE_MAX;
        c->nhoff++;
        c->hstate = HDR_FIELD;
    }
    return cm_buf_append(&c->arena, at, len) ? oom(c) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    if (hdr_limit(c, len)) return -1;
    if (c->headers_done) return 0;
    if (c->hstate == HDR_FIELD) {
        if (cm_buf_append(&c->arena, "", 1)) return oom(c);
        c->hoff[c->nhoff - 1].value = c->arena.len;
        c->hstate = HDR_VALUE;
    }
    return cm_buf_append(&c->arena, at, len) ? oom(c) : 0;
}

/* What RFC 9112 makes a 400 (or 501) and http-parser lets through, or may
 * read differently from a proxy in front: the Host header missing on
 * HTTP/1.1 or given twice, Content-Length with Transfer-Encoding, two
 * different Content-Lengths, a transfer coding other than chunked, and a
 * path with a malformed escape or an encoded NUL (no handler can use it).
 * Returns true, with the reason set, when the request is refused. */
static int request_check(hs_conn_t *c, const hs_req_t *r)
{
    size_t nhost = 0, nte = 0;
    const char *cl = NULL, *te = NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *name = r->headers[i].name, *value = r->headers[i].value;
        if (strcasecmp(name, "Host") == 0) {
            nhost++;
        } else if (strcasecmp(name, "Content-Length") == 0) {
            if (cl && strcmp(cl, value) != 0)
                return fail(c, 400, "two different Content-Length headers");
            cl = value;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            nte++;
            te = value;
        }
    }
    if (nhost > 1) return fail(c, 400, "more than one Host header");
    if (nhost == 0 && r->http_minor >= 1) return fail(c, 400, "missing Host header");
    if (cl && te)
        return fail(c, 400, "both Content-Length and Transfer-Encoding: send one");
    if (nte > 1) return fail(c, 400, "more than one Transfer-Encoding header");
    if (te && strcasecmp(te, "chunked") != 0) {
        /* The body's end is known only when chunked comes last (9112 6.1). */
        size_t tl = strlen(te);
        bool last = tl >= 7 && strcasecmp(te + tl - 7, "chunked") == 0;
        char v[48];
        printable(te, tl < 40 ? tl : 40, v, sizeof v);
        return failf(c, last ? 501 : 400, "Transfer-Encoding '%s': only chunked is supported", v);
    }
    if (!cm_pct_valid(r->path))
        return fail(c, 400, "bad percent-encoding in the request path");
    return 0;
}

/* Runs the server's head check (hs_server_on_head); false when it answered. */
static bool conn_head_check(hs_conn_t *c)
{
    hs_server_t *s = c->srv;
    /* The check may answer: while it runs the request is in flight, as for
     * a handler, and if it answers the connection is not kept. */
    c->in_flight = true;
    c->streaming = false;
    c->abort_cb = NULL;
    c->head = strcmp(c->req.method, "HEAD") == 0;
    c->keep_alive = false;
    s->inflight++;
    bool go = s->head_fn(&c->req, s->ud);
    if (go && c->in_flight) {
        c->in_flight = false;
        s->inflight--;
        return true;
    }
    if (c->in_flight) hs_respond_text(&c->req, 500, "request refused without an answer\n");
    return false;
}

static int on_headers_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    hs_server_t *s = c->srv;
    if (cm_buf_append(&c->arena, "", 1)) return oom(c);
    /* path and query, as their own strings after everything else. */
    size_t url_len = strlen(c->arena.data);
    const char *q = memchr(c->arena.data, '?', url_len);
    size_t path_len = q ? (size_t)(q - c->arena.data) : url_len;
    size_t query_len = q ? url_len - path_len - 1 : 0;
    if (cm_buf_reserve(&c->arena, path_len + query_len + 2)) return oom(c);
    size_t path_off = c->arena.len;
    cm_buf_append(&c->arena, c->arena.data, path_len);
    cm_buf_append(&c->arena, "", 1);
    size_t query_off = c->arena.len;
    cm_buf_append(&c->arena, c->arena.data + path_len + 1 - (q ? 0 : 1), query_len);
    cm_buf_append(&c->arena, "", 1);
    if (c->nhoff > c->hdrs_cap) {
        hs_header_t *n = realloc(c->hdrs, c->nhoff * sizeof *n);
        if (!n) return oom(c);
        c->hdrs = n;
        c->hdrs_cap = c->nhoff;
    }
    for (size_t i = 0; i < c->nhoff; i++) {
        c->hdrs[i].name = c->arena.data + c->hoff[i].name;
        c->hdrs[i].value = c->hoff[i].value == SIZE_MAX ? "" : c->arena.data + c->hoff[i].value;
    }
    hs_req_t *r = &c->req;
    memset(r, 0, sizeof *r);
    r->method = http_method_str((enum http_method)p->method);
    r->target = c->arena.data;
    r->path = c->arena.data + path_off;
    r->query = c->arena.data + query_off;
    r->headers = c->hdrs;
    r->nheaders = c->nhoff;
    r->http_minor = p->http_minor;
    r->remote_addr = c->remote;
    r->remote_port = c->remote_port;
    r->local_addr = c->local;
    r->local_port = c->local_port;
    /* HTTP/1.x only (a higher 1.x minor is read as 1.1, RFC 9110 2.5). */
    if (p->http_major != 1)
        return failf(c, 505, "HTTP/%u.%u is not supported: send HTTP/1.1", p->http_major,
                     p->http_minor);
    if (r->path[0] != '/' && strcmp(r->method, "OPTIONS") != 0)
        return fail(c, 400, "request target must be an absolute path");
    if (request_check(c, r)) return -1;
    /* Before the size check: a client that may not send a body learns
     * nothing about the limits. */
    if (s->head_fn && !conn_head_check(c)) {
        /* Answered: stop before the body, which is never read. */
        http_parser_pause(p, 1);
        return 0;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > s->lim.max_body_bytes)
        return fail(c, 413, "request body too large");
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0 &&
        cm_buf_reserve(&c->body, (size_t)p->content_length))
        return oom(c);
    const char *expect = hs_req_header(r, "Expect");
    if (expect && r->http_minor >= 1 && strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        cm_buf_append(&c->out_next, cont, sizeof cont - 1);
        hs_conn_flush(c);
    }
    c->headers_done = true;
    c->body_start_ms = uv_now(s->loop);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    if (len > c->srv->lim.max_body_bytes - c->body.len) {
        c->error_status = 413;
        c->error_reason = "request body too large";
        return -1;
    }
    return cm_buf_append(&c->body, at, len) ? oom(c) : 0;
}

static int on_message_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    c->msg_complete = true;
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    c->req.body = (const uint8_t *)(c->body.data ? c->body.data : "");
    c->req.body_len = c->body.len;
    c->scan_active = true; /* the next head starts after this message */
    c->scan_begun = c->scan_bol = false;
    /* Stop here: the handler runs outside the parser (hs_conn_process). */
    http_parser_pause(p, 1);
    return 0;
}

const http_parser_settings *hs_parser_settings(void)
{
    /* Filled once, by the first hs_server_new (on the main thread). */
    static http_parser_settings parser_settings;
    static bool settings_ready;
    if (!settings_ready) {
        http_parser_settings_init(&parser_settings);
        parser_settings.on_message_begin = on_message_begin;
        parser_settings.on_url = on_url;
        parser_settings.on_header_field = on_header_field;
        parser_settings.on_header_value = on_header_value;
        parser_settings.on_headers_complete = on_headers_complete;
        parser_settings.on_body = on_body;
        parser_settings.on_message_complete = on_message_complete;
        settings_ready = true;
    }
    return &parser_settings;
}
