/*
 * http.h — a small HTTP/1.1 server on libuv, shared by the data plane and
 * the admin API. Prefix: hs_.
 *
 * Keep-alive and pipelined requests (answered in order), Content-Length and
 * chunked request bodies, limits on header and body size (answered by the
 * server itself with 431 and 413), chunked streaming responses. Parsing is
 * strict (RFC 9112): what a proxy in front could read differently (a space
 * before a header's colon, a folded line, Content-Length with
 * Transfer-Encoding, two Host headers, ...) is a 400, and every 400 the
 * server sends closes the connection. Slow clients are bounded by
 * deadlines, and connections per client address are capped (hs_limits_t).
 * All calls
 * happen on the loop thread; a handler may answer later (after work on
 * another thread completes) by calling hs_respond from the loop thread.
 */
#ifndef WASMFN_HTTP_HTTP_H
#define WASMFN_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct hs_server hs_server_t;
typedef struct hs_req hs_req_t;

typedef struct hs_header {
    const char *name, *value;
} hs_header_t;

/* A parsed request. Valid from the handler call until its response ends. */
struct hs_req {
    const char *method;         /* "GET" */
    const char *target;         /* as sent: "/fn/echo/a%20b?x=1" */
    const char *path;           /* target before '?', still percent-encoded */
    const char *query;          /* after '?', "" if none */
    const hs_header_t *headers; /* in the order received, names as sent */
    size_t nheaders;
    const uint8_t *body;        /* whole body (de-chunked) */
    size_t body_len;
    const char *remote_addr;    /* "127.0.0.1" */
    uint16_t remote_port;
    const char *local_addr;
    uint16_t local_port;
    int http_minor;             /* HTTP/1.0 or HTTP/1.1 */
    void *user;                 /* free for the handler */
};

/* First header with this name (case-insensitive), or NULL. */
const char *hs_req_header(const hs_req_t *r, const char *name);
/* Drops every header with this name from the request (case-insensitive). */
void hs_req_remove_header(hs_req_t *r, const char *name);

/* Called once per request. The handler must end the response exactly once
 * (hs_respond, or hs_respond_start ... hs_respond_end), now or later. */
typedef void (*hs_handler_fn)(hs_req_t *req, void *ud);

/* What the server allows a client; 0 in any field means its default. What
 * a client gets beyond each limit is documented in docs/serving.md. */
typedef struct hs_limits {
    size_t max_header_bytes;     /* default 64 KiB: larger -> 431 */
    size_t max_body_bytes;       /* default 16 MiB: larger -> 413 */
    uint32_t max_headers;        /* default 100 header fields: more -> 431 */
    /* A request's head (request line and headers) must be complete within
     * this much of its first byte (of the accept, for a connection's first
     * request): default 10 s, then 408 and close (a connection that sent
     * nothing is just closed). Trickling bytes does not extend it. */
    uint32_t head_timeout_ms;
    /* A body must arrive within body_timeout_ms (default 30 s) plus one
     * second per min_body_rate bytes received (default 1024 B/s): a slow
     * upload may take long, one that trickles cannot. Beyond: 408, close. */
    uint32_t body_timeout_ms;
    uint32_t min_body_rate;
    uint32_t idle_timeout_ms;    /* default 60 s: a keep-alive connection between requests */
    /* Connections open at once (default: no cap) and from one client
     * address (an IPv6 client's /64; default 256). Beyond either, a new
     * connection is closed at once, before anything is read. HS_NO_LIMIT
     * lifts a cap. */
    uint32_t max_conns;
    uint32_t max_conns_per_addr;
} hs_limits_t;

#define HS_NO_LIMIT UINT32_MAX

/* lim may be NULL for the defaults. */
hs_server_t *hs_server_new(uv_loop_t *loop, const hs_limits_t *lim, hs_handler_fn h, void *ud);
/* Listens on "HOST:PORT" (port 0 picks one; see hs_server_port). */
int hs_server_listen(hs_server_t *s, const char *host_port, char *err, size_t errlen);
uint16_t hs_server_port(const hs_server_t *s);
/* Called when a request's head is complete (hs_req_t has everything but
 * the body), before any byte of its body is read or 100 Continue is sent.
 * Return true to go on: the body is read, then the handler runs. To
 * refuse, answer with hs_respond (or hs_respond_json, ...) and return
 * false: the body is never read (no memory is spent on it) and the
 * connection closes after the answer. Returning false without answering
 * gets the client a 500. */
typedef bool (*hs_head_fn)(hs_req_t *req, void *ud);
/* Installs the head check (ud is the server's); NULL removes it. */
void hs_server_on_head(hs_server_t *s, hs_head_fn fn);
/* Requests whose response has not ended. */
size_t hs_server_inflight(const hs_server_t *s);
/* Stops accepting; idle connections close now, busy ones after their
 * current response; done(ud) runs once every connection is closed. The
 * server is freed after done returns. */
void hs_server_close(hs_server_t *s, void (*done)(void *ud), void *ud);

/* Ends the response in one go. Adds Content-Length, Date and (for
 * HTTP/1.1 keep-alive) nothing else; headers are written as given. */
void hs_respond(hs_req_t *r, int status, const hs_header_t *headers, size_t nheaders,
                const void *body, size_t len);
/* Streams a chunked response: start, any number of chunks, end. */
void hs_respond_start(hs_req_t *r, int status, const hs_header_t *headers, size_t nheaders);
/* Returns -1 when the client has gone (stop producing). */
int hs_respond_chunk(hs_req_t *r, const void *data, size_t len);
void hs_respond_end(hs_req_t *r);

/* JSON error answers (errors.c), the body {"error":"MESSAGE"} from
 * common/jsonerr.h. hs_respond_error sends msg with Content-Type
 * application/json and the nextra headers after it; hs_respond_errorf
 * formats the message (cut at 1 KiB); hs_respond_method_not_allowed is the
 * 405 with its Allow header (allow: "GET, HEAD"). */
void hs_respond_error(hs_req_t *r, int status, const hs_header_t *extra, size_t nextra,
                      const char *msg);
void hs_respond_errorf(hs_req_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hs_respond_method_not_allowed(hs_req_t *r, const char *allow);

/* cb runs if the client disconnects before the response has ended; the
 * handler must still end the response (it is then discarded). */
void hs_req_on_abort(hs_req_t *r, void (*cb)(hs_req_t *r, void *ud), void *ud);


/* Finds key in a query string ("a=1&b=2") and percent-decodes its value
 * into out ('+' stays '+'). Returns 1 when found (a bare "key" gives ""), 0
 * when absent, -1 when the value is malformed or does not fit in outlen. */
int hs_query_param(const char *query, const char *key, char *out, size_t outlen);

/* Convenience: a JSON or text body with its Content-Type. */
void hs_respond_json(hs_req_t *r, int status, const char *json);
void hs_respond_text(hs_req_t *r, int status, const char *text);

#endif
