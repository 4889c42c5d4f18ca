/*
 * apply.c — `wasmfn apply -f MANIFEST.yaml` and `wasmfn deploy NAME F.wasm`,
 * the two ways to create or change a function. Both end in the same admin
 * API call, POST /v1/apply with one Knative Service document as JSON
 * (docs/api.md); deploy builds that document from its flags.
 *
 * A module given as a path (the manifest's `image: ./hello.wasm`, deploy's
 * F.wasm) is uploaded first (POST /v1/blobs) and the document then names
 * it by its digest. An image that is a registry reference
 * (oci_ref_is_registry: `registry.example.com/hello:1.0`) is sent as is:
 * the daemon pulls it. apply checks every document of every file before it
 * sends anything (YAML syntax, the shape of the object, that each image
 * file exists), then has the daemon pull every registry image (POST
 * /v1/images) before it applies any document, so a file with a typo in
 * document 3, or an image that cannot be pulled, does not half-apply;
 * errors the daemon finds later are reported per document and the others
 * still go through, as kubectl does.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "oci/oci.h"

#define IMAGE_FMT "spec.template.spec.containers[%d].image"

/* ---- reporting a document's errors ---- */

/* "FILE: document N: line L: " for the field at path (or the document
 * start when the field is unknown). */
static void doc_prefix(char *out, size_t n, const cli_manifest_t *m, const cli_doc_t *d,
                       const char *path)
{
    int line = path ? cli_doc_line(d, path) : 0;
    if (!line) line = d->line;
    snprintf(out, n, "%s: document %d: line %d: ", m->file, d->index, line);
}

/* A server message that starts with a field path ("spec.template.spec.
 * timeoutSeconds: must be ...") gets the line that field is on. */
static void doc_report(FILE *out, const char *kind, const cli_manifest_t *m, const cli_doc_t *d,
                       const char *msg)
{
    size_t n = strcspn(msg, ": ");
    char path[512] = "";
    if (n > 0 && n < sizeof path && msg[n] == ':') {
        bool looks_like_path = true;
        for (size_t i = 0; i < n; i++)
            if (!(isalnum((unsigned char)msg[i]) || strchr("._[]/-\"", msg[i])))
                looks_like_path = false;
        if (looks_like_path) memcpy(path, msg, n), path[n] = 0;
    }
    int line = path[0] ? cli_doc_line(d, path) : 0;
    if (line)
        fprintf(out, "%s: document %d: line %d: %s%s\n", m->file, d->index, line, kind, msg);
    else
        fprintf(out, "%s: document %d: %s%s\n", m->file, d->index, kind, msg);
}

/* ---- local checks ---- */

static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsObject(j)) return "a mapping";
    if (cJSON_IsArray(j)) return "a list";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    return "null";
}

/* The containers array of a Service, or NULL. */
static cJSON *service_containers(cJSON *doc)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
    cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    cJSON *tspec = cJSON_GetObjectItemCaseSensitive(tmpl, "spec");
    cJSON *cs = cJSON_GetObjectItemCaseSensitive(tspec, "containers");
    return cJSON_IsArray(cs) ? cs : NULL;
}

static bool is_service(const cJSON *doc)
{
    const char *kind = cli_json_str(doc, "kind", NULL);
    const char *api = cli_json_str(doc, "apiVersion", NULL);
    return kind && strcmp(kind, "Service") == 0 && api &&
           strncmp(api, "serving.knative.dev/", 20) == 0;
}

/* Where an image path points: relative paths are relative to the manifest. */
static char *image_file(const cli_manifest_t *m, const char *image)
{
    char *p = NULL;
    if (image[0] == '/' || strcmp(m->dir, ".") == 0)
        p = strdup(image);
    else if (asprintf(&p, "%s/%s", m->dir, image) < 0)
        p = NULL;
    return p;
}

static bool is_digest(const char *image)
{
    return strncmp(image, "sha256:", 7) == 0;
}

