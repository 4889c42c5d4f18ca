/*
 * test_http.c — the HTTP/1.1 server (src/http/server.c) over real loopback
 * sockets: keep-alive, pipelining answered in order (even when the first
 * answer comes later), Content-Length and chunked bodies, the limits it
 * answers itself (400, 413, 431), HTTP/1.0, HEAD, 100-continue, chunked
 * streaming responses, a client that leaves mid-request, and closing; and
 * what a hostile client tries (issue 14): strict parsing where a proxy in
 * front could read a request differently, a 400 that closes the
 * connection, a cap on header fields, a head check that refuses before
 * the body is read, and slow clients held to deadlines and per-address
 * connection caps.
 *
 * The server's loop runs on a thread of its own; the test talks to it with
 * plain blocking sockets, as any client would.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"

static uv_loop_t loop;
static hs_server_t *server;
static uint16_t port;
static pthread_t loop_thread;
static uv_async_t stop_async;
static int aborts;        /* atomic */
static int closed_done;   /* atomic */

/* ---- the server side (loop thread) -------------------------------------- */

typedef struct later {
    uv_timer_t timer;
    hs_req_t *req;
} later_t;

static void later_closed(uv_handle_t *h) { free(h->data); }

static void later_fire(uv_timer_t *t)
{
    later_t *l = t->data;
    hs_respond_text(l->req, 200, "later\n");
    uv_close((uv_handle_t *)t, later_closed);
}

static void on_abort(hs_req_t *r, void *ud)
{
    (void)ud;
    __atomic_add_fetch(&aborts, 1, __ATOMIC_SEQ_CST);
    /* The handler must still end the response; it is discarded. */
    hs_respond_text(r, 200, "too late\n");
}

static void handler(hs_req_t *r, void *ud)
{
    (void)ud;
    if (strcmp(r->path, "/echo") == 0 || strcmp(r->path, "/private") == 0) {
        char *body = NULL;
        int n = asprintf(&body, "%s %s q=%s\n%.*s", r->method, r->target, r->query,
                         (int)r->body_len, (const char *)r->body);
        hs_respond(r, 200, NULL, 0, body, (size_t)n);
        free(body);
    } else if (strcmp(r->path, "/later") == 0) {
        later_t *l = calloc(1, sizeof *l);
        l->req = r;
        uv_timer_init(&loop, &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, later_fire, 100, 0);
    } else if (strcmp(r->path, "/hang") == 0) {
        hs_req_on_abort(r, on_abort, NULL);
    } else if (strcmp(r->path, "/stream") == 0) {
        hs_header_t h = {"Content-Type", "text/plain"};
        hs_respond_start(r, 200, &h, 1);
        hs_respond_chunk(r, "ab", 2);
        hs_respond_chunk(r, "", 0);
        hs_respond_chunk(r, "cde", 3);
        hs_respond_end(r);
    } else if (strcmp(r->path, "/headers") == 0) {
        const char *in = hs_req_header(r, "x-in");
        hs_header_t h[] = {{"X-Got", in ? in : "(none)"},
                           {"Content-Length", "999"}}; /* must be ignored */
        hs_respond(r, 201, h, 2, "ok", 2);
    } else if (strcmp(r->path, "/inflight") == 0) {
        char b[32];
        snprintf(b, sizeof b, "%zu", hs_server_inflight(server));
        hs_respond_text(r, 200, b);
    } else {
        hs_respond_text(r, 404, "nope\n");
    }
}

/* /private/... needs "X-Key: k"; others go on. */
static bool head_check(hs_req_t *r, void *ud)
{
    (void)ud;
    if (strncmp(r->path, "/private", 8) != 0) return true;
    const char *k = hs_req_header(r, "X-Key");
    if (k && strcmp(k, "k") == 0) return true;
    hs_respond_text(r, 401, "no key\n");
    return false;
}

static void on_server_closed(void *ud)
{
    (void)ud;
    __atomic_store_n(&closed_done, 1, __ATOMIC_SEQ_CST);
}

