/*
 * consumer.c — one thread per source or trigger that moves events from a
 * feed to a sink: a Redis stream read through a consumer group, or an
 * in-memory queue (PingSource, and brokers without --redis).
 *
 * The thread owns its Redis connections and everything about an event's
 * life: it reads entries, counts attempts, hands each attempt to the
 * delivery thread (deliver.c), and when the answer comes back it acks,
 * schedules a retry after the backoff, or dead-letters. It never blocks the
 * daemon's loop, and the delivery thread never touches Redis.
 *
 * Exactly-once bookkeeping across SIGKILL (Redis feeds):
 *  - An entry is XACKed only after a 2xx answer or after it was written to
 *    the dead-letter sink; until then it stays in the group's pending list,
 *    and a restarted consumer reads its own pending entries first (ID 0) and
 *    reclaims other consumers' stale ones with XAUTOCLAIM. So nothing is
 *    lost; an event may reach the sink twice (at-least-once), never zero
 *    times.
 *  - Attempts are counted in Redis (HINCRBY on wasmfn:attempts:STREAM:GROUP
 *    before each attempt), so an entry redelivered after a crash continues
 *    its count instead of starting over, and goes to the dead-letter sink
 *    after exactly 1 + retry attempts in total.
 *  - Dead-lettering to a stream on the feed's own server is one Lua script:
 *    XACK, and only if that removed the entry from the pending list, XADD to
 *    the dead-letter stream — atomic, so an entry is dead-lettered at most
 *    once. A dead-letter stream on another server gets the XADD guarded by a
 *    SET NX marker keyed by the entry id (idempotent), then the XACK.
 *
 * Parallelism follows the backlog as KEDA scales a deployment: desired =
 * ceil(backlog / target) capped at max, where backlog = entries not yet
 * read by the group (lag) + entries read but not acknowledged. At zero
 * backlog no attempt runs; an idle consumer waits in a blocking read of one
 * entry, which is how it scales up from zero.
 *
 * Memory feeds are bounded by count (MEM_QUEUE_MAX) and by bytes: an event
 * is counted (mem_bytes, and the process-wide ev_queue_reserve) from its
 * push until the item that carried it is freed, so events waiting for a
 * retry count as well as queued ones, and a subscriber that fails or is
 * slow cannot make a trigger hold more than its bound.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "eventing/internal.h"
#include "common/rfc3339.h"

#define MEM_QUEUE_MAX 100000
#define RETRY_MAX 20000
#define DLQ_MARKER_TTL_S 604800

typedef struct item {
    struct item *next;            /* done list or retry list */
    struct item *live_prev, *live_next; /* every item of this consumer */
    struct ev_consumer *c;
    char id[64];                  /* stream entry id (or memory sequence) */
    ev_event_t *event;            /* NULL: a bad entry (reason in error) */
    size_t bytes;                 /* memory feeds: the event's share of mem_bytes */
    int attempts;
    bool to_dlq;                  /* the next step is the dead-letter write */
    int64_t due_ms;               /* retry time (monotonic) */
    int status;
    char error[256];
    char url[1024];
    ev_event_t *reply;
} item_t;

struct ev_consumer {
    ev_t *ev;
    /* configuration (immutable after start) */
    bool is_trigger, raw, memory;
    char name[256], host[256], stream[512], group[256], consumer[256], start_id[32];
    char attempts_key[800], source_attr[800], reply_broker[256];
    int port;
    int64_t claim_min_idle_ms;
    ev_filter_t filter;
    ev_sink_t sink;
    ev_delivery_t delivery;
    int target, max_parallel;

    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below up to the thread-only part */
    pthread_cond_t cv;
    bool stop, forget; /* forget: destroy the consumer group on the way out */
    item_t *done, *done_tail;
    ev_event_t **mem;   /* memory feed: ring of queued events */
    size_t mem_head, mem_len, mem_cap;
    size_t mem_bytes;   /* events pushed and not yet freed (queued or live items) */
    size_t mem_max_bytes; /* immutable */
    uint64_t mem_seq;
    long stat_backlog, stat_delivered, stat_dead;
    int stat_parallel;

    /* thread-only */
    redisContext *rc, *rc_sink, *rc_broker;
    item_t *retry;
    size_t nretry;
    int inflight;
    item_t *live;
    int64_t next_claim_ms, next_backlog_ms;
    long backlog;
    int parallel;
};

