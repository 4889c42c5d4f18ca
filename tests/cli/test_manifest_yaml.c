/*
 * test_manifest_yaml.c — the CLI's manifest reader (src/cli/manifest.c):
 * YAML documents to JSON with YAML 1.2 core typing, document numbering
 * across `---`, the line of every field, and errors that name the file,
 * document and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/client.h"

static char path[512];

static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : P_tmpdir;
}

/* Writes text to a temporary file; its name goes to `path`. */
static void write_manifest(const char *text)
{
    snprintf(path, sizeof path, "%s/wasmfn-manifest-XXXXXX", tmp_dir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static char *doc_json(const cli_doc_t *d)
{
    return cJSON_PrintUnformatted(d->json);
}

static void test_typing_and_lines(void **state)
{
    (void)state;
    write_manifest("# a comment\n"
                   "apiVersion: serving.knative.dev/v1\n"
                   "kind: Service\n"
                   "metadata: { name: hello }\n"
                   "spec:\n"
                   "  template:\n"
                   "    metadata:\n"
                   "      annotations:\n"
                   "        autoscaling.knative.dev/min-scale: \"0\"\n"
                   "    spec:\n"
                   "      timeoutSeconds: 30\n"
                   "      containers:\n"
                   "        - image: ./hello.wasm\n"
                   "          env: [ { name: A, value: '1' }, { name: B, value: 2.5 } ]\n"
                   "          x: [true, false, null, ~, 0x10, -3, 1e3, .inf, yes, !!str 7]\n");
    cli_manifest_t m;
    char err[512] = "";
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), 0);
    assert_int_equal(m.ndocs, 1);
    char *s = doc_json(&m.docs[0]);
    assert_string_equal(
        s, "{\"apiVersion\":\"serving.knative.dev/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
           "\"hello\"},\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"autoscaling."
           "knative.dev/min-scale\":\"0\"}},\"spec\":{\"timeoutSeconds\":30,\"containers\":[{"
           "\"image\":\"./hello.wasm\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\","
           "\"value\":2.5}],\"x\":[true,false,null,null,16,-3,1000,\".inf\",\"yes\",\"7\"]}]}}}}");
    free(s);
    const cli_doc_t *d = &m.docs[0];
    assert_int_equal(d->index, 1);
    assert_int_equal(d->line, 2);
    assert_int_equal(cli_doc_line(d, "spec.template.spec.containers[0].image"), 13);
    assert_int_equal(cli_doc_line(d, "spec.template.spec.timeoutSeconds"), 11);
    assert_int_equal(cli_doc_line(d, "metadata.name"), 4);
    assert_int_equal(
        cli_doc_line(d, "spec.template.metadata.annotations[autoscaling.knative.dev/min-scale]"), 9);
    /* An unknown field gets its closest known ancestor's line. */
    assert_int_equal(cli_doc_line(d, "spec.template.spec.containers[0].resources.limits"), 13);
    assert_int_equal(cli_doc_line(d, "nothing.here"), 0);
    assert_string_equal(m.dir, tmp_dir());
    cli_manifest_free(&m);
    unlink(path);
}

static void test_documents(void **state)
{
    (void)state;
    write_manifest("---\n"
                   "a: 1\n"
                   "---\n"
                   "---\n"
                   "base: &b { k: v }\n"
                   "copy: *b\n"
                   "...\n"
                   "---\n"
                   "- list\n");
    cli_manifest_t m;
    char err[512] = "";
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), 0);
    assert_int_equal(m.ndocs, 4);
    assert_int_equal(m.docs[0].index, 1);
    assert_int_equal(m.docs[0].line, 2);
    assert_null(m.docs[1].json); /* the empty document between two --- */
    assert_int_equal(m.docs[2].index, 3);
    char *s = doc_json(&m.docs[2]);
    assert_string_equal(s, "{\"base\":{\"k\":\"v\"},\"copy\":{\"k\":\"v\"}}");
    free(s);
    assert_true(cJSON_IsArray(m.docs[3].json));
    assert_int_equal(m.docs[3].line, 9);
    cli_manifest_free(&m);
    unlink(path);
}

static void test_errors(void **state)
{
    (void)state;
    cli_manifest_t m;
    char err[512] = "";

    write_manifest("a: 1\n---\nb: 2\nb: 3\n");
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, ": document 2: line 4: column 1: b: duplicate key"));
    assert_non_null(strstr(err, path));
    unlink(path);

    write_manifest("a: 1\n---\nx: 1\n---\nspec:\n  a: b: c\n");
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, ": document 3: line 6: "));
    unlink(path);

    write_manifest("a: *nope\n");
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "document 1: line 1"));
    unlink(path);

    /* Nesting beyond the limit is an error, not a stack overflow. */
    char deep[1024];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    deep[600] = 0;
    write_manifest(deep);
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "nested more than 64 levels"));
    unlink(path);

    /* A NUL in a value or a key ("\0" in double quotes) is refused, not
     * cut: "a\0b" would otherwise name function "a". */
    write_manifest("metadata:\n  name: \"a\\0b\"\n");
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, ": document 1: line 2: column 9: metadata.name: a NUL character"));
    unlink(path);
    write_manifest("env:\n  \"K\\0\": v\n");
    assert_int_equal(cli_manifest_load(path, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, ": document 1: line 2: column 3: env: a NUL character (\\0) in a key"));
    unlink(path);

    /* A device is read only up to the manifest limit. */
    assert_int_equal(cli_manifest_load("/dev/zero", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "/dev/zero: larger than 16 MiB"));

    assert_int_equal(cli_manifest_load("/nonexistent/x.yaml", &m, err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/x.yaml: No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typing_and_lines),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
