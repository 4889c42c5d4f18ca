/*
 * authref.c — api_triggerauth_resolve: a trigger's authenticationRef
 * turned into its parameters, from Secrets, ConfigMaps, or the env of the
 * Service the ScaledObject scales (triggerenv.c). It opens the sealed
 * values for a ScaledObject's trigger when that is run (at apply, at
 * start, and when a TriggerAuthentication, Secret, ConfigMap or the
 * Service changes). The values go from
 * store/secrets.c into the running ScaledObject's memory only: they are
 * never stored in clear, answered, logged or put in a message.
 *
 * A file of its own, below scaledobjects.c (which runs ScaledObjects with
 * it) and triggerauths.c (which runs them again after a change), so
 * neither calls back into the other.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/scaledobjects.h"
#include "store/secrets.h"
#include "store/triggerauths.h"

int api_triggerauth_resolve(void *ud, const char *name, bool cluster, const char *service,
                            kd_auth_param_t **out, uint32_t *nout, char *err, size_t errlen)
{
    api_t *a = ud;
    *out = NULL;
    *nout = 0;
    char *text = NULL, e[512];
    int rc = st_triggerauth_get(a->st, cluster, name, &text, e, sizeof e);
    if (rc == ST_NOT_FOUND) {
        snprintf(err, errlen, "%s %s does not exist", kd_auth_kind_name(cluster), name);
        return -1;
    }
    if (rc != ST_OK) {
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    kd_triggerauth_t ta;
    if (!j || kd_triggerauth_parse(j, &ta, e, sizeof e) != 0) {
        snprintf(err, errlen, "%s %s: %s", kd_auth_kind_name(cluster), name,
                 j ? e : "its stored document is not JSON");
        cJSON_Delete(j);
        kd_triggerauth_free(&ta);
        return -1;
    }
    cJSON_Delete(j);
    kd_auth_param_t *ps = calloc(ta.nrefs, sizeof *ps);
    if (!ps) {
        snprintf(err, errlen, "out of memory");
        kd_triggerauth_free(&ta);
        return -1;
    }
    uint32_t n = 0;
    int failed = 0;
    for (uint32_t i = 0; i < ta.nrefs && !failed; i++) {
        const kd_auth_ref_t *r = &ta.refs[i];
        if (r->env) { /* a variable of the env of the Service scaled */
            char *v = NULL;
            failed = 1;
            if (api_trigger_env_resolve(a, service, r->object, &v, e, sizeof e) != 0) {
                snprintf(err, errlen, "parameter %s: %s", r->parameter, e);
            } else if (!(ps[n].parameter = strdup(r->parameter))) {
                explicit_bzero(v, strlen(v));
                free(v);
                snprintf(err, errlen, "out of memory");
            } else {
                ps[n++].value = v;
                failed = 0;
            }
            continue;
        }
        if (!a->secrets) { /* env sources still resolve without them */
            snprintf(err, errlen, "parameter %s: secrets are not available", r->parameter);
            failed = 1;
            continue;
        }
        const char *kind = r->configmap ? "ConfigMap" : "Secret";
        int64_t version;
        uint8_t *val = NULL;
        size_t len = 0;
        rc = st_secret_current(a->secrets, kind, r->object, &version, e, sizeof e);
        if (rc == ST_OK)
            rc = st_secret_value(a->secrets, kind, r->object, version, r->key, &val, &len, e,
                                 sizeof e);
        failed = 1;
        if (rc == ST_NOT_FOUND && !val)
            snprintf(err, errlen, "parameter %s: %s %s or its key %s does not exist", r->parameter,
                     kind, r->object, r->key);
        else if (rc != ST_OK)
            snprintf(err, errlen, "parameter %s: %s", r->parameter, e);
        else if (memchr(val, 0, len))
            /* A value is a C string where the readers use it. */
            snprintf(err, errlen, "parameter %s: %s %s key %s holds a NUL byte", r->parameter,
                     kind, r->object, r->key);
        else if (!(ps[n].parameter = strdup(r->parameter)) ||
                 !(ps[n].value = strndup((const char *)val, len)))
            snprintf(err, errlen, "out of memory");
        else
            failed = 0;
        if (ps[n].parameter || ps[n].value) n++;
        st_secret_value_free(val, len);
    }
    kd_triggerauth_free(&ta);
    if (failed) {
        kd_auth_params_free(ps, n);
        return -1;
    }
    *out = ps;
    *nout = n;
    return 0;
}
