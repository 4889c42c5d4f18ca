/*
 * eventing.c — the ev_t object's life: ev_new wires the parts (the
 * delivery thread, the consumers' context, the publisher thread, metrics),
 * ev_drain and ev_free stop them. The rest is split by job: objects.c
 * (objects parsed from manifests), apply.c (apply, delete, list, starting
 * an object's consumer), ping.c (PingSource timers), broker.c (publishing
 * into brokers, ingress), drain.c; what survives a restart is in
 * store/events.c (DATA/eventing.db); core.h
 * holds the objects they share.
 *
 * Threads: the loop thread owns the object list and writes it under
 * objs_lock (a rwlock); consumer threads only read it (publishing reply
 * events into a broker), holding the read side. Each source and trigger
 * has a consumer thread (consumer.c); with --redis a publisher thread does
 * the XADDs of broker ingress so the loop never waits on Redis, and hands
 * the answers back through a uv_async.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/rfc3339.h"
#include "eventing/core.h"
/* ---- small helpers ---- */



/* ---- lifecycle ---- */

/* Restoring saved objects at start: brokers in a first pass, the rest in a
 * second. */
typedef struct restore {
    ev_t *ev;
    bool brokers;
} restore_t;

static void restore_one(void *ud, const char *kind, const char *name, const char *text)
{
    restore_t *r = ud;
    bool is_broker = strcmp(kind, "Broker") == 0;
    if (is_broker != r->brokers)
        return;
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    bool created;
    char e2[512];
    if (!doc || ev_apply_doc(r->ev, doc, false, &created, NULL, e2, sizeof e2))
        fprintf(stderr, "eventing: cannot restore %s %s: %s\n", kind, name, doc ? e2 : "bad JSON");
    cJSON_Delete(doc);
}

