/*
 * commands.c — the read-and-poke subcommands of the admin API: `wasmfn list`,
 * `get NAME`, `delete NAME`, `invoke NAME`, `logs NAME [-f]`. Each is one or
 * two requests (docs/api.md) and a readable rendering of the answer; list
 * and get print the API's JSON untouched with `-o json`, for scripts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/logring.h"

#define ENV_HELP                                                                             \
    "environment: WASMFN_API (default http://127.0.0.1:8081), WASMFN_TOKEN (default:\n"      \
    "the admin.token file of the default data dir).\n"

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "wasmfn %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see wasmfn %s --help)\n", cmd);
    return CLI_EXIT_ARGS;
}

static bool jnum(const cJSON *o, const char *k, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return false;
    *out = v->valuedouble;
    return true;
}

/* Writes a number field as text ("-" when absent). */
static const char *jnum_text(const cJSON *o, const char *k, char *buf, size_t n,
                             const char *suffix)
{
    double v;
    if (!jnum(o, k, &v)) return "-";
    snprintf(buf, n, "%.15g%s", v, suffix ? suffix : "");
    return buf;
}

/* Prints a body as it came, ending it with a newline. */
static void print_raw(const cli_response_t *r)
{
    fwrite(r->body.data, 1, r->body.len, stdout);
    if (r->body.len && r->body.data[r->body.len - 1] != '\n') putchar('\n');
}

/* The options of `wasmfn logs`. */
typedef struct logs_opts {
    const char *name;
    bool follow;
    const char *tail;
} logs_opts_t;

/* Parses "-o json|table" (also -ojson, --output json). */
static int parse_output(const char *cmd, const char *v, bool *json)
{
    if (strcmp(v, "json") == 0)
        *json = true;
    else if (strcmp(v, "table") == 0 || strcmp(v, "wide") == 0)
        *json = false;
    else
        return usage_error(cmd, "-o wants json (or table), got '%s'", v);
    return -1;
}

/* Builds "/v1/functions/NAME[SUFFIX]". Caller frees. */
/* The kind an argument after get or delete names (scaledobject, ...), or
 * NULL for a function's name. */
static const cli_kind_t *kind_of(const char *word)
{
    static const cli_kind_t *const kinds[] = {&cli_kind_scaledobject, &cli_kind_triggerauth,
                                              &cli_kind_clustertriggerauth};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (cli_kind_is(kinds[i], word)) return kinds[i];
    return NULL;
}

static char *fn_path(const char *name, const char *suffix)
{
    char *esc = cli_escape(name), *p = NULL;
    if (!esc) return NULL;
    if (asprintf(&p, "/v1/functions/%s%s", esc, suffix ? suffix : "") < 0) p = NULL;
    free(esc);
    return p;
}

/* ---- list ---- */

void cli_list_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn list [-o json]\n"
            "\n"
            "Lists the deployed functions: latest revision, traffic split, instances\n"
            "(warm/busy), queued requests and URL.\n"
            "\n"
            "options:\n"
            "  -o json      print the admin API's JSON (GET /v1/functions) as is\n"
            "  -h, --help   show this help\n"
            "\n" ENV_HELP);
}

