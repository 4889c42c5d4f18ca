/*
 * api.c — the admin REST API of docs/api.md: routing, bearer-token auth,
 * and the endpoints (blobs, apply, functions, revisions, logs, invoke),
 * plus the unauthenticated /healthz, /readyz and /metrics.
 *
 * Everything runs on the event loop, with three exceptions kept off it
 * because they take long: validating and fsync'ing an uploaded module
 * (uv_queue_work), pulling an image from a registry (uv_queue_work,
 * images.c: bounded by the registry options' timeout and cancelled when
 * the daemon stops), and loading a Service's module before its apply
 * (compiling it and making its image, which runs its start function and
 * wizer.initialize: srv_module_prepare, on a pool worker). SQLite commits
 * are short (one WAL fsync) and happen on the loop, which keeps the store
 * single-threaded.
 *
 * Function logs (and `logs?follow=1` streams) are in logs.c; the api_t
 * object the two files share is in internal.h.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api/internal.h"
#include "api/images.h"
#include "api/usage.h"
#include "api/manifest.h"
#include "api/scaledobjects.h"
#include "common/jsonerr.h"
#include "common/logring.h"
#include "common/rfc3339.h"
#include "engine/engine.h"

static void apply_prepare(apply_job_t *j);
/* ---- Small helpers ---------------------------------------------------------- */

bool api_token_equal(const char *presented, const char *token)
{
    size_t n = strlen(token), m = strlen(presented);
    /* The length is not secret (always 64); the content is compared in
     * time that does not depend on where the first difference is. */
    unsigned char diff = m != n;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)token[i] ^ (unsigned char)(i < m ? presented[i] : 0);
    return diff == 0;
}

/* Answers with the JSON value j (which it frees). */
static void respond_cjson(hs_req_t *r, int status, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) {
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    hs_respond_json(r, status, s);
    free(s);
}

static bool method_is(const hs_req_t *r, const char *m) { return strcmp(r->method, m) == 0; }

/* ---- JSON views of the registry --------------------------------------------- */

static cJSON *revision_json(api_t *a, const char *fn, const st_revision_t *rv)
{
    cJSON *o = cJSON_CreateObject();
    char t[32];
    cm_rfc3339_format((int64_t)(rv->created) * 1000000000, CM_RFC3339_SECONDS, t, sizeof t);
    cJSON_AddStringToObject(o, "name", rv->name);
    cJSON_AddStringToObject(o, "function", fn);
    cJSON_AddStringToObject(o, "image", rv->spec.image);
    if (rv->spec.image_ref) {
        /* What the manifest named, and what it resolved to then. */
        cJSON_AddStringToObject(o, "imageRef", rv->spec.image_ref);
        cJSON_AddStringToObject(o, "imageDigest", rv->spec.image_digest ? rv->spec.image_digest : "");
    }
    cJSON_AddStringToObject(o, "created", t);
    cJSON *env = cJSON_AddObjectToObject(o, "env");
    for (uint32_t i = 0; i < rv->spec.nenv; i++) {
        const char *eq = strchr(rv->spec.env[i], '=');
        if (!eq) continue;
        char *k = strndup(rv->spec.env[i], (size_t)(eq - rv->spec.env[i]));
        if (k) cJSON_AddStringToObject(env, k, eq + 1);
        free(k);
    }
    cJSON_AddNumberToObject(o, "memoryLimitBytes", (double)rv->spec.memory_limit_bytes);
    /* resources.limits.cpu and the requests, 0 when not set (docs/api.md). */
    cJSON_AddNumberToObject(o, "cpuLimitMillis", rv->spec.cpu_limit_millis);
    cJSON_AddNumberToObject(o, "cpuRequestMillis", rv->spec.cpu_request_millis);
    cJSON_AddNumberToObject(o, "memoryRequestBytes", (double)rv->spec.memory_request_bytes);
    cJSON_AddNumberToObject(o, "timeoutSeconds", rv->spec.timeout_seconds);
    cJSON_AddNumberToObject(o, "minScale", rv->spec.min_scale);
    cJSON_AddNumberToObject(o, "maxScale", rv->spec.max_scale);
    cJSON_AddNumberToObject(o, "initialScale", rv->spec.initial_scale);
    cJSON_AddNumberToObject(o, "target", rv->spec.target);
    cJSON_AddNumberToObject(o, "windowSeconds", rv->spec.window_seconds);
    if (rv->spec.nallowed_hosts) {
        /* Outbound HTTP destinations (docs/host-http.md). */
        cJSON *ah = cJSON_AddArrayToObject(o, "allowedHosts");
        for (uint32_t i = 0; i < rv->spec.nallowed_hosts; i++)
            cJSON_AddItemToArray(ah, cJSON_CreateString(rv->spec.allowed_hosts[i]));
    }
    api_env_refs_json(o, &rv->spec);
    if (rv->spec.nkv_stores) {
        cJSON *kv = cJSON_AddArrayToObject(o, "kvStores");
        for (uint32_t i = 0; i < rv->spec.nkv_stores; i++)
            cJSON_AddItemToArray(kv, cJSON_CreateString(rv->spec.kv_stores[i]));
    }
    /* The tier its module's new instances run in (docs/api.md). */
    const char *detail = "";
    const char *tier = a->srv ? srv_module_tier(a->srv, rv->spec.image, &detail) : "not loaded";
    cJSON_AddStringToObject(o, "tier", tier);
    if (*detail) cJSON_AddStringToObject(o, "tierDetail", detail);
    return o;
}

