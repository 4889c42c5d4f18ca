/*
 * redis.c — the Redis triggers (hiredis). redis-streams: a consumer
 * group's pending entries (XPENDING's count: delivered, not yet
 * acknowledged), its lag (XINFO GROUPS, Redis 7: entries not yet delivered
 * to the group), or the stream's length (XLEN). redis: a list's length
 * (LLEN; 0 for a list that does not exist). Both as KEDA's scalers read
 * them, from one server, from a Redis Cluster (redis-cluster*: any node
 * listed is asked, and a MOVED or ASK answer is followed to the node that
 * holds the key) or from the master a Redis Sentinel names
 * (redis-sentinel*: SENTINEL get-master-addr-by-name, each Sentinel listed
 * in turn until one answers). New connections per poll, each with
 * KD_TRIGGER_TIMEOUT_MS for the connect and each reply.
 */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "keda/internal.h"

/* Redirections followed for one reading of a Cluster (a resharding in
 * progress takes one or two). */
#define MAX_REDIRECTS 5

/* A reply that is an error or not what was asked: false, with err. */
static bool reply_ok(redisContext *c, redisReply *r, const char *what, char *err, size_t errlen)
{
    if (!r) {
        snprintf(err, errlen, "%s: %s", what, c->errstr[0] ? c->errstr : "no reply");
        return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %.200s", what, r->str);
        return false;
    }
    return true;
}

/* Splits "host:port" (the first len bytes of a; "[v6]:port" too; a
 * "redis://" before it is skipped) into host and port, def when it has
 * none. */
static void split_addr(const char *a, size_t len, char *host, size_t hn, int *port)
{
    if (len >= 8 && strncmp(a, "redis://", 8) == 0) a += 8, len -= 8;
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (a[i] == ':') colon = a + i;
    if (len && a[0] == '[') { /* [v6]:port: the last colon may be inside the brackets */
        const char *close = memchr(a, ']', len);
        if (colon && close && colon < close) colon = NULL;
        if (close) {
            snprintf(host, hn, "%.*s", (int)(close - a - 1), a + 1);
            *port = colon ? atoi(colon + 1) : 6379;
            return;
        }
    }
    size_t hl = colon ? (size_t)(colon - a) : len;
    snprintf(host, hn, "%.*s", (int)hl, a);
    *port = colon ? atoi(colon + 1) : 6379;
}

/* Connects to host:port and logs in (AUTH [user] pass) when pass is set:
 * the context, or NULL with err. */
