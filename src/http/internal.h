/*
 * internal.h — the server's insides (hs_server, hs_conn and their limits),
 * shared by server.c, conn.c, parse.c and respond.c. Private to src/http/.
 */
#ifndef WASMFN_HTTP_INTERNAL_H
#define WASMFN_HTTP_INTERNAL_H

#include <http_parser.h>

#include "common/buf.h"
#include "http/http.h"

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
    /* The request cycle (server.c, hs_conn_process): conn.c calls it when
     * input arrives and respond.c when a response ends. A pointer because
     * those files are below server.c (the files form a DAG). */
    void (*process)(hs_conn_t *c);
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

/* parse.c: the callbacks every connection's parser runs. */
const http_parser_settings *hs_parser_settings(void);

/* server.c */

void hs_conn_process(hs_conn_t *c);

/* conn.c */
void hs_conn_start_reading(hs_conn_t *c);
const char *hs_status_text(int status);
const char *hs_date_now(hs_server_t *s);
void hs_server_maybe_done(hs_server_t *s);
void hs_conn_maybe_free(hs_conn_t *c);
void hs_addr_key(const struct sockaddr_storage *ss, uint8_t key[17]);
hs_addr_count_t *hs_addr_acquire(hs_server_t *s, const uint8_t key[17]);
void hs_conn_close(hs_conn_t *c);
void hs_conn_timer_update(hs_conn_t *c);
void hs_conn_after_output(hs_conn_t *c);
void hs_conn_flush(hs_conn_t *c);
void hs_conn_send_error(hs_conn_t *c, int status, const char *reason);

#endif