static cJSON *function_json(api_t *a, const st_function_t *f)
{
    cJSON *o = cJSON_CreateObject();
    char t[32], *url = NULL;
    cm_rfc3339_format((int64_t)(f->created) * 1000000000, CM_RFC3339_SECONDS, t, sizeof t);
    cJSON_AddStringToObject(o, "name", f->name);
    if (asprintf(&url, "%s/fn/%s/", a->data_url, f->name) >= 0) {
        cJSON_AddStringToObject(o, "url", url);
        free(url);
    }
    if (f->latest_revision) cJSON_AddStringToObject(o, "latestRevision", f->latest_revision);
    else cJSON_AddNullToObject(o, "latestRevision");
    cJSON_AddStringToObject(o, "created", t);
    cJSON *tr = cJSON_AddArrayToObject(o, "traffic");
    for (uint32_t i = 0; i < f->nroutes; i++) {
        const st_route_t *rt = &f->routes[i];
        cJSON *e = cJSON_CreateObject();
        const char *rn = rt->latest ? f->latest_revision : rt->revision;
        if (rn) cJSON_AddStringToObject(e, "revisionName", rn);
        cJSON_AddNumberToObject(e, "percent", rt->percent);
        cJSON_AddBoolToObject(e, "latestRevision", rt->latest);
        cJSON_AddItemToArray(tr, e);
    }
    srv_status_t stt = {0};
    if (a->srv) srv_function_status(a->srv, f->name, &stt);
    cJSON *inst = cJSON_AddObjectToObject(o, "instances");
    cJSON_AddNumberToObject(inst, "warm", stt.warm);
    cJSON_AddNumberToObject(inst, "busy", stt.busy);
    cJSON_AddNumberToObject(o, "queueDepth", stt.queued);
    cJSON *warn = cJSON_AddArrayToObject(o, "warnings");
    if (stt.warning[0]) cJSON_AddItemToArray(warn, cJSON_CreateString(stt.warning));
    cJSON *revs = cJSON_AddArrayToObject(o, "revisions");
    for (uint32_t i = 0; i < f->nrevisions; i++)
        cJSON_AddItemToArray(revs, revision_json(a, f->name, &f->revisions[i]));
    return o;
}

/* ---- The data plane --------------------------------------------------------- */

/* api_deploy_fn for api_service_apply (deploy.c). */
static int deploy_to_plane(void *ud, const char *name, const st_function_t *f, char *err,
                           size_t errlen)
{
    int rc = api_deploy(ud, name, f, err, errlen);
    /* Its ScaledObject may read values from its env (...FromEnv). */
    if (rc == 0) api_scaledobjects_env_changed(ud, name);
    return rc;
}

int api_load_all(api_t *a, char *err, size_t errlen)
{
    char **names;
    size_t n;
    if (st_function_names(a->st, &names, &n, err, errlen) != ST_OK) return -1;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        st_function_t f;
        char e[512];
        if (st_function_get(a->st, names[i], &f, e, sizeof e) != ST_OK ||
            api_deploy(a, names[i], &f, e, sizeof e) != 0) {
            fprintf(stderr, "wasmfn: function %s not served: %s\n", names[i], e);
            failed++;
        }
        st_function_free(&f);
    }
    st_names_free(names, n);
    if (api_scaledobjects_load(a, err, errlen) != 0) return -1;
    return failed;
}