/* Checks one document; prints each problem and returns how many. */
static int doc_check(const cli_manifest_t *m, const cli_doc_t *d)
{
    char pre[1024];
    int errors = 0;
    cJSON *j = d->json;
    if (!j) return 0;
    if (!cJSON_IsObject(j)) {
        doc_prefix(pre, sizeof pre, m, d, NULL);
        fprintf(stderr, "%sexpected a mapping (a Kubernetes object), got %s\n", pre,
                json_type_name(j));
        return 1;
    }
    static const char *const required[] = {"apiVersion", "kind"};
    for (size_t i = 0; i < 2; i++)
        if (!cli_json_str(j, required[i], NULL)) {
            doc_prefix(pre, sizeof pre, m, d, required[i]);
            fprintf(stderr, "%s%s: %s\n", pre, required[i],
                    cJSON_GetObjectItemCaseSensitive(j, required[i]) ? "must be a string"
                                                                     : "missing");
            errors++;
        }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    if (!cli_json_str(meta, "name", NULL)) {
        doc_prefix(pre, sizeof pre, m, d, "metadata.name");
        fprintf(stderr, "%smetadata.name: %s\n", pre,
                cJSON_GetObjectItemCaseSensitive(meta, "name") ? "must be a string" : "missing");
        errors++;
    }
    if (errors || !is_service(j)) return errors;

    cJSON *cs = service_containers(j);
    if (!cs || cJSON_GetArraySize(cs) == 0) {
        doc_prefix(pre, sizeof pre, m, d, "spec.template.spec.containers");
        fprintf(stderr, "%sspec.template.spec.containers: %s\n", pre,
                cs ? "must hold one container" : "missing (a list with one container)");
        return errors + 1;
    }
    int idx = 0;
    for (cJSON *c = cs->child; c; c = c->next, idx++) {
        char path[128];
        snprintf(path, sizeof path, IMAGE_FMT, idx);
        const char *image = cli_json_str(c, "image", NULL);
        doc_prefix(pre, sizeof pre, m, d, path);
        if (!image || !*image) {
            fprintf(stderr, "%s%s: %s\n", pre, path,
                    cJSON_GetObjectItemCaseSensitive(c, "image") ? "must be a non-empty string"
                                                                 : "missing");
            errors++;
            continue;
        }
        if (is_digest(image) || oci_ref_is_registry(image)) continue;
        char *file = image_file(m, image);
        if (!file || access(file, R_OK) != 0) {
            fprintf(stderr, "%s%s: %s: %s\n", pre, path, image,
                    file ? strerror(errno) : "out of memory");
            errors++;
        }
        free(file);
    }
    return errors;
}

/* ---- uploads, shared by the documents of one run ---- */

typedef struct upload_cache {
    char **files, **digests;
    size_t n;
} upload_cache_t;

static const char *cache_find(const upload_cache_t *u, const char *file)
{
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->files[i], file) == 0) return u->digests[i];
    return NULL;
}

static void cache_add(upload_cache_t *u, const char *file, const char *digest)
{
    char **f = realloc(u->files, (u->n + 1) * sizeof *f);
    if (!f) return;
    u->files = f;
    char **d = realloc(u->digests, (u->n + 1) * sizeof *d);
    if (!d) return;
    u->digests = d;
    u->files[u->n] = strdup(file);
    u->digests[u->n] = strdup(digest);
    if (u->files[u->n] && u->digests[u->n])
        u->n++;
    else
        free(u->files[u->n]), free(u->digests[u->n]);
}

static void cache_free(upload_cache_t *u)
{
    for (size_t i = 0; i < u->n; i++) free(u->files[i]), free(u->digests[i]);
    free(u->files);
    free(u->digests);
}

/* ---- sending one Service document ---- */

/* Prints the outcome of POST /v1/apply; returns 0 or CLI_EXIT_FAIL. The
 * revision goes to rev (when not NULL). */
