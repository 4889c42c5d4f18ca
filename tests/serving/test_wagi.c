/*
 * test_wagi.c — the WAGI mapping (src/serving/wagi.c) and routing
 * (src/serving/route.c): the CGI environment a request becomes, how a
 * guest's stdout is read as a CGI response (and when it is refused: 502),
 * Host and path routes, and traffic split arithmetic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/percent.h"
#include "serving/internal.h"
#include "serving/plane.h"

/* ---- CGI response parsing ----------------------------------------------- */

static int parse(const char *text, srv_cgi_response_t *r, char *err, size_t errlen)
{
    static uint8_t buf[1 << 17];
    size_t len = strlen(text);
    memcpy(buf, text, len);
    err[0] = 0;
    return srv_cgi_parse(buf, len, r, err, errlen);
}

static const char *hdr(const srv_cgi_response_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

static void test_cgi_plain(void **state)
{
    (void)state;
    srv_cgi_response_t r;
    char err[256];
    assert_int_equal(parse("Content-Type: text/plain\n\nhello\n", &r, err, sizeof err), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.nheaders, 1);
    assert_string_equal(hdr(&r, "Content-Type"), "text/plain");
    assert_int_equal(r.body_len, 6);
    assert_memory_equal(r.body, "hello\n", 6);
}

static void test_cgi_crlf_status_and_trim(void **state)
{
    (void)state;
    srv_cgi_response_t r;
    char err[256];
    assert_int_equal(parse("Status: 404 Not Found\r\nX-A:   spaced value  \r\n"
                           "Content-Type: text/html\r\n\r\n<p>no</p>",
                           &r, err, sizeof err),
                     0);
    assert_int_equal(r.status, 404);
    /* Status is not passed on as a header. */
    assert_null(hdr(&r, "Status"));
    assert_int_equal(r.nheaders, 2);
    assert_string_equal(hdr(&r, "X-A"), "spaced value");
    assert_int_equal(r.body_len, 9);
    assert_memory_equal(r.body, "<p>no</p>", 9);
}

static void test_cgi_location_redirect(void **state)
{
    (void)state;
    srv_cgi_response_t r;
    char err[256];
    assert_int_equal(parse("Location: https://example.com/\n\n", &r, err, sizeof err), 0);
    assert_int_equal(r.status, 302);
    assert_string_equal(hdr(&r, "Location"), "https://example.com/");
    assert_int_equal(r.body_len, 0);
    /* An explicit Status wins over the implied 302. */
    assert_int_equal(parse("Location: /x\nStatus: 301\n\n", &r, err, sizeof err), 0);
    assert_int_equal(r.status, 301);
}

static void test_cgi_status_only(void **state)
{
    (void)state;
    srv_cgi_response_t r;
    char err[256];
    assert_int_equal(parse("Status: 204\n\n", &r, err, sizeof err), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.nheaders, 0);
}

static void test_cgi_body_keeps_blank_lines(void **state)
{
    (void)state;
    srv_cgi_response_t r;
    char err[256];
    assert_int_equal(parse("A: b\n\nline1\n\nline3: x\n", &r, err, sizeof err), 0);
    assert_int_equal(r.body_len, strlen("line1\n\nline3: x\n"));
    assert_memory_equal(r.body, "line1\n\nline3: x\n", r.body_len);
}

static void expect_malformed(const char *text, const char *what)
{
    srv_cgi_response_t r;
    char err[256];
    if (parse(text, &r, err, sizeof err) == 0)
        fail_msg("accepted %s; expected an error with \"%s\"", text, what);
    if (!strstr(err, what)) fail_msg("message \"%s\" lacks \"%s\"", err, what);
}

static void test_cgi_malformed(void **state)
{
    (void)state;
    expect_malformed("", "empty output");
    expect_malformed("hello world\n", "line 1 has no 'Name:'");
    expect_malformed("Content-Type: text/plain\nhello", "no blank line");
    expect_malformed("Content-Type: text/plain", "no blank line");
    expect_malformed("\nbody", "no CGI header");
    expect_malformed("A: b\nno colon here\n\n", "line 2 has no 'Name:'");
    expect_malformed(": empty name\n\n", "line 1 has no 'Name:'");
    expect_malformed("Bad Name: x\n\n", "bad character in header name");
    expect_malformed("Status: abc\n\n", "is not a code");
    expect_malformed("Status: 99\n\n", "is not a code");
    expect_malformed("Status: 600\n\n", "is not a code");
    expect_malformed("Status: 100 Continue\n\n", "is not a code");
    expect_malformed("Status: 200\nStatus: 404\n\n", "Status given twice");
    /* A CR inside a value would let a guest split the response. */
    expect_malformed("X-A: a\rInjected: 1\n\n", "control character");
    expect_malformed("X-A: a\001b\n\n", "control character");
}

static void test_cgi_limits(void **state)
{
    (void)state;
    /* 101 headers is one too many. */
    char *text = malloc(101 * 16 + 8);
    size_t o = 0;
    for (int i = 0; i < 101; i++) o += (size_t)sprintf(text + o, "X-%03d: v\n", i);
    strcpy(text + o, "\n");
    expect_malformed(text, "more than 100 CGI headers");
    /* 100 is fine. */
    o = 0;
    for (int i = 0; i < 100; i++) o += (size_t)sprintf(text + o, "X-%03d: v\n", i);
    strcpy(text + o, "\n");
    srv_cgi_response_t r;
    char err[256];
    assert_int_equal(parse(text, &r, err, sizeof err), 0);
    assert_int_equal(r.nheaders, 100);
    free(text);
    /* A header section over 64 KiB. */
    size_t big = 70000;
    text = malloc(big + 16);
    memcpy(text, "X-Big: ", 7);
    memset(text + 7, 'a', big);
    strcpy(text + 7 + big, "\n\n");
    expect_malformed(text, "CGI header section longer than");
    free(text);
}

/* ---- the CGI environment ------------------------------------------------ */

static const char *env_get(char **env, uint32_t n, const char *key)
{
    size_t kl = strlen(key);
    const char *found = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=') {
            if (found) fail_msg("%s appears twice", key);
            found = env[i] + kl + 1;
        }
    }
    return found;
}