/* ---- Blobs ------------------------------------------------------------------ */

typedef struct blob_job {
    uv_work_t work;
    api_t *api;
    hs_req_t *req;
    int status;
    bool checked;           /* validated by srv_module_upload */
    char digest[ST_DIGEST_LEN + 1];
    char err[512];
} blob_job_t;

/* An upload is validated by compiling it, and that compile is the one the
 * data plane keeps (srv_module_upload: the module waits in its cache for
 * the deploy that names it) rather than a second one at deploy time:
 *   blob_digest_work  libuv threadpool: the bytes' digest
 *   blob_digest_done  loop: srv_module_upload (decode, validate, compile
 *                     on a pool worker)
 *   blob_checked      loop: 400 for an invalid module, else
 *   blob_work         libuv threadpool: write the blob durably
 *   blob_done         loop: 201
 * Without a data plane (unit tests) blob_work validates by itself. */
static void blob_work(uv_work_t *w)
{
    blob_job_t *j = w->data;
    if (!j->checked) {
        char e[ENG_ERR_MAX];
        eng_module_t *m = eng_module_new(j->req->body, j->req->body_len, e, sizeof e);
        if (!m) {
            j->status = 400;
            snprintf(j->err, sizeof j->err, "%s", e);
            return;
        }
        eng_module_free(m);
    }
    if (st_blob_put(j->api->st, j->req->body, j->req->body_len, j->digest, j->err, sizeof j->err) !=
        ST_OK) {
        j->status = 500;
        return;
    }
    j->status = 201;
}

static void blob_done(uv_work_t *w, int status)
{
    blob_job_t *j = w->data;
    if (status != 0) {
        hs_respond_errorf(j->req, 500, "upload cancelled");
    } else if (j->status != 201) {
        hs_respond_errorf(j->req, j->status, "%s", j->err);
    } else {
        char body[160];
        snprintf(body, sizeof body, "{\"digest\":\"%s\",\"size\":%zu}", j->digest, j->req->body_len);
        hs_header_t h[2] = {{"Content-Type", "application/json"}, {"Location", NULL}};
        char loc[ST_DIGEST_LEN + 16];
        snprintf(loc, sizeof loc, "/v1/blobs/%s", j->digest);
        h[1].value = loc;
        hs_respond(j->req, 201, h, 2, body, strlen(body));
    }
    free(j);
}

static void blob_checked(void *ud, int status, const char *err)
{
    blob_job_t *j = ud;
    if (status < 0) {
        hs_respond_errorf(j->req, 400, "%s", err);
        free(j);
        return;
    }
    j->checked = true;
    if (uv_queue_work(j->api->loop, &j->work, blob_work, blob_done) != 0) {
        hs_respond_errorf(j->req, 500, "cannot queue the upload");
        free(j);
    }
}

static void blob_digest_work(uv_work_t *w)
{
    blob_job_t *j = w->data;
    st_digest_of(j->req->body, j->req->body_len, j->digest);
}

static void blob_digest_done(uv_work_t *w, int status)
{
    blob_job_t *j = w->data;
    if (status != 0) {
        hs_respond_errorf(j->req, 500, "upload cancelled");
        free(j);
    } else if (srv_module_upload(j->api->srv, j->digest, j->req->body, j->req->body_len,
                                 blob_checked, j) != 0) {
        hs_respond_errorf(j->req, 500, "out of memory");
        free(j);
    }
}

static void handle_blob_post(api_t *a, hs_req_t *r)
{
    if (r->body_len == 0) {
        hs_respond_errorf(r, 400, "empty body: POST the module's .wasm bytes");
        return;
    }
    blob_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    j->api = a;
    j->req = r;
    j->work.data = j;
    if (uv_queue_work(a->loop, &j->work, a->srv ? blob_digest_work : blob_work,
                      a->srv ? blob_digest_done : blob_done) != 0) {
        free(j);
        hs_respond_errorf(r, 500, "cannot queue the upload");
    }
}

static void handle_blob_get(api_t *a, hs_req_t *r, const char *digest)
{
    uint8_t *bytes;
    size_t len;
    char err[512];
    if (st_digest_check(digest) != 0) {
        hs_respond_errorf(r, 404, "'%s' is not a sha256:HEX digest", digest);
        return;
    }
    int rc = st_blob_get(a->st, digest, &bytes, &len, err, sizeof err);
    if (rc == ST_NOT_FOUND) {
        hs_respond_errorf(r, 404, "blob %s not found", digest);
        return;
    }
    if (rc != ST_OK) {
        hs_respond_errorf(r, 500, "%s", err);
        return;
    }
    hs_header_t h = {"Content-Type", "application/wasm"};
    hs_respond(r, 200, &h, 1, bytes, len);
    free(bytes);
}

