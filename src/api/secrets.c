/*
 * secrets.c — Secrets and ConfigMaps in the admin API (docs/secrets.md,
 * docs/api.md):
 *
 *   POST /v1/apply with apiVersion v1, kind Secret or ConfigMap: stores a
 *        new version (store/secrets.h, sealed) and rolls it out: every
 *        function whose latest revision refers to the object gets a new
 *        revision with the new version, as a changed template would, all
 *        in one transaction (a revision the data plane refuses undoes the
 *        whole apply);
 *   GET /v1/secrets[/NAME], DELETE /v1/secrets/NAME (and /v1/configmaps):
 *        names, keys and versions, never values; a delete is refused (409)
 *        while a revision that serves (the latest, or one a route names)
 *        refers to the object.
 *
 * Env references to these objects are resolved in envref.c. No message
 * here ever includes a value.
 */
#define _GNU_SOURCE
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api/internal.h"
#include "api/manifest.h"
#include "api/scaledobjects.h"
#include "common/k8sname.h"
#include "common/rfc3339.h"
#include "store/secrets.h"

static const char *kind_of(bool secret) { return secret ? "Secret" : "ConfigMap"; }
static const char *lower_kind(const char *kind) { return strcmp(kind, "Secret") == 0 ? "secret" : "configmap"; }

/* ---- applying a Secret or ConfigMap ------------------------------------------ */

bool api_is_config_kind(const char *api_version, const char *kind)
{
    return strcmp(api_version, "v1") == 0 &&
           (strcmp(kind, "Secret") == 0 || strcmp(kind, "ConfigMap") == 0);
}

typedef struct pairs {
    st_secret_pair_t *p;
    uint8_t **owned;   /* decoded values, wiped when freed */
    uint32_t n;
    size_t bytes;
} pairs_t;

static void pairs_free(pairs_t *ps)
{
    for (uint32_t i = 0; i < ps->n; i++) {
        if (ps->owned[i]) {
            sodium_memzero(ps->owned[i], ps->p[i].value_len);
            free(ps->owned[i]);
        }
    }
    free(ps->p);
    free(ps->owned);
}

/* Adds (or, with replace, replaces) key; value is copied when copy is set,
 * else borrowed from the document. */
static int pairs_add(pairs_t *ps, const char *key, const uint8_t *value, size_t len, bool owned,
                     bool replace)
{
    for (uint32_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->p[i].key, key) != 0) continue;
        if (!replace) return 1;
        if (ps->owned[i]) sodium_memzero(ps->owned[i], ps->p[i].value_len), free(ps->owned[i]);
        ps->bytes -= ps->p[i].value_len;
        ps->p[i].value = value;
        ps->p[i].value_len = len;
        ps->owned[i] = owned ? (uint8_t *)value : NULL;
        ps->bytes += len;
        return 0;
    }
    st_secret_pair_t *np = realloc(ps->p, (ps->n + 1) * sizeof *np);
    if (!np) return -1;
    ps->p = np;
    uint8_t **no = realloc(ps->owned, (ps->n + 1) * sizeof *no);
    if (!no) return -1;
    ps->owned = no;
    ps->p[ps->n] = (st_secret_pair_t){key, value, len};
    ps->owned[ps->n] = owned ? (uint8_t *)value : NULL;
    ps->n++;
    ps->bytes += len;
    return 0;
}

/* Reads data (base64 when b64) into ps. Messages name the field, never a
 * value. Returns 0 or -1 with err. */
static int parse_map(const cJSON *m, const char *field, bool b64, bool replace, pairs_t *ps,
                     char *err, size_t errlen)
{
    if (!m || cJSON_IsNull(m)) return 0;
    if (!cJSON_IsObject(m)) {
        snprintf(err, errlen, "%s: must be a mapping of keys to values", field);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        if (!st_secret_key_ok(it->string)) {
            snprintf(err, errlen, "%s.%.80s: not a key name (1-253 of a-z, A-Z, 0-9, '-', '_', '.')",
                     field, it->string);
            return -1;
        }
        if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "%s.%s: must be a string", field, it->string);
            return -1;
        }
        const char *s = it->valuestring;
        size_t sl = strlen(s);
        uint8_t *bin = NULL;
        size_t bl = sl;
        if (b64) {
            bin = malloc(sl + 1);
            if (!bin || sodium_base642bin(bin, sl + 1, s, sl, " \n\r\t", &bl, NULL,
                                          sodium_base64_VARIANT_ORIGINAL) != 0) {
                free(bin);
                snprintf(err, errlen, "%s.%s: not valid base64", field, it->string);
                return -1;
            }
        }
        int rc = pairs_add(ps, it->string, b64 ? bin : (const uint8_t *)s, bl, b64, replace);
        if (rc != 0) {
            if (b64) sodium_memzero(bin, bl), free(bin);
            snprintf(err, errlen, rc > 0 ? "%s.%s: the key is also in data" : "out of memory",
                     field, it->string);
            return -1;
        }
    }
    return 0;
}

