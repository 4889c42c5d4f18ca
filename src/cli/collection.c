/*
 * collection.c — `wasmfn get KIND`, `wasmfn get KIND NAME` and `wasmfn
 * delete KIND NAME...` for a simple admin-API collection (GET /v1/PLURAL,
 * GET and DELETE /v1/PLURAL/NAME), written once for every kind that has
 * one (scaledobjects.c, triggerauths.c). A kind brings its names and how
 * to print its objects as a table (cli.h, cli_kind_t).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

bool cli_kind_is(const cli_kind_t *k, const char *word)
{
    for (const char *const *w = k->words; *w; w++)
        if (strcmp(word, *w) == 0) return true;
    return false;
}

/* "/v1/PLURAL" or "/v1/PLURAL/NAME" with NAME escaped; caller frees. */
static char *kind_path(const cli_kind_t *k, const char *name)
{
    char *esc = name ? cli_escape(name) : NULL, *path = NULL;
    if (name && !esc) return NULL;
    if (asprintf(&path, "/v1/%s%s%s", k->plural, name ? "/" : "", name ? esc : "") < 0)
        path = NULL;
    free(esc);
    return path;
}

int cli_kind_get(const cli_kind_t *k, const char *name, bool json)
{
    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    char *path = kind_path(k, name);
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (path && cli_api_json(&api, "GET", path, NULL, &r) == 0) {
        if (r.status != 200) {
            rc = cli_api_fail(&api, "get", name ? name : k->plural, &r);
        } else if (json) {
            fwrite(r.body.data, 1, r.body.len, stdout);
            putchar('\n');
            rc = 0;
        } else {
            cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
            if (name && cJSON_IsObject(j)) {
                /* One object prints as a table of one row. */
                cJSON *arr = cJSON_CreateArray();
                cJSON_AddItemReferenceToArray(arr, j);
                k->print_table(arr);
                cJSON_Delete(arr);
                rc = 0;
            } else if (!name && cJSON_IsArray(j)) {
                k->print_table(j);
                rc = 0;
            } else {
                fprintf(stderr, "wasmfn get: the admin API's answer is not understood\n");
            }
            cJSON_Delete(j);
        }
        cli_response_free(&r);
    }
    free(path);
    cli_api_close(&api);
    return rc;
}

int cli_kind_delete(const cli_kind_t *k, int argc, char **argv, int first)
{
    if (first >= argc) {
        fprintf(stderr, "wasmfn delete: %s wants a NAME (see wasmfn delete --help)\n", k->singular);
        return CLI_EXIT_ARGS;
    }
    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    int rc = 0;
    for (int i = first; i < argc; i++) {
        char *path = kind_path(k, argv[i]);
        cli_response_t r;
        if (!path || cli_api_json(&api, "DELETE", path, NULL, &r) != 0) {
            free(path);
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (r.status / 100 != 2)
            rc = cli_api_fail(&api, "delete", argv[i], &r);
        else
            printf("%s/%s: deleted\n", k->singular, argv[i]);
        cli_response_free(&r);
        free(path);
    }
    cli_api_close(&api);
    return rc;
}
