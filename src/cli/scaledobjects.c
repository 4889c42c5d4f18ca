/*
 * scaledobjects.c — KEDA ScaledObjects as a CLI kind (cli_kind_t) for
 * `wasmfn get scaledobjects`, `wasmfn get scaledobject NAME` and `wasmfn
 * delete scaledobject NAME...` through the admin API (GET/DELETE
 * /v1/scaledobjects[/NAME], collection.c), reached from get and delete
 * (commands.c) when their first word names the kind, as with kubectl.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"

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
        int w = snprintf(out + len, n - len, "%s%s=%s/%g", len ? ", " : "",
                         cli_json_str(t, "name", NULL), val, cJSON_IsNumber(g) ? g->valuedouble : 0);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
}

static void print_table(const cJSON *arr)
{
    static const char *const hdr[] = {"NAME",   "TARGET",   "REPLICAS",
                                      "ACTIVE", "FALLBACK", "PAUSED",
                                      "TRIGGERS (value/target)", "LAST ERROR"};
    cli_table_t t;
    cli_table_init(&t, 8, hdr);
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
            cli_json_str(o, "name", NULL), cli_json_str(o, "scaleTargetRef", NULL), reps,
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "active")) ? "True" : "False",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "fallback")) ? "True" : "False",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "paused")) ? "True" : "False",
            trig, cli_json_str(st, "lastError", NULL)};
        cli_table_row(&t, row);
    }
    cli_table_print(&t, stdout, "");
    cli_table_free(&t);
}

static const char *const words[] = {"scaledobject", "scaledobjects", "scaledobject.keda.sh", NULL};

const cli_kind_t cli_kind_scaledobject = {
    .singular = "scaledobject",
    .plural = "scaledobjects",
    .words = words,
    .print_table = print_table,
};
