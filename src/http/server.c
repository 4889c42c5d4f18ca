/*
 * server.c — the HTTP/1.1 server both planes use (http.h): libuv for the
 * sockets, http-parser for the bytes. This file accepts connections and
 * runs the request cycle (hs_conn_process); conn.c holds a connection's
 * lifetime, its input, deadlines and output, parse.c the parser callbacks
 * and the request checks, respond.c the hs_respond* calls, errors.c JSON
 * error answers. The files below this one reach the request cycle only
 * through the server's `process` pointer, so none calls back up.
 *
 * One connection holds at most one request in flight. When a request is
 * complete the parser is paused and the handler runs; bytes that arrive
 * meanwhile (pipelined requests) are only buffered, and are parsed once the
 * response has ended. That answers pipelined requests in order without a
 * per-request allocation, and it keeps reading while a handler works, so a
 * client that disconnects mid-request is noticed at once (the abort
 * callback), not when the response is finally written.
 *
 * Memory: each connection owns a few growable buffers (raw input, request
 * strings, body, output) that are reused by every request on it, so a
 * keep-alive connection allocates only while its requests grow. Everything
 * a request points to is copied out of the raw input, which can therefore be
 * compacted freely.
 *
 * Output: a response is appended to `out_next` and written with
 * uv_try_write; what the socket does not take at once moves to `out_busy`
 * and goes out with uv_write. Two buffers, so appending never moves bytes
 * that libuv is still writing.
 *
 * Slow clients: one timer per connection, set on every transition to the
 * deadline of the current phase. The deadlines are absolute (from the
 * phase's start), never pushed back by a byte arriving, so a client that
 * trickles a byte a second is cut off like one that sends nothing: a head
 * must be complete within head_timeout_ms of its first byte (of the accept
 * for a first request), a body within body_timeout_ms plus a second per
 * min_body_rate bytes received, a keep-alive connection may stay idle
 * idle_timeout_ms, and a response the client does not read for 60 s is
 * abandoned (that one does move with each write that completes).
 *
 * Connections are counted per client address (a hash table in the server),
 * so one client cannot hold all the process's file descriptors; a server
 * may also cap its total (the daemon gives the data plane a cap that keeps
 * descriptors free for the admin API).
 *
 * Closing: a connection that must close after an answer (an error, or
 * Connection: close) first sends its answer, then shuts down its sending
 * side and reads (discarding) for up to HS_LINGER_MS before closing: a
 * close with unread input would send a reset, which can destroy the answer
 * before the client reads it.
 *
 * Lifetime: a connection is freed only once both its handles are closed AND
 * its in-flight request has been answered (the handler may answer long after
 * the client left); hs_respond on such a request just discards the bytes.
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

static void addr_name(const struct sockaddr_storage *ss, char *out, size_t outlen, uint16_t *port)
{
    out[0] = 0;
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, out, outlen);
        *port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, out, outlen);
        *port = ntohs(a->sin6_port);
    }
}

/* ---- the request cycle -------------------------------------------------- */

static void conn_dispatch(hs_conn_t *c)
{
    hs_server_t *s = c->srv;
    c->msg_complete = false;
    c->msg_started = false;
    c->headers_done = false;
    c->served_any = true;
    c->in_flight = true;
    c->streaming = false;
    c->abort_cb = NULL;
    c->head = strcmp(c->req.method, "HEAD") == 0;
    if (s->closing) c->keep_alive = false;
    s->inflight++;
    hs_conn_timer_update(c);
    s->handler(&c->req, s->ud);
}

/* http-parser takes an obsolete line folding (a header line that starts
 * with a space or tab: RFC 9112 5.2 says reject it) as part of the value
 * before, and its callbacks cannot tell a folded value from one split
 * across reads. So the bytes of each head are scanned before the parser
 * sees them, up to the blank line that ends the head. Returns false when a
 * line of the head starts with whitespace. */
static bool head_scan(hs_conn_t *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n && c->scan_active; i++) {
        char ch = p[i];
        if (!c->scan_begun) {
            /* Empty lines before the request line are allowed (9112 2.2). */
            if (ch != '\r' && ch != '\n') c->scan_begun = true;
        } else if (ch == '\n') {
            if (c->scan_bol) c->scan_active = false; /* the blank line */
            c->scan_bol = true;
        } else if (ch != '\r') {
            if (c->scan_bol && (ch == ' ' || ch == '\t')) return false;
            c->scan_bol = false;
        }
    }
    return true;
}

/* Parses buffered input and dispatches complete requests until a request
 * is in flight, the input runs out or the connection is to close. */
void hs_conn_process(hs_conn_t *c)
{
    if (c->processing) return;
    c->processing = true;
    while (!c->closing && !c->in_flight && !c->close_after_write) {
        size_t avail = c->in.len - c->in_off;
        if (avail == 0) break;
        c->error_status = 0;
        if (c->scan_active && !head_scan(c, c->in.data + c->in_off, avail)) {
            hs_conn_send_error(c, 400, "a header line starts with whitespace (obsolete line folding)");
            break;
        }
        http_parser_pause(&c->parser, 0);
        size_t n = http_parser_execute(&c->parser, hs_parser_settings(), c->in.data + c->in_off, avail);
        c->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            int status = c->error_status;
            const char *reason = c->error_reason;
            if (!status) {
                status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
                reason = e == HPE_HEADER_OVERFLOW ? "request headers too large"
                                                  : http_errno_description(e);
            }
            hs_conn_send_error(c, status, reason);
            break;
        }
        if (c->msg_complete) {
            conn_dispatch(c);
            continue;
        }
        if (n < avail && e == HPE_OK) {
            /* The parser stopped without an error (an upgrade): the rest
             * is not HTTP. */
            c->close_after_write = true;
            break;
        }
    }
    if (c->in_off == c->in.len) c->in_off = c->in.len = 0;
    if (!c->closing && !c->reading && !c->in_flight && !c->close_after_write)
        hs_conn_start_reading(c);
    c->processing = false;
    if (!c->closing) {
        if (c->close_after_write) hs_conn_after_output(c);
        else hs_conn_timer_update(c);
    }
}

