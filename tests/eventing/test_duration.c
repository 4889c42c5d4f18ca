/*
 * test_duration.c — ISO 8601 and Go durations, the retry backoff
 * arithmetic, and the delivery/sink specs built from them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "eventing/internal.h"

static void test_iso_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } v[] = {
        {"PT0.5S", 500},       {"PT1S", 1000},          {"PT1M30S", 90000},
        {"PT2H", 7200000},     {"P1D", 86400000},       {"P1DT1H", 90000000},
        {"P2W", 1209600000},   {"PT0,25S", 250},        {"PT0.001S", 1},
        {"P1Y", 31536000000},  {"P1M", 2592000000},     {"PT1M", 60000},
        {"PT1.5M", 90000},     {"PT0S", 0},
        /* malformed */
        {"", -1},    {"P", -1},     {"PT", -1},    {"1S", -1},     {"PT1", -1},
        {"PT1X", -1}, {"P1H", -1},  {"PT1D", -1},  {"PT1S1M", -1}, {"-PT1S", -1},
        {"PT.5S", -1}, {"PT1.S", -1}, {"P99999999999999999999Y", -1},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t got = ev_iso_duration_ms(v[i].s);
        if (got != v[i].ms)
            print_message("\"%s\": got %lld want %lld\n", v[i].s, (long long)got,
                          (long long)v[i].ms);
        assert_int_equal(got, v[i].ms);
    }
}

static void test_go_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } v[] = {
        {"10s", 10000}, {"1m30s", 90000}, {"1h", 3600000}, {"500ms", 500}, {"1.5s", 1500},
        {"2h45m", 9900000}, {"1500us", 2},
        {"", -1}, {"10", -1}, {"s", -1}, {"10x", -1}, {"0s", -1}, {"-1s", -1},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t got = ev_go_duration_ms(v[i].s);
        if (got != v[i].ms)
            print_message("\"%s\": got %lld want %lld\n", v[i].s, (long long)got,
                          (long long)v[i].ms);
        assert_int_equal(got, v[i].ms);
    }
}

static void test_backoff(void **state)
{
    (void)state;
    /* Knative: linear delay*n, exponential delay*2^n, n = retry number. */
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_LINEAR, 500, 1), 500);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_LINEAR, 500, 2), 1000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_LINEAR, 500, 3), 1500);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_EXPONENTIAL, 500, 1), 1000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_EXPONENTIAL, 500, 2), 2000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_EXPONENTIAL, 500, 3), 4000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_EXPONENTIAL, 200, 10), 204800);
    /* saturation at one hour, no overflow */
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_EXPONENTIAL, 1000, 40), 3600000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_EXPONENTIAL, 1000, 2000000000), 3600000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_LINEAR, 1000, 2000000000), 3600000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_LINEAR, INT64_MAX, 2), 3600000);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_LINEAR, 0, 5), 0);
    assert_int_equal(ev_backoff_ms(EV_BACKOFF_LINEAR, 100, 0), 0);
}

