/*
 * internal.h — the api_t object, shared by api.c (routing and endpoints)
 * and logs.c (log streams). Private to src/api/.
 */
#ifndef WASMFN_API_INTERNAL_H
#define WASMFN_API_INTERNAL_H

#include <stdatomic.h>

#include <cjson/cJSON.h>

#include "http/http.h"
#include "store/store.h"

#include "api/api.h"

#define FOLLOW_POLL_MS 200
#define DEFAULT_TAIL 0 /* all the ring holds */

typedef struct follower follower_t;
typedef struct apply_job apply_job_t;

struct api {
    uv_loop_t *loop;
    st_store_t *st;
    srv_t *srv;
    mx_registry_t *mx;
    mtr_t *mtr;
    ev_t *ev;
    kd_t *keda;            /* ScaledObjects (scaledobjects.c), or NULL */
    char *data_url;
    bool ready;
    follower_t *followers; /* open logs?follow=1 streams */
    apply_job_t *applies;  /* Services whose module is being loaded */
    uint32_t keep_revisions;
    oci_options_t registry; /* for pulls: the daemon's options, cancel = &stopping */
    atomic_int stopping;    /* set by api_shutdown: pulls in flight give up */
    struct kv *kv;          /* /v1/kv (kv.c), or NULL */
    struct st_secrets *secrets; /* Secrets and ConfigMaps (secrets.c), or NULL */
};

/* Loads function name into f, answering 404/500 itself when it cannot. */
static inline bool api_get_function(api_t *a, hs_req_t *r, const char *name, st_function_t *f)
{
    char err[512];
    int rc = st_function_get(a->st, name, f, err, sizeof err);
    if (rc == ST_NOT_FOUND) {
        hs_respond_errorf(r, 404, "function %s not found", name);
        return false;
    }
    if (rc != ST_OK) {
        hs_respond_errorf(r, 500, "%s", err);
        return false;
    }
    return true;
}

/* logs.c */
void api_handle_logs(api_t *a, hs_req_t *r, const char *name);

/* stats.c: the dashboard's data (GET /v1/stats, .../series, .../invocations) */
void api_handle_stats(api_t *a, hs_req_t *r);
void api_handle_series(api_t *a, hs_req_t *r, const char *name);
void api_handle_recent(api_t *a, hs_req_t *r, const char *name);

/* ui.c: the dashboard's static files under /ui/ (no token: they hold no
 * data). True when the path is the dashboard's, which it then answered. */
bool api_ui_handle(hs_req_t *r);

/* kv.c: /v1/kv and /v1/kv/... (p is the path). */
void api_kv_handle(api_t *a, hs_req_t *r, const char *p);

/* deploy.c: hands function name to the data plane as f describes (f
 * NULL: stops serving it), and prunes its old unrouted revisions. */
int api_deploy(api_t *a, const char *name, const st_function_t *f, char *err, size_t errlen);
void api_revisions_prune(api_t *a, const char *name);

/* secrets.c: Secrets and ConfigMaps; envref.c: env values from them. */
bool api_is_config_kind(const char *api_version, const char *kind);
/* POST /v1/apply of a v1 Secret or ConfigMap (doc checked by the caller
 * to be one). */
void api_config_apply(api_t *a, hs_req_t *r, const cJSON *doc);
/* /v1/secrets[/NAME] and /v1/configmaps[/NAME]. */
void api_config_handle(api_t *a, hs_req_t *r, const char *p);
/* Records in spec the current version of each object its env refers to.
 * 0, or an HTTP status (400: a missing object or key that is not
 * optional) with a message naming the env variable and the object. */
int api_env_refs_fill(api_t *a, st_spec_t *spec, char *err, size_t errlen);
/* A revision's env with its references resolved: v[0..nborrowed) point
 * into the spec, the rest are "NAME=value" strings of their own (wiped
 * by api_env_free). */
typedef struct api_env {
    char **v;
    uint32_t n, nborrowed;
} api_env_t;
int api_env_resolve(api_t *a, const char *revision, const st_spec_t *sp, api_env_t *out,
                    char *err, size_t errlen);
void api_env_free(api_env_t *e);
/* Adds "envFrom" (the references, never values) to a revision's JSON. */
void api_env_refs_json(cJSON *o, const st_spec_t *sp);

/* applied.c: {"kind", "name", "created", "warnings"} answering an apply;
 * the caller adds more warnings to its "warnings" array as it needs, and
 * cJSON_Deletes it. */
cJSON *api_applied_json(const char *kind, const char *name, bool created,
                        char *const *warnings, uint32_t nwarnings);

#endif
