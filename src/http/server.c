/*
 * server.c — the HTTP/1.1 server both planes use (http.h): libuv for the
 * sockets, http-parser for the bytes.
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
#include "http/http.h"
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

#define HS_READ_CHUNK 65536
#define HS_WRITE_TIMEOUT_MS 60000
#define HS_LINGER_MS 2000
#define HS_DEFAULT_IDLE_TIMEOUT_MS 60000
#define HS_DEFAULT_HEAD_TIMEOUT_MS 10000
#define HS_DEFAULT_BODY_TIMEOUT_MS 30000
#define HS_DEFAULT_MIN_BODY_RATE 1024
#define HS_DEFAULT_MAX_HEADERS 100
#define HS_DEFAULT_MAX_CONNS_PER_ADDR 256
#define HS_ADDR_BUCKETS 1024
/* Bytes read beyond a request in flight before reading pauses. */
#define HS_PIPELINE_MAX (1u << 20)
/* Output a client has not taken before a streaming response gives up. */
#define HS_OUT_MAX (16u << 20)
#define HS_DEFAULT_MAX_HEADER (64u << 10)
#define HS_DEFAULT_MAX_BODY (16u << 20)

/* A header while it is being received: offsets into the connection's arena
 * (which may move while it grows). SIZE_MAX value = no value bytes seen. */
typedef struct hs_hdr_off {
    size_t name, value;
} hs_hdr_off_t;

typedef struct hs_conn hs_conn_t;

/* Open connections from one client address: an IPv4 address, or an IPv6
 * address's /64 (what one client is usually given). Key: family, address. */
typedef struct hs_addr_count {
    uint8_t key[17];
    uint32_t n;
    struct hs_addr_count *next;
} hs_addr_count_t;

struct hs_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening, closing, listener_closed;
    hs_limits_t lim;
    hs_handler_fn handler;
    hs_head_fn head_fn;
    void *ud;
    hs_addr_count_t *addrs[HS_ADDR_BUCKETS];
    hs_conn_t *conns; /* doubly linked */
    size_t nconns, inflight;
    uint16_t port;
    void (*done)(void *ud);
    void *done_ud;
    /* Date header cache. */
    time_t date_sec;
    char date[40];
};

enum { HDR_NONE, HDR_FIELD, HDR_VALUE };

struct hs_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles_open;
    hs_server_t *srv;
    hs_conn_t *prev, *next;

    http_parser parser;
    cm_buf_t in;   /* raw input; [in_off, in.len) not parsed yet */
    size_t in_off;
    cm_buf_t arena; /* url, header names and values, path, query (NUL-terminated) */
    cm_buf_t body;
    hs_hdr_off_t *hoff;
    size_t nhoff, hoff_cap;
    hs_header_t *hdrs;
    size_t hdrs_cap;
    size_t header_bytes;
    int hstate;

    bool msg_started, headers_done, msg_complete;
    bool served_any;            /* a request has been dispatched on it */
    uint64_t head_start_ms;     /* accept, or the current request's first byte */
    uint64_t body_start_ms;     /* when the current request's head ended */
    uint64_t idle_start_ms;     /* when the last response ended */
    /* The obs-fold scan of the current head (see head_scan). */
    bool scan_active, scan_begun, scan_bol;
    int error_status;        /* set by a callback that failed on purpose */
    const char *error_reason;
    char reason_buf[160];    /* for a reason that names the header at fault */

    hs_req_t req;
    bool in_flight, streaming, keep_alive, head;
    bool closing, handles_closed, close_after_write, reading, processing, lingering;
    void (*abort_cb)(hs_req_t *, void *);
    void *abort_ud;

    cm_buf_t out_next, out_busy;
    bool writing;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    hs_addr_count_t *addr; /* counted here while the socket is open; NULL if not */

    char remote[64], local[64]; /* looked up once, at accept */
    uint16_t remote_port, local_port;
};

static http_parser_settings parser_settings;

/* ---- small helpers ------------------------------------------------------ */

