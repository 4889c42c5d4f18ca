/*
 * test_k8sname.c — the Kubernetes name checks of src/common/k8sname.c that
 * manifests, Secrets, ConfigMaps, ScaledObjects and TriggerAuthentications
 * all go through: what each form accepts and where it stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/k8sname.h"

static void test_label(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "hello", "hello-world", "a1", "x-1-y"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!cm_k8s_label_ok(good[i], 63)) fail_msg("'%s' rejected", good[i]);
    static const char *const bad[] = {"", "1abc", "-a", "a-", "Hello", "a.b", "a_b", "a b", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cm_k8s_label_ok(bad[i], 63)) fail_msg("'%s' accepted", bad[i]);
    char s[70];
    memset(s, 'a', sizeof s);
    s[63] = '\0';
    assert_true(cm_k8s_label_ok(s, 63));
    s[63] = 'a';
    s[64] = '\0';
    assert_false(cm_k8s_label_ok(s, 63));
    assert_true(cm_k8s_label_ok(s, 64));
}

static void test_subdomain(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "1abc", "prom-auth", "db.creds", "a.b-c.d", "9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!cm_k8s_subdomain_ok(good[i])) fail_msg("'%s' rejected", good[i]);
    static const char *const bad[] = {"", "-a", "a-", ".a", "a.", "A", "a_b", "a/b", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cm_k8s_subdomain_ok(bad[i])) fail_msg("'%s' accepted", bad[i]);
    char s[260];
    memset(s, 'a', sizeof s);
    s[253] = '\0';
    assert_true(cm_k8s_subdomain_ok(s));
    s[253] = 'a';
    s[254] = '\0';
    assert_false(cm_k8s_subdomain_ok(s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label),
        cmocka_unit_test(test_subdomain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
