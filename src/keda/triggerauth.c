/*
 * triggerauth.c — validates KEDA's TriggerAuthentication and
 * ClusterTriggerAuthentication (keda.sh/v1alpha1) into a kd_triggerauth_t:
 * which trigger parameter comes from which key of which v1 Secret
 * (secretTargetRef) or ConfigMap (configMapTargetRef), or from which
 * variable of the env of the Service a ScaledObject scales (env).
 *
 * In Kubernetes a ClusterTriggerAuthentication is cluster-scoped, and its
 * Secrets live in KEDA's own namespace. wasmfn has one namespace, where
 * its Secrets live too, so the cluster kind is the same object under
 * names of its own. It is accepted so that YAML written for a cluster
 * applies as it is.
 *
 * The object holds references only, never a value: the values stay sealed
 * in the Secrets (store/secrets.c) and are opened when a ScaledObject that
 * names this object is run (api/triggerauths.c resolves them). So the
 * document may be stored and shown as it is.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/k8sname.h"
#include "common/strlist.h"
#include "keda/internal.h"

bool kd_handles_auth_kind(const char *api_version, const char *kind)
{
    return api_version && kind && strncmp(api_version, "keda.sh/", 8) == 0 &&
           (strcmp(kind, kd_auth_kind_name(false)) == 0 ||
            strcmp(kind, kd_auth_kind_name(true)) == 0);
}

const char *kd_auth_kind_name(bool cluster)
{
    return cluster ? "ClusterTriggerAuthentication" : "TriggerAuthentication";
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void warn(kd_triggerauth_t *ta, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(kd_triggerauth_t *ta, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cm_strlist_addv(&ta->warnings, &ta->nwarnings, fmt, ap); /* a warning lost to OOM is no error */
    va_end(ap);
}

/* Keys of a Secret's data: 1-253 of [-._a-zA-Z0-9]. */
static bool key_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("-._", s[i]) && !(s[i] >= 'a' && s[i] <= 'z') &&
            !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9'))
            return false;
    return true;
}

static const char *str_member(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool kd_env_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n && n <= KD_MAX_ENV_NAME && !(*s >= '0' && *s <= '9') &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") == n;
}

/* spec.env: {parameter, name, containerName}. containerName is accepted
 * and has nothing to choose: a Service has one container. */
static int parse_env(const cJSON *arr, kd_triggerauth_t *ta, char *err, size_t errlen)
{
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) return fail(err, errlen, "spec.env: must be a list");
    const cJSON *r;
    uint32_t i = 0;
    cJSON_ArrayForEach(r, arr)
    {
        const char *param = str_member(r, "parameter"), *name = str_member(r, "name");
        if (!cJSON_IsObject(r)) return fail(err, errlen, "spec.env[%u]: must be an object", i);
        if (!param || !*param || strlen(param) > 63)
            return fail(err, errlen, "spec.env[%u].parameter: required, 1 to 63 characters "
                                     "(the trigger metadata it stands for, e.g. password)",
                        i);
        if (!name || !kd_env_name_ok(name))
            return fail(err, errlen, "spec.env[%u].name: required, the name of an environment "
                                     "variable of the Service (letters, digits, '_', '-', '.')",
                        i);
        for (uint32_t k = 0; k < ta->nrefs; k++)
            if (strcmp(ta->refs[k].parameter, param) == 0)
                return fail(err, errlen, "spec.env[%u].parameter: %s is given twice", i, param);
        cJSON *it;
        cJSON_ArrayForEach(it, r)
        {
            if (strcmp(it->string, "parameter") && strcmp(it->string, "name") &&
                strcmp(it->string, "containerName"))
                warn(ta, "spec.env[%u].%.64s: not supported; ignored", i, it->string);
        }
        kd_auth_ref_t *ref = &ta->refs[ta->nrefs++];
        ref->env = true;
        if (!(ref->parameter = strdup(param)) || !(ref->object = strdup(name)))
            return fail(err, errlen, "out of memory");
        i++;
    }
    return 0;
}

