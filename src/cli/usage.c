/*
 * usage.c — `wasmfn usage [NAME] [--since T] [--until T] [--step D] [-o json]`:
 * asks the admin API for metered usage (GET /v1/usage, docs/metering.md)
 * and prints it as a table, or as the API's JSON array with -o json.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

void cli_usage_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn usage [NAME] [--since T] [--until T] [--step D] [-o json]\n"
            "\n"
            "Shows metered usage per function: requests, errors (5xx, traps and timeouts),\n"
            "cold starts, billed time (each invocation rounded up to the daemon's billing\n"
            "granularity, 1 ms by default), GB-seconds (memory limit in GiB x billed\n"
            "seconds) and cost at the daemon's prices. Usage is kept per minute.\n"
            "\n"
            "options:\n"
            "  NAME          only this function\n"
            "  --since T     start of the window: a duration ago (1h, 30m, 7d), an RFC 3339\n"
            "                time (2024-05-01T12:00:00Z) or a date (2024-05-01); default:\n"
            "                everything recorded\n"
            "  --until T     end of the window (same forms, or now); default: now\n"
            "  --step D      one row per function per D (whole minutes: 1m, 1h, 1d)\n"
            "  -o json       print the admin API's JSON (GET /v1/usage) as is\n"
            "  -h, --help    show this help\n"
            "\n"
            "examples:\n"
            "  wasmfn usage --since 24h\n"
            "  wasmfn usage hello --since 1h --step 5m\n"
            "  wasmfn usage -o json --since 2024-05-01 --until 2024-06-01\n"
            "\n"
            "environment: WASMFN_API (default http://127.0.0.1:8081), WASMFN_TOKEN (default:\n"
            "the admin.token file of the default data dir).\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "wasmfn usage: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see wasmfn usage --help)\n");
    return CLI_EXIT_ARGS;
}

/* Appends "&key=escaped(value)" (or "?key=..." first). */
static int add_param(cm_buf_t *b, const char *key, const char *value)
{
    if (!value) return 0;
    char *esc = cli_escape(value);
    if (!esc) return -1;
    const char *sep = strchr(b->data, '?') ? "&" : "?";
    int rc = (cm_buf_append(b, sep, 1) == 0 && cm_buf_append(b, key, strlen(key)) == 0 &&
              cm_buf_append(b, "=", 1) == 0 && cm_buf_append(b, esc, strlen(esc)) == 0)
                 ? 0
                 : -1;
    free(esc);
    return rc;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Integers as integers; small fractions readable for people. */
static const char *fmt_count(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.0f", v);
    return buf;
}

static const char *fmt_ms(double ms, char *buf, size_t n)
{
    if (ms == (double)(long long)ms)
        snprintf(buf, n, "%lld", (long long)ms);
    else
        snprintf(buf, n, "%.3f", ms);
    return buf;
}

/* Costs and GB-seconds are often tiny: fixed-point with at least three
 * significant digits ("0.00000400"), never an exponent. */
static const char *fmt_small(double v, char *buf, size_t n)
{
    int decimals = 6;
    if (v > 0 && v < 0.001) {
        decimals = 2 - (int)floor(log10(v));
        if (decimals > 15) decimals = 15;
    }
    snprintf(buf, n, "%.*f", decimals, v);
    return buf;
}

/* The start column: "2024-05-01T12:00:00Z" -> "2024-05-01 12:00". */
static const char *fmt_start(const cJSON *o, char *buf, size_t n)
{
    const char *s = cli_json_str(o, "start", NULL);
    if (!s) return "-";
    snprintf(buf, n, "%s", s);
    char *t = strchr(buf, 'T');
    if (t) *t = ' ';
    size_t len = strlen(buf);
    if (len >= 4 && strcmp(buf + len - 4, ":00Z") == 0) buf[len - 4] = 0;
    return buf;
}

static void print_table(const cJSON *arr, bool step)
{
    static const char *const hdr_plain[] = {"FUNCTION", "REQUESTS", "ERRORS", "COLD-STARTS",
                                            "BILLED-MS", "GB-SECONDS", "COST"};
    static const char *const hdr_step[] = {"START (UTC)", "FUNCTION", "REQUESTS", "ERRORS",
                                           "COLD-STARTS", "BILLED-MS", "GB-SECONDS", "COST"};
    size_t nc = step ? 8 : 7;
    cli_table_t t;
    cli_table_init(&t, nc, step ? hdr_step : hdr_plain);
    double tot[6] = {0};
    int rows = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        char c[8][64];
        const char *cells[8];
        size_t k = 0;
        if (step) cells[k++] = fmt_start(o, c[7], sizeof c[7]);
        cells[k++] = cli_json_str(o, "function", "?");
        double v[6] = {jnum(o, "requests"),  jnum(o, "errors"),     jnum(o, "cold_starts"),
                       jnum(o, "billed_ms"), jnum(o, "gb_seconds"), jnum(o, "cost")};
        cells[k++] = fmt_count(v[0], c[0], sizeof c[0]);
        cells[k++] = fmt_count(v[1], c[1], sizeof c[1]);
        cells[k++] = fmt_count(v[2], c[2], sizeof c[2]);
        cells[k++] = fmt_ms(v[3], c[3], sizeof c[3]);
        cells[k++] = fmt_small(v[4], c[4], sizeof c[4]);
        cells[k++] = fmt_small(v[5], c[5], sizeof c[5]);
        cli_table_row(&t, cells);
        for (int i = 0; i < 6; i++) tot[i] += v[i];
        rows++;
    }
    if (rows > 1) {
        char c[6][64];
        const char *cells[8];
        size_t k = 0;
        if (step) cells[k++] = "TOTAL";
        cells[k++] = step ? "" : "TOTAL";
        cells[k++] = fmt_count(tot[0], c[0], sizeof c[0]);
        cells[k++] = fmt_count(tot[1], c[1], sizeof c[1]);
        cells[k++] = fmt_count(tot[2], c[2], sizeof c[2]);
        cells[k++] = fmt_ms(tot[3], c[3], sizeof c[3]);
        cells[k++] = fmt_small(tot[4], c[4], sizeof c[4]);
        cells[k++] = fmt_small(tot[5], c[5], sizeof c[5]);
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout, "");
    cli_table_free(&t);
}

