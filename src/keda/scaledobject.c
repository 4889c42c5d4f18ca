/*
 * scaledobject.c — validates a KEDA ScaledObject document (keda.sh/v1alpha1,
 * as JSON) into a kd_scaledobject_t, with KEDA's defaults.
 *
 * As for Knative Services (api/manifest.c), YAML written for KEDA must
 * apply unchanged: what wasmfn honours is checked strictly, with errors
 * naming the field (`spec.triggers[0].metadata.threshold: ...`); fields
 * KEDA has and wasmfn does not use are warnings. Trigger metadata values
 * are strings in KEDA; numbers and booleans written unquoted are taken as
 * their text.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/k8sname.h"
#include "common/quantity.h"
#include "common/strlist.h"
#include "eventing/eventing.h"
#include "keda/internal.h"

#define SUPPORTED                                                                                  \
    "prometheus, cpu, memory, cron, redis, redis-streams, nats-jetstream, rabbitmq, "             \
    "metrics-api, redis-cluster, redis-cluster-streams, redis-sentinel, redis-sentinel-streams, " \
    "postgresql, mysql"

static const char *const type_names[] = {
    [KD_PROMETHEUS] = "prometheus",         [KD_CPU] = "cpu",
    [KD_MEMORY] = "memory",                 [KD_CRON] = "cron",
    [KD_REDIS_STREAMS] = "redis-streams",   [KD_NATS_JETSTREAM] = "nats-jetstream",
    [KD_RABBITMQ] = "rabbitmq",             [KD_REDIS_LISTS] = "redis",
    [KD_METRICS_API] = "metrics-api",
    [KD_REDIS_CLUSTER_LISTS] = "redis-cluster",
    [KD_REDIS_CLUSTER_STREAMS] = "redis-cluster-streams",
    [KD_REDIS_SENTINEL_LISTS] = "redis-sentinel",
    [KD_REDIS_SENTINEL_STREAMS] = "redis-sentinel-streams",
    [KD_POSTGRESQL] = "postgresql",
    [KD_MYSQL] = "mysql",
};

const char *kd_type_name(kd_type_t t) { return type_names[t]; }

bool kd_type_redis_list(kd_type_t t)
{
    return t == KD_REDIS_LISTS || t == KD_REDIS_CLUSTER_LISTS || t == KD_REDIS_SENTINEL_LISTS;
}

bool kd_type_redis_cluster(kd_type_t t)
{
    return t == KD_REDIS_CLUSTER_LISTS || t == KD_REDIS_CLUSTER_STREAMS;
}

bool kd_type_redis_sentinel(kd_type_t t)
{
    return t == KD_REDIS_SENTINEL_LISTS || t == KD_REDIS_SENTINEL_STREAMS;
}

bool kd_type_redis(kd_type_t t)
{
    return t == KD_REDIS_STREAMS || kd_type_redis_list(t) || kd_type_redis_cluster(t) ||
           kd_type_redis_sentinel(t);
}

bool kd_handles_kind(const char *api_version, const char *kind)
{
    return api_version && kind && strncmp(api_version, "keda.sh/", 8) == 0 &&
           strcmp(kind, "ScaledObject") == 0;
}

typedef struct ctx {
    kd_scaledobject_t *so;
    char *err;
    size_t errlen;
    kd_auth_resolve_fn resolve;
    void *ud;
    /* The trigger being parsed: its type, and the credentials its
     * authenticationRef gave (NULL when none), which win over metadata. */
    kd_type_t type;
    const kd_auth_param_t *auth;
    uint32_t nauth;
    bool auth_failed;     /* it has an authenticationRef that did not resolve */
} ctx_t;

static int fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void warn(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cm_strlist_addv(&c->so->warnings, &c->so->nwarnings, fmt, ap); /* lost to OOM: no error */
    va_end(ap);
}

static const cJSON *member(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

/* Warns about every member of o not in known (NULL-terminated) and not in
 * quiet (accepted without a word: they change nothing here). */
static void warn_unknown(ctx_t *c, const cJSON *o, const char *path, const char *const *known,
                         const char *const *quiet)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(it->string, *k) == 0;
        for (const char *const *k = quiet; k && *k && !ok; k++) ok = strcmp(it->string, *k) == 0;
        if (!ok) warn(c, "%s.%s: not supported; ignored", path, it->string);
    }
}

/* An optional whole number in [lo, hi]; 1 when present, 0 when absent. */
static int uint_field(ctx_t *c, const cJSON *o, const char *k, const char *path, uint32_t lo,
                      uint32_t hi, uint32_t *out)
{
    const cJSON *v = member(o, k);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = NAN;
    if (cJSON_IsNumber(v)) d = v->valuedouble;
    else if (cJSON_IsString(v) && *v->valuestring) {
        char *end;
        d = strtod(v->valuestring, &end);
        if (*end) d = NAN;
    }
    if (!(d >= lo && d <= hi) || d != floor(d))
        return fail(c, "%s.%s: must be a whole number from %u to %u", path, k, lo, hi);
    *out = (uint32_t)d;
    return 1;
}

/* ---- trigger metadata ------------------------------------------------------ */

/* The metadata parameters a TriggerAuthentication may give, by trigger
 * type: the credentials, which no message repeats (KEDA takes more; these
 * are the ones wasmfn's readers use and keep out of their errors). */