/* "hello-00001 90%, hello-00002 10%" */
static void traffic_text(const cJSON *fn, char *out, size_t n)
{
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(fn, "traffic"), *t;
    size_t len = 0;
    out[0] = 0;
    cJSON_ArrayForEach(t, tr)
    {
        const char *rev = cli_json_str(t, "revisionName", NULL);
        double pct = 0;
        jnum(t, "percent", &pct);
        int w = snprintf(out + len, n - len, "%s%s %g%%", len ? ", " : "",
                         rev ? rev : "latest", pct);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
    if (!out[0]) snprintf(out, n, "-");
}

int cli_list_main(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        bool missing;
        const char *v;
        if (cli_is_help(argv[i])) {
            cli_list_usage(stdout);
            return 0;
        }
        if ((v = cli_opt("-o", argc, argv, &i, &missing)) ||
            (v = cli_opt("--output", argc, argv, &i, &missing))) {
            int rc = parse_output("list", v, &json);
            if (rc >= 0) return rc;
        } else {
            return usage_error("list", "unexpected argument '%s'", argv[i]);
        }
    }
    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (cli_api_json(&api, "GET", "/v1/functions", NULL, &r) == 0) {
        if (r.status != 200) {
            rc = cli_api_fail(&api, "list", NULL, &r);
        } else if (json) {
            print_raw(&r);
            rc = 0;
        } else {
            cJSON *arr = cJSON_ParseWithLength(r.body.data, r.body.len);
            if (!cJSON_IsArray(arr)) {
                fprintf(stderr, "wasmfn list: the admin API's answer is not a JSON array\n");
            } else if (cJSON_GetArraySize(arr) == 0) {
                fprintf(stderr, "No functions (deploy one with `wasmfn deploy` or `wasmfn apply -f`).\n");
                rc = 0;
            } else {
                static const char *const hdr[] = {"NAME", "LATEST", "TRAFFIC", "WARM",
                                                  "BUSY", "QUEUED", "URL"};
                cli_table_t t;
                cli_table_init(&t, 7, hdr);
                const cJSON *fn;
                cJSON_ArrayForEach(fn, arr)
                {
                    char traffic[512], warm[32], busy[32], queued[32];
                    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(fn, "instances");
                    traffic_text(fn, traffic, sizeof traffic);
                    const char *row[] = {
                        cli_json_str(fn, "name", NULL),
                        cli_json_str(fn, "latestRevision", NULL),
                        traffic,
                        jnum_text(inst, "warm", warm, sizeof warm, NULL),
                        jnum_text(inst, "busy", busy, sizeof busy, NULL),
                        jnum_text(fn, "queueDepth", queued, sizeof queued, NULL),
                        cli_json_str(fn, "url", NULL),
                    };
                    cli_table_row(&t, row);
                }
                cli_table_print(&t, stdout, "");
                cli_table_free(&t);
                rc = 0;
            }
            cJSON_Delete(arr);
        }
        cli_response_free(&r);
    }
    cli_api_close(&api);
    return rc;
}

/* ---- get ---- */

void cli_get_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn get NAME [-o json]\n"
            "       wasmfn get scaledobjects [-o json]\n"
            "       wasmfn get scaledobject NAME [-o json]\n"
            "       wasmfn get triggerauthentications [-o json]\n"
            "       wasmfn get triggerauthentication NAME [-o json]\n"
            "       wasmfn get clustertriggerauthentications [-o json]\n"
            "       wasmfn get clustertriggerauthentication NAME [-o json]\n"
            "\n"
            "Shows one function: its URL, traffic split, instances and revisions\n"
            "(module digest, env, memory and time limits, scaling settings), and for\n"
            "revisions made from registry images the reference and the image manifest\n"
            "digest it resolved to.\n"
            "\n"
            "With scaledobjects: KEDA ScaledObjects, their Service, the replicas their\n"
            "triggers ask for, whether they are active or on their fallback, each\n"
            "trigger's last value against its target, and the last error.\n"
            "\n"
            "With triggerauthentications: KEDA TriggerAuthentications, which\n"
            "trigger parameter comes from which Secret key (never a value), and the\n"
            "ScaledObjects that use each. clustertriggerauthentications: the same for\n"
            "ClusterTriggerAuthentications.\n"
            "\n"
            "options:\n"
            "  -o json      print the admin API's JSON (GET /v1/functions/NAME) as is\n"
            "  -h, --help   show this help\n"
            "\n" ENV_HELP "exit status: 0, or 1 when there is no such function.\n");
}

/* Bytes as "64Mi" when they are whole MiB. */
static const char *mem_text(const cJSON *rev, char *buf, size_t n)
{
    double b;
    if (!jnum(rev, "memoryLimitBytes", &b) || b <= 0) return "-";
    if ((unsigned long long)b % (1024 * 1024) == 0)
        snprintf(buf, n, "%lluMi", (unsigned long long)b / (1024 * 1024));
    else
        snprintf(buf, n, "%.0f", b);
    return buf;
}

