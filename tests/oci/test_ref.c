/*
 * test_ref.c — image references (src/oci/ref.c): which strings are
 * registry references rather than files, how they split into registry,
 * repository, tag and digest, Docker Hub's short forms, and the one-line
 * errors for malformed ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "oci/oci.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_is_registry(void **state)
{
    (void)state;
    assert_true(oci_ref_is_registry("registry.example.com/hello:1.0"));
    assert_true(oci_ref_is_registry("myregistry.com/hello-function:latest"));
    assert_true(oci_ref_is_registry("127.0.0.1:5000/fns/hello"));
    assert_true(oci_ref_is_registry("localhost/hello"));
    assert_true(oci_ref_is_registry("ghcr.io/user/app@sha256:" D64));
    /* files, blob names and Docker Hub short forms stay what they look like */
    assert_false(oci_ref_is_registry("hello.wasm"));
    assert_false(oci_ref_is_registry("./hello.wasm"));
    assert_false(oci_ref_is_registry("../build/examples/hello.wasm"));
    assert_false(oci_ref_is_registry("/abs/hello"));
    assert_false(oci_ref_is_registry("dir/hello"));
    assert_false(oci_ref_is_registry("build.d/hello.wasm"));
    assert_false(oci_ref_is_registry("sha256:" D64));
    assert_false(oci_ref_is_registry("hello"));
    assert_false(oci_ref_is_registry("user/app"));
    assert_false(oci_ref_is_registry(""));
}

static void expect(const char *s, const char *registry, const char *repo, const char *tag,
                   const char *digest)
{
    oci_ref_t r;
    char err[256] = "";
    assert_int_equal(oci_ref_parse(s, &r, err, sizeof err), 0);
    assert_string_equal(r.registry, registry);
    assert_string_equal(r.repository, repo);
    assert_string_equal(r.tag, tag);
    assert_string_equal(r.digest, digest);
}

static void test_parse(void **state)
{
    (void)state;
    expect("registry.example.com/hello:1.0", "registry.example.com", "hello", "1.0", "");
    expect("127.0.0.1:5000/fns/hello", "127.0.0.1:5000", "fns/hello", "latest", "");
    expect("localhost:5000/a/b/c:v_1.2-rc", "localhost:5000", "a/b/c", "v_1.2-rc", "");
    expect("ghcr.io/u/app@sha256:" D64, "ghcr.io", "u/app", "", "sha256:" D64);
    expect("ghcr.io/u/app:1@sha256:" D64, "ghcr.io", "u/app", "1", "sha256:" D64);
    expect("[::1]:5000/x:y", "[::1]:5000", "x", "y", "");
    /* Docker Hub */
    expect("hello", OCI_DOCKER_HUB, "library/hello", "latest", "");
    expect("hello:1", OCI_DOCKER_HUB, "library/hello", "1", "");
    expect("user/app", OCI_DOCKER_HUB, "user/app", "latest", "");
    expect("docker.io/user/app:2", OCI_DOCKER_HUB, "user/app", "2", "");
    expect("docker.io/hello", OCI_DOCKER_HUB, "library/hello", "latest", "");
    expect("index.docker.io/library/hello", OCI_DOCKER_HUB, "library/hello", "latest", "");
    expect("my-org/my__app.x", OCI_DOCKER_HUB, "my-org/my__app.x", "latest", "");
}

static void test_format(void **state)
{
    (void)state;
    oci_ref_t r;
    char err[256], out[512];
    assert_int_equal(oci_ref_parse("127.0.0.1:5000/fns/hello:1@sha256:" D64, &r, err, sizeof err), 0);
    oci_ref_format(&r, out, sizeof out);
    assert_string_equal(out, "127.0.0.1:5000/fns/hello:1@sha256:" D64);
    assert_int_equal(oci_ref_parse("hello", &r, err, sizeof err), 0);
    oci_ref_format(&r, out, sizeof out);
    assert_string_equal(out, OCI_DOCKER_HUB "/library/hello:latest");
}

static void expect_error(const char *s, const char *why)
{
    oci_ref_t r;
    char err[256] = "";
    assert_int_equal(oci_ref_parse(s, &r, err, sizeof err), -1);
    if (!strstr(err, why)) fail_msg("'%s': error '%s' lacks '%s'", s, err, why);
    assert_non_null(strstr(err, "bad image reference"));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("", "empty");
    expect_error("example.com/Hello", "lower-case");
    expect_error("example.com/a//b", "lower-case");
    expect_error("example.com/a/", "lower-case");
    expect_error("example.com/_a", "lower-case");
    expect_error("example.com/a:", "tag");
    expect_error("example.com/a:-x", "tag");
    expect_error("example.com/a:x/y", "lower-case");
    expect_error("example.com/a@sha256:abc", "digest");
    expect_error("example.com/a@md5:" D64, "digest");
    expect_error("exa$mple.com/a", "registry host");
    char longtag[200];
    memset(longtag, 'a', sizeof longtag);
    memcpy(longtag, "e.com/a:", 8);
    longtag[sizeof longtag - 1] = 0;
    expect_error(longtag, "tag");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_registry),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
