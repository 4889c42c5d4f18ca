/*
 * metadata.c — what each trigger type's metadata means: KEDA's parameters
 * for Prometheus, cpu and memory, cron, Redis (one server, a Cluster, a
 * Sentinel), PostgreSQL, MySQL, metrics-api, NATS JetStream and RabbitMQ,
 * checked into a kd_trigger_t, with KEDA's defaults. Credentials come from
 * the trigger's TriggerAuthentication first (parse.h); one written in the
 * metadata itself is taken with a warning.
 */
#define _GNU_SOURCE
#include "keda/parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/quantity.h"
#include "eventing/eventing.h"

static bool has_scheme(const char *u, const char *const *schemes)
{
    for (; *schemes; schemes++)
        if (strncmp(u, *schemes, strlen(*schemes)) == 0 && u[strlen(*schemes)]) return true;
    return false;
}

/* A credential written in the trigger's metadata is kept with the
 * document, in clear: say so, and where it belongs. */
static void warn_clear(kd_parse_t *c, const cJSON *md, const char *path, const char *k)
{
    if (kd_parse_member(md, k))
        kd_parse_warn(
            c,
            "%s.metadata.%s: stored in clear in wasmfn.db with the ScaledObject; put it in a "
            "Secret and refer to it with a TriggerAuthentication (docs/scaling.md)",
            path, k);
}

static int parse_prometheus(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"serverAddress", "query", "threshold",
                                        "activationThreshold", "ignoreNullValues", "authModes",
                                        "bearerToken", "username", "password", "customHeaders",
                                        "unsafeSsl", NULL};
    static const char *const quiet[] = {"metricName", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, quiet);
    if (kd_meta_str(c, md, "serverAddress", path, true, &t->url) < 0) return -1;
    static const char *const http[] = {"http://", "https://", NULL};
    if (t->url && !has_scheme(t->url, http))
        return kd_parse_fail(
            c, "%s.metadata.serverAddress: \"%s\" is not an http:// or https:// URL", path, t->url);
    if (kd_meta_str(c, md, "query", path, true, &t->query) < 0 ||
        kd_meta_num(c, md, "threshold", path, true, false, 0, &t->target) < 0 ||
        kd_meta_num(c, md, "activationThreshold", path, false, true, 0, &t->activation) < 0 ||
        kd_meta_bool(c, md, "ignoreNullValues", path, true, &t->ignore_null) < 0 ||
        kd_meta_bool(c, md, "unsafeSsl", path, false, &t->unsafe_ssl) < 0 ||
        kd_meta_str(c, md, "customHeaders", path, false, &t->headers) < 0)
        return -1;
    char buf[64];
    const char *modes = kd_meta_text(c, md, "authModes", buf, sizeof buf);
    bool bearer = false, basic = false;
    if (modes) {
        char *copy = strdup(modes), *save = NULL;
        if (!copy) return kd_parse_fail(c, "out of memory");
        for (char *m = strtok_r(copy, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
            if (strcmp(m, "bearer") == 0) bearer = true;
            else if (strcmp(m, "basic") == 0) basic = true;
            else {
                kd_parse_fail(c, "%s.metadata.authModes: \"%s\" is not supported (bearer, basic)",
                              path, m);
                free(copy);
                return -1;
            }
        }
        free(copy);
    }
    if (bearer && kd_meta_str(c, md, "bearerToken", path, true, &t->bearer) < 0) return -1;
    if (basic && (kd_meta_str(c, md, "username", path, true, &t->username) < 0 ||
                  kd_meta_str(c, md, "password", path, false, &t->password) < 0))
        return -1;
    char b2[64];
    if ((kd_meta_text(c, md, "bearerToken", b2, sizeof b2) && !bearer) ||
        (kd_meta_text(c, md, "username", b2, sizeof b2) && !basic))
        kd_parse_warn(c,
                      "%s.metadata: credentials are used only with the matching authModes "
                      "(bearer, basic)",
                      path);
    warn_clear(c, md, path, "bearerToken");
    warn_clear(c, md, path, "password");
    return 0;
}

/* cpu and memory: `value` with metricType Utilization (a percent of each
 * instance's request) or AverageValue (a quantity per instance). */