static void print_revisions(const cJSON *revs)
{
    static const char *const hdr[] = {"REVISION", "IMAGE", "TIER", "MEMORY", "TIMEOUT", "SCALE",
                                      "TARGET", "WINDOW", "ENV", "CREATED"};
    cli_table_t t;
    cli_table_init(&t, 10, hdr);
    const cJSON *rev;
    cJSON_ArrayForEach(rev, revs)
    {
        char image[32], mem[32], timeout[32], scale[64], target[32], window[32], env[512];
        const char *img = cli_json_str(rev, "image", NULL);
        /* "sha256:" and 12 hex digits are enough to tell modules apart. */
        snprintf(image, sizeof image, "%.19s", img ? img : "-");
        double mn = 0, mx = 0;
        jnum(rev, "minScale", &mn);
        bool has_max = jnum(rev, "maxScale", &mx);
        if (has_max && mx > 0)
            snprintf(scale, sizeof scale, "%g..%g", mn, mx);
        else
            snprintf(scale, sizeof scale, "%g..", mn);
        size_t len = 0;
        env[0] = 0;
        const cJSON *e, *envs = cJSON_GetObjectItemCaseSensitive(rev, "env");
        cJSON_ArrayForEach(e, envs)
        {
            int w = snprintf(env + len, sizeof env - len, "%s%s=%s", len ? "," : "", e->string,
                             cJSON_IsString(e) ? e->valuestring : "?");
            if (w < 0 || (size_t)w >= sizeof env - len) break;
            len += (size_t)w;
        }
        /* "native", "interp", "interp (compiling)", "interp (failed)"; the
         * JSON (-o json) has the whole reason in tierDetail. */
        char tier[64];
        const char *tr = cli_json_str(rev, "tier", NULL);
        const char *td = cli_json_str(rev, "tierDetail", NULL);
        snprintf(tier, sizeof tier, "%s%s%s%s", tr ? tr : "-", td && *td ? " (" : "",
                 td && *td ? (strncmp(td, "failed", 6) == 0 ? "failed" : td) : "",
                 td && *td ? ")" : "");
        const char *row[] = {
            cli_json_str(rev, "name", NULL),
            image,
            tier,
            mem_text(rev, mem, sizeof mem),
            jnum_text(rev, "timeoutSeconds", timeout, sizeof timeout, "s"),
            scale,
            jnum_text(rev, "target", target, sizeof target, NULL),
            jnum_text(rev, "windowSeconds", window, sizeof window, "s"),
            env[0] ? env : "-",
            cli_json_str(rev, "created", NULL),
        };
        cli_table_row(&t, row);
    }
    cli_table_print(&t, stdout, "  ");
    cli_table_free(&t);

    /* Revisions made from registry images: the reference as the manifest
     * wrote it and the image manifest it resolved to when the revision was
     * made (the revision keeps running that, wherever the tag moves). */
    static const char *const rhdr[] = {"REVISION", "REFERENCE", "RESOLVED TO"};
    cli_table_init(&t, 3, rhdr);
    int nref = 0;
    cJSON_ArrayForEach(rev, revs)
    {
        const char *ref = cli_json_str(rev, "imageRef", NULL);
        if (!ref) continue;
        const char *dg = cli_json_str(rev, "imageDigest", NULL);
        const char *row[] = {cli_json_str(rev, "name", NULL), ref, dg && *dg ? dg : "-"};
        cli_table_row(&t, row);
        nref++;
    }
    if (nref) {
        printf("\nImages from registries:\n");
        cli_table_print(&t, stdout, "  ");
    }
    cli_table_free(&t);
}

