/*
 * triggerauths.c — `wasmfn get triggerauthentications`, `wasmfn get
 * triggerauthentication NAME` and `wasmfn delete triggerauthentication
 * NAME...`: KEDA TriggerAuthentications through the admin API
 * (GET/DELETE /v1/triggerauthentications[/NAME]), reached from get and
 * delete (commands.c) when their first word names the kind, as with
 * kubectl. (Not kubectl's short name `ta`: that could be a function's
 * name.) They show references to Secrets, never a value.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

bool cli_ta_is_kind(const char *word)
{
    return strcmp(word, "triggerauthentication") == 0 ||
           strcmp(word, "triggerauthentications") == 0 ||
           strcmp(word, "triggerauthentication.keda.sh") == 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "bearerToken=secret/prom-auth:token, ..." */
static void refs_text(const cJSON *o, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    static const char *const fields[] = {"secretTargetRef", "configMapTargetRef"};
    for (size_t f = 0; f < 2; f++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, fields[f]))
        {
            int w = snprintf(out + len, n - len, "%s%s=%s/%s:%s", len ? ", " : "",
                             jstr(e, "parameter"), f ? "configmap" : "secret", jstr(e, "name"),
                             jstr(e, "key"));
            if (w < 0 || (size_t)w >= n - len) return;
            len += (size_t)w;
        }
    }
}

static void print_table(const cJSON *arr)
{
    static const char *const hdr[] = {"NAME", "PARAMETERS (from secret/NAME:KEY)", "USED BY"};
    cli_table_t t;
    cli_table_init(&t, 3, hdr);
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        char refs[512], users[512];
        size_t len = 0;
        refs_text(o, refs, sizeof refs);
        users[0] = '\0';
        const cJSON *u;
        cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(o, "usedBy"))
        {
            int w = snprintf(users + len, sizeof users - len, "%s%s", len ? ", " : "",
                             cJSON_IsString(u) ? u->valuestring : "?");
            if (w < 0 || (size_t)w >= sizeof users - len) break;
            len += (size_t)w;
        }
        const char *row[] = {jstr(o, "name"), refs, users};
        cli_table_row(&t, row);
    }
    cli_table_print(&t, stdout, "");
    cli_table_free(&t);
}

int cli_ta_get(const char *name, bool json)
{
    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    char *esc = name ? cli_escape(name) : NULL, *path = NULL;
    if ((name && !esc) ||
        asprintf(&path, "/v1/triggerauthentications%s%s", name ? "/" : "", name ? esc : "") < 0) {
        free(esc);
        cli_api_close(&api);
        return CLI_EXIT_FAIL;
    }
    free(esc);
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (cli_api_json(&api, "GET", path, NULL, &r) == 0) {
        if (r.status != 200) {
            rc = cli_api_fail(&api, "get", name ? name : "triggerauthentications", &r);
        } else if (json) {
            fwrite(r.body.data, 1, r.body.len, stdout);
            putchar('\n');
            rc = 0;
        } else {
            cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
            if (name && cJSON_IsObject(j)) {
                cJSON *arr = cJSON_CreateArray();
                cJSON_AddItemReferenceToArray(arr, j);
                print_table(arr);
                cJSON_Delete(arr);
                rc = 0;
            } else if (!name && cJSON_IsArray(j)) {
                print_table(j);
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

int cli_ta_delete(int argc, char **argv, int first)
{
    if (first >= argc) {
        fprintf(stderr, "wasmfn delete: triggerauthentication wants a NAME (see wasmfn delete "
                        "--help)\n");
        return CLI_EXIT_ARGS;
    }
    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    int rc = 0;
    for (int i = first; i < argc; i++) {
        char *esc = cli_escape(argv[i]), *path = NULL;
        if (!esc || asprintf(&path, "/v1/triggerauthentications/%s", esc) < 0) {
            free(esc);
            rc = CLI_EXIT_FAIL;
            break;
        }
        free(esc);
        cli_response_t r;
        if (cli_api_json(&api, "DELETE", path, NULL, &r) != 0) {
            free(path);
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (r.status / 100 != 2)
            rc = cli_api_fail(&api, "delete", argv[i], &r);
        else
            printf("triggerauthentication/%s: deleted\n", argv[i]);
        cli_response_free(&r);
        free(path);
    }
    cli_api_close(&api);
    return rc;
}
