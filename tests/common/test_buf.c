/*
 * test_buf.c — the growable byte buffer of src/common/buf.c: appends keep
 * a NUL after the content, and a bounded buffer (cm_buf_reserve_upto)
 * never allocates past its bound, which is why the stdout capture, the
 * store's file reads and eventing's reply bodies can use it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void test_append_keeps_a_nul(void **state)
{
    (void)state;
    cm_buf_t b = {0};
    assert_int_equal(cm_buf_str(&b, "hello"), 0);
    assert_int_equal(cm_buf_printf(&b, ", %d", 42), 0);
    assert_int_equal(b.len, 9);
    assert_string_equal(b.data, "hello, 42");
    char big[1000];
    memset(big, 'x', sizeof big);
    assert_int_equal(cm_buf_append(&b, big, sizeof big), 0);
    assert_int_equal(b.len, 1009);
    assert_int_equal(b.data[b.len], '\0');
    char *d = cm_buf_take(&b);
    assert_non_null(d);
    assert_null(b.data);
    free(d);
}

static void test_upto_never_passes_the_bound(void **state)
{
    (void)state;
    cm_buf_t b = {0};
    /* Plain doubling would take 2048 bytes for 1001; the bound keeps it
     * at the content plus its NUL. */
    assert_int_equal(cm_buf_reserve_upto(&b, 700, 1001), 0);
    assert_true(b.cap <= 1002);
    assert_int_equal(cm_buf_append(&b, "0123456789", 10), 0);
    for (int i = 0; i < 99; i++) {
        assert_int_equal(cm_buf_reserve_upto(&b, 10, 1001), 0);
        assert_int_equal(cm_buf_append(&b, "0123456789", 10), 0);
    }
    assert_int_equal(b.len, 1000);
    assert_true(b.cap <= 1002);
    /* One byte fits, a second does not; the refusal is not an oom. */
    assert_int_equal(cm_buf_reserve_upto(&b, 1, 1001), 0);
    assert_int_equal(cm_buf_reserve_upto(&b, 2, 1001), -1);
    assert_false(b.oom);
    assert_int_equal(cm_buf_append(&b, "!", 1), 0);
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.data[1001], '\0');
    cm_buf_free(&b);
}

static void test_upto_exact_size(void **state)
{
    (void)state;
    /* A file of known size read whole: exactly size + 1 bytes, even for
     * sizes doubling would round far up, and for zero. */
    size_t sizes[] = {0, 1, 255, 257, 4097, 1u << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        cm_buf_t b = {0};
        assert_int_equal(cm_buf_reserve_upto(&b, sizes[k], sizes[k]), 0);
        assert_int_equal(b.cap, sizes[k] + 1);
        cm_buf_free(&b);
    }
    cm_buf_t b = {0};
    assert_int_equal(cm_buf_reserve_upto(&b, SIZE_MAX - 1, SIZE_MAX), -1);
    assert_null(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_keeps_a_nul),
        cmocka_unit_test(test_upto_never_passes_the_bound),
        cmocka_unit_test(test_upto_exact_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
