/*
 * outcome.c — where an event goes after its attempts: acknowledged, its
 * reply published into a broker, or written to the dead-letter sink
 * (atomically with the XACK when the sink is on the feed's own server).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rfc3339.h"
#include "eventing/consumer.h"

/* ---- acknowledging ---- */

void ev_cons_ack(ev_consumer_t *c, item_t *it)
{
    if (c->ext) {
        c->ext_ops->ack(c->ext, it);
        return;
    }
    if (c->memory || !c->rc)
        return;
    const char *a1[] = {"XACK", c->stream, c->group, it->id, NULL};
    const char *a2[] = {"HDEL", c->attempts_key, it->id, NULL};
    redisAppendCommandArgv(c->rc, 4, a1, NULL);
    redisAppendCommandArgv(c->rc, 3, a2, NULL);
    for (int i = 0; i < 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c->rc, (void **)&r) != REDIS_OK) {
            ev_cons_conn_check(&c->rc);
            return;
        }
        freeReplyObject(r);
    }
}

/* A connection to the redis server at host:port for writing to a sink:
 * the feed's own when it is the same server. */
redisContext *ev_cons_sink_conn(ev_consumer_t *c, const char *host, int port, char *err, size_t len)
{
    if (!c->memory && c->rc && strcmp(host, c->host) == 0 && port == c->port)
        return c->rc;
    if (c->rc_sink && (strcmp(c->rc_sink->tcp.host, host) != 0 || c->rc_sink->tcp.port != port)) {
        redisFree(c->rc_sink);
        c->rc_sink = NULL;
    }
    if (!c->rc_sink)
        c->rc_sink = ev_redis_connect(host, port, err, len);
    return c->rc_sink;
}

static redisContext *broker_conn(ev_consumer_t *c)
{
    int port;
    const char *host = c->ctx->redis_host;
    port = c->ctx->redis_port;
    if (!host)
        return NULL;
    if (!c->memory && c->rc && strcmp(host, c->host) == 0 && port == c->port)
        return c->rc;
    if (c->rc_broker && c->rc_broker->err) {
        redisFree(c->rc_broker);
        c->rc_broker = NULL;
    }
    if (!c->rc_broker) {
        char err[256];
        c->rc_broker = ev_redis_connect(host, port, err, sizeof err);
    }
    return c->rc_broker;
}

int ev_cons_publish_to_broker(ev_consumer_t *c, const char *broker, const ev_event_t *e, char *err,
                             size_t len)
{
    redisContext *rc = NULL;
    if (c->ctx->redis_host) {
        rc = broker_conn(c);
        if (!rc) {
            snprintf(err, len, "broker %s: redis unreachable", broker);
            return -1;
        }
    }
    int r = c->ctx->publish(c->ctx->ud, broker, e, rc, err, len);
    if (rc == c->rc_broker)
        ev_cons_conn_check(&c->rc_broker);
    else if (rc == c->rc)
        ev_cons_conn_check(&c->rc);
    return r;
}

/* XADD of an event (field "event": the structured JSON, plus extra
 * fields). Returns 0 or -1 with err. */
