/*
 * test_invocations.c — the store of asynchronous invocation outcomes
 * (src/serving/invocations.c): ids, the JSON a record gives, body cut at
 * the cap, binary bodies in base64, and eviction (oldest completed first,
 * pending never, by count, by bytes and by age).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serving/internal.h"

static char *json_of(srv_inv_store_t *st, srv_inv_t *v)
{
    char *j = srv_inv_json(st, srv_inv_id(v));
    assert_non_null(j);
    return j;
}

static void test_record_json(void **state)
{
    (void)state;
    srv_inv_store_t *st = srv_inv_store_new(0, 0, 0);
    srv_inv_t *a = srv_inv_new(st, "echo", "echo-00001"), *b = srv_inv_new(st, "echo", "echo-00001");
    assert_int_equal(strlen(srv_inv_id(a)), SRV_INV_ID_LEN);
    assert_string_not_equal(srv_inv_id(a), srv_inv_id(b));
    char *j = json_of(st, a);
    assert_non_null(strstr(j, "\"state\":\"pending\""));
    assert_null(strstr(j, "\"status\""));
    free(j);
    hs_header_t h[1] = {{"Content-Type", "text/plain"}};
    srv_inv_finish(st, a, 201, h, 1, "hi \"there\"", 10, 1000000);
    j = json_of(st, a);
    assert_non_null(strstr(j, "\"state\":\"completed\""));
    assert_non_null(strstr(j, "\"status\":201"));
    assert_non_null(strstr(j, "{\"name\":\"Content-Type\",\"value\":\"text/plain\"}"));
    assert_non_null(strstr(j, "\"body\":\"hi \\\"there\\\"\""));
    assert_non_null(strstr(j, "\"body_truncated\":false"));
    assert_non_null(strstr(j, "\"started_at\":\""));
    free(j);
    const uint8_t bin[] = {0xff, 0x00, 0x41};
    srv_inv_finish(st, b, 200, NULL, 0, bin, 3, 0);
    j = json_of(st, b);
    assert_non_null(strstr(j, "\"body_base64\":\"/wBB\""));
    assert_null(strstr(j, "started_at")); /* never ran */
    free(j);
    assert_null(srv_inv_json(st, "0123456789abcdef0123456789abcdef"));
    srv_inv_store_free(st);
}

static void test_body_cap(void **state)
{
    (void)state;
    srv_inv_store_t *st = srv_inv_store_new(0, 0, 0);
    size_t n = SRV_INV_BODY_MAX + 100;
    char *big = malloc(n);
    memset(big, 'x', n);
    srv_inv_t *a = srv_inv_new(st, "f", "f-00001");
    srv_inv_finish(st, a, 200, NULL, 0, big, n, 0);
    char *j = json_of(st, a);
    assert_non_null(strstr(j, "\"body_truncated\":true"));
    char *body = strstr(j, "\"body\":\"");
    assert_non_null(body);
    assert_int_equal(strspn(body + 8, "x"), SRV_INV_BODY_MAX);
    free(j);
    free(big);
    srv_inv_store_free(st);
}

static void test_eviction(void **state)
{
    (void)state;
    /* At most 3 records: the oldest completed go first, pending stay. */
    srv_inv_store_t *st = srv_inv_store_new(3, 0, 0);
    srv_inv_t *p = srv_inv_new(st, "f", "r");      /* stays pending */
    srv_inv_t *v[4];
    char ids[4][SRV_INV_ID_LEN + 1];
    for (int k = 0; k < 4; k++) {
        v[k] = srv_inv_new(st, "f", "r");
        strcpy(ids[k], srv_inv_id(v[k]));
        srv_inv_finish(st, v[k], 200, NULL, 0, "ok", 2, 0);
    }
    char *j;
    assert_non_null(j = srv_inv_json(st, srv_inv_id(p)));
    free(j);
    assert_null(srv_inv_json(st, ids[0]));
    assert_null(srv_inv_json(st, ids[1]));
    assert_non_null(j = srv_inv_json(st, ids[2]));
    free(j);
    assert_non_null(j = srv_inv_json(st, ids[3]));
    free(j);
    srv_inv_store_free(st);

    /* By bytes: two 600-byte bodies do not fit in 1000 bytes. */
    st = srv_inv_store_new(0, 1000, 0);
    char body[600];
    memset(body, 'b', sizeof body);
    srv_inv_t *a = srv_inv_new(st, "f", "r");
    strcpy(ids[0], srv_inv_id(a));
    srv_inv_finish(st, a, 200, NULL, 0, body, sizeof body, 0);
    srv_inv_t *b = srv_inv_new(st, "f", "r");
    srv_inv_finish(st, b, 200, NULL, 0, body, sizeof body, 0);
    assert_null(srv_inv_json(st, ids[0]));
    assert_non_null(j = srv_inv_json(st, srv_inv_id(b)));
    free(j);
    srv_inv_store_free(st);

    /* By age: a completed record older than the retention is gone. */
    st = srv_inv_store_new(0, 0, 20 * 1000000ull);
    a = srv_inv_new(st, "f", "r");
    strcpy(ids[0], srv_inv_id(a));
    srv_inv_finish(st, a, 200, NULL, 0, "x", 1, 0);
    assert_non_null(j = srv_inv_json(st, ids[0]));
    free(j);
    struct timespec ts = {0, 40 * 1000000L};
    nanosleep(&ts, NULL);
    assert_null(srv_inv_json(st, ids[0]));
    srv_inv_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_json),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