int cli_get_main(int argc, char **argv)
{
    bool json = false;
    const char *name = NULL, *so_name = NULL;
    for (int i = 1; i < argc; i++) {
        bool missing;
        const char *v;
        if (cli_is_help(argv[i])) {
            cli_get_usage(stdout);
            return 0;
        }
        if ((v = cli_opt("-o", argc, argv, &i, &missing)) ||
            (v = cli_opt("--output", argc, argv, &i, &missing))) {
            int rc = parse_output("get", v, &json);
            if (rc >= 0) return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("get", "unknown option '%s'", argv[i]);
        } else if (!name) {
            name = argv[i];
        } else if (kind_of(name) && !so_name) {
            so_name = argv[i];
        } else {
            return usage_error("get", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!name) return usage_error("get", "wants a function NAME%s", "");
    if (kind_of(name)) return cli_kind_get(kind_of(name), so_name, json);

    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    char *path = fn_path(name, NULL);
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (path && cli_api_json(&api, "GET", path, NULL, &r) == 0) {
        if (r.status != 200) {
            rc = cli_api_fail(&api, "get", name, &r);
        } else if (json) {
            print_raw(&r);
            rc = 0;
        } else {
            cJSON *fn = cJSON_ParseWithLength(r.body.data, r.body.len);
            if (!cJSON_IsObject(fn)) {
                fprintf(stderr, "wasmfn get: the admin API's answer is not a JSON object\n");
            } else {
                const cJSON *inst = cJSON_GetObjectItemCaseSensitive(fn, "instances");
                double warm = 0, busy = 0, queued = 0;
                jnum(inst, "warm", &warm);
                jnum(inst, "busy", &busy);
                jnum(fn, "queueDepth", &queued);
                printf("Name:       %s\n", cli_json_str(fn, "name", name));
                printf("URL:        %s\n", cli_json_str(fn, "url", "-"));
                printf("Created:    %s\n", cli_json_str(fn, "created", "-"));
                printf("Latest:     %s\n",
                       cli_json_str(fn, "latestRevision", "-"));
                printf("Instances:  %g warm, %g busy, %g queued\n", warm, busy, queued);
                printf("Traffic:\n");
                const cJSON *t, *tr = cJSON_GetObjectItemCaseSensitive(fn, "traffic");
                cJSON_ArrayForEach(t, tr)
                {
                    double pct = 0;
                    jnum(t, "percent", &pct);
                    const char *tag = cli_json_str(t, "tag", NULL);
                    printf("  %-20s %3g%%%s%s%s\n",
                           cli_json_str(t, "revisionName", "latest"), pct,
                           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "latestRevision"))
                               ? "  (latest)"
                               : "",
                           tag ? "  tag " : "", tag ? tag : "");
                }
                /* Revisions: embedded, else one more request. */
                const cJSON *revs = cJSON_GetObjectItemCaseSensitive(fn, "revisions");
                cJSON *fetched = NULL;
                if (!cJSON_IsArray(revs)) {
                    char *rp = fn_path(name, "/revisions");
                    cli_response_t rr;
                    if (rp && cli_api_json(&api, "GET", rp, NULL, &rr) == 0) {
                        if (rr.status == 200)
                            fetched = cJSON_ParseWithLength(rr.body.data, rr.body.len);
                        cli_response_free(&rr);
                    }
                    free(rp);
                    revs = fetched;
                }
                printf("Revisions:\n");
                if (cJSON_IsArray(revs)) print_revisions(revs);
                cJSON_Delete(fetched);
                /* What the node's budget did not give (docs/serving.md). */
                const cJSON *w, *warns = cJSON_GetObjectItemCaseSensitive(fn, "warnings");
                cJSON_ArrayForEach(w, warns)
                    if (cJSON_IsString(w)) printf("Warnings:   %s\n", w->valuestring);
                rc = 0;
            }
            cJSON_Delete(fn);
        }
        cli_response_free(&r);
    }
    free(path);
    cli_api_close(&api);
    return rc;
}

/* ---- delete ---- */

void cli_delete_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn delete NAME [NAME...]\n"
            "       wasmfn delete scaledobject NAME [NAME...]\n"
            "       wasmfn delete triggerauthentication NAME [NAME...]\n"
            "       wasmfn delete clustertriggerauthentication NAME [NAME...]\n"
            "\n"
            "Deletes functions with their revisions and routes. Requests already running\n"
            "finish; new ones get 404. A deleted ScaledObject hands its Service's scaling\n"
            "back to the Knative autoscaler. A deleted TriggerAuthentication (or\n"
            "ClusterTriggerAuthentication) leaves the triggers that name it failing each\n"
            "read until it is applied again.\n"
            "\n"
            "options:\n"
            "  -h, --help   show this help\n"
            "\n" ENV_HELP "exit status: 0, or 1 when a function could not be deleted.\n");
}

int cli_delete_main(int argc, char **argv)
{
    int first = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_delete_usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) return usage_error("delete", "unknown option '%s'", argv[i]);
        if (!first) first = i;
    }
    if (!first) return usage_error("delete", "wants a function NAME%s", "");
    if (kind_of(argv[first])) return cli_kind_delete(kind_of(argv[first]), argc, argv, first + 1);
    /* A function is deleted as one of the collection /v1/functions; it
     * prints as a Knative Service. */
    static const char *const no_words[] = {NULL};
    static const cli_kind_t functions = {.singular = "service", .plural = "functions",
                                         .words = no_words};
    return cli_kind_delete(&functions, argc, argv, first);
}

/* ---- invoke ---- */

void cli_invoke_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn invoke NAME [-d DATA | -d @FILE] [-H 'K: V']... [-X METHOD]\n"
            "                      [--path /P] [-i]\n"
            "\n"
            "Calls function NAME through the admin API, exactly as the data plane would\n"
            "for http://HOST/fn/NAME/P, and prints the response body.\n"
            "\n"
            "options:\n"
            "  -d, --data DATA    the request body; @FILE reads it from FILE, @- from stdin\n"
            "  -H, --header 'K: V'  a request header (repeatable)\n"
            "  -X, --request M    the method (default GET, or POST with -d)\n"
            "  --path /P          the path after the function's route, with ?query if any\n"
            "  -i, --include      print the status line and response headers first\n"
            "  -h, --help         show this help\n"
            "\n" ENV_HELP
            "exit status: 0 for a 1xx-4xx answer (a 4xx also prints its status on stderr),\n"
            "1 for a 5xx (the function failed, timed out or is overloaded) or an error,\n"
            "2 usage error.\n");
}

