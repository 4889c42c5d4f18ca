/*
 * test_utf8.c — strict UTF-8 as src/common/utf8.c checks it for manifests,
 * outbound HTTP requests, invocation bodies, logs and JSON escaping: every
 * boundary of RFC 3629 (overlong forms, surrogates, U+10FFFF, truncated
 * and broken sequences) on both sides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/utf8.h"

typedef struct sample {
    const char *s;
    size_t n;
} sample_t;

#define S(lit) {lit, sizeof lit - 1}

static void test_valid(void **state)
{
    (void)state;
    static const sample_t good[] = {
        S(""), S("hello"), S("caf\xc3\xa9"), S("\xc2\x80"), S("\xdf\xbf"),
        S("\xe0\xa0\x80"), S("\xed\x9f\xbf"), S("\xee\x80\x80"), S("\xef\xbf\xbf"),
        S("\xf0\x90\x80\x80"), S("\xf4\x8f\xbf\xbf"), S("a\0b"),
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!cm_utf8_valid(good[i].s, good[i].n)) fail_msg("good[%zu] rejected", i);
    static const sample_t bad[] = {
        S("\x80"),             /* a lone continuation byte */
        S("\xc0\xaf"),         /* overlong '/' */
        S("\xc1\xbf"),         /* overlong */
        S("\xe0\x9f\xbf"),     /* overlong below U+0800 */
        S("\xed\xa0\x80"),     /* surrogate U+D800 */
        S("\xed\xbf\xbf"),     /* surrogate U+DFFF */
        S("\xf0\x8f\xbf\xbf"), /* overlong below U+10000 */
        S("\xf4\x90\x80\x80"), /* U+110000 */
        S("\xf5\x80\x80\x80"), /* no such lead byte */
        S("\xff"),             S("\xc3"), /* truncated */
        S("\xe2\x82"),         /* truncated */
        S("\xe2\x28\xa1"),     /* broken continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cm_utf8_valid(bad[i].s, bad[i].n)) fail_msg("bad[%zu] accepted", i);
}

static void test_offset_and_len(void **state)
{
    (void)state;
    static const char s[] = "ab\xc3\xa9\xed\xa0\x80z";
    assert_int_equal(cm_utf8_bad_offset(s, sizeof s - 1), 4);
    assert_int_equal(cm_utf8_bad_offset(s, 4), 4); /* all valid: n */
    assert_int_equal(cm_utf8_len(s, 1), 1);
    assert_int_equal(cm_utf8_len(s + 2, 2), 2);
    assert_int_equal(cm_utf8_len(s + 2, 1), 0); /* cut short by n */
    assert_int_equal(cm_utf8_len(s + 4, 3), 0);
    assert_int_equal(cm_utf8_len("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(cm_utf8_len("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_offset_and_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