static int print_applied(const cli_response_t *r, bool quiet, char *rev, size_t revlen)
{
    cJSON *j = cJSON_ParseWithLength(r->body.data, r->body.len);
    const char *kind = cli_json_str(j, "kind", NULL);
    const char *name = cli_json_str(j, "name", NULL);
    const char *revision = cli_json_str(j, "revision", NULL);
    bool created = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "created"));
    if (!name) {
        fprintf(stderr, "wasmfn: the admin API's answer to POST /v1/apply is not understood: %.200s\n",
                r->body.data);
        cJSON_Delete(j);
        return CLI_EXIT_FAIL;
    }
    if (rev) snprintf(rev, revlen, "%s", revision ? revision : "");
    if (quiet) {
        if (revision) printf("%s\n", revision);
    } else {
        char lkind[64];
        snprintf(lkind, sizeof lkind, "%s", kind ? kind : "object");
        for (char *p = lkind; *p; p++) *p = (char)tolower((unsigned char)*p);
        if (revision)
            printf("%s/%s: revision %s %s\n", lkind, name, revision,
                   created ? "created" : "unchanged");
        else
            printf("%s/%s: %s\n", lkind, name, created ? "created" : "configured");
    }
    fflush(stdout);
    cJSON_Delete(j);
    return 0;
}

static void print_warnings(const cli_response_t *r, const cli_manifest_t *m, const cli_doc_t *d,
                           const char *cmd)
{
    cJSON *j = cJSON_ParseWithLength(r->body.data, r->body.len);
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(j, "warnings");
    const cJSON *w;
    cJSON_ArrayForEach(w, ws)
    {
        if (!cJSON_IsString(w)) continue;
        if (m)
            doc_report(stderr, "warning: ", m, d, w->valuestring);
        else
            fprintf(stderr, "wasmfn %s: warning: %s\n", cmd, w->valuestring);
    }
    cJSON_Delete(j);
}

/* Uploads a document's image files and replaces them with digests; then
 * applies it. Returns 0, CLI_EXIT_FAIL (after printing why), or -1 when the
 * admin API cannot be reached (reported; there is no point in going on). */
static int doc_apply(cli_api_t *api, const cli_manifest_t *m, const cli_doc_t *d,
                     upload_cache_t *cache)
{
    char pre[1024];
    if (is_service(d->json)) {
        cJSON *cs = service_containers(d->json);
        int idx = 0;
        for (cJSON *c = cs ? cs->child : NULL; c; c = c->next, idx++) {
            const char *image = cli_json_str(c, "image", NULL);
            if (!image || is_digest(image) || oci_ref_is_registry(image)) continue;
            char path[128];
            snprintf(path, sizeof path, IMAGE_FMT, idx);
            char *file = image_file(m, image);
            if (!file) return CLI_EXIT_FAIL;
            const char *digest = cache_find(cache, file);
            char got[128], err[1024];
            if (!digest) {
                int up = cli_blob_upload(api, file, got, sizeof got, err, sizeof err);
                if (up == -2) {
                    free(file);
                    return -1;
                }
                if (up != 0) {
                    doc_prefix(pre, sizeof pre, m, d, path);
                    fprintf(stderr, "%s%s: %s: %s\n", pre, path, image, err);
                    free(file);
                    return CLI_EXIT_FAIL;
                }
                cache_add(cache, file, got);
                digest = got;
            }
            free(file);
            cJSON_ReplaceItemInObjectCaseSensitive(c, "image", cJSON_CreateString(digest));
        }
    }
    cli_response_t r;
    if (cli_api_json(api, "POST", "/v1/apply", d->json, &r) != 0) return -1;
    int rc;
    if (r.status / 100 != 2) {
        char msg[1024];
        cli_response_error(&r, msg, sizeof msg);
        doc_report(stderr, "", m, d, msg);
        if (r.status == 401) cli_api_fail(api, "apply", NULL, &r);
        rc = CLI_EXIT_FAIL;
    } else {
        print_warnings(&r, m, d, "apply");
        rc = print_applied(&r, false, NULL, 0);
    }
    cli_response_free(&r);
    return rc;
}

/* ---- registry images, pulled before anything is applied ---- */

/* Has the daemon pull every registry image of the run's Service documents
 * (each distinct reference once). Prints each failure against its
 * document and field; returns how many failed, or -1 when the admin API
 * cannot be reached. The apply that follows pulls them again, which costs
 * a manifest GET each: the modules are in the daemon's store by then. */
