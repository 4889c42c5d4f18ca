/*
 * test_json_str.c — cli_json_str (src/cli/client.c), the one reader of a
 * string member that the CLI's table and manifest code share: the string
 * when there is one, the caller's default for anything else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cli/client.h"

static void test_json_str(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"name\":\"hello\",\"empty\":\"\",\"n\":3,\"nul\":null,"
                           "\"list\":[\"x\"],\"Name\":\"other\"}");
    assert_non_null(o);
    assert_string_equal(cli_json_str(o, "name", "-"), "hello");
    assert_string_equal(cli_json_str(o, "empty", "-"), "");
    /* Not a string, absent, or a key in another case: the default. */
    assert_string_equal(cli_json_str(o, "n", "-"), "-");
    assert_null(cli_json_str(o, "nul", NULL));
    assert_null(cli_json_str(o, "list", NULL));
    assert_string_equal(cli_json_str(o, "missing", "?"), "?");
    assert_string_equal(cli_json_str(o, "NAME", "-"), "-");
    /* No object at all (a member that was missing one level up). */
    assert_string_equal(cli_json_str(NULL, "name", "latest"), "latest");
    assert_null(cli_json_str(cJSON_GetObjectItemCaseSensitive(o, "list"), "name", NULL));
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