static void test_env_basic(void **state)
{
    (void)state;
    hs_header_t h[] = {
        {"Host", "hello.default.localhost:8080"},
        {"User-Agent", "curl/8"},
        {"Content-Type", "application/json"},
        {"Content-Length", "7"},
        {"X-Custom-Thing", "one"},
        {"x-custom-thing", "two"},
        {"Cookie", "a=1"},
        {"Cookie", "b=2"},
        {"Proxy", "http://evil:1"},
        {"ce-type", "dev.example"},
    };
    hs_req_t req = {
        .method = "POST",
        .target = "/fn/hello/a%20b?x=1&y=2",
        .path = "/fn/hello/a%20b",
        .query = "x=1&y=2",
        .headers = h,
        .nheaders = sizeof h / sizeof h[0],
        .body = (const uint8_t *)"{\"a\":1}",
        .body_len = 7,
        .remote_addr = "127.0.0.1",
        .remote_port = 5555,
        .local_addr = "127.0.0.1",
        .local_port = 8080,
        .http_minor = 1,
    };
    uint32_t n = 0;
    char **env = srv_cgi_env_new(&req, "/fn/hello", "/a b", &n);
    assert_non_null(env);
    assert_null(env[n]);
    assert_string_equal(env_get(env, n, "REQUEST_METHOD"), "POST");
    assert_string_equal(env_get(env, n, "SCRIPT_NAME"), "/fn/hello");
    assert_string_equal(env_get(env, n, "PATH_INFO"), "/a b");
    assert_string_equal(env_get(env, n, "QUERY_STRING"), "x=1&y=2");
    assert_string_equal(env_get(env, n, "REQUEST_URI"), "/fn/hello/a%20b?x=1&y=2");
    assert_string_equal(env_get(env, n, "CONTENT_TYPE"), "application/json");
    assert_string_equal(env_get(env, n, "CONTENT_LENGTH"), "7");
    assert_string_equal(env_get(env, n, "SERVER_NAME"), "hello.default.localhost");
    assert_string_equal(env_get(env, n, "SERVER_PORT"), "8080");
    assert_string_equal(env_get(env, n, "SERVER_PROTOCOL"), "HTTP/1.1");
    assert_string_equal(env_get(env, n, "REMOTE_ADDR"), "127.0.0.1");
    assert_string_equal(env_get(env, n, "REMOTE_PORT"), "5555");
    assert_string_equal(env_get(env, n, "SERVER_SOFTWARE"), "wasmfn");
    assert_string_equal(env_get(env, n, "GATEWAY_INTERFACE"), "CGI/1.1");
    assert_string_equal(env_get(env, n, "HTTP_HOST"), "hello.default.localhost:8080");
    assert_string_equal(env_get(env, n, "HTTP_USER_AGENT"), "curl/8");
    assert_string_equal(env_get(env, n, "HTTP_X_CUSTOM_THING"), "one, two");
    assert_string_equal(env_get(env, n, "HTTP_COOKIE"), "a=1; b=2");
    assert_string_equal(env_get(env, n, "HTTP_CE_TYPE"), "dev.example");
    /* Never copied: they have their own variables, or are dangerous. */
    assert_null(env_get(env, n, "HTTP_CONTENT_TYPE"));
    assert_null(env_get(env, n, "HTTP_CONTENT_LENGTH"));
    assert_null(env_get(env, n, "HTTP_PROXY"));
    free(env);
}