static int parse_resource(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"value", "type", NULL};
    static const char *const quiet[] = {"containerName", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, quiet);
    char buf[64];
    const char *type = kd_meta_text(c, md, "type", buf, sizeof buf); /* KEDA's older spelling */
    if (type) {
        if (strcmp(type, "Utilization") == 0) t->metric_type = KD_UTILIZATION;
        else if (strcmp(type, "AverageValue") == 0) t->metric_type = KD_AVERAGE_VALUE;
        else
            return kd_parse_fail(c, "%s.metadata.type: \"%s\" is not Utilization or AverageValue",
                                 path, type);
    }
    if (t->metric_type == KD_VALUE)
        return kd_parse_fail(
            c, "%s.metricType: Value is not allowed for %s (Utilization or AverageValue)", path,
            kd_type_name(t->type));
    const char *v = kd_meta_text(c, md, "value", buf, sizeof buf);
    if ((!v || !*v) && kd_meta_unresolved(c, "value")) return 0;
    if (!v || !*v) return kd_parse_fail(c, "%s.metadata.value: required", path);
    long double q;
    if (cm_quantity_parse(v, &q) != 0 || q <= 0)
        return kd_parse_fail(c, "%s.metadata.value: \"%s\" is not a %s above 0", path, v,
                             t->metric_type == KD_UTILIZATION ? "percentage" : "quantity");
    /* Utilization: percent. AverageValue: cores (cpu) or bytes (memory). */
    t->target = (double)q;
    return 0;
}