static int images_pull(cli_api_t *api, cli_manifest_t *ms, size_t nfiles)
{
    char **done = NULL;
    size_t ndone = 0;
    int failed = 0;
    for (size_t f = 0; f < nfiles; f++)
        for (size_t k = 0; k < ms[f].ndocs; k++) {
            const cli_doc_t *d = &ms[f].docs[k];
            if (!d->json || !is_service(d->json)) continue;
            cJSON *cs = service_containers(d->json);
            int idx = 0;
            for (cJSON *c = cs ? cs->child : NULL; c; c = c->next, idx++) {
                const char *image = cli_json_str(c, "image", NULL);
                if (!image || !oci_ref_is_registry(image)) continue;
                bool seen = false;
                for (size_t i = 0; i < ndone && !seen; i++) seen = strcmp(done[i], image) == 0;
                if (seen) continue;
                cJSON *body = cJSON_CreateObject();
                cJSON_AddStringToObject(body, "image", image);
                cli_response_t r;
                int rc = cli_api_json(api, "POST", "/v1/images", body, &r);
                cJSON_Delete(body);
                if (rc != 0) {
                    failed = -1;
                    goto out;
                }
                if (r.status / 100 != 2) {
                    char msg[1024], full[1200];
                    cli_response_error(&r, msg, sizeof msg);
                    snprintf(full, sizeof full, IMAGE_FMT ": %s", idx, msg);
                    doc_report(stderr, "", &ms[f], d, full);
                    if (r.status == 401) {
                        cli_api_fail(api, "apply", NULL, &r);
                        cli_response_free(&r);
                        failed = -1;
                        goto out;
                    }
                    failed++;
                } else {
                    char **nd = realloc(done, (ndone + 1) * sizeof *nd);
                    if (nd && (nd[ndone] = strdup(image))) ndone++;
                    if (nd) done = nd;
                }
                cli_response_free(&r);
            }
        }
out:
    for (size_t i = 0; i < ndone; i++) free(done[i]);
    free(done);
    return failed;
}

/* ---- wasmfn apply ---- */

void cli_apply_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn apply -f MANIFEST.yaml [-f MORE.yaml ...] [--dry-run]\n"
            "\n"
            "Creates or updates what the manifests describe: Knative Services\n"
            "(serving.knative.dev/v1, kind: Service), eventing objects, and KEDA\n"
            "ScaledObjects (keda.sh/v1alpha1; docs/scaling.md). A file may hold several YAML\n"
            "documents separated by '---'. An image is a sha256: digest, a registry\n"
            "reference (HOST[:PORT]/REPO[:TAG][@sha256:HEX], e.g.\n"
            "registry.example.com/hello:1.0: the daemon pulls it, see `wasmfn serve\n"
            "--help` for its registry options), or else a path to a .wasm file,\n"
            "relative to the manifest, which is uploaded first. Every registry image is\n"
            "pulled before any document is applied: if one fails, nothing is applied.\n"
            "Applying again re-resolves tags: a tag now naming another module makes a\n"
            "new revision.\n"
            "Every changed template makes a new revision (NAME-00001, NAME-00002, ...);\n"
            "applying the same template again changes nothing.\n"
            "\n"
            "options:\n"
            "  -f, --filename FILE  the manifest ('-' reads stdin; repeatable)\n"
            "  --dry-run            check the manifests and print the JSON documents that\n"
            "                       would be sent; upload and apply nothing\n"
            "  -h, --help           show this help\n"
            "\n"
            "Every document is checked before anything is sent; errors name the file, the\n"
            "document and the line and field, e.g.\n"
            "  app.yaml: document 2: line 14: spec.template.spec.containers[0].image:\n"
            "  ./nope.wasm: No such file or directory\n"
            "\n"
            "environment: WASMFN_API (default http://127.0.0.1:8081), WASMFN_TOKEN (default:\n"
            "the admin.token file of the default data dir).\n"
            "exit status: 0 when every document was applied, 1 otherwise, 2 usage error.\n");
}

