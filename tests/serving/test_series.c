/*
 * test_series.c — the dashboard's per-function history (serving/series.c):
 * percentiles from the power-of-two histogram, the 10-second samples of a
 * window, an hour-old sample not read as a current one, the recent calls
 * ring, and the JSON the admin API sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "serving/series.h"

#define S 1000000000LL
/* A wall-clock time on a 10-second boundary. */
#define T0 (1700000000LL * S)

static void call(srv_series_t *s, int64_t wall_ns, uint64_t latency_ns, int status, bool cold)
{
    srv_series_call_t c = {.wall_ns = wall_ns, .latency_ns = latency_ns, .status = status,
                           .cold = cold, .cold_ns = cold ? 50000 : 0, .revision = "f-00001",
                           .trigger = "http"};
    srv_series_record(s, &c);
}

static void test_quantile(void **state)
{
    (void)state;
    uint64_t b[SRV_SERIES_BUCKETS] = {0};
    assert_true(srv_series_quantile(b, 0, 0.5) < 0);
    /* 100 calls of 1 ms: bucket [512 µs, 1024 µs) — 1 ms = 62.5 x 16 µs,
     * so bucket 6 = [512, 1024) µs. The max clamps the estimate. */
    b[6] = 100;
    double p = srv_series_quantile(b, 1000000, 0.5);
    assert_true(p >= 512000 && p <= 1000000);
    assert_true(srv_series_quantile(b, 1000000, 0.99) <= 1000000);
    /* 90 fast (bucket 1: 16..32 µs) and 10 slow (bucket 10: 8..16 ms):
     * p50 is fast, p99 is slow. */
    memset(b, 0, sizeof b);
    b[1] = 90;
    b[10] = 10;
    double p50 = srv_series_quantile(b, 12000000, 0.5);
    double p99 = srv_series_quantile(b, 12000000, 0.99);
    assert_true(p50 >= 16000 && p50 < 32000);
    assert_true(p99 >= 8000000 && p99 <= 12000000);
    /* Everything in the last (open) bucket: the max. */
    memset(b, 0, sizeof b);
    b[SRV_SERIES_BUCKETS - 1] = 3;
    assert_true(srv_series_quantile(b, 90 * S, 0.5) == (double)(90 * S));
}

static void test_summary_window(void **state)
{
    (void)state;
    srv_series_t *s = srv_series_new();
    assert_non_null(s);
    /* 30 calls now, 20 a minute ago (2 of them 5xx, 1 cold), and 7 an
     * hour and 10 s ago: those share the ring's slot with the sample 10 s
     * ago and must never be read as it. */
    for (int i = 0; i < 7; i++) call(s, T0 - 3610 * S, 2000000, 200, false);
    for (int i = 0; i < 20; i++) call(s, T0 - 60 * S, 1000000, i < 2 ? 502 : 200, i == 0);
    for (int i = 0; i < 30; i++) call(s, T0 + 1 * S, 100000, 200, false);
    srv_series_summary_t sum;
    srv_series_summarize(s, T0 + 5 * S, 60, &sum);
    /* 60 s = 6 samples ending with the current one: T0-50 .. T0: only now's. */
    assert_int_equal(sum.requests, 30);
    assert_int_equal(sum.errors, 0);
    assert_true(sum.p50_ms > 0.06 && sum.p50_ms <= 0.1);
    srv_series_summarize(s, T0 + 5 * S, 70, &sum);
    assert_int_equal(sum.requests, 50);
    assert_int_equal(sum.errors, 2);
    assert_int_equal(sum.cold_starts, 1);
    assert_true(sum.cold_start_mean_ms > 0.049 && sum.cold_start_mean_ms < 0.051);
    /* The whole hour excludes the sample older than an hour. */
    srv_series_summarize(s, T0 + 5 * S, 3600, &sum);
    assert_int_equal(sum.requests, 50);
    /* Empty window: no percentile. */
    srv_series_summarize(s, T0 + 600 * S, 10, &sum);
    assert_int_equal(sum.requests, 0);
    assert_true(sum.p50_ms < 0 && sum.cold_start_mean_ms < 0);
    srv_series_summarize(NULL, T0, 60, &sum);
    assert_int_equal(sum.requests, 0);
    srv_series_free(s);
}

