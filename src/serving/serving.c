/*
 * serving.c — the data plane (serving.h): its life (srv_new, srv_drain,
 * srv_free) and the one-second tick that drives autoscaling. The rest of
 * the data plane is split by job (plane.h lists the files and holds the
 * objects they share); this file is their top: it calls into the others
 * and none calls it, and srv_new sets the pointers through which a lower
 * file reaches a higher one (srv_t's call_dispatch and call_finish_text).
 *
 * Threads. Everything in this file runs on the event loop thread, except
 * call_work and warm_work, which run on rt_ pool workers. Those two read
 * only what is immutable while they hold a reference (a revision's module,
 * env, limits and name, its function's log ring) and write only into their
 * own job struct; the loop reads the results in the done callbacks.
 *
 * A request (srv_call) goes: route -> pick revision (traffic split) ->
 * activator: dispatch now if the revision has fewer than max-scale busy
 * instances, else wait in its bounded FIFO queue (503 when full) -> a
 * worker runs the guest in a warm instance if one is ready, otherwise
 * instantiates inline (a cold start) -> the CGI response is parsed on the
 * worker -> the loop answers, updates metrics, dispatches the next queued
 * call and refills the warm pool.
 *
 * Deadlines run from arrival: a call still queued when its revision's
 * timeout passes gets 504 from the sweep timer (which runs only while
 * there are calls); a running guest has the
 * same absolute deadline in its exec (and WASI context), so it stops by
 * itself and is answered 504 when it comes back. A call dispatched but not
 * yet started on a worker is pulled back (rt_pool_cancel) and answered at
 * once. A client that disconnects cancels its call the same way (or
 * interrupts its guest); the answer is then discarded by hs_.
 *
 * Autoscaling: every second each revision records its average concurrency
 * (busy + queued, integrated over time so that short requests count for
 * what they cost) into its as_scaler; every second tick it asks for a
 * decision and keeps exactly `desired` warm instances: extra ones are freed
 * (desired 0 = scale to zero, no instance memory left), missing ones are
 * instantiated on workers in the background. A call consumes a warm
 * instance (fresh instance per request) and triggers a refill.
 *
 * Scale from zero. A revision at zero (desired 0, no warm instance,
 * nothing warming, running or queued) drops its module reference: the
 * module stays in the cache (rt_cache_*) only until the LRU bound wants
 * its room. The next call gets it back with rt_cache_find when it is still
 * cached (on the loop, microseconds); otherwise a load job (rt_module_load_*)
 * reads and deserialises its artefact (or, failing that, compiles the
 * .wasm) on a worker, and the loop inserts the result. Calls arriving
 * meanwhile wait in the revision's queue; when the load ends they are
 * dispatched, or answered 502 naming the fault if it failed. They count
 * as cold starts, the wait included in their cold-start time.
 *
 * Lifetimes. Revisions and functions are reference counted (loop thread
 * only): a function holds its live revisions, every call, warming job and
 * module load holds its revision, a revision holds its function and (unless
 * it is at zero) its module. A
 * revision removed by srv_function_put/delete is retired: its warm
 * instances are freed at once, its queued and running calls finish, and it
 * is freed with the last of them.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"
#include <sys/resource.h>

/* Every second: feed each revision's scaler; decide every other second. */
static void srv_on_tick(uv_timer_t *t)
{
    srv_t *s = t->data;
    uint64_t now = eng_now_ns();
    uint64_t dt = s->last_tick_ns && now > s->last_tick_ns ? now - s->last_tick_ns
                                                          : (uint64_t)SRV_TICK_MS * 1000000ull;
    s->last_tick_ns = now;
    bool decide = (++s->ticks % 2) == 0 && !s->draining;
    for (srv_rev_t *r = s->revs; r; r = r->all_next) {
        if (r->retired) continue;
        srv_rev_tier_gauge(s, r);
        srv_rev_conc_update(r, now);
        double avg = r->conc_area / (double)dt;
        r->conc_area = 0;
        as_scaler_record(r->scaler, now, avg);
        if (decide) {
            as_decision_t d = as_scaler_decide(r->scaler, now, r->nwarm + r->busy);
            /* An external scaler (KEDA's ScaledObject) decides instead. */
            r->desired = r->ext_replicas >= 0 ? (uint32_t)r->ext_replicas : d.desired;
        }
    }
    srv_stats_tick(s);
    if (!decide) return;
    srv_node_share(s);
    for (srv_rev_t *r = s->revs, *next; r; r = next) {
        next = r->all_next;
        if (!r->retired) srv_rev_apply_desired(s, r);
    }
}

/* ---- the public API ----------------------------------------------------- */