int ev_cons_xadd_event(redisContext *rc, const char *stream, const ev_event_t *e,
                      const char *const *extra, char *err, size_t len)
{
    char *json = ev_event_to_json(e);
    if (!json) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    const char *argv[16] = {"XADD", stream, "*", "event", json};
    int argc = 5;
    for (int i = 0; extra && extra[i] && argc < 15; i++)
        argv[argc++] = extra[i];
    redisReply *r = ev_cons_cmd_argv(rc, argc, argv, NULL);
    free(json);
    if (!ev_cons_reply_ok(r)) {
        snprintf(err, len, "XADD %.100s: %.100s", stream, r ? r->str : rc->errstr);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

/* ---- dead-lettering ---- */

/* Atomic on the feed's server: ev_cons_ack, and dead-letter only if the ev_cons_ack took
 * the entry out of the pending list (so a second try is a no-op). */
static const char DLQ_SAME_SERVER_LUA[] =
    "if redis.call('XACK', KEYS[2], ARGV[1], ARGV[2]) == 1 then "
    "  redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3)) "
    "end "
    "redis.call('HDEL', KEYS[3], ARGV[2]) "
    "return 1";

/* On another server: XADD once per marker key. */
static const char DLQ_MARKER_LUA[] =
    "if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then "
    "  redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2)) "
    "  return 1 "
    "end "
    "return 0";

/* Writes the item to the dead-letter sink and acks it. Returns 0, or -1
 * when the sink could not be written (the item stays pending; retried). */
int ev_cons_dead_letter(ev_consumer_t *c, item_t *it, const char *reason)
{
    if (c->delivery.dead_letter.kind == EV_SINK_NONE && c->ext && c->ext_ops->reject &&
        c->ext_ops->reject(c->ext, it)) {
        /* The broker dead-letters it (RabbitMQ: the queue's DLX, if any). */
        ev_cons_metric(c, "rejected");
        return 0;
    }
    char attempts[16], code[16];
    snprintf(attempts, sizeof attempts, "%d", it->attempts);
    snprintf(code, sizeof code, "%d", it->status);
    ev_event_t *e;
    if (it->event) {
        e = ev_event_clone(it->event);
    } else {
        /* A bad entry: dead-letter a stand-in event naming it. */
        e = ev_event_new();
        if (e) {
            char src[800];
            snprintf(src, sizeof src, "%s", c->source_attr);
            ev_event_set(e, "specversion", "1.0");
            ev_event_set(e, "id", it->id);
            ev_event_set(e, "source", src);
            ev_event_set(e, "type", "dev.wasmfn.eventing.badentry");
        }
    }
    if (!e)
        return -1;
    ev_event_set(e, "deadletterreason", reason);
    ev_event_set(e, "deadletterattempts", attempts);
    ev_event_set(e, "knativeerrorcode", code);
    if (it->url[0])
        ev_event_set(e, "knativeerrordest", it->url);

    const ev_sink_t *d = &c->delivery.dead_letter;
    char err[512] = "";
    int rc = 0;
    bool acked = false;
    switch (d->kind) {
    case EV_SINK_NONE:
        break;
    case EV_SINK_REDIS: {
        char *json = ev_event_to_json(e);
        if (!json) {
            rc = -1;
            break;
        }
        redisContext *conn = ev_cons_sink_conn(c, d->host, d->port, err, sizeof err);
        if (!conn) {
            free(json);
            rc = -1;
            break;
        }
        redisReply *r;
        if (conn == c->rc) {
            const char *argv[] = {"EVAL",  DLQ_SAME_SERVER_LUA, "3",     d->stream, c->stream,
                                  c->attempts_key, c->group,   it->id, "event",   json,
                                  "reason", reason,        "attempts", attempts, "origin",
                                  it->id};
            r = ev_cons_cmd_argv(conn, 16, argv, NULL);
            acked = true;
        } else {
            char marker[1200];
            snprintf(marker, sizeof marker, "wasmfn:deadlettered:%s:%s:%s:%s", c->stream, c->group,
                     d->stream, it->id);
            char ttl[16];
            snprintf(ttl, sizeof ttl, "%d", DLQ_MARKER_TTL_S);
            const char *argv[] = {"EVAL", DLQ_MARKER_LUA, "2",     d->stream, marker,
                                  ttl,    "event",        json,    "reason",  reason,
                                  "attempts", attempts,  "origin", it->id};
            r = ev_cons_cmd_argv(conn, 14, argv, NULL);
        }
        free(json);
        if (!ev_cons_reply_ok(r)) {
            snprintf(err, sizeof err, "%s", r ? r->str : conn->errstr);
            rc = -1;
        }
        freeReplyObject(r);
        if (conn == c->rc)
            ev_cons_conn_check(&c->rc);
        else
            ev_cons_conn_check(&c->rc_sink);
        break;
    }
    case EV_SINK_BROKER:
        rc = ev_cons_publish_to_broker(c, d->name, e, err, sizeof err);
        break;
    case EV_SINK_SERVICE:
    case EV_SINK_HTTP: {
        char url[1024];
        int st;
        if (d->kind == EV_SINK_SERVICE && !c->ctx->local) {
            snprintf(err, sizeof err, "no Services here: cannot call %s", d->name);
            st = 0;
        } else if (d->kind == EV_SINK_SERVICE) {
            /* A function of this process (local.c), waited for here. */
            st = ev_local_post_sync(c->ctx->local, d->name, e, c->delivery.timeout_ms, err,
                                    sizeof err);
        } else {
            snprintf(url, sizeof url, "%s", d->url);
            st = ev_http_post_sync(url, e, c->delivery.timeout_ms, err, sizeof err);
        }
        if (st < 200 || st > 299) {
            if (st)
                snprintf(err, sizeof err, "HTTP %d", st);
            rc = -1;
        }
        break;
    }
    }
    ev_event_free(e);
    if (rc) {
        fprintf(stderr, "eventing: %s %s: dead-letter sink failed for %s: %s\n",
                c->is_trigger ? "trigger" : "source", c->name, it->id, err);
        return -1;
    }
    if (!acked)
        ev_cons_ack(c, it);
    if (d->kind == EV_SINK_NONE) {
        ev_cons_metric(c, "dropped");
    } else {
        ev_cons_metric(c, "dead_lettered");
        pthread_mutex_lock(&c->mu);
        c->stat_dead++;
        pthread_mutex_unlock(&c->mu);
    }
    return 0;
}