const char *hs_req_header(const hs_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

int hs_query_param(const char *query, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg >= kl && strncmp(p, key, kl) == 0 && (seg == kl || p[kl] == '=')) {
            if (seg == kl) {
                if (outlen == 0) return -1;
                out[0] = 0;
                return 1;
            }
            size_t vl = seg - kl - 1;
            if (vl >= outlen) return -1; /* decoded is at most vl bytes */
            return cm_pct_decode(p + kl + 1, vl, out, 0) < 0 ? -1 : 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

void hs_req_remove_header(hs_req_t *r, const char *name)
{
    /* r->headers is the connection's own array (c->hdrs), rebuilt for every
     * request, so compacting it in place is safe. */
    hs_header_t *h = (hs_header_t *)r->headers;
    size_t k = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(h[i].name, name) != 0)
            h[k++] = h[i];
    r->nheaders = k;
}

static const char *status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 451: return "Unavailable For Legal Reasons";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: break;
    }
    const char *s = http_status_str((enum http_status)status);
    return (s && s[0] != '<') ? s : "Unknown";
}

static const char *date_now(hs_server_t *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = now;
    }
    return s->date;
}

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

/* ---- connection lifetime ------------------------------------------------ */

static void conn_process(hs_conn_t *c);
static void conn_start_reading(hs_conn_t *c);
static void conn_flush(hs_conn_t *c);
static void conn_timer_update(hs_conn_t *c);

static void server_maybe_done(hs_server_t *s)
{
    if (!s->closing || s->nconns || (s->listening && !s->listener_closed)) return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    s->done = NULL;
    if (done) done(ud);
    free(s);
}

static void conn_maybe_free(hs_conn_t *c)
{
    if (!c->handles_closed || c->in_flight) return;
    hs_server_t *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    cm_buf_free(&c->in);
    cm_buf_free(&c->arena);
    cm_buf_free(&c->body);
    cm_buf_free(&c->out_next);
    cm_buf_free(&c->out_busy);
    free(c->hoff);
    free(c->hdrs);
    free(c);
    server_maybe_done(s);
}

static void conn_on_handle_closed(uv_handle_t *h)
{
    hs_conn_t *c = h->data;
    if (--c->handles_open == 0) {
        c->handles_closed = true;
        conn_maybe_free(c);
    }
}

/* ---- connections per client address ------------------------------------ */

static void addr_key(const struct sockaddr_storage *ss, uint8_t key[17])
{
    memset(key, 0, 17);
    if (ss->ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[0] = 4;
            memcpy(key + 1, a->s6_addr + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a->s6_addr, 8); /* the /64 */
        }
    }
}

static uint32_t addr_bucket(const uint8_t key[17])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 17; i++) h = (h ^ key[i]) * 16777619u;
    return h % HS_ADDR_BUCKETS;
}

/* Counts a connection from key; NULL (count unchanged) when the address
 * already has its maximum, or when out of memory. */
static hs_addr_count_t *addr_acquire(hs_server_t *s, const uint8_t key[17])
{
    hs_addr_count_t **head = &s->addrs[addr_bucket(key)], *a;
    for (a = *head; a; a = a->next)
        if (memcmp(a->key, key, 17) == 0) break;
    if (a) {
        if (a->n >= s->lim.max_conns_per_addr) return NULL;
        a->n++;
        return a;
    }
    if (s->lim.max_conns_per_addr == 0 || !(a = calloc(1, sizeof *a))) return NULL;
    memcpy(a->key, key, 17);
    a->n = 1;
    a->next = *head;
    *head = a;
    return a;
}

static void addr_release(hs_server_t *s, hs_addr_count_t *a)
{
    if (--a->n) return;
    hs_addr_count_t **pp = &s->addrs[addr_bucket(a->key)];
    while (*pp != a) pp = &(*pp)->next;
    *pp = a->next;
    free(a);
}

/* Closes the socket now. A request in flight is aborted: its abort callback
 * runs, and the connection waits for the handler's (discarded) response. */
static void conn_close(hs_conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->addr) {
        addr_release(c->srv, c->addr);
        c->addr = NULL;
    }
    if (c->in_flight && c->abort_cb) {
        void (*cb)(hs_req_t *, void *) = c->abort_cb;
        c->abort_cb = NULL;
        cb(&c->req, c->abort_ud);
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_on_handle_closed);
}

