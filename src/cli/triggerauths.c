/*
 * triggerauths.c — KEDA TriggerAuthentications and
 * ClusterTriggerAuthentications as two CLI kinds (cli_kind_t) for `wasmfn
 * get triggerauthentications`, `wasmfn get triggerauthentication NAME`
 * and `wasmfn delete triggerauthentication NAME...` (and the same with
 * clustertriggerauthentication) through the admin API (GET/DELETE
 * /v1/triggerauthentications[/NAME] or
 * /v1/clustertriggerauthentications[/NAME], collection.c), reached from
 * get and delete (commands.c) when their first word names the kind, as
 * with kubectl. (Not kubectl's short names `ta` and `cta`: those could be
 * functions' names.) They show references to Secrets, never a value.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"

/* "bearerToken=secret/prom-auth:token, password=env/DB_PASS, ..." */
static void refs_text(const cJSON *o, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    static const char *const fields[] = {"secretTargetRef", "configMapTargetRef", "env"};
    static const char *const kinds[] = {"secret", "configmap", "env"};
    for (size_t f = 0; f < 3; f++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, fields[f]))
        {
            const char *key = cli_json_str(e, "key", NULL);
            int w = snprintf(out + len, n - len, "%s%s=%s/%s%s%s", len ? ", " : "",
                             cli_json_str(e, "parameter", NULL), kinds[f],
                             cli_json_str(e, "name", NULL), key ? ":" : "", key ? key : "");
            if (w < 0 || (size_t)w >= n - len) return;
            len += (size_t)w;
        }
    }
}

static void print_table(const cJSON *arr)
{
    static const char *const hdr[] = {"NAME", "PARAMETERS (from secret/NAME:KEY or env/VAR)", "USED BY"};
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
        const char *row[] = {cli_json_str(o, "name", NULL), refs, users};
        cli_table_row(&t, row);
    }
    cli_table_print(&t, stdout, "");
    cli_table_free(&t);
}

static const char *const words[] = {"triggerauthentication", "triggerauthentications",
                                    "triggerauthentication.keda.sh", NULL};

const cli_kind_t cli_kind_triggerauth = {
    .singular = "triggerauthentication",
    .plural = "triggerauthentications",
    .words = words,
    .print_table = print_table,
};

static const char *const cluster_words[] = {"clustertriggerauthentication",
                                            "clustertriggerauthentications",
                                            "clustertriggerauthentication.keda.sh", NULL};

const cli_kind_t cli_kind_clustertriggerauth = {
    .singular = "clustertriggerauthentication",
    .plural = "clustertriggerauthentications",
    .words = cluster_words,
    .print_table = print_table,
};