redisContext *ev_redis_connect(const char *host, int port, char *err, size_t errlen)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    if (!rc || rc->err) {
        snprintf(err, errlen, "redis %s:%d: %s", host, port, rc ? rc->errstr : "out of memory");
        if (rc)
            redisFree(rc);
        return NULL;
    }
    struct timeval cmd = {10, 0};
    redisSetTimeout(rc, cmd);
    return rc;
}

/* ---- small Redis helpers ---- */

static redisReply *cmd_argv(redisContext *rc, int argc, const char **argv, const size_t *lens)
{
    return redisCommandArgv(rc, argc, argv, lens);
}

/* Runs a command given as strings; NULL-terminated varargs are awkward
 * with binary values, so callers build argv. */
static redisReply *cmdv(redisContext *rc, const char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return cmd_argv(rc, argc, argv, NULL);
}

static bool reply_ok(redisReply *r)
{
    return r && r->type != REDIS_REPLY_ERROR;
}

/* Drops a connection after an I/O error (the caller reconnects later). */
static void conn_check(redisContext **rcp)
{
    if (*rcp && (*rcp)->err) {
        fprintf(stderr, "eventing: redis connection lost: %s\n", (*rcp)->errstr);
        redisFree(*rcp);
        *rcp = NULL;
    }
}

/* ---- items ---- */

static item_t *item_new(ev_consumer_t *c, const char *id)
{
    item_t *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->c = c;
    snprintf(it->id, sizeof it->id, "%s", id);
    it->live_next = c->live;
    if (c->live)
        c->live->live_prev = it;
    c->live = it;
    return it;
}

/* Gives back the bytes a memory feed's event held (see the top). */
static void mem_release(ev_consumer_t *c, size_t bytes)
{
    if (!bytes)
        return;
    pthread_mutex_lock(&c->mu);
    c->mem_bytes -= bytes;
    pthread_mutex_unlock(&c->mu);
    ev_queue_release(c->ev, bytes);
}

static void item_free(item_t *it)
{
    ev_consumer_t *c = it->c;
    mem_release(c, it->bytes);
    if (it->live_prev)
        it->live_prev->live_next = it->live_next;
    else
        c->live = it->live_next;
    if (it->live_next)
        it->live_next->live_prev = it->live_prev;
    ev_event_free(it->event);
    ev_event_free(it->reply);
    free(it);
}

static bool item_is_live(ev_consumer_t *c, const char *id)
{
    for (item_t *it = c->live; it; it = it->live_next)
        if (strcmp(it->id, id) == 0)
            return true;
    return false;
}

static void metric(ev_consumer_t *c, const char *outcome)
{
    ev_metric_event(c->ev, c->is_trigger, c->name, outcome);
}

static int max_attempts(const ev_consumer_t *c)
{
    return 1 + c->delivery.retry;
}

/* ---- acknowledging ---- */

static void ack(ev_consumer_t *c, item_t *it)
{
    if (c->memory || !c->rc)
        return;
    const char *a1[] = {"XACK", c->stream, c->group, it->id, NULL};
    const char *a2[] = {"HDEL", c->attempts_key, it->id, NULL};
    redisAppendCommandArgv(c->rc, 4, a1, NULL);
    redisAppendCommandArgv(c->rc, 3, a2, NULL);
    for (int i = 0; i < 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c->rc, (void **)&r) != REDIS_OK) {
            conn_check(&c->rc);
            return;
        }
        freeReplyObject(r);
    }
}

/* A connection to the redis server at host:port for writing to a sink:
 * the feed's own when it is the same server. */
static redisContext *sink_conn(ev_consumer_t *c, const char *host, int port, char *err, size_t len)
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
    const char *host = ev_redis_host(c->ev, &port);
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

static int publish_to_broker(ev_consumer_t *c, const char *broker, const ev_event_t *e, char *err,
                             size_t len)
{
    redisContext *rc = NULL;
    if (ev_redis_host(c->ev, NULL)) {
        rc = broker_conn(c);
        if (!rc) {
            snprintf(err, len, "broker %s: redis unreachable", broker);
            return -1;
        }
    }
    int r = ev_broker_publish(c->ev, broker, e, rc, err, len);
    if (rc == c->rc_broker)
        conn_check(&c->rc_broker);
    else if (rc == c->rc)
        conn_check(&c->rc);
    return r;
}

/* XADD of an event (field "event": the structured JSON, plus extra
 * fields). Returns 0 or -1 with err. */
