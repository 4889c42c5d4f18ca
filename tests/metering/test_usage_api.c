/*
 * test_usage_api.c — GET /v1/usage's query handling (src/api/usage.c):
 * the function filter, since/until as RFC 3339 (percent-encoded or not)
 * and as durations ago, step buckets, the 400 answers naming the bad
 * parameter, and 503 when metering is off. Then the real handler over
 * HTTP on a loopback port (hs_ server), to see status and Content-Type.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "api/usage.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define MINUTE (60 * SEC)
#define MIB (1024ULL * 1024ULL)
#define T0 (1714564800LL * SEC) /* 2024-05-01T12:00:00Z */

typedef struct fx {
    char dir[256], db[300];
    mtr_t *m;
} fx_t;

static void rec(mtr_t *m, const char *fn, int64_t start, int64_t dur)
{
    mtr_invocation_t inv = {.function = fn, .revision = "r1", .start_ns = start,
                            .duration_ns = dur, .memory_limit_bytes = 128 * MIB};
    mtr_record(m, &inv);
}

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    const char *base = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/wasmfn-usage-XXXXXX", base && *base ? base : P_tmpdir);
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->db, sizeof f->db, "%s/wasmfn.db", f->dir);
    mtr_config_t c;
    mtr_config_init(&c);
    c.db_path = f->db;
    f->m = mtr_open(&c, NULL, 0);
    if (!f->m) return -1;
    /* "hello": 1 ms at T0, 2 ms at T0+1min, 4 ms at T0+1h; "world": 8 ms at T0 */
    rec(f->m, "hello", T0, MS);
    rec(f->m, "hello", T0 + MINUTE, 2 * MS);
    rec(f->m, "hello", T0 + 60 * MINUTE, 4 * MS);
    rec(f->m, "world", T0, 8 * MS);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    mtr_close(f->m);
    char p[400];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs the query; returns the parsed body, checking the status. */
static cJSON *query(fx_t *f, const char *q, int64_t now, int want_status)
{
    char *body = NULL;
    int status = api_usage_query(f ? f->m : NULL, q, now, &body);
    assert_non_null(body);
    if (status != want_status) fail_msg("%s: status %d (want %d): %s", q, status, want_status, body);
    cJSON *j = cJSON_Parse(body);
    free(body);
    assert_non_null(j);
    return j;
}

static double total_billed_ms(const cJSON *arr)
{
    double t = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) t += cJSON_GetObjectItem(o, "billed_ms")->valuedouble;
    return t;
}

static void test_windows(void **state)
{
    fx_t *f = *state;
    int64_t now = T0 + 2 * 60 * MINUTE; /* 14:00 */
    cJSON *j = query(f, "", now, 200);
    assert_int_equal(cJSON_GetArraySize(j), 2);
    assert_true(total_billed_ms(j) == 15);
    cJSON_Delete(j);

    j = query(f, "function=hello", now, 200);
    assert_int_equal(cJSON_GetArraySize(j), 1);
    assert_true(total_billed_ms(j) == 7);
    cJSON_Delete(j);

    /* since=1h -> 13:00: only the 4 ms invocation */
    j = query(f, "since=1h", now, 200);
    assert_true(total_billed_ms(j) == 4);
    cJSON_Delete(j);

    /* RFC 3339, plain and percent-encoded, with an offset written with '+' */
    j = query(f, "since=2024-05-01T12:01:00Z&until=2024-05-01T12:02:00Z", now, 200);
    assert_true(total_billed_ms(j) == 2);
    cJSON_Delete(j);
    j = query(f, "since=2024-05-01T14%3A01%3A00%2B02%3A00&until=2024-05-01T14:02:00+02:00", now, 200);
    assert_true(total_billed_ms(j) == 2);
    cJSON_Delete(j);

    /* until as a duration ago: until=90m -> 12:30 */
    j = query(f, "until=90m", now, 200);
    assert_true(total_billed_ms(j) == 11);
    cJSON_Delete(j);

    /* steps */
    j = query(f, "function=hello&since=2024-05-01T12:00:00Z&step=1m", now, 200);
    assert_int_equal(cJSON_GetArraySize(j), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "start")->valuestring,
                        "2024-05-01T12:01:00Z");
    cJSON_Delete(j);
    j = query(f, "function=hello&since=2024-05-01T12:00:00Z&step=1h", now, 200);
    assert_int_equal(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);

    /* an unknown function is an empty report, not an error */
    j = query(f, "function=nobody", now, 200);
    assert_int_equal(cJSON_GetArraySize(j), 0);
    cJSON_Delete(j);
}

