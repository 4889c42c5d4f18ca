/*
 * triggerauths.c — KEDA TriggerAuthentications and
 * ClusterTriggerAuthentications on the admin API (docs/api.md,
 * docs/scaling.md#triggerauthentication):
 *
 *   POST /v1/apply of either kind (keda.sh/v1alpha1): checked
 *        (src/keda/triggerauth.c), stored (store/triggerauths.c), then the
 *        ScaledObjects that name it run again with its credentials;
 *   GET /v1/triggerauthentications[/NAME] (and
 *        /v1/clustertriggerauthentications[/NAME]): its references
 *        (parameter, Secret or ConfigMap, key) and the ScaledObjects that
 *        use it;
 *   DELETE /v1/triggerauthentications/NAME (or the cluster kind's): those
 *        ScaledObjects' triggers then fail each read, saying it is gone
 *        (KEDA does the same).
 *
 * The values themselves are opened by authref.c.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "api/scaledobjects.h"
#include "common/rfc3339.h"
#include "store/scaled.h"
#include "store/secrets.h"
#include "store/triggerauths.h"

/* ---- applying ------------------------------------------------------------------ */

void api_triggerauth_apply(api_t *a, hs_req_t *r, const cJSON *doc)
{
    kd_triggerauth_t ta;
    char err[1024];
    if (kd_triggerauth_parse(doc, &ta, err, sizeof err) != 0) {
        kd_triggerauth_free(&ta);
        hs_respond_errorf(r, 400, "%s", err);
        return;
    }
    char *text = cJSON_PrintUnformatted(doc);
    bool created = false;
    if (!text || st_triggerauth_put(a->st, ta.cluster, ta.name, text, (int64_t)time(NULL),
                                    &created, err, sizeof err) != ST_OK) {
        hs_respond_errorf(r, 500, "%s", text ? err : "out of memory");
        free(text);
        kd_triggerauth_free(&ta);
        return;
    }
    free(text);
    cJSON *o = api_applied_json(kd_auth_kind_name(ta.cluster), ta.name, created, ta.warnings,
                                ta.nwarnings);
    cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "warnings");
    /* A reference that does not resolve yet is no error (the Secret may
     * come next in the same file), but it is worth a word. */
    for (uint32_t i = 0; a->secrets && i < ta.nrefs; i++) {
        const kd_auth_ref_t *ref = &ta.refs[i];
        if (ref->env) continue; /* read from each ScaledObject's own Service */
        const char *kind = ref->configmap ? "ConfigMap" : "Secret";
        int64_t v;
        char e[512], line[600];
        if (st_secret_current(a->secrets, kind, ref->object, &v, e, sizeof e) == ST_NOT_FOUND) {
            snprintf(line, sizeof line, "spec.%s: %s %s does not exist yet",
                     ref->configmap ? "configMapTargetRef" : "secretTargetRef", kind, ref->object);
            cJSON_AddItemToArray(w, cJSON_CreateString(line));
        }
    }
    kd_triggerauth_free(&ta);
    api_scaledobjects_refresh(a);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) hs_respond_json(r, 200, s);
    else hs_respond_errorf(r, 500, "out of memory");
    free(s);
}

/* ---- GET and DELETE -------------------------------------------------------------- */

typedef struct users {
    const char *name;
    bool cluster;
    cJSON *arr;
} users_t;

static void user_one(void *ud, const st_doc_t *d)
{
    users_t *u = ud;
    cJSON *j = cJSON_Parse(d->doc);
    if (j && kd_scaledobject_uses_auth(j, u->name, u->cluster))
        cJSON_AddItemToArray(u->arr, cJSON_CreateString(d->name));
    cJSON_Delete(j);
}

typedef struct list {
    api_t *api;
    bool cluster;     /* the kind listed */
    const char *only; /* one name, or NULL for all */
    cJSON *arr;
} list_t;