static int xadd_event(redisContext *rc, const char *stream, const ev_event_t *e,
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
    redisReply *r = cmd_argv(rc, argc, argv, NULL);
    free(json);
    if (!reply_ok(r)) {
        snprintf(err, len, "XADD %.100s: %.100s", stream, r ? r->str : rc->errstr);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

/* ---- dead-lettering ---- */

/* Atomic on the feed's server: ack, and dead-letter only if the ack took
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
static int dead_letter(ev_consumer_t *c, item_t *it, const char *reason)
{
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
        redisContext *conn = sink_conn(c, d->host, d->port, err, sizeof err);
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
            r = cmd_argv(conn, 16, argv, NULL);
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
            r = cmd_argv(conn, 14, argv, NULL);
        }
        free(json);
        if (!reply_ok(r)) {
            snprintf(err, sizeof err, "%s", r ? r->str : conn->errstr);
            rc = -1;
        }
        freeReplyObject(r);
        if (conn == c->rc)
            conn_check(&c->rc);
        else
            conn_check(&c->rc_sink);
        break;
    }
    case EV_SINK_BROKER:
        rc = publish_to_broker(c, d->name, e, err, sizeof err);
        break;
    case EV_SINK_SERVICE:
    case EV_SINK_HTTP: {
        char url[1024];
        if (d->kind == EV_SINK_SERVICE) {
            if (ev_service_url(c->ev, d->name, url, sizeof url)) {
                snprintf(err, sizeof err, "service %s not found", d->name);
                rc = -1;
                break;
            }
        } else {
            snprintf(url, sizeof url, "%s", d->url);
        }
        int st = ev_http_post_sync(url, e, c->delivery.timeout_ms, err, sizeof err);
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
        ack(c, it);
    if (d->kind == EV_SINK_NONE) {
        metric(c, "dropped");
    } else {
        metric(c, "dead_lettered");
        pthread_mutex_lock(&c->mu);
        c->stat_dead++;
        pthread_mutex_unlock(&c->mu);
    }
    return 0;
}

/* ---- attempts ---- */

static void retry_insert(ev_consumer_t *c, item_t *it)
{
    item_t **pp = &c->retry;
    while (*pp && (*pp)->due_ms <= it->due_ms)
        pp = &(*pp)->next;
    it->next = *pp;
    *pp = it;
    c->nretry++;
}

static void on_attempt_done(void *ud, ev_attempt_result_t *r)
{
    item_t *it = ud;
    ev_consumer_t *c = it->c;
    it->status = r->status;
    snprintf(it->error, sizeof it->error, "%s", r->error);
    it->reply = r->reply;
    it->next = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->done_tail)
        c->done_tail->next = it;
    else
        c->done = it;
    c->done_tail = it;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void handle_result(ev_consumer_t *c, item_t *it);

/* Counts the attempt (in Redis for stream feeds), then makes it. */
static void attempt(ev_consumer_t *c, item_t *it)
{
    if (it->to_dlq) {
        if (dead_letter(c, it, it->error[0] ? it->error : "delivery failed") == 0) {
            item_free(it);
        } else {
            it->due_ms = ev_mono_ms() + 5000;
            retry_insert(c, it);
        }
        return;
    }
    if (!c->memory) {
        if (!c->rc)
            goto later;
        const char *argv[] = {"HINCRBY", c->attempts_key, it->id, "1", NULL};
        redisReply *r = cmdv(c->rc, argv);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            conn_check(&c->rc);
            goto later;
        }
        it->attempts = (int)r->integer;
        freeReplyObject(r);
        if (it->attempts > max_attempts(c)) {
            /* Exhausted before a restart: the dead-letter write is all that
             * is left. */
            it->attempts = max_attempts(c);
            it->to_dlq = true;
            if (!it->error[0])
                snprintf(it->error, sizeof it->error, "delivery failed %d times", it->attempts);
            attempt(c, it);
            return;
        }
    } else {
        it->attempts++;
    }
    it->url[0] = 0;
    ev_attempt_result_t res = {0};
    switch (c->sink.kind) {
    case EV_SINK_SERVICE:
        if (ev_service_url(c->ev, c->sink.name, it->url, sizeof it->url)) {
            snprintf(res.error, sizeof res.error, "service %.200s not found", c->sink.name);
            break;
        }
        /* fallthrough */
    case EV_SINK_HTTP:
        if (c->sink.kind == EV_SINK_HTTP)
            snprintf(it->url, sizeof it->url, "%s", c->sink.url);
        if (ev_deliverer_post(ev_get_deliverer(c->ev), it->url, it->event, c->delivery.timeout_ms,
                              on_attempt_done, it) == 0) {
            c->inflight++;
            return;
        }
        snprintf(res.error, sizeof res.error, "cannot queue the delivery");
        break;
    case EV_SINK_BROKER:
        snprintf(it->url, sizeof it->url, "broker:%s", c->sink.name);
        if (publish_to_broker(c, c->sink.name, it->event, res.error, sizeof res.error) == 0)
            res.status = 202;
        break;
    case EV_SINK_REDIS: {
        snprintf(it->url, sizeof it->url, "%s", c->sink.url);
        redisContext *conn = sink_conn(c, c->sink.host, c->sink.port, res.error, sizeof res.error);
        if (conn && xadd_event(conn, c->sink.stream, it->event, NULL, res.error,
                               sizeof res.error) == 0)
            res.status = 200;
        if (conn == c->rc)
            conn_check(&c->rc);
        else if (conn)
            conn_check(&c->rc_sink);
        break;
    }
    case EV_SINK_NONE:
        snprintf(res.error, sizeof res.error, "no sink");
        break;
    }
    /* Synchronous outcome. */
    it->status = res.status;
    snprintf(it->error, sizeof it->error, "%s", res.error);
    c->inflight++; /* handle_result takes it back */
    handle_result(c, it);
    return;
later:
    it->due_ms = ev_mono_ms() + 1000;
    retry_insert(c, it);
}

static void handle_result(ev_consumer_t *c, item_t *it)
{
    c->inflight--;
    if (it->status >= 200 && it->status <= 299) {
        if (it->reply && c->reply_broker[0]) {
            char err[256];
            if (publish_to_broker(c, c->reply_broker, it->reply, err, sizeof err))
                fprintf(stderr, "eventing: trigger %s: reply event lost: %s\n", c->name, err);
        }
        ack(c, it);
        metric(c, "delivered");
        pthread_mutex_lock(&c->mu);
        c->stat_delivered++;
        pthread_mutex_unlock(&c->mu);
        item_free(it);
        return;
    }
    ev_event_free(it->reply);
    it->reply = NULL;
    char reason[300];
    if (it->status)
        snprintf(reason, sizeof reason, "HTTP %d from %.200s", it->status, it->url);
    else
        snprintf(reason, sizeof reason, "%s", it->error[0] ? it->error : "delivery failed");
    snprintf(it->error, sizeof it->error, "%.250s", reason);
    if (it->attempts < max_attempts(c)) {
        metric(c, "retried");
        it->due_ms = ev_mono_ms() + ev_backoff_ms(c->delivery.policy, c->delivery.delay_ms,
                                                  it->attempts);
        retry_insert(c, it);
        return;
    }
    it->to_dlq = true;
    if (dead_letter(c, it, reason) == 0) {
        item_free(it);
    } else {
        it->due_ms = ev_mono_ms() + 5000;
        retry_insert(c, it);
    }
}

/* ---- reading the feed ---- */

/* Builds the event of a stream entry (fields: flat array f, v, f, v). */
static ev_event_t *entry_event(ev_consumer_t *c, const char *id, redisReply *fields, char *err,
                               size_t len)
{
    if (!fields || fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) {
        snprintf(err, len, "entry %s was deleted from the stream", id);
        return NULL;
    }
    size_t max = ev_max_event_bytes(c->ev);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, "event") == 0 &&
            v->type == REDIS_REPLY_STRING)
            return ev_event_from_json(v->str, v->len, max, err, len);
    }
    if (!c->raw) {
        snprintf(err, len, "entry %s has no \"event\" field", id);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    size_t total = 0;
    for (size_t i = 0; o && i + 1 < fields->elements; i += 2) {
        redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strlen(f->str) != f->len || strlen(v->str) != v->len) {
            snprintf(err, len, "entry %s: field %zu is not text", id, i / 2);
            cJSON_Delete(o);
            return NULL;
        }
        total += f->len + v->len;
        cJSON_DeleteItemFromObjectCaseSensitive(o, f->str);
        cJSON_AddStringToObject(o, f->str, v->str);
    }
    if (max && total > max) {
        snprintf(err, len, "entry %s of %zu bytes is larger than the limit of %zu", id, total, max);
        cJSON_Delete(o);
        return NULL;
    }
    char *data = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    ev_event_t *e = ev_event_new();
    if (!data || !e) {
        free(data);
        ev_event_free(e);
        snprintf(err, len, "out of memory");
        return NULL;
    }
    char tm[32];
    cm_rfc3339_format(((int64_t)strtoll(id, NULL, 10)) * 1000000, CM_RFC3339_MILLIS, tm, sizeof tm);
    ev_event_set(e, "specversion", "1.0");
    ev_event_set(e, "id", id);
    ev_event_set(e, "source", c->source_attr);
    ev_event_set(e, "type", "dev.knative.sources.redisstream");
    ev_event_set(e, "time", tm);
    ev_event_set(e, "datacontenttype", "application/json");
    ev_event_set_data(e, data, strlen(data));
    free(data);
    return e;
}