ev_t *ev_new(const ev_config_t *c, char *err, size_t errlen)
{
    ev_t *ev = calloc(1, sizeof *ev);
    if (!ev) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ev->loop = c->loop;
    snprintf(ev->data_dir, sizeof ev->data_dir, "%s", c->data_dir ? c->data_dir : ".");
    ev->sink_max_scale = c->sink_max_scale;
    ev->sink_ud = c->sink_ud;
    ev->max_event_bytes = c->max_event_bytes ? c->max_event_bytes : 1 << 20;
    ev->queue_max_bytes_per_trigger =
        c->max_queue_bytes_per_trigger ? c->max_queue_bytes_per_trigger : EV_QUEUE_BYTES_PER_TRIGGER;
    ev->queue_max_bytes = c->max_queue_bytes ? c->max_queue_bytes : EV_QUEUE_BYTES;
    pthread_rwlock_init(&ev->objs_lock, NULL);
    pthread_mutex_init(&ev->live_mu, NULL);
    pthread_cond_init(&ev->live_cv, NULL);
    pthread_mutex_init(&ev->pub_mu, NULL);
    pthread_cond_init(&ev->pub_cv, NULL);
    char hostname[64] = "local";
    gethostname(hostname, sizeof hostname - 1);
    snprintf(ev->consumer_name, sizeof ev->consumer_name, "wasmfn-%s", hostname);
    if (c->redis_url) {
        if (ev_redis_url_parse(c->redis_url, ev->redis_host, sizeof ev->redis_host,
                               &ev->redis_port, NULL, 0)) {
            snprintf(err, errlen, "--redis: \"%s\" is not redis://HOST:PORT", c->redis_url);
            goto fail;
        }
    }
    ev->store = st_events_open(ev->data_dir, err, errlen);
    if (!ev->store)
        goto fail;
    if (c->metrics) {
        static const char *const ev_labels[] = {"source", "trigger", "outcome", NULL};
        static const char *const src_labels[] = {"source", NULL};
        static const char *const trg_labels[] = {"trigger", NULL};
        static const char *const in_labels[] = {"broker", "outcome", NULL};
        ev->m_events = mx_family_new(c->metrics, "wasmfn_events_total",
                                     "Events by source or trigger and outcome "
                                     "(delivered, retried, dead_lettered, dropped).",
                                     MX_COUNTER, ev_labels, NULL, 0);
        ev->m_src_backlog = mx_family_new(c->metrics, "wasmfn_source_backlog",
                                          "Entries a source has not delivered yet (lag + pending).",
                                          MX_GAUGE, src_labels, NULL, 0);
        ev->m_src_par = mx_family_new(c->metrics, "wasmfn_source_parallelism",
                                      "Concurrent deliveries a source runs: ceil(backlog/target), "
                                      "capped by max-scale.",
                                      MX_GAUGE, src_labels, NULL, 0);
        ev->m_trg_backlog = mx_family_new(c->metrics, "wasmfn_trigger_backlog",
                                          "Events a trigger has not delivered yet.", MX_GAUGE,
                                          trg_labels, NULL, 0);
        ev->m_trg_par = mx_family_new(c->metrics, "wasmfn_trigger_parallelism",
                                      "Concurrent deliveries a trigger runs.", MX_GAUGE,
                                      trg_labels, NULL, 0);
        ev->m_ingress = mx_family_new(c->metrics, "wasmfn_broker_events_total",
                                      "Events posted to a broker's ingress by outcome.",
                                      MX_COUNTER, in_labels, NULL, 0);
        if (!ev->m_events || !ev->m_src_backlog || !ev->m_src_par || !ev->m_trg_backlog ||
            !ev->m_trg_par || !ev->m_ingress) {
            snprintf(err, errlen, "cannot register eventing's metrics");
            goto fail;
        }
    }
    ev->deliverer = ev_deliverer_new(ev->max_event_bytes);
    if (!ev->deliverer) {
        snprintf(err, errlen, "cannot start the delivery thread");
        goto fail;
    }
    if (c->service_call) {
        ev->local = ev_local_new(ev->loop, c->service_call, c->sink_ud, ev->max_event_bytes);
        if (!ev->local) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    ev->cctx = (ev_consumer_ctx_t){
        .deliverer = ev->deliverer,
        .local = ev->local,
        .max_event_bytes = ev->max_event_bytes,
        .queue_max_bytes_per_trigger = ev->queue_max_bytes_per_trigger,
        .queue_max_bytes = ev->queue_max_bytes,
        .queue_bytes = &ev->queue_bytes,
        .redis_host = ev->redis_port ? ev->redis_host : NULL,
        .redis_port = ev->redis_port,
        .sink_max_scale = ev->sink_max_scale,
        .sink_ud = ev->sink_ud,
        .m_events = ev->m_events,
        .m_src_backlog = ev->m_src_backlog,
        .m_src_par = ev->m_src_par,
        .m_trg_backlog = ev->m_trg_backlog,
        .m_trg_par = ev->m_trg_par,
        .publish = ev_ctx_publish,
        .exited = ev_ctx_exited,
        .ud = ev,
        .tracer = c->tracer,
    };
    if (ev->redis_port) {
        ev->pub_async = malloc(sizeof *ev->pub_async);
        if (!ev->pub_async || uv_async_init(ev->loop, ev->pub_async, ev_pub_async_cb)) {
            free(ev->pub_async);
            ev->pub_async = NULL;
            snprintf(err, errlen, "cannot create the ingress async handle");
            goto fail;
        }
        ev->pub_async->data = ev;
        ev->open_handles++;
        if (pthread_create(&ev->pub_thread, NULL, ev_publisher_main, ev)) {
            snprintf(err, errlen, "cannot start the ingress thread");
            goto fail;
        }
        ev->pub_started = true;
    }
    /* Brokers first, so triggers find their broker's delivery spec. */
    restore_t r = {ev, true};
    st_events_each(ev->store, restore_one, &r);
    r.brokers = false;
    st_events_each(ev->store, restore_one, &r);
    return ev;
fail:
    ev->drained = true;
    ev_free(ev);
    return NULL;
}





void ev_free(ev_t *ev)
{
    if (!ev)
        return;
    ev_stop_objects(ev);
    /* Attempts the loop has not taken fail now: without a drain the loop
     * is not running, and their consumers would wait for them forever. */
    ev_local_stop(ev->local);
    /* Wait for consumer threads (bounded by their attempts' timeouts). */
    pthread_mutex_lock(&ev->live_mu);
    while (ev->live > 0)
        pthread_cond_wait(&ev->live_cv, &ev->live_mu);
    pthread_mutex_unlock(&ev->live_mu);
    if (ev->pub_started) {
        pthread_mutex_lock(&ev->pub_mu);
        ev->pub_stop = true;
        pthread_cond_signal(&ev->pub_cv);
        pthread_mutex_unlock(&ev->pub_mu);
        pthread_join(ev->pub_thread, NULL);
    }
    /* Ingress jobs never answered (no drain): answer them now. */
    ingress_job_t *lists[2] = {ev->pub_queue, ev->pub_done};
    for (int i = 0; i < 2; i++)
        for (ingress_job_t *j = lists[i], *n; j; j = n) {
            n = j->next;
            hs_respond_error(j->req, 503, NULL, 0, "shutting down");
            ev_event_free(j->event);
            free(j);
        }
    ev_deliverer_free(ev->deliverer);
    ev_local_close(ev->local);
    st_events_close(ev->store);
    if (ev->drain_timer) {
        uv_timer_stop(ev->drain_timer);
        uv_close((uv_handle_t *)ev->drain_timer, ev_timer_closed);
    }
    if (ev->pub_async)
        uv_close((uv_handle_t *)ev->pub_async, ev_timer_closed);
    ev->freed = true;
    if (ev->open_handles == 0)
        free(ev);
}