typedef struct rollout {
    char **fns;       /* functions given a new revision */
    uint32_t n;
} rollout_t;

static bool spec_uses(const st_spec_t *sp, const char *kind, const char *name)
{
    for (uint32_t i = 0; i < sp->nenv_refs; i++)
        if (strcmp(kind_of(sp->env_refs[i].secret), kind) == 0 &&
            strcmp(sp->env_refs[i].object, name) == 0)
            return true;
    return false;
}

/* Inside the caller's transaction: a new revision, with the new version,
 * for every function whose latest revision refers to kind/name; each is
 * handed to the data plane. Their new revisions are added to revs. */
static int rollout(api_t *a, const char *kind, const char *name, int64_t version, cJSON *revs,
                   rollout_t *ro, char *err, size_t errlen)
{
    char **names;
    size_t n;
    if (st_function_names(a->st, &names, &n, err, errlen) != ST_OK) return 500;
    int status = 0;
    for (size_t i = 0; i < n && !status; i++) {
        st_function_t f, cur;
        if (st_function_get(a->st, names[i], &f, err, errlen) != ST_OK) {
            status = 500;
            break;
        }
        const st_revision_t *latest =
            f.latest_revision ? st_function_revision(&f, f.latest_revision) : NULL;
        if (latest && spec_uses(&latest->spec, kind, name)) {
            st_spec_t sp;
            char rev[ST_REVISION_NAME_MAX + 1];
            if (st_spec_copy(&sp, &latest->spec) != 0) {
                snprintf(err, errlen, "out of memory");
                status = 500;
            } else {
                for (uint32_t k = 0; k < sp.nenv_refs; k++)
                    if (strcmp(kind_of(sp.env_refs[k].secret), kind) == 0 &&
                        strcmp(sp.env_refs[k].object, name) == 0)
                        sp.env_refs[k].version = version;
                if (st_revision_add(a->st, names[i], &sp, (int64_t)time(NULL), rev, err, errlen) != ST_OK)
                    status = 500;
                st_spec_free(&sp);
            }
            if (!status && st_function_get(a->st, names[i], &cur, err, errlen) != ST_OK) status = 500;
            else if (!status) {
                if (api_deploy(a, names[i], &cur, err, errlen) != 0) status = 400;
                st_function_free(&cur);
            }
            if (!status) {
                cJSON_AddItemToArray(revs, cJSON_CreateString(rev));
                char **nf = realloc(ro->fns, (ro->n + 1) * sizeof *nf);
                if (nf && (nf[ro->n] = strdup(names[i]))) ro->fns = nf, ro->n++;
                else if (nf) ro->fns = nf;
            }
        }
        st_function_free(&f);
    }
    st_names_free(names, n);
    return status;
}