/* Takes entries ([id, fields] pairs) from a read or a claim. */
static int take_entries(ev_consumer_t *c, redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return 0;
    int n = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        redisReply *en = entries->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements < 1 ||
            en->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *id = en->element[0]->str;
        if (item_is_live(c, id))
            continue; /* already ours (e.g. waiting for a retry) */
        item_t *it = item_new(c, id);
        if (!it)
            break;
        n++;
        if (en->elements < 2 || en->element[1]->type == REDIS_REPLY_NIL) {
            /* Deleted from the stream while pending: nothing to deliver. */
            ack(c, it);
            metric(c, "dropped");
            item_free(it);
            continue;
        }
        char err[256];
        it->event = entry_event(c, id, en->elements > 1 ? en->element[1] : NULL, err, sizeof err);
        if (!it->event) {
            /* A bad entry: dead-letter it at once, never retry it. */
            it->to_dlq = true;
            snprintf(it->error, sizeof it->error, "bad entry: %.230s", err);
            attempt(c, it);
            continue;
        }
        if (c->filter.n && !ev_filter_match(&c->filter, it->event)) {
            ack(c, it);
            item_free(it);
            continue;
        }
        attempt(c, it);
    }
    return n;
}

static int read_group(ev_consumer_t *c, const char *from, int count, int block_ms)
{
    char cnt[16], blk[16];
    snprintf(cnt, sizeof cnt, "%d", count);
    snprintf(blk, sizeof blk, "%d", block_ms);
    const char *argv[12];
    int argc = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = c->group;
    argv[argc++] = c->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = cnt;
    if (block_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = blk;
    }
    argv[argc++] = "STREAMS";
    argv[argc++] = c->stream;
    argv[argc++] = from;
    redisReply *r = cmd_argv(c->rc, argc, argv, NULL);
    if (!reply_ok(r)) {
        if (r)
            fprintf(stderr, "eventing: XREADGROUP %s: %s\n", c->stream, r->str);
        freeReplyObject(r);
        conn_check(&c->rc);
        return -1;
    }
    int n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        redisReply *s = r->element[0];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2)
            n = take_entries(c, s->element[1]);
    }
    freeReplyObject(r);
    return n;
}