static void conn_on_timer(uv_timer_t *t)
{
    hs_conn_t *c = t->data;
    if (c->closing) return;
    if (!c->lingering && !c->in_flight && !c->writing && c->msg_started && !c->msg_complete) {
        /* A request that stopped arriving: tell the client, then close. */
        c->close_after_write = true;
        static const char r408[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                   "Content-Length: 0\r\n\r\n";
        cm_buf_append(&c->out_next, r408, sizeof r408 - 1);
        c->msg_started = false;
        conn_flush(c);
        return;
    }
    conn_close(c);
}

/* Arms the timer for the deadline of the connection's current phase. */
static void conn_timer_update(hs_conn_t *c)
{
    if (c->closing || c->lingering) return;
    const hs_limits_t *lim = &c->srv->lim;
    uint64_t now = uv_now(c->srv->loop), deadline;
    if (c->writing) {
        deadline = now + HS_WRITE_TIMEOUT_MS;
    } else if (c->in_flight) {
        uv_timer_stop(&c->timer);
        return;
    } else if (c->headers_done) {
        /* The body: a base allowance, plus time earned by bytes received. */
        deadline = c->body_start_ms + lim->body_timeout_ms +
                   (uint64_t)c->body.len * 1000 / lim->min_body_rate;
    } else if (c->msg_started || !c->served_any) {
        deadline = c->head_start_ms + lim->head_timeout_ms;
    } else {
        deadline = c->idle_start_ms + lim->idle_timeout_ms;
    }
    uv_timer_start(&c->timer, conn_on_timer, deadline > now ? deadline - now : 0, 0);
}

/* ---- output ------------------------------------------------------------- */

/* The answer is out and the connection is to close: stop sending (the
 * client sees the end), discard what it still sends, and close at its EOF
 * or after HS_LINGER_MS (see the top of the file). */
static void conn_linger(hs_conn_t *c)
{
    if (c->lingering) return;
    c->lingering = true;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, NULL) != 0) {
        conn_close(c);
        return;
    }
    if (!c->reading) conn_start_reading(c);
    uv_timer_start(&c->timer, conn_on_timer, HS_LINGER_MS, 0);
}

static void conn_after_output(hs_conn_t *c)
{
    if (c->closing) return;
    if (!c->writing && c->out_next.len == 0 && c->close_after_write) {
        conn_linger(c);
        return;
    }
    conn_timer_update(c);
}

static void conn_on_write(uv_write_t *w, int status)
{
    hs_conn_t *c = w->data;
    c->writing = false;
    c->out_busy.len = 0;
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
}

static void conn_flush(hs_conn_t *c)
{
    if (c->closing || c->writing) return;
    if (c->out_next.len) {
        uv_buf_t b = uv_buf_init(c->out_next.data, (unsigned)c->out_next.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        size_t done = n > 0 ? (size_t)n : 0;
        if (done == c->out_next.len) {
            c->out_next.len = 0;
        } else {
            /* Hand the rest to uv_write from the other buffer. */
            cm_buf_t t = c->out_busy;
            c->out_busy = c->out_next;
            c->out_next = t;
            c->out_next.len = 0;
            b = uv_buf_init(c->out_busy.data + done, (unsigned)(c->out_busy.len - done));
            c->wreq.data = c;
            if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write) != 0) {
                conn_close(c);
                return;
            }
            c->writing = true;
        }
    }
    conn_after_output(c);
}

/* A response the server writes itself (400, 413, 431): the connection
 * closes after it, since the rest of the input cannot be trusted. */
static void conn_send_error(hs_conn_t *c, int status, const char *reason)
{
    char body[320];
    int n = snprintf(body, sizeof body, "%s\n", reason);
    if (n < 0 || (size_t)n >= sizeof body) n = (int)sizeof body - 1;
    cm_buf_printf(&c->out_next,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %d\r\nDate: %s\r\nConnection: close\r\n\r\n",
               status, status_text(status), n, date_now(c->srv));
    cm_buf_append(&c->out_next, body, (size_t)n);
    c->close_after_write = true;
    c->msg_started = false;
    conn_flush(c);
}

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