void api_config_apply(api_t *a, hs_req_t *r, const cJSON *doc)
{
    char err[1024];
    const char *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind")->valuestring;
    bool secret = strcmp(kind, "Secret") == 0;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(meta, "name");
    if (!a->secrets) {
        hs_respond_errorf(r, 503, "secrets are not available");
        return;
    }
    if (!cJSON_IsString(nm) || !cm_k8s_subdomain_ok(nm->valuestring)) {
        hs_respond_errorf(r, 400, "metadata.name: required, 1-253 lowercase letters, digits, '-' "
                                  "or '.'");
        return;
    }
    const char *name = nm->valuestring;
    pairs_t ps = {0};
    cJSON *warnings = cJSON_CreateArray();
    int rc;
    if (secret)
        rc = parse_map(cJSON_GetObjectItemCaseSensitive(doc, "data"), "data", true, false, &ps, err,
                       sizeof err) ||
             /* stringData wins over data for the same key, as in Kubernetes. */
             parse_map(cJSON_GetObjectItemCaseSensitive(doc, "stringData"), "stringData", false,
                       true, &ps, err, sizeof err);
    else
        rc = parse_map(cJSON_GetObjectItemCaseSensitive(doc, "data"), "data", false, false, &ps, err,
                       sizeof err) ||
             parse_map(cJSON_GetObjectItemCaseSensitive(doc, "binaryData"), "binaryData", true,
                       false, &ps, err, sizeof err);
    if (!rc && ps.bytes > ST_SECRET_MAX_BYTES) {
        snprintf(err, sizeof err, "data: %zu bytes of values, over the limit of %u", ps.bytes,
                 ST_SECRET_MAX_BYTES);
        rc = 1;
    }
    if (rc) {
        pairs_free(&ps);
        cJSON_Delete(warnings);
        hs_respond_errorf(r, 400, "%s", err);
        return;
    }
    const cJSON *it;
    static const char *const known_s[] = {"apiVersion", "kind", "metadata", "data", "stringData",
                                          "type", "binaryData", "immutable", NULL};
    cJSON_ArrayForEach(it, doc)
    {
        bool ok = false;
        for (const char *const *k = known_s; *k && !ok; k++) ok = strcmp(*k, it->string) == 0;
        if (!ok || (secret && strcmp(it->string, "binaryData") == 0) ||
            (!secret && strcmp(it->string, "stringData") == 0) ||
            strcmp(it->string, "immutable") == 0) {
            char w[200];
            snprintf(w, sizeof w, "%.80s: not supported; ignored", it->string);
            cJSON_AddItemToArray(warnings, cJSON_CreateString(w));
        }
    }

    int status = 500;
    int64_t version = 0, prev = 0;
    cJSON *revs = cJSON_CreateArray();
    rollout_t ro = {0};
    bool existed = false;
    if (st_begin(a->st, err, sizeof err) != ST_OK) goto fail;
    int cur = st_secret_current(a->secrets, kind, name, &prev, err, sizeof err);
    if (cur == ST_ERR) goto rollback;
    existed = cur == ST_OK;
    if (st_secret_put(a->secrets, kind, name, ps.p, ps.n, (int64_t)time(NULL), &version, err,
                      sizeof err) != ST_OK)
        goto rollback;
    if ((status = rollout(a, kind, name, version, revs, &ro, err, sizeof err)) != 0) goto rollback;
    status = 500;
    if (st_secret_prune(a->secrets, kind, name, err, sizeof err) != ST_OK) goto rollback;
    if (st_commit(a->st, err, sizeof err) != ST_OK) goto rollback;
    for (uint32_t i = 0; i < ro.n; i++) api_revisions_prune(a, ro.fns[i]);
    api_scaledobjects_refresh(a); /* TriggerAuthentications read the new values */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddBoolToObject(o, "created", !existed);
    cJSON_AddNumberToObject(o, "version", (double)version);
    cJSON_AddItemToObject(o, "revisions", revs);
    cJSON_AddItemToObject(o, "warnings", warnings);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) hs_respond_json(r, 200, s);
    else hs_respond_errorf(r, 500, "out of memory");
    free(s);
    revs = warnings = NULL;
    goto out;
rollback:
    st_rollback(a->st);
    /* Functions already handed their new revision (the data plane serves
     * it) go back to the store's (rolled back) state; so does a failed
     * commit. */
    for (uint32_t i = 0; i < ro.n; i++) {
        st_function_t f;
        char e2[256];
        if (st_function_get(a->st, ro.fns[i], &f, e2, sizeof e2) == ST_OK) {
            api_deploy(a, ro.fns[i], &f, e2, sizeof e2);
            st_function_free(&f);
        }
    }
fail:
    hs_respond_errorf(r, status, "%s %s: %s", lower_kind(kind), name, err);
out:
    for (uint32_t i = 0; i < ro.n; i++) free(ro.fns[i]);
    free(ro.fns);
    cJSON_Delete(revs);
    cJSON_Delete(warnings);
    pairs_free(&ps);
}

/* ---- GET and DELETE ------------------------------------------------------------ */

static cJSON *keys_json(const char *keys)
{
    cJSON *arr = cJSON_CreateArray();
    for (const char *p = keys; p && *p;) {
        size_t n = strcspn(p, "\n");
        char *k = strndup(p, n);
        if (k) cJSON_AddItemToArray(arr, cJSON_CreateString(k));
        free(k);
        p += n + (p[n] == '\n');
    }
    return arr;
}

typedef struct list_ctx {
    cJSON *arr;
    const char *only; /* one name, or NULL */
} list_ctx_t;

static void list_one(void *ud, const char *name, int64_t version, int64_t created, const char *keys)
{
    list_ctx_t *l = ud;
    if (l->only && strcmp(l->only, name) != 0) return;
    cJSON *o = cJSON_CreateObject();
    char t[32];
    cm_rfc3339_format(created * 1000000000, CM_RFC3339_SECONDS, t, sizeof t);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddItemToObject(o, "keys", keys_json(keys));
    cJSON_AddNumberToObject(o, "version", (double)version);
    cJSON_AddStringToObject(o, "created", t);
    cJSON_AddItemToArray(l->arr, o);
}