/* Own pending entries, left by an earlier run of this consumer. */
static void recover_own(ev_consumer_t *c)
{
    /* "0" returns this consumer's pending entries; page by their ids. */
    char from[64] = "0";
    for (int rounds = 0; rounds < 1000 && c->rc; rounds++) {
        const char *argv[] = {"XREADGROUP", "GROUP", c->group, c->consumer, "COUNT", "500",
                              "STREAMS",    c->stream, from,   NULL};
        redisReply *r = cmdv(c->rc, argv);
        if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            conn_check(&c->rc);
            return;
        }
        redisReply *ents = r->element[0]->elements == 2 ? r->element[0]->element[1] : NULL;
        if (!ents || ents->type != REDIS_REPLY_ARRAY || ents->elements == 0) {
            freeReplyObject(r);
            return;
        }
        redisReply *last = ents->element[ents->elements - 1];
        snprintf(from, sizeof from, "%s", last->element[0]->str);
        take_entries(c, ents);
        freeReplyObject(r);
    }
}

/* Other consumers' entries pending longer than claim_min_idle_ms. */
static void autoclaim(ev_consumer_t *c)
{
    char idle[32];
    snprintf(idle, sizeof idle, "%lld", (long long)c->claim_min_idle_ms);
    char start[64] = "0-0";
    for (int rounds = 0; rounds < 100 && c->rc; rounds++) {
        const char *argv[] = {"XAUTOCLAIM", c->stream, c->group, c->consumer, idle,
                              start,        "COUNT",   "200",    NULL};
        redisReply *r = cmdv(c->rc, argv);
        if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
            freeReplyObject(r);
            conn_check(&c->rc);
            return;
        }
        snprintf(start, sizeof start, "%s", r->element[0]->str ? r->element[0]->str : "0-0");
        take_entries(c, r->element[1]);
        freeReplyObject(r);
        if (strcmp(start, "0-0") == 0)
            return;
    }
}