int cli_apply_main(int argc, char **argv)
{
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t nfiles = 0;
    bool dry = false;
    int rc = 0;
    if (!files) return CLI_EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        bool missing;
        const char *v;
        if (cli_is_help(argv[i])) {
            cli_apply_usage(stdout);
            free(files);
            return 0;
        }
        if ((v = cli_opt("-f", argc, argv, &i, &missing)) ||
            (v = cli_opt("--filename", argc, argv, &i, &missing))) {
            if (missing || !*v) {
                fprintf(stderr, "wasmfn apply: -f wants a file (see wasmfn apply --help)\n");
                free(files);
                return CLI_EXIT_ARGS;
            }
            files[nfiles++] = v;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            dry = true;
        } else {
            fprintf(stderr, "wasmfn apply: unexpected argument '%s' (see wasmfn apply --help)\n",
                    argv[i]);
            free(files);
            return CLI_EXIT_ARGS;
        }
    }
    if (nfiles == 0) {
        fprintf(stderr, "wasmfn apply: no manifest given: use -f FILE (see wasmfn apply --help)\n");
        free(files);
        return CLI_EXIT_ARGS;
    }

    cli_manifest_t *ms = calloc(nfiles, sizeof *ms);
    if (!ms) {
        free(files);
        return CLI_EXIT_FAIL;
    }
    /* Phase 1: read and check everything. */
    int errors = 0;
    size_t ndocs = 0;
    for (size_t f = 0; f < nfiles; f++) {
        char err[1024];
        if (cli_manifest_load(files[f], &ms[f], err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            errors++;
            continue;
        }
        for (size_t k = 0; k < ms[f].ndocs; k++) {
            errors += doc_check(&ms[f], &ms[f].docs[k]);
            if (ms[f].docs[k].json) ndocs++;
        }
    }
    if (errors) {
        fprintf(stderr, "wasmfn apply: nothing applied (%d error%s)\n", errors,
                errors == 1 ? "" : "s");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (ndocs == 0) {
        fprintf(stderr, "wasmfn apply: the manifest holds no documents\n");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (dry) {
        for (size_t f = 0; f < nfiles; f++)
            for (size_t k = 0; k < ms[f].ndocs; k++) {
                if (!ms[f].docs[k].json) continue;
                char *s = cJSON_PrintUnformatted(ms[f].docs[k].json);
                if (s) printf("%s\n", s);
                free(s);
            }
        goto out;
    }

    /* Phase 2: upload and apply, document by document. */
    cli_api_t api;
    if (cli_api_open(&api) != 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    int pulled = images_pull(&api, ms, nfiles);
    if (pulled != 0) {
        if (pulled > 0)
            fprintf(stderr, "wasmfn apply: nothing applied (%d image%s could not be pulled)\n",
                    pulled, pulled == 1 ? "" : "s");
        cli_api_close(&api);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    upload_cache_t cache = {0};
    bool reachable = true;
    for (size_t f = 0; f < nfiles && reachable; f++)
        for (size_t k = 0; k < ms[f].ndocs && reachable; k++) {
            if (!ms[f].docs[k].json) continue;
            int drc = doc_apply(&api, &ms[f], &ms[f].docs[k], &cache);
            if (drc != 0) rc = CLI_EXIT_FAIL;
            if (drc < 0) reachable = false;
        }
    cache_free(&cache);
    cli_api_close(&api);
out:
    for (size_t f = 0; f < nfiles; f++) cli_manifest_free(&ms[f]);
    free(ms);
    free(files);
    return rc;
}

/* ---- wasmfn deploy ---- */

void cli_deploy_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn deploy NAME F.wasm|REF [OPTIONS]\n"
            "\n"
            "Uploads the module F.wasm, or has the daemon pull image REF from a\n"
            "registry (HOST[:PORT]/REPO[:TAG][@sha256:HEX]), and makes it function NAME's\n"
            "template: the same as `wasmfn apply` with a Knative Service built from the\n"
            "options (all traffic to the latest revision). Prints the revision;\n"
            "deploying an unchanged module with unchanged options makes no new revision\n"
            "(a REF is resolved again: a tag now naming another module makes one).\n"
            "\n"
            "options:\n"
            "  --env K=V          an environment variable for the function (repeatable)\n"
            "  --min-scale N      instances kept warm even when idle (default 0)\n"
            "  --max-scale N      at most N concurrent instances (default: no limit)\n"
            "  --timeout S        per-request time limit in seconds (default 30)\n"
            "  --memory MIB       linear memory limit in MiB (default 128)\n"
            "  --allow-host URL   a destination the function may call with outbound HTTP,\n"
            "                     scheme://host[:port] (repeatable; docs/host-http.md)\n"
            "  --kv STORE         grant the key-value store STORE (wasmfn_kv; repeatable;\n"
            "                     the annotation wasmfn.dev/kv-stores)\n"
            "  -q, --quiet        print only the revision's name\n"
            "  -h, --help         show this help\n"
            "\n"
            "environment: WASMFN_API (default http://127.0.0.1:8081), WASMFN_TOKEN (default:\n"
            "the admin.token file of the default data dir).\n"
            "exit status: 0 deployed, 1 refused (the message says why), 2 usage error.\n");
}

static int deploy_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "wasmfn deploy: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see wasmfn deploy --help)\n");
    return CLI_EXIT_ARGS;
}