/* srv_cgi_env_put: replaces a variable, appends into the spare slots,
 * removes; the array stays NULL-terminated (the data plane sets
 * HTTP_TRACEPARENT to the call's span this way). */
static void test_env_put(void **state)
{
    (void)state;
    hs_header_t h[] = {{"traceparent", "bogus"}, {"tracestate", "a=b"}, {"X-A", "1"}};
    hs_req_t req = {.method = "GET", .target = "/", .path = "/", .query = "", .headers = h,
                    .nheaders = 3, .remote_addr = "1.2.3.4", .local_addr = "5.6.7.8"};
    uint32_t n = 0;
    char **env = srv_cgi_env_new(&req, "", "/", &n);
    assert_non_null(env);
    uint32_t n0 = n;
    srv_cgi_env_put(env, &n, "HTTP_TRACEPARENT=00-mine");
    assert_int_equal(n, n0);
    assert_string_equal(env_get(env, n, "HTTP_TRACEPARENT"), "00-mine");
    srv_cgi_env_put(env, &n, "HTTP_TRACESTATE");
    assert_int_equal(n, n0 - 1);
    assert_null(env_get(env, n, "HTTP_TRACESTATE"));
    assert_string_equal(env_get(env, n, "HTTP_X_A"), "1");
    assert_null(env[n]);
    /* Appended twice (SRV_CGI_ENV_SPARE), even with the request's own
     * variables all present. */
    hs_req_t bare = {.method = "GET", .target = "/", .path = "/", .query = "",
                     .remote_addr = "", .local_addr = ""};
    uint32_t m = 0;
    char **e2 = srv_cgi_env_new(&bare, "", "/", &m);
    assert_non_null(e2);
    srv_cgi_env_put(e2, &m, "HTTP_TRACEPARENT=x");
    srv_cgi_env_put(e2, &m, "HTTP_OTHER=y");
    assert_string_equal(env_get(e2, m, "HTTP_TRACEPARENT"), "x");
    assert_string_equal(env_get(e2, m, "HTTP_OTHER"), "y");
    assert_null(e2[m]);
    srv_cgi_env_put(e2, &m, "NOT_THERE"); /* removing what is absent: nothing */
    assert_null(e2[m]);
    free(env);
    free(e2);
}