static void on_stop(uv_async_t *a)
{
    hs_server_close(server, on_server_closed, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    /* Short deadlines so that the slow-client tests take well under a
     * second each; min_body_rate 1000 B/s: one byte earns 1 ms. */
    hs_limits_t lim = {.max_header_bytes = 8192,
                       .max_body_bytes = 4096,
                       .max_headers = 20,
                       .head_timeout_ms = 400,
                       .body_timeout_ms = 400,
                       .min_body_rate = 1000,
                       .idle_timeout_ms = 600,
                       .max_conns_per_addr = 16};
    server = hs_server_new(&loop, &lim, handler, NULL);
    hs_server_on_head(server, head_check);
    char err[256];
    if (hs_server_listen(server, "127.0.0.1:0", err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    port = hs_server_port(server);
    uv_async_init(&loop, &stop_async, on_stop);
    pthread_create(&loop_thread, NULL, loop_main, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(loop_thread, NULL);
    uv_loop_close(&loop);
    return 0;
}

/* ---- the client side (test thread) -------------------------------------- */

static int client_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) fail_msg("connect failed");
    return fd;
}

/* A connection from another loopback address (127.0.0.0/8 is all ours). */
static int client_connect_from(const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in b = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &b.sin_addr);
    if (bind(fd, (struct sockaddr *)&b, sizeof b) != 0) fail_msg("bind %s failed", src);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) fail_msg("connect failed");
    return fd;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits up to timeout_ms for the server to close fd, appending what it
 * sends to out (NUL-terminated, outlen bytes). Returns the milliseconds
 * waited until the close, or -1 if the connection is still open. */
static double wait_closed(int fd, int timeout_ms, char *out, size_t outlen)
{
    double t0 = now_ms();
    size_t len = strlen(out);
    for (;;) {
        int left = timeout_ms - (int)(now_ms() - t0);
        if (left <= 0) return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, left) <= 0) continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return now_ms() - t0;
        size_t k = (size_t)n < outlen - 1 - len ? (size_t)n : outlen - 1 - len;
        memcpy(out + len, buf, k);
        out[len += k] = 0;
    }
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) return;
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes the connection (or 5 s pass). */
static char *read_all(int fd, size_t *len_out)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

/* Sends raw bytes on a new connection and returns everything the server
 * sent back before closing. */
