/*
 * test_http_out.c — outbound HTTP's decisions without a network
 * (src/host/http_out.h): which allowed-hosts entries are valid, which
 * URLs an allowed list lets through (scheme, host, port; numeric hosts
 * normalised the way the request will be made), and which addresses count
 * as public when a host is given by name. The requests themselves are
 * tested through the daemon (tests/host/http_tests.sh).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "host/http_out.h"

static void test_entries(void **state)
{
    (void)state;
    char err[256];
    const char *good[] = {"https://api.example.com", "http://127.0.0.1:9000", "http://[::1]:8080",
                          "https://API.Example.com/", "http://10.0.0.5", "https://*.example.com",
                          "http://*.svc.example:8080"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (ho_allowed_host_check(good[i], err, sizeof err) != 0)
            fail_msg("%s refused: %s", good[i], err);
    const char *bad[] = {"api.example.com", "ftp://a.example", "https://a.example/x",
                         "https://a.example?q=1", "https://u:p@a.example", "https://*.com",
                         "https://a.*.example.com", "https://*example.com", "https://*",
                         "*://a.example", "https://*.*.example.com", "https://*.example.com/x",
                         "https://a.example:99999", "", "https://"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (ho_allowed_host_check(bad[i], err, sizeof err) == 0) fail_msg("%s accepted", bad[i]);
    assert_non_null(strstr(err, "https://"));
}

static void test_policy(void **state)
{
    (void)state;
    char err[256];
    const char *entries[] = {"https://api.example.com", "http://127.0.0.1:9000", "http://[::1]:8080",
                             "http://svc.example:8081"};
    ho_policy_t *p = ho_policy_new(entries, 4, err, sizeof err);
    assert_non_null(p);
    bool ip;
    assert_int_equal(ho_policy_allows(p, "https://api.example.com/v1/x?y=1", &ip), HO_OK);
    assert_false(ip);
    assert_int_equal(ho_policy_allows(p, "https://API.EXAMPLE.COM:443/", &ip), HO_OK);
    assert_int_equal(ho_policy_allows(p, "http://api.example.com/", &ip), HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "https://api.example.com:8443/", &ip),
                     HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "https://evil.example/?x=api.example.com", &ip),
                     HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "https://api.example.com.evil.example/", &ip),
                     HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "https://api.example.com@evil.example/", &ip),
                     HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "http://127.0.0.1:9000/a", &ip), HO_OK);
    assert_true(ip);
    /* Other spellings of 127.0.0.1 are that address for the request too. */
    assert_int_equal(ho_policy_allows(p, "http://127.1:9000/", &ip), HO_OK);
    assert_int_equal(ho_policy_allows(p, "http://2130706433:9000/", &ip), HO_OK);
    assert_int_equal(ho_policy_allows(p, "http://127.0.0.1:9001/", &ip), HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "http://localhost:9000/", &ip), HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "http://[::1]:8080/", &ip), HO_OK);
    assert_true(ip);
    assert_int_equal(ho_policy_allows(p, "http://svc.example:8081/", &ip), HO_OK);
    assert_false(ip);
    assert_int_equal(ho_policy_allows(p, "file:///etc/passwd", &ip), HO_INVALID_URL);
    assert_int_equal(ho_policy_allows(p, "not a url", &ip), HO_INVALID_URL);
    assert_int_equal(ho_policy_allows(NULL, "https://api.example.com/", &ip),
                     HO_DESTINATION_NOT_ALLOWED);
    ho_policy_unref(p);

    /* A wildcard first label: names under the domain, not the domain. */
    const char *wild[] = {"https://*.example.org", "http://*.svc.example:8080"};
    p = ho_policy_new(wild, 2, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(ho_policy_allows(p, "https://a.example.org/x", &ip), HO_OK);
    assert_false(ip); /* a name: its addresses must be public */
    assert_int_equal(ho_policy_allows(p, "https://x.y.EXAMPLE.org/", &ip), HO_OK);
    assert_int_equal(ho_policy_allows(p, "https://example.org/", &ip), HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "https://evilexample.org/", &ip), HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "https://a.example.org.evil.example/", &ip),
                     HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "http://a.example.org/", &ip), HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "https://a.example.org:8443/", &ip),
                     HO_DESTINATION_NOT_ALLOWED);
    assert_int_equal(ho_policy_allows(p, "http://db.svc.example:8080/", &ip), HO_OK);
    assert_int_equal(ho_policy_allows(p, "http://db.svc.example/", &ip), HO_DESTINATION_NOT_ALLOWED);
    ho_policy_unref(p);

    const char *one_bad[] = {"https://ok.example", "https://x.example/path"};
    assert_null(ho_policy_new(one_bad, 2, err, sizeof err));
    assert_non_null(strstr(err, "x.example/path"));
}

static bool public4(const char *a)
{
    struct sockaddr_in s = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return ho_addr_is_public((struct sockaddr *)&s);
}

static bool public6(const char *a)
{
    struct sockaddr_in6 s = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
    return ho_addr_is_public((struct sockaddr *)&s);
}

static void test_address_classes(void **state)
{
    (void)state;
    const char *private4[] = {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
                              "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                              "224.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.0.8"};
    for (size_t i = 0; i < sizeof private4 / sizeof *private4; i++)
        if (public4(private4[i])) fail_msg("%s counted as public", private4[i]);
    const char *public4s[] = {"93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "1.1.1.1"};
    for (size_t i = 0; i < sizeof public4s / sizeof *public4s; i++)
        if (!public4(public4s[i])) fail_msg("%s counted as private", public4s[i]);
    const char *private6[] = {"::1", "::", "fe80::1", "fd00::1", "fc12::3", "ff02::1",
                              "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
                              "2001:db8::1"};
    for (size_t i = 0; i < sizeof private6 / sizeof *private6; i++)
        if (public6(private6[i])) fail_msg("%s counted as public", private6[i]);
    assert_true(public6("2606:4700:4700::1111"));
    assert_true(public6("::ffff:8.8.8.8"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_address_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
