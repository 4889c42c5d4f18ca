/*
 * items.c — one event on its way through a consumer (item_t), the bytes a
 * memory feed holds, and what a consumer asks of its context
 * (ev_consumer_ctx_t): the process-wide queue bound, Service sinks, metrics.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rfc3339.h"
#include "eventing/consumer.h"
/* ---- what a consumer asks of its surroundings (the context) ---- */

/* Bytes of events every memory feed holds together (any thread, atomic):
 * reserve adds bytes and returns true, or returns false and adds nothing
 * when that would pass the process bound; release gives them back. */
bool ev_cons_queue_reserve(const ev_consumer_ctx_t *x, size_t bytes)
{
    size_t cur = __atomic_load_n(x->queue_bytes, __ATOMIC_RELAXED);
    do {
        if (bytes > x->queue_max_bytes || cur > x->queue_max_bytes - bytes)
            return false;
    } while (!__atomic_compare_exchange_n(x->queue_bytes, &cur, cur + bytes, true,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return true;
}

void ev_cons_queue_release(const ev_consumer_ctx_t *x, size_t bytes)
{
    __atomic_fetch_sub(x->queue_bytes, bytes, __ATOMIC_RELAXED);
}

/* A Service sink's max-scale: the default parallelism cap of a consumer
 * that delivers to it (10 when the wiring does not say). */
int ev_cons_service_max_scale(const ev_consumer_ctx_t *x, const char *name)
{
    int m = x->sink_max_scale ? x->sink_max_scale(x->sink_ud, name) : 0;
    return m > 0 ? m : 10;
}

static void metric_event(const ev_consumer_ctx_t *x, bool is_trigger, const char *name,
                         const char *outcome)
{
    if (!x->m_events)
        return;
    const char *v[] = {is_trigger ? "" : name, is_trigger ? name : "", outcome};
    mx_counter_add(x->m_events, v, 1);
}

void ev_cons_metric_backlog(const ev_consumer_ctx_t *x, bool is_trigger, const char *name,
                           double backlog, double parallel)
{
    if (!x->m_src_backlog)
        return;
    const char *v[] = {name};
    mx_gauge_set(is_trigger ? x->m_trg_backlog : x->m_src_backlog, v, backlog);
    mx_gauge_set(is_trigger ? x->m_trg_par : x->m_src_par, v, parallel);
}

/* ---- items ---- */

item_t *ev_cons_item_new(ev_consumer_t *c, const char *id)
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
void ev_cons_mem_release(ev_consumer_t *c, size_t bytes)
{
    if (!bytes)
        return;
    pthread_mutex_lock(&c->mu);
    c->mem_bytes -= bytes;
    pthread_mutex_unlock(&c->mu);
    ev_cons_queue_release(c->ctx, bytes);
}

void ev_cons_item_free(item_t *it)
{
    ev_consumer_t *c = it->c;
    ev_cons_mem_release(c, it->bytes);
    if (it->msg && c->ext)
        c->ext_ops->release(c->ext, it);
    if (it->live_prev)
        it->live_prev->live_next = it->live_next;
    else
        c->live = it->live_next;
    if (it->live_next)
        it->live_next->live_prev = it->live_prev;
    ev_event_free(it->event);
    ev_event_free(it->reply);
    ev_raw_reply_free(it->raw);
    free(it);
}

bool ev_cons_item_is_live(ev_consumer_t *c, const char *id)
{
    for (item_t *it = c->live; it; it = it->live_next)
        if (strcmp(it->id, id) == 0)
            return true;
    return false;
}

void ev_cons_metric(ev_consumer_t *c, const char *outcome)
{
    metric_event(c->ctx, c->is_trigger, c->name, outcome);
}

int ev_cons_max_attempts(const ev_consumer_t *c)
{
    return 1 + c->delivery.retry;
}
