/*
 * test_sources.c — what the broker sources share (sources.h): a broker
 * message turned into a CloudEvent (headers, limits, messages that already
 * are events), server lists, and the kinds' spec checks naming the field
 * at fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "eventing/sources.h"

static void test_message_event(void **state)
{
    (void)state;
    char err[256] = "";
    ev_header_t h[] = {{"Content-Type", "application/json"},
                       {"Tenant", "acme"},
                       {"X-Trace-Id", "7"},  /* '-' is not valid in an extension name */
                       {"id", "forged"},     /* a context attribute: not overridden */
                       {"averyveryverylongheadername", "x"}};
    ev_event_t *e = ev_ext_event("42", "nats://h:1/S", "t.x", "orders.new", 1000, h, 5, "{}", 2,
                                 1 << 20, err, sizeof err);
    assert_non_null(e);
    assert_string_equal(ev_event_get(e, "id"), "42");
    assert_string_equal(ev_event_get(e, "source"), "nats://h:1/S");
    assert_string_equal(ev_event_get(e, "type"), "t.x");
    assert_string_equal(ev_event_get(e, "subject"), "orders.new");
    assert_string_equal(ev_event_get(e, "time"), "1970-01-01T00:00:01.000Z");
    assert_string_equal(ev_event_get(e, "datacontenttype"), "application/json");
    assert_string_equal(ev_event_get(e, "tenant"), "acme");
    assert_null(ev_event_get(e, "x-trace-id"));
    assert_null(ev_event_get(e, "averyveryverylongheadername"));
    assert_int_equal(e->data_len, 2);
    ev_event_free(e);
}

static void test_message_too_large(void **state)
{
    (void)state;
    char err[256] = "", body[100] = {0};
    assert_null(ev_ext_event("1", "s", "t", NULL, 0, NULL, 0, body, sizeof body, 64, err,
                             sizeof err));
    assert_non_null(strstr(err, "message of 100 bytes is larger than the limit of 64"));
}

static void test_message_is_event(void **state)
{
    (void)state;
    char err[256] = "";
    ev_header_t h[] = {{"ce-specversion", "1.0"}, {"ce-id", "abc"}, {"ce-source", "/shop"},
                       {"ce-type", "order.created"}};
    ev_event_t *e = ev_ext_event("9", "nats://h:1/S", "t.x", "s", 0, h, 4, "x", 1, 0, err,
                                 sizeof err);
    assert_non_null(e);
    assert_string_equal(ev_event_get(e, "id"), "abc");
    assert_string_equal(ev_event_get(e, "type"), "order.created");
    ev_event_free(e);
    /* A broken one is refused with the reason (dead-lettered by the source). */
    ev_header_t bad[] = {{"ce-specversion", "1.0"}, {"ce-id", "abc"}};
    assert_null(ev_ext_event("9", "s", "t", NULL, 0, bad, 2, "x", 1, 0, err, sizeof err));
    assert_true(err[0] != 0);
}

static void test_servers(void **state)
{
    (void)state;
    char hosts[4][256], err[256];
    int ports[4];
    cJSON *v = cJSON_CreateString("nats://a:4223, b");
    assert_int_equal(ev_ext_servers(v, "spec.servers", "nats", 4222, hosts, ports, 4, err,
                                    sizeof err),
                     2);
    assert_string_equal(hosts[0], "a");
    assert_int_equal(ports[0], 4223);
    assert_string_equal(hosts[1], "b");
    assert_int_equal(ports[1], 4222);
    cJSON_Delete(v);
    v = cJSON_CreateString("mqtt://a:1883");
    assert_int_equal(ev_ext_servers(v, "spec.servers", "nats", 4222, hosts, ports, 4, err,
                                    sizeof err),
                     -1);
    assert_non_null(strstr(err, "spec.servers"));
    cJSON_Delete(v);
    v = cJSON_CreateString("nats://a:99999");
    assert_int_equal(ev_ext_servers(v, "spec.servers", "nats", 4222, hosts, ports, 4, err,
                                    sizeof err),
                     -1);
    cJSON_Delete(v);
    assert_int_equal(ev_ext_servers(NULL, "spec.servers", "nats", 4222, hosts, ports, 4, err,
                                    sizeof err),
                     -1);
    assert_non_null(strstr(err, "required"));
}

/* Each case: a spec, the check, and the field its error must name ("" ok). */
static void check(int (*fn)(const cJSON *, char *, size_t), const char *json, const char *field)
{
    cJSON *spec = cJSON_Parse(json);
    assert_non_null(spec);
    char err[256] = "";
    int rc = fn(spec, err, sizeof err);
    cJSON_Delete(spec);
    if (!*field) {
        if (rc)
            fail_msg("%s: unexpected error: %s", json, err);
        return;
    }
    if (rc == 0 || !strstr(err, field))
        fail_msg("%s: wanted an error naming %s, got %d \"%s\"", json, field, rc, err);
}

static void test_spec_checks(void **state)
{
    (void)state;
    check(ev_nats_check, "{\"servers\":\"nats://h:1\",\"stream\":\"S\"}", "");
    check(ev_nats_check, "{\"servers\":\"nats://h:1\"}", "spec.stream");
    check(ev_nats_check, "{\"servers\":\"nats://h:1\",\"stream\":\"a.b\"}", "spec.stream");
    check(ev_nats_check, "{\"stream\":\"S\"}", "spec.servers");
    check(ev_nats_check, "{\"servers\":\"nats://h:1\",\"stream\":\"S\",\"consumer\":\"c*\"}",
          "spec.consumer");
    check(ev_nats_check,
          "{\"servers\":\"nats://h:1\",\"stream\":\"S\",\"ackWait\":\"PT5S\","
          "\"delivery\":{\"timeout\":\"PT10S\"}}",
          "spec.ackWait");
    check(ev_mqtt_check, "{\"servers\":\"mqtt://h\",\"topic\":\"a/+\",\"group\":\"g\"}", "");
    check(ev_mqtt_check, "{\"servers\":\"mqtt://h\"}", "spec.topic");
    check(ev_mqtt_check, "{\"servers\":\"mqtt://h\",\"topic\":\"t\",\"group\":\"a/b\"}",
          "spec.group");
    check(ev_mqtt_check, "{\"servers\":\"mqtt://h\",\"topic\":\"t\",\"protocolVersion\":\"4\"}",
          "spec.protocolVersion");
    check(ev_rabbit_check,
          "{\"broker\":\"amqp://u:p@h:5672\",\"rabbitmqResourcesConfig\":{\"queueName\":\"q\"}}",
          "");
    check(ev_rabbit_check, "{\"rabbitmqResourcesConfig\":{\"queueName\":\"q\"}}", "spec.broker");
    check(ev_rabbit_check, "{\"broker\":\"amqp://h\",\"rabbitmqResourcesConfig\":{}}",
          "spec.rabbitmqResourcesConfig.queueName");
    check(ev_rabbit_check,
          "{\"broker\":\"amqp://h\",\"rabbitmqResourcesConfig\":{\"queueName\":\"q\","
          "\"parallelism\":0}}",
          "spec.rabbitmqResourcesConfig.parallelism");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_event), cmocka_unit_test(test_message_too_large),
        cmocka_unit_test(test_message_is_event), cmocka_unit_test(test_servers),
        cmocka_unit_test(test_spec_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
