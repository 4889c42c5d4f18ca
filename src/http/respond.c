/*
 * respond.c — answering a request: the status line and headers written
 * into the connection's output, whole bodies or chunked streams, and the
 * abort callback of a request whose client left.
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

/* ---- responses ---------------------------------------------------------- */

static bool hdr_is(const char *name, const char *want) { return strcasecmp(name, want) == 0; }

static void buf_uint(cm_buf_t *b, uint64_t v)
{
    char d[24];
    size_t n = sizeof d;
    do {
        d[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cm_buf_append(b, d + n, sizeof d - n);
}

/* Every response goes through here, so it appends strings rather than
 * formatting with printf (which was ~2% of a hello-world request's CPU). */
static void write_head(hs_conn_t *c, int status, const hs_header_t *h, size_t nh, bool chunked,
                       size_t len)
{
    cm_buf_t *o = &c->out_next;
    if (status < 100 || status > 999) status = 500;
    if (!c->keep_alive || c->srv->closing) c->keep_alive = false;
    cm_buf_str(o, c->req.http_minor >= 1 ? "HTTP/1.1 " : "HTTP/1.0 ");
    buf_uint(o, (uint64_t)status);
    cm_buf_str(o, " ");
    cm_buf_str(o, hs_status_text(status));
    cm_buf_str(o, "\r\n");
    for (size_t i = 0; i < nh; i++) {
        /* Framing is ours: a handler's Content-Length or Transfer-Encoding
         * would contradict the body actually sent. */
        if (hdr_is(h[i].name, "Content-Length") || hdr_is(h[i].name, "Transfer-Encoding") ||
            hdr_is(h[i].name, "Connection") || hdr_is(h[i].name, "Date"))
            continue;
        cm_buf_str(o, h[i].name);
        cm_buf_str(o, ": ");
        cm_buf_str(o, h[i].value);
        cm_buf_str(o, "\r\n");
    }
    if (chunked) {
        if (c->req.http_minor >= 1) cm_buf_str(o, "Transfer-Encoding: chunked\r\n");
        else c->keep_alive = false; /* HTTP/1.0: the body ends at close */
    } else if (status != 204 && status != 304 && status >= 200) {
        cm_buf_str(o, "Content-Length: ");
        buf_uint(o, len);
        cm_buf_str(o, "\r\n");
    }
    cm_buf_str(o, "Date: ");
    cm_buf_str(o, hs_date_now(c->srv));
    cm_buf_str(o, "\r\n");
    if (!c->keep_alive) cm_buf_str(o, "Connection: close\r\n");
    else if (c->req.http_minor == 0) cm_buf_str(o, "Connection: keep-alive\r\n");
    cm_buf_append(o, "\r\n", 2);
}

/* Called when a response has ended (its last byte is queued): the
 * connection goes back to the request cycle (server.c's, through
 * c->srv->process) for the next pipelined request. */
static void request_end(hs_conn_t *c)
{
    hs_server_t *s = c->srv;
    c->in_flight = false;
    c->streaming = false;
    c->abort_cb = NULL;
    s->inflight--;
    if (c->closing) {
        hs_conn_maybe_free(c); /* may free c: nothing after this */
        return;
    }
    c->idle_start_ms = uv_now(s->loop);
    if (!c->keep_alive || s->closing) c->close_after_write = true;
    hs_conn_flush(c);
    if (c->closing) return;
    if (!c->reading && !c->close_after_write) hs_conn_start_reading(c);
    s->process(c);
}

static hs_conn_t *req_conn(hs_req_t *r) { return (hs_conn_t *)((char *)r - offsetof(hs_conn_t, req)); }

void hs_respond(hs_req_t *r, int status, const hs_header_t *headers, size_t nheaders,
                const void *body, size_t len)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight || c->streaming) return;
    if (!c->closing) {
        write_head(c, status, headers, nheaders, false, len);
        if (len && !c->head && status != 204 && status != 304) cm_buf_append(&c->out_next, body, len);
    }
    request_end(c);
}

void hs_respond_start(hs_req_t *r, int status, const hs_header_t *headers, size_t nheaders)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight || c->streaming) return;
    c->streaming = true;
    if (c->closing) return;
    write_head(c, status, headers, nheaders, true, 0);
    hs_conn_flush(c);
}

int hs_respond_chunk(hs_req_t *r, const void *data, size_t len)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight || !c->streaming || c->closing) return -1;
    if (len == 0 || c->head) return 0;
    if (c->out_next.len + c->out_busy.len > HS_OUT_MAX) {
        /* The client does not read: stop feeding it. */
        hs_conn_close(c);
        return -1;
    }
    if (c->req.http_minor >= 1) cm_buf_printf(&c->out_next, "%zx\r\n", len);
    cm_buf_append(&c->out_next, data, len);
    if (c->req.http_minor >= 1) cm_buf_append(&c->out_next, "\r\n", 2);
    hs_conn_flush(c);
    return c->closing ? -1 : 0;
}

void hs_respond_end(hs_req_t *r)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight || !c->streaming) return;
    if (!c->closing && c->req.http_minor >= 1 && !c->head)
        cm_buf_append(&c->out_next, "0\r\n\r\n", 5);
    request_end(c);
}

void hs_req_on_abort(hs_req_t *r, void (*cb)(hs_req_t *r, void *ud), void *ud)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight) return;
    if (c->closing) {
        /* Already gone: tell the caller now. */
        if (cb) cb(r, ud);
        return;
    }
    c->abort_cb = cb;
    c->abort_ud = ud;
}

void hs_respond_json(hs_req_t *r, int status, const char *json)
{
    hs_header_t h = {"Content-Type", "application/json"};
    hs_respond(r, status, &h, 1, json, strlen(json));
}

void hs_respond_text(hs_req_t *r, int status, const char *text)
{
    hs_header_t h = {"Content-Type", "text/plain; charset=utf-8"};
    hs_respond(r, status, &h, 1, text, strlen(text));
}