/* ---- Apply ------------------------------------------------------------------ */

/* A Service apply waiting for its module (srv_module_prepare). */
struct apply_job {
    api_t *api;
    hs_req_t *req;
    api_service_t svc;
    apply_job_t *next;
};

static void apply_job_unlink(api_t *a, apply_job_t *j)
{
    for (apply_job_t **p = &a->applies; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
}


/* Applies j's Service, answers, and frees j. */
static void apply_finish(apply_job_t *j)
{
    api_t *a = j->api;
    hs_req_t *r = j->req;
    api_service_t *svc = &j->svc;
    char err[1024];
    api_apply_result_t res;
    int bad = api_env_refs_fill(a, &svc->spec, err, sizeof err);
    if (bad) {
        hs_respond_errorf(r, bad, "%s", err);
        api_service_free(svc);
        free(j);
        return;
    }
    if (api_service_apply(a->st, svc, (int64_t)time(NULL), deploy_to_plane, a, &res, err,
                          sizeof err) != 0) {
        hs_respond_errorf(r, res.status, "%s", err);
        api_service_free(svc);
        free(j);
        return;
    }
    if (res.created) api_revisions_prune(a, svc->name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "Service");
    cJSON_AddStringToObject(o, "name", svc->name);
    cJSON_AddStringToObject(o, "revision", res.revision);
    cJSON_AddBoolToObject(o, "created", res.created);
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (uint32_t i = 0; i < svc->nwarnings; i++)
        cJSON_AddItemToArray(w, cJSON_CreateString(svc->warnings[i]));
    api_service_free(svc);
    free(j);
    respond_cjson(r, 200, o);
}

/* srv_prepare_fn: the module is loaded (err NULL) or cannot serve. */
static void apply_prepared(void *ud, const char *err)
{
    apply_job_t *j = ud;
    apply_job_unlink(j->api, j);
    if (err) {
        hs_respond_errorf(j->req, 400, "spec.template.spec.containers[0].image: %s%smodule %s: %s",
                      j->svc.spec.image_ref ? j->svc.spec.image_ref : "",
                      j->svc.spec.image_ref ? ": " : "", j->svc.spec.image, err);
        api_service_free(&j->svc);
        free(j);
        return;
    }
    apply_finish(j);
}

/* ---- Images from registries ---------------------------------------------------- */

/* A pull on a worker (images.c), for POST /v1/images or for an apply
 * whose image is a registry reference. */
typedef struct image_job {
    uv_work_t work;
    api_t *api;
    hs_req_t *req;
    apply_job_t *apply; /* NULL: POST /v1/images */
    char *image;
    int status;
    api_image_t res;
    char err[1024];
} image_job_t;

static void image_work(uv_work_t *w)
{
    image_job_t *j = w->data;
    j->status = api_image_pull(j->api->st, &j->api->registry, j->image, &j->res, j->err,
                               sizeof j->err);
}

static void image_done(uv_work_t *w, int status)
{
    image_job_t *j = w->data;
    apply_job_t *aj = j->apply;
    if (status != 0) {
        j->status = 500;
        snprintf(j->err, sizeof j->err, "%s: the pull was cancelled", j->image);
    }
    if (j->status != 200) {
        if (aj) {
            hs_respond_errorf(j->req, j->status, "spec.template.spec.containers[0].image: %s", j->err);
            api_service_free(&aj->svc);
            free(aj);
        } else {
            hs_respond_errorf(j->req, j->status, "%s", j->err);
        }
    } else if (aj && atomic_load(&j->api->stopping)) {
        hs_respond_errorf(j->req, 503, "the daemon is stopping: nothing applied");
        api_service_free(&aj->svc);
        free(aj);
    } else if (aj) {
        st_spec_t *sp = &aj->svc.spec;
        sp->image = strdup(j->res.module_digest);
        sp->image_digest = strdup(j->res.manifest_digest);
        if (!sp->image || !sp->image_digest) {
            hs_respond_errorf(j->req, 500, "out of memory");
            api_service_free(&aj->svc);
            free(aj);
        } else {
            apply_prepare(aj);
        }
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "image", j->image);
        cJSON_AddStringToObject(o, "digest", j->res.module_digest);
        cJSON_AddStringToObject(o, "imageDigest", j->res.manifest_digest);
        cJSON_AddNumberToObject(o, "size", (double)j->res.module_bytes);
        cJSON_AddBoolToObject(o, "cached", j->res.cached);
        respond_cjson(j->req, 200, o);
    }
    free(j->image);
    free(j);
}

