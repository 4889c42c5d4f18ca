/*
 * parse.c — the helpers both halves of the ScaledObject parser use
 * (parse.h): refusals and warnings that name their field, and reading a
 * trigger's metadata values, credentials from its TriggerAuthentication
 * first.
 */
#define _GNU_SOURCE
#include "keda/parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/strlist.h"

int kd_parse_fail(kd_parse_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void kd_parse_warn(kd_parse_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cm_strlist_addv(&c->so->warnings, &c->so->nwarnings, fmt, ap); /* lost to OOM: no error */
    va_end(ap);
}

const cJSON *kd_parse_member(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

size_t kd_from_env_stem(const char *k)
{
    size_t n = k ? strlen(k) : 0; /* an array's items have no key */
    return n > 7 && strcmp(k + n - 7, "FromEnv") == 0 ? n - 7 : 0;
}

void kd_parse_unknown(kd_parse_t *c, const cJSON *o, const char *path, const char *const *known,
                      const char *const *quiet)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        bool ok = false;
        size_t stem = kd_from_env_stem(it->string);
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(it->string, *k) == 0 ||
                 (stem && strlen(*k) == stem && strncmp(it->string, *k, stem) == 0);
        for (const char *const *k = quiet; k && *k && !ok; k++) ok = strcmp(it->string, *k) == 0;
        if (!ok) kd_parse_warn(c, "%s.%s: not supported; ignored", path, it->string);
    }
}

/* The metadata parameters a TriggerAuthentication may give, by trigger
 * type: the credentials, which no message repeats (KEDA takes more; these
 * are the ones wasmfn's readers use and keep out of their errors). */
const char *const *kd_auth_params_of(kd_type_t t)
{
    static const char *const prometheus[] = {"bearerToken", "username", "password", NULL};
    static const char *const redis[] = {"username", "password", NULL};
    static const char *const sentinel[] = {"username",         "password",       "sentinelUsername",
                                           "sentinelPassword", "sentinelMaster", NULL};
    static const char *const rabbitmq[] = {"host", NULL};
    static const char *const metrics_api[] = {"apiKey", "username", "password", "token",
                                              "ca",     "cert",     "key",      NULL};
    static const char *const postgresql[] = {"connection", "host",   "port",    "userName",
                                             "password",   "dbName", "sslmode", NULL};
    static const char *const mysql[] = {"connectionString", "host",     "port",
                                        "username",         "password", "dbName", NULL};
    static const char *const none[] = {NULL};
    switch (t) {
    case KD_POSTGRESQL: return postgresql;
    case KD_MYSQL: return mysql;
    case KD_PROMETHEUS: return prometheus;
    case KD_RABBITMQ: return rabbitmq;
    case KD_METRICS_API: return metrics_api;
    default:
        return kd_type_redis_sentinel(t) ? sentinel : kd_type_redis(t) ? redis : none;
    }
}

bool kd_auth_param_is(kd_type_t t, const char *k)
{
    for (const char *const *p = kd_auth_params_of(t); *p; p++)
        if (strcmp(*p, k) == 0) return true;
    return false;
}

/* The value k's KFromEnv read from the target's env (NULL when none, or
 * when it did not resolve: *pending then says so). */
static const char *from_env(const kd_parse_t *c, const char *k, bool *pending)
{
    for (uint32_t i = 0; i < c->nenv; i++)
        if (strcmp(c->env[i].parameter, k) == 0) {
            if (pending) *pending = !c->env[i].value;
            return c->env[i].value;
        }
    return NULL;
}

bool kd_meta_unresolved(const kd_parse_t *c, const char *k)
{
    bool pending = false;
    from_env(c, k, &pending);
    return pending || (c->auth_failed && kd_auth_param_is(c->type, k));
}

/* A metadata value as text (numbers and booleans written unquoted are
 * taken as their text), or NULL when absent; a credential the trigger's
 * TriggerAuthentication gives comes first, the value its KFromEnv read
 * last. buf holds the text of a non-string. */
const char *kd_meta_text(const kd_parse_t *c, const cJSON *md, const char *k, char *buf, size_t n)
{
    if (c->auth && kd_auth_param_is(c->type, k))
        for (uint32_t i = 0; i < c->nauth; i++)
            if (strcmp(c->auth[i].parameter, k) == 0) return c->auth[i].value;
    const cJSON *v = kd_parse_member(md, k);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        snprintf(buf, n, "%.17g", v->valuedouble);
        return buf;
    }
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "true" : "false";
    return from_env(c, k, NULL);
}

int kd_meta_str(kd_parse_t *c, const cJSON *md, const char *k, const char *path, bool required,
                char **out)
{
    char buf[64];
    const char *s = kd_meta_text(c, md, k, buf, sizeof buf);
    if (!s || !*s) {
        /* A value a TriggerAuthentication or the env was to give: the
         * trigger fails each read with auth_err or env_err instead. */
        if (required && !kd_meta_unresolved(c, k))
            return kd_parse_fail(c, "%s.metadata.%s: required", path, k);
        return 0;
    }
    if (!(*out = strdup(s))) return kd_parse_fail(c, "out of memory");
    return 1;
}

/* A number > 0 (or >= 0 with allow_zero) at key k of obj, whose place in
 * the document is where; def when absent. */
int kd_parse_num(kd_parse_t *c, const cJSON *obj, const char *k, const char *where, bool required,
                 bool allow_zero, double def, double *out)
{
    char buf[64];
    const char *s = kd_meta_text(c, obj, k, buf, sizeof buf);
    if (!s || !*s) {
        if (required && !kd_meta_unresolved(c, k))
            return kd_parse_fail(c, "%s.%s: required, a number %s 0", where, k,
                                 allow_zero ? "at least" : "above");
        *out = def;
        return 0;
    }
    char *end;
    double d = strtod(s, &end);
    if (*end || !isfinite(d) || d < 0 || (!allow_zero && d == 0))
        return kd_parse_fail(c, "%s.%s: \"%s\" is not a number %s 0", where, k, s,
                             allow_zero ? "at least" : "above");
    *out = d;
    return 1;
}

/* num_at in a trigger's metadata (path names the trigger). */
int kd_meta_num(kd_parse_t *c, const cJSON *md, const char *k, const char *path, bool required,
                bool allow_zero, double def, double *out)
{
    char where[96];
    snprintf(where, sizeof where, "%s.metadata", path);
    return kd_parse_num(c, md, k, where, required, allow_zero, def, out);
}

int kd_meta_bool(kd_parse_t *c, const cJSON *md, const char *k, const char *path, bool def,
                 bool *out)
{
    char buf[64];
    const char *s = kd_meta_text(c, md, k, buf, sizeof buf);
    *out = def;
    if (!s) return 0;
    if (strcasecmp(s, "true") == 0) *out = true;
    else if (strcasecmp(s, "false") == 0) *out = false;
    else return kd_parse_fail(c, "%s.metadata.%s: \"%s\" is not true or false", path, k, s);
    return 1;
}