static void test_delivery_parse(void **state)
{
    (void)state;
    char err[256];
    ev_delivery_t d;
    cJSON *j = cJSON_Parse("{\"retry\":3,\"backoffPolicy\":\"linear\",\"backoffDelay\":\"PT0.5S\","
                           "\"deadLetterSink\":{\"uri\":\"redis://127.0.0.1:6380/dlq\"}}");
    assert_int_equal(ev_delivery_parse(j, "spec.delivery", &d, err, sizeof err), 0);
    assert_int_equal(d.retry, 3);
    assert_int_equal(d.policy, EV_BACKOFF_LINEAR);
    assert_int_equal(d.delay_ms, 500);
    assert_int_equal(d.dead_letter.kind, EV_SINK_REDIS);
    assert_string_equal(d.dead_letter.host, "127.0.0.1");
    assert_int_equal(d.dead_letter.port, 6380);
    assert_string_equal(d.dead_letter.stream, "dlq");
    cJSON_Delete(j);

    assert_int_equal(ev_delivery_parse(NULL, "spec.delivery", &d, err, sizeof err), 0);
    assert_int_equal(d.retry, 0);
    assert_int_equal(d.dead_letter.kind, EV_SINK_NONE);

    static const struct {
        const char *json, *mention;
    } bad[] = {
        {"{\"retry\":-1}", "spec.delivery.retry"},
        {"{\"retry\":1.5}", "spec.delivery.retry"},
        {"{\"backoffPolicy\":\"random\"}", "spec.delivery.backoffPolicy"},
        {"{\"backoffDelay\":\"0.5s\"}", "spec.delivery.backoffDelay"},
        {"{\"deadLetterSink\":{\"uri\":\"ftp://x\"}}", "spec.delivery.deadLetterSink.uri"},
        {"{\"deadLetterSink\":{\"uri\":\"redis://h:1\"}}", "spec.delivery.deadLetterSink.uri"},
        {"{\"deadLetterSink\":{\"ref\":{\"kind\":\"Pod\",\"name\":\"x\"}}}",
         "spec.delivery.deadLetterSink.ref.kind"},
        {"{\"deadLetterSink\":{\"ref\":{\"kind\":\"Service\"}}}",
         "spec.delivery.deadLetterSink.ref.name"},
        {"{\"deadLetterSink\":{}}", "spec.delivery.deadLetterSink"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *b = cJSON_Parse(bad[i].json);
        err[0] = 0;
        assert_int_equal(ev_delivery_parse(b, "spec.delivery", &d, err, sizeof err), -1);
        if (strncmp(err, bad[i].mention, strlen(bad[i].mention)) != 0)
            print_message("case %zu: \"%s\" does not start with %s\n", i, err, bad[i].mention);
        assert_int_equal(strncmp(err, bad[i].mention, strlen(bad[i].mention)), 0);
        cJSON_Delete(b);
    }
}

static void test_sink_parse(void **state)
{
    (void)state;
    char err[256];
    ev_sink_t s;
    cJSON *j = cJSON_Parse("{\"ref\":{\"apiVersion\":\"serving.knative.dev/v1\","
                           "\"kind\":\"Service\",\"name\":\"hello\"}}");
    assert_int_equal(ev_sink_parse(j, "spec.sink", &s, err, sizeof err), 0);
    assert_int_equal(s.kind, EV_SINK_SERVICE);
    assert_string_equal(s.name, "hello");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"ref\":{\"kind\":\"Broker\",\"name\":\"default\"}}");
    assert_int_equal(ev_sink_parse(j, "spec.sink", &s, err, sizeof err), 0);
    assert_int_equal(s.kind, EV_SINK_BROKER);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"uri\":\"http://127.0.0.1:9/x\"}");
    assert_int_equal(ev_sink_parse(j, "spec.sink", &s, err, sizeof err), 0);
    assert_int_equal(s.kind, EV_SINK_HTTP);
    assert_string_equal(s.url, "http://127.0.0.1:9/x");
    cJSON_Delete(j);
    assert_int_equal(ev_sink_parse(NULL, "spec.sink", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "spec.sink"));

    char host[64], stream[64];
    int port;
    assert_int_equal(ev_redis_url_parse("redis://localhost/s", host, sizeof host, &port, stream,
                                        sizeof stream),
                     0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 6379);
    assert_string_equal(stream, "s");
    assert_int_equal(ev_redis_url_parse("redis://h:99999/s", host, sizeof host, &port, stream,
                                        sizeof stream),
                     -1);
    assert_int_equal(ev_redis_url_parse("redis://:1/s", host, sizeof host, &port, stream,
                                        sizeof stream),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_duration), cmocka_unit_test(test_go_duration),
        cmocka_unit_test(test_backoff),      cmocka_unit_test(test_delivery_parse),
        cmocka_unit_test(test_sink_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