/* Queues the pull of image (copied); its answer goes to r, or on to the
 * apply aj. Returns 0, or -1 (nothing queued, nothing answered). */
static int image_job_start(api_t *a, hs_req_t *r, const char *image, apply_job_t *aj)
{
    image_job_t *j = calloc(1, sizeof *j);
    if (!j || !(j->image = strdup(image))) {
        free(j);
        return -1;
    }
    j->api = a;
    j->req = r;
    j->apply = aj;
    j->work.data = j;
    if (uv_queue_work(a->loop, &j->work, image_work, image_done) != 0) {
        free(j->image);
        free(j);
        return -1;
    }
    return 0;
}

/* POST /v1/images {"image": REF}: pulls REF's module into the blob store
 * and answers its digests; what `wasmfn apply` calls for every image of
 * its documents before it applies any of them. */
static void handle_image_post(api_t *a, hs_req_t *r)
{
    char err[1024];
    cJSON *doc = api_json_parse(r->body, r->body_len, err, sizeof err);
    if (!doc) {
        hs_respond_errorf(r, 400, "%s", err);
        return;
    }
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(doc, "image");
    oci_ref_t ref;
    if (!cJSON_IsString(im)) {
        hs_respond_errorf(r, 400, "image: required, a registry reference (HOST[:PORT]/REPO[:TAG])");
    } else if (oci_ref_parse(im->valuestring, &ref, err, sizeof err) != 0) {
        hs_respond_errorf(r, 400, "image: %s", err);
    } else if (image_job_start(a, r, im->valuestring, NULL) != 0) {
        hs_respond_errorf(r, 500, "cannot queue the image pull");
    }
    cJSON_Delete(doc);
}

static void handle_apply(api_t *a, hs_req_t *r)
{
    char err[1024];
    cJSON *doc = api_json_parse(r->body, r->body_len, err, sizeof err);
    if (!doc) {
        hs_respond_errorf(r, 400, "%s", err);
        return;
    }
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(doc, "apiVersion");
    const cJSON *kd = cJSON_GetObjectItemCaseSensitive(doc, "kind");
    if (cJSON_IsString(av) && cJSON_IsString(kd) &&
        api_is_config_kind(av->valuestring, kd->valuestring)) {
        /* v1 Secret and ConfigMap (secrets.c). */
        api_config_apply(a, r, doc);
        cJSON_Delete(doc);
        return;
    }
    if (cJSON_IsString(av) && cJSON_IsString(kd) &&
        ev_handles_kind(av->valuestring, kd->valuestring)) {
        /* Eventing kinds: PingSource, RedisStreamSource, Broker, Trigger. */
        if (!a->ev) {
            cJSON_Delete(doc);
            hs_respond_errorf(r, 503, "eventing is not running");
            return;
        }
        char out[4096];
        int rc = ev_apply(a->ev, doc, out, sizeof out);
        cJSON_Delete(doc);
        if (rc != 0)
            hs_respond_errorf(r, 400, "%s", out);
        else
            hs_respond_json(r, 200, out);
        return;
    }
    if (cJSON_IsString(av) && cJSON_IsString(kd) && kd_handles_kind(av->valuestring, kd->valuestring)) {
        api_scaledobject_apply(a, r, doc); /* KEDA's ScaledObject */
        cJSON_Delete(doc);
        return;
    }
    if (cJSON_IsString(av) && cJSON_IsString(kd) &&
        kd_handles_auth_kind(av->valuestring, kd->valuestring)) {
        api_triggerauth_apply(a, r, doc); /* KEDA's (Cluster)TriggerAuthentication */
        cJSON_Delete(doc);
        return;
    }
    apply_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        cJSON_Delete(doc);
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    if (api_service_parse(doc, &j->svc, err, sizeof err) != 0) {
        cJSON_Delete(doc);
        free(j);
        hs_respond_errorf(r, 400, "%s", err);
        return;
    }
    cJSON_Delete(doc);
    j->api = a;
    j->req = r;
    if (j->svc.spec.image_ref) {
        if (image_job_start(a, r, j->svc.spec.image_ref, j) != 0) {
            api_service_free(&j->svc);
            free(j);
            hs_respond_errorf(r, 500, "cannot queue the image pull");
        }
        return;
    }
    apply_prepare(j);
}