srv_t *srv_new(const srv_config_t *c, char *err, size_t errlen)
{
    if (!c->loop || !c->load_blob) {
        snprintf(err, errlen, "srv_new: loop and load_blob are required");
        return NULL;
    }
    srv_t *s = calloc(1, sizeof *s);
    if (!s || !(s->domain = strdup(c->domain && *c->domain ? c->domain : "localhost"))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->fns_mu, NULL);
    s->loop = c->loop;
    s->limits = c->limits;
    s->queue_cap = c->queue_per_revision ? c->queue_per_revision : SRV_DEFAULT_QUEUE;
    s->async_max_pending = c->async_max_pending ? c->async_max_pending : SRV_ASYNC_MAX_PENDING;
    s->async_max_bytes = c->async_max_bytes ? c->async_max_bytes : SRV_ASYNC_MAX_BYTES;
    s->async_rev_max_pending = c->async_max_pending_per_revision
                                   ? c->async_max_pending_per_revision
                                   : SRV_ASYNC_MAX_PENDING_PER_REVISION;
    s->async_rev_max_bytes = c->async_max_bytes_per_revision ? c->async_max_bytes_per_revision
                                                             : SRV_ASYNC_MAX_BYTES_PER_REVISION;
    s->load_blob = c->load_blob;
    s->load_blob_ud = c->load_blob_ud;
    s->artifact_get = c->artifact_get;
    s->artifact_put = c->artifact_put;
    s->artifact_ud = c->artifact_ud;
    s->native_get = c->native_get;
    s->native_put = c->native_put;
    s->mx = c->metrics;
    s->outbound = c->outbound;
    s->mtr = c->metering;
    s->kv = c->kv;
    s->tracer = c->tracer;
    s->server_timing = !c->no_server_timing;
    s->call_dispatch = srv_call_dispatch;
    s->call_finish_text = srv_call_finish_text;
    s->cache = rt_cache_new();
    if (s->cache) {
        rt_cache_config_t cc = {
            .max_bytes = c->module_cache_bytes,
            .load_blob = srv_cache_load_blob,
            .artifact_get = c->artifact_get ? srv_cache_artifact_get : NULL,
            .artifact_put = c->artifact_put ? srv_cache_artifact_put : NULL,
            .ud = s,
            .native_get = c->native_get ? srv_cache_native_get : NULL,
            .native_put = c->native_put ? srv_cache_native_put : NULL,
            .native_key = c->native_key,
            .compiler = c->compiler,
            .loop = c->loop,
            .native_done = srv_cache_native_done,
        };
        rt_cache_configure(s->cache, &cc);
    }
    s->invs = srv_inv_store_new(0, 0, 0);
    s->pool = s->cache && s->invs ? rt_pool_new(c->loop, c->workers, err, errlen) : NULL;
    if (!s->pool) {
        if (!s->cache || !s->invs) snprintf(err, errlen, "out of memory");
        srv_inv_store_free(s->invs);
        rt_cache_free(s->cache);
        free(s->domain);
        free(s);
        return NULL;
    }
    if (!c->no_loop_runs) {
        /* Without it every guest runs on a worker, as it would anyway. */
        char e[128];
        s->onloop = rt_onloop_new(c->loop, e, sizeof e);
        s->loop_slice_ns = c->loop_slice_ns ? c->loop_slice_ns : SRV_LOOP_SLICE_NS;
        if (s->loop_slice_ns > SRV_LOOP_SLICE_MAX_NS) s->loop_slice_ns = SRV_LOOP_SLICE_MAX_NS;
    }
    srv_metrics_register(s);
    srv_node_budget_init(s, c->max_instances);
    uv_timer_init(s->loop, &s->tick);
    uv_timer_init(s->loop, &s->sweep);
    uv_timer_init(s->loop, &s->drained);
    s->tick.data = s->sweep.data = s->drained.data = s;
    s->handles_open = 3;
    uv_timer_start(&s->tick, srv_on_tick, SRV_TICK_MS, SRV_TICK_MS);
    uv_unref((uv_handle_t *)&s->tick);
    uv_unref((uv_handle_t *)&s->sweep);
    uv_unref((uv_handle_t *)&s->drained);
    return s;
}

static void srv_on_http_closed(void *ud)
{
    srv_t *s = ud;
    s->http = NULL;
    s->http_closed = true;
    srv_check_drained(s);
}

void srv_drain(srv_t *s, void (*done)(void *ud), void *ud)
{
    if (s->draining) return;
    s->draining = true;
    s->drain_done = done;
    s->drain_ud = ud;
    /* Instances kept for future requests are not needed any more. */
    for (srv_rev_t *r = s->revs; r; r = r->all_next) {
        r->desired = 0;
        srv_rev_free_warm(r);
        srv_rev_gauges(s, r);
        srv_rev_unpin_if_idle(s, r);
    }
    if (s->http) hs_server_close(s->http, srv_on_http_closed, s);
    else s->http_closed = true;
    srv_check_drained(s);
}

static void srv_on_handle_closed(uv_handle_t *h)
{
    srv_t *s = h->data;
    if (--s->handles_open > 0) return;
    pthread_mutex_destroy(&s->fns_mu);
    free(s);
}

void srv_free(srv_t *s)
{
    if (!s) return;
    s->freeing = true;
    if (s->http) {
        hs_server_close(s->http, NULL, NULL);
        s->http = NULL;
    }
    /* Workers first: nothing may run guest code after this. */
    rt_pool_free(s->pool);
    s->pool = NULL;
    rt_onloop_free(s->onloop);
    s->onloop = NULL;
    /* Module loads whose done will never run now. */
    while (s->preps) {
        srv_prep_t *p = s->preps;
        srv_prep_unlink(s, p);
        rt_module_load_free(p->ml);
        free(p);
    }
    while (s->loads) {
        srv_load_t *l = s->loads;
        srv_rev_t *r = l->rev;
        srv_load_unlink(s, l);
        r->load = NULL;
        rt_module_load_free(l->ml);
        free(l);
        srv_rev_release(r);
    }
    for (uint32_t b = 0; b < SRV_FN_BUCKETS; b++) {
        while (s->fns[b]) {
            srv_fn_t *f = s->fns[b];
            srv_fn_unlink(s, f);
            f->deleted = true;
            srv_fn_retire_revs(s, f);
            srv_fn_release(f);
        }
    }
    while (s->free_calls) {
        srv_call_t *c = s->free_calls;
        s->free_calls = c->next;
        free(c);
    }
    rt_cache_free(s->cache);
    srv_inv_store_free(s->invs);
    srv_ext_free(s);
    free(s->domain);
    uv_close((uv_handle_t *)&s->tick, srv_on_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, srv_on_handle_closed);
    uv_close((uv_handle_t *)&s->drained, srv_on_handle_closed);
}
