/*
 * consumer.c — one thread per source or trigger that moves events from a
 * feed to a sink: a Redis stream read through a consumer group, or an
 * in-memory queue (PingSource, and brokers without --redis). This file has
 * the thread and its public calls; the rest is layered below it: feed.c
 * reads Redis feeds, attempt.c runs attempts and retries, outcome.c acks,
 * publishes replies and dead-letters, items.c holds an event's item and
 * what a consumer asks of its context, redis.c small Redis helpers.
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
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rfc3339.h"
#include "eventing/consumer.h"

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
    } else if (c->ext) {
        backlog = c->ext_ops->backlog(c->ext, c);
        if (backlog < 0)
            return;
    } else {
        backlog = ev_cons_redis_backlog(c);
        if (backlog < 0)
            return;
    }
    int max = c->max_parallel;
    if (max <= 0)
        max = c->sink.kind == EV_SINK_SERVICE ? ev_cons_service_max_scale(c->ctx, c->sink.name) : 10;
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
    ev_cons_metric_backlog(c->ctx, c->is_trigger, c->name, (double)backlog, (double)want);
}

/* How many attempts may run at once when retries are due: the parallelism
 * the backlog gives, at least 1 (a backlog not read yet must not hold a
 * due retry back for good). */
static int retry_room(const ev_consumer_t *c)
{
    return c->parallel > 0 ? c->parallel : 1;
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

        if (c->ext && !stop && now >= next_connect && !c->ext_ops->up(c->ext)) {
            char err[256];
            if (c->ext_ops->connect(c->ext, c, err, sizeof err)) {
                if (!down_logged) /* once per outage, not every second */
                    fprintf(stderr, "eventing: source %s: %s (retrying every second)\n", c->name,
                            err);
                down_logged = true;
                next_connect = now + 1000;
            } else {
                if (down_logged)
                    fprintf(stderr, "eventing: source %s: connected again\n", c->name);
                down_logged = false;
            }
        }
        if (!c->memory && !c->ext && !c->rc && !stop && now >= next_connect) {
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
                ev_cons_ensure_group(c);
                if (!connected_once && c->rc)
                    ev_cons_recover_own(c);
                connected_once = true;
                c->next_claim_ms = 0;
            }
        }
        while (done) {
            item_t *next = done->next;
            ev_cons_handle_result(c, done);
            done = next;
            busy = true;
        }
        if (stop) {
            if (c->inflight == 0)
                break;
        } else {
            /* Retries share the parallelism cap with new entries: a sink
             * at max-scale N never sees more than N attempts at once. */
            while (c->retry && c->retry->due_ms <= now && c->inflight < retry_room(c)) {
                item_t *it = c->retry;
                c->retry = it->next;
                c->nretry--;
                ev_cons_attempt(c, it);
                busy = true;
            }
            if (!c->memory && c->rc && now >= c->next_claim_ms) {
                ev_cons_autoclaim(c);
                c->next_claim_ms = now + (c->claim_min_idle_ms / 2 > 1000 ? c->claim_min_idle_ms / 2
                                                                          : 1000);
            }
            bool ext_up = c->ext && c->ext_ops->up(c->ext);
            if (c->memory || c->rc || ext_up)
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
                    item_t *it = ev_cons_item_new(c, id);
                    if (!it) {
                        ev_cons_mem_release(c, ev_event_bytes(e));
                        ev_event_free(e);
                        break;
                    }
                    it->event = e;
                    it->bytes = ev_event_bytes(e);
                    ev_cons_attempt(c, it);
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
            } else if (ext_up) {
                /* As for Redis below: a short wait while deliveries run,
                 * a longer one for the first message when scaled to zero. */
                int got;
                if (window > 0)
                    got = c->ext_ops->fetch(c->ext, c, window, 0);
                else if (c->inflight == 0 && c->nretry == 0 && c->parallel == 0)
                    got = c->ext_ops->fetch(c->ext, c, 1, 200);
                else /* no room: still keep the connection alive (MQTT pings) */
                    got = c->ext_ops->fetch(c->ext, c, 0, 0);
                if (got > 0) {
                    busy = true;
                    if (window <= 0)
                        c->next_backlog_ms = 0;
                }
            } else if (c->rc) {
                if (window > 0) {
                    if (ev_cons_read_group(c, ">", window, 0) > 0)
                        busy = true;
                } else if (c->inflight == 0 && c->nretry == 0 && c->parallel == 0) {
                    /* Scaled to zero: wait for the first new entry. */
                    if (ev_cons_read_group(c, ">", 1, 200) > 0) {
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
        if (c->retry && c->retry->due_ms < wake && c->inflight < retry_room(c))
            wake = c->retry->due_ms; /* when full, a completion wakes us */
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
        /* A deleted trigger: its group and ev_cons_attempt counters go too, so a
         * trigger created later under the same name starts afresh. */
        const char *a1[] = {"XGROUP", "DESTROY", c->stream, c->group, NULL};
        const char *a2[] = {"DEL", c->attempts_key, NULL};
        freeReplyObject(ev_cons_cmdv(c->rc, a1));
        if (c->rc && !c->rc->err)
            freeReplyObject(ev_cons_cmdv(c->rc, a2));
    }
    /* Retries still waiting stay pending in Redis (or are lost in memory). */
    while (c->retry) {
        item_t *it = c->retry;
        c->retry = it->next;
        ev_cons_item_free(it);
    }
    if (c->ext && c->forget && c->ext_ops->forget)
        c->ext_ops->forget(c->ext);
    if (c->ext)
        c->ext_ops->close(c->ext);
    if (c->rc)
        redisFree(c->rc);
    if (c->rc_sink)
        redisFree(c->rc_sink);
    if (c->rc_broker)
        redisFree(c->rc_broker);
    for (size_t i = 0; i < c->mem_len; i++) {
        ev_event_t *e = c->mem[(c->mem_head + i) % c->mem_cap];
        ev_cons_queue_release(c->ctx, ev_event_bytes(e)); /* c goes away: its count too */
        ev_event_free(e);
    }
    free(c->mem);
    for (size_t i = 0; i < c->filter.n; i++) {
        free(c->filter.attrs[i].name);
        free(c->filter.attrs[i].value);
    }
    free(c->filter.attrs);
    const ev_consumer_ctx_t *ctx = c->ctx;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    ctx->exited(ctx->ud);
    return NULL;
}

ev_consumer_t *ev_consumer_start(const ev_consumer_ctx_t *ctx, const ev_consumer_config_t *cfg)
{
    ev_consumer_t *c = calloc(1, sizeof *c);
    if (!c) {
        if (cfg->ext)
            cfg->ext_ops->close(cfg->ext);
        return NULL;
    }
    c->ctx = ctx;
    c->is_trigger = cfg->is_trigger;
    c->raw = cfg->raw_entries;
    c->memory = cfg->host == NULL && !cfg->ext;
    c->ext_ops = cfg->ext_ops;
    c->ext = cfg->ext;
    if (c->ext) {
        /* Names the feed in dead-letter marker keys (outcome.c). */
        snprintf(c->stream, sizeof c->stream, "%s", cfg->source_attr ? cfg->source_attr : "");
        snprintf(c->group, sizeof c->group, "%s", cfg->name);
    }
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
        c->mem_max_bytes = ctx->queue_max_bytes_per_trigger;
        c->mem_cap = 1024;
        c->mem = calloc(c->mem_cap, sizeof *c->mem);
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((c->memory && !c->mem) || pthread_create(&c->thread, NULL, consumer_main, c)) {
        if (c->ext)
            c->ext_ops->close(c->ext);
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
    if (!ev_cons_queue_reserve(c->ctx, bytes)) {
        snprintf(err, errlen, "memory brokers hold their bound of %zu queued bytes; retry later",
                 c->ctx->queue_max_bytes);
        goto refuse;
    }
    if (c->mem_len == c->mem_cap) {
        size_t cap = c->mem_cap * 2;
        ev_event_t **m = malloc(cap * sizeof *m);
        if (!m) {
            ev_cons_queue_release(c->ctx, bytes);
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