static void test_samples_json(void **state)
{
    (void)state;
    srv_series_t *s = srv_series_new();
    for (int i = 0; i < 4; i++) call(s, T0 + 2 * S, 300000, 200, i == 0);
    srv_series_instances(s, T0 + 2 * S, 3, 1);
    srv_series_instances(s, T0 + 3 * S, 2, 4);
    cJSON *a = srv_series_samples_json(s, T0 + 4 * S, 3600);
    assert_non_null(a);
    assert_int_equal(cJSON_GetArraySize(a), SRV_SERIES_SAMPLES);
    cJSON *last = cJSON_GetArrayItem(a, SRV_SERIES_SAMPLES - 1);
    cJSON *first = cJSON_GetArrayItem(a, 0);
    assert_int_equal(cJSON_GetObjectItem(last, "time")->valuedouble, (double)(T0 / S));
    assert_int_equal(cJSON_GetObjectItem(first, "time")->valuedouble,
                     (double)(T0 / S - (SRV_SERIES_SAMPLES - 1) * SRV_SERIES_STEP_S));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(last, "partial")));
    assert_int_equal(cJSON_GetObjectItem(last, "requests")->valueint, 4);
    /* 4 calls in the 4 s so far. */
    assert_true(cJSON_GetObjectItem(last, "requestsPerSecond")->valuedouble == 1.0);
    assert_int_equal(cJSON_GetObjectItem(last, "coldStarts")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(last, "warm")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(last, "busy")->valueint, 4);
    assert_true(cJSON_GetObjectItem(last, "p50Ms")->valuedouble > 0.25);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(first, "p50Ms")));
    cJSON_Delete(a);
    /* A window of 25 s is 3 samples; NULL series: zeros. */
    a = srv_series_samples_json(NULL, T0, 25);
    assert_int_equal(cJSON_GetArraySize(a), 3);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 2), "requests")->valueint, 0);
    cJSON_Delete(a);
    srv_series_free(s);
}

static void test_recent(void **state)
{
    (void)state;
    srv_series_t *s = srv_series_new();
    cJSON *a = srv_series_recent_json(s, 50);
    assert_int_equal(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);
    /* More calls than kept: the newest SRV_SERIES_RECENT, newest first. */
    for (int i = 0; i < SRV_SERIES_RECENT + 7; i++) call(s, T0 + i * 1000000LL, 1000, 200 + i, false);
    srv_series_call_t c = {.wall_ns = T0 + 5 * S, .latency_ns = 2500000, .status = 202,
                           .revision = "f-00002", .trigger = "async", .id = "abc123",
                           .trace_id = "0af7651916cd43dd8448eb211c80319c"};
    srv_series_record(s, &c);
    a = srv_series_recent_json(s, 50);
    assert_int_equal(cJSON_GetArraySize(a), SRV_SERIES_RECENT);
    cJSON *n = cJSON_GetArrayItem(a, 0);
    assert_string_equal(cJSON_GetObjectItem(n, "trigger")->valuestring, "async");
    assert_string_equal(cJSON_GetObjectItem(n, "id")->valuestring, "abc123");
    assert_string_equal(cJSON_GetObjectItem(n, "traceId")->valuestring,
                        "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(cJSON_GetObjectItem(n, "revision")->valuestring, "f-00002");
    assert_true(cJSON_GetObjectItem(n, "durationMs")->valuedouble == 2.5);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 1), "status")->valueint,
                     200 + SRV_SERIES_RECENT + 6);
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 1), "id"));
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 1), "traceId"));
    cJSON_Delete(a);
    a = srv_series_recent_json(s, 3);
    assert_int_equal(cJSON_GetArraySize(a), 3);
    cJSON_Delete(a);
    srv_series_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_summary_window),
        cmocka_unit_test(test_samples_json),
        cmocka_unit_test(test_recent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