static void list_one(void *ud, const st_doc_t *d)
{
    list_t *l = ud;
    const char *name = d->name;
    if (l->only && strcmp(l->only, name) != 0) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kd_auth_kind_name(l->cluster));
    cJSON_AddStringToObject(o, "name", name);
    char t[40];
    cm_rfc3339_format(d->created * 1000000000, CM_RFC3339_SECONDS, t, sizeof t);
    cJSON_AddStringToObject(o, "created", t);
    cJSON *j = cJSON_Parse(d->doc);
    kd_triggerauth_t ta;
    char err[512];
    cJSON *sr = cJSON_AddArrayToObject(o, "secretTargetRef");
    cJSON *cr = cJSON_AddArrayToObject(o, "configMapTargetRef");
    cJSON *er = cJSON_AddArrayToObject(o, "env");
    if (j && kd_triggerauth_parse(j, &ta, err, sizeof err) == 0) {
        for (uint32_t i = 0; i < ta.nrefs; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "parameter", ta.refs[i].parameter);
            cJSON_AddStringToObject(e, "name", ta.refs[i].object);
            if (ta.refs[i].key) cJSON_AddStringToObject(e, "key", ta.refs[i].key);
            cJSON_AddItemToArray(ta.refs[i].env ? er : ta.refs[i].configmap ? cr : sr, e);
        }
    } else {
        cJSON_AddStringToObject(o, "error", j ? err : "its stored document is not JSON");
    }
    kd_triggerauth_free(&ta);
    cJSON_Delete(j);
    users_t u = {.name = name, .cluster = l->cluster, .arr = cJSON_AddArrayToObject(o, "usedBy")};
    char e2[512];
    st_scaledobject_each(l->api->st, user_one, &u, e2, sizeof e2);
    cJSON_AddItemToArray(l->arr, o);
}

void api_triggerauths_handle(api_t *a, hs_req_t *r, const char *p, bool cluster)
{
    /* "triggerauthentications" or "clustertriggerauthentications" */
    const char *plural = cluster ? "clustertriggerauthentications" : "triggerauthentications";
    const char *rest = p + strlen("/v1/") + strlen(plural);
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    char err[512];
    if (*rest == '/') rest++;
    if (strchr(rest, '/') || strlen(rest) > 253) {
        hs_respond_errorf(r, 404, "use /v1/%s/NAME", plural);
        return;
    }
    /* "triggerauthentication" or "clustertriggerauthentication" */
    int singular = (int)strlen(plural) - 1;
    if (*rest && strcmp(r->method, "DELETE") == 0) {
        int rc = st_triggerauth_delete(a->st, cluster, rest, err, sizeof err);
        if (rc == ST_NOT_FOUND)
            return hs_respond_errorf(r, 404, "%.*s %s not found", singular, plural, rest);
        if (rc != ST_OK) return hs_respond_errorf(r, 500, "%s", err);
        /* Its users' triggers lose their credentials now, not at restart. */
        api_scaledobjects_refresh(a);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "deleted", rest);
        cJSON_AddStringToObject(o, "kind", kd_auth_kind_name(cluster));
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        hs_respond_json(r, 200, s ? s : "{}");
        free(s);
        return;
    }
    if (!get) return hs_respond_method_not_allowed(r, *rest ? "GET, HEAD, DELETE" : "GET, HEAD");
    list_t l = {.api = a, .cluster = cluster, .only = *rest ? rest : NULL, .arr = cJSON_CreateArray()};
    if (st_triggerauth_each(a->st, cluster, list_one, &l, err, sizeof err) != ST_OK) {
        cJSON_Delete(l.arr);
        return hs_respond_errorf(r, 500, "%s", err);
    }
    cJSON *out = l.arr;
    if (*rest) {
        out = cJSON_DetachItemFromArray(l.arr, 0);
        cJSON_Delete(l.arr);
        if (!out) return hs_respond_errorf(r, 404, "%.*s %s not found", singular, plural, rest);
    }
    char *s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    if (s) hs_respond_json(r, 200, s);
    else hs_respond_errorf(r, 500, "out of memory");
    free(s);
}
