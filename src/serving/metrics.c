/*
 * metrics.c — the data plane's Prometheus families (requests, durations,
 * cold starts, instances, queues, the module cache and the native tier):
 * their registration and the functions the other files update them with.
 * It calls no other file of the data plane.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"

/* ---- metrics ------------------------------------------------------------ */

static const double duration_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,    10,  30};
static const double cold_buckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                      0.001,   0.0025,   0.005,   0.01,   0.025,   0.1};
static const double compile_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 600};

void srv_metrics_register(srv_t *s)
{
    static const char *const fr[] = {"function", "revision", NULL};
    static const char *const frc[] = {"function", "revision", "code", NULL};
    static const char *const frs[] = {"function", "revision", "state", NULL};
    if (!s->mx) return;
    s->m_requests = mx_family_new(s->mx, "wasmfn_requests_total",
                                  "Requests served by the data plane, by status code.",
                                  MX_COUNTER, frc, NULL, 0);
    s->m_duration = mx_family_new(s->mx, "wasmfn_request_duration_seconds",
                                  "Time from a request's arrival to its response.", MX_HISTOGRAM,
                                  fr, duration_buckets,
                                  sizeof duration_buckets / sizeof duration_buckets[0]);
    s->m_cold = mx_family_new(s->mx, "wasmfn_cold_starts_total",
                              "Requests that found no warm instance and instantiated one.",
                              MX_COUNTER, fr, NULL, 0);
    s->m_cold_duration = mx_family_new(s->mx, "wasmfn_cold_start_duration_seconds",
                                       "Time to instantiate a module for a cold start.",
                                       MX_HISTOGRAM, fr, cold_buckets,
                                       sizeof cold_buckets / sizeof cold_buckets[0]);
    static const char *const fro[] = {"function", "revision", "outcome", NULL};
    s->m_loop_runs = mx_family_new(s->mx, "wasmfn_loop_runs_total",
                                   "Requests whose guest the event loop thread ran itself "
                                   "(outcome ran), or began and handed to a worker "
                                   "(outcome handed_off).",
                                   MX_COUNTER, fro, NULL, 0);
    s->m_instances = mx_family_new(s->mx, "wasmfn_instances",
                                   "Instances per revision: warm (ready) or busy (running).",
                                   MX_GAUGE, frs, NULL, 0);
    s->m_queue = mx_family_new(s->mx, "wasmfn_queue_depth",
                               "Requests waiting for an instance (revision at max-scale).",
                               MX_GAUGE, fr, NULL, 0);
    static const char *const src[] = {"source", NULL};
    s->m_cache_bytes = mx_family_new(s->mx, "wasmfn_module_cache_bytes",
                                     "Bytes of compiled modules and their images in memory.",
                                     MX_GAUGE, NULL, NULL, 0);
    s->m_module_loads = mx_family_new(s->mx, "wasmfn_module_loads_total",
                                      "Modules brought into memory: compiled from the .wasm or "
                                      "loaded from their serialised form.",
                                      MX_COUNTER, src, NULL, 0);
    static const char *const st[] = {"state", NULL};
    s->m_cache_pinned_bytes = mx_family_new(
        s->mx, "wasmfn_module_cache_pinned_bytes",
        "Bytes of cached modules in use by a revision that is not at zero (never evicted).",
        MX_GAUGE, NULL, NULL, 0);
    s->m_cache_modules = mx_family_new(s->mx, "wasmfn_module_cache_modules",
                                       "Cached modules: pinned (in use) or unpinned (evictable).",
                                       MX_GAUGE, st, NULL, 0);
    s->m_cache_evictions = mx_family_new(s->mx, "wasmfn_module_cache_evictions_total",
                                         "Unpinned modules freed to keep the cache under its bound.",
                                         MX_COUNTER, NULL, NULL, 0);
    static const char *const frt[] = {"function", "revision", "tier", NULL};
    s->m_tier = mx_family_new(s->mx, "wasmfn_revision_tier",
                              "1 for the tier new instances of a revision run in (interp or "
                              "native), 0 for the other.",
                              MX_GAUGE, frt, NULL, 0);
    s->m_compile_seconds = mx_family_new(
        s->mx, "wasmfn_native_compile_duration_seconds",
        "Time to compile a module to native code in the background.", MX_HISTOGRAM, NULL,
        compile_buckets, sizeof compile_buckets / sizeof compile_buckets[0]);
    s->m_async_pending = mx_family_new(s->mx, "wasmfn_async_pending",
                                       "Asynchronous invocations accepted and not yet ended.",
                                       MX_GAUGE, fr, NULL, 0);
    static const char *const frl[] = {"function", "revision", "limit", NULL};
    s->m_async_rejected = mx_family_new(
        s->mx, "wasmfn_async_rejected_total",
        "Asynchronous invocations refused with 503 because too many were pending, by the "
        "bound reached (revision or process).",
        MX_COUNTER, frl, NULL, 0);
    static const char *const oc[] = {"outcome", NULL};
    s->m_compiles = mx_family_new(s->mx, "wasmfn_native_compiles_total",
                                  "Background native compiles, by outcome (ok or failed).",
                                  MX_COUNTER, oc, NULL, 0);
}