/* Loads j's module, then applies j. */
static void apply_prepare(apply_job_t *j)
{
    api_t *a = j->api;
    /* The module is compiled and imaged on a worker first, under the
     * revision's limits, so the apply below finds it loaded and the loop
     * keeps serving meanwhile. (An image that is not an uploaded blob is
     * left to api_service_apply's own 400.) */
    if (a->srv && st_blob_exists(a->st, j->svc.spec.image)) {
        j->next = a->applies;
        a->applies = j;
        if (srv_module_prepare(a->srv, j->svc.spec.image, j->svc.spec.memory_limit_bytes,
                               j->svc.spec.timeout_seconds * 1000u, apply_prepared, j) == 0)
            return;
        apply_job_unlink(a, j);
    }
    apply_finish(j);
}

/* ---- Eventing ---------------------------------------------------------------- */

/* GET /v1/eventing lists sources, brokers and triggers;
 * DELETE /v1/eventing/KIND/NAME deletes one. */
static void handle_eventing(api_t *a, hs_req_t *r, const char *p)
{
    if (!a->ev) {
        hs_respond_errorf(r, 503, "eventing is not running");
        return;
    }
    if (strcmp(p, "/v1/eventing") == 0) {
        if (!method_is(r, "GET") && !method_is(r, "HEAD"))
            return hs_respond_method_not_allowed(r, "GET, HEAD");
        char *json = ev_list_json(a->ev);
        if (!json) {
            hs_respond_errorf(r, 500, "out of memory");
            return;
        }
        hs_respond_json(r, 200, json);
        free(json);
        return;
    }
    char kind[64], name[256];
    const char *rest = p + 13;
    const char *slash = strchr(rest, '/');
    if (!slash || (size_t)(slash - rest) >= sizeof kind || strlen(slash + 1) >= sizeof name ||
        !slash[1] || strchr(slash + 1, '/')) {
        hs_respond_errorf(r, 404, "use /v1/eventing/KIND/NAME");
        return;
    }
    if (!method_is(r, "DELETE"))
        return hs_respond_method_not_allowed(r, "DELETE");
    memcpy(kind, rest, (size_t)(slash - rest));
    kind[slash - rest] = '\0';
    snprintf(name, sizeof name, "%s", slash + 1);
    if (ev_delete(a->ev, kind, name) != 0) {
        hs_respond_errorf(r, 404, "no %s named %s", kind, name);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", name);
    cJSON_AddStringToObject(o, "kind", kind);
    respond_cjson(r, 200, o);
}

/* ---- Functions -------------------------------------------------------------- */

static void handle_function_list(api_t *a, hs_req_t *r)
{
    char **names;
    size_t n;
    char err[512];
    if (st_function_names(a->st, &names, &n, err, sizeof err) != ST_OK) {
        hs_respond_errorf(r, 500, "%s", err);
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        st_function_t f;
        if (st_function_get(a->st, names[i], &f, err, sizeof err) != ST_OK) continue;
        cJSON_AddItemToArray(arr, function_json(a, &f));
        st_function_free(&f);
    }
    st_names_free(names, n);
    respond_cjson(r, 200, arr);
}

static void handle_function_delete(api_t *a, hs_req_t *r, const char *name)
{
    char err[512];
    /* Durable first (autocommit, synchronous=FULL), then out of the data
     * plane: a crash in between leaves nothing to serve at restart. */
    int rc = st_function_delete(a->st, name, err, sizeof err);
    if (rc == ST_NOT_FOUND) {
        hs_respond_errorf(r, 404, "function %s not found", name);
        return;
    }
    if (rc != ST_OK) {
        hs_respond_errorf(r, 500, "%s", err);
        return;
    }
    if (a->srv) srv_function_delete(a->srv, name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", name);
    respond_cjson(r, 200, o);
}

/* ---- Routing ---------------------------------------------------------------- */

/* Splits "/v1/functions/NAME[/SUB[/REST]]": copies NAME and SUB, points
 * *rest at what follows SUB ("" if nothing). false if NAME is too long. */
static bool split_function_path(const char *p, char *name, size_t namelen, char *sub,
                                size_t sublen, const char **rest)
{
    const char *slash = strchr(p, '/');
    size_t nl = slash ? (size_t)(slash - p) : strlen(p);
    if (nl == 0 || nl >= namelen) return false;
    memcpy(name, p, nl);
    name[nl] = '\0';
    sub[0] = '\0';
    *rest = "";
    if (!slash) return true;
    const char *s = slash + 1;
    const char *s2 = strchr(s, '/');
    size_t sl = s2 ? (size_t)(s2 - s) : strlen(s);
    if (sl >= sublen) sl = sublen - 1;
    memcpy(sub, s, sl);
    sub[sl] = '\0';
    *rest = s2 ? s2 : "";
    return true;
}

static void handle_v1(api_t *a, hs_req_t *r)
{
    const char *p = r->path;
    bool get = method_is(r, "GET") || method_is(r, "HEAD");
    if (strcmp(p, "/v1/blobs") == 0) {
        if (!method_is(r, "POST")) return hs_respond_method_not_allowed(r, "POST");
        return handle_blob_post(a, r);
    }
    if (strncmp(p, "/v1/blobs/", 10) == 0) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        return handle_blob_get(a, r, p + 10);
    }
    if (strncmp(p, "/v1/invocations/", 16) == 0) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        char *json = a->srv ? srv_invocation_json(a->srv, p + 16) : NULL;
        if (!json) return hs_respond_errorf(r, 404, "no such invocation (unknown, or no longer kept)");
        hs_respond_json(r, 200, json);
        free(json);
        return;
    }
    if (strcmp(p, "/v1/usage") == 0)
        return api_usage_handle(a->mtr, r);
    if (strcmp(p, "/v1/stats") == 0)
        return api_handle_stats(a, r);
    if (strcmp(p, "/v1/eventing") == 0 || strncmp(p, "/v1/eventing/", 13) == 0)
        return handle_eventing(a, r, p);
    if (strcmp(p, "/v1/kv") == 0 || strncmp(p, "/v1/kv/", 7) == 0)
        return api_kv_handle(a, r, p);
    if (strcmp(p, "/v1/secrets") == 0 || strncmp(p, "/v1/secrets/", 12) == 0 ||
        strcmp(p, "/v1/configmaps") == 0 || strncmp(p, "/v1/configmaps/", 15) == 0)
        return api_config_handle(a, r, p);
    if (strcmp(p, "/v1/scaledobjects") == 0 || strncmp(p, "/v1/scaledobjects/", 18) == 0)
        return api_scaledobjects_handle(a, r, p);
    if (strcmp(p, "/v1/triggerauthentications") == 0 ||
        strncmp(p, "/v1/triggerauthentications/", 27) == 0)
        return api_triggerauths_handle(a, r, p, false);
    if (strcmp(p, "/v1/clustertriggerauthentications") == 0 ||
        strncmp(p, "/v1/clustertriggerauthentications/", 34) == 0)
        return api_triggerauths_handle(a, r, p, true);
    if (strcmp(p, "/v1/images") == 0) {
        if (!method_is(r, "POST")) return hs_respond_method_not_allowed(r, "POST");
        return handle_image_post(a, r);
    }
    if (strcmp(p, "/v1/apply") == 0) {
        if (!method_is(r, "POST")) return hs_respond_method_not_allowed(r, "POST");
        return handle_apply(a, r);
    }
    if (strcmp(p, "/v1/functions") == 0 || strcmp(p, "/v1/functions/") == 0) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        return handle_function_list(a, r);
    }
    if (strncmp(p, "/v1/functions/", 14) == 0) {
        char name[ST_NAME_MAX + 2], sub[32];
        const char *rest;
        if (!split_function_path(p + 14, name, sizeof name, sub, sizeof sub, &rest)) {
            hs_respond_errorf(r, 404, "no such function");
            return;
        }
        if (strcmp(sub, "invoke") == 0) {
            /* The caller's credentials are for the admin API: a function
             * must never see the admin token. */
            hs_req_remove_header(r, "Authorization");
            if (a->srv) srv_invoke(a->srv, name, rest, r);
            else hs_respond_errorf(r, 503, "the data plane is not running");
            return;
        }
        if (sub[0] == '\0' && !*rest) {
            if (method_is(r, "DELETE")) return handle_function_delete(a, r, name);
            if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD, DELETE");
            st_function_t f;
            if (!api_get_function(a, r, name, &f)) return;
            cJSON *o = function_json(a, &f);
            st_function_free(&f);
            return respond_cjson(r, 200, o);
        }
        if (strcmp(sub, "revisions") == 0 && !*rest) {
            if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
            st_function_t f;
            if (!api_get_function(a, r, name, &f)) return;
            cJSON *arr = cJSON_CreateArray();
            for (uint32_t i = 0; i < f.nrevisions; i++)
                cJSON_AddItemToArray(arr, revision_json(a, f.name, &f.revisions[i]));
            st_function_free(&f);
            return respond_cjson(r, 200, arr);
        }
        if (strcmp(sub, "logs") == 0 && !*rest) {
            if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
            return api_handle_logs(a, r, name);
        }
        if (strcmp(sub, "series") == 0 && !*rest) return api_handle_series(a, r, name);
        if (strcmp(sub, "invocations") == 0 && !*rest) return api_handle_recent(a, r, name);
    }
    hs_respond_errorf(r, 404, "no such endpoint: %s %s (see docs/api.md)", r->method, r->path);
}