static int parse_refs(const cJSON *arr, const char *field, bool configmap, kd_triggerauth_t *ta,
                      char *err, size_t errlen)
{
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) return fail(err, errlen, "spec.%s: must be a list", field);
    const cJSON *r;
    uint32_t i = 0;
    cJSON_ArrayForEach(r, arr)
    {
        if (ta->nrefs >= KD_MAX_AUTH_REFS)
            return fail(err, errlen, "spec.%s: more than %u parameters", field, KD_MAX_AUTH_REFS);
        const char *param = str_member(r, "parameter"), *name = str_member(r, "name"),
                   *key = str_member(r, "key");
        if (!cJSON_IsObject(r)) return fail(err, errlen, "spec.%s[%u]: must be an object", field, i);
        if (!param || !*param || strlen(param) > 63)
            return fail(err, errlen, "spec.%s[%u].parameter: required, 1 to 63 characters "
                                     "(the trigger metadata it stands for, e.g. bearerToken)",
                        field, i);
        if (!name || !cm_k8s_subdomain_ok(name))
            return fail(err, errlen, "spec.%s[%u].name: required, the name of a %s", field, i,
                        configmap ? "ConfigMap" : "Secret");
        if (!key || !key_ok(key))
            return fail(err, errlen, "spec.%s[%u].key: required, 1-253 of [-._a-zA-Z0-9]", field,
                        i);
        for (uint32_t k = 0; k < ta->nrefs; k++)
            if (strcmp(ta->refs[k].parameter, param) == 0)
                return fail(err, errlen, "spec.%s[%u].parameter: %s is given twice", field, i,
                            param);
        cJSON *it;
        cJSON_ArrayForEach(it, r)
        {
            if (strcmp(it->string, "parameter") && strcmp(it->string, "name") &&
                strcmp(it->string, "key"))
                warn(ta, "spec.%s[%u].%.64s: not supported; ignored", field, i, it->string);
        }
        kd_auth_ref_t *ref = &ta->refs[ta->nrefs];
        ref->configmap = configmap;
        if (!(ref->parameter = strdup(param)) || !(ref->object = strdup(name)) ||
            !(ref->key = strdup(key))) {
            ta->nrefs++; /* freed with the rest */
            return fail(err, errlen, "out of memory");
        }
        ta->nrefs++;
        i++;
    }
    return 0;
}

int kd_triggerauth_parse(const cJSON *doc, kd_triggerauth_t *ta, char *err, size_t errlen)
{
    memset(ta, 0, sizeof *ta);
    if (errlen) err[0] = '\0';
    if (!cJSON_IsObject(doc)) return fail(err, errlen, "a TriggerAuthentication must be an object");
    const char *kind = str_member(doc, "kind");
    if (!kd_handles_auth_kind(str_member(doc, "apiVersion"), kind))
        return fail(err, errlen, "kind: want keda.sh/v1alpha1 TriggerAuthentication or "
                                 "ClusterTriggerAuthentication");
    ta->cluster = strcmp(kind, kd_auth_kind_name(true)) == 0;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    const char *name = str_member(md, "name");
    if (!name) return fail(err, errlen, "metadata.name: required");
    if (!cm_k8s_subdomain_ok(name))
        return fail(err, errlen, "metadata.name: \"%.80s\" must be 1-253 lowercase letters, "
                                 "digits, '-' or '.'",
                    name);
    const char *ns = str_member(md, "namespace");
    if (ns && ta->cluster)
        warn(ta, "metadata.namespace: a ClusterTriggerAuthentication has none; ignored");
    else if (ns && strcmp(ns, "default") != 0)
        warn(ta, "metadata.namespace: only the default namespace exists; ignored");
    if (!(ta->name = strdup(name))) return fail(err, errlen, "out of memory");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
    if (!cJSON_IsObject(spec)) return fail(err, errlen, "spec: required, an object");
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(spec, "secretTargetRef");
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(spec, "configMapTargetRef");
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(spec, "env");
    size_t n = (size_t)(cJSON_IsArray(sr) ? cJSON_GetArraySize(sr) : 0) +
               (size_t)(cJSON_IsArray(cr) ? cJSON_GetArraySize(cr) : 0) +
               (size_t)(cJSON_IsArray(er) ? cJSON_GetArraySize(er) : 0);
    if (n > KD_MAX_AUTH_REFS)
        return fail(err, errlen, "spec: %zu parameters; at most %u", n, KD_MAX_AUTH_REFS);
    if (n && !(ta->refs = calloc(n, sizeof *ta->refs))) return fail(err, errlen, "out of memory");
    if (parse_refs(sr, "secretTargetRef", false, ta, err, errlen) < 0 ||
        parse_refs(cr, "configMapTargetRef", true, ta, err, errlen) < 0 ||
        parse_env(er, ta, err, errlen) < 0)
        return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, spec)
    {
        if (strcmp(it->string, "secretTargetRef") && strcmp(it->string, "configMapTargetRef") &&
            strcmp(it->string, "env"))
            warn(ta, "spec.%.64s: not supported (wasmfn reads Secrets, ConfigMaps and the "
                     "Service's env); ignored",
                 it->string);
    }
    if (ta->nrefs == 0)
        return fail(err, errlen, "spec: no secretTargetRef, configMapTargetRef or env; wasmfn "
                                 "takes credentials from Secrets, ConfigMaps and the Service's "
                                 "env only");
    return 0;
}

void kd_triggerauth_free(kd_triggerauth_t *ta)
{
    if (!ta) return;
    for (uint32_t i = 0; i < ta->nrefs; i++) {
        free(ta->refs[i].parameter);
        free(ta->refs[i].object);
        free(ta->refs[i].key);
    }
    free(ta->refs);
    for (uint32_t i = 0; i < ta->nwarnings; i++) free(ta->warnings[i]);
    free(ta->warnings);
    free(ta->name);
    memset(ta, 0, sizeof *ta);
}
