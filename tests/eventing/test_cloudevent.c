/*
 * test_cloudevent.c — the CloudEvents HTTP binding (binary and structured
 * modes, both directions), the JSON format, validation, base64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eventing/internal.h"

static const char *hdr_value(char **h, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < n; i++)
        if (strncmp(h[i], prefix, pl) == 0)
            return h[i] + pl;
    return NULL;
}

static void test_binary_parse(void **state)
{
    (void)state;
    ev_header_t h[] = {
        {"Host", "x"},
        {"CE-SpecVersion", "1.0"},
        {"ce-id", "abc-1"},
        {"ce-source", "/my/source"},
        {"ce-type", "com.example.order"},
        {"ce-subject", "caf%C3%A9"},
        {"ce-traceparent", "00-1"},
        {"Content-Type", "application/json"},
    };
    const char *body = "{\"n\":1}";
    char err[256];
    ev_event_t *e = ev_event_from_http(h, 8, (const uint8_t *)body, strlen(body), 0, err, sizeof err);
    assert_non_null(e);
    assert_string_equal(ev_event_get(e, "specversion"), "1.0");
    assert_string_equal(ev_event_get(e, "id"), "abc-1");
    assert_string_equal(ev_event_get(e, "type"), "com.example.order");
    assert_string_equal(ev_event_get(e, "subject"), "caf\xc3\xa9"); /* percent-decoded */
    assert_string_equal(ev_event_get(e, "traceparent"), "00-1");
    assert_string_equal(ev_event_get(e, "datacontenttype"), "application/json");
    assert_null(ev_event_get(e, "host"));
    assert_int_equal(e->data_len, strlen(body));
    assert_memory_equal(e->data, body, e->data_len);

    /* And back out in binary mode: the same attributes as headers. */
    size_t n;
    char **out = ev_event_to_binary_headers(e, &n);
    assert_non_null(out);
    assert_string_equal(hdr_value(out, n, "ce-id: "), "abc-1");
    assert_string_equal(hdr_value(out, n, "ce-subject: "), "caf%C3%A9");
    assert_string_equal(hdr_value(out, n, "Content-Type: "), "application/json");
    assert_null(hdr_value(out, n, "ce-datacontenttype"));
    ev_strv_free(out, n);
    ev_event_free(e);
}

static void test_binary_rejects(void **state)
{
    (void)state;
    char err[256];
    struct {
        ev_header_t h[4];
        size_t n;
        const char *mention;
    } cases[] = {
        {{{"Content-Type", "application/json"}}, 1, "not a CloudEvent"},
        {{{"ce-specversion", "1.0"}, {"ce-source", "s"}, {"ce-type", "t"}}, 3, "id"},
        {{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "t"}}, 3, "source"},
        {{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "s"}}, 3, "type"},
        {{{"ce-specversion", "0.3"}, {"ce-id", "1"}, {"ce-source", "s"}, {"ce-type", "t"}},
         4,
         "specversion"},
        {{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "s"}, {"ce-Bad_Name", "t"}},
         4,
         "attribute"},
        {{{"Content-Type", "application/cloudevents-batch+json"}}, 1, "batch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = 0;
        ev_event_t *e = ev_event_from_http(cases[i].h, cases[i].n, NULL, 0, 0, err, sizeof err);
        assert_null(e);
        if (!strstr(err, cases[i].mention))
            print_message("case %zu: \"%s\" lacks \"%s\"\n", i, err, cases[i].mention);
        assert_non_null(strstr(err, cases[i].mention));
    }
    /* oversized */
    ev_header_t ok[] = {{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "s"},
                        {"ce-type", "t"}};
    uint8_t big[2000] = {0};
    assert_null(ev_event_from_http(ok, 4, big, sizeof big, 1000, err, sizeof err));
    assert_non_null(strstr(err, "larger than the limit"));
    ev_event_t *fits = ev_event_from_http(ok, 4, big, 500, 1000, err, sizeof err);
    assert_non_null(fits);
    ev_event_free(fits);
}

