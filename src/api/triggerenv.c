/*
 * triggerenv.c — api_trigger_env_resolve: a trigger's ...FromEnv parameter
 * (KEDA reads it from the scale target's container environment) read from
 * the target Service's env, as its latest revision has it: a plain value,
 * or one from a Secret or ConfigMap (envref.c), opened for this one
 * variable. Like authref.c, the value goes into the running ScaledObject's
 * memory only; no message holds it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/scaledobjects.h"

int api_trigger_env_resolve(void *ud, const char *service, const char *var, char **value,
                            char *err, size_t errlen)
{
    api_t *a = ud;
    *value = NULL;
    st_function_t f;
    char e[512];
    int rc = st_function_get(a->st, service, &f, e, sizeof e);
    if (rc == ST_NOT_FOUND) {
        snprintf(err, errlen, "Service %s does not exist (yet), so its env %s cannot be read",
                 service, var);
        return -1;
    }
    if (rc != ST_OK) {
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    const st_revision_t *rev =
        f.latest_revision ? st_function_revision(&f, f.latest_revision) : NULL;
    api_env_t env = {0};
    int out = -1;
    if (!rev) {
        snprintf(err, errlen, "Service %s has no revision", service);
    } else if (api_env_resolve(a, rev->name, &rev->spec, &env, e, sizeof e) != 0) {
        snprintf(err, errlen, "Service %s: %s", service, e);
    } else {
        size_t n = strlen(var);
        const char *found = NULL;
        for (uint32_t i = 0; i < env.n && !found; i++)
            if (strncmp(env.v[i], var, n) == 0 && env.v[i][n] == '=') found = env.v[i] + n + 1;
        if (!found)
            snprintf(err, errlen, "Service %s (revision %s) has no env %s", service, rev->name,
                     var);
        else if (!(*value = strdup(found)))
            snprintf(err, errlen, "out of memory");
        else
            out = 0;
    }
    api_env_free(&env);
    st_function_free(&f);
    return out;
}