static void assert_error(fx_t *f, const char *q, int status, const char *mentions)
{
    cJSON *j = query(f, q, T0, status);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_true(cJSON_IsString(e));
    if (!strstr(e->valuestring, mentions))
        fail_msg("%s: error '%s' does not mention '%s'", q, e->valuestring, mentions);
    cJSON_Delete(j);
}

static void test_bad_parameters(void **state)
{
    fx_t *f = *state;
    assert_error(f, "since=yesterday", 400, "since");
    assert_error(f, "until=2024-13-01T00:00:00Z", 400, "until");
    assert_error(f, "step=90s", 400, "step");
    assert_error(f, "step=0", 400, "step");
    assert_error(f, "step=fast", 400, "step");
    assert_error(f, "since=1h&until=2h", 400, "after");
    assert_error(f, "since=%zz", 400, "since");
    assert_error(f, "function=a%00b", 400, "function");
    assert_error(NULL, "", 503, "not enabled");
}

/* ---- over HTTP ---- */

typedef struct server {
    fx_t *f;
    uv_loop_t loop;
    uv_async_t stop;
    hs_server_t *hs;
    uint16_t port;
    char reply[8192];
    size_t reply_len;
} server_t;

static void on_req(hs_req_t *req, void *ud)
{
    server_t *s = ud;
    api_usage_handle(s->f->m, req);
}

static void on_stop(uv_async_t *a)
{
    server_t *s = a->data;
    hs_server_close(s->hs, NULL, NULL);
    uv_close((uv_handle_t *)&s->stop, NULL);
}

typedef struct client_arg {
    server_t *s;
    const char *request;
} client_arg_t;

static void *client_main(void *arg)
{
    client_arg_t *c = arg;
    server_t *s = c->s;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->reply_len = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        (void)!write(fd, c->request, strlen(c->request));
        ssize_t n;
        while ((n = read(fd, s->reply + s->reply_len, sizeof s->reply - 1 - s->reply_len)) > 0)
            s->reply_len += (size_t)n;
    }
    s->reply[s->reply_len] = 0;
    close(fd);
    uv_async_send(&s->stop);
    return NULL;
}

static void http_exchange(fx_t *f, const char *request, server_t *s)
{
    memset(s, 0, sizeof *s);
    s->f = f;
    assert_int_equal(uv_loop_init(&s->loop), 0);
    s->hs = hs_server_new(&s->loop, NULL, on_req, s);
    assert_non_null(s->hs);
    char err[256];
    assert_int_equal(hs_server_listen(s->hs, "127.0.0.1:0", err, sizeof err), 0);
    s->port = hs_server_port(s->hs);
    uv_async_init(&s->loop, &s->stop, on_stop);
    s->stop.data = s;
    client_arg_t c = {s, request};
    pthread_t t;
    pthread_create(&t, NULL, client_main, &c);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    uv_loop_close(&s->loop);
}

static void test_http(void **state)
{
    fx_t *f = *state;
    server_t s;
    http_exchange(f, "GET /v1/usage?function=world&since=2024-05-01T12:00:00Z HTTP/1.0\r\n\r\n", &s);
    assert_non_null(strstr(s.reply, "HTTP/1.1 200") ? s.reply : strstr(s.reply, "HTTP/1.0 200"));
    assert_non_null(strstr(s.reply, "application/json"));
    const char *body = strstr(s.reply, "\r\n\r\n");
    assert_non_null(body);
    cJSON *j = cJSON_Parse(body + 4);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 1);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "billed_ms")->valuedouble == 8);
    cJSON_Delete(j);

    http_exchange(f, "GET /v1/usage?step=7s HTTP/1.0\r\n\r\n", &s);
    assert_non_null(strstr(s.reply, " 400 "));
    assert_non_null(strstr(s.reply, "step"));

    http_exchange(f, "POST /v1/usage HTTP/1.0\r\nContent-Length: 0\r\n\r\n", &s);
    assert_non_null(strstr(s.reply, " 405 "));
    assert_non_null(strstr(s.reply, "Allow: GET"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_windows, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_parameters, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_http, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