static void ensure_group(ev_consumer_t *c)
{
    const char *argv[] = {"XGROUP", "CREATE", c->stream, c->group, c->start_id, "MKSTREAM", NULL};
    redisReply *r = cmdv(c->rc, argv);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        fprintf(stderr, "eventing: XGROUP CREATE %s %s: %s\n", c->stream, c->group, r->str);
    freeReplyObject(r);
    conn_check(&c->rc);
}

/* lag + pending of our group, or -1. */
static long redis_backlog(ev_consumer_t *c)
{
    const char *argv[] = {"XINFO", "GROUPS", c->stream, NULL};
    redisReply *r = cmdv(c->rc, argv);
    if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        conn_check(&c->rc);
        return -1;
    }
    long backlog = -1;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        bool ours = false;
        long pending = 0, lag = -1;
        for (size_t k = 0; k + 1 < g->elements; k += 2) {
            redisReply *f = g->element[k], *v = g->element[k + 1];
            if (f->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(f->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                ours = strcmp(v->str, c->group) == 0;
            else if (strcmp(f->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = (long)v->integer;
            else if (strcmp(f->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                lag = (long)v->integer;
        }
        if (!ours)
            continue;
        if (lag < 0) {
            /* Unknown after deletions: XLEN bounds it. */
            const char *a2[] = {"XLEN", c->stream, NULL};
            redisReply *x = cmdv(c->rc, a2);
            lag = x && x->type == REDIS_REPLY_INTEGER ? (long)x->integer : 0;
            freeReplyObject(x);
        }
        backlog = lag + pending;
    }
    freeReplyObject(r);
    return backlog;
}

/* ---- the thread ---- */

static void update_scale(ev_consumer_t *c, int64_t now)
{
    if (now < c->next_backlog_ms)
        return;
    c->next_backlog_ms = now + 200;
    long backlog;
    if (c->memory) {
        pthread_mutex_lock(&c->mu);
        backlog = (long)c->mem_len;
        pthread_mutex_unlock(&c->mu);
        backlog += c->inflight + (long)c->nretry;
    } else {
        backlog = redis_backlog(c);
        if (backlog < 0)
            return;
    }
    int max = c->max_parallel;
    if (max <= 0)
        max = c->sink.kind == EV_SINK_SERVICE ? ev_service_max_scale(c->ev, c->sink.name) : 10;
    if (max <= 0)
        max = 10;
    long want = backlog == 0 ? 0 : (backlog + c->target - 1) / c->target;
    if (want > max)
        want = max;
    c->backlog = backlog;
    c->parallel = (int)want;
    pthread_mutex_lock(&c->mu);
    c->stat_backlog = backlog;
    c->stat_parallel = c->parallel;
    pthread_mutex_unlock(&c->mu);
    ev_metric_backlog(c->ev, c->is_trigger, c->name, (double)backlog, (double)want);
}

static void *consumer_main(void *arg)
{
    ev_consumer_t *c = arg;
    bool connected_once = false, down_logged = false;
    int64_t next_connect = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool stop = c->stop;
        item_t *done = c->done;
        c->done = c->done_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        int64_t now = ev_mono_ms();
        bool busy = false;

        if (!c->memory && !c->rc && !stop && now >= next_connect) {
            char err[256];
            c->rc = ev_redis_connect(c->host, c->port, err, sizeof err);
            if (!c->rc) {
                if (!down_logged) /* once per outage, not every second */
                    fprintf(stderr, "eventing: %s %s: %s (retrying every second)\n",
                            c->is_trigger ? "trigger" : "source", c->name, err);
                down_logged = true;
                next_connect = now + 1000;
            } else {
                down_logged = false;
                ensure_group(c);
                if (!connected_once && c->rc)
                    recover_own(c);
                connected_once = true;
                c->next_claim_ms = 0;
            }
        }
        while (done) {
            item_t *next = done->next;
            handle_result(c, done);
            done = next;
            busy = true;
        }
        if (stop) {
            if (c->inflight == 0)
                break;
        } else {
            while (c->retry && c->retry->due_ms <= now) {
                item_t *it = c->retry;
                c->retry = it->next;
                c->nretry--;
                attempt(c, it);
                busy = true;
            }
            if (!c->memory && c->rc && now >= c->next_claim_ms) {
                autoclaim(c);
                c->next_claim_ms = now + (c->claim_min_idle_ms / 2 > 1000 ? c->claim_min_idle_ms / 2
                                                                          : 1000);
            }
            if (c->memory || c->rc)
                update_scale(c, now);
            int window = c->parallel - c->inflight;
            if (c->nretry >= RETRY_MAX)
                window = 0;
            if (c->memory) {
                for (; window > 0; window--) {
                    pthread_mutex_lock(&c->mu);
                    ev_event_t *e = NULL;
                    if (c->mem_len) {
                        e = c->mem[c->mem_head];
                        c->mem_head = (c->mem_head + 1) % c->mem_cap;
                        c->mem_len--;
                    }
                    uint64_t seq = ++c->mem_seq;
                    pthread_mutex_unlock(&c->mu);
                    if (!e)
                        break;
                    char id[32];
                    snprintf(id, sizeof id, "m%llu", (unsigned long long)seq);
                    item_t *it = item_new(c, id);
                    if (!it) {
                        mem_release(c, ev_event_bytes(e));
                        ev_event_free(e);
                        break;
                    }
                    it->event = e;
                    it->bytes = ev_event_bytes(e);
                    attempt(c, it);
                    busy = true;
                }
                if (c->parallel == 0) {
                    /* Idle: the next push or a tick wakes us and re-reads
                     * the backlog. */
                    pthread_mutex_lock(&c->mu);
                    if (c->mem_len)
                        c->next_backlog_ms = 0;
                    pthread_mutex_unlock(&c->mu);
                }
            } else if (c->rc) {
                if (window > 0) {
                    if (read_group(c, ">", window, 0) > 0)
                        busy = true;
                } else if (c->inflight == 0 && c->nretry == 0 && c->parallel == 0) {
                    /* Scaled to zero: wait for the first new entry. */
                    if (read_group(c, ">", 1, 200) > 0) {
                        busy = true;
                        c->next_backlog_ms = 0;
                    }
                }
            }
        }
        if (busy)
            continue;
        /* Sleep until a completion, a push, a retry's time, or a tick. */
        int64_t wake = ev_mono_ms() + 100;
        if (c->retry && c->retry->due_ms < wake)
            wake = c->retry->due_ms;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait_ms = wake - ev_mono_ms();
        if (wait_ms < 0)
            wait_ms = 0;
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&c->mu);
        if (!c->done && !c->stop)
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (c->memory && c->mem_len && c->parallel == 0)
            c->next_backlog_ms = 0;
        pthread_mutex_unlock(&c->mu);
    }
    if (c->forget && c->rc) {
        /* A deleted trigger: its group and attempt counters go too, so a
         * trigger created later under the same name starts afresh. */
        const char *a1[] = {"XGROUP", "DESTROY", c->stream, c->group, NULL};
        const char *a2[] = {"DEL", c->attempts_key, NULL};
        freeReplyObject(cmdv(c->rc, a1));
        if (c->rc && !c->rc->err)
            freeReplyObject(cmdv(c->rc, a2));
    }
    /* Retries still waiting stay pending in Redis (or are lost in memory). */
    while (c->retry) {
        item_t *it = c->retry;
        c->retry = it->next;
        item_free(it);
    }
    if (c->rc)
        redisFree(c->rc);
    if (c->rc_sink)
        redisFree(c->rc_sink);
    if (c->rc_broker)
        redisFree(c->rc_broker);
    for (size_t i = 0; i < c->mem_len; i++) {
        ev_event_t *e = c->mem[(c->mem_head + i) % c->mem_cap];
        ev_queue_release(c->ev, ev_event_bytes(e)); /* c goes away: its count too */
        ev_event_free(e);
    }
    free(c->mem);
    for (size_t i = 0; i < c->filter.n; i++) {
        free(c->filter.attrs[i].name);
        free(c->filter.attrs[i].value);
    }
    free(c->filter.attrs);
    ev_t *ev = c->ev;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    ev_consumer_exited(ev);
    return NULL;
}

ev_consumer_t *ev_consumer_start(ev_t *ev, const ev_consumer_config_t *cfg)
{
    ev_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ev = ev;
    c->is_trigger = cfg->is_trigger;
    c->raw = cfg->raw_entries;
    c->memory = cfg->host == NULL;
    snprintf(c->name, sizeof c->name, "%s", cfg->name);
    if (!c->memory) {
        snprintf(c->host, sizeof c->host, "%s", cfg->host);
        c->port = cfg->port;
        snprintf(c->stream, sizeof c->stream, "%s", cfg->stream);
        snprintf(c->group, sizeof c->group, "%s", cfg->group);
        snprintf(c->consumer, sizeof c->consumer, "%s", cfg->consumer);
        snprintf(c->start_id, sizeof c->start_id, "%s", cfg->start_id ? cfg->start_id : "$");
        snprintf(c->attempts_key, sizeof c->attempts_key, "wasmfn:attempts:%s:%s", c->stream,
                 c->group);
    }
    snprintf(c->source_attr, sizeof c->source_attr, "%s", cfg->source_attr ? cfg->source_attr : "");
    snprintf(c->reply_broker, sizeof c->reply_broker, "%s",
             cfg->reply_broker ? cfg->reply_broker : "");
    c->claim_min_idle_ms = cfg->claim_min_idle_ms > 0 ? cfg->claim_min_idle_ms : 60000;
    c->sink = cfg->sink;
    c->delivery = cfg->delivery;
    c->target = cfg->target > 0 ? cfg->target : 10;
    c->max_parallel = cfg->max_parallel;
    if (cfg->filter && cfg->filter->n) {
        c->filter.attrs = calloc(cfg->filter->n, sizeof(ev_attr_t));
        if (!c->filter.attrs) {
            free(c);
            return NULL;
        }
        for (size_t i = 0; i < cfg->filter->n; i++) {
            c->filter.attrs[i].name = strdup(cfg->filter->attrs[i].name);
            c->filter.attrs[i].value = strdup(cfg->filter->attrs[i].value);
        }
        c->filter.n = cfg->filter->n;
    }
    if (c->memory) {
        c->mem_max_bytes = ev_queue_max_bytes_per_trigger(ev);
        c->mem_cap = 1024;
        c->mem = calloc(c->mem_cap, sizeof *c->mem);
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((c->memory && !c->mem) || pthread_create(&c->thread, NULL, consumer_main, c)) {
        free(c->mem);
        free(c);
        return NULL;
    }
    pthread_detach(c->thread);
    return c;
}

bool ev_consumer_has_room(ev_consumer_t *c, size_t bytes)
{
    pthread_mutex_lock(&c->mu);
    bool ok = c->mem_len < MEM_QUEUE_MAX && c->mem_bytes <= c->mem_max_bytes &&
              bytes <= c->mem_max_bytes - c->mem_bytes;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

int ev_consumer_push(ev_consumer_t *c, const ev_event_t *e, char *err, size_t errlen)
{
    ev_event_t *copy = ev_event_clone(e);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *what = c->is_trigger ? "trigger" : "source";
    size_t bytes = ev_event_bytes(copy);
    pthread_mutex_lock(&c->mu);
    if (c->stop) {
        snprintf(err, errlen, "%s %.100s is stopping", what, c->name);
        goto refuse;
    }
    if (c->mem_len >= MEM_QUEUE_MAX) {
        snprintf(err, errlen, "%s %.100s holds its bound of %d queued events; retry later", what,
                 c->name, MEM_QUEUE_MAX);
        goto refuse;
    }
    if (c->mem_bytes > c->mem_max_bytes || bytes > c->mem_max_bytes - c->mem_bytes) {
        snprintf(err, errlen, "%s %.100s holds its bound of %zu queued bytes; retry later", what,
                 c->name, c->mem_max_bytes);
        goto refuse;
    }
    if (!ev_queue_reserve(c->ev, bytes)) {
        snprintf(err, errlen, "memory brokers hold their bound of %zu queued bytes; retry later",
                 ev_queue_max_bytes(c->ev));
        goto refuse;
    }
    if (c->mem_len == c->mem_cap) {
        size_t cap = c->mem_cap * 2;
        ev_event_t **m = malloc(cap * sizeof *m);
        if (!m) {
            ev_queue_release(c->ev, bytes);
            snprintf(err, errlen, "out of memory");
            goto refuse;
        }
        for (size_t i = 0; i < c->mem_len; i++)
            m[i] = c->mem[(c->mem_head + i) % c->mem_cap];
        free(c->mem);
        c->mem = m;
        c->mem_head = 0;
        c->mem_cap = cap;
    }
    c->mem[(c->mem_head + c->mem_len) % c->mem_cap] = copy;
    c->mem_len++;
    c->mem_bytes += bytes;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
refuse:
    pthread_mutex_unlock(&c->mu);
    ev_event_free(copy);
    return -1;
}

void ev_consumer_stop(ev_consumer_t *c, bool forget)
{
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    c->forget = forget;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void ev_consumer_stats(ev_consumer_t *c, long *backlog, int *parallel, long *delivered,
                       long *dead_lettered)
{
    pthread_mutex_lock(&c->mu);
    *backlog = c->stat_backlog;
    *parallel = c->stat_parallel;
    *delivered = c->stat_delivered;
    *dead_lettered = c->stat_dead;
    pthread_mutex_unlock(&c->mu);
}
