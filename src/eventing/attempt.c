/*
 * attempt.c — delivery attempts: each handed to the delivery thread, to
 * the loop for a Service of this process (local.c), or done in place for
 * Redis and Broker sinks, its answer turned into an ack,
 * a retry after the backoff, or a dead letter.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rfc3339.h"
#include "eventing/consumer.h"

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
    it->raw = r->raw;
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

/* Counts the ev_cons_attempt (in Redis for stream feeds), then makes it. */
void ev_cons_attempt(ev_consumer_t *c, item_t *it)
{
    if (it->to_dlq) {
        if (ev_cons_dead_letter(c, it, it->error[0] ? it->error : "delivery failed") == 0) {
            ev_cons_item_free(it);
        } else {
            it->due_ms = ev_mono_ms() + 5000;
            retry_insert(c, it);
        }
        return;
    }
    if (!c->memory && !c->ext) {
        if (!c->rc)
            goto later;
        const char *argv[] = {"HINCRBY", c->attempts_key, it->id, "1", NULL};
        redisReply *r = ev_cons_cmdv(c->rc, argv);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            ev_cons_conn_check(&c->rc);
            goto later;
        }
        it->attempts = (int)r->integer;
        freeReplyObject(r);
        if (it->attempts > ev_cons_max_attempts(c)) {
            /* Exhausted before a restart: the dead-letter write is all that
             * is left. */
            it->attempts = ev_cons_max_attempts(c);
            it->to_dlq = true;
            if (!it->error[0])
                snprintf(it->error, sizeof it->error, "delivery failed %d times", it->attempts);
            ev_cons_attempt(c, it);
            return;
        }
    } else {
        it->attempts++;
        if (c->ext && it->attempts > ev_cons_max_attempts(c)) {
            /* The broker's count (redeliveries) says they are used up. */
            it->attempts = ev_cons_max_attempts(c);
            it->to_dlq = true;
            if (!it->error[0])
                snprintf(it->error, sizeof it->error, "delivery failed %d times", it->attempts);
            ev_cons_attempt(c, it);
            return;
        }
    }
    it->url[0] = 0;
    ev_trace_attempt_begin(c, it);
    ev_attempt_result_t res = {0};
    switch (c->sink.kind) {
    case EV_SINK_SERVICE:
        /* A function of this process: a call on the loop, no socket
         * (local.c). */
        snprintf(it->url, sizeof it->url, "service %s", c->sink.name);
        if (!c->ctx->local) {
            snprintf(res.error, sizeof res.error, "no Services here: cannot call %.200s",
                     c->sink.name);
            break;
        }
        if (ev_local_post(c->ctx->local, c->sink.name, it->event, c->delivery.timeout_ms,
                          it->traceparent[0] ? it->traceparent : NULL, on_attempt_done,
                          it) == 0) {
            c->inflight++;
            return;
        }
        snprintf(res.error, sizeof res.error, "cannot queue the delivery");
        break;
    case EV_SINK_HTTP:
        snprintf(it->url, sizeof it->url, "%s", c->sink.url);
        if (ev_deliverer_post(c->ctx->deliverer, it->url, it->event, c->delivery.timeout_ms,
                              it->traceparent[0] ? it->traceparent : NULL, on_attempt_done,
                              it) == 0) {
            c->inflight++;
            return;
        }
        snprintf(res.error, sizeof res.error, "cannot queue the delivery");
        break;
    case EV_SINK_BROKER:
        snprintf(it->url, sizeof it->url, "broker:%s", c->sink.name);
        if (ev_cons_publish_to_broker(c, c->sink.name, it->event, res.error, sizeof res.error) == 0)
            res.status = 202;
        break;
    case EV_SINK_REDIS: {
        snprintf(it->url, sizeof it->url, "%s", c->sink.url);
        redisContext *conn = ev_cons_sink_conn(c, c->sink.host, c->sink.port, res.error, sizeof res.error);
        if (conn && ev_cons_xadd_event(conn, c->sink.stream, it->event, NULL, res.error,
                               sizeof res.error) == 0)
            res.status = 200;
        if (conn == c->rc)
            ev_cons_conn_check(&c->rc);
        else if (conn)
            ev_cons_conn_check(&c->rc_sink);
        break;
    }
    case EV_SINK_NONE:
        snprintf(res.error, sizeof res.error, "no sink");
        break;
    }
    /* Synchronous outcome. */
    it->status = res.status;
    snprintf(it->error, sizeof it->error, "%s", res.error);
    c->inflight++; /* ev_cons_handle_result takes it back */
    ev_cons_handle_result(c, it);
    return;
later:
    it->due_ms = ev_mono_ms() + 1000;
    retry_insert(c, it);
}

void ev_cons_handle_result(ev_consumer_t *c, item_t *it)
{
    c->inflight--;
    if (it->raw) {
        it->reply = ev_raw_reply_parse(it->raw, c->ctx->max_event_bytes);
        it->raw = NULL;
    }
    ev_trace_attempt_end(c, it);
    if (it->status >= 200 && it->status <= 299) {
        if (it->reply && c->reply_broker[0]) {
            char err[256];
            if (ev_cons_publish_to_broker(c, c->reply_broker, it->reply, err, sizeof err))
                fprintf(stderr, "eventing: trigger %s: reply event lost: %s\n", c->name, err);
        }
        ev_cons_ack(c, it);
        ev_cons_metric(c, "delivered");
        pthread_mutex_lock(&c->mu);
        c->stat_delivered++;
        pthread_mutex_unlock(&c->mu);
        ev_cons_item_free(it);
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
    if (it->attempts < ev_cons_max_attempts(c)) {
        ev_cons_metric(c, "retried");
        int64_t wait = ev_backoff_ms(c->delivery.policy, c->delivery.delay_ms, it->attempts);
        if (c->ext && c->ext_ops->retry && c->ext_ops->retry(c->ext, it, wait)) {
            ev_cons_item_free(it); /* the broker holds it and counts */
            return;
        }
        it->due_ms = ev_mono_ms() + wait;
        retry_insert(c, it);
        return;
    }
    it->to_dlq = true;
    if (ev_cons_dead_letter(c, it, reason) == 0) {
        ev_cons_item_free(it);
    } else {
        it->due_ms = ev_mono_ms() + 5000;
        retry_insert(c, it);
    }
}
