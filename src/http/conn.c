/*
 * conn.c — a connection's lifetime: counted per client address, one timer
 * for the deadline of its current phase, input read into its buffer,
 * output through two buffers (see server.c), lingering close, and freeing
 * once both handles are closed and its request answered.
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

const char *hs_status_text(int status)
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

const char *hs_date_now(hs_server_t *s)
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

void hs_server_maybe_done(hs_server_t *s)
{
    if (!s->closing || s->nconns || (s->listening && !s->listener_closed)) return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    s->done = NULL;
    if (done) done(ud);
    free(s);
}

void hs_conn_maybe_free(hs_conn_t *c)
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
    hs_server_maybe_done(s);
}

static void conn_on_handle_closed(uv_handle_t *h)
{
    hs_conn_t *c = h->data;
    if (--c->handles_open == 0) {
        c->handles_closed = true;
        hs_conn_maybe_free(c);
    }
}

/* ---- connections per client address ------------------------------------ */

void hs_addr_key(const struct sockaddr_storage *ss, uint8_t key[17])
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
hs_addr_count_t *hs_addr_acquire(hs_server_t *s, const uint8_t key[17])
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
void hs_conn_close(hs_conn_t *c)
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
        hs_conn_flush(c);
        return;
    }
    hs_conn_close(c);
}

/* Arms the timer for the deadline of the connection's current phase. */
void hs_conn_timer_update(hs_conn_t *c)
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

/* ---- input ------------------------------------------------------------- */

static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

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

/* What is read is buffered in c->in and handed to the request cycle
 * (server.c) through c->srv->process: this file sits below server.c and
 * does not call it. */
void hs_conn_start_reading(hs_conn_t *c)
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
        hs_conn_close(c);
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
    c->srv->process(c);
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
        hs_conn_close(c);
        return;
    }
    if (!c->reading) hs_conn_start_reading(c);
    uv_timer_start(&c->timer, conn_on_timer, HS_LINGER_MS, 0);
}

void hs_conn_after_output(hs_conn_t *c)
{
    if (c->closing) return;
    if (!c->writing && c->out_next.len == 0 && c->close_after_write) {
        conn_linger(c);
        return;
    }
    hs_conn_timer_update(c);
}

static void conn_on_write(uv_write_t *w, int status)
{
    hs_conn_t *c = w->data;
    c->writing = false;
    c->out_busy.len = 0;
    if (c->closing) return;
    if (status < 0) {
        hs_conn_close(c);
        return;
    }
    hs_conn_flush(c);
}

void hs_conn_flush(hs_conn_t *c)
{
    if (c->closing || c->writing) return;
    if (c->out_next.len) {
        uv_buf_t b = uv_buf_init(c->out_next.data, (unsigned)c->out_next.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            hs_conn_close(c);
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
                hs_conn_close(c);
                return;
            }
            c->writing = true;
        }
    }
    hs_conn_after_output(c);
}

/* A response the server writes itself (400, 413, 431): the connection
 * closes after it, since the rest of the input cannot be trusted. */
void hs_conn_send_error(hs_conn_t *c, int status, const char *reason)
{
    char body[320];
    int n = snprintf(body, sizeof body, "%s\n", reason);
    if (n < 0 || (size_t)n >= sizeof body) n = (int)sizeof body - 1;
    cm_buf_printf(&c->out_next,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %d\r\nDate: %s\r\nConnection: close\r\n\r\n",
               status, hs_status_text(status), n, hs_date_now(c->srv));
    cm_buf_append(&c->out_next, body, (size_t)n);
    c->close_after_write = true;
    c->msg_started = false;
    hs_conn_flush(c);
}
