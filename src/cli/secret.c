/*
 * secret.c — `wasmfn secret`: Secrets through the admin API (docs/secrets.md).
 *
 *   wasmfn secret set NAME KEY=VALUE|KEY=@FILE...   replaces the Secret's data
 *   wasmfn secret list [-o json]                     names and keys, never values
 *   wasmfn secret delete NAME
 *
 * set sends a v1 Secret document to POST /v1/apply with every value in
 * `data`, base64-encoded (values may be any bytes); the daemon seals it
 * and rolls a new revision out to the functions that use it.
 */
#define _GNU_SOURCE
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

void cli_secret_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn secret set NAME KEY=VALUE|KEY=@FILE...\n"
            "       wasmfn secret list [-o json]\n"
            "       wasmfn secret delete NAME\n"
            "\n"
            "Secrets reach functions as environment values through the Service's\n"
            "env[].valueFrom.secretKeyRef (docs/secrets.md); the daemon keeps them\n"
            "encrypted and never prints a value. set replaces the Secret's data with the\n"
            "keys given (KEY=@FILE reads the value from FILE, @- from stdin: a value on\n"
            "the command line is visible to other users of this machine) and gives every\n"
            "function using it a new revision. list shows names and keys. delete is\n"
            "refused while a serving revision uses the Secret.\n"
            "\n"
            "environment: WASMFN_API, WASMFN_TOKEN (see wasmfn deploy --help).\n"
            "exit status: 0 done, 1 refused (the message says why), 2 usage error.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "wasmfn secret: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see wasmfn secret --help)\n");
    return CLI_EXIT_ARGS;
}

static int secret_set(cli_api_t *api, const char *name, char **kv, int n)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "apiVersion", "v1");
    cJSON_AddStringToObject(doc, "kind", "Secret");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "metadata"), "name", name);
    cJSON *data = cJSON_AddObjectToObject(doc, "data");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *eq = strchr(kv[i], '=');
        if (!eq || eq == kv[i]) {
            rc = usage_error("wants KEY=VALUE or KEY=@FILE, got '%s'", kv[i]);
            break;
        }
        char *key = strndup(kv[i], (size_t)(eq - kv[i]));
        cm_buf_t b = {0};
        char err[512];
        if (eq[1] == '@') {
            if (cli_file_read_max(eq + 2, 1u << 20, false, &b, err, sizeof err) != 0) {
                fprintf(stderr, "wasmfn secret set: %s: %s\n", eq + 2, err);
                rc = CLI_EXIT_FAIL;
            }
        } else {
            cm_buf_append(&b, eq + 1, strlen(eq + 1));
        }
        if (rc == 0) {
            size_t cap = sodium_base64_ENCODED_LEN(b.len, sodium_base64_VARIANT_ORIGINAL);
            char *enc = malloc(cap);
            if (key && enc) {
                sodium_bin2base64(enc, cap, (const unsigned char *)(b.data ? b.data : ""), b.len,
                                  sodium_base64_VARIANT_ORIGINAL);
                cJSON_AddStringToObject(data, key, enc);
                sodium_memzero(enc, cap);
            } else {
                rc = CLI_EXIT_FAIL;
            }
            free(enc);
        }
        if (b.data) sodium_memzero(b.data, b.len);
        cm_buf_free(&b);
        free(key);
    }
    if (rc == 0) {
        cli_response_t r;
        rc = CLI_EXIT_FAIL;
        if (cli_api_json(api, "POST", "/v1/apply", doc, &r) == 0) {
            if (r.status / 100 != 2) {
                rc = cli_api_fail(api, "secret set", name, &r);
            } else {
                cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
                bool created = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "created"));
                printf("secret/%s: %s\n", name, created ? "created" : "configured");
                const cJSON *rv;
                cJSON_ArrayForEach(rv, cJSON_GetObjectItemCaseSensitive(j, "revisions"))
                    if (cJSON_IsString(rv)) printf("  revision %s created\n", rv->valuestring);
                cJSON_Delete(j);
                rc = 0;
            }
            cli_response_free(&r);
        }
    }
    /* The document holds the values (base64): wipe them. */
    cJSON *it;
    cJSON_ArrayForEach(it, data)
        if (cJSON_IsString(it)) sodium_memzero(it->valuestring, strlen(it->valuestring));
    cJSON_Delete(doc);
    return rc;
}