static const char *const *auth_params(kd_type_t t)
{
    static const char *const prometheus[] = {"bearerToken", "username", "password", NULL};
    static const char *const redis[] = {"username", "password", NULL};
    static const char *const sentinel[] = {"username",         "password",         "sentinelUsername",
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

static bool is_auth_param(kd_type_t t, const char *k)
{
    for (const char *const *p = auth_params(t); *p; p++)
        if (strcmp(*p, k) == 0) return true;
    return false;
}

/* A metadata value as text (numbers and booleans written unquoted are
 * taken as their text), or NULL when absent; a credential the trigger's
 * TriggerAuthentication gives comes first. buf holds the text of a
 * non-string. */
static const char *meta(const ctx_t *c, const cJSON *md, const char *k, char *buf, size_t n)
{
    if (c->auth && is_auth_param(c->type, k))
        for (uint32_t i = 0; i < c->nauth; i++)
            if (strcmp(c->auth[i].parameter, k) == 0) return c->auth[i].value;
    const cJSON *v = member(md, k);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        snprintf(buf, n, "%.17g", v->valuedouble);
        return buf;
    }
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "true" : "false";
    return NULL;
}

static int meta_str(ctx_t *c, const cJSON *md, const char *k, const char *path, bool required,
                    char **out)
{
    char buf[64];
    const char *s = meta(c, md, k, buf, sizeof buf);
    if (!s || !*s) {
        /* A credential its TriggerAuthentication was to give: the trigger
         * fails each read with auth_err instead. */
        if (required && !(c->auth_failed && is_auth_param(c->type, k)))
            return fail(c, "%s.metadata.%s: required", path, k);
        return 0;
    }
    if (!(*out = strdup(s))) return fail(c, "out of memory");
    return 1;
}

/* A number > 0 (or >= 0 with allow_zero) at key k of obj, whose place in
 * the document is where; def when absent. */
static int num_at(ctx_t *c, const cJSON *obj, const char *k, const char *where, bool required,
                  bool allow_zero, double def, double *out)
{
    char buf[64];
    const char *s = meta(c, obj, k, buf, sizeof buf);
    if (!s || !*s) {
        if (required)
            return fail(c, "%s.%s: required, a number %s 0", where, k,
                        allow_zero ? "at least" : "above");
        *out = def;
        return 0;
    }
    char *end;
    double d = strtod(s, &end);
    if (*end || !isfinite(d) || d < 0 || (!allow_zero && d == 0))
        return fail(c, "%s.%s: \"%s\" is not a number %s 0", where, k, s,
                    allow_zero ? "at least" : "above");
    *out = d;
    return 1;
}

/* num_at in a trigger's metadata (path names the trigger). */
static int meta_num(ctx_t *c, const cJSON *md, const char *k, const char *path, bool required,
                    bool allow_zero, double def, double *out)
{
    char where[96];
    snprintf(where, sizeof where, "%s.metadata", path);
    return num_at(c, md, k, where, required, allow_zero, def, out);
}

static int meta_bool(ctx_t *c, const cJSON *md, const char *k, const char *path, bool def,
                     bool *out)
{
    char buf[64];
    const char *s = meta(c, md, k, buf, sizeof buf);
    *out = def;
    if (!s) return 0;
    if (strcasecmp(s, "true") == 0) *out = true;
    else if (strcasecmp(s, "false") == 0) *out = false;
    else return fail(c, "%s.metadata.%s: \"%s\" is not true or false", path, k, s);
    return 1;
}

static bool has_scheme(const char *u, const char *const *schemes)
{
    for (; *schemes; schemes++)
        if (strncmp(u, *schemes, strlen(*schemes)) == 0 && u[strlen(*schemes)]) return true;
    return false;
}

/* A credential written in the trigger's metadata is kept with the
 * document, in clear: say so, and where it belongs. */
static void warn_clear(ctx_t *c, const cJSON *md, const char *path, const char *k)
{
    if (member(md, k))
        warn(c, "%s.metadata.%s: stored in clear in wasmfn.db with the ScaledObject; put it in a "
                "Secret and refer to it with a TriggerAuthentication (docs/scaling.md)",
             path, k);
}

static int parse_prometheus(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"serverAddress", "query", "threshold",
                                        "activationThreshold", "ignoreNullValues", "authModes",
                                        "bearerToken", "username", "password", "customHeaders",
                                        "unsafeSsl", NULL};
    static const char *const quiet[] = {"metricName", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, quiet);
    if (meta_str(c, md, "serverAddress", path, true, &t->url) < 0) return -1;
    static const char *const http[] = {"http://", "https://", NULL};
    if (!has_scheme(t->url, http))
        return fail(c, "%s.metadata.serverAddress: \"%s\" is not an http:// or https:// URL", path,
                    t->url);
    if (meta_str(c, md, "query", path, true, &t->query) < 0 ||
        meta_num(c, md, "threshold", path, true, false, 0, &t->target) < 0 ||
        meta_num(c, md, "activationThreshold", path, false, true, 0, &t->activation) < 0 ||
        meta_bool(c, md, "ignoreNullValues", path, true, &t->ignore_null) < 0 ||
        meta_bool(c, md, "unsafeSsl", path, false, &t->unsafe_ssl) < 0 ||
        meta_str(c, md, "customHeaders", path, false, &t->headers) < 0)
        return -1;
    char buf[64];
    const char *modes = meta(c, md, "authModes", buf, sizeof buf);
    bool bearer = false, basic = false;
    if (modes) {
        char *copy = strdup(modes), *save = NULL;
        if (!copy) return fail(c, "out of memory");
        for (char *m = strtok_r(copy, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
            if (strcmp(m, "bearer") == 0) bearer = true;
            else if (strcmp(m, "basic") == 0) basic = true;
            else {
                fail(c, "%s.metadata.authModes: \"%s\" is not supported (bearer, basic)", path, m);
                free(copy);
                return -1;
            }
        }
        free(copy);
    }
    if (bearer && meta_str(c, md, "bearerToken", path, true, &t->bearer) < 0) return -1;
    if (basic && (meta_str(c, md, "username", path, true, &t->username) < 0 ||
                  meta_str(c, md, "password", path, false, &t->password) < 0))
        return -1;
    char b2[64];
    if ((meta(c, md, "bearerToken", b2, sizeof b2) && !bearer) ||
        (meta(c, md, "username", b2, sizeof b2) && !basic))
        warn(c, "%s.metadata: credentials are used only with the matching authModes "
                "(bearer, basic)", path);
    warn_clear(c, md, path, "bearerToken");
    warn_clear(c, md, path, "password");
    return 0;
}

/* cpu and memory: `value` with metricType Utilization (a percent of each
 * instance's request) or AverageValue (a quantity per instance). */
static int parse_resource(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"value", "type", NULL};
    static const char *const quiet[] = {"containerName", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, quiet);
    char buf[64];
    const char *type = meta(c, md, "type", buf, sizeof buf); /* KEDA's older spelling */
    if (type) {
        if (strcmp(type, "Utilization") == 0) t->metric_type = KD_UTILIZATION;
        else if (strcmp(type, "AverageValue") == 0) t->metric_type = KD_AVERAGE_VALUE;
        else return fail(c, "%s.metadata.type: \"%s\" is not Utilization or AverageValue", path, type);
    }
    if (t->metric_type == KD_VALUE)
        return fail(c, "%s.metricType: Value is not allowed for %s (Utilization or AverageValue)",
                    path, kd_type_name(t->type));
    const char *v = meta(c, md, "value", buf, sizeof buf);
    if (!v || !*v) return fail(c, "%s.metadata.value: required", path);
    long double q;
    if (cm_quantity_parse(v, &q) != 0 || q <= 0)
        return fail(c, "%s.metadata.value: \"%s\" is not a %s above 0", path, v,
                    t->metric_type == KD_UTILIZATION ? "percentage" : "quantity");
    /* Utilization: percent. AverageValue: cores (cpu) or bytes (memory). */
    t->target = (double)q;
    return 0;
}

static int parse_cron(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"timezone", "start", "end", "desiredReplicas", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, NULL);
    if (meta_str(c, md, "timezone", path, true, &t->tz) < 0 ||
        meta_str(c, md, "start", path, true, &t->start) < 0 ||
        meta_str(c, md, "end", path, true, &t->end) < 0)
        return -1;
    char e[256];
    int64_t now = (int64_t)time(NULL) * 1000;
    if (ev_cron_next_fire(t->start, t->tz, now, e, sizeof e) == -2)
        return fail(c, "%s.metadata.start: %s", path, e);
    if (ev_cron_next_fire(t->end, t->tz, now, e, sizeof e) == -2)
        return fail(c, "%s.metadata.end: %s", path, e);
    if (strcmp(t->start, t->end) == 0)
        return fail(c, "%s.metadata.end: must differ from start", path);
    double d;
    if (meta_num(c, md, "desiredReplicas", path, true, false, 0, &d) < 0) return -1;
    if (d != floor(d) || d > KD_MAX_REPLICAS)
        return fail(c, "%s.metadata.desiredReplicas: must be a whole number from 1 to %u", path,
                    KD_MAX_REPLICAS);
    t->desired_replicas = (uint32_t)d;
    /* The metric is desiredReplicas inside the window, 0 outside, per
     * replica 1: the HPA then asks for exactly desiredReplicas. */
    t->target = 1;
    t->activation = 0;
    t->metric_type = KD_AVERAGE_VALUE;
    return 0;
}

/* The metadata keys of a Redis trigger's servers, by topology. */
static const char *const *redis_server_keys(kd_type_t type)
{
    static const char *const single[] = {"address",  "host",     "port",      "databaseIndex",
                                         "username", "password", "enableTLS", NULL};
    static const char *const cluster[] = {"addresses", "hosts",    "ports",
                                          "username",  "password", "enableTLS", NULL};
    static const char *const sentinel[] = {
        "addresses",      "hosts",           "ports",           "databaseIndex",
        "username",       "password",        "enableTLS",       "sentinelMaster",
        "sentinelUsername", "sentinelPassword", NULL};
    return kd_type_redis_cluster(type) ? cluster : kd_type_redis_sentinel(type) ? sentinel : single;
}

