/*
 * test_strlist.c — cm_strlist_addv (src/common/strlist.c), which every
 * manifest and KEDA object uses to collect its warnings: each call adds
 * one formatted string at the end and keeps the ones before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/strlist.h"

static int add(char ***items, uint32_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cm_strlist_addv(items, n, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_appends_in_order(void **state)
{
    (void)state;
    char **items = NULL;
    uint32_t n = 0;
    assert_int_equal(add(&items, &n, "spec.%s: ignored", "x"), 0);
    assert_int_equal(add(&items, &n, "item %u", 7u), 0);
    assert_int_equal(add(&items, &n, "%s", ""), 0);
    assert_int_equal(n, 3);
    assert_string_equal(items[0], "spec.x: ignored");
    assert_string_equal(items[1], "item 7");
    assert_string_equal(items[2], "");
    for (uint32_t i = 0; i < n; i++) free(items[i]);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