int cli_invoke_main(int argc, char **argv)
{
    const char *name = NULL, *method = NULL, *data = NULL, *subpath = "";
    bool include = false;
    const char **headers = calloc((size_t)argc, sizeof *headers);
    size_t nheaders = 0;
    int rc = CLI_EXIT_ARGS;
    cm_buf_t body = {0};
    char *path = NULL;
    if (!headers) return CLI_EXIT_FAIL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (cli_is_help(a)) {
            cli_invoke_usage(stdout);
            rc = 0;
            goto out;
        }
        if ((v = cli_opt("-d", argc, argv, &i, &missing)) ||
            (v = cli_opt("--data", argc, argv, &i, &missing))) {
            if (missing) {
                rc = usage_error("invoke", "-d wants DATA or @FILE%s", "");
                goto out;
            }
            data = v;
        } else if ((v = cli_opt("-H", argc, argv, &i, &missing)) ||
                   (v = cli_opt("--header", argc, argv, &i, &missing))) {
            const char *colon = strchr(v, ':');
            if (missing || !colon || colon == v) {
                rc = usage_error("invoke", "-H wants 'Key: value', got '%s'", v);
                goto out;
            }
            headers[nheaders++] = v;
        } else if ((v = cli_opt("-X", argc, argv, &i, &missing)) ||
                   (v = cli_opt("--request", argc, argv, &i, &missing))) {
            if (missing || !*v || strpbrk(v, " \t\r\n:/")) {
                rc = usage_error("invoke", "-X wants a method, got '%s'", v);
                goto out;
            }
            method = v;
        } else if ((v = cli_opt("--path", argc, argv, &i, &missing))) {
            if (missing) {
                rc = usage_error("invoke", "--path wants /PATH%s", "");
                goto out;
            }
            subpath = v;
        } else if (strcmp(a, "-i") == 0 || strcmp(a, "--include") == 0) {
            include = true;
        } else if (a[0] == '-' && a[1]) {
            rc = usage_error("invoke", "unknown option '%s'", a);
            goto out;
        } else if (!name) {
            name = a;
        } else {
            rc = usage_error("invoke", "unexpected argument '%s'", a);
            goto out;
        }
    }
    if (!name) {
        rc = usage_error("invoke", "wants a function NAME%s", "");
        goto out;
    }
    if (data) {
        if (data[0] == '@') {
            char why[256];
            if (cli_file_read_max(data + 1, CLI_UPLOAD_MAX_BYTES, false, &body, why, sizeof why) != 0) {
                fprintf(stderr, "wasmfn invoke: %s: %s\n", data + 1, why);
                rc = CLI_EXIT_FAIL;
                goto out;
            }
        } else if (cm_buf_append(&body, data, strlen(data)) != 0) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
    }
    if (!method) method = data ? "POST" : "GET";

    /* /v1/functions/NAME/invoke + "/rest?query" (a leading '/' added). */
    char suffix[8192];
    snprintf(suffix, sizeof suffix, "/invoke%s%s",
             subpath[0] && subpath[0] != '/' && subpath[0] != '?' ? "/" : "", subpath);
    path = fn_path(name, suffix);
    if (!path) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    cli_api_t api;
    if (cli_api_open(&api) != 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    cli_request_t req = {
        .method = method,
        .path = path,
        .headers = headers,
        .nheaders = nheaders,
        .body = data ? (body.data ? body.data : "") : NULL,
        .body_len = body.len,
    };
    cli_response_t r;
    rc = CLI_EXIT_FAIL;
    if (cli_api_do(&api, &req, &r) == 0) {
        if (include) {
            /* The header block as received (status line, headers, blank line). */
            fwrite(r.headers.data ? r.headers.data : "", 1, r.headers.len, stdout);
        }
        fwrite(r.body.data, 1, r.body.len, stdout);
        fflush(stdout);
        if (r.status == 401) {
            rc = cli_api_fail(&api, "invoke", name, &r);
        } else if (r.status >= 500) {
            fprintf(stderr, "wasmfn invoke: %s: HTTP %ld\n", name, r.status);
            rc = CLI_EXIT_FAIL;
        } else {
            if (r.status >= 400) fprintf(stderr, "wasmfn invoke: %s: HTTP %ld\n", name, r.status);
            rc = 0;
        }
        cli_response_free(&r);
    }
    cli_api_close(&api);
out:
    free(path);
    cm_buf_free(&body);
    free(headers);
    return rc;
}