/* Warns of metadata keys that are neither the servers' nor in reading. */
static void redis_warn_unknown(ctx_t *c, const cJSON *md, const char *path, kd_type_t type,
                               const char *const *reading)
{
    const char *known[32];
    size_t n = 0;
    for (const char *const *k = redis_server_keys(type); *k; k++) known[n++] = *k;
    for (const char *const *k = reading; *k && n + 1 < sizeof known / sizeof known[0]; k++)
        known[n++] = *k;
    known[n] = NULL;
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, NULL);
}

/* The n characters at s as a port (1 to 65535, digits only); 0 if not. */
static unsigned port_of(const char *s, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535 ? v : 0;
}

/* Appends "host:port" to the list *out (comma-separated), after checking
 * it: a host, a colon, a port from 1 to 65535. */
static int add_node(ctx_t *c, const char *path, const char *key, const char *host, size_t hlen,
                    const char *port, size_t plen, char **out, uint32_t *n)
{
    while (hlen && (*host == ' ' || *host == '\t')) host++, hlen--;
    while (hlen && (host[hlen - 1] == ' ' || host[hlen - 1] == '\t')) hlen--;
    while (plen && (*port == ' ' || *port == '\t')) port++, plen--;
    while (plen && (port[plen - 1] == ' ' || port[plen - 1] == '\t')) plen--;
    unsigned pn = port_of(port, plen);
    bool host_ok = hlen > 0 && hlen < 256 && !memchr(host, ' ', hlen) && !memchr(host, ',', hlen);
    if (!host_ok || !pn)
        return fail(c, "%s.metadata.%s: \"%.*s:%.*s\" is not host:port", path, key, (int)hlen,
                    host, (int)plen, port);
    if (++*n > KD_MAX_REDIS_NODES)
        return fail(c, "%s.metadata.%s: more than %u servers", path, key, KD_MAX_REDIS_NODES);
    char *s;
    if (asprintf(&s, "%s%s%.*s:%u", *out ? *out : "", *out ? "," : "", (int)hlen, host, pn) < 0)
        return fail(c, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

/* A Cluster's nodes or the Sentinels: addresses ("host:port, host:port"),
 * or hosts and ports, comma lists of the same length. Kept in t->url as
 * host:port,host:port. */
static int parse_redis_nodes(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    char b1[64], b2[64], b3[64];
    const char *addresses = meta(c, md, "addresses", b1, sizeof b1);
    const char *hosts = meta(c, md, "hosts", b2, sizeof b2);
    const char *ports = meta(c, md, "ports", b3, sizeof b3);
    uint32_t n = 0;
    if (addresses && *addresses) {
        for (const char *p = addresses;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            const char *colon = NULL;
            for (size_t i = 0; i < len; i++)
                if (p[i] == ':') colon = p + i;
            const char *port = colon ? colon + 1 : p + len;
            if (add_node(c, path, "addresses", p, colon ? (size_t)(colon - p) : len, port,
                         (size_t)(p + len - port), &t->url, &n) < 0)
                return -1;
            if (!comma) break;
            p = comma + 1;
        }
        return 0;
    }
    if (!hosts || !*hosts)
        return fail(c, "%s.metadata.addresses: required (or hosts and ports)", path);
    if (!ports || !*ports)
        return fail(c, "%s.metadata.ports: required with hosts, one port per host", path);
    const char *h = hosts, *p = ports;
    for (;;) {
        const char *hc = strchr(h, ','), *pc = strchr(p, ',');
        if (!hc != !pc)
            return fail(c, "%s.metadata.hosts and ports: not the same number of entries", path);
        if (add_node(c, path, "hosts", h, hc ? (size_t)(hc - h) : strlen(h), p,
                     pc ? (size_t)(pc - p) : strlen(p), &t->url, &n) < 0)
            return -1;
        if (!hc) break;
        h = hc + 1;
        p = pc + 1;
    }
    return 0;
}

/* The servers of a Redis trigger and how to log in: address (or host and
 * port) for one server; a Cluster's nodes or the Sentinels
 * (parse_redis_nodes); enableTLS (refused), username, password,
 * databaseIndex (not in a Cluster, which has only database 0); for a
 * Sentinel the master's name and the Sentinels' own credentials. */
static int parse_redis_server(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    bool cluster = kd_type_redis_cluster(t->type), sentinel = kd_type_redis_sentinel(t->type);
    if (cluster || sentinel) {
        if (parse_redis_nodes(c, md, path, t) < 0) return -1;
    } else {
        char buf[64], b2[64];
        const char *host = meta(c, md, "host", buf, sizeof buf);
        const char *port = meta(c, md, "port", b2, sizeof b2);
        if (meta_str(c, md, "address", path, false, &t->url) < 0) return -1;
        if (!t->url) {
            if (!host) return fail(c, "%s.metadata.address: required (or host and port)", path);
            if (asprintf(&t->url, "%s:%s", host, port ? port : "6379") < 0) {
                t->url = NULL;
                return fail(c, "out of memory");
            }
        }
    }
    bool tls;
    if (meta_bool(c, md, "enableTLS", path, false, &tls) < 0) return -1;
    if (tls) return fail(c, "%s.metadata.enableTLS: TLS to Redis is not supported", path);
    if (meta_str(c, md, "username", path, false, &t->username) < 0 ||
        meta_str(c, md, "password", path, false, &t->password) < 0)
        return -1;
    warn_clear(c, md, path, "password");
    if (!cluster) {
        double db;
        if (meta_num(c, md, "databaseIndex", path, false, true, 0, &db) < 0) return -1;
        if (db != floor(db) || db > 1000000)
            return fail(c, "%s.metadata.databaseIndex: must be a whole number", path);
        t->redis_db = (uint32_t)db;
    }
    if (sentinel) {
        if (meta_str(c, md, "sentinelMaster", path, true, &t->sentinel_master) < 0 ||
            meta_str(c, md, "sentinelUsername", path, false, &t->sentinel_username) < 0 ||
            meta_str(c, md, "sentinelPassword", path, false, &t->sentinel_password) < 0)
            return -1;
        warn_clear(c, md, path, "sentinelPassword");
    }
    return 0;
}

/* KEDA's redis trigger: the length of the list listName (LLEN), against
 * listLength per instance (default 5); also redis-cluster and
 * redis-sentinel. */
static int parse_redis_list(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const reading[] = {"listName", "listLength", "activationListLength", NULL};
    redis_warn_unknown(c, md, path, t->type, reading);
    if (parse_redis_server(c, md, path, t) < 0 ||
        meta_str(c, md, "listName", path, true, &t->stream) < 0 ||
        meta_num(c, md, "listLength", path, false, false, 5, &t->target) < 0 ||
        meta_num(c, md, "activationListLength", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

/* redis-streams (and its Cluster and Sentinel forms): a consumer group's
 * lag, pending entries, or the stream's length. */
static int parse_redis(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const reading[] = {"stream",       "consumerGroup",      "pendingEntriesCount",
                                          "streamLength", "lagCount",           "activationLagCount",
                                          "activationStreamLength", NULL};
    redis_warn_unknown(c, md, path, t->type, reading);
    if (parse_redis_server(c, md, path, t) < 0 ||
        meta_str(c, md, "stream", path, true, &t->stream) < 0)
        return -1;
    int r;
    if ((r = meta_num(c, md, "lagCount", path, false, false, 0, &t->target)) < 0) return -1;
    if (r == 1) {
        t->redis_mode = KD_REDIS_LAG;
        if (meta_num(c, md, "activationLagCount", path, false, true, 0, &t->activation) < 0)
            return -1;
    } else if ((r = meta_num(c, md, "streamLength", path, false, false, 0, &t->target)) != 0) {
        if (r < 0) return -1;
        t->redis_mode = KD_REDIS_LENGTH;
        if (meta_num(c, md, "activationStreamLength", path, false, true, 0, &t->activation) < 0)
            return -1;
    } else {
        t->redis_mode = KD_REDIS_PENDING;
        if (meta_num(c, md, "pendingEntriesCount", path, false, false, 5, &t->target) < 0)
            return -1;
    }
    if (t->redis_mode != KD_REDIS_LENGTH &&
        meta_str(c, md, "consumerGroup", path, true, &t->group) < 0)
        return -1;
    return 0;
}

/* A database trigger's server (postgresql, mysql): the connection string
 * under conn_key, or host (then required), port, the user under user_key,
 * password and dbName. 1 when it is a connection string, 0 for the parts. */
static int parse_db_server(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t,
                           const char *conn_key, const char *user_key)
{
    if (meta_str(c, md, conn_key, path, false, &t->db_connection) < 0) return -1;
    if (t->db_connection) {
        warn_clear(c, md, path, conn_key);
        return 1;
    }
    if (meta_str(c, md, "host", path, false, &t->url) < 0) return -1;
    if (!t->url)
        return fail(c, "%s.metadata.host: required (or %s, a connection string best given by a "
                       "TriggerAuthentication)",
                    path, conn_key);
    if (meta_str(c, md, "port", path, false, &t->db_port) < 0 ||
        meta_str(c, md, user_key, path, false, &t->username) < 0 ||
        meta_str(c, md, "password", path, false, &t->password) < 0 ||
        meta_str(c, md, "dbName", path, false, &t->db_name) < 0)
        return -1;
    if (t->db_port && !port_of(t->db_port, strlen(t->db_port)))
        return fail(c, "%s.metadata.port: \"%s\" is not a port", path, t->db_port);
    warn_clear(c, md, path, "password");
    return 0;
}

/* KEDA's postgresql trigger: the number a query returns (postgresql.c),
 * from a server named by a connection string or by its parts. */
static int parse_postgresql(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"connection", "host",    "port",
                                        "userName",   "password", "dbName",
                                        "sslmode",    "query",    "targetQueryValue",
                                        "activationTargetQueryValue", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, NULL);
    int r = parse_db_server(c, md, path, t, "connection", "userName");
    if (r < 0) return -1;
    if (r == 0) {
        if (meta_str(c, md, "sslmode", path, false, &t->db_sslmode) < 0) return -1;
        static const char *const modes[] = {"disable", "allow",     "prefer",
                                            "require", "verify-ca", "verify-full", NULL};
        bool known_mode = !t->db_sslmode;
        for (const char *const *m = modes; *m && !known_mode; m++)
            known_mode = strcmp(*m, t->db_sslmode) == 0;
        if (!known_mode)
            return fail(c, "%s.metadata.sslmode: \"%s\" is not one of disable, allow, prefer, "
                           "require, verify-ca, verify-full",
                        path, t->db_sslmode);
    }
    if (meta_str(c, md, "query", path, true, &t->query) < 0 ||
        meta_num(c, md, "targetQueryValue", path, true, false, 0, &t->target) < 0 ||
        meta_num(c, md, "activationTargetQueryValue", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

/* KEDA's mysql trigger: the number a query returns (mysql.c), from a
 * server named by a connection string (checked here, never quoted) or by
 * its parts. */
static int parse_mysql(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"connectionString", "host",     "port",
                                        "username",         "password", "dbName",
                                        "query",            "queryValue", "activationQueryValue",
                                        NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, NULL);
    int r = parse_db_server(c, md, path, t, "connectionString", "username");
    if (r < 0) return -1;
    if (r == 1) {
        kd_dsn_t d;
        char e[200];
        int rc = kd_mysql_dsn_parse(t->db_connection, &d, e, sizeof e);
        explicit_bzero(&d, sizeof d);
        if (rc < 0) return fail(c, "%s.metadata.connectionString: %s", path, e);
    }
    if (meta_str(c, md, "query", path, true, &t->query) < 0 ||
        meta_num(c, md, "queryValue", path, true, false, 0, &t->target) < 0 ||
        meta_num(c, md, "activationQueryValue", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

/* A valueLocation this reader understands (metricsapi.c): keys and
 * indexes separated by dots, '#' only as the last one; GJSON's queries,
 * wildcards and modifiers are refused by name. */
static bool location_ok(const char *s)
{
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '.' && (p == s || p[1] == '\0' || p[1] == '.')) return false;
        if (strchr("*?|@!()[]{}", *p)) return false;
        if (*p == '#' && !((p == s || p[-1] == '.') && p[1] == '\0')) return false;
    }
    return true;
}

/* KEDA's Metrics API scaler: a number in any HTTP API's JSON answer. */
static int parse_metrics_api(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"url", "valueLocation", "targetValue",
                                        "activationTargetValue", "unsafeSsl", "format", "authMode",
                                        "method", "keyParamName", "apiKey", "username", "password",
                                        "token", "ca", "cert", "key", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, NULL);
    if (meta_str(c, md, "url", path, true, &t->url) < 0) return -1;
    static const char *const http[] = {"http://", "https://", NULL};
    if (!has_scheme(t->url, http))
        return fail(c, "%s.metadata.url: \"%s\" is not an http:// or https:// URL", path, t->url);
    char buf[64], b2[64];
    const char *format = meta(c, md, "format", buf, sizeof buf);
    t->format = KD_FORMAT_JSON;
    if (format && strcmp(format, "yaml") == 0) t->format = KD_FORMAT_YAML;
    else if (format && strcmp(format, "prometheus") == 0) t->format = KD_FORMAT_PROMETHEUS;
    else if (format && strcmp(format, "json") != 0)
        return fail(c, "%s.metadata.format: \"%s\" is not supported (json, yaml, prometheus)",
                    path, format);
    if (meta_str(c, md, "valueLocation", path, true, &t->location) < 0) return -1;
    if (strlen(t->location) > KD_MAX_LOCATION)
        return fail(c, "%s.metadata.valueLocation: longer than %u characters", path,
                    KD_MAX_LOCATION);
    char e[200];
    if (t->format == KD_FORMAT_PROMETHEUS) {
        if (kd_series_check(t->location, e, sizeof e) < 0)
            return fail(c, "%s.metadata.valueLocation: \"%.80s\": %s", path, t->location, e);
    } else if (!location_ok(t->location))
        return fail(c, "%s.metadata.valueLocation: \"%.80s\": wasmfn reads a path of keys and "
                       "array indexes separated by '.', with '#' last for an array's length "
                       "(GJSON's queries, wildcards and modifiers are not supported)",
                    path, t->location);
    if (meta_num(c, md, "targetValue", path, true, false, 0, &t->target) < 0 ||
        meta_num(c, md, "activationTargetValue", path, false, true, 0, &t->activation) < 0 ||
        meta_bool(c, md, "unsafeSsl", path, false, &t->unsafe_ssl) < 0 ||
        meta_str(c, md, "ca", path, false, &t->tls_ca) < 0) /* with any authMode, as KEDA */
        return -1;
    const char *mode = meta(c, md, "authMode", b2, sizeof b2);
    if (!mode) {
        /* No credentials without their mode, as in KEDA. */
    } else if (strcmp(mode, "apiKey") == 0) {
        char b3[64];
        const char *method = meta(c, md, "method", b3, sizeof b3);
        if (method && strcmp(method, "header") != 0 && strcmp(method, "query") != 0)
            return fail(c, "%s.metadata.method: \"%s\" is not header or query", path, method);
        t->key_in_query = method && strcmp(method, "query") == 0;
        if (meta_str(c, md, "apiKey", path, true, &t->api_key) < 0 ||
            meta_str(c, md, "keyParamName", path, false, &t->key_param) < 0)
            return -1;
        if (!t->key_param && !(t->key_param = strdup(t->key_in_query ? "api_key" : "X-API-KEY")))
            return fail(c, "out of memory");
        if (!t->key_in_query && (strpbrk(t->key_param, "\r\n: ") || !*t->key_param))
            return fail(c, "%s.metadata.keyParamName: \"%.60s\" is not a header name", path,
                        t->key_param);
    } else if (strcmp(mode, "basic") == 0) {
        if (meta_str(c, md, "username", path, true, &t->username) < 0 ||
            meta_str(c, md, "password", path, false, &t->password) < 0)
            return -1;
    } else if (strcmp(mode, "bearer") == 0) {
        if (meta_str(c, md, "token", path, true, &t->bearer) < 0) return -1;
    } else if (strcmp(mode, "tls") == 0) {
        if (meta_str(c, md, "cert", path, true, &t->tls_cert) < 0 ||
            meta_str(c, md, "key", path, false, &t->tls_key) < 0)
            return -1;
    } else {
        return fail(c,
                    "%s.metadata.authMode: \"%s\" is not supported (apiKey, basic, bearer, tls)",
                    path, mode);
    }
    warn_clear(c, md, path, "apiKey");
    warn_clear(c, md, path, "password");
    warn_clear(c, md, path, "token");
    warn_clear(c, md, path, "key");
    return 0;
}

static int parse_nats(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"natsServerUrl", "natsServerMonitoringEndpoint",
                                        "account", "stream", "consumer", "lagThreshold",
                                        "activationLagThreshold", NULL};
    static const char *const quiet[] = {"useHttps", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, quiet);
    if (meta_str(c, md, "natsServerUrl", path, false, &t->url) < 0) return -1;
    if (!t->url) {
        /* KEDA reads the monitoring endpoint over HTTP; wasmfn asks the
         * server itself (JetStream's consumer info) on its client port, so
         * the endpoint's host with NATS's default port stands in. */
        char buf[64];
        const char *mon = meta(c, md, "natsServerMonitoringEndpoint", buf, sizeof buf);
        if (!mon || !*mon)
            return fail(c, "%s.metadata.natsServerUrl: required (or natsServerMonitoringEndpoint)",
                        path);
        const char *h = strstr(mon, "://") ? strstr(mon, "://") + 3 : mon;
        size_t n = strcspn(h, ":/");
        if (asprintf(&t->url, "nats://%.*s:4222", (int)n, h) < 0) {
            t->url = NULL;
            return fail(c, "out of memory");
        }
    }
    static const char *const nats[] = {"nats://", "tls://", NULL};
    if (!has_scheme(t->url, nats))
        return fail(c, "%s.metadata.natsServerUrl: \"%s\" is not a nats:// URL", path, t->url);
    if (meta_str(c, md, "account", path, false, &t->account) < 0 ||
        meta_str(c, md, "stream", path, true, &t->stream) < 0 ||
        meta_str(c, md, "consumer", path, true, &t->group) < 0 ||
        meta_num(c, md, "lagThreshold", path, false, false, 10, &t->target) < 0 ||
        meta_num(c, md, "activationLagThreshold", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

static int parse_rabbitmq(ctx_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"host", "protocol", "queueName", "mode", "value",
                                        "activationValue", "vhostName", "unsafeSsl", NULL};
    static const char *const quiet[] = {"metricName", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    warn_unknown(c, md, p, known, quiet);
    if (meta_str(c, md, "host", path, true, &t->url) < 0 ||
        meta_str(c, md, "queueName", path, true, &t->queue) < 0 ||
        meta_str(c, md, "vhostName", path, false, &t->vhost) < 0 ||
        meta_bool(c, md, "unsafeSsl", path, false, &t->unsafe_ssl) < 0)
        return -1;
    /* The host was to come from a TriggerAuthentication that did not
     * resolve: it cannot be checked, and the trigger never reads. */
    if (!t->url && !(t->url = strdup("amqp://unresolved"))) return fail(c, "out of memory");
    const cJSON *mh = member(md, "host");
    if (cJSON_IsString(mh)) {
        /* amqp://USER:PASS@...: a password in the metadata. */
        const char *u = strstr(mh->valuestring, "://");
        const char *at = u ? strchr(u + 3, '@') : NULL;
        if (at && memchr(u + 3, ':', (size_t)(at - (u + 3))))
            warn_clear(c, md, path, "host");
    }
    char buf[64];
    const char *proto = meta(c, md, "protocol", buf, sizeof buf);
    static const char *const amqp[] = {"amqp://", NULL}, *const http[] = {"http://", "https://", NULL};
    bool is_http = has_scheme(t->url, http);
    if (!is_http && !has_scheme(t->url, amqp))
        return fail(c, "%s.metadata.host: want amqp://USER:PASS@HOST:PORT/VHOST or the management "
                       "API's http(s)://USER:PASS@HOST:15672",
                    path);
    if (proto && strcmp(proto, "auto") != 0 && strcmp(proto, is_http ? "http" : "amqp") != 0)
        return fail(c, "%s.metadata.protocol: \"%s\" does not match host %.*s", path, proto,
                    (int)strcspn(t->url, ":"), t->url);
    const char *mode = meta(c, md, "mode", buf, sizeof buf);
    if (!mode || strcmp(mode, "QueueLength") == 0) t->rate = false;
    else if (strcmp(mode, "MessageRate") == 0) t->rate = true;
    else return fail(c, "%s.metadata.mode: \"%s\" is not QueueLength or MessageRate", path, mode);
    if (t->rate && !is_http)
        return fail(c, "%s.metadata.mode: MessageRate needs the management API (host http://...)",
                    path);
    if (meta_num(c, md, "value", path, true, false, 0, &t->target) < 0 ||
        meta_num(c, md, "activationValue", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

void kd_auth_params_free(kd_auth_param_t *params, uint32_t n)
{
    for (uint32_t i = 0; params && i < n; i++) {
        if (params[i].value) explicit_bzero(params[i].value, strlen(params[i].value));
        free(params[i].value);
        free(params[i].parameter);
    }
    free(params);
}

/* A trigger's authenticationRef: resolves it (into *params, which the
 * caller frees once the metadata is read) and sets up c to read the
 * credentials from there. A reference that does not resolve is the
 * trigger's auth_err, not an error: KEDA too accepts a ScaledObject whose
 * TriggerAuthentication comes later, and the Secret may change. */
static int parse_auth_ref(ctx_t *c, const cJSON *ref, const char *path, kd_trigger_t *t,
                          kd_auth_param_t **params, uint32_t *nparams)
{
    if (!ref) return 0;
    const cJSON *name = member(ref, "name"), *kind = member(ref, "kind");
    if (!cJSON_IsString(name) || !*name->valuestring)
        return fail(c, "%s.authenticationRef.name: required (a TriggerAuthentication)", path);
    if (kind && (!cJSON_IsString(kind) ||
                 (strcmp(kind->valuestring, kd_auth_kind_name(false)) != 0 &&
                  strcmp(kind->valuestring, kd_auth_kind_name(true)) != 0)))
        return fail(c, "%s.authenticationRef.kind: TriggerAuthentication (the default) or "
                       "ClusterTriggerAuthentication",
                    path);
    t->auth_cluster = kind && strcmp(kind->valuestring, kd_auth_kind_name(true)) == 0;
    static const char *const known[] = {"name", "kind", NULL};
    char p[96];
    snprintf(p, sizeof p, "%s.authenticationRef", path);
    warn_unknown(c, ref, p, known, NULL);
    if (strlen(name->valuestring) > 253)
        return fail(c, "%s.authenticationRef.name: longer than 253 characters", path);
    if (!(t->auth_ref = strdup(name->valuestring))) return fail(c, "out of memory");
    char e[300] = "";
    int rc = -1;
    if (c->resolve) rc = c->resolve(c->ud, t->auth_ref, t->auth_cluster, params, nparams, e, sizeof e);
    else snprintf(e, sizeof e, "%s is not available here", kd_auth_kind_name(t->auth_cluster));
    if (rc != 0) {
        *params = NULL;
        *nparams = 0;
        c->auth_failed = true;
        if (!(t->auth_err = strdup(e))) return fail(c, "out of memory");
        return 0;
    }
    for (uint32_t i = 0; i < *nparams; i++) {
        if (is_auth_param(t->type, (*params)[i].parameter)) continue;
        char list[128] = "";
        for (const char *const *a = auth_params(t->type); *a; a++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "", *a);
        warn(c, "%s.authenticationRef: %s %s gives %.64s, which a %s trigger does not take from "
                "it (%s); ignored",
             path, kd_auth_kind_name(t->auth_cluster), t->auth_ref, (*params)[i].parameter,
             kd_type_name(t->type), *list ? list : "none");
    }
    c->auth = *params;
    c->nauth = *nparams;
    return 0;
}

static int parse_trigger(ctx_t *c, const cJSON *tj, uint32_t i, kd_trigger_t *t)
{
    char path[64];
    snprintf(path, sizeof path, "spec.triggers[%u]", i);
    if (!cJSON_IsObject(tj)) return fail(c, "%s: must be an object", path);
    static const char *const known[] = {"type", "metadata", "name", "metricType",
                                        "authenticationRef", NULL};
    static const char *const quiet[] = {"useCachedMetrics", NULL};
    warn_unknown(c, tj, path, known, quiet);
    const cJSON *type = member(tj, "type");
    if (!cJSON_IsString(type)) return fail(c, "%s.type: required (one of: " SUPPORTED ")", path);
    bool found = false;
    for (size_t k = 0; k < sizeof type_names / sizeof type_names[0] && !found; k++)
        if (strcmp(type->valuestring, type_names[k]) == 0) {
            t->type = (kd_type_t)k;
            found = true;
        }
    if (!found)
        return fail(c, "%s.type: \"%s\" is not supported; supported: " SUPPORTED, path,
                    type->valuestring);
    const cJSON *name = member(tj, "name");
    if (name && !cJSON_IsString(name)) return fail(c, "%s.name: must be a string", path);
    if (name && (!*name->valuestring || strlen(name->valuestring) >= sizeof t->name))
        return fail(c, "%s.name: must be 1 to %zu characters", path, sizeof t->name - 1);
    if (name) snprintf(t->name, sizeof t->name, "%s", name->valuestring);
    else snprintf(t->name, sizeof t->name, "s%u-%s", i, type_names[t->type]);
    const cJSON *mt = member(tj, "metricType");
    t->metric_type = t->type == KD_CPU || t->type == KD_MEMORY ? KD_UTILIZATION : KD_AVERAGE_VALUE;
    if (mt) {
        if (!cJSON_IsString(mt)) return fail(c, "%s.metricType: must be a string", path);
        if (strcmp(mt->valuestring, "AverageValue") == 0) t->metric_type = KD_AVERAGE_VALUE;
        else if (strcmp(mt->valuestring, "Value") == 0) t->metric_type = KD_VALUE;
        else if (strcmp(mt->valuestring, "Utilization") == 0) t->metric_type = KD_UTILIZATION;
        else return fail(c, "%s.metricType: \"%s\" is not AverageValue, Value or Utilization", path,
                         mt->valuestring);
        if (t->metric_type == KD_UTILIZATION && t->type != KD_CPU && t->type != KD_MEMORY)
            return fail(c, "%s.metricType: Utilization is only for cpu and memory", path);
    }
    const cJSON *md = member(tj, "metadata");
    if (!cJSON_IsObject(md)) return fail(c, "%s.metadata: required, an object", path);
    c->type = t->type;
    kd_auth_param_t *params = NULL;
    uint32_t nparams = 0;
    if (parse_auth_ref(c, member(tj, "authenticationRef"), path, t, &params, &nparams) < 0)
        return -1;
    int rc = 0;
    switch (t->type) {
    case KD_PROMETHEUS: rc = parse_prometheus(c, md, path, t); break;
    case KD_CPU:
    case KD_MEMORY: rc = parse_resource(c, md, path, t); break;
    case KD_CRON: rc = parse_cron(c, md, path, t); break;
    case KD_NATS_JETSTREAM: rc = parse_nats(c, md, path, t); break;
    case KD_RABBITMQ: rc = parse_rabbitmq(c, md, path, t); break;
    case KD_METRICS_API: rc = parse_metrics_api(c, md, path, t); break;
    case KD_POSTGRESQL: rc = parse_postgresql(c, md, path, t); break;
    case KD_MYSQL: rc = parse_mysql(c, md, path, t); break;
    case KD_REDIS_STREAMS:
    case KD_REDIS_CLUSTER_STREAMS:
    case KD_REDIS_SENTINEL_STREAMS: rc = parse_redis(c, md, path, t); break;
    case KD_REDIS_LISTS:
    case KD_REDIS_CLUSTER_LISTS:
    case KD_REDIS_SENTINEL_LISTS: rc = parse_redis_list(c, md, path, t); break;
    }
    kd_auth_params_free(params, nparams);
    c->auth = NULL;
    c->nauth = 0;
    c->auth_failed = false;
    return rc;
}

/* ---- spec ------------------------------------------------------------------ */

static int parse_policies(ctx_t *c, const cJSON *pol, const char *path, kd_rules_t *out)
{
    if (!cJSON_IsArray(pol) || cJSON_GetArraySize(pol) == 0)
        return fail(c, "%s.policies: a list of at least one policy (leave it out for the "
                       "default)",
                    path);
    if (cJSON_GetArraySize(pol) > (int)KD_MAX_POLICIES)
        return fail(c, "%s.policies: at most %u policies", path, KD_MAX_POLICIES);
    out->npolicies = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pol)
    {
        char pp[200];
        snprintf(pp, sizeof pp, "%s.policies[%u]", path, out->npolicies);
        if (!cJSON_IsObject(p)) return fail(c, "%s: must be an object", pp);
        static const char *const known[] = {"type", "value", "periodSeconds", NULL};
        warn_unknown(c, p, pp, known, NULL);
        kd_policy_t *k = &out->policies[out->npolicies++];
        const cJSON *type = member(p, "type");
        if (!cJSON_IsString(type) || (strcmp(type->valuestring, "Pods") != 0 &&
                                      strcmp(type->valuestring, "Percent") != 0))
            return fail(c, "%s.type: must be Pods or Percent", pp);
        k->percent = strcmp(type->valuestring, "Percent") == 0;
        if (uint_field(c, p, "value", pp, 1, 1000000, &k->value) != 1)
            return c->err[0] ? -1 : fail(c, "%s.value: required", pp);
        if (uint_field(c, p, "periodSeconds", pp, 1, KD_MAX_POLICY_PERIOD_S, &k->period_s) != 1)
            return c->err[0] ? -1 : fail(c, "%s.periodSeconds: required", pp);
    }
    return 0;
}

static int parse_rules(ctx_t *c, const cJSON *r, const char *path, kd_rules_t *out)
{
    if (!r) return 0;
    if (!cJSON_IsObject(r)) return fail(c, "%s: must be an object", path);
    static const char *const known[] = {"stabilizationWindowSeconds", "selectPolicy", "policies",
                                        NULL};
    static const char *const quiet[] = {"tolerance", NULL};
    warn_unknown(c, r, path, known, quiet);
    if (uint_field(c, r, "stabilizationWindowSeconds", path, 0, KD_MAX_WINDOW_S,
                   &out->window_s) < 0)
        return -1;
    const cJSON *sp = member(r, "selectPolicy");
    if (sp) {
        if (!cJSON_IsString(sp) || (strcmp(sp->valuestring, "Max") != 0 &&
                                    strcmp(sp->valuestring, "Min") != 0 &&
                                    strcmp(sp->valuestring, "Disabled") != 0))
            return fail(c, "%s.selectPolicy: must be Max, Min or Disabled", path);
        out->select = strcmp(sp->valuestring, "Max") == 0   ? KD_SELECT_MAX
                      : strcmp(sp->valuestring, "Min") == 0 ? KD_SELECT_MIN
                                                            : KD_SELECT_DISABLED;
    }
    const cJSON *pol = member(r, "policies");
    if (pol && parse_policies(c, pol, path, out) < 0) return -1;
    return 0;
}

static int parse_advanced(ctx_t *c, const cJSON *adv, kd_scaledobject_t *so)
{
    if (!adv) return 0;
    if (!cJSON_IsObject(adv)) return fail(c, "spec.advanced: must be an object");
    static const char *const known[] = {"horizontalPodAutoscalerConfig", "scalingModifiers", NULL};
    static const char *const quiet[] = {"restoreToOriginalReplicaCount", NULL};
    warn_unknown(c, adv, "spec.advanced", known, quiet);
    const cJSON *hpa = member(adv, "horizontalPodAutoscalerConfig");
    if (!hpa) return 0;
    if (!cJSON_IsObject(hpa))
        return fail(c, "spec.advanced.horizontalPodAutoscalerConfig: must be an object");
    static const char *const hknown[] = {"behavior", NULL};
    static const char *const hquiet[] = {"name", NULL};
    warn_unknown(c, hpa, "spec.advanced.horizontalPodAutoscalerConfig", hknown, hquiet);
    const cJSON *b = member(hpa, "behavior");
    if (!b) return 0;
    if (!cJSON_IsObject(b))
        return fail(c, "spec.advanced.horizontalPodAutoscalerConfig.behavior: must be an object");
    static const char *const bknown[] = {"scaleUp", "scaleDown", NULL};
    warn_unknown(c, b, "spec.advanced.horizontalPodAutoscalerConfig.behavior", bknown, NULL);
    if (parse_rules(c, member(b, "scaleUp"),
                    "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp", &so->up) < 0 ||
        parse_rules(c, member(b, "scaleDown"),
                    "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown",
                    &so->down) < 0)
        return -1;
    return 0;
}

/* KEDA's pause annotations (keda.h, kd_scaledobject_t.paused). Other
 * annotations are the user's own and pass without a word. */
static int parse_pause(ctx_t *c, const cJSON *ann, kd_scaledobject_t *so)
{
    static const char *const PR = "autoscaling.keda.sh/paused-replicas";
    static const char *const P = "autoscaling.keda.sh/paused";
    if (ann && !cJSON_IsObject(ann)) return fail(c, "metadata.annotations: must be a map");
    const cJSON *r = member(ann, PR), *p = member(ann, P);
    if (r) {
        char buf[32];
        const char *s = cJSON_IsString(r) ? r->valuestring : NULL;
        if (!s && cJSON_IsNumber(r)) {
            snprintf(buf, sizeof buf, "%.17g", r->valuedouble);
            s = buf;
        }
        char *end = NULL;
        long v = s && *s && strspn(s, "0123456789") == strlen(s) && strlen(s) <= 6
                     ? strtol(s, &end, 10)
                     : -1;
        if (v < 0 || v > (long)KD_MAX_REPLICAS)
            return fail(c, "metadata.annotations[%s]: \"%.20s\" is not a whole number from 0 to %u",
                        PR, s ? s : "", KD_MAX_REPLICAS);
        so->paused_replicas = (int32_t)v;
        so->paused = true;
    }
    if (p) {
        const char *s = cJSON_IsString(p) ? p->valuestring : cJSON_IsTrue(p) ? "true" : "false";
        if (cJSON_IsString(p) && strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
            return fail(c, "metadata.annotations[%s]: \"%.20s\" is not true or false", P, s);
        if (strcasecmp(s, "true") == 0) so->paused = true;
    }
    return 0;
}

/* advanced.scalingModifiers, once the triggers are parsed (the formula
 * names them). */
static int parse_modifiers(ctx_t *c, const cJSON *m, kd_scaledobject_t *so)
{
    static const char *const P = "spec.advanced.scalingModifiers";
    if (!m) return 0;
    if (!cJSON_IsObject(m)) return fail(c, "%s: must be an object", P);
    static const char *const known[] = {"formula", "target", "activationTarget", "metricType",
                                        NULL};
    warn_unknown(c, m, P, known, NULL);
    const cJSON *f = member(m, "formula");
    if (!cJSON_IsString(f) || !*f->valuestring)
        return fail(c, "%s.formula: required (an expression over the triggers' names)", P);
    char e[300];
    if (!(so->formula = kd_formula_parse(f->valuestring, so->triggers, so->ntriggers, e, sizeof e)))
        return fail(c, "%s.formula: %s", P, e);
    if (num_at(c, m, "target", P, true, false, 0, &so->mod_target) < 0 ||
        num_at(c, m, "activationTarget", P, false, true, 0, &so->mod_activation) < 0)
        return -1;
    so->mod_metric = KD_AVERAGE_VALUE;
    const cJSON *mt = member(m, "metricType");
    if (mt && cJSON_IsString(mt) && strcmp(mt->valuestring, "Value") == 0) so->mod_metric = KD_VALUE;
    else if (mt && !(cJSON_IsString(mt) && strcmp(mt->valuestring, "AverageValue") == 0))
        return fail(c, "%s.metricType: AverageValue (the default) or Value", P);
    if (so->fallback && so->mod_metric != KD_AVERAGE_VALUE)
        return fail(c, "spec.fallback: needs %s.metricType to be AverageValue", P);
    return 0;
}

int kd_scaledobject_parse(const cJSON *doc, kd_auth_resolve_fn resolve, void *ud,
                          kd_scaledobject_t *so, char *err, size_t errlen)
{
    memset(so, 0, sizeof *so);
    ctx_t c = {.so = so, .err = err, .errlen = errlen, .resolve = resolve, .ud = ud};
    if (errlen) err[0] = '\0';
    so->max_replicas = KD_DEFAULT_MAX_REPLICAS;
    so->idle_replicas = -1;
    so->paused_replicas = -1;
    so->polling_s = KD_DEFAULT_POLLING_S;
    so->cooldown_s = KD_DEFAULT_COOLDOWN_S;
    /* The HPA's default behavior: up by 100% or 4 instances (whichever
     * is more) per 15 s, no window; down by up to 100% per 15 s, after
     * the 300 s window. */
    so->up = (kd_rules_t){.window_s = 0, .select = KD_SELECT_MAX, .npolicies = 2,
                          .policies = {{true, 100, 15}, {false, 4, 15}}};
    so->down = (kd_rules_t){.window_s = KD_DEFAULT_DOWN_WINDOW_S, .select = KD_SELECT_MAX,
                            .npolicies = 1, .policies = {{true, 100, 15}}};
    if (!cJSON_IsObject(doc)) return fail(&c, "a ScaledObject must be an object");
    const cJSON *av = member(doc, "apiVersion"), *kind = member(doc, "kind");
    if (!cJSON_IsString(av) || !cJSON_IsString(kind) ||
        !kd_handles_kind(av->valuestring, kind->valuestring))
        return fail(&c, "kind: want keda.sh/v1alpha1 ScaledObject");
    static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const topq[] = {"status", NULL};
    warn_unknown(&c, doc, "", top, topq);
    const cJSON *md = member(doc, "metadata");
    const cJSON *name = member(md, "name");
    if (!cJSON_IsString(name)) return fail(&c, "metadata.name: required");
    if (!cm_k8s_label_ok(name->valuestring, 63))
        return fail(&c, "metadata.name: \"%s\" must be lower-case letters, digits and '-', "
                        "starting with a letter, at most 63",
                    name->valuestring);
    const cJSON *ns = member(md, "namespace");
    if (cJSON_IsString(ns) && strcmp(ns->valuestring, "default") != 0)
        warn(&c, "metadata.namespace: only the default namespace exists; ignored");
    if (!(so->name = strdup(name->valuestring))) return fail(&c, "out of memory");
    if (parse_pause(&c, member(md, "annotations"), so) < 0) return -1;

    const cJSON *spec = member(doc, "spec");
    if (!cJSON_IsObject(spec)) return fail(&c, "spec: required, an object");
    static const char *const sknown[] = {"scaleTargetRef", "pollingInterval", "cooldownPeriod",
                                         "initialCooldownPeriod", "idleReplicaCount",
                                         "minReplicaCount", "maxReplicaCount", "fallback",
                                         "advanced", "triggers", NULL};
    warn_unknown(&c, spec, "spec", sknown, NULL);
    const cJSON *ref = member(spec, "scaleTargetRef");
    const cJSON *tn = member(ref, "name");
    if (!cJSON_IsString(tn)) return fail(&c, "spec.scaleTargetRef.name: required (a Service)");
    if (!cm_k8s_label_ok(tn->valuestring, 63))
        return fail(&c, "spec.scaleTargetRef.name: \"%s\" is not a function name", tn->valuestring);
    static const char *const rknown[] = {"name", NULL};
    static const char *const rquiet[] = {"kind", "apiVersion", "envSourceContainerName", NULL};
    warn_unknown(&c, ref, "spec.scaleTargetRef", rknown, rquiet);
    if (!(so->target = strdup(tn->valuestring))) return fail(&c, "out of memory");

    uint32_t idle = 0;
    int has_idle;
    if (uint_field(&c, spec, "pollingInterval", "spec", 1, 86400, &so->polling_s) < 0 ||
        uint_field(&c, spec, "cooldownPeriod", "spec", 0, 86400 * 7, &so->cooldown_s) < 0 ||
        uint_field(&c, spec, "initialCooldownPeriod", "spec", 0, 86400 * 7,
                   &so->initial_cooldown_s) < 0 ||
        uint_field(&c, spec, "minReplicaCount", "spec", 0, KD_MAX_REPLICAS, &so->min_replicas) < 0 ||
        uint_field(&c, spec, "maxReplicaCount", "spec", 1, KD_MAX_REPLICAS, &so->max_replicas) < 0 ||
        (has_idle = uint_field(&c, spec, "idleReplicaCount", "spec", 0, KD_MAX_REPLICAS, &idle)) < 0)
        return -1;
    if (so->min_replicas > so->max_replicas)
        return fail(&c, "spec.minReplicaCount: %u is above maxReplicaCount (%u)", so->min_replicas,
                    so->max_replicas);
    if (has_idle) {
        if (idle >= so->min_replicas && !(idle == 0 && so->min_replicas == 0))
            return fail(&c, "spec.idleReplicaCount: must be below minReplicaCount (%u)",
                        so->min_replicas);
        so->idle_replicas = (int32_t)idle;
    }
    const cJSON *fb = member(spec, "fallback");
    if (fb) {
        if (!cJSON_IsObject(fb)) return fail(&c, "spec.fallback: must be an object");
        static const char *const fknown[] = {"failureThreshold", "replicas", "behavior", NULL};
        warn_unknown(&c, fb, "spec.fallback", fknown, NULL);
        static const char *const behaviors[] = {
            [KD_FALLBACK_STATIC] = "static",
            [KD_FALLBACK_CURRENT] = "currentReplicas",
            [KD_FALLBACK_CURRENT_IF_HIGHER] = "currentReplicasIfHigher",
            [KD_FALLBACK_CURRENT_IF_LOWER] = "currentReplicasIfLower",
        };
        const cJSON *bh = member(fb, "behavior");
        if (bh) {
            bool found = false;
            for (size_t i = 0; cJSON_IsString(bh) && i < 4 && !found; i++)
                if (strcmp(bh->valuestring, behaviors[i]) == 0) {
                    so->fallback_behavior = (kd_fallback_behavior_t)i;
                    found = true;
                }
            if (!found)
                return fail(&c, "spec.fallback.behavior: \"%s\" is not static, currentReplicas, "
                                "currentReplicasIfHigher or currentReplicasIfLower",
                            cJSON_IsString(bh) ? bh->valuestring : "(not a string)");
        }
        if (uint_field(&c, fb, "failureThreshold", "spec.fallback", 1, 1000000,
                       &so->fallback_failures) != 1)
            return c.err[0] ? -1 : fail(&c, "spec.fallback.failureThreshold: required");
        if (uint_field(&c, fb, "replicas", "spec.fallback", 0, KD_MAX_REPLICAS,
                       &so->fallback_replicas) != 1)
            return c.err[0] ? -1 : fail(&c, "spec.fallback.replicas: required");
        so->fallback = true;
    }
    if (parse_advanced(&c, member(spec, "advanced"), so) < 0) return -1;

    const cJSON *tr = member(spec, "triggers");
    if (!cJSON_IsArray(tr) || cJSON_GetArraySize(tr) == 0)
        return fail(&c, "spec.triggers: required, a list of at least one trigger");
    int n = cJSON_GetArraySize(tr);
    if (n > (int)KD_MAX_TRIGGERS)
        return fail(&c, "spec.triggers: %d triggers; at most %u", n, KD_MAX_TRIGGERS);
    if (!(so->triggers = calloc((size_t)n, sizeof *so->triggers))) return fail(&c, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, tr)
    {
        kd_trigger_t *kt = &so->triggers[so->ntriggers];
        so->ntriggers++;
        if (parse_trigger(&c, t, so->ntriggers - 1, kt) < 0) return -1;
        for (uint32_t k = 0; k + 1 < so->ntriggers; k++)
            if (strcmp(so->triggers[k].name, kt->name) == 0)
                return fail(&c, "spec.triggers[%u].name: \"%s\" is used twice", so->ntriggers - 1,
                            kt->name);
        if (so->fallback && kt->metric_type != KD_AVERAGE_VALUE)
            return fail(&c, "spec.fallback: needs every trigger's metricType to be AverageValue "
                            "(spec.triggers[%u] is not)",
                        so->ntriggers - 1);
    }
    return parse_modifiers(&c, member(member(spec, "advanced"), "scalingModifiers"), so);
}

static void trigger_free(kd_trigger_t *t)
{
    char **s[] = {&t->url,    &t->query,    &t->stream,   &t->group,    &t->queue,
                  &t->vhost,  &t->account,  &t->bearer,   &t->username, &t->password,
                  &t->headers, &t->tz,      &t->start,    &t->end,      &t->auth_ref,
                  &t->auth_err, &t->location, &t->api_key, &t->key_param,
                  &t->sentinel_master, &t->sentinel_username, &t->sentinel_password,
                  &t->tls_ca, &t->tls_cert, &t->tls_key, &t->db_connection, &t->db_port,
                  &t->db_name, &t->db_sslmode};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        /* Any of them may hold a credential (a URL with a password). */
        if (*s[i]) explicit_bzero(*s[i], strlen(*s[i]));
        free(*s[i]);
        *s[i] = NULL;
    }
}

void kd_scaledobject_free(kd_scaledobject_t *so)
{
    if (!so) return;
    for (uint32_t i = 0; i < so->ntriggers; i++) trigger_free(&so->triggers[i]);
    free(so->triggers);
    for (uint32_t i = 0; i < so->nwarnings; i++) free(so->warnings[i]);
    free(so->warnings);
    free(so->name);
    free(so->target);
    kd_formula_free(so->formula);
    memset(so, 0, sizeof *so);
}

bool kd_scaledobject_uses_auth(const cJSON *doc, const char *name, bool cluster)
{
    const cJSON *t, *tr = member(member(doc, "spec"), "triggers");
    cJSON_ArrayForEach(t, tr)
    {
        const cJSON *ref = member(t, "authenticationRef");
        const cJSON *n = member(ref, "name"), *k = member(ref, "kind");
        if (!cJSON_IsString(n)) continue;
        if (!name) return true;
        bool is_cluster = cJSON_IsString(k) && strcmp(k->valuestring, kd_auth_kind_name(true)) == 0;
        if (is_cluster == cluster && strcmp(n->valuestring, name) == 0) return true;
    }
    return false;
}
