/*
 * test_trace.c — src/trace/: W3C traceparent and tracestate parsing (the
 * spec's strict rules), the sampler (ratio and parent-based), span records
 * encoded as OTLP JSON, the export body, the bounded queue dropping and
 * counting, and common/jsonstr.c's escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "common/jsonstr.h"
#include "common/metrics.h"
#include "trace/internal.h"
#include "trace/trace.h"

static const char *VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void test_traceparent_valid(void **state)
{
    (void)state;
    tr_ctx_t c;
    assert_int_equal(tr_traceparent_parse(VALID, &c), 0);
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[0], 0x00);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_true(tr_ctx_sampled(&c));
    char out[TR_TRACEPARENT_LEN + 1];
    tr_traceparent_format(&c, out);
    assert_string_equal(out, VALID);

    /* Not sampled; whitespace around the value; a future version with an
     * extra field; unknown flag bits are not passed on. */
    assert_int_equal(
        tr_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
    assert_false(tr_ctx_sampled(&c));
    assert_int_equal(
        tr_traceparent_parse(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", &c), 0);
    assert_int_equal(
        tr_traceparent_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", &c),
        0);
    assert_int_equal(
        tr_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", &c), 0);
    assert_int_equal(c.flags, TR_FLAG_SAMPLED);
}

static void test_traceparent_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        /* no flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",    /* 00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version ff */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",     /* dash misplaced */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    /* later version, no dash */
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        tr_ctx_t c;
        memset(&c, 0x5a, sizeof c);
        if (tr_traceparent_parse(bad[k], &c) != -1) fail_msg("accepted '%s'", bad[k]);
    }
    tr_ctx_t c;
    assert_int_equal(tr_traceparent_parse(NULL, &c), -1);
}

static void test_tracestate(void **state)
{
    (void)state;
    assert_true(tr_tracestate_valid("congo=t61rcWkgMzE"));
    assert_true(tr_tracestate_valid("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    assert_true(tr_tracestate_valid("fw529a3039@dt=aGVsbG8, ,  vendor=x y"));
    assert_false(tr_tracestate_valid(""));
    assert_false(tr_tracestate_valid("noequals"));
    assert_false(tr_tracestate_valid("Upper=1"));
    assert_false(tr_tracestate_valid("k=a,b"));          /* "b" is not a member */
    assert_false(tr_tracestate_valid("k=v=w"));
    assert_false(tr_tracestate_valid("k=\x01"));
    assert_false(tr_tracestate_valid("a@b@c=1"));
    char big[TR_TRACESTATE_MAX + 10];
    memset(big, 'a', sizeof big - 1);
    big[0] = 'k';
    big[1] = '=';
    big[sizeof big - 1] = '\0';
    assert_false(tr_tracestate_valid(big));
    char many[33 * 6 + 1] = "";
    for (int k = 0; k < 33; k++) {
        char m[8];
        snprintf(m, sizeof m, "%sk%d=1", k ? "," : "", k);
        strcat(many, m);
    }
    assert_false(tr_tracestate_valid(many)); /* 33 members */
}

static void test_sampler(void **state)
{
    (void)state;
    mx_registry_t *mx = mx_registry_new();
    char err[256];
    tr_config_t cfg = {.endpoint = "http://127.0.0.1:9", .sample_ratio = 0.0, .metrics = mx};
    tr_tracer_t *never = tr_tracer_new(&cfg, err, sizeof err);
    assert_non_null(never);
    cfg.sample_ratio = 1.0;
    tr_tracer_t *always = tr_tracer_new(&cfg, err, sizeof err);
    assert_non_null(always);
    cfg.sample_ratio = 0.25;
    tr_tracer_t *quarter = tr_tracer_new(&cfg, err, sizeof err);
    assert_non_null(quarter);

    int sampled = 0;
    for (int k = 0; k < 4000; k++) {
        tr_ctx_t a, b, q;
        tr_ctx_new(never, NULL, &a);
        tr_ctx_new(always, NULL, &b);
        tr_ctx_new(quarter, NULL, &q);
        assert_false(tr_ctx_sampled(&a));
        assert_true(tr_ctx_sampled(&b));
        sampled += tr_ctx_sampled(&q);
        /* Parent-based: a child keeps the trace id and the flag. */
        tr_ctx_t child;
        tr_ctx_new(never, &b, &child);
        assert_true(tr_ctx_sampled(&child));
        assert_memory_equal(child.trace_id, b.trace_id, 16);
        assert_memory_not_equal(child.span_id, b.span_id, 8);
        tr_ctx_new(always, &a, &child);
        assert_false(tr_ctx_sampled(&child));
    }
    /* 1000 expected; far outside 800..1200 would mean a broken sampler. */
    assert_in_range(sampled, 800, 1200);
    tr_ctx_t n;
    tr_ctx_new(NULL, NULL, &n);
    assert_false(tr_ctx_sampled(&n));

    cfg.sample_ratio = 1.5;
    assert_null(tr_tracer_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "--trace-sample-ratio"));
    cfg.sample_ratio = 1;
    cfg.endpoint = "ftp://x";
    assert_null(tr_tracer_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "--otlp-endpoint"));
    tr_tracer_free(never);
    tr_tracer_free(always);
    tr_tracer_free(quarter);
    mx_registry_free(mx);
}

static const cJSON *attr(const cJSON *span, const char *key)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(span, "attributes"))
    {
        const cJSON *k = cJSON_GetObjectItem(a, "key");
        if (cJSON_IsString(k) && strcmp(k->valuestring, key) == 0)
            return cJSON_GetObjectItem(a, "value");
    }
    return NULL;
}

