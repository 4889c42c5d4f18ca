/*
 * test_http.c — the HTTP/1.1 server (src/common/http.c) over real loopback
 * sockets: keep-alive, pipelining answered in order (even when the first
 * answer comes later), Content-Length and chunked bodies, the limits it
 * answers itself (400, 413, 431), HTTP/1.0, HEAD, 100-continue, chunked
 * streaming responses, a client that leaves mid-request, and closing.
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
#include <sys/time.h>
#include <unistd.h>

#include "common/http.h"

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
    if (strcmp(r->path, "/echo") == 0) {
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
    hs_limits_t lim = {.max_header_bytes = 8192, .max_body_bytes = 4096};
    server = hs_server_new(&loop, &lim, handler, NULL);
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
    };
    int r = cmocka_run_group_tests(tests, setup, teardown);
    if (!__atomic_load_n(&closed_done, __ATOMIC_SEQ_CST)) {
        fprintf(stderr, "hs_server_close never called its done callback\n");
        return 1;
    }
    return r;
}