static int parse_cron(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"timezone", "start", "end", "desiredReplicas", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, NULL);
    if (kd_meta_str(c, md, "timezone", path, true, &t->tz) < 0 ||
        kd_meta_str(c, md, "start", path, true, &t->start) < 0 ||
        kd_meta_str(c, md, "end", path, true, &t->end) < 0)
        return -1;
    char e[256];
    int64_t now = (int64_t)time(NULL) * 1000;
    if (ev_cron_next_fire(t->start, t->tz, now, e, sizeof e) == -2)
        return kd_parse_fail(c, "%s.metadata.start: %s", path, e);
    if (ev_cron_next_fire(t->end, t->tz, now, e, sizeof e) == -2)
        return kd_parse_fail(c, "%s.metadata.end: %s", path, e);
    if (strcmp(t->start, t->end) == 0)
        return kd_parse_fail(c, "%s.metadata.end: must differ from start", path);
    double d;
    if (kd_meta_num(c, md, "desiredReplicas", path, true, false, 0, &d) < 0) return -1;
    if (d != floor(d) || d > KD_MAX_REPLICAS)
        return kd_parse_fail(c, "%s.metadata.desiredReplicas: must be a whole number from 1 to %u",
                             path, KD_MAX_REPLICAS);
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
static void redis_warn_unknown(kd_parse_t *c, const cJSON *md, const char *path, kd_type_t type,
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
    kd_parse_unknown(c, md, p, known, NULL);
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
static int add_node(kd_parse_t *c, const char *path, const char *key, const char *host, size_t hlen,
                    const char *port, size_t plen, char **out, uint32_t *n)
{
    while (hlen && (*host == ' ' || *host == '\t')) host++, hlen--;
    while (hlen && (host[hlen - 1] == ' ' || host[hlen - 1] == '\t')) hlen--;
    while (plen && (*port == ' ' || *port == '\t')) port++, plen--;
    while (plen && (port[plen - 1] == ' ' || port[plen - 1] == '\t')) plen--;
    unsigned pn = port_of(port, plen);
    bool host_ok = hlen > 0 && hlen < 256 && !memchr(host, ' ', hlen) && !memchr(host, ',', hlen);
    if (!host_ok || !pn)
        return kd_parse_fail(c, "%s.metadata.%s: \"%.*s:%.*s\" is not host:port", path, key,
                             (int)hlen, host, (int)plen, port);
    if (++*n > KD_MAX_REDIS_NODES)
        return kd_parse_fail(c, "%s.metadata.%s: more than %u servers", path, key,
                             KD_MAX_REDIS_NODES);
    char *s;
    if (asprintf(&s, "%s%s%.*s:%u", *out ? *out : "", *out ? "," : "", (int)hlen, host, pn) < 0)
        return kd_parse_fail(c, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

/* A Cluster's nodes or the Sentinels: addresses ("host:port, host:port"),
 * or hosts and ports, comma lists of the same length. Kept in t->url as
 * host:port,host:port. */
static int parse_redis_nodes(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    char b1[64], b2[64], b3[64];
    const char *addresses = kd_meta_text(c, md, "addresses", b1, sizeof b1);
    const char *hosts = kd_meta_text(c, md, "hosts", b2, sizeof b2);
    const char *ports = kd_meta_text(c, md, "ports", b3, sizeof b3);
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
    if (kd_meta_unresolved(c, "addresses") || kd_meta_unresolved(c, "hosts") ||
        kd_meta_unresolved(c, "ports"))
        return 0;
    if (!hosts || !*hosts)
        return kd_parse_fail(c, "%s.metadata.addresses: required (or hosts and ports)", path);
    if (!ports || !*ports)
        return kd_parse_fail(c, "%s.metadata.ports: required with hosts, one port per host", path);
    const char *h = hosts, *p = ports;
    for (;;) {
        const char *hc = strchr(h, ','), *pc = strchr(p, ',');
        if (!hc != !pc)
            return kd_parse_fail(c, "%s.metadata.hosts and ports: not the same number of entries",
                                 path);
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
static int parse_redis_server(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    bool cluster = kd_type_redis_cluster(t->type), sentinel = kd_type_redis_sentinel(t->type);
    if (cluster || sentinel) {
        if (parse_redis_nodes(c, md, path, t) < 0) return -1;
    } else {
        char buf[64], b2[64];
        const char *host = kd_meta_text(c, md, "host", buf, sizeof buf);
        const char *port = kd_meta_text(c, md, "port", b2, sizeof b2);
        if (kd_meta_str(c, md, "address", path, false, &t->url) < 0) return -1;
        if (!t->url && !kd_meta_unresolved(c, "address") && !kd_meta_unresolved(c, "host")) {
            if (!host)
                return kd_parse_fail(c, "%s.metadata.address: required (or host and port)", path);
            if (asprintf(&t->url, "%s:%s", host, port ? port : "6379") < 0) {
                t->url = NULL;
                return kd_parse_fail(c, "out of memory");
            }
        }
    }
    bool tls;
    if (kd_meta_bool(c, md, "enableTLS", path, false, &tls) < 0) return -1;
    if (tls) return kd_parse_fail(c, "%s.metadata.enableTLS: TLS to Redis is not supported", path);
    if (kd_meta_str(c, md, "username", path, false, &t->username) < 0 ||
        kd_meta_str(c, md, "password", path, false, &t->password) < 0)
        return -1;
    warn_clear(c, md, path, "password");
    if (!cluster) {
        double db;
        if (kd_meta_num(c, md, "databaseIndex", path, false, true, 0, &db) < 0) return -1;
        if (db != floor(db) || db > 1000000)
            return kd_parse_fail(c, "%s.metadata.databaseIndex: must be a whole number", path);
        t->redis_db = (uint32_t)db;
    }
    if (sentinel) {
        if (kd_meta_str(c, md, "sentinelMaster", path, true, &t->sentinel_master) < 0 ||
            kd_meta_str(c, md, "sentinelUsername", path, false, &t->sentinel_username) < 0 ||
            kd_meta_str(c, md, "sentinelPassword", path, false, &t->sentinel_password) < 0)
            return -1;
        warn_clear(c, md, path, "sentinelPassword");
    }
    return 0;
}

/* KEDA's redis trigger: the length of the list listName (LLEN), against
 * listLength per instance (default 5); also redis-cluster and
 * redis-sentinel. */
static int parse_redis_list(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const reading[] = {"listName", "listLength", "activationListLength", NULL};
    redis_warn_unknown(c, md, path, t->type, reading);
    if (parse_redis_server(c, md, path, t) < 0 ||
        kd_meta_str(c, md, "listName", path, true, &t->stream) < 0 ||
        kd_meta_num(c, md, "listLength", path, false, false, 5, &t->target) < 0 ||
        kd_meta_num(c, md, "activationListLength", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

/* redis-streams (and its Cluster and Sentinel forms): a consumer group's
 * lag, pending entries, or the stream's length. */
static int parse_redis(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const reading[] = {
        "stream",   "consumerGroup",      "pendingEntriesCount",    "streamLength",
        "lagCount", "activationLagCount", "activationStreamLength", NULL};
    redis_warn_unknown(c, md, path, t->type, reading);
    if (parse_redis_server(c, md, path, t) < 0 ||
        kd_meta_str(c, md, "stream", path, true, &t->stream) < 0)
        return -1;
    int r;
    if ((r = kd_meta_num(c, md, "lagCount", path, false, false, 0, &t->target)) < 0) return -1;
    if (r == 1) {
        t->redis_mode = KD_REDIS_LAG;
        if (kd_meta_num(c, md, "activationLagCount", path, false, true, 0, &t->activation) < 0)
            return -1;
    } else if ((r = kd_meta_num(c, md, "streamLength", path, false, false, 0, &t->target)) != 0) {
        if (r < 0) return -1;
        t->redis_mode = KD_REDIS_LENGTH;
        if (kd_meta_num(c, md, "activationStreamLength", path, false, true, 0, &t->activation) < 0)
            return -1;
    } else {
        t->redis_mode = KD_REDIS_PENDING;
        if (kd_meta_num(c, md, "pendingEntriesCount", path, false, false, 5, &t->target) < 0)
            return -1;
    }
    if (t->redis_mode != KD_REDIS_LENGTH &&
        kd_meta_str(c, md, "consumerGroup", path, true, &t->group) < 0)
        return -1;
    return 0;
}

/* A database trigger's server (postgresql, mysql): the connection string
 * under conn_key, or host (then required), port, the user under user_key,
 * password and dbName. 1 when it is a connection string, 0 for the parts. */
static int parse_db_server(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t,
                           const char *conn_key, const char *user_key)
{
    if (kd_meta_str(c, md, conn_key, path, false, &t->db_connection) < 0) return -1;
    if (t->db_connection) {
        warn_clear(c, md, path, conn_key);
        return 1;
    }
    if (kd_meta_str(c, md, "host", path, false, &t->url) < 0) return -1;
    if (!t->url && !kd_meta_unresolved(c, conn_key) && !kd_meta_unresolved(c, "host"))
        return kd_parse_fail(
            c,
            "%s.metadata.host: required (or %s, a connection string best given by a "
            "TriggerAuthentication)",
            path, conn_key);
    if (kd_meta_str(c, md, "port", path, false, &t->db_port) < 0 ||
        kd_meta_str(c, md, user_key, path, false, &t->username) < 0 ||
        kd_meta_str(c, md, "password", path, false, &t->password) < 0 ||
        kd_meta_str(c, md, "dbName", path, false, &t->db_name) < 0)
        return -1;
    if (t->db_port && !port_of(t->db_port, strlen(t->db_port)))
        return kd_parse_fail(c, "%s.metadata.port: \"%s\" is not a port", path, t->db_port);
    warn_clear(c, md, path, "password");
    return 0;
}

/* KEDA's postgresql trigger: the number a query returns (postgresql.c),
 * from a server named by a connection string or by its parts. */
static int parse_postgresql(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"connection", "host",    "port",
                                        "userName",   "password", "dbName",
                                        "sslmode",    "query",    "targetQueryValue",
                                        "activationTargetQueryValue", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, NULL);
    int r = parse_db_server(c, md, path, t, "connection", "userName");
    if (r < 0) return -1;
    if (r == 0) {
        if (kd_meta_str(c, md, "sslmode", path, false, &t->db_sslmode) < 0) return -1;
        static const char *const modes[] = {"disable", "allow",     "prefer",
                                            "require", "verify-ca", "verify-full", NULL};
        bool known_mode = !t->db_sslmode;
        for (const char *const *m = modes; *m && !known_mode; m++)
            known_mode = strcmp(*m, t->db_sslmode) == 0;
        if (!known_mode)
            return kd_parse_fail(
                c,
                "%s.metadata.sslmode: \"%s\" is not one of disable, allow, prefer, "
                "require, verify-ca, verify-full",
                path, t->db_sslmode);
    }
    if (kd_meta_str(c, md, "query", path, true, &t->query) < 0 ||
        kd_meta_num(c, md, "targetQueryValue", path, true, false, 0, &t->target) < 0 ||
        kd_meta_num(c, md, "activationTargetQueryValue", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

/* KEDA's mysql trigger: the number a query returns (mysql.c), from a
 * server named by a connection string (checked here, never quoted) or by
 * its parts. */
static int parse_mysql(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"connectionString", "host",     "port",
                                        "username",         "password", "dbName",
                                        "query",            "queryValue", "activationQueryValue",
                                        NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, NULL);
    int r = parse_db_server(c, md, path, t, "connectionString", "username");
    if (r < 0) return -1;
    if (r == 1) {
        kd_dsn_t d;
        char e[200];
        int rc = kd_mysql_dsn_parse(t->db_connection, &d, e, sizeof e);
        explicit_bzero(&d, sizeof d);
        if (rc < 0) return kd_parse_fail(c, "%s.metadata.connectionString: %s", path, e);
    }
    if (kd_meta_str(c, md, "query", path, true, &t->query) < 0 ||
        kd_meta_num(c, md, "queryValue", path, true, false, 0, &t->target) < 0 ||
        kd_meta_num(c, md, "activationQueryValue", path, false, true, 0, &t->activation) < 0)
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
static int parse_metrics_api(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"url", "valueLocation", "targetValue",
                                        "activationTargetValue", "unsafeSsl", "format", "authMode",
                                        "method", "keyParamName", "apiKey", "username", "password",
                                        "token", "ca", "cert", "key", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, NULL);
    if (kd_meta_str(c, md, "url", path, true, &t->url) < 0) return -1;
    static const char *const http[] = {"http://", "https://", NULL};
    if (t->url && !has_scheme(t->url, http))
        return kd_parse_fail(c, "%s.metadata.url: \"%s\" is not an http:// or https:// URL", path,
                             t->url);
    char buf[64], b2[64];
    const char *format = kd_meta_text(c, md, "format", buf, sizeof buf);
    t->format = KD_FORMAT_JSON;
    if (format && strcmp(format, "yaml") == 0) t->format = KD_FORMAT_YAML;
    else if (format && strcmp(format, "prometheus") == 0) t->format = KD_FORMAT_PROMETHEUS;
    else if (format && strcmp(format, "json") != 0)
        return kd_parse_fail(c,
                             "%s.metadata.format: \"%s\" is not supported (json, yaml, prometheus)",
                             path, format);
    if (kd_meta_str(c, md, "valueLocation", path, true, &t->location) < 0) return -1;
    if (strlen(t->location) > KD_MAX_LOCATION)
        return kd_parse_fail(c, "%s.metadata.valueLocation: longer than %u characters", path,
                             KD_MAX_LOCATION);
    char e[200];
    if (t->format == KD_FORMAT_PROMETHEUS) {
        if (kd_series_check(t->location, e, sizeof e) < 0)
            return kd_parse_fail(c, "%s.metadata.valueLocation: \"%.80s\": %s", path, t->location,
                                 e);
    } else if (!location_ok(t->location))
        return kd_parse_fail(
            c,
            "%s.metadata.valueLocation: \"%.80s\": wasmfn reads a path of keys and "
            "array indexes separated by '.', with '#' last for an array's length "
            "(GJSON's queries, wildcards and modifiers are not supported)",
            path, t->location);
    if (kd_meta_num(c, md, "targetValue", path, true, false, 0, &t->target) < 0 ||
        kd_meta_num(c, md, "activationTargetValue", path, false, true, 0, &t->activation) < 0 ||
        kd_meta_bool(c, md, "unsafeSsl", path, false, &t->unsafe_ssl) < 0 ||
        kd_meta_str(c, md, "ca", path, false, &t->tls_ca) < 0) /* with any authMode, as KEDA */
        return -1;
    const char *mode = kd_meta_text(c, md, "authMode", b2, sizeof b2);
    if (!mode) {
        /* No credentials without their mode, as in KEDA. */
    } else if (strcmp(mode, "apiKey") == 0) {
        char b3[64];
        const char *method = kd_meta_text(c, md, "method", b3, sizeof b3);
        if (method && strcmp(method, "header") != 0 && strcmp(method, "query") != 0)
            return kd_parse_fail(c, "%s.metadata.method: \"%s\" is not header or query", path,
                                 method);
        t->key_in_query = method && strcmp(method, "query") == 0;
        if (kd_meta_str(c, md, "apiKey", path, true, &t->api_key) < 0 ||
            kd_meta_str(c, md, "keyParamName", path, false, &t->key_param) < 0)
            return -1;
        if (!t->key_param && !(t->key_param = strdup(t->key_in_query ? "api_key" : "X-API-KEY")))
            return kd_parse_fail(c, "out of memory");
        if (!t->key_in_query && (strpbrk(t->key_param, "\r\n: ") || !*t->key_param))
            return kd_parse_fail(c, "%s.metadata.keyParamName: \"%.60s\" is not a header name",
                                 path, t->key_param);
    } else if (strcmp(mode, "basic") == 0) {
        if (kd_meta_str(c, md, "username", path, true, &t->username) < 0 ||
            kd_meta_str(c, md, "password", path, false, &t->password) < 0)
            return -1;
    } else if (strcmp(mode, "bearer") == 0) {
        if (kd_meta_str(c, md, "token", path, true, &t->bearer) < 0) return -1;
    } else if (strcmp(mode, "tls") == 0) {
        if (kd_meta_str(c, md, "cert", path, true, &t->tls_cert) < 0 ||
            kd_meta_str(c, md, "key", path, false, &t->tls_key) < 0)
            return -1;
    } else {
        return kd_parse_fail(
            c, "%s.metadata.authMode: \"%s\" is not supported (apiKey, basic, bearer, tls)", path,
            mode);
    }
    warn_clear(c, md, path, "apiKey");
    warn_clear(c, md, path, "password");
    warn_clear(c, md, path, "token");
    warn_clear(c, md, path, "key");
    return 0;
}

static int parse_nats(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"natsServerUrl", "natsServerMonitoringEndpoint",
                                        "account", "stream", "consumer", "lagThreshold",
                                        "activationLagThreshold", NULL};
    static const char *const quiet[] = {"useHttps", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, quiet);
    if (kd_meta_str(c, md, "natsServerUrl", path, false, &t->url) < 0) return -1;
    if (!t->url && !kd_meta_unresolved(c, "natsServerUrl")) {
        /* KEDA reads the monitoring endpoint over HTTP; wasmfn asks the
         * server itself (JetStream's consumer info) on its client port, so
         * the endpoint's host with NATS's default port stands in. */
        char buf[64];
        const char *mon = kd_meta_text(c, md, "natsServerMonitoringEndpoint", buf, sizeof buf);
        if (!mon || !*mon)
            return kd_parse_fail(
                c, "%s.metadata.natsServerUrl: required (or natsServerMonitoringEndpoint)", path);
        const char *h = strstr(mon, "://") ? strstr(mon, "://") + 3 : mon;
        size_t n = strcspn(h, ":/");
        if (asprintf(&t->url, "nats://%.*s:4222", (int)n, h) < 0) {
            t->url = NULL;
            return kd_parse_fail(c, "out of memory");
        }
    }
    static const char *const nats[] = {"nats://", "tls://", NULL};
    if (t->url && !has_scheme(t->url, nats))
        return kd_parse_fail(c, "%s.metadata.natsServerUrl: \"%s\" is not a nats:// URL", path,
                             t->url);
    if (kd_meta_str(c, md, "account", path, false, &t->account) < 0 ||
        kd_meta_str(c, md, "stream", path, true, &t->stream) < 0 ||
        kd_meta_str(c, md, "consumer", path, true, &t->group) < 0 ||
        kd_meta_num(c, md, "lagThreshold", path, false, false, 10, &t->target) < 0 ||
        kd_meta_num(c, md, "activationLagThreshold", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

static int parse_rabbitmq(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    static const char *const known[] = {"host", "protocol", "queueName", "mode", "value",
                                        "activationValue", "vhostName", "unsafeSsl", NULL};
    static const char *const quiet[] = {"metricName", NULL};
    char p[128];
    snprintf(p, sizeof p, "%s.metadata", path);
    kd_parse_unknown(c, md, p, known, quiet);
    if (kd_meta_str(c, md, "host", path, true, &t->url) < 0 ||
        kd_meta_str(c, md, "queueName", path, true, &t->queue) < 0 ||
        kd_meta_str(c, md, "vhostName", path, false, &t->vhost) < 0 ||
        kd_meta_bool(c, md, "unsafeSsl", path, false, &t->unsafe_ssl) < 0)
        return -1;
    /* The host was to come from a TriggerAuthentication that did not
     * resolve: it cannot be checked, and the trigger never reads. */
    if (!t->url && !(t->url = strdup("amqp://unresolved")))
        return kd_parse_fail(c, "out of memory");
    const cJSON *mh = kd_parse_member(md, "host");
    if (cJSON_IsString(mh)) {
        /* amqp://USER:PASS@...: a password in the metadata. */
        const char *u = strstr(mh->valuestring, "://");
        const char *at = u ? strchr(u + 3, '@') : NULL;
        if (at && memchr(u + 3, ':', (size_t)(at - (u + 3))))
            warn_clear(c, md, path, "host");
    }
    char buf[64];
    const char *proto = kd_meta_text(c, md, "protocol", buf, sizeof buf);
    static const char *const amqp[] = {"amqp://", NULL}, *const http[] = {"http://", "https://",
                                                                          NULL};
    bool is_http = has_scheme(t->url, http);
    if (!is_http && !has_scheme(t->url, amqp))
        return kd_parse_fail(
            c,
            "%s.metadata.host: want amqp://USER:PASS@HOST:PORT/VHOST or the management "
            "API's http(s)://USER:PASS@HOST:15672",
            path);
    if (proto && strcmp(proto, "auto") != 0 && strcmp(proto, is_http ? "http" : "amqp") != 0)
        return kd_parse_fail(c, "%s.metadata.protocol: \"%s\" does not match host %.*s", path,
                             proto, (int)strcspn(t->url, ":"), t->url);
    const char *mode = kd_meta_text(c, md, "mode", buf, sizeof buf);
    if (!mode || strcmp(mode, "QueueLength") == 0) t->rate = false;
    else if (strcmp(mode, "MessageRate") == 0) t->rate = true;
    else
        return kd_parse_fail(c, "%s.metadata.mode: \"%s\" is not QueueLength or MessageRate", path,
                             mode);
    if (t->rate && !is_http)
        return kd_parse_fail(
            c, "%s.metadata.mode: MessageRate needs the management API (host http://...)", path);
    if (kd_meta_num(c, md, "value", path, true, false, 0, &t->target) < 0 ||
        kd_meta_num(c, md, "activationValue", path, false, true, 0, &t->activation) < 0)
        return -1;
    return 0;
}

int kd_metadata_parse(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    switch (t->type) {
    case KD_PROMETHEUS: return parse_prometheus(c, md, path, t);
    case KD_CPU:
    case KD_MEMORY: return parse_resource(c, md, path, t);
    case KD_CRON: return parse_cron(c, md, path, t);
    case KD_NATS_JETSTREAM: return parse_nats(c, md, path, t);
    case KD_RABBITMQ: return parse_rabbitmq(c, md, path, t);
    case KD_METRICS_API: return parse_metrics_api(c, md, path, t);
    case KD_POSTGRESQL: return parse_postgresql(c, md, path, t);
    case KD_MYSQL: return parse_mysql(c, md, path, t);
    case KD_REDIS_STREAMS:
    case KD_REDIS_CLUSTER_STREAMS:
    case KD_REDIS_SENTINEL_STREAMS: return parse_redis(c, md, path, t);
    case KD_REDIS_LISTS:
    case KD_REDIS_CLUSTER_LISTS:
    case KD_REDIS_SENTINEL_LISTS: return parse_redis_list(c, md, path, t);
    }
    return kd_parse_fail(c, "%s.type: unknown", path);
}
