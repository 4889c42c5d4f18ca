/*
 * kv.c — `wasmfn kv`: the key-value stores through the admin API (/v1/kv,
 * docs/api.md; docs/cli.md).
 *
 *   wasmfn kv list [-o json]                      stores, keys and bytes
 *   wasmfn kv list STORE [--prefix P] [--limit N] [-o json]
 *   wasmfn kv get STORE KEY                       the value, raw, on stdout
 *   wasmfn kv set STORE KEY VALUE|@FILE [--ttl MS]
 *   wasmfn kv delete STORE KEY
 *
 * Keys are printed, and taken, as the API lists them: bytes outside
 * printable ASCII, '%' and '"' written %XX (a guest's key may hold any
 * byte; a terminal must not receive them raw).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

void cli_kv_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn kv list [STORE] [--prefix P] [--limit N] [-o json]\n"
            "       wasmfn kv get STORE KEY\n"
            "       wasmfn kv set STORE KEY VALUE|@FILE [--ttl MS]\n"
            "       wasmfn kv delete STORE KEY\n"
            "\n"
            "The key-value stores functions use through wasmfn_kv (docs/host-kv.md).\n"
            "list without STORE shows every store with its key count and bytes (SQLite\n"
            "stores only); with STORE, its keys (at most --limit, default 1000), those\n"
            "starting with P with --prefix. get prints the value as stored; set stores\n"
            "VALUE (or the contents of FILE; @- reads stdin), expiring after MS\n"
            "milliseconds with --ttl. Keys are written as list prints them: bytes outside\n"
            "printable ASCII, '%%' and '\"' as %%XX.\n"
            "\n"
            "environment: WASMFN_API, WASMFN_TOKEN (see wasmfn deploy --help).\n"
            "exit status: 0 done, 1 refused or not found (the message says why), 2 usage error.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "wasmfn kv: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see wasmfn kv --help)\n");
    return CLI_EXIT_ARGS;
}

/* The key for a URL path: %XX sequences kept (they are how list writes
 * odd bytes), unreserved characters as they are, the rest escaped. */
static char *key_escape(const char *k)
{
    size_t n = strlen(k);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c == '%' && isxdigit((unsigned char)k[i + 1]) && isxdigit((unsigned char)k[i + 2])) {
            memcpy(o, k + i, 3);
            o += 3;
            i += 2;
        } else if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            o += sprintf(o, "%%%02X", c);
        }
    }
    *o = '\0';
    return out;
}

static char *kv_path(const char *store, const char *key, const char *query)
{
    char *s = cli_escape(store), *k = key ? key_escape(key) : NULL, *p = NULL;
    if (s && (!key || k) &&
        asprintf(&p, "/v1/kv/%s%s%s%s", s, key ? "/" : "", key ? k : "", query ? query : "") < 0)
        p = NULL;
    free(s);
    free(k);
    return p;
}

static int do_list(cli_api_t *api, const char *store, const char *prefix, const char *limit,
                   bool json)
{
    char *path = NULL, *q = NULL;
    if (!store) {
        path = strdup("/v1/kv");
    } else {
        char *pe = prefix ? cli_escape(prefix) : NULL;
        if (asprintf(&q, "?limit=%s%s%s", limit ? limit : "1000", pe ? "&prefix=" : "",
                     pe ? pe : "") < 0)
            q = NULL;
        free(pe);
        path = q ? kv_path(store, NULL, q) : NULL;
    }
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (path && cli_api_json(api, "GET", path, NULL, &r) == 0) {
        if (r.status / 100 != 2) {
            rc = cli_api_fail(api, "kv list", store ? store : "stores", &r);
        } else if (json) {
            printf("%s\n", r.body.data ? r.body.data : "");
            rc = 0;
        } else {
            cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
            const cJSON *it;
            if (!store) {
                cli_table_t t;
                static const char *const head[] = {"STORE", "KEYS", "BYTES"};
                cli_table_init(&t, 3, head);
                cJSON_ArrayForEach(it, j)
                {
                    char keys[32], bytes[32];
                    const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "store");
                    snprintf(keys, sizeof keys, "%.0f",
                             cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "keys")));
                    snprintf(bytes, sizeof bytes, "%.0f",
                             cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "bytes")));
                    const char *row[] = {cJSON_IsString(s) ? s->valuestring : "?", keys, bytes};
                    cli_table_row(&t, row);
                }
                if (t.nrows) cli_table_print(&t, stdout, "");
                else fprintf(stderr, "No stores hold keys.\n");
                cli_table_free(&t);
            } else {
                cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "keys"))
                    if (cJSON_IsString(it)) printf("%s\n", it->valuestring);
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")))
                    fprintf(stderr, "wasmfn kv list: more keys than --limit %s\n",
                            limit ? limit : "1000");
            }
            cJSON_Delete(j);
            rc = 0;
        }
        cli_response_free(&r);
    }
    free(path);
    free(q);
    return rc;
}

