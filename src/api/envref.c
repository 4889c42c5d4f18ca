/*
 * envref.c — env values from Secrets and ConfigMaps (docs/secrets.md):
 * api_env_refs_fill records the current version of each object a
 * Service's env refers to before it is applied, and api_env_resolve
 * decrypts the values into the env handed to the data plane. Values exist
 * in clear only in those env arrays (wiped when freed) and in the data
 * plane's copy of a revision's env; no message here ever includes one.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/internal.h"
#include "store/secrets.h"

int api_env_refs_fill(api_t *a, st_spec_t *spec, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < spec->nenv_refs; i++) {
        st_env_ref_t *r = &spec->env_refs[i];
        const char *kind = (r->secret ? "Secret" : "ConfigMap");
        const char *field = r->secret ? "secretKeyRef" : "configMapKeyRef";
        char e[512];
        int64_t v = 0;
        int rc = a->secrets ? st_secret_current(a->secrets, kind, r->object, &v, e, sizeof e)
                            : ST_NOT_FOUND;
        if (rc == ST_ERR) {
            snprintf(err, errlen, "%s", e);
            return 500;
        }
        r->version = rc == ST_OK ? v : 0;
        if (rc == ST_NOT_FOUND) {
            if (r->optional) continue;
            snprintf(err, errlen, "env %s: valueFrom.%s: %s %s does not exist (create it first, or "
                                  "set optional: true)", r->name, field, kind, r->object);
            return 400;
        }
        uint8_t *val;
        size_t len;
        rc = st_secret_value(a->secrets, kind, r->object, v, r->key, &val, &len, e, sizeof e);
        st_secret_value_free(val, len);
        if (rc == ST_ERR) {
            snprintf(err, errlen, "%s", e);
            return 500;
        }
        if (rc == ST_NOT_FOUND && !r->optional) {
            snprintf(err, errlen, "env %s: valueFrom.%s: %s %s has no key %s", r->name, field,
                     kind, r->object, r->key);
            return 400;
        }
    }
    return 0;
}

void api_env_free(api_env_t *e)
{
    for (uint32_t i = e->nborrowed; i < e->n; i++) {
        sodium_memzero(e->v[i], strlen(e->v[i]));
        free(e->v[i]);
    }
    free(e->v);
    memset(e, 0, sizeof *e);
}

int api_env_resolve(api_t *a, const char *revision, const st_spec_t *sp, api_env_t *out,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->v = calloc(sp->nenv + sp->nenv_refs + 1, sizeof *out->v);
    if (!out->v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < sp->nenv; i++) out->v[i] = sp->env[i];
    out->n = out->nborrowed = sp->nenv;
    for (uint32_t i = 0; i < sp->nenv_refs; i++) {
        const st_env_ref_t *r = &sp->env_refs[i];
        const char *kind = (r->secret ? "Secret" : "ConfigMap");
        uint8_t *val = NULL;
        size_t len = 0;
        char e[512];
        int rc = r->version && a->secrets
                     ? st_secret_value(a->secrets, kind, r->object, r->version, r->key, &val, &len,
                                       e, sizeof e)
                     : ST_NOT_FOUND;
        if (rc == ST_NOT_FOUND && r->optional) continue;
        if (rc != ST_OK) {
            if (rc == ST_NOT_FOUND)
                snprintf(err, errlen, "revision %s: env %s: %s %s (version %lld) or its key %s no "
                                      "longer exists", revision, r->name, kind, r->object,
                         (long long)r->version, r->key);
            else
                snprintf(err, errlen, "revision %s: env %s: %s", revision, r->name, e);
            api_env_free(out);
            return -1;
        }
        /* An env value is a C string: a NUL inside would cut it short. */
        if (memchr(val, 0, len)) {
            st_secret_value_free(val, len);
            snprintf(err, errlen, "revision %s: env %s: %s %s key %s holds a NUL byte, which an "
                                  "environment value cannot", revision, r->name, kind, r->object,
                     r->key);
            api_env_free(out);
            return -1;
        }
        size_t nl = strlen(r->name);
        char *entry = malloc(nl + 1 + len + 1);
        if (!entry) {
            st_secret_value_free(val, len);
            snprintf(err, errlen, "out of memory");
            api_env_free(out);
            return -1;
        }
        memcpy(entry, r->name, nl);
        entry[nl] = '=';
        memcpy(entry + nl + 1, val, len + 1);
        st_secret_value_free(val, len);
        out->v[out->n++] = entry;
    }
    return 0;
}

void api_env_refs_json(cJSON *o, const st_spec_t *sp)
{
    if (!sp->nenv_refs) return;
    cJSON *arr = cJSON_AddArrayToObject(o, "envFrom");
    for (uint32_t i = 0; i < sp->nenv_refs; i++) {
        const st_env_ref_t *r = &sp->env_refs[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", r->name);
        cJSON *ref = cJSON_AddObjectToObject(e, r->secret ? "secretKeyRef" : "configMapKeyRef");
        cJSON_AddStringToObject(ref, "name", r->object);
        cJSON_AddStringToObject(ref, "key", r->key);
        cJSON_AddBoolToObject(ref, "optional", r->optional);
        cJSON_AddNumberToObject(e, "version", (double)r->version);
        cJSON_AddItemToArray(arr, e);
    }
}