static char *exchange(const char *raw)
{
    int fd = client_connect();
    send_all(fd, raw, strlen(raw));
    char *out = read_all(fd, NULL);
    close(fd);
    return out;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_keepalive_and_pipelining(void **state)
{
    (void)state;
    /* Three requests in one write: the first is answered 100 ms later, yet
     * the answers come back in request order. */
    char *out = exchange("GET /later HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /echo?a=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                         "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                         "Connection: close\r\n\r\nhello");
    const char *a = strstr(out, "later\n");
    const char *b = strstr(out, "GET /echo?a=1 q=a=1\n");
    const char *c = strstr(out, "POST /echo q=\nhello");
    if (!a || !b || !c || !(a < b && b < c)) fail_msg("wrong or out of order:\n%s", out);
    assert_int_equal(count(out, "HTTP/1.1 200 OK\r\n"), 3);
    /* Only the last one announces the close. */
    assert_int_equal(count(out, "Connection: close\r\n"), 1);
    assert_non_null(strstr(out, "Date: "));
    free(out);
}

static void test_chunked_request_body(void **state)
{
    (void)state;
    char *out = exchange("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n"
                         "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
    if (!strstr(out, "Content-Length: 21\r\n") || !strstr(out, "\r\n\r\nPOST /echo q=\nabcdefg"))
        fail_msg("got:\n%s", out);
    free(out);
}

static void test_bad_request(void **state)
{
    (void)state;
    char *out = exchange("GARBAGE\r\n\r\n");
    if (strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) != 0 || !strstr(out, "Connection: close"))
        fail_msg("got:\n%s", out);
    free(out);
    out = exchange("GET /echo HTTP/1.1\r\n\r\n");
    if (strncmp(out, "HTTP/1.1 400 ", 13) != 0 || !strstr(out, "missing Host header"))
        fail_msg("got:\n%s", out);
    free(out);
    out = exchange("GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
    if (strncmp(out, "HTTP/1.1 400 ", 13) != 0) fail_msg("got:\n%s", out);
    free(out);
}

static void test_limits(void **state)
{
    (void)state;
    /* Headers over the 8 KiB limit: 431. */
    size_t big = 9000;
    char *req = malloc(big + 100);
    int n = sprintf(req, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + n, 'a', big);
    strcpy(req + n + big, "\r\n\r\n");
    char *out = exchange(req);
    if (strncmp(out, "HTTP/1.1 431 ", 13) != 0) fail_msg("got:\n%.200s", out);
    free(out);
    free(req);
    /* A declared body over the 4 KiB limit: 413 before any body is read. */
    out = exchange("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    if (strncmp(out, "HTTP/1.1 413 ", 13) != 0) fail_msg("got:\n%s", out);
    free(out);
    /* A chunked body that grows past it: 413 too. */
    req = malloc(8000);
    n = sprintf(req, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1000\r\n");
    memset(req + n, 'x', 4096);
    n += 4096;
    n += sprintf(req + n, "\r\n1\r\ny\r\n0\r\n\r\n");
    out = exchange(req);
    if (strncmp(out, "HTTP/1.1 413 ", 13) != 0) fail_msg("got:\n%.200s", out);
    free(out);
    free(req);
    /* Exactly at the limit is fine. */
    req = malloc(8000);
    n = sprintf(req, "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 4096\r\n\r\n");
    memset(req + n, 'z', 4096);
    req[n + 4096] = 0;
    out = exchange(req);
    if (strncmp(out, "HTTP/1.1 200 ", 13) != 0) fail_msg("got:\n%.200s", out);
    free(out);
    free(req);
}

static void test_http10_head_headers(void **state)
{
    (void)state;
    /* HTTP/1.0 without keep-alive: answered as 1.0 and closed. */
    char *out = exchange("GET /echo HTTP/1.0\r\n\r\n");
    if (strncmp(out, "HTTP/1.0 200 OK\r\n", 17) != 0 || !strstr(out, "Connection: close"))
        fail_msg("got:\n%s", out);
    free(out);
    /* HEAD: the length of the body that GET would send, and no body. */
    out = exchange("HEAD /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (!strstr(out, "Content-Length: 14\r\n") || strstr(out, "HEAD /echo q="))
        fail_msg("got:\n%s", out);
    free(out);
    /* Handler headers are written as given, except framing ones. */
    out = exchange("GET /headers HTTP/1.1\r\nHost: t\r\nX-In: v1\r\nConnection: close\r\n\r\n");
    if (strncmp(out, "HTTP/1.1 201 Created\r\n", 22) != 0 || !strstr(out, "X-Got: v1\r\n") ||
        strstr(out, "999") || !strstr(out, "Content-Length: 2\r\n"))
        fail_msg("got:\n%s", out);
    free(out);
}

static void test_expect_continue(void **state)
{
    (void)state;
    int fd = client_connect();
    const char *head = "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                       "Content-Length: 3\r\nConnection: close\r\n\r\n";
    send_all(fd, head, strlen(head));
    char buf[128];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = 0;
    if (strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) fail_msg("got:\n%s", buf);
    send_all(fd, "xyz", 3);
    char *out = read_all(fd, NULL);
    close(fd);
    if (!strstr(out, "HTTP/1.1 200 OK") || !strstr(out, "POST /echo q=\nxyz")) fail_msg("got:\n%s", out);
    free(out);
}

static void test_streaming(void **state)
{
    (void)state;
    char *out = exchange("GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (!strstr(out, "Transfer-Encoding: chunked\r\n") ||
        !strstr(out, "\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"))
        fail_msg("got:\n%s", out);
    free(out);
}

static void test_client_leaves_mid_request(void **state)
{
    (void)state;
    int before = __atomic_load_n(&aborts, __ATOMIC_SEQ_CST);
    int fd = client_connect();
    const char *req = "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, req, strlen(req));
    usleep(100 * 1000);
    close(fd);
    for (int i = 0; i < 200 && __atomic_load_n(&aborts, __ATOMIC_SEQ_CST) == before; i++)
        usleep(10 * 1000);
    assert_int_equal(__atomic_load_n(&aborts, __ATOMIC_SEQ_CST), before + 1);
    /* Nothing is left in flight but the request asking. */
    char *out = exchange("GET /inflight HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (!strstr(out, "\r\n\r\n1")) fail_msg("got:\n%s", out);
    free(out);
    /* A request cut off before its end is simply dropped. */
    fd = client_connect();
    send_all(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc", 56);
    close(fd);
    out = exchange("GET /inflight HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (!strstr(out, "\r\n\r\n1")) fail_msg("got:\n%s", out);
    free(out);
}

static void test_slow_client_bytewise(void **state)
{
    (void)state;
    /* A request arriving one byte at a time is parsed the same. */
    int fd = client_connect();
    const char *req = "GET /echo?slow=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for (const char *p = req; *p; p++) {
        send_all(fd, p, 1);
        usleep(500);
    }
    char *out = read_all(fd, NULL);
    close(fd);
    if (!strstr(out, "GET /echo?slow=1 q=slow=1\n")) fail_msg("got:\n%s", out);
    free(out);
}

/* A request the server refuses: `status` first, Connection: close, the
 * reason in the body, and the request pipelined behind it is not served
 * (the connection closes after the answer). */
static void expect_refused(const char *raw, const char *status, const char *reason)
{
    char *req = NULL;
    if (asprintf(&req, "%sGET /echo?after=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 raw) < 0)
        fail();
    char *out = exchange(req);
    if (strncmp(out, status, strlen(status)) != 0 || !strstr(out, "Connection: close\r\n") ||
        strstr(out, "after=1") || (reason && !strstr(out, reason)))
        fail_msg("request:\n%s\nwant %s (%s), got:\n%s", raw, status, reason ? reason : "", out);
    free(out);
    free(req);
}

/* Issue 14, item 6: what http-parser lets through but RFC 9112 forbids,
 * and a proxy in front may read differently (request smuggling). */
static void test_strict_parsing(void **state)
{
    (void)state;
    expect_refused("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                   "HTTP/1.1 400 ", "before its colon");
    expect_refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length : 3\r\n\r\nabc",
                   "HTTP/1.1 400 ", "header 'Content-Length ': whitespace");
    expect_refused("GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ",
                   "more than one Host header");
    expect_refused("GET /echo HTTP/1.1\r\nHost: t\r\nFoo Bar: x\r\n\r\n", "HTTP/1.1 400 ",
                   "header 'Foo Bar'");
    expect_refused("GET /echo HTTP/2.0\r\nHost: t\r\n\r\n", "HTTP/1.1 505 ", "HTTP/2.0 is not supported");
    expect_refused("GET /echo HTTP/9.9\r\nHost: t\r\n\r\n", "HTTP/1.1 505 ", "HTTP/9.9");
    expect_refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                   "HTTP/1.1 400 ", NULL);
    expect_refused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                   "HTTP/1.1 400 ", NULL);
    expect_refused("GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", "HTTP/1.1 400 ",
                   "obsolete line folding");
    expect_refused("GET /echo HTTP/1.1\r\nHost: t\r\nX-A:\r\n\tb\r\n\r\n", "HTTP/1.1 400 ",
                   "obsolete line folding");
    expect_refused("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
                   "HTTP/1.1 400 ", "only chunked");
    expect_refused("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                   "HTTP/1.1 501 ", "only chunked");
    /* Still fine: every tchar in a name, HTTP/1.0, leading empty lines. */
    char *out = exchange("\r\nGET /echo HTTP/1.1\r\nHost: t\r\nX_a.b~c!#$%&'*+^`|: v\r\n"
                         "Connection: close\r\n\r\n");
    if (strncmp(out, "HTTP/1.1 200 ", 13) != 0) fail_msg("got:\n%s", out);
    free(out);
}

/* Issue 14, item 7: a malformed escape in the path is a 400 that closes
 * the connection; nothing pipelined behind it is served. */
static void test_bad_escape_closes(void **state)
{
    (void)state;
    expect_refused("GET /echo/%zz HTTP/1.1\r\nHost: t\r\n\r\n", "HTTP/1.1 400 ",
                   "bad percent-encoding");
    expect_refused("GET /echo/a%4 HTTP/1.1\r\nHost: t\r\n\r\n", "HTTP/1.1 400 ", NULL);
    expect_refused("GET /echo/%00 HTTP/1.1\r\nHost: t\r\n\r\n", "HTTP/1.1 400 ", NULL);
    char *out = exchange("GET /echo/%41%2f?q=%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (strncmp(out, "HTTP/1.1 404 ", 13) != 0) fail_msg("got:\n%s", out); /* well-formed */
    free(out);
}

/* Issue 14, item 1: more header fields than max_headers (20 here) is a
 * 431; exactly the maximum is served. */
static void test_header_count(void **state)
{
    (void)state;
    char req[2048];
    int n = sprintf(req, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (int i = 0; i < 18; i++) n += sprintf(req + n, "X-H%d: %d\r\n", i, i);
    strcpy(req + n, "\r\n");
    char *out = exchange(req); /* 20 fields */
    if (strncmp(out, "HTTP/1.1 200 ", 13) != 0) fail_msg("got:\n%s", out);
    free(out);
    sprintf(req + n, "X-Last: x\r\n\r\n");
    out = exchange(req); /* 21 */
    if (strncmp(out, "HTTP/1.1 431 ", 13) != 0 || !strstr(out, "more than 20 request headers") ||
        !strstr(out, "Connection: close"))
        fail_msg("got:\n%s", out);
    free(out);
}

/* Issue 14, item 4: the head check refuses before the body is read: the
 * 401 comes while the client has sent only the head, the connection then
 * closes, and 100 Continue is never sent. */
static void test_head_check(void **state)
{
    (void)state;
    const char *heads[] = {
        "POST /private HTTP/1.1\r\nHost: t\r\nContent-Length: 4000\r\n\r\n",
        "POST /private HTTP/1.1\r\nHost: t\r\nContent-Length: 200000000\r\n\r\n",
        "POST /private HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /private HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        int fd = client_connect();
        send_all(fd, heads[i], strlen(heads[i]));
        char out[2048] = "";
        double ms = wait_closed(fd, 3000, out, sizeof out);
        close(fd);
        if (ms < 0 || strncmp(out, "HTTP/1.1 401 ", 13) != 0 || !strstr(out, "no key") ||
            !strstr(out, "Connection: close") || strstr(out, "100 Continue"))
            fail_msg("%s\ngot (%s):\n%s", heads[i], ms < 0 ? "still open" : "closed", out);
    }
    /* With the key, the body is read and the handler runs. */
    char *out = exchange("POST /private HTTP/1.1\r\nHost: t\r\nX-Key: k\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\nabc");
    if (!strstr(out, "HTTP/1.1 200 OK") || !strstr(out, "POST /private q=\nabc")) fail_msg("got:\n%s", out);
    free(out);
}

/* Issue 14, item 5: deadlines that trickled bytes do not push back. */
static void test_slow_clients(void **state)
{
    (void)state;
    /* A head trickled a byte per 50 ms: 408 and closed once head_timeout
     * (400 ms) has passed, while other clients are served. */
    int fd = client_connect();
    const char *start = "GET /echo HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    send_all(fd, start, strlen(start));
    double t0 = now_ms(), closed_at = -1;
    char out[4096] = "";
    for (int i = 0; i < 60 && closed_at < 0; i++) {
        send_all(fd, "a", 1);
        if (i == 3) {
            char *o = exchange("GET /echo?other=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            if (!strstr(o, "other=1")) fail_msg("another client was not served:\n%s", o);
            free(o);
        }
        if (wait_closed(fd, 50, out, sizeof out) >= 0) closed_at = now_ms() - t0;
    }
    close(fd);
    if (closed_at < 0 || closed_at > 1500 || strncmp(out, "HTTP/1.1 408 ", 13) != 0)
        fail_msg("trickled head: closed after %.0f ms, got:\n%s", closed_at, out);

    /* A connection that sends nothing is closed after head_timeout. */
    fd = client_connect();
    out[0] = 0;
    double ms = wait_closed(fd, 3000, out, sizeof out);
    close(fd);
    if (ms < 0 || ms > 1500) fail_msg("silent connection: closed after %.0f ms", ms);

    /* A body trickled a byte per 50 ms (20 B/s, under min_body_rate): 408. */
    fd = client_connect();
    const char *head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n";
    send_all(fd, head, strlen(head));
    t0 = now_ms();
    closed_at = -1;
    out[0] = 0;
    for (int i = 0; i < 60 && closed_at < 0; i++) {
        send_all(fd, "b", 1);
        if (wait_closed(fd, 50, out, sizeof out) >= 0) closed_at = now_ms() - t0;
    }
    close(fd);
    if (closed_at < 0 || closed_at > 1500 || strncmp(out, "HTTP/1.1 408 ", 13) != 0)
        fail_msg("trickled body: closed after %.0f ms, got:\n%s", closed_at, out);

    /* A body that is slow but keeps the rate (100 bytes per 50 ms, 2 kB/s)
     * is taken, though it takes longer than body_timeout alone. */
    fd = client_connect();
    head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1200\r\nConnection: close\r\n\r\n";
    send_all(fd, head, strlen(head));
    char chunk[100];
    memset(chunk, 'c', sizeof chunk);
    for (int i = 0; i < 12; i++) {
        send_all(fd, chunk, sizeof chunk);
        usleep(50 * 1000);
    }
    out[0] = 0;
    ms = wait_closed(fd, 3000, out, sizeof out);
    close(fd);
    if (strncmp(out, "HTTP/1.1 200 ", 13) != 0) fail_msg("slow body at the rate:\n%.300s", out);

    /* An idle keep-alive connection fed empty lines is still idle: closed
     * after idle_timeout (600 ms) counted from the end of the response. */
    fd = client_connect();
    const char *req = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, req, strlen(req));
    t0 = now_ms();
    closed_at = -1;
    out[0] = 0;
    for (int i = 0; i < 40 && closed_at < 0; i++) {
        if (i > 0) send_all(fd, "\r\n", 2);
        if (wait_closed(fd, 100, out, sizeof out) >= 0) closed_at = now_ms() - t0;
    }
    close(fd);
    if (closed_at < 0 || closed_at > 2000 || !strstr(out, "HTTP/1.1 200 "))
        fail_msg("idle keep-alive: closed after %.0f ms, got:\n%s", closed_at, out);
}

/* Issue 14, item 5: at most max_conns_per_addr (16 here) connections from
 * one address; the next is closed at once, other addresses are served. */
static void test_conns_per_addr(void **state)
{
    (void)state;
    int fds[16];
    for (int i = 0; i < 16; i++) fds[i] = client_connect_from("127.0.0.3");
    /* Each of the 16 is answered (so all are accepted and counted). */
    for (int i = 0; i < 16; i++) {
        const char *req = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
        send_all(fds[i], req, strlen(req));
        char buf[512];
        ssize_t n = recv(fds[i], buf, sizeof buf - 1, 0);
        if (n <= 0) fail_msg("connection %d of 16 was refused", i);
    }
    int extra = client_connect_from("127.0.0.3");
    char out[512] = "";
    double ms = wait_closed(extra, 300, out, sizeof out);
    close(extra);
    if (ms < 0 || out[0]) fail_msg("the 17th connection was not closed at once (%s)", out);
    int other = client_connect_from("127.0.0.2");
    const char *req = "GET /echo?other=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    send_all(other, req, strlen(req));
    char *o = read_all(other, NULL);
    close(other);
    if (!strstr(o, "other=2")) fail_msg("another address was not served:\n%s", o);
    free(o);
    for (int i = 0; i < 16; i++) close(fds[i]);
    /* Once they are gone, the address may connect again. */
    usleep(100 * 1000);
    int again = client_connect_from("127.0.0.3");
    send_all(again, req, strlen(req));
    o = read_all(again, NULL);
    close(again);
    if (!strstr(o, "other=2")) fail_msg("the address was not let back in:\n%s", o);
    free(o);
}

/* Query parameters: exact key match (not a prefix), decoding, bare keys,
 * and malformed or oversized values refused rather than cut. */
static void test_query_param(void **state)
{
    (void)state;
    char v[8];
    assert_int_equal(hs_query_param("a=1&tail=25&follow=1", "tail", v, sizeof v), 1);
    assert_string_equal(v, "25");
    assert_int_equal(hs_query_param("tailx=9&tail=3", "tail", v, sizeof v), 1);
    assert_string_equal(v, "3");
    assert_int_equal(hs_query_param("since=1h%2B", "since", v, sizeof v), 1);
    assert_string_equal(v, "1h+");
    assert_int_equal(hs_query_param("a=1&follow", "follow", v, sizeof v), 1);
    assert_string_equal(v, "");
    assert_int_equal(hs_query_param("a=1", "tail", v, sizeof v), 0);
    assert_int_equal(hs_query_param("", "tail", v, sizeof v), 0);
    assert_int_equal(hs_query_param("tail=%zz", "tail", v, sizeof v), -1);
    assert_int_equal(hs_query_param("tail=%00", "tail", v, sizeof v), -1);
    assert_int_equal(hs_query_param("tail=123456789", "tail", v, sizeof v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_keepalive_and_pipelining),
        cmocka_unit_test(test_chunked_request_body),
        cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_http10_head_headers),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_client_leaves_mid_request),
        cmocka_unit_test(test_slow_client_bytewise),
        cmocka_unit_test(test_strict_parsing),
        cmocka_unit_test(test_bad_escape_closes),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_head_check),
        cmocka_unit_test(test_slow_clients),
        cmocka_unit_test(test_conns_per_addr),
    };
    int r = cmocka_run_group_tests(tests, setup, teardown);
    if (!__atomic_load_n(&closed_done, __ATOMIC_SEQ_CST)) {
        fprintf(stderr, "hs_server_close never called its done callback\n");
        return 1;
    }
    return r;
}