static void test_structured(void **state)
{
    (void)state;
    const char *body = "{\"specversion\":\"1.0\",\"id\":\"7\",\"source\":\"/s\",\"type\":\"t.x\","
                       "\"datacontenttype\":\"application/json\",\"data\":{\"a\":[1,2]},"
                       "\"count\":3,\"flag\":true}";
    ev_header_t h[] = {{"Content-Type", "application/cloudevents+json; charset=utf-8"}};
    char err[256];
    ev_event_t *e = ev_event_from_http(h, 1, (const uint8_t *)body, strlen(body), 0, err, sizeof err);
    assert_non_null(e);
    assert_string_equal(ev_event_get(e, "id"), "7");
    assert_string_equal(ev_event_get(e, "count"), "3");
    assert_string_equal(ev_event_get(e, "flag"), "true");
    assert_int_equal(e->data_len, strlen("{\"a\":[1,2]}"));
    assert_memory_equal(e->data, "{\"a\":[1,2]}", e->data_len);

    /* JSON out and back in is the same event. */
    char *json = ev_event_to_json(e);
    assert_non_null(strstr(json, "\"data\":{\"a\":[1,2]}"));
    ev_event_t *back = ev_event_from_json(json, strlen(json), 0, err, sizeof err);
    assert_non_null(back);
    assert_string_equal(ev_event_get(back, "type"), "t.x");
    assert_int_equal(back->data_len, e->data_len);
    assert_memory_equal(back->data, e->data, e->data_len);
    free(json);
    ev_event_free(back);
    ev_event_free(e);

    /* Binary data goes as data_base64 and comes back byte for byte. */
    ev_event_t *b = ev_event_new();
    ev_event_set(b, "specversion", "1.0");
    ev_event_set(b, "id", "b");
    ev_event_set(b, "source", "s");
    ev_event_set(b, "type", "t");
    ev_event_set(b, "datacontenttype", "application/octet-stream");
    uint8_t raw[] = {0, 1, 2, 0xff, 0xfe, 'x'};
    ev_event_set_data(b, raw, sizeof raw);
    json = ev_event_to_json(b);
    assert_non_null(strstr(json, "\"data_base64\":\"AAEC//54\""));
    ev_event_t *b2 = ev_event_from_json(json, strlen(json), 0, err, sizeof err);
    assert_non_null(b2);
    assert_int_equal(b2->data_len, sizeof raw);
    assert_memory_equal(b2->data, raw, sizeof raw);
    free(json);
    ev_event_free(b2);

    /* Text data stays a string. */
    ev_event_set(b, "datacontenttype", "text/plain");
    ev_event_set_data(b, "hello", 5);
    json = ev_event_to_json(b);
    assert_non_null(strstr(json, "\"data\":\"hello\""));
    b2 = ev_event_from_json(json, strlen(json), 0, err, sizeof err);
    assert_int_equal(b2->data_len, 5);
    assert_memory_equal(b2->data, "hello", 5);
    free(json);
    ev_event_free(b2);
    ev_event_free(b);
}

static void test_structured_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *body, *mention;
    } cases[] = {
        {"not json", "not a JSON object"},
        {"[1,2]", "not a JSON object"},
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\"}", "type"},
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"x\":{}}",
         "must be a string"},
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\","
         "\"data_base64\":\"@@@\"}",
         "base64"},
        {"{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"s\",\"type\":\"t\"}", "id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        ev_event_t *e = ev_event_from_json(cases[i].body, strlen(cases[i].body), 0, err, sizeof err);
        assert_null(e);
        if (!strstr(err, cases[i].mention))
            print_message("case %zu: \"%s\" lacks \"%s\"\n", i, err, cases[i].mention);
        assert_non_null(strstr(err, cases[i].mention));
    }
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *plain, *enc;
    } v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *e = ev_base64_encode((const uint8_t *)v[i].plain, strlen(v[i].plain));
        assert_string_equal(e, v[i].enc);
        free(e);
        size_t n;
        uint8_t *d = ev_base64_decode(v[i].enc, &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(v[i].plain));
        assert_memory_equal(d, v[i].plain, n);
        free(d);
    }
    size_t n;
    assert_null(ev_base64_decode("Zm9v!", &n));
    assert_null(ev_base64_decode("Zg==Zg==", &n));
    assert_null(ev_base64_decode("Z", &n));
}

static void test_filter(void **state)
{
    (void)state;
    ev_event_t *e = ev_event_new();
    ev_event_set(e, "type", "order.created");
    ev_event_set(e, "source", "/shop");
    ev_attr_t a[] = {{"type", "order.created"}, {"source", "/shop"}};
    ev_filter_t f = {a, 2};
    assert_true(ev_filter_match(&f, e));
    ev_attr_t b[] = {{"type", "order.created"}, {"source", "/other"}};
    ev_filter_t g = {b, 2};
    assert_false(ev_filter_match(&g, e));
    ev_attr_t c[] = {{"region", "eu"}};
    ev_filter_t h = {c, 1};
    assert_false(ev_filter_match(&h, e)); /* absent attribute never matches */
    ev_filter_t none = {NULL, 0};
    assert_true(ev_filter_match(&none, e));
    ev_event_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_parse), cmocka_unit_test(test_binary_rejects),
        cmocka_unit_test(test_structured),   cmocka_unit_test(test_structured_rejects),
        cmocka_unit_test(test_base64),       cmocka_unit_test(test_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