static void test_env_no_host_no_body(void **state)
{
    (void)state;
    hs_req_t req = {
        .method = "GET",
        .target = "/",
        .path = "/",
        .query = "",
        .headers = NULL,
        .nheaders = 0,
        .remote_addr = "10.0.0.2",
        .local_addr = "10.0.0.1",
        .local_port = 80,
        .http_minor = 0,
    };
    uint32_t n = 0;
    char **env = srv_cgi_env_new(&req, "", "/", &n);
    assert_non_null(env);
    assert_string_equal(env_get(env, n, "SERVER_NAME"), "10.0.0.1");
    assert_string_equal(env_get(env, n, "CONTENT_LENGTH"), "0");
    assert_string_equal(env_get(env, n, "CONTENT_TYPE"), "");
    assert_string_equal(env_get(env, n, "SERVER_PROTOCOL"), "HTTP/1.0");
    assert_string_equal(env_get(env, n, "SCRIPT_NAME"), "");
    free(env);
}

static void test_env_ipv6_host(void **state)
{
    (void)state;
    hs_header_t h[] = {{"Host", "[::1]:9000"}};
    hs_req_t req = {.method = "GET", .target = "/", .path = "/", .query = "",
                    .headers = h, .nheaders = 1, .local_port = 9000, .http_minor = 1};
    uint32_t n = 0;
    char **env = srv_cgi_env_new(&req, "", "/", &n);
    assert_string_equal(env_get(env, n, "SERVER_NAME"), "[::1]");
    free(env);
}

/* Issue 14, item 1: thousands of headers (the server caps them at 100 by
 * default, but the limit is configurable) are grouped by sorting, not by
 * comparing every pair: 20,000 distinct names took the old builder
 * over ten seconds of event-loop time; the order of first occurrence and the
 * joining of repeats are unchanged. */
static void test_env_many_headers(void **state)
{
    (void)state;
    enum { N = 20000 };
    hs_header_t *h = calloc(N + 4, sizeof *h);
    char (*names)[16] = calloc(N, sizeof *names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "X-H%d", i);
        h[i] = (hs_header_t){names[i], "v"};
    }
    h[N] = (hs_header_t){"x_h7", "again"}; /* the CGI name of X-H7 */
    h[N + 1] = (hs_header_t){"Content_Type", "ct"};
    h[N + 2] = (hs_header_t){"Content-Type", "skipped"};
    h[N + 3] = (hs_header_t){"X-H7", "third"};
    hs_req_t req = {.method = "GET", .target = "/", .path = "/", .query = "", .headers = h,
                    .nheaders = N + 4, .remote_addr = "", .local_addr = "", .http_minor = 1};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t n = 0;
    char **env = srv_cgi_env_new(&req, "", "/", &n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    /* A check of the algorithm's order, not a benchmark: pairwise grouping
     * took 13 s for these 20,000 headers, sorting takes milliseconds, and
     * 3 s leaves room for sanitizers on a busy machine. */
    if (ms > 3000) fail_msg("building the environment took %.0f ms: quadratic?", ms);
    assert_non_null(env);
    /* 14 fixed variables, N distinct headers, HTTP_CONTENT_TYPE. */
    assert_int_equal(n, 14 + N + 1);
    assert_string_equal(env[14], "HTTP_X_H0=v");
    assert_string_equal(env[14 + 7], "HTTP_X_H7=v, again, third");
    assert_string_equal(env[14 + N - 1], "HTTP_X_H19999=v");
    assert_string_equal(env[14 + N], "HTTP_CONTENT_TYPE=ct");
    free(env);
    free(names);
    free(h);
}