void srv_cache_gauges(srv_t *s)
{
    if (!s->mx) return;
    rt_cache_stats_t st;
    rt_cache_stats(s->cache, &st);
    if (s->m_cache_bytes) mx_gauge_set(s->m_cache_bytes, NULL, (double)st.bytes);
    if (s->m_cache_pinned_bytes) mx_gauge_set(s->m_cache_pinned_bytes, NULL, (double)st.pinned_bytes);
    if (s->m_cache_modules) {
        const char *pinned[] = {"pinned"}, *unpinned[] = {"unpinned"};
        mx_gauge_set(s->m_cache_modules, pinned, (double)st.pinned);
        mx_gauge_set(s->m_cache_modules, unpinned, (double)(st.modules - st.pinned));
    }
    if (s->m_cache_evictions && st.evictions > s->evictions_seen)
        mx_counter_add(s->m_cache_evictions, NULL, (double)(st.evictions - s->evictions_seen));
    s->evictions_seen = st.evictions;
}

void srv_module_loads_count(srv_t *s, rt_load_source_t src)
{
    if (src == RT_LOAD_CACHED || !s->m_module_loads) return;
    const char *lv[] = {src == RT_LOAD_SERIALIZED ? "serialized" : "compiled"};
    mx_counter_add(s->m_module_loads, lv, 1);
}

/* wasmfn_revision_tier for a revision whose module is in memory. */
void srv_rev_tier_gauge(srv_t *s, srv_rev_t *r)
{
    if (!s->m_tier || !r->mod || r->fn->deleted) return;
    bool native = strcmp(rt_module_tier(r->mod, NULL), "native") == 0;
    const char *ln[] = {r->fn->name, r->name, "native"}, *li[] = {r->fn->name, r->name, "interp"};
    mx_gauge_set(s->m_tier, ln, native);
    mx_gauge_set(s->m_tier, li, !native);
}

mx_series_t *srv_rev_series(srv_t *s, srv_rev_t *r, srv_rev_series_t k)
{
    if (!s->mx) return NULL;
    if (r->series[k]) return r->series[k];
    const char *fr[] = {r->fn->name, r->name, NULL};
    mx_family_t *f = NULL;
    switch (k) {
    case SRV_RS_WARM: fr[2] = "warm"; f = s->m_instances; break;
    case SRV_RS_BUSY: fr[2] = "busy"; f = s->m_instances; break;
    case SRV_RS_QUEUE: f = s->m_queue; break;
    case SRV_RS_DURATION: f = s->m_duration; break;
    case SRV_RS_COLD: f = s->m_cold; break;
    case SRV_RS_COLD_DURATION: f = s->m_cold_duration; break;
    case SRV_RS_LOOP_RAN: fr[2] = "ran"; f = s->m_loop_runs; break;
    case SRV_RS_LOOP_HANDED_OFF: fr[2] = "handed_off"; f = s->m_loop_runs; break;
    case SRV_RS_REQUESTS: return NULL; /* srv_rev_requests */
    case SRV_RS_N: return NULL;
    }
    return r->series[k] = mx_series(f, fr);
}

mx_series_t *srv_rev_requests(srv_t *s, srv_rev_t *r, int status)
{
    if (!s->mx) return NULL;
    if (r->series[SRV_RS_REQUESTS] && r->requests_code == status) return r->series[SRV_RS_REQUESTS];
    char code[12];
    if (status >= 100 && status <= 999) { /* every status; printf for anything else */
        code[0] = (char)('0' + status / 100);
        code[1] = (char)('0' + status / 10 % 10);
        code[2] = (char)('0' + status % 10);
        code[3] = '\0';
    } else {
        snprintf(code, sizeof code, "%d", status);
    }
    const char *lv[] = {r->fn->name, r->name, code};
    r->requests_code = status;
    return r->series[SRV_RS_REQUESTS] = mx_series(s->m_requests, lv);
}

/* Sets gauge k of r to v unless it shows v already: this runs twice per
 * request. Series are only removed with the function
 * (srv_function_delete), which sets deleted, so what r last set is still
 * there. */
static void rev_gauge(srv_t *s, srv_rev_t *r, int i, srv_rev_series_t k, int64_t v)
{
    if (r->shown[i] == v) return;
    r->shown[i] = v;
    mx_series_set(srv_rev_series(s, r, k), (double)v);
}

void srv_rev_gauges(srv_t *s, srv_rev_t *r)
{
    if (!s->mx || r->fn->deleted) return;
    rev_gauge(s, r, 0, SRV_RS_WARM, r->retired ? 0 : r->nwarm);
    rev_gauge(s, r, 1, SRV_RS_BUSY, r->busy);
    rev_gauge(s, r, 2, SRV_RS_QUEUE, r->queue.n);
}

/* Counts a cold start: a call that instantiated inline, or waited for its
 * revision's module to be loaded (the wait is part of its time). */
void srv_call_count_cold(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    if (!c->cold || !s->mx || r->fn->deleted) return;
    mx_series_add(srv_rev_series(s, r, SRV_RS_COLD), 1);
    mx_series_observe(srv_rev_series(s, r, SRV_RS_COLD_DURATION),
                      (double)(c->cold_ns + c->load_ns) / 1e9);
}