static redisContext *node_connect(const char *host, int port, const char *user, const char *pass,
                                  char *err, size_t errlen)
{
    struct timeval tv = {KD_TRIGGER_TIMEOUT_MS / 1000, (KD_TRIGGER_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        snprintf(err, errlen, "%s:%d: %s", host, port, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (pass) {
        redisReply *r = user ? redisCommand(c, "AUTH %s %s", user, pass)
                             : redisCommand(c, "AUTH %s", pass);
        char e[256];
        bool ok = reply_ok(c, r, "AUTH", e, sizeof e);
        if (r) freeReplyObject(r);
        if (!ok) {
            snprintf(err, errlen, "%s:%d: %s", host, port, e);
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* The lag of group in an XINFO GROUPS reply (RESP2: a flat list of
 * names and values per group). */
static int group_lag(const redisReply *r, const char *group, double *value, char *err,
                     size_t errlen)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *g = r->element[i];
        const redisReply *name = NULL, *lag = NULL;
        for (size_t k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements; k += 2) {
            const redisReply *key = g->element[k];
            if (key->type != REDIS_REPLY_STRING && key->type != REDIS_REPLY_STATUS) continue;
            if (strcmp(key->str, "name") == 0) name = g->element[k + 1];
            if (strcmp(key->str, "lag") == 0) lag = g->element[k + 1];
        }
        if (!name || name->type != REDIS_REPLY_STRING || strcmp(name->str, group) != 0) continue;
        if (!lag) {
            snprintf(err, errlen, "XINFO GROUPS has no lag (lagCount needs Redis 7)");
            return -1;
        }
        if (lag->type != REDIS_REPLY_INTEGER) {
            /* Redis cannot tell (entries were deleted): KEDA counts it as 0. */
            *value = 0;
            return 0;
        }
        *value = (double)lag->integer;
        return 0;
    }
    snprintf(err, errlen, "no consumer group %s", group);
    return -1;
}

static const char *reading_name(const kd_trigger_t *t)
{
    if (kd_type_redis_list(t->type)) return "LLEN";
    return t->redis_mode == KD_REDIS_LENGTH ? "XLEN"
           : t->redis_mode == KD_REDIS_LAG  ? "XINFO GROUPS"
                                            : "XPENDING";
}

/* Sends t's one command (LLEN, XLEN, XINFO GROUPS or XPENDING, each about
 * one key, as a Cluster wants): the reply, NULL when the connection
 * failed. */
static redisReply *reading_send(redisContext *c, const kd_trigger_t *t)
{
    if (kd_type_redis_list(t->type)) return redisCommand(c, "LLEN %s", t->stream);
    if (t->redis_mode == KD_REDIS_LENGTH) return redisCommand(c, "XLEN %s", t->stream);
    if (t->redis_mode == KD_REDIS_LAG) return redisCommand(c, "XINFO GROUPS %s", t->stream);
    return redisCommand(c, "XPENDING %s %s", t->stream, t->group);
}

/* The value in the reply r to reading_send. */
static int reading_value(redisContext *c, const kd_trigger_t *t, redisReply *r, double *value,
                         char *err, size_t errlen)
{
    const char *what = reading_name(t);
    if (!reply_ok(c, r, what, err, errlen)) return -1;
    if (kd_type_redis_list(t->type) || t->redis_mode == KD_REDIS_LENGTH) {
        *value = r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0;
        return 0;
    }
    if (t->redis_mode == KD_REDIS_LAG) return group_lag(r, t->group, value, err, errlen);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "XPENDING: unexpected reply");
        return -1;
    }
    *value = (double)r->element[0]->integer;
    return 0;
}

/* SELECT db when it is not 0, then the reading. */
static int read_on(redisContext *c, const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    if (t->redis_db) {
        redisReply *r = redisCommand(c, "SELECT %u", t->redis_db);
        bool ok = reply_ok(c, r, "SELECT", err, errlen);
        if (r) freeReplyObject(r);
        if (!ok) return -1;
    }
    redisReply *r = reading_send(c, t);
    int rc = reading_value(c, t, r, value, err, errlen);
    if (r) freeReplyObject(r);
    return rc;
}

/* The next "host:port" of a comma list at *p: its length, *p moved past it
 * (0 at the end). */
static size_t next_addr(const char **p, const char **start)
{
    if (!**p) return 0;
    *start = *p;
    const char *comma = strchr(*p, ',');
    size_t len = comma ? (size_t)(comma - *p) : strlen(*p);
    *p = comma ? comma + 1 : *p + len;
    return len;
}

/* The node a redirection names ("MOVED <slot> <host>:<port>", the same for
 * ASK): the host (empty: the same host; an IPv6 address bare, as Redis
 * writes it, or in brackets) and a port of 1 to 65535 in digits. False
 * when it is not that. */
static bool redirect_target(const char *s, char *host, size_t hn, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon) return false;
    size_t plen = strlen(colon + 1);
    if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") != plen) return false;
    *port = atoi(colon + 1);
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') s++, hl -= 2;
    if (hl >= hn || memchr(s, ' ', hl)) return false;
    snprintf(host, hn, "%.*s", (int)hl, s);
    return *port >= 1 && *port <= 65535;
}

/* A Cluster: the nodes listed are tried in turn until one answers; its
 * MOVED or ASK answer names the node that holds the key ("MOVED 9114
 * 10.0.0.2:6379"; an empty host is the same host), which is asked in turn. */
static int read_cluster(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    const char *p = t->url, *a;
    size_t len;
    snprintf(err, errlen, "no address");
    while ((len = next_addr(&p, &a))) {
        char host[256];
        int port;
        split_addr(a, len, host, sizeof host, &port);
        redisContext *c = node_connect(host, port, t->username, t->password, err, errlen);
        if (!c) continue; /* the next node may answer */
        bool asking = false;
        for (int hop = 0;; hop++) {
            if (asking) {
                redisReply *r = redisCommand(c, "ASKING");
                if (r) freeReplyObject(r);
            }
            redisReply *r = reading_send(c, t);
            bool moved = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0;
            bool ask = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ASK ", 4) == 0;
            if (!moved && !ask) {
                int rc = reading_value(c, t, r, value, err, errlen);
                if (r) freeReplyObject(r);
                redisFree(c);
                return rc;
            }
            if (hop == MAX_REDIRECTS) {
                snprintf(err, errlen, "%s: more than %d redirections (%.100s)", reading_name(t),
                         MAX_REDIRECTS, r->str);
                freeReplyObject(r);
                redisFree(c);
                return -1;
            }
            const char *to = strchr(r->str + (moved ? 6 : 4), ' ');
            char next[256];
            int nport = 0;
            if (!to || !redirect_target(to + 1, next, sizeof next, &nport)) {
                snprintf(err, errlen, "%s: bad redirection \"%.100s\"", reading_name(t), r->str);
                freeReplyObject(r);
                redisFree(c);
                return -1;
            }
            if (!next[0]) snprintf(next, sizeof next, "%s", host);
            freeReplyObject(r);
            redisFree(c);
            snprintf(host, sizeof host, "%s", next);
            asking = ask;
            if (!(c = node_connect(host, nport, t->username, t->password, err, errlen)))
                return -1;
        }
    }
    return -1;
}

/* A Sentinel setup: the Sentinels listed are asked in turn for the master's
 * address; the first answer is read from. */
static int read_sentinel(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    const char *p = t->url, *a;
    size_t len;
    char host[256] = "";
    int port = 0;
    snprintf(err, errlen, "no address");
    while (!port && (len = next_addr(&p, &a))) {
        char sh[256];
        int sp;
        split_addr(a, len, sh, sizeof sh, &sp);
        redisContext *c =
            node_connect(sh, sp, t->sentinel_username, t->sentinel_password, err, errlen);
        if (!c) continue;
        redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", t->sentinel_master);
        char e[256];
        if (!reply_ok(c, r, "SENTINEL get-master-addr-by-name", e, sizeof e)) {
            snprintf(err, errlen, "sentinel %.100s:%d: %.200s", sh, sp, e);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                   r->element[0]->type == REDIS_REPLY_STRING &&
                   r->element[1]->type == REDIS_REPLY_STRING) {
            snprintf(host, sizeof host, "%s", r->element[0]->str);
            port = atoi(r->element[1]->str);
            if (port <= 0 || port > 65535) {
                snprintf(err, errlen, "sentinel %.100s:%d: bad port \"%.20s\"", sh, sp,
                         r->element[1]->str);
                port = 0;
            }
        } else {
            snprintf(err, errlen, "sentinel %.100s:%d: no master named %.100s", sh, sp,
                     t->sentinel_master);
        }
        if (r) freeReplyObject(r);
        redisFree(c);
    }
    if (!port) return -1;
    redisContext *c = node_connect(host, port, t->username, t->password, err, errlen);
    if (!c) return -1;
    char e[200];
    int rc = read_on(c, t, value, e, sizeof e);
    if (rc != 0) snprintf(err, errlen, "master %.100s:%d: %s", host, port, e);
    redisFree(c);
    return rc;
}

int kd_read_redis(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    char e[400];
    int rc;
    if (kd_type_redis_cluster(t->type)) {
        rc = read_cluster(t, value, e, sizeof e);
    } else if (kd_type_redis_sentinel(t->type)) {
        rc = read_sentinel(t, value, e, sizeof e);
    } else {
        char host[256];
        int port;
        split_addr(t->url, strlen(t->url), host, sizeof host, &port);
        redisContext *c = node_connect(host, port, t->username, t->password, e, sizeof e);
        rc = c ? read_on(c, t, value, e, sizeof e) : -1;
        redisFree(c);
    }
    if (rc != 0) {
        char master[160] = "";
        if (kd_type_redis_sentinel(t->type))
            snprintf(master, sizeof master, " (master %s)", t->sentinel_master);
        snprintf(err, errlen, "%s %s%s %s %s: %s", kd_type_name(t->type), t->url, master,
                 kd_type_redis_list(t->type) ? "list" : "stream", t->stream, e);
    }
    return rc;
}