static int secret_list(cli_api_t *api, bool json)
{
    cli_response_t r;
    int rc = CLI_EXIT_FAIL;
    if (cli_api_json(api, "GET", "/v1/secrets", NULL, &r) != 0) return rc;
    if (r.status / 100 != 2) {
        rc = cli_api_fail(api, "secret list", "secrets", &r);
    } else if (json) {
        printf("%s\n", r.body.data ? r.body.data : "[]");
        rc = 0;
    } else {
        cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
        cli_table_t t;
        static const char *const head[] = {"NAME", "KEYS", "VERSION", "CREATED"};
        cli_table_init(&t, 4, head);
        const cJSON *it;
        cJSON_ArrayForEach(it, j)
        {
            cm_buf_t keys = {0};
            const cJSON *k;
            cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(it, "keys"))
            {
                if (keys.len) cm_buf_str(&keys, ",");
                if (cJSON_IsString(k)) cm_buf_str(&keys, k->valuestring);
            }
            char ver[32];
            snprintf(ver, sizeof ver, "%.0f",
                     cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "version")));
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            const cJSON *cr = cJSON_GetObjectItemCaseSensitive(it, "created");
            const char *row[] = {cJSON_IsString(nm) ? nm->valuestring : "?",
                                 keys.data ? keys.data : "", ver,
                                 cJSON_IsString(cr) ? cr->valuestring : ""};
            cli_table_row(&t, row);
            cm_buf_free(&keys);
        }
        if (t.nrows) cli_table_print(&t, stdout, "");
        else fprintf(stderr, "No secrets.\n");
        cli_table_free(&t);
        cJSON_Delete(j);
        rc = 0;
    }
    cli_response_free(&r);
    return rc;
}

int cli_secret_main(int argc, char **argv)
{
    bool json = false;
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    if (!pos) return CLI_EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (cli_is_help(a)) {
            cli_secret_usage(stdout);
            free(pos);
            return 0;
        }
        if ((v = cli_opt("-o", argc, argv, &i, &missing))) {
            if (strcmp(v, "json") != 0) {
                free(pos);
                return usage_error("-o takes json, got '%s'", v);
            }
            json = true;
        } else if (a[0] == '-' && a[1] && npos < 2) {
            free(pos);
            return usage_error("unknown option '%s'", a);
        } else {
            pos[npos++] = argv[i];
        }
    }
    int rc;
    const char *cmd = npos ? pos[0] : "";
    if (strcmp(cmd, "set") == 0 && npos < 3) rc = usage_error("set wants NAME and KEY=VALUE...%s", "");
    else if (strcmp(cmd, "list") == 0 && npos != 1) rc = usage_error("list takes no arguments%s", "");
    else if (strcmp(cmd, "delete") == 0 && npos != 2) rc = usage_error("delete wants NAME%s", "");
    else if (strcmp(cmd, "set") && strcmp(cmd, "list") && strcmp(cmd, "delete"))
        rc = usage_error("wants set, list or delete, got '%s'", cmd);
    else rc = -1;
    if (rc != -1) {
        free(pos);
        return rc;
    }
    cli_api_t api;
    if (cli_api_open(&api) != 0) {
        free(pos);
        return CLI_EXIT_FAIL;
    }
    if (strcmp(cmd, "set") == 0) {
        rc = secret_set(&api, pos[1], pos + 2, npos - 2);
    } else if (strcmp(cmd, "list") == 0) {
        rc = secret_list(&api, json);
    } else {
        char *e = cli_escape(pos[1]), *path = NULL;
        cli_response_t r;
        rc = CLI_EXIT_FAIL;
        if (e && asprintf(&path, "/v1/secrets/%s", e) >= 0 &&
            cli_api_json(&api, "DELETE", path, NULL, &r) == 0) {
            if (r.status / 100 != 2) rc = cli_api_fail(&api, "secret delete", pos[1], &r);
            else printf("secret/%s: deleted\n", pos[1]), rc = 0;
            cli_response_free(&r);
        }
        free(path);
        free(e);
    }
    cli_api_close(&api);
    free(pos);
    return rc;
}
