/*
 * scaledobjects.c — `wasmfn get scaledobjects`, `wasmfn get scaledobject
 * NAME` and `wasmfn delete scaledobject NAME...`: KEDA ScaledObjects
 * through the admin API (GET/DELETE /v1/scaledobjects[/NAME]), reached from
 * get and delete (commands.c) when their first word names the kind, as
 * with kubectl.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

bool cli_so_is_kind(const char *word)
{
    return strcmp(word, "scaledobject") == 0 || strcmp(word, "scaledobjects") == 0 ||
           strcmp(word, "scaledobject.keda.sh") == 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "12 (5)" for each trigger: its value and target. */
static void triggers_text(const cJSON *st, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    const cJSON *t, *ts = cJSON_GetObjectItemCaseSensitive(st, "triggers");
    cJSON_ArrayForEach(t, ts)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "value");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(t, "target");
        char val[32];
        if (cJSON_IsNumber(v)) snprintf(val, sizeof val, "%g", v->valuedouble);
        else snprintf(val, sizeof val, "-");
        int w = snprintf(out + len, n - len, "%s%s=%s/%g", len ? ", " : "", jstr(t, "name"), val,
                         cJSON_IsNumber(g) ? g->valuedouble : 0);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
}

static void print_table(const cJSON *arr)
{
    static const char *const hdr[] = {"NAME", "TARGET", "REPLICAS", "ACTIVE", "FALLBACK",
                                      "TRIGGERS (value/target)", "LAST ERROR"};
    cli_table_t t;
    cli_table_init(&t, 7, hdr);
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(st, "desiredReplicas");
        char reps[32], trig[512];
        if (cJSON_IsNumber(d)) snprintf(reps, sizeof reps, "%g", d->valuedouble);
        else snprintf(reps, sizeof reps, "-");
        triggers_text(st, trig, sizeof trig);
        const char *row[] = {
            jstr(o, "name"), jstr(o, "scaleTargetRef"), reps,
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "active")) ? "True" : "False",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "fallback")) ? "True" : "False",
            trig, jstr(st, "lastError")};
        cli_table_row(&t, row);
    }
    cli_table_print(&t, stdout, "");
    cli_table_free(&t);
}

int cli_so_get(const char *name, bool json)
{
    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    char *esc = name ? cli_escape(name) : NULL, *path = NULL;
    if ((name && !esc) ||
        asprintf(&path, "/v1/scaledobjects%s%s", name ? "/" : "", name ? esc : "") < 0) {
        free(esc);
        cli_api_close(&api);
        return CLI_EXIT_FAIL;
    }
    free(esc);
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (cli_api_json(&api, "GET", path, NULL, &r) == 0) {
        if (r.status != 200) {
            rc = cli_api_fail(&api, "get", name ? name : "scaledobjects", &r);
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

int cli_so_delete(int argc, char **argv, int first)
{
    if (first >= argc) {
        fprintf(stderr, "wasmfn delete: scaledobject wants a NAME (see wasmfn delete --help)\n");
        return CLI_EXIT_ARGS;
    }
    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    int rc = 0;
    for (int i = first; i < argc; i++) {
        char *esc = cli_escape(argv[i]), *path = NULL;
        if (!esc || asprintf(&path, "/v1/scaledobjects/%s", esc) < 0) {
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
            printf("scaledobject/%s: deleted\n", argv[i]);
        cli_response_free(&r);
        free(path);
    }
    cli_api_close(&api);
    return rc;
}
