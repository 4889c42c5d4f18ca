/*
 * redis.c — the redis-streams and redis triggers (hiredis). redis-streams:
 * a consumer group's pending entries (XPENDING's count: delivered, not yet
 * acknowledged), its lag (XINFO GROUPS, Redis 7: entries not yet delivered
 * to the group), or the stream's length (XLEN). redis: a list's length
 * (LLEN; 0 for a list that does not exist). Both as KEDA's scalers read
 * them. One connection per poll, with KD_TRIGGER_TIMEOUT_MS for the
 * connect and each reply.
 */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "keda/internal.h"

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

int kd_read_redis(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    const char *a = strncmp(t->url, "redis://", 8) == 0 ? t->url + 8 : t->url;
    const char *colon = strrchr(a, ':');
    char host[256];
    int port = 6379;
    if (colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - a), a);
        port = atoi(colon + 1);
    } else {
        snprintf(host, sizeof host, "%s", a);
    }
    struct timeval tv = {KD_TRIGGER_TIMEOUT_MS / 1000, (KD_TRIGGER_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    char e[300];
    int rc = -1;
    if (!c || c->err) {
        snprintf(err, errlen, "redis %s: %s", t->url, c ? c->errstr : "out of memory");
        redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (t->password) {
        r = redisCommand(c, "AUTH %s", t->password);
        if (!reply_ok(c, r, "AUTH", e, sizeof e)) goto out;
        freeReplyObject(r);
    }
    if (t->redis_db) {
        r = redisCommand(c, "SELECT %u", t->redis_db);
        if (!reply_ok(c, r, "SELECT", e, sizeof e)) goto out;
        freeReplyObject(r);
    }
    if (t->type == KD_REDIS_LISTS) {
        r = redisCommand(c, "LLEN %s", t->stream);
        if (!reply_ok(c, r, "LLEN", e, sizeof e)) goto out;
        *value = r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0;
        rc = 0;
    } else if (t->redis_mode == KD_REDIS_LENGTH) {
        r = redisCommand(c, "XLEN %s", t->stream);
        if (!reply_ok(c, r, "XLEN", e, sizeof e)) goto out;
        *value = r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0;
        rc = 0;
    } else if (t->redis_mode == KD_REDIS_LAG) {
        r = redisCommand(c, "XINFO GROUPS %s", t->stream);
        if (!reply_ok(c, r, "XINFO GROUPS", e, sizeof e)) goto out;
        rc = group_lag(r, t->group, value, e, sizeof e);
    } else {
        r = redisCommand(c, "XPENDING %s %s", t->stream, t->group);
        if (!reply_ok(c, r, "XPENDING", e, sizeof e)) goto out;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
            r->element[0]->type != REDIS_REPLY_INTEGER) {
            snprintf(e, sizeof e, "XPENDING: unexpected reply");
            goto out;
        }
        *value = (double)r->element[0]->integer;
        rc = 0;
    }
out:
    if (rc != 0)
        snprintf(err, errlen, "redis %s %s %s: %s", t->url,
                 t->type == KD_REDIS_LISTS ? "list" : "stream", t->stream, e);
    if (r) freeReplyObject(r);
    redisFree(c);
    return rc;
}