int cli_deploy_main(int argc, char **argv)
{
    const char *name = NULL, *file = NULL;
    const char *minscale = NULL, *maxscale = NULL;
    uint64_t timeout_s = 0, memory_mib = 0, tmp;
    cm_buf_t kv_stores = {0}; /* "a,b": the annotation wasmfn.dev/kv-stores */
    bool quiet = false;
    char *allow_hosts = NULL; /* --allow-host values, comma-separated */
    cJSON *env = cJSON_CreateArray();
    if (!env) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_ARGS;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing;
        if (cli_is_help(a)) {
            cli_deploy_usage(stdout);
            rc = 0;
            goto out;
        }
        if ((v = cli_opt("--env", argc, argv, &i, &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                rc = deploy_usage_error("--env wants KEY=VALUE, got '%s'", v);
                goto out;
            }
            cJSON *e = cJSON_CreateObject();
            char *k = strndup(v, (size_t)(eq - v));
            cJSON_AddStringToObject(e, "name", k ? k : "");
            cJSON_AddStringToObject(e, "value", eq + 1);
            cJSON_AddItemToArray(env, e);
            free(k);
        } else if ((v = cli_opt("--min-scale", argc, argv, &i, &missing))) {
            if (cli_parse_uint(v, 100000, &tmp) != 0) {
                rc = deploy_usage_error("--min-scale wants a whole number, got '%s'", v);
                goto out;
            }
            minscale = v;
        } else if ((v = cli_opt("--max-scale", argc, argv, &i, &missing))) {
            if (cli_parse_uint(v, 100000, &tmp) != 0) {
                rc = deploy_usage_error("--max-scale wants a whole number, got '%s'", v);
                goto out;
            }
            maxscale = v;
        } else if ((v = cli_opt("--timeout", argc, argv, &i, &missing))) {
            if (cli_parse_uint(v, 3600, &timeout_s) != 0 || timeout_s == 0) {
                rc = deploy_usage_error("--timeout wants seconds between 1 and 3600, got '%s'", v);
                goto out;
            }
        } else if ((v = cli_opt("--memory", argc, argv, &i, &missing))) {
            if (cli_parse_uint(v, 4096, &memory_mib) != 0 || memory_mib == 0) {
                rc = deploy_usage_error("--memory wants MiB between 1 and 4096, got '%s'", v);
                goto out;
            }
        } else if ((v = cli_opt("--allow-host", argc, argv, &i, &missing))) {
            /* Checked by the daemon (it names the entry at fault); a comma
             * would split one value into two entries. */
            if (!v[0] || strchr(v, ',')) {
                rc = deploy_usage_error("--allow-host wants one URL such as https://api.example.com, "
                                        "got '%s'", v);
                goto out;
            }
            char *joined;
            if (asprintf(&joined, "%s%s%s", allow_hosts ? allow_hosts : "", allow_hosts ? "," : "",
                         v) < 0) {
                rc = CLI_EXIT_FAIL;
                goto out;
            }
            free(allow_hosts);
            allow_hosts = joined;
        } else if ((v = cli_opt("--kv", argc, argv, &i, &missing))) {
            if (!*v || strchr(v, ',')) {
                rc = deploy_usage_error("--kv wants one store name, got '%s'", v);
                goto out;
            }
            if ((kv_stores.len && cm_buf_append(&kv_stores, ",", 1) != 0) ||
                cm_buf_append(&kv_stores, v, strlen(v)) != 0) {
                rc = CLI_EXIT_FAIL;
                goto out;
            }
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            rc = deploy_usage_error("unknown option '%s'", a);
            goto out;
        } else if (!name) {
            name = a;
        } else if (!file) {
            file = a;
        } else {
            rc = deploy_usage_error("unexpected argument '%s'", a);
            goto out;
        }
    }
    if (!name || !file) {
        rc = deploy_usage_error("wants NAME and F.wasm%s", "");
        goto out;
    }
    bool is_ref = oci_ref_is_registry(file);
    if (!is_ref && access(file, R_OK) != 0) {
        fprintf(stderr, "wasmfn deploy: %s: %s\n", file, strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    cli_api_t api;
    if (cli_api_open(&api) != 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    char digest[1024], err[1024];
    int up = 0;
    if (is_ref)
        snprintf(digest, sizeof digest, "%s", file); /* the daemon pulls it */
    else
        up = cli_blob_upload(&api, file, digest, sizeof digest, err, sizeof err);
    if (up != 0) {
        if (up == -1) fprintf(stderr, "wasmfn deploy: %s: %s\n", file, err);
        cli_api_close(&api);
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    /* The Knative Service the flags describe. */
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "apiVersion", "serving.knative.dev/v1");
    cJSON_AddStringToObject(doc, "kind", "Service");
    cJSON *meta = cJSON_AddObjectToObject(doc, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON *spec = cJSON_AddObjectToObject(doc, "spec");
    cJSON *tmpl = cJSON_AddObjectToObject(spec, "template");
    if (minscale || maxscale || allow_hosts || kv_stores.len) {
        cJSON *tmeta = cJSON_AddObjectToObject(tmpl, "metadata");
        cJSON *ann = cJSON_AddObjectToObject(tmeta, "annotations");
        if (minscale) cJSON_AddStringToObject(ann, "autoscaling.knative.dev/min-scale", minscale);
        if (maxscale) cJSON_AddStringToObject(ann, "autoscaling.knative.dev/max-scale", maxscale);
        if (allow_hosts) cJSON_AddStringToObject(ann, "wasmfn.dev/allowed-hosts", allow_hosts);
        if (kv_stores.len) cJSON_AddStringToObject(ann, "wasmfn.dev/kv-stores", kv_stores.data);
    }
    cJSON *tspec = cJSON_AddObjectToObject(tmpl, "spec");
    if (timeout_s) cJSON_AddNumberToObject(tspec, "timeoutSeconds", (double)timeout_s);
    cJSON *cs = cJSON_AddArrayToObject(tspec, "containers");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(cs, c);
    cJSON_AddStringToObject(c, "image", digest);
    if (cJSON_GetArraySize(env) > 0) {
        cJSON_AddItemToObject(c, "env", env);
        env = NULL;
    }
    if (memory_mib) {
        char mem[32];
        snprintf(mem, sizeof mem, "%lluMi", (unsigned long long)memory_mib);
        cJSON *res = cJSON_AddObjectToObject(c, "resources");
        cJSON *lim = cJSON_AddObjectToObject(res, "limits");
        cJSON_AddStringToObject(lim, "memory", mem);
    }

    cli_response_t r;
    rc = CLI_EXIT_FAIL;
    if (cli_api_json(&api, "POST", "/v1/apply", doc, &r) == 0) {
        if (r.status / 100 != 2) {
            rc = cli_api_fail(&api, "deploy", name, &r);
        } else {
            print_warnings(&r, NULL, NULL, "deploy");
            rc = print_applied(&r, quiet, NULL, 0);
        }
        cli_response_free(&r);
    }
    cJSON_Delete(doc);
    cli_api_close(&api);
out:
    cJSON_Delete(env);
    free(allow_hosts);
    cm_buf_free(&kv_stores);
    return rc;
}
