/*
 * test_kv.c — the key-value stores' table (src/store/kv.c): expiry hidden
 * on read and swept with the usage rows kept exact; limits that sweep a
 * store's own expired entries before refusing; incr on text and past
 * int64; keys by prefix at the 0xff edge (the range's upper bound);
 * values surviving a close and reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/kv.h"
#include "store/store.h"

static char dir[64];
static char err[512];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wasmfn-test-kv-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

#define K(s) (const uint8_t *)(s), strlen(s)

typedef struct usage {
    uint64_t keys, bytes;
    int n;
} usage_t;

static void usage_of(void *ud, const char *store, uint64_t keys, uint64_t bytes)
{
    usage_t *u = ud;
    if (strcmp(store, "s") == 0) u->keys = keys, u->bytes = bytes;
    u->n++;
}

static usage_t usage(st_kv_t *kv)
{
    usage_t u = {0};
    assert_int_equal(st_kv_stores(kv, usage_of, &u, err, sizeof err), ST_OK);
    return u;
}

static void test_ttl_and_sweep(void **state)
{
    (void)state;
    st_kv_t *kv = st_kv_open(dir, err, sizeof err);
    assert_non_null(kv);
    assert_int_equal(st_kv_set(kv, "s", K("a"), K("12345"), 1000, NULL, 0, err, sizeof err), ST_OK);
    assert_int_equal(st_kv_set(kv, "s", K("b"), K("xy"), 0, NULL, 0, err, sizeof err), ST_OK);
    uint8_t buf[16];
    size_t n = 0;
    assert_int_equal(st_kv_get(kv, "s", K("a"), 999, buf, sizeof buf, &n, err, sizeof err), ST_OK);
    assert_int_equal(n, 5);
    /* At its expiry time it is gone for reads, deletes and incr. */
    assert_int_equal(st_kv_get(kv, "s", K("a"), 1000, buf, sizeof buf, &n, err, sizeof err),
                     ST_NOT_FOUND);
    assert_int_equal(st_kv_delete(kv, "s", K("a"), 1000, err, sizeof err), ST_NOT_FOUND);
    usage_t u = usage(kv);
    assert_int_equal(u.keys, 1);  /* the delete removed the expired row */
    assert_int_equal(u.bytes, 3); /* "b" + "xy" */
    assert_int_equal(st_kv_set(kv, "s", K("c"), K("1"), 500, NULL, 0, err, sizeof err), ST_OK);
    uint32_t swept = 0;
    assert_int_equal(st_kv_sweep(kv, 499, 100, &swept, err, sizeof err), ST_OK);
    assert_int_equal(swept, 0);
    assert_int_equal(st_kv_sweep(kv, 500, 100, &swept, err, sizeof err), ST_OK);
    assert_int_equal(swept, 1);
    u = usage(kv);
    assert_int_equal(u.keys, 1);
    assert_int_equal(u.bytes, 3);
    /* incr of an expired key starts from 0 with no expiry. */
    assert_int_equal(st_kv_set(kv, "s", K("n"), K("41"), 10, NULL, 0, err, sizeof err), ST_OK);
    int64_t r = 0;
    assert_int_equal(st_kv_incr(kv, "s", K("n"), 1, NULL, 20, &r, err, sizeof err), ST_OK);
    assert_int_equal(r, 1);
    assert_int_equal(st_kv_get(kv, "s", K("n"), 1000000, buf, sizeof buf, &n, err, sizeof err), ST_OK);
    st_kv_close(kv);
}

static void test_limits_sweep_first(void **state)
{
    (void)state;
    st_kv_t *kv = st_kv_open(dir, err, sizeof err);
    assert_non_null(kv);
    st_kv_limits_t lim = {.max_store_keys = 2, .max_store_bytes = 100};
    assert_int_equal(st_kv_set(kv, "lim", K("a"), K("1"), 0, &lim, 0, err, sizeof err), ST_OK);
    assert_int_equal(st_kv_set(kv, "lim", K("b"), K("1"), 50, &lim, 0, err, sizeof err), ST_OK);
    assert_int_equal(st_kv_set(kv, "lim", K("c"), K("1"), 0, &lim, 10, err, sizeof err), ST_KV_LIMIT);
    assert_non_null(strstr(err, "limit of 2 keys"));
    /* Once b has expired, the write sweeps it and fits. */
    assert_int_equal(st_kv_set(kv, "lim", K("c"), K("1"), 0, &lim, 50, err, sizeof err), ST_OK);
    char big[99];
    memset(big, 'x', sizeof big);
    assert_int_equal(st_kv_set(kv, "lim", K("a"), (const uint8_t *)big, 98, 0, &lim, 50, err,
                               sizeof err), ST_KV_LIMIT);
    assert_non_null(strstr(err, "limit of 100 bytes"));
    /* Replacing a's value with one 97 bytes long fits exactly: a (1 + 97)
     * and c (1 + 1) make 100. */
    assert_int_equal(st_kv_set(kv, "lim", K("a"), (const uint8_t *)big, 97, 0, &lim, 50, err,
                               sizeof err), ST_OK);
    int64_t r;
    /* incr grows c from "1" to "10": one byte more than fits. */
    assert_int_equal(st_kv_incr(kv, "lim", K("c"), 9, &lim, 50, &r, err, sizeof err), ST_KV_LIMIT);
    assert_int_equal(st_kv_incr(kv, "lim", K("c"), 8, &lim, 50, &r, err, sizeof err), ST_OK);
    assert_int_equal(r, 9);
    st_kv_close(kv);
}

