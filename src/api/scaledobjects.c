/*
 * scaledobjects.c — KEDA ScaledObjects on the admin API (docs/api.md):
 * POST /v1/apply of a keda.sh/v1alpha1 ScaledObject, GET /v1/scaledobjects
 * (all, with status), GET and DELETE /v1/scaledobjects/NAME; and loading
 * the stored ones at start. The document is checked (src/keda), saved
 * durably (store/scaled.c) and then run (kd_apply), in that order, so an
 * acknowledged ScaledObject survives SIGKILL and one refused leaves no
 * trace.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "api/scaledobjects.h"
#include "store/scaled.h"

static void respond_owned(hs_req_t *r, int status, char *json)
{
    if (!json) {
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    hs_respond_json(r, status, json);
    free(json);
}

void api_scaledobject_apply(api_t *a, hs_req_t *r, const cJSON *doc)
{
    if (!a->keda) {
        hs_respond_errorf(r, 503, "scaling (ScaledObject) is not running");
        return;
    }
    kd_scaledobject_t so;
    char err[1024];
    kd_resolvers_t rs = {api_triggerauth_resolve, api_trigger_env_resolve, a};
    if (kd_scaledobject_parse(doc, &rs, &so, err, sizeof err) != 0) {
        kd_scaledobject_free(&so);
        hs_respond_errorf(r, 400, "%s", err);
        return;
    }
    const char *owner = kd_target_owner(a->keda, so.target, so.name);
    if (owner) {
        hs_respond_errorf(r, 400,
                          "spec.scaleTargetRef.name: service %s is already scaled by "
                          "ScaledObject %s (one per Service)",
                          so.target, owner);
        kd_scaledobject_free(&so);
        return;
    }
    char *text = cJSON_PrintUnformatted(doc);
    bool created = false, changed = false;
    if (!text || st_scaledobject_put(a->st, so.name, so.target, text, (int64_t)time(NULL),
                                     &created, &changed, err, sizeof err) != ST_OK) {
        hs_respond_errorf(r, 500, "%s", text ? err : "out of memory");
        free(text);
        kd_scaledobject_free(&so);
        return;
    }
    free(text);
    /* Paused where it is: the count it holds is kept for a restart (what
     * it decided, or what it held already); anything else forgets it. */
    int32_t held = -1;
    uint32_t decided;
    if (so.paused && so.paused_replicas < 0) {
        if (kd_decided(a->keda, so.name, so.target, &decided)) held = (int32_t)decided;
        else if (st_scaledobject_paused_get(a->st, so.name, &held, err, sizeof err) != ST_OK)
            held = -1;
    }
    if (st_scaledobject_paused_put(a->st, so.name, held, err, sizeof err) != ST_OK) {
        hs_respond_errorf(r, 500, "%s", err);
        kd_scaledobject_free(&so);
        return;
    }
    cJSON *o = api_applied_json("ScaledObject", so.name, created, so.warnings, so.nwarnings);
    cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "warnings");
    for (uint32_t i = 0; i < so.ntriggers; i++) {
        const kd_trigger_t *t = &so.triggers[i];
        char line[512];
        if (t->auth_err) {
            snprintf(line, sizeof line, "spec.triggers[%u].authenticationRef: %s; the trigger "
                                        "fails each read until it resolves",
                     i, t->auth_err);
            cJSON_AddItemToArray(w, cJSON_CreateString(line));
        }
        if (t->env_err) {
            snprintf(line, sizeof line, "spec.triggers[%u].%s; the trigger fails each read until "
                                        "it resolves",
                     i, t->env_err);
            cJSON_AddItemToArray(w, cJSON_CreateString(line));
        }
    }
    st_function_t f;
    if (st_function_get(a->st, so.target, &f, err, sizeof err) == ST_OK) {
        st_function_free(&f);
    } else {
        char line[256];
        snprintf(line, sizeof line,
                 "spec.scaleTargetRef.name: no Service %s yet; it is scaled once deployed",
                 so.target);
        cJSON_AddItemToArray(w, cJSON_CreateString(line));
    }
    /* An unchanged document keeps running as it is (its state intact). */
    if (changed && kd_apply(a->keda, &so) != 0) {
        kd_scaledobject_free(&so);
        cJSON_Delete(o);
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    kd_scaledobject_free(&so);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    respond_owned(r, 200, s);
}