int cli_kv_main(int argc, char **argv)
{
    const char *pos[4] = {0};
    int npos = 0;
    const char *prefix = NULL, *limit = NULL, *ttl = NULL;
    bool json = false;
    uint64_t tmp;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (cli_is_help(a)) {
            cli_kv_usage(stdout);
            return 0;
        }
        if ((v = cli_opt("--prefix", argc, argv, &i, &missing))) {
            prefix = v;
        } else if ((v = cli_opt("--limit", argc, argv, &i, &missing))) {
            if (cli_parse_uint(v, 10000, &tmp) != 0 || tmp == 0)
                return usage_error("--limit wants a number from 1 to 10000, got '%s'", v);
            limit = v;
        } else if ((v = cli_opt("--ttl", argc, argv, &i, &missing))) {
            if (cli_parse_uint(v, UINT64_MAX, &tmp) != 0)
                return usage_error("--ttl wants milliseconds, got '%s'", v);
            ttl = v;
        } else if ((v = cli_opt("-o", argc, argv, &i, &missing))) {
            if (strcmp(v, "json") != 0) return usage_error("-o takes json, got '%s'", v);
            json = true;
        } else if (missing) {
            return usage_error("%s wants a value", a);
        } else if (a[0] == '-' && a[1] && npos != 3) { /* a VALUE may start with '-' */
            return usage_error("unknown option '%s'", a);
        } else if (npos < 4) {
            pos[npos++] = a;
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (npos == 0) return usage_error("wants list, get, set or delete%s", "");
    const char *cmd = pos[0];
    int want = strcmp(cmd, "list") == 0 ? -1 : strcmp(cmd, "set") == 0 ? 4
             : strcmp(cmd, "get") == 0 || strcmp(cmd, "delete") == 0 ? 3 : 0;
    if (want == 0) return usage_error("unknown subcommand '%s' (list, get, set or delete)", cmd);
    if (want == -1 ? npos > 2 : npos != want)
        return usage_error("%s: wrong number of arguments", cmd);

    cli_api_t api;
    if (cli_api_open(&api) != 0) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    if (want == -1) {
        rc = do_list(&api, npos == 2 ? pos[1] : NULL, prefix, limit, json);
        cli_api_close(&api);
        return rc;
    }
    char q[64] = "";
    if (ttl) snprintf(q, sizeof q, "?ttl_ms=%s", ttl);
    char *path = kv_path(pos[1], pos[2], q);
    cm_buf_t body = {0};
    if (want == 4) {
        const char *val = pos[3];
        char err[512];
        if (val[0] == '@') {
            if (cli_file_read_max(val + 1, CLI_UPLOAD_MAX_BYTES, false, &body, err, sizeof err) != 0) {
                fprintf(stderr, "wasmfn kv set: %s: %s\n", val + 1, err);
                free(path);
                cli_api_close(&api);
                return CLI_EXIT_FAIL;
            }
        } else {
            cm_buf_append(&body, val, strlen(val));
        }
    }
    cli_request_t req = {
        .method = want == 4 ? "PUT" : strcmp(cmd, "get") == 0 ? "GET" : "DELETE",
        .path = path,
        .body = want == 4 ? (body.data ? body.data : "") : NULL,
        .body_len = body.len,
        .content_type = want == 4 ? "application/octet-stream" : NULL,
    };
    cli_response_t r;
    if (path && cli_api_do(&api, &req, &r) == 0) {
        char what[512];
        snprintf(what, sizeof what, "%s/%s", pos[1], pos[2]);
        if (r.status / 100 != 2) {
            rc = cli_api_fail(&api, "kv", what, &r);
        } else {
            if (strcmp(cmd, "get") == 0) fwrite(r.body.data ? r.body.data : "", 1, r.body.len, stdout);
            else printf("kv/%s: %s\n", what, want == 4 ? "set" : "deleted");
            rc = 0;
        }
        cli_response_free(&r);
    }
    cm_buf_free(&body);
    free(path);
    cli_api_close(&api);
    return rc;
}