/* ---- logs ---- */

void cli_logs_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn logs NAME [-f] [--tail N] [-o json]\n"
            "\n"
            "Prints what function NAME wrote to stderr (kept in a bounded ring per\n"
            "function), one line per guest line, each prefixed with its revision.\n"
            "\n"
            "options:\n"
            "  -f, --follow   keep printing new lines as they come (Ctrl-C stops)\n"
            "  --tail N       only the last N lines\n"
            "  -o json        one JSON object per line: time, function, revision,\n"
            "                 invocation_id, trace_id, stream and line\n"
            "  -h, --help     show this help\n"
            "\n" ENV_HELP);
}

int cli_logs_main(int argc, char **argv)
{
    logs_opts_t o = {0};
    uint64_t tmp;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing;
        if (cli_is_help(a)) {
            cli_logs_usage(stdout);
            return 0;
        }
        if (strcmp(a, "-f") == 0 || strcmp(a, "--follow") == 0) {
            o.follow = true;
        } else if ((v = cli_opt("--tail", argc, argv, &i, &missing))) {
            if (cli_parse_uint(v, 1000000000, &tmp) != 0)
                return usage_error("logs", "--tail wants a number of lines, got '%s'", v);
            o.tail = v;
        } else if ((v = cli_opt("-o", argc, argv, &i, &missing)) ||
                   (v = cli_opt("--output", argc, argv, &i, &missing))) {
            if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0)
                return usage_error("logs", "-o wants json or text, got '%s'", v);
            json = strcmp(v, "json") == 0;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("logs", "unknown option '%s'", a);
        } else if (!o.name) {
            o.name = a;
        } else {
            return usage_error("logs", "unexpected argument '%s'", a);
        }
    }
    if (!o.name) return usage_error("logs", "wants a function NAME%s", "");

    char query[160] = "";
    snprintf(query, sizeof query, "/logs%s%s%s%s%s", o.tail || o.follow || json ? "?" : "",
             o.tail ? "tail=" : "", o.tail ? o.tail : "",
             o.follow ? (o.tail ? "&follow=1" : "follow=1") : "",
             json ? (o.tail || o.follow ? "&format=json" : "format=json") : "");
    char *path = fn_path(o.name, query);
    if (!path) return CLI_EXIT_FAIL;
    cli_api_t api;
    if (cli_api_open(&api) != 0) {
        free(path);
        return CLI_EXIT_FAIL;
    }
    /* A reader that goes away (`wasmfn logs -f x | head`) ends us quietly. */
    signal(SIGPIPE, SIG_DFL);
    cli_request_t probe = {.method = "GET", .path = path, .stream = false};
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (o.follow) {
        /* A followed answer is streamed to stdout as it arrives, before its
         * status could be judged; so first ask once, without following,
         * whether the function exists and the token is good, and turn an
         * error into a message rather than printing its JSON. */
        char *check = fn_path(o.name, "/logs?tail=0");
        cli_request_t c = {.method = "GET", .path = check, .timeout_s = 30};
        if (check && cli_api_do(&api, &c, &r) == 0) {
            if (r.status != 200) {
                rc = cli_api_fail(&api, "logs", o.name, &r);
                cli_response_free(&r);
                free(check);
                goto done;
            }
            cli_response_free(&r);
        } else {
            free(check);
            goto done;
        }
        free(check);
        probe.stream = true;
    }
    if (cli_api_do(&api, &probe, &r) == 0) {
        if (r.status != 200) {
            rc = cli_api_fail(&api, "logs", o.name, &r);
        } else {
            /* Guest text: printed escaped, as the daemon sends it (an older
             * or hostile daemon's control characters too). */
            if (!probe.stream) {
                char *esc = malloc(r.body.len * 4 + 1);
                if (esc) fwrite(esc, 1, lr_escape(r.body.data, r.body.len, esc, 1), stdout);
                free(esc);
            }
            rc = 0;
        }
        cli_response_free(&r);
    }
done:
    cli_api_close(&api);
    free(path);
    return rc;
}