static int failf(hs_conn_t *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
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
        conn_flush(c);
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
    /* Stop here: the handler runs outside the parser (conn_process). */
    http_parser_pause(p, 1);
    return 0;
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
    conn_timer_update(c);
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
static void conn_process(hs_conn_t *c)
{
    if (c->processing) return;
    c->processing = true;
    while (!c->closing && !c->in_flight && !c->close_after_write) {
        size_t avail = c->in.len - c->in_off;
        if (avail == 0) break;
        c->error_status = 0;
        if (c->scan_active && !head_scan(c, c->in.data + c->in_off, avail)) {
            conn_send_error(c, 400, "a header line starts with whitespace (obsolete line folding)");
            break;
        }
        http_parser_pause(&c->parser, 0);
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in.data + c->in_off, avail);
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
            conn_send_error(c, status, reason);
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
        conn_start_reading(c);
    c->processing = false;
    if (!c->closing) {
        if (c->close_after_write) conn_after_output(c);
        else conn_timer_update(c);
    }
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    hs_conn_t *c = h->data;
    if (c->in_off > 0) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (cm_buf_reserve(&c->in, HS_READ_CHUNK) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void conn_start_reading(hs_conn_t *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) == 0) c->reading = true;
}

static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    hs_conn_t *c = st->data;
    if (nread < 0) {
        /* EOF or error: the client is gone (a half-closed client cannot
         * be told apart from one that left, and is treated the same). */
        conn_close(c);
        return;
    }
    if (nread == 0) return;
    if (c->lingering) {
        c->in_off = c->in.len = 0; /* discarded */
        return;
    }
    c->in.len += (size_t)nread;
    if (c->in_flight || c->close_after_write) {
        if (c->in.len - c->in_off > HS_PIPELINE_MAX) {
            uv_read_stop(st);
            c->reading = false;
        }
        return;
    }
    conn_process(c);
}

/* Called when a response has ended (its last byte is queued). */
static void conn_request_end(hs_conn_t *c)
{
    hs_server_t *s = c->srv;
    c->in_flight = false;
    c->streaming = false;
    c->abort_cb = NULL;
    s->inflight--;
    if (c->closing) {
        conn_maybe_free(c); /* may free c: nothing after this */
        return;
    }
    c->idle_start_ms = uv_now(s->loop);
    if (!c->keep_alive || s->closing) c->close_after_write = true;
    conn_flush(c);
    if (c->closing) return;
    if (!c->reading && !c->close_after_write) conn_start_reading(c);
    conn_process(c);
}

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
    cm_buf_str(o, status_text(status));
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
    cm_buf_str(o, date_now(c->srv));
    cm_buf_str(o, "\r\n");
    if (!c->keep_alive) cm_buf_str(o, "Connection: close\r\n");
    else if (c->req.http_minor == 0) cm_buf_str(o, "Connection: keep-alive\r\n");
    cm_buf_append(o, "\r\n", 2);
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
    conn_request_end(c);
}

void hs_respond_start(hs_req_t *r, int status, const hs_header_t *headers, size_t nheaders)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight || c->streaming) return;
    c->streaming = true;
    if (c->closing) return;
    write_head(c, status, headers, nheaders, true, 0);
    conn_flush(c);
}

int hs_respond_chunk(hs_req_t *r, const void *data, size_t len)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight || !c->streaming || c->closing) return -1;
    if (len == 0 || c->head) return 0;
    if (c->out_next.len + c->out_busy.len > HS_OUT_MAX) {
        /* The client does not read: stop feeding it. */
        conn_close(c);
        return -1;
    }
    if (c->req.http_minor >= 1) cm_buf_printf(&c->out_next, "%zx\r\n", len);
    cm_buf_append(&c->out_next, data, len);
    if (c->req.http_minor >= 1) cm_buf_append(&c->out_next, "\r\n", 2);
    conn_flush(c);
    return c->closing ? -1 : 0;
}

void hs_respond_end(hs_req_t *r)
{
    hs_conn_t *c = req_conn(r);
    if (!c->in_flight || !c->streaming) return;
    if (!c->closing && c->req.http_minor >= 1 && !c->head)
        cm_buf_append(&c->out_next, "0\r\n\r\n", 5);
    conn_request_end(c);
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
        conn_close(c);
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
    addr_key(&ss, key);
    if (s->nconns > s->lim.max_conns || !(c->addr = addr_acquire(s, key))) {
        conn_close(c);
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
    conn_start_reading(c);
    conn_timer_update(c);
}

hs_server_t *hs_server_new(uv_loop_t *loop, const hs_limits_t *lim, hs_handler_fn h, void *ud)
{
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
    hs_server_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->loop = loop;
    s->handler = h;
    s->ud = ud;
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
    server_maybe_done(s);
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
        else if (!c->writing && c->out_next.len == 0) conn_close(c);
        else c->close_after_write = true;
    }
    server_maybe_done(s);
}