void api_scaledobjects_handle(api_t *a, hs_req_t *r, const char *p)
{
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    if (!a->keda) {
        hs_respond_errorf(r, 503, "scaling (ScaledObject) is not running");
        return;
    }
    if (strcmp(p, "/v1/scaledobjects") == 0 || strcmp(p, "/v1/scaledobjects/") == 0) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        return respond_owned(r, 200, kd_status_json(a->keda, NULL));
    }
    const char *name = p + strlen("/v1/scaledobjects/");
    if (!*name || strchr(name, '/') || strlen(name) > 63) {
        hs_respond_errorf(r, 404, "use /v1/scaledobjects/NAME");
        return;
    }
    if (strcmp(r->method, "DELETE") == 0) {
        char err[512];
        /* Durable first, then handed back: a crash in between leaves the
         * Service with its own autoscaler at restart. */
        int rc = st_scaledobject_delete(a->st, name, err, sizeof err);
        if (rc == ST_NOT_FOUND) return hs_respond_errorf(r, 404, "scaledobject %s not found", name);
        if (rc != ST_OK) return hs_respond_errorf(r, 500, "%s", err);
        kd_delete(a->keda, name);
        char body[160];
        snprintf(body, sizeof body, "{\"deleted\":\"%s\",\"kind\":\"ScaledObject\"}", name);
        hs_respond_json(r, 200, body);
        return;
    }
    if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD, DELETE");
    char *json = kd_status_json(a->keda, name);
    if (!json) return hs_respond_errorf(r, 404, "scaledobject %s not found", name);
    respond_owned(r, 200, json);
}

static void load_one(void *ud, const st_doc_t *d)
{
    api_t *a = ud;
    const char *name = d->name;
    char err[1024];
    cJSON *j = cJSON_Parse(d->doc);
    kd_scaledobject_t so;
    kd_resolvers_t rs = {api_triggerauth_resolve, api_trigger_env_resolve, a};
    bool ok = j && kd_scaledobject_parse(j, &rs, &so, err, sizeof err) == 0;
    /* Paused where it is: the count it held before the restart. */
    if (ok && so.paused && so.paused_replicas < 0 &&
        st_scaledobject_paused_get(a->st, name, &so.held_replicas, err, sizeof err) != ST_OK)
        so.held_replicas = -1;
    if (!ok || kd_apply(a->keda, &so) != 0) {
        fprintf(stderr, "wasmfn: scaledobject %s not run: %s\n", name,
                j ? err : "its stored document is not JSON");
    }
    if (j) kd_scaledobject_free(&so);
    cJSON_Delete(j);
}

int api_scaledobjects_load(api_t *a, char *err, size_t errlen)
{
    if (!a->keda) return 0;
    return st_scaledobject_each(a->st, load_one, a, err, errlen) == ST_OK ? 0 : -1;
}

/* Runs again, with credentials resolved anew, every stored ScaledObject
 * that names a TriggerAuthentication or reads its Service's env (whose
 * values may come from Secrets). */
static bool reads_references(const cJSON *j)
{
    return j && (kd_scaledobject_uses_auth(j, NULL, false) || kd_scaledobject_uses_env(j));
}

static void refresh_one(void *ud, const st_doc_t *d)
{
    cJSON *j = cJSON_Parse(d->doc);
    if (reads_references(j)) load_one(ud, d);
    cJSON_Delete(j);
}

typedef struct target_refresh {
    api_t *a;
    const char *service;
} target_refresh_t;

static void refresh_target_one(void *ud, const st_doc_t *d)
{
    target_refresh_t *tr = ud;
    if (!d->target || strcmp(d->target, tr->service) != 0) return;
    cJSON *j = cJSON_Parse(d->doc);
    if (reads_references(j)) load_one(tr->a, d);
    cJSON_Delete(j);
}

void api_scaledobjects_env_changed(api_t *a, const char *service)
{
    char err[512];
    target_refresh_t tr = {a, service};
    if (a->keda && st_scaledobject_each(a->st, refresh_target_one, &tr, err, sizeof err) != ST_OK)
        fprintf(stderr, "wasmfn: scaledobjects of %s not refreshed: %s\n", service, err);
}

void api_scaledobjects_refresh(api_t *a)
{
    char err[512];
    if (a->keda && st_scaledobject_each(a->st, refresh_one, a, err, sizeof err) != ST_OK)
        fprintf(stderr, "wasmfn: scaledobjects not refreshed: %s\n", err);
}