static void test_percent_decode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(cm_pct_decode("/a%20b%2Fc+d", 12, out, 0), 8);
    assert_string_equal(out, "/a b/c+d");
    assert_int_equal(cm_pct_decode("", 0, out, 0), 0);
    assert_string_equal(out, "");
    assert_int_equal(cm_pct_decode("%e2%82%ac", 9, out, 0), 3);
    assert_string_equal(out, "\xe2\x82\xac");
    assert_int_equal(cm_pct_decode("/%zz", 4, out, 0), -1);
    assert_int_equal(cm_pct_decode("/%2", 3, out, 0), -1);
    assert_int_equal(cm_pct_decode("/%", 2, out, 0), -1);
    assert_int_equal(cm_pct_decode("/a%00b", 6, out, 0), -1);
}

/* ---- routing ------------------------------------------------------------ */

static void test_route_host(void **state)
{
    (void)state;
    char name[64];
    assert_int_equal(srv_route_host("hello.default.localhost", "localhost", name, sizeof name), 0);
    assert_string_equal(name, "hello");
    assert_int_equal(srv_route_host("Hello.Default.LOCALHOST:8080", "localhost", name, sizeof name), 0);
    assert_string_equal(name, "hello");
    assert_int_equal(srv_route_host("api-v2.default.fn.example.com.", "fn.example.com", name,
                                    sizeof name),
                     0);
    assert_string_equal(name, "api-v2");
    /* Not ours. */
    assert_int_equal(srv_route_host("localhost:8080", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host("127.0.0.1:8080", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host(".default.localhost", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host("hello.other.localhost", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host("a.b.default.localhost", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host("hello.default.localhostx", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host("hello.default.xlocalhost", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host("[::1]:80", "localhost", name, sizeof name), -1);
    assert_int_equal(srv_route_host(NULL, "localhost", name, sizeof name), -1);
    /* A name that does not fit the buffer is refused, not cut. */
    char small[4];
    assert_int_equal(srv_route_host("hello.default.localhost", "localhost", small, sizeof small), -1);
}

static void test_route_path(void **state)
{
    (void)state;
    char name[64];
    const char *rest = NULL;
    assert_int_equal(srv_route_path("/fn/echo/a/b", name, sizeof name, &rest), 0);
    assert_string_equal(name, "echo");
    assert_string_equal(rest, "/a/b");
    assert_int_equal(srv_route_path("/fn/echo/", name, sizeof name, &rest), 0);
    assert_string_equal(rest, "/");
    assert_int_equal(srv_route_path("/fn/echo", name, sizeof name, &rest), 0);
    assert_string_equal(name, "echo");
    assert_string_equal(rest, "");
    assert_int_equal(srv_route_path("/fn/", name, sizeof name, &rest), -1);
    assert_int_equal(srv_route_path("/fn//x", name, sizeof name, &rest), -1);
    assert_int_equal(srv_route_path("/fnx/echo", name, sizeof name, &rest), -1);
    assert_int_equal(srv_route_path("/", name, sizeof name, &rest), -1);
}

static void test_name_valid(void **state)
{
    (void)state;
    assert_true(srv_name_valid("hello"));
    assert_true(srv_name_valid("a-b-9"));
    assert_false(srv_name_valid(""));
    assert_false(srv_name_valid("9abc"));
    assert_false(srv_name_valid("Hello"));
    assert_false(srv_name_valid("a_b"));
    assert_false(srv_name_valid("a.b"));
    assert_false(srv_name_valid("ab-"));
    char long_name[70];
    memset(long_name, 'a', 64);
    long_name[64] = 0;
    assert_false(srv_name_valid(long_name));
    long_name[63] = 0;
    assert_true(srv_name_valid(long_name));
}

static void test_split_exact(void **state)
{
    (void)state;
    uint32_t pct[3] = {50, 30, 20};
    int32_t cur[3] = {0};
    /* Every window of 100 consecutive picks holds each route exactly
     * percent times. */
    uint32_t picks[300];
    for (int i = 0; i < 300; i++) picks[i] = srv_split_pick(cur, pct, 3);
    for (int start = 0; start + 100 <= 300; start += 100) {
        uint32_t count[3] = {0};
        for (int i = start; i < start + 100; i++) count[picks[i]]++;
        assert_int_equal(count[0], 50);
        assert_int_equal(count[1], 30);
        assert_int_equal(count[2], 20);
    }
}

static void test_split_even_spacing(void **state)
{
    (void)state;
    /* 50/50 alternates. */
    uint32_t pct2[2] = {50, 50};
    int32_t cur2[2] = {0};
    uint32_t prev = srv_split_pick(cur2, pct2, 2);
    for (int i = 0; i < 20; i++) {
        uint32_t p = srv_split_pick(cur2, pct2, 2);
        assert_int_not_equal(p, prev);
        prev = p;
    }
    /* 90/10: the canary is picked once in every 10, never twice in a row. */
    uint32_t pct[2] = {90, 10};
    int32_t cur[2] = {0};
    int last_canary = -100;
    for (int i = 0; i < 100; i++) {
        if (srv_split_pick(cur, pct, 2) == 1) {
            assert_true(i - last_canary >= 9);
            last_canary = i;
        }
    }
    /* 100/0: never the 0% route. */
    uint32_t pct0[2] = {100, 0};
    int32_t cur0[2] = {0};
    for (int i = 0; i < 50; i++) assert_int_equal(srv_split_pick(cur0, pct0, 2), 0);
}

/* Server-Timing's durations: ms to 3 decimals, the nearest µs, whatever
 * the size (integer digits, not printf). */
static void test_server_timing(void **state)
{
    (void)state;
    srv_call_t c = {0};
    char out[SRV_TIMING_LEN];
    /* Not dispatched: everything so far was queue. */
    c.start_ns = 1000;
    srv_call_server_timing(&c, 1000, out);
    assert_string_equal(out, "queue;dur=0.000, cold;dur=0.000, run;dur=0.000");
    srv_call_server_timing(&c, 1000 + 1499, out);
    assert_string_equal(out, "queue;dur=0.001, cold;dur=0.000, run;dur=0.000");
    srv_call_server_timing(&c, 1000 + 1500, out);
    assert_string_equal(out, "queue;dur=0.002, cold;dur=0.000, run;dur=0.000");
    /* Loaded 2 ms, queued 0.25 ms more, instantiated 12.3456 ms, ran 1234.5675 s. */
    c.load_ns = 2000000;
    c.run_ns = 1000 + 2250000;
    c.cold_ns = 12345600;
    c.guest_ns = 5000000000;
    c.guest_end_ns = c.guest_ns + 1234567500000;
    srv_call_server_timing(&c, c.guest_end_ns, out);
    assert_string_equal(out, "queue;dur=0.250, cold;dur=14.346, run;dur=1234567.500");
    /* The largest durations still fit. */
    c.start_ns = 0;
    c.load_ns = 0;
    c.run_ns = UINT64_MAX;
    c.cold_ns = UINT64_MAX;
    c.guest_ns = 1;
    c.guest_end_ns = UINT64_MAX;
    srv_call_server_timing(&c, UINT64_MAX, out);
    assert_string_equal(out, "queue;dur=18446744073709.552, cold;dur=18446744073709.552, "
                             "run;dur=18446744073709.552");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cgi_plain),
        cmocka_unit_test(test_cgi_crlf_status_and_trim),
        cmocka_unit_test(test_cgi_location_redirect),
        cmocka_unit_test(test_cgi_status_only),
        cmocka_unit_test(test_cgi_body_keeps_blank_lines),
        cmocka_unit_test(test_cgi_malformed),
        cmocka_unit_test(test_cgi_limits),
        cmocka_unit_test(test_env_basic),
        cmocka_unit_test(test_env_no_host_no_body),
        cmocka_unit_test(test_env_ipv6_host),
        cmocka_unit_test(test_env_many_headers),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_route_host),
        cmocka_unit_test(test_route_path),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_env_put),
        cmocka_unit_test(test_split_exact),
        cmocka_unit_test(test_split_even_spacing),
        cmocka_unit_test(test_server_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