typedef struct users {
    api_t *api;
    cJSON *arr;
    char serving[ST_REVISION_NAME_MAX + ST_NAME_MAX + 4]; /* the first serving user */
} users_t;

/* Whether revision serves: function's latest, or named by a route. */
static bool revision_serves(api_t *a, const char *function, const char *revision)
{
    st_function_t f;
    char e[256];
    if (st_function_get(a->st, function, &f, e, sizeof e) != ST_OK) return false;
    bool serves = f.latest_revision && strcmp(f.latest_revision, revision) == 0;
    for (uint32_t i = 0; i < f.nroutes && !serves; i++)
        serves = !f.routes[i].latest && f.routes[i].revision &&
                 strcmp(f.routes[i].revision, revision) == 0 && f.routes[i].percent > 0;
    st_function_free(&f);
    return serves;
}

static void user_one(void *ud, const char *function, const char *revision)
{
    users_t *u = ud;
    bool serves = revision_serves(u->api, function, revision);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "function", function);
    cJSON_AddStringToObject(o, "revision", revision);
    cJSON_AddBoolToObject(o, "serving", serves);
    cJSON_AddItemToArray(u->arr, o);
    if (serves && !u->serving[0])
        snprintf(u->serving, sizeof u->serving, "%s (revision %s)", function, revision);
}

void api_config_handle(api_t *a, hs_req_t *r, const char *p)
{
    bool secret = strncmp(p, "/v1/secrets", 11) == 0;
    const char *kind = kind_of(secret);
    const char *rest = p + (secret ? 11 : 14);
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    char err[512];
    if (!a->secrets) {
        hs_respond_errorf(r, 503, "secrets are not available");
        return;
    }
    if (*rest == '/') rest++;
    if (strchr(rest, '/') || (*rest && !cm_k8s_subdomain_ok(rest))) {
        hs_respond_errorf(r, 404, "no such endpoint: %s %s (see docs/api.md)", r->method, r->path);
        return;
    }
    if (!*rest) {
        if (!get) return hs_respond_method_not_allowed(r, "GET, HEAD");
        list_ctx_t l = {.arr = cJSON_CreateArray()};
        if (st_secret_list(a->secrets, kind, list_one, &l, err, sizeof err) != ST_OK) {
            cJSON_Delete(l.arr);
            return hs_respond_errorf(r, 500, "%s", err);
        }
        char *s = cJSON_PrintUnformatted(l.arr);
        cJSON_Delete(l.arr);
        hs_respond_json(r, 200, s ? s : "[]");
        free(s);
        return;
    }
    users_t u = {.api = a, .arr = cJSON_CreateArray()};
    if (st_secret_users(a->secrets, kind, rest, user_one, &u, err, sizeof err) != ST_OK) {
        cJSON_Delete(u.arr);
        return hs_respond_errorf(r, 500, "%s", err);
    }
    if (get) {
        list_ctx_t l = {.arr = cJSON_CreateArray(), .only = rest};
        st_secret_list(a->secrets, kind, list_one, &l, err, sizeof err);
        cJSON *o = cJSON_DetachItemFromArray(l.arr, 0);
        cJSON_Delete(l.arr);
        if (!o) {
            cJSON_Delete(u.arr);
            return hs_respond_errorf(r, 404, "%s %s not found", lower_kind(kind), rest);
        }
        cJSON_AddItemToObject(o, "usedBy", u.arr);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        hs_respond_json(r, 200, s ? s : "{}");
        free(s);
        return;
    }
    cJSON_Delete(u.arr);
    if (strcmp(r->method, "DELETE") != 0) return hs_respond_method_not_allowed(r, "GET, HEAD, DELETE");
    if (u.serving[0]) {
        hs_respond_errorf(r, 409, "%s %s is in use by function %s: apply its Service without the "
                                  "reference first", lower_kind(kind), rest, u.serving);
        return;
    }
    int rc = st_secret_delete(a->secrets, kind, rest, err, sizeof err);
    if (rc == ST_NOT_FOUND) return hs_respond_errorf(r, 404, "%s %s not found", lower_kind(kind), rest);
    if (rc != ST_OK) return hs_respond_errorf(r, 500, "%s", err);
    api_scaledobjects_refresh(a); /* TriggerAuthentications lose the values */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", rest);
    cJSON_AddStringToObject(o, "kind", kind);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    hs_respond_json(r, 200, s ? s : "{}");
    free(s);
}