static void test_span_encoding(void **state)
{
    (void)state;
    mx_registry_t *mx = mx_registry_new();
    char err[256];
    tr_config_t cfg = {.endpoint = "http://127.0.0.1:9", .sample_ratio = 1.0, .metrics = mx};
    tr_tracer_t *t = tr_tracer_new(&cfg, err, sizeof err);
    assert_non_null(t);
    tr_ctx_t parent;
    assert_int_equal(tr_traceparent_parse(VALID, &parent), 0);
    tr_span_t s;
    tr_span_start(&s, t, &parent, "GET /fn/\"q\"\n", TR_KIND_SERVER, 1700000000123456789ull);
    tr_span_attr_str(&s, "faas.name", "hello");
    tr_span_attr_str(&s, "bad", "a\xff\x01z");
    tr_span_attr_bool(&s, "faas.coldstart", true);
    tr_span_attr_int(&s, "http.response.status_code", 200);
    tr_span_attr_double(&s, "ratio", 0.5);
    tr_span_set_status(&s, TR_STATUS_ERROR, "boom");
    char json[TR_SPAN_JSON_MAX];
    int n = tr_span_encode(&s, 1700000000223456789ull, json, sizeof json);
    assert_true(n > 0);
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "traceId")->valuestring,
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(cJSON_GetObjectItem(j, "parentSpanId")->valuestring, "00f067aa0ba902b7");
    assert_int_equal(strlen(cJSON_GetObjectItem(j, "spanId")->valuestring), 16);
    assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, "GET /fn/\"q\"\n");
    assert_int_equal(cJSON_GetObjectItem(j, "kind")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(j, "startTimeUnixNano")->valuestring,
                        "1700000000123456789");
    assert_string_equal(cJSON_GetObjectItem(j, "endTimeUnixNano")->valuestring,
                        "1700000000223456789");
    assert_string_equal(cJSON_GetObjectItem(attr(j, "faas.name"), "stringValue")->valuestring,
                        "hello");
    assert_string_equal(cJSON_GetObjectItem(attr(j, "bad"), "stringValue")->valuestring,
                        "a\xef\xbf\xbd\x01z");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(attr(j, "faas.coldstart"), "boolValue")));
    assert_string_equal(
        cJSON_GetObjectItem(attr(j, "http.response.status_code"), "intValue")->valuestring, "200");
    assert_true(cJSON_GetObjectItem(attr(j, "ratio"), "doubleValue")->valuedouble == 0.5);
    const cJSON *st = cJSON_GetObjectItem(j, "status");
    assert_int_equal(cJSON_GetObjectItem(st, "code")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(st, "message")->valuestring, "boom");
    cJSON_Delete(j);

    /* A root span has no parentSpanId; attributes beyond the room are
     * dropped and counted, and the span still fits its slot. */
    tr_span_start(&s, t, NULL, "root", TR_KIND_INTERNAL, 1);
    char big[4000];
    memset(big, '\x1b', sizeof big - 1); /* each byte escapes to 6 */
    big[sizeof big - 1] = '\0';
    for (int k = 0; k < 20; k++) tr_span_attr_str(&s, "big", big);
    n = tr_span_encode(&s, 2, json, sizeof json);
    assert_true(n > 0);
    j = cJSON_Parse(json);
    assert_non_null(j);
    assert_null(cJSON_GetObjectItem(j, "parentSpanId"));
    assert_true(cJSON_GetObjectItem(j, "droppedAttributesCount")->valueint > 0);
    cJSON_Delete(j);

    /* The export body: resourceSpans > scopeSpans > spans. */
    const char *spans[] = {"{\"a\":1}", "{\"b\":2}"};
    size_t lens[] = {7, 7}, len;
    char *body = tr_export_body("svc", spans, lens, 2, &len);
    assert_non_null(body);
    j = cJSON_Parse(body);
    assert_non_null(j);
    const cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "resourceSpans"), 0);
    const cJSON *res_attr =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "resource"), "attributes"), 0);
    assert_string_equal(cJSON_GetObjectItem(res_attr, "key")->valuestring, "service.name");
    const cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(rs, "scopeSpans"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ss, "spans")), 2);
    cJSON_Delete(j);
    free(body);
    tr_tracer_free(t);
    mx_registry_free(mx);
}