int cli_usage_main(int argc, char **argv)
{
    const char *name = NULL, *since = NULL, *until = NULL, *step = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (cli_is_help(argv[i])) {
            cli_usage_usage(stdout);
            return 0;
        }
        if ((v = cli_opt("--since", argc, argv, &i, &missing))) {
            since = v;
        } else if ((v = cli_opt("--until", argc, argv, &i, &missing))) {
            until = v;
        } else if ((v = cli_opt("--step", argc, argv, &i, &missing))) {
            step = v;
        } else if ((v = cli_opt("-o", argc, argv, &i, &missing)) ||
                   (v = cli_opt("--output", argc, argv, &i, &missing))) {
            if (strcmp(v, "json") == 0)
                json = true;
            else if (strcmp(v, "table") == 0 || strcmp(v, "wide") == 0)
                json = false;
            else if (!missing)
                return usage_error("-o wants json (or table), got '%s'", v);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("unknown option '%s'", argv[i]);
        } else if (!name) {
            name = argv[i];
            continue;
        } else {
            return usage_error("unexpected argument '%s' (one function name at most)", argv[i]);
        }
        if (missing) return usage_error("option %s needs a value", argv[i]);
    }

    cm_buf_t path = {0};
    if (cm_buf_append(&path, "/v1/usage", 9) != 0 || add_param(&path, "function", name) != 0 ||
        add_param(&path, "since", since) != 0 || add_param(&path, "until", until) != 0 ||
        add_param(&path, "step", step) != 0) {
        cm_buf_free(&path);
        fprintf(stderr, "wasmfn usage: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_api_t api;
    if (cli_api_open(&api) != 0) {
        cm_buf_free(&path);
        return CLI_EXIT_FAIL;
    }
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (cli_api_json(&api, "GET", path.data, NULL, &r) == 0) {
        if (r.status != 200) {
            rc = cli_api_fail(&api, "usage", NULL, &r);
        } else if (json) {
            fwrite(r.body.data, 1, r.body.len, stdout);
            if (r.body.len && r.body.data[r.body.len - 1] != '\n') putchar('\n');
            rc = 0;
        } else {
            cJSON *arr = cJSON_ParseWithLength(r.body.data, r.body.len);
            if (!cJSON_IsArray(arr)) {
                fprintf(stderr, "wasmfn usage: the admin API's answer is not a JSON array\n");
            } else if (cJSON_GetArraySize(arr) == 0) {
                fprintf(stderr, "No usage recorded%s%s in this window.\n", name ? " for " : "",
                        name ? name : "");
                rc = 0;
            } else {
                print_table(arr, step != NULL);
                rc = 0;
            }
            cJSON_Delete(arr);
        }
        cli_response_free(&r);
    }
    cli_api_close(&api);
    cm_buf_free(&path);
    return rc;
}