static void test_incr(void **state)
{
    (void)state;
    st_kv_t *kv = st_kv_open(dir, err, sizeof err);
    int64_t r = 0;
    assert_int_equal(st_kv_incr(kv, "i", K("x"), -3, NULL, 0, &r, err, sizeof err), ST_OK);
    assert_int_equal(r, -3);
    static const char *const bad[] = {"abc", "", " 1", "1 ", "+1", "1.5", "-", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(st_kv_set(kv, "i", K("t"), K(bad[i]), 0, NULL, 0, err, sizeof err), ST_OK);
        assert_int_equal(st_kv_incr(kv, "i", K("t"), 1, NULL, 0, &r, err, sizeof err), ST_KV_NOT_NUMBER);
    }
    assert_int_equal(st_kv_set(kv, "i", K("m"), K("-9223372036854775808"), 0, NULL, 0, err, sizeof err), ST_OK);
    assert_int_equal(st_kv_incr(kv, "i", K("m"), -1, NULL, 0, &r, err, sizeof err), ST_KV_NOT_NUMBER);
    assert_int_equal(st_kv_incr(kv, "i", K("m"), INT64_MAX, NULL, 0, &r, err, sizeof err), ST_OK);
    assert_int_equal(r, -1);
    st_kv_close(kv);
}

typedef struct keys {
    char got[256];
    int n;
} keys_t;

static int collect(void *ud, const uint8_t *key, size_t klen)
{
    keys_t *k = ud;
    for (size_t i = 0; i < klen; i++) {
        size_t l = strlen(k->got);
        snprintf(k->got + l, sizeof k->got - l, key[i] >= 0x20 && key[i] < 0x7f ? "%c" : "<%02x>", key[i]);
    }
    strcat(k->got, ",");
    k->n++;
    return 0;
}

static void test_keys_prefix(void **state)
{
    (void)state;
    st_kv_t *kv = st_kv_open(dir, err, sizeof err);
    static const char *const names[] = {"a", "a\xff", "a\xff\xff", "ab", "b", "a\xff" "b"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(st_kv_set(kv, "p", K(names[i]), K("v"), 0, NULL, 0, err, sizeof err), ST_OK);
    assert_int_equal(st_kv_set(kv, "other", K("a"), K("v"), 0, NULL, 0, err, sizeof err), ST_OK);
    keys_t k = {0};
    assert_int_equal(st_kv_keys(kv, "p", K("a\xff"), 0, collect, &k, err, sizeof err), ST_OK);
    assert_string_equal(k.got, "a<ff>,a<ff>b,a<ff><ff>,");
    memset(&k, 0, sizeof k);
    assert_int_equal(st_kv_keys(kv, "p", K("a"), 0, collect, &k, err, sizeof err), ST_OK);
    assert_int_equal(k.n, 5);
    memset(&k, 0, sizeof k);
    assert_int_equal(st_kv_keys(kv, "p", (const uint8_t *)"", 0, 0, collect, &k, err, sizeof err), ST_OK);
    assert_int_equal(k.n, 6);
    st_kv_close(kv);
}

static void test_reopen(void **state)
{
    (void)state;
    st_kv_t *kv = st_kv_open(dir, err, sizeof err);
    assert_int_equal(st_kv_set(kv, "r", K("k"), K("kept"), 0, NULL, 0, err, sizeof err), ST_OK);
    st_kv_close(kv);
    kv = st_kv_open(dir, err, sizeof err);
    uint8_t buf[8];
    size_t n = 0;
    assert_int_equal(st_kv_get(kv, "r", K("k"), 0, buf, sizeof buf, &n, err, sizeof err), ST_OK);
    assert_memory_equal(buf, "kept", 4);
    /* A buffer too small gets the length and no bytes. */
    memset(buf, 0, sizeof buf);
    assert_int_equal(st_kv_get(kv, "r", K("k"), 0, buf, 2, &n, err, sizeof err), ST_OK);
    assert_int_equal(n, 4);
    assert_int_equal(buf[0], 0);
    st_kv_close(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ttl_and_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_sweep_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