/* With the collector unreachable and a queue of 4, spans beyond it are
 * dropped and counted, and ending a span never waits. */
static void test_queue_drops(void **state)
{
    (void)state;
    mx_registry_t *mx = mx_registry_new();
    char err[256];
    tr_config_t cfg = {.endpoint = "http://127.0.0.1:1/", .sample_ratio = 1.0, .queue_spans = 4,
                       .metrics = mx};
    tr_tracer_t *t = tr_tracer_new(&cfg, err, sizeof err);
    assert_non_null(t);
    for (int k = 0; k < 50; k++) {
        tr_span_t s;
        tr_span_start(&s, t, NULL, "x", TR_KIND_INTERNAL, 1);
        tr_span_end(&s, 2);
    }
    size_t len;
    char *text = mx_registry_render(mx, &len);
    assert_non_null(text);
    const char *line = strstr(text, "wasmfn_trace_spans_dropped_total{reason=\"queue_full\"}");
    assert_non_null(line);
    assert_true(atoi(strchr(line, '}') + 2) >= 46);
    free(text);
    tr_tracer_free(t); /* the 4 queued fail to export: counted too */
    text = mx_registry_render(mx, &len);
    assert_non_null(strstr(text, "wasmfn_trace_spans_dropped_total{reason=\"export_failed\"}"));
    free(text);
    mx_registry_free(mx);
}

static void test_json_escape(void **state)
{
    (void)state;
    char out[64];
    size_t used;
    const char *in = "a\"b\\c\n\x7f\xc3\xa9\xe2\x82";
    size_t n = cm_json_escape(in, strlen(in), out, sizeof out, &used);
    out[n] = '\0';
    assert_string_equal(out, "a\\\"b\\\\c\\n\\u007f\xc3\xa9\\ufffd\\ufffd");
    assert_int_equal(used, strlen(in));
    /* Cut at a character boundary: never half an escape. */
    n = cm_json_escape("ab\n", 3, out, 3, &used);
    assert_int_equal(n, 2);
    assert_int_equal(used, 2);
    n = cm_json_escape("\xc3\xa9\xc3\xa9", 4, out, 3, &used);
    assert_int_equal(n, 2);
    assert_int_equal(cm_json_escape("\xed\xa0\x80", 3, NULL, 0, NULL), 18); /* surrogate */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid),
        cmocka_unit_test(test_traceparent_invalid),
        cmocka_unit_test(test_tracestate),
        cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_span_encoding),
        cmocka_unit_test(test_queue_drops),
        cmocka_unit_test(test_json_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