static bool needs_token(const hs_req_t *r)
{
    return strcmp(r->path, "/v1") == 0 || strncmp(r->path, "/v1/", 4) == 0;
}

/* Answers 401 unless the request carries the admin token; true if it does. */
static bool check_token(api_t *a, hs_req_t *r)
{
    const char *auth = hs_req_header(r, "Authorization");
    const char *tok = NULL;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        tok = auth + 7;
        while (*tok == ' ') tok++;
    }
    if (tok && api_token_equal(tok, st_admin_token(a->st))) return true;
    static const hs_header_t h = {"WWW-Authenticate", "Bearer realm=\"wasmfn\""};
    hs_respond_error(r, 401, &h, 1,
                     "missing or wrong bearer token (send Authorization: Bearer TOKEN; the "
                     "token is in DATA/admin.token)");
    return false;
}

bool api_head_check(hs_req_t *r, void *ud)
{
    return !needs_token(r) || check_token(ud, r);
}

void api_handle(hs_req_t *r, void *ud)
{
    api_t *a = ud;
    const char *p = r->path;
    bool get = method_is(r, "GET") || method_is(r, "HEAD");
    if (strcmp(p, "/healthz") == 0) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        return hs_respond_text(r, 200, "ok\n");
    }
    if (strcmp(p, "/readyz") == 0) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        return hs_respond_text(r, a->ready ? 200 : 503, a->ready ? "ready\n" : "not ready\n");
    }
    if (strcmp(p, "/metrics") == 0) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        size_t len = 0;
        char *text = a->mx ? mx_registry_render(a->mx, &len) : NULL;
        hs_header_t h = {"Content-Type", "text/plain; version=0.0.4; charset=utf-8"};
        hs_respond(r, 200, &h, 1, text ? text : "", text ? len : 0);
        free(text);
        return;
    }
    if (api_ui_handle(r)) return;
    if (!needs_token(r)) {
        hs_respond_errorf(r, 404, "no such endpoint: %s (see docs/api.md)", p);
        return;
    }
    /* Also checked here: a server without api_head_check still refuses. */
    if (!check_token(a, r)) return;
    handle_v1(a, r);
}