/* ---- the server --------------------------------------------------------- */

static void server_on_connection(uv_stream_t *l, int status)
{
    hs_server_t *s = l->data;
    if (status < 0 || s->closing) return;
    hs_conn_t *c = calloc(1, sizeof *c);
    if (!c) return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        hs_conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int n = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &n) == 0)
        addr_name(&ss, c->remote, sizeof c->remote, &c->remote_port);
    /* Over a cap: closed at once, before a byte is read, so the descriptor
     * is free again (the client sees its connection closed). */
    uint8_t key[17];
    hs_addr_key(&ss, key);
    if (s->nconns > s->lim.max_conns || !(c->addr = hs_addr_acquire(s, key))) {
        hs_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    n = sizeof ss;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &n) == 0)
        addr_name(&ss, c->local, sizeof c->local, &c->local_port);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->head_start_ms = uv_now(s->loop);
    c->scan_active = true;
    hs_conn_start_reading(c);
    hs_conn_timer_update(c);
}

hs_server_t *hs_server_new(uv_loop_t *loop, const hs_limits_t *lim, hs_handler_fn h, void *ud)
{
    hs_server_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->loop = loop;
    s->handler = h;
    s->ud = ud;
    s->process = hs_conn_process;
    s->lim.max_header_bytes = lim && lim->max_header_bytes ? lim->max_header_bytes
                                                           : HS_DEFAULT_MAX_HEADER;
    s->lim.max_body_bytes = lim && lim->max_body_bytes ? lim->max_body_bytes : HS_DEFAULT_MAX_BODY;
#define HS_LIM(field, def) s->lim.field = lim && lim->field ? lim->field : (def)
    HS_LIM(max_headers, HS_DEFAULT_MAX_HEADERS);
    HS_LIM(head_timeout_ms, HS_DEFAULT_HEAD_TIMEOUT_MS);
    HS_LIM(body_timeout_ms, HS_DEFAULT_BODY_TIMEOUT_MS);
    HS_LIM(min_body_rate, HS_DEFAULT_MIN_BODY_RATE);
    HS_LIM(idle_timeout_ms, HS_DEFAULT_IDLE_TIMEOUT_MS);
    HS_LIM(max_conns, HS_NO_LIMIT);
    HS_LIM(max_conns_per_addr, HS_DEFAULT_MAX_CONNS_PER_ADDR);
#undef HS_LIM
    /* The parser's own (process-wide) cap must not cut in before ours. */
    if (s->lim.max_header_bytes + 8192 > HTTP_MAX_HEADER_SIZE && s->lim.max_header_bytes < UINT32_MAX / 2)
        http_parser_set_max_header_size((uint32_t)s->lim.max_header_bytes * 2 + 8192);
    return s;
}

/* Splits "HOST:PORT" ("[V6]:PORT", ":PORT") into a socket address. */
static int parse_host_port(const char *hp, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(hp, ':');
    if (!colon) {
        snprintf(err, errlen, "address '%s': want HOST:PORT", hp);
        return -1;
    }
    size_t hl = (size_t)(colon - hp);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "address '%s': host too long", hp);
        return -1;
    }
    memcpy(host, hp, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535) {
        snprintf(err, errlen, "address '%s': bad port", hp);
        return -1;
    }
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        if (uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0) return 0;
    } else {
        const char *h4 = host;
        if (!*h4) h4 = "0.0.0.0";
        else if (strcmp(h4, "localhost") == 0) h4 = "127.0.0.1";
        if (uv_ip4_addr(h4, (int)port, (struct sockaddr_in *)ss) == 0) return 0;
        if (uv_ip6_addr(h4, (int)port, (struct sockaddr_in6 *)ss) == 0) return 0;
    }
    snprintf(err, errlen, "address '%s': '%s' is not an IP address", hp, host);
    return -1;
}

int hs_server_listen(hs_server_t *s, const char *host_port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (s->listening) {
        snprintf(err, errlen, "already listening");
        return -1;
    }
    if (parse_host_port(host_port, &ss, err, errlen) != 0) return -1;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = true;
    int r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, 511, server_on_connection);
    if (r != 0) {
        snprintf(err, errlen, "listen on %s: %s", host_port, uv_strerror(r));
        return -1; /* the listener is closed by hs_server_close */
    }
    struct sockaddr_storage bound;
    int n = sizeof bound;
    char name[64];
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &n) == 0)
        addr_name(&bound, name, sizeof name, &s->port);
    return 0;
}

uint16_t hs_server_port(const hs_server_t *s) { return s->port; }
void hs_server_on_head(hs_server_t *s, hs_head_fn fn) { s->head_fn = fn; }
size_t hs_server_inflight(const hs_server_t *s) { return s->inflight; }

static void server_on_listener_closed(uv_handle_t *h)
{
    hs_server_t *s = h->data;
    s->listener_closed = true;
    hs_server_maybe_done(s);
}

void hs_server_close(hs_server_t *s, void (*done)(void *ud), void *ud)
{
    if (s->closing) return;
    s->closing = true;
    s->done = done;
    s->done_ud = ud;
    if (s->listening) uv_close((uv_handle_t *)&s->listener, server_on_listener_closed);
    for (hs_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->in_flight) c->keep_alive = false;
        else if (!c->writing && c->out_next.len == 0) hs_conn_close(c);
        else c->close_after_write = true;
    }
    hs_server_maybe_done(s);
}