/* ---- Lifetime --------------------------------------------------------------- */

api_t *api_new(const api_config_t *c)
{
    api_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = c->loop;
    a->st = c->store;
    a->srv = c->srv;
    a->mx = c->metrics;
    a->mtr = c->metering;
    a->ev = c->eventing;
    a->kv = c->kv;
    a->secrets = c->secrets;
    a->keda = c->keda;
    a->keep_revisions = c->keep_revisions ? c->keep_revisions : API_KEEP_REVISIONS_DEFAULT;
    if (c->registry) a->registry = *c->registry;
    a->registry.cancel = &a->stopping;
    a->data_url = strdup(c->data_url ? c->data_url : "");
    if (!a->data_url) {
        free(a);
        return NULL;
    }
    return a;
}

void api_set_ready(api_t *a, bool ready) { a->ready = ready; }

void api_set_eventing_gone(api_t *a) { if (a) a->ev = NULL; }

void api_free(api_t *a)
{
    if (!a) return;
    api_shutdown(a);
    /* Applies still waiting for their module: never answered (the admin
     * server is gone by now). */
    while (a->applies) {
        apply_job_t *j = a->applies;
        a->applies = j->next;
        if (a->srv) srv_module_prepare_cancel(a->srv, j);
        api_service_free(&j->svc);
        free(j);
    }
    free(a->data_url);
    free(a);
}
