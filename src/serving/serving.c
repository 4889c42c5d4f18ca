/*
 * serving.c — the data plane (serving.h): functions and revisions, the
 * per-revision activator, warm instances kept by the autoscaler, metrics,
 * and the request cycle from hs_ handler to guest and back.
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
#include "serving/serving.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "runtime/runtime.h"
#include "common/percent.h"
#include "serving/internal.h"

#define SRV_DEFAULT_MEMORY (128ull << 20)
#define SRV_DEFAULT_TIMEOUT_MS 30000u
#define SRV_DEFAULT_QUEUE 100u
#define SRV_MAX_STDOUT (16u << 20)
#define SRV_LOG_RING_BYTES (1u << 20)
#define SRV_TICK_MS 1000
#define SRV_SWEEP_MS 50
#define SRV_FN_BUCKETS 256
#define SRV_CALL_FREELIST 256
#define SRV_NAME_MAX 64
/* The node budget (srv_config_t.max_instances): what one live instance
 * costs in memory mappings (its memory slot: the copy-on-write image, the
 * rest of its pages, the PROT_NONE tail; a busy one's fiber stack and its
 * guard), the mappings kept for the rest of the daemon, and the share of
 * the budget warm (idle) instances may take, so that requests always find
 * room for a cold start. */
#define SRV_MAPS_PER_INSTANCE 5u
#define SRV_MAPS_RESERVED 16384u
#define SRV_WARM_SHARE_NUM 3u /* warm instances: at most 3/4 of the budget */
#define SRV_WARM_SHARE_DEN 4u

typedef struct srv_fn srv_fn_t;
typedef struct srv_rev srv_rev_t;
typedef struct srv_call srv_call_t;

enum call_state { CALL_NEW, CALL_QUEUED, CALL_DISPATCHED };

struct srv_call {
    rt_job_t job;
    srv_t *srv;
    hs_req_t *req;           /* NULL for an asynchronous call (answered already) */
    srv_inv_t *inv;          /* asynchronous: where the outcome goes */
    const uint8_t *body;     /* the request body: req's, or body_copy */
    size_t body_len;
    uint8_t *body_copy;
    uint64_t run_ns;         /* when the guest started (worker) */
    srv_rev_t *rev;
    char **env; /* CGI env, one block */
    uint32_t nenv;
    uint64_t start_ns, deadline_ns;
    int state;
    bool aborted, interrupted;
    srv_call_t *prev, *next; /* the revision's queue or running list */
    /* Filled on the worker. */
    rt_instance_t *inst;     /* the warm instance taken, or NULL: cold */
    bool cold, inst_failed, cgi_ok;
    uint64_t cold_ns;
    uint64_t load_ns;        /* time waiting for the module to load (loop) */
    char err[256];
    rt_result_t res;
    srv_cgi_response_t cgi;
};

typedef struct srv_warm {
    rt_job_t job;
    srv_t *srv;
    srv_rev_t *rev;
    rt_instance_t *inst;
    char err[256];
} srv_warm_t;

/* A module being loaded for a revision at zero (work on a worker, done on
 * the loop). */
typedef struct srv_load {
    rt_job_t job;
    srv_t *srv;
    srv_rev_t *rev;           /* holds a reference */
    rt_module_load_t *ml;
    struct srv_load *prev, *next; /* srv->loads */
} srv_load_t;

typedef struct call_list {
    srv_call_t *head, *tail;
    uint32_t n;
} call_list_t;

struct srv_rev {
    uint32_t refs;
    srv_t *srv;
    srv_fn_t *fn;
    char *name;
    char *digest;             /* its module's */
    rt_module_t *mod;         /* NULL while at zero (unpinned) or loading */
    srv_load_t *load;         /* the module load in flight, or NULL */
    char **env; /* one block, NULL-terminated */
    uint32_t nenv;
    uint64_t memory_limit_bytes;
    uint32_t timeout_ms;
    as_config_t scaling;
    as_scaler_t *scaler;
    bool retired;
    /* Instances. */
    rt_instance_t **warm;
    uint32_t nwarm, warm_cap;
    uint32_t warming;         /* background instantiations in flight */
    uint32_t busy;            /* dispatched calls */
    uint32_t desired;
    uint32_t warm_allowed;    /* its fair share of the node's warm budget (node_share) */
    bool warm_failed;         /* the last warming failed: wait for a tick */
    call_list_t queue, running;
    uint32_t async_pending;   /* asynchronous calls accepted and not yet ended */
    uint64_t async_bytes;     /* their request bodies */
    /* Concurrency integrated since the last tick. */
    uint64_t conc_since_ns;
    double conc_area;         /* sum of (busy + queued) * ns */
    srv_rev_t *all_prev, *all_next; /* srv->revs: every revision not yet freed */
    const char *labels[3];    /* function, revision, (spare) */
};

struct srv_fn {
    uint32_t refs;
    char *name;
    lr_ring_t *log;
    srv_rev_t **revs; /* the revisions the routes use */
    uint32_t nrevs;
    uint32_t nroutes;
    srv_rev_t **route_rev;
    uint32_t *percent;
    int32_t *current;
    bool deleted;
    srv_fn_t *hnext;
};

struct srv {
    mtr_t *mtr;              /* metering, or NULL */
    void (*events_fn)(void *ud, const char *broker, hs_req_t *req); /* broker ingress */
    void *events_ud;
    uv_loop_t *loop;
    char *domain;
    hs_limits_t limits;
    uint32_t queue_cap;
    int (*load_blob)(void *, const char *, uint8_t **, size_t *, char *, size_t);
    void *load_blob_ud;
    int (*artifact_get)(void *, const char *, uint8_t **, size_t *, char *, size_t);
    int (*artifact_put)(void *, const char *, const uint8_t *, size_t, char *, size_t);
    void *artifact_ud;
    int (*native_get)(void *, const char *, uint8_t **, size_t *, char *, size_t);
    int (*native_put)(void *, const char *, const uint8_t *, size_t, char *, size_t);
    rt_pool_t *pool;
    rt_cache_t *cache;
    hs_server_t *http;
    srv_fn_t *fns[SRV_FN_BUCKETS];
    srv_rev_t *revs;
    srv_load_t *loads;       /* module loads in flight */
    uint32_t ncalls; /* calls not yet answered, data plane and srv_invoke */
    uv_timer_t tick, sweep, drained; /* drained: runs drain_done from a fresh callback */
    int handles_open;
    uint64_t ticks, last_tick_ns;
    bool draining, http_closed, freeing;
    void (*drain_done)(void *);
    void *drain_ud;
    srv_call_t *free_calls;
    uint32_t nfree_calls;
    srv_inv_store_t *invs;  /* outcomes of asynchronous invocations */
    /* Pending asynchronous calls hold their request body until they end:
     * bounded per revision and per process (srv_config_t). */
    uint32_t async_pending, async_max_pending, async_rev_max_pending;
    uint64_t async_bytes, async_max_bytes, async_rev_max_bytes;
    struct srv_prep *preps; /* srv_module_prepare jobs in flight */
    /* The node's budget (srv_new says how it is derived): live instances
     * (warm, warming and busy, over all revisions) and the address space
     * their memories reserve. */
    uint32_t budget_instances;
    uint64_t budget_as_bytes;
    uint32_t live;
    uint64_t live_as_bytes;
    /* Metric families (NULL without a registry). */
    mx_registry_t *mx;
    mx_family_t *m_requests, *m_duration, *m_cold, *m_cold_duration, *m_instances, *m_queue;
    mx_family_t *m_cache_bytes, *m_module_loads;
    mx_family_t *m_cache_pinned_bytes, *m_cache_modules, *m_cache_evictions;
    mx_family_t *m_tier, *m_compile_seconds, *m_compiles;
    mx_family_t *m_async_pending, *m_async_rejected;
    uint64_t evictions_seen;  /* rt_cache_stats' count already added to m_cache_evictions */
};

/* ---- small helpers ------------------------------------------------------ */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SRV_FN_BUCKETS;
}

static srv_fn_t *fn_find(srv_t *s, const char *name)
{
    for (srv_fn_t *f = s->fns[name_hash(name)]; f; f = f->hnext)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

/* Copies a string vector into one block. */
static char **strv_dup(const char *const *v, uint32_t n)
{
    size_t bytes = (n + 1) * sizeof(char *);
    for (uint32_t i = 0; i < n; i++) bytes += strlen(v[i]) + 1;
    char **out = malloc(bytes);
    if (!out) return NULL;
    char *p = (char *)(out + n + 1);
    for (uint32_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(p, v[i], l);
        out[i] = p;
        p += l;
    }
    out[n] = NULL;
    return out;
}

static void list_push(call_list_t *l, srv_call_t *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail) l->tail->next = c;
    else l->head = c;
    l->tail = c;
    l->n++;
}

static void list_remove(call_list_t *l, srv_call_t *c)
{
    if (c->prev) c->prev->next = c->next;
    else l->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

/* ---- the node's budget -------------------------------------------------- */

/* What one instance of r reserves: its memory's slot, the memory limit
 * rounded up to a power of two (engine/image.c's size classes). */
static uint64_t rev_instance_as(const srv_rev_t *r)
{
    uint64_t b = 64u << 10;
    while (b < r->memory_limit_bytes && b < (1ull << 40)) b <<= 1;
    return b;
}

static void node_add(srv_t *s, const srv_rev_t *r, uint32_t n)
{
    s->live += n;
    s->live_as_bytes += n * rev_instance_as(r);
}

static void node_sub(srv_t *s, const srv_rev_t *r, uint32_t n)
{
    s->live -= n;
    s->live_as_bytes -= n * rev_instance_as(r);
}

/* Whether one more instance of r fits within `limit` instances (and the
 * address space). */
static bool node_room(const srv_t *s, const srv_rev_t *r, uint32_t limit)
{
    return s->live < limit && s->live_as_bytes + rev_instance_as(r) <= s->budget_as_bytes;
}

static uint32_t node_warm_budget(const srv_t *s)
{
    uint64_t w = (uint64_t)s->budget_instances * SRV_WARM_SHARE_NUM / SRV_WARM_SHARE_DEN;
    return w ? (uint32_t)w : 1;
}

/* ---- metrics ------------------------------------------------------------ */

static const double duration_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,    10,  30};
static const double cold_buckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                      0.001,   0.0025,   0.005,   0.01,   0.025,   0.1};
static const double compile_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 600};

static void metrics_register(srv_t *s)
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

static void cache_gauges(srv_t *s)
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

static void module_loads_count(srv_t *s, rt_load_source_t src)
{
    if (src == RT_LOAD_CACHED || !s->m_module_loads) return;
    const char *lv[] = {src == RT_LOAD_SERIALIZED ? "serialized" : "compiled"};
    mx_counter_add(s->m_module_loads, lv, 1);
}

/* The module cache's callbacks, onto the srv_config's. */
static int cache_load_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                           size_t errlen)
{
    srv_t *s = ud;
    return s->load_blob(s->load_blob_ud, digest, bytes, len, err, errlen);
}

static int cache_artifact_get(void *ud, const char *digest, uint8_t **bytes, size_t *len,
                              char *err, size_t errlen)
{
    srv_t *s = ud;
    return s->artifact_get(s->artifact_ud, digest, bytes, len, err, errlen);
}

static int cache_artifact_put(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                              char *err, size_t errlen)
{
    srv_t *s = ud;
    return s->artifact_put(s->artifact_ud, digest, bytes, len, err, errlen);
}

static void rev_free_warm(srv_rev_t *r);
static void rev_gauges(srv_t *s, srv_rev_t *r);
static void rev_tier_gauge(srv_t *s, srv_rev_t *r);

static int cache_native_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                            size_t errlen)
{
    srv_t *s = ud;
    return s->native_get(s->artifact_ud, digest, bytes, len, err, errlen);
}

static int cache_native_put(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                            char *err, size_t errlen)
{
    srv_t *s = ud;
    return s->native_put(s->artifact_ud, digest, bytes, len, err, errlen);
}

/* A background native compile ended (loop thread). */
static void cache_native_done(void *ud, const char *digest, bool ok, uint64_t ns, const char *err)
{
    srv_t *s = ud;
    if (s->m_compile_seconds) mx_histogram_observe(s->m_compile_seconds, NULL, (double)ns / 1e9);
    if (s->m_compiles) {
        const char *lv[] = {ok ? "ok" : "failed"};
        mx_counter_add(s->m_compiles, lv, 1);
    }
    if (ok) {
        fprintf(stderr, "wasmfn: %s: native code ready (compiled in %.1f s)\n", digest,
                (double)ns / 1e9);
        /* Idle instances made before are interpreted: let them go, so the
         * next requests get native ones (made from the image in a
         * microsecond; the autoscaler warms new ones at its next tick). */
        for (srv_rev_t *r = s->revs; r; r = r->all_next) {
            if (r->mod && strcmp(r->digest, digest) == 0) {
                rev_free_warm(r);
                rev_tier_gauge(s, r);
                rev_gauges(s, r);
            }
        }
    }
    else
        fprintf(stderr, "wasmfn: %s: native code failed, staying in the interpreter: %s\n",
                digest, err ? err : "?");
}

const char *srv_module_tier(srv_t *s, const char *digest, const char **detail)
{
    return rt_cache_tier(s->cache, digest, detail);
}

/* wasmfn_revision_tier for a revision whose module is in memory. */
static void rev_tier_gauge(srv_t *s, srv_rev_t *r)
{
    if (!s->m_tier || !r->mod || r->fn->deleted) return;
    bool native = strcmp(rt_module_tier(r->mod, NULL), "native") == 0;
    const char *ln[] = {r->fn->name, r->name, "native"}, *li[] = {r->fn->name, r->name, "interp"};
    mx_gauge_set(s->m_tier, ln, native);
    mx_gauge_set(s->m_tier, li, !native);
}

static void rev_gauges(srv_t *s, srv_rev_t *r)
{
    if (!s->mx || r->fn->deleted) return;
    const char *warm[] = {r->fn->name, r->name, "warm"};
    const char *busy[] = {r->fn->name, r->name, "busy"};
    if (s->m_instances) {
        mx_gauge_set(s->m_instances, warm, r->retired ? 0 : r->nwarm);
        mx_gauge_set(s->m_instances, busy, r->busy);
    }
    if (s->m_queue) mx_gauge_set(s->m_queue, r->labels, r->queue.n);
}

/* ---- functions and revisions -------------------------------------------- */

static void fn_release(srv_fn_t *f)
{
    if (!f || --f->refs > 0) return;
    if (f->log) lr_ring_free(f->log);
    free(f->revs);
    free(f->route_rev);
    free(f->percent);
    free(f->current);
    free(f->name);
    free(f);
}

static void rev_free_warm(srv_rev_t *r)
{
    for (uint32_t i = 0; i < r->nwarm; i++) rt_instance_free(r->warm[i]);
    node_sub(r->srv, r, r->nwarm);
    r->nwarm = 0;
}

static void rev_release(srv_rev_t *r)
{
    if (!r || --r->refs > 0) return;
    srv_t *s = r->srv;
    if (r->all_prev) r->all_prev->all_next = r->all_next;
    else if (s->revs == r) s->revs = r->all_next;
    if (r->all_next) r->all_next->all_prev = r->all_prev;
    rev_free_warm(r);
    free(r->warm);
    if (r->scaler) as_scaler_free(r->scaler);
    rt_module_release(r->mod);
    if (!s->freeing) cache_gauges(s);
    free(r->env);
    free(r->digest);
    free(r->name);
    srv_fn_t *f = r->fn;
    free(r);
    fn_release(f);
}

/* Takes a revision out of service: no new calls, no warm instances. It
 * stays on srv->revs (the sweep still times out its queued calls) until
 * its last call ends. */
static void rev_retire(srv_t *s, srv_rev_t *r)
{
    if (r->retired) return;
    r->retired = true;
    rev_free_warm(r);
    rev_gauges(s, r);
    rev_release(r); /* its function's reference */
}

static void rev_conc_update(srv_rev_t *r, uint64_t now)
{
    if (now > r->conc_since_ns)
        r->conc_area += (double)(r->busy + r->queue.n) * (double)(now - r->conc_since_ns);
    r->conc_since_ns = now;
}

/* ---- the module of a revision at zero ----------------------------------- */

static void rev_pump(srv_t *s, srv_rev_t *r);
static void rev_refill(srv_t *s, srv_rev_t *r);
static void node_share(srv_t *s);
static void call_count_cold(srv_t *s, srv_call_t *c);
static void call_finish_text(srv_t *s, srv_call_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A revision at zero (nothing warm, warming, running or queued, and
 * desired 0) unpins its module, so that the cache's bound applies to it.
 * Call wherever those counts may have fallen to zero, once no instance of
 * the module is left (calls free theirs before being answered). */
static void rev_unpin_if_idle(srv_t *s, srv_rev_t *r)
{
    if (!r->mod || r->load || r->desired || r->nwarm || r->warming || r->busy || r->queue.n ||
        s->freeing)
        return;
    rt_module_release(r->mod);
    r->mod = NULL;
    cache_gauges(s);
}

static void load_work(rt_job_t *j, eng_exec_t *x)
{
    srv_load_t *l = j->ud;
    rt_module_load_run(l->ml, x);
}

static void load_unlink(srv_t *s, srv_load_t *l)
{
    if (l->prev) l->prev->next = l->next;
    else s->loads = l->next;
    if (l->next) l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

static void load_done(rt_job_t *j)
{
    srv_load_t *l = j->ud;
    srv_t *s = l->srv;
    srv_rev_t *r = l->rev;
    load_unlink(s, l);
    r->load = NULL;
    char e[256];
    rt_load_source_t src;
    rt_module_t *m = rt_cache_load_finish(s->cache, l->ml, &src, e, sizeof e);
    free(l);
    if (m && rt_module_check_limit(m, r->memory_limit_bytes, e, sizeof e) != 0) {
        rt_module_release(m);
        m = NULL;
    }
    /* Every call queued now waited for the module: a cold start. */
    uint64_t now = eng_now_ns();
    for (srv_call_t *c = r->queue.head; c; c = c->next) {
        c->cold = true;
        c->load_ns = now - c->start_ns;
    }
    if (m) {
        module_loads_count(s, src);
        r->mod = m; /* NULL until now: rev_module_get starts no find while loading */
        cache_gauges(s);
        rev_pump(s, r);
        rev_refill(s, r);
    } else {
        char line[400];
        int n = snprintf(line, sizeof line, "wasmfn: cannot load module %s: %s", r->digest, e);
        if (r->fn->log) lr_ring_append(r->fn->log, r->name, line, n > 0 ? (size_t)n : 0);
        r->warm_failed = true; /* the next call or tick tries again */
        while (r->queue.head) {
            srv_call_t *c = r->queue.head;
            rev_conc_update(r, now);
            list_remove(&r->queue, c);
            call_count_cold(s, c);
            call_finish_text(s, c, 502, "function %s: cannot load module %s: %s\n", r->fn->name,
                             r->digest, e);
        }
    }
    rev_gauges(s, r);
    rev_unpin_if_idle(s, r);
    rev_release(r);
}

/* Gets r's module back: 1 when r has it (it was still cached), 0 when it
 * is being loaded on a worker (load_done dispatches the queued calls), -1
 * when out of memory. */
static int rev_module_get(srv_t *s, srv_rev_t *r)
{
    if (r->mod) return 1;
    if (r->load) return 0;
    rt_module_t *m = rt_cache_find(s->cache, r->digest);
    if (m) {
        r->mod = m;
        cache_gauges(s);
        return 1;
    }
    srv_load_t *l = calloc(1, sizeof *l);
    if (!l || !(l->ml = rt_module_load_new(s->cache, r->digest))) {
        free(l);
        return -1;
    }
    rt_module_load_limits(l->ml, r->memory_limit_bytes, (uint64_t)r->timeout_ms * 1000000ull);
    l->srv = s;
    l->rev = r;
    r->refs++;
    r->load = l;
    l->next = s->loads;
    if (s->loads) s->loads->prev = l;
    s->loads = l;
    l->job.work = load_work;
    l->job.done = load_done;
    l->job.ud = l;
    rt_pool_submit(s->pool, &l->job, true); /* requests wait for it */
    return 0;
}

/* ---- warm instances ----------------------------------------------------- */

static void warm_work(rt_job_t *j, eng_exec_t *x)
{
    srv_warm_t *w = j->ud;
    srv_rev_t *r = w->rev;
    rt_instance_config_t cfg = {
        .name = r->fn->name,
        .env = (const char *const *)r->env,
        .nenv = r->nenv,
        .memory_limit_bytes = r->memory_limit_bytes,
        .deadline_ns = eng_now_ns() + (uint64_t)r->timeout_ms * 1000000ull,
    };
    w->inst = rt_instance_new(r->mod, &cfg, x, w->err, sizeof w->err);
}

/* How many idle warm instances the revision should hold. The autoscaler's
 * desired count is all instances, busy ones included (Knative's desired
 * pods), so the warm pool only makes up the difference: under a load of N
 * concurrent requests with desired N, no extra N instances are kept idle. */
static uint32_t rev_warm_want(const srv_rev_t *r)
{
    return r->desired > r->busy ? r->desired - r->busy : 0;
}

/* What the autoscaler wants, within the revision's share of the node's
 * budget (node_share). */
static uint32_t rev_warm_target(const srv_rev_t *r)
{
    uint32_t want = rev_warm_want(r);
    return want < r->warm_allowed ? want : r->warm_allowed;
}

static void warm_done(rt_job_t *j)
{
    srv_warm_t *w = j->ud;
    srv_t *s = w->srv;
    srv_rev_t *r = w->rev;
    r->warming--;
    if (!w->inst) {
        char line[320];
        int n = snprintf(line, sizeof line, "wasmfn: cannot instantiate: %s", w->err);
        if (r->fn->log) lr_ring_append(r->fn->log, r->name, line, n > 0 ? (size_t)n : 0);
        r->warm_failed = true;
        node_sub(s, r, 1);
    } else if (r->retired || s->draining || s->freeing || r->nwarm >= rev_warm_target(r)) {
        rt_instance_free(w->inst);
        node_sub(s, r, 1);
    } else {
        if (r->nwarm == r->warm_cap) {
            uint32_t cap = r->warm_cap ? r->warm_cap * 2 : 4;
            rt_instance_t **n = realloc(r->warm, cap * sizeof *n);
            if (!n) {
                rt_instance_free(w->inst);
                node_sub(s, r, 1);
                goto out;
            }
            r->warm = n;
            r->warm_cap = cap;
        }
        r->warm[r->nwarm++] = w->inst;
        rev_gauges(s, r);
    }
out:
    free(w);
    rev_refill(s, r);
    rev_unpin_if_idle(s, r);
    rev_release(r);
}

/* Starts background instantiations until warm + warming reaches the warm
 * target. */
static void rev_refill(srv_t *s, srv_rev_t *r)
{
    if (r->retired || s->draining || s->freeing || r->warm_failed) return;
    if (r->nwarm + r->warming >= rev_warm_target(r)) return;
    if (!r->mod && rev_module_get(s, r) != 1) return; /* load_done refills */
    uint32_t warm_budget = node_warm_budget(s);
    while (r->nwarm + r->warming < rev_warm_target(r) && node_room(s, r, warm_budget)) {
        srv_warm_t *w = calloc(1, sizeof *w);
        if (!w) return;
        w->srv = s;
        w->rev = r;
        r->refs++;
        r->warming++;
        node_add(s, r, 1);
        w->job.work = warm_work;
        w->job.done = warm_done;
        w->job.ud = w;
        rt_pool_submit(s->pool, &w->job, false);
    }
}

/* Keeps the warm pool at its target: frees extras, starts missing ones. */
static void rev_apply_desired(srv_t *s, srv_rev_t *r)
{
    while (r->nwarm > rev_warm_target(r)) {
        rt_instance_free(r->warm[--r->nwarm]);
        node_sub(s, r, 1);
    }
    if (r->nwarm == 0 && r->warm_cap > 16) {
        free(r->warm);
        r->warm = NULL;
        r->warm_cap = 0;
    }
    r->warm_failed = false;
    rev_refill(s, r);
    rev_gauges(s, r);
    rev_unpin_if_idle(s, r);
}

/* ---- calls -------------------------------------------------------------- */

static srv_call_t *call_alloc(srv_t *s)
{
    srv_call_t *c = s->free_calls;
    if (c) {
        s->free_calls = c->next;
        s->nfree_calls--;
        memset(c, 0, offsetof(srv_call_t, cgi));
        c->cgi.nheaders = 0;
    } else {
        c = calloc(1, sizeof *c);
    }
    return c;
}

static void call_free(srv_t *s, srv_call_t *c)
{
    free(c->env);
    free(c->body_copy);
    free(c->res.out);
    if (c->inst) rt_instance_free(c->inst);
    if (s->nfree_calls < SRV_CALL_FREELIST && !s->freeing) {
        c->next = s->free_calls;
        s->free_calls = c;
        s->nfree_calls++;
    } else {
        free(c);
    }
}

static void srv_on_drained(uv_timer_t *t)
{
    srv_t *s = t->data;
    void (*done)(void *) = s->drain_done;
    s->drain_done = NULL;
    if (done) done(s->drain_ud); /* may call srv_free */
}

/* Once drained, the callback runs from a timer of its own rather than from
 * deep inside a call's completion, so it may free everything. */
static void srv_check_drained(srv_t *s)
{
    if (!s->draining || !s->http_closed || s->ncalls || !s->drain_done || s->freeing) return;
    uv_ref((uv_handle_t *)&s->drained);
    uv_timer_start(&s->drained, srv_on_drained, 0, 0);
}

static void call_log(srv_call_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void call_log(srv_call_t *c, const char *fmt, ...)
{
    srv_fn_t *f = c->rev->fn;
    if (!f->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    lr_ring_append(f->log, c->rev->name, line, (size_t)n);
}

/* Records a call that reached a guest: from the guest's start (run_ns) to
 * the response being handed to the connection. */
static void call_meter(srv_t *s, srv_call_t *c, int status)
{
    uint64_t now = eng_now_ns();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t dur = (int64_t)(now - c->run_ns);
    mtr_invocation_t inv = {
        .function = c->rev->fn->name,
        .revision = c->rev->name,
        .start_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec - dur,
        .duration_ns = dur,
        .cpu_ns = (int64_t)c->res.cpu_ns,
        .peak_memory_bytes = c->res.peak_memory_bytes,
        .memory_limit_bytes = c->rev->memory_limit_bytes,
        .cold_start = c->cold,
        .outcome = status == 504 ? MTR_TIMEOUT : status >= 500 ? MTR_ERROR : MTR_OK,
    };
    mtr_record(s->mtr, &inv);
}

/* Answers a call (unless answered) and frees it; metrics count it. */
static void call_finish(srv_t *s, srv_call_t *c, int status, const hs_header_t *h, size_t nh,
                        const void *body, size_t len)
{
    srv_rev_t *r = c->rev;
    if (s->mx && !r->fn->deleted) {
        char code[8];
        snprintf(code, sizeof code, "%d", c->aborted ? 499 : status);
        const char *lv[] = {r->fn->name, r->name, code};
        if (s->m_requests) mx_counter_add(s->m_requests, lv, 1);
        if (s->m_duration)
            mx_histogram_observe(s->m_duration, r->labels,
                                 (double)(eng_now_ns() - c->start_ns) / 1e9);
    }
    if (s->mtr && c->run_ns)
        call_meter(s, c, status);
    if (c->inv) {
        srv_inv_finish(s->invs, c->inv, status, h, nh, body, len,
                       c->run_ns ? eng_now_ns() - c->run_ns : 0);
        r->async_pending--;
        r->async_bytes -= c->body_len;
        s->async_pending--;
        s->async_bytes -= c->body_len;
        if (s->m_async_pending && !r->fn->deleted)
            mx_gauge_set(s->m_async_pending, r->labels, r->async_pending);
    }
    else
        hs_respond(c->req, status, h, nh, body, len);
    if (--s->ncalls == 0 && !s->freeing) uv_timer_stop(&s->sweep);
    call_free(s, c);
    rev_release(r);
    srv_check_drained(s);
}

static void call_finish_text(srv_t *s, srv_call_t *c, int status, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof body) n = sizeof body - 1;
    hs_header_t h[2] = {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "1"}};
    call_finish(s, c, status, h, status == 503 ? 2 : 1, body, (size_t)n);
}

static void call_work(rt_job_t *j, eng_exec_t *x)
{
    srv_call_t *c = j->ud;
    srv_rev_t *r = c->rev;
    c->run_ns = eng_now_ns();
    if (!c->inst) {
        rt_instance_config_t cfg = {
            .name = r->fn->name,
            .env = (const char *const *)r->env,
            .nenv = r->nenv,
            .memory_limit_bytes = r->memory_limit_bytes,
            .deadline_ns = c->deadline_ns,
        };
        uint64_t t0 = eng_now_ns();
        c->inst = rt_instance_new(r->mod, &cfg, x, c->err, sizeof c->err);
        c->cold_ns = eng_now_ns() - t0;
        c->cold = true;
        if (!c->inst) {
            c->inst_failed = true;
            return;
        }
    }
    rt_request_t rq = {
        .env = (const char *const *)c->env,
        .nenv = c->nenv,
        .stdin_bytes = c->body,
        .stdin_len = c->body_len,
        .deadline_ns = c->deadline_ns,
        .max_stdout_bytes = SRV_MAX_STDOUT,
        .log = r->fn->log,
        .log_source = r->name,
    };
    rt_instance_run(c->inst, x, &rq, &c->res);
    rt_instance_free(c->inst);
    c->inst = NULL;
    if ((c->res.trap == ENG_OK || c->res.trap == ENG_TRAP_EXIT) && !c->res.out_overflow)
        c->cgi_ok = srv_cgi_parse(c->res.out, c->res.out_len, &c->cgi, c->err, sizeof c->err) == 0;
}

/* Leaves the running state (the instance slot is free again). */
static void call_undispatch(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    rev_conc_update(r, eng_now_ns());
    list_remove(&r->running, c);
    r->busy--;
    node_sub(s, r, 1);
    c->state = CALL_NEW;
}

static void call_done(rt_job_t *j)
{
    srv_call_t *c = j->ud;
    srv_t *s = c->srv;
    srv_rev_t *r = c->rev;
    call_undispatch(s, c);
    r->refs++; /* keep r across call_finish */
    const char *fname = r->fn->name;

    call_count_cold(s, c);
    if (c->aborted) {
        call_finish(s, c, 499, NULL, 0, NULL, 0);
    } else if (c->inst_failed) {
        if (eng_now_ns() >= c->deadline_ns) {
            call_log(c, "wasmfn: timed out after %u ms (instantiating)", r->timeout_ms);
            call_finish_text(s, c, 504, "function %s timed out after %u ms\n", fname,
                             r->timeout_ms);
        } else if (strstr(c->err, "cannot reserve") || strstr(c->err, "cannot commit") ||
                   strstr(c->err, "out of memory")) {
            /* The node, not the function, is short of memory or mappings:
             * worth retrying (docs/serving.md, "Node budget"). */
            call_log(c, "wasmfn: cannot instantiate: %s", c->err);
            call_finish_text(s, c, 503, "function %s: no room for an instance: %s\n", fname,
                             c->err);
        } else {
            call_log(c, "wasmfn: cannot instantiate: %s", c->err);
            call_finish_text(s, c, 502, "function %s failed to start: %s\n", fname, c->err);
        }
    } else if (c->res.trap == ENG_TRAP_DEADLINE) {
        call_log(c, "wasmfn: timed out after %u ms", r->timeout_ms);
        call_finish_text(s, c, 504, "function %s timed out after %u ms\n", fname, r->timeout_ms);
    } else if (c->res.trap != ENG_OK && c->res.trap != ENG_TRAP_EXIT) {
        call_log(c, "wasmfn: trap: %s", c->res.message);
        call_finish_text(s, c, 502, "function %s trapped: %s\n", fname, c->res.message);
    } else if (c->res.out_overflow) {
        call_log(c, "wasmfn: response larger than %u bytes", SRV_MAX_STDOUT);
        call_finish_text(s, c, 502, "function %s wrote a response larger than %u bytes\n", fname,
                         SRV_MAX_STDOUT);
    } else if (!c->cgi_ok) {
        if (c->res.trap == ENG_TRAP_EXIT && c->res.exit_code != 0)
            call_log(c, "wasmfn: exited with code %d and no valid CGI response: %s",
                     c->res.exit_code, c->err);
        else
            call_log(c, "wasmfn: bad CGI response: %s", c->err);
        call_finish_text(s, c, 502, "function %s returned a bad CGI response: %s\n", fname,
                         c->err);
    } else {
        if (c->res.trap == ENG_TRAP_EXIT && c->res.exit_code != 0)
            call_log(c, "wasmfn: exited with code %d", c->res.exit_code);
        call_finish(s, c, c->cgi.status, c->cgi.headers, c->cgi.nheaders, c->cgi.body,
                    c->cgi.body_len);
    }
    rev_pump(s, r);
    rev_refill(s, r);
    rev_gauges(s, r);
    rev_unpin_if_idle(s, r);
    rev_release(r);
}

/* Counts a cold start: a call that instantiated inline, or waited for its
 * revision's module to be loaded (the wait is part of its time). */
static void call_count_cold(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    if (!c->cold || !s->mx || r->fn->deleted) return;
    if (s->m_cold) mx_counter_add(s->m_cold, r->labels, 1);
    if (s->m_cold_duration)
        mx_histogram_observe(s->m_cold_duration, r->labels,
                             (double)(c->cold_ns + c->load_ns) / 1e9);
}

static void call_dispatch(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    rev_conc_update(r, eng_now_ns());
    r->busy++;
    c->state = CALL_DISPATCHED;
    list_push(&r->running, c);
    /* A warm instance becomes a busy one: the node's count stays. */
    c->inst = r->nwarm ? r->warm[--r->nwarm] : NULL;
    if (!c->inst) node_add(s, r, 1);
    c->job.work = call_work;
    c->job.done = call_done;
    c->job.ud = c;
    rt_pool_submit(s->pool, &c->job, true);
    rev_refill(s, r);
    rev_gauges(s, r);
}

/* Dispatches queued calls while the revision has room. */
static void rev_pump(srv_t *s, srv_rev_t *r)
{
    if (!r->mod) return; /* load_done pumps */
    uint32_t max = r->scaling.max_scale;
    while (r->queue.head && (max == 0 || r->busy < max)) {
        srv_call_t *c = r->queue.head;
        rev_conc_update(r, eng_now_ns());
        list_remove(&r->queue, c);
        call_dispatch(s, c);
    }
}

/* Puts c at the end of its revision's queue. */
static void call_enqueue(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    rev_conc_update(r, eng_now_ns());
    c->state = CALL_QUEUED;
    list_push(&r->queue, c);
    rev_gauges(s, r);
}

/* A cold start for r finds the node full: frees an idle warm instance of
 * the revision holding the most (a request comes before a spare). Returns
 * whether r's instance fits now. */
static bool node_reclaim(srv_t *s, srv_rev_t *r)
{
    srv_rev_t *most = NULL;
    for (srv_rev_t *o = s->revs; o; o = o->all_next)
        if (o->nwarm && (!most || o->nwarm > most->nwarm)) most = o;
    if (!most) return false;
    rt_instance_free(most->warm[--most->nwarm]);
    node_sub(s, most, 1);
    rev_gauges(s, most);
    return node_room(s, r, s->budget_instances);
}

static void call_admit(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    uint32_t max = r->scaling.max_scale;
    int got = rev_module_get(s, r);
    if (got < 0) {
        call_finish_text(s, c, 503, "function %s: out of memory loading module %s\n",
                         r->fn->name, r->digest);
        return;
    }
    if (got == 0) {
        /* Waiting for the module: as many calls as could run, plus the
         * queue. (Nothing runs while it loads.) */
        uint64_t room = (max ? (uint64_t)max : UINT32_MAX) + s->queue_cap;
        if (r->queue.n >= room) {
            call_finish_text(s, c, 503,
                             "function %s: its module is loading and %u requests are waiting\n",
                             r->fn->name, r->queue.n);
            return;
        }
        call_enqueue(s, c);
        return;
    }
    if (max && r->busy >= max) {
        if (r->queue.n >= s->queue_cap) {
            call_finish_text(s, c, 503,
                             "function %s: all %u instances busy and %u requests queued\n",
                             r->fn->name, max, r->queue.n);
            return;
        }
        call_enqueue(s, c);
        return;
    }
    if (!r->nwarm && !node_room(s, r, s->budget_instances) && !node_reclaim(s, r)) {
        call_finish_text(s, c, 503,
                         "function %s: the node is at its budget of %u live instances\n",
                         r->fn->name, s->budget_instances);
        return;
    }
    call_dispatch(s, c);
}

/* A dispatched call that has not started is pulled back; returns true if
 * it was (the caller then answers it). */
static bool call_recall(srv_t *s, srv_call_t *c)
{
    if (!rt_pool_cancel(s->pool, &c->job)) return false;
    srv_rev_t *r = c->rev;
    call_undispatch(s, c);
    /* A warm instance it took is still unused: give it back. */
    if (c->inst && !r->retired && r->nwarm < r->warm_cap) {
        r->warm[r->nwarm++] = c->inst;
        c->inst = NULL;
        node_add(s, r, 1);
    }
    return true;
}

static void call_on_abort(hs_req_t *req, void *ud)
{
    (void)req;
    srv_call_t *c = ud;
    srv_t *s = c->srv;
    srv_rev_t *r = c->rev;
    c->aborted = true;
    if (c->state == CALL_QUEUED) {
        rev_conc_update(r, eng_now_ns());
        list_remove(&r->queue, c);
        r->refs++;
        call_finish(s, c, 499, NULL, 0, NULL, 0);
        rev_gauges(s, r);
        rev_unpin_if_idle(s, r);
        rev_release(r);
    } else if (c->state == CALL_DISPATCHED) {
        if (call_recall(s, c)) {
            r->refs++;
            call_finish(s, c, 499, NULL, 0, NULL, 0);
            rev_pump(s, r);
            rev_gauges(s, r);
            rev_unpin_if_idle(s, r);
            rev_release(r);
        } else {
            rt_pool_interrupt(s->pool, &c->job);
        }
    }
}

/* Every SRV_SWEEP_MS: 504 for calls whose deadline passed while queued or
 * before a worker picked them up; interrupt running ones (their exec has
 * the same deadline, this only makes sure). */
static void srv_on_sweep(uv_timer_t *t)
{
    srv_t *s = t->data;
    uint64_t now = eng_now_ns();
    for (srv_rev_t *r = s->revs, *rnext; r; r = rnext) {
        rnext = r->all_next;
        r->refs++;
        while (r->queue.head && r->queue.head->deadline_ns <= now) {
            srv_call_t *c = r->queue.head;
            rev_conc_update(r, now);
            list_remove(&r->queue, c);
            if (r->load) {
                call_log(c, "wasmfn: timed out after %u ms (waiting for module %s to load)",
                         r->timeout_ms, r->digest);
                call_finish_text(s, c, 504,
                                 "function %s timed out after %u ms waiting for its module to "
                                 "load\n", r->fn->name, r->timeout_ms);
            } else {
                call_log(c, "wasmfn: timed out after %u ms (queued)", r->timeout_ms);
                call_finish_text(s, c, 504,
                                 "function %s timed out after %u ms waiting for an instance\n",
                                 r->fn->name, r->timeout_ms);
            }
            rev_gauges(s, r);
        }
        for (srv_call_t *c = r->running.head, *next; c; c = next) {
            next = c->next;
            if (c->deadline_ns > now) continue;
            if (call_recall(s, c)) {
                call_log(c, "wasmfn: timed out after %u ms (waiting for a worker)", r->timeout_ms);
                call_finish_text(s, c, 504, "function %s timed out after %u ms\n", r->fn->name,
                                 r->timeout_ms);
                rev_pump(s, r);
                rev_gauges(s, r);
            } else if (!c->interrupted) {
                c->interrupted = true;
                rt_pool_interrupt(s->pool, &c->job);
            }
        }
        rev_unpin_if_idle(s, r);
        rnext = r->all_next; /* read before r may be freed */
        rev_release(r);
    }
}

static int want_cmp(const void *a, const void *b)
{
    uint32_t x = rev_warm_want(*(srv_rev_t *const *)a), y = rev_warm_want(*(srv_rev_t *const *)b);
    return x < y ? -1 : x > y;
}

/* Shares the warm part of the node's budget among the revisions that want
 * warm instances, max-min fairly (water-filling): in order of what they
 * want, each gets the lesser of its want and an equal split of what is
 * left. A revision asking for 100,000 thus gets what the others leave, and
 * never starves them. Sets warm_allowed; call after desired changes. */
static void node_share(srv_t *s)
{
    uint32_t n = 0;
    for (srv_rev_t *r = s->revs; r; r = r->all_next) {
        r->warm_allowed = 0;
        if (!r->retired && rev_warm_want(r)) n++;
    }
    if (!n) return;
    srv_rev_t **v = malloc(n * sizeof *v);
    if (!v) {
        /* Out of memory: an equal split, without the sort. */
        for (srv_rev_t *r = s->revs; r; r = r->all_next)
            if (!r->retired) r->warm_allowed = node_warm_budget(s) / n;
        return;
    }
    uint32_t k = 0;
    for (srv_rev_t *r = s->revs; r; r = r->all_next)
        if (!r->retired && rev_warm_want(r)) v[k++] = r;
    qsort(v, n, sizeof *v, want_cmp);
    uint64_t left = node_warm_budget(s);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t share = left / (n - i), want = rev_warm_want(v[i]);
        v[i]->warm_allowed = (uint32_t)(want < share ? want : share);
        left -= v[i]->warm_allowed;
    }
    free(v);
}

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
        rev_tier_gauge(s, r);
        rev_conc_update(r, now);
        double avg = r->conc_area / (double)dt;
        r->conc_area = 0;
        as_scaler_record(r->scaler, now, avg);
        if (decide) {
            as_decision_t d = as_scaler_decide(r->scaler, now, r->nwarm + r->busy);
            r->desired = d.desired;
        }
    }
    if (!decide) return;
    node_share(s);
    for (srv_rev_t *r = s->revs, *next; r; r = next) {
        next = r->all_next;
        if (!r->retired) rev_apply_desired(s, r);
    }
}

/* ---- the request entry points ------------------------------------------- */

/* Whether the request carries the preference respond-async (RFC 7240):
 * "Prefer: respond-async" or one of a comma-separated list, any case. */
static bool prefers_async(const hs_req_t *req)
{
    for (size_t k = 0; k < req->nheaders; k++) {
        if (strcasecmp(req->headers[k].name, "Prefer") != 0) continue;
        const char *p = req->headers[k].value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',') p++;
            const char *tok = p;
            while (*p && *p != ',' && *p != ';' && *p != '=' && *p != ' ' && *p != '\t') p++;
            if (p - tok == 13 && strncasecmp(tok, "respond-async", 13) == 0) return true;
            while (*p && *p != ',') p++;
        }
    }
    return false;
}

/* An asynchronous call is answered before it runs, so nothing else holds
 * back a client that sends them faster than they run (with max-scale 0
 * none even waits in a queue): each pending one keeps its request body.
 * When taking req would pass a bound on pending calls or their bytes, of
 * revision r or of the process, answers 503 with Retry-After, counts it
 * and returns true. */
static bool async_refuse(srv_t *s, srv_fn_t *f, srv_rev_t *r, hs_req_t *req)
{
    const char *limit;
    char why[160];
    size_t len = req->body_len;
    if (r->async_pending >= s->async_rev_max_pending) {
        limit = "revision";
        snprintf(why, sizeof why, "%u asynchronous invocations of revision %s are pending",
                 r->async_pending, r->name);
    } else if (len > s->async_rev_max_bytes - r->async_bytes) {
        limit = "revision";
        snprintf(why, sizeof why,
                 "asynchronous invocations of revision %s pending with %llu bytes of bodies "
                 "(at most %llu)", r->name, (unsigned long long)r->async_bytes,
                 (unsigned long long)s->async_rev_max_bytes);
    } else if (s->async_pending >= s->async_max_pending) {
        limit = "process";
        snprintf(why, sizeof why, "%u asynchronous invocations are pending", s->async_pending);
    } else if (len > s->async_max_bytes - s->async_bytes) {
        limit = "process";
        snprintf(why, sizeof why,
                 "asynchronous invocations pending with %llu bytes of bodies (at most %llu)",
                 (unsigned long long)s->async_bytes, (unsigned long long)s->async_max_bytes);
    } else {
        return false;
    }
    if (s->mx && !f->deleted) {
        const char *lv[] = {f->name, r->name, limit};
        const char *lc[] = {f->name, r->name, "503"};
        if (s->m_async_rejected) mx_counter_add(s->m_async_rejected, lv, 1);
        if (s->m_requests) mx_counter_add(s->m_requests, lc, 1);
    }
    char body[256];
    int n = snprintf(body, sizeof body, "function %s: %s; retry later\n", f->name, why);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof body) n = sizeof body - 1;
    hs_header_t h[2] = {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "1"}};
    hs_respond(req, 503, h, 2, body, (size_t)n);
    return true;
}

/* script_name: "/fn/NAME" for path routes, "" for Host routes. */
static void srv_call_start(srv_t *s, const char *name, bool by_host, const char *path_raw,
                           hs_req_t *req)
{
    srv_fn_t *f = fn_find(s, name);
    if (!f || f->nroutes == 0) {
        char body[160];
        snprintf(body, sizeof body, "no function '%s'\n", name);
        hs_respond_text(req, 404, body);
        return;
    }
    char stackbuf[1024];
    size_t plen = strlen(path_raw);
    char *path_info = plen < sizeof stackbuf ? stackbuf : malloc(plen + 1);
    if (!path_info) {
        hs_respond_text(req, 500, "out of memory\n");
        return;
    }
    if (cm_pct_decode(path_raw, plen, path_info, 0) < 0) {
        if (path_info != stackbuf) free(path_info);
        hs_respond_text(req, 400, "bad percent-encoding in the request path\n");
        return;
    }
    srv_rev_t *r = f->route_rev[srv_split_pick(f->current, f->percent, f->nroutes)];
    bool async = prefers_async(req);
    if (async && async_refuse(s, f, r, req)) {
        if (path_info != stackbuf) free(path_info);
        return;
    }
    char script[SRV_NAME_MAX + 8] = "";
    if (!by_host) snprintf(script, sizeof script, "/fn/%s", f->name);
    srv_call_t *c = call_alloc(s);
    uint32_t nenv = 0;
    char **env = c ? srv_cgi_env_new(req, script, path_info, &nenv) : NULL;
    if (path_info != stackbuf) free(path_info);
    if (!env) {
        if (c) call_free(s, c);
        hs_respond_text(req, 500, "out of memory\n");
        return;
    }
    c->srv = s;
    c->req = req;
    c->body = req->body;
    c->body_len = req->body_len;
    c->rev = r;
    c->env = env;
    c->nenv = nenv;
    if (async) {
        /* Answer now; the call keeps a copy of the body and reports its
         * outcome to the invocation record instead of the client. */
        if (!req->body_len || (c->body_copy = malloc(req->body_len)))
            c->inv = srv_inv_new(s->invs, f->name, r->name);
        if (!c->inv) {
            call_free(s, c);
            hs_respond_text(req, 500, "out of memory\n");
            return;
        }
        if (req->body_len) memcpy(c->body_copy, req->body, req->body_len);
        c->body = c->body_copy;
        c->req = NULL;
        r->async_pending++;
        r->async_bytes += req->body_len;
        s->async_pending++;
        s->async_bytes += req->body_len;
        if (s->m_async_pending) mx_gauge_set(s->m_async_pending, r->labels, r->async_pending);
        char loc[64], body[128];
        snprintf(loc, sizeof loc, "/v1/invocations/%s", srv_inv_id(c->inv));
        int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"location\":\"%s\"}\n",
                         srv_inv_id(c->inv), loc);
        hs_header_t h[3] = {{"Content-Type", "application/json"}, {"Location", loc},
                            {"Preference-Applied", "respond-async"}};
        hs_respond(req, 202, h, 3, body, (size_t)n);
    }
    r->refs++;
    c->start_ns = eng_now_ns();
    c->deadline_ns = c->start_ns + (uint64_t)r->timeout_ms * 1000000ull;
    if (s->ncalls++ == 0) uv_timer_start(&s->sweep, srv_on_sweep, SRV_SWEEP_MS, SRV_SWEEP_MS);
    if (!c->req) {
        call_admit(s, c);
        return;
    }
    hs_req_on_abort(req, call_on_abort, c);
    if (c->aborted) {
        /* hs_req_on_abort ran the callback at once: the client is gone. */
        call_finish(s, c, 499, NULL, 0, NULL, 0);
        return;
    }
    call_admit(s, c);
}

static void srv_on_request(hs_req_t *req, void *ud)
{
    srv_t *s = ud;
    char name[SRV_NAME_MAX];
    const char *rest;
    if (srv_route_host(hs_req_header(req, "Host"), s->domain, name, sizeof name) == 0) {
        srv_call_start(s, name, true, req->path, req);
    } else if (srv_route_path(req->path, name, sizeof name, &rest) == 0) {
        srv_call_start(s, name, false, rest, req);
    } else if (s->events_fn && strncmp(req->path, "/events/", 8) == 0) {
        /* /events/BROKER: the broker's ingress (Knative's broker-ingress). */
        const char *b = req->path + 8;
        size_t n = strcspn(b, "/");
        if (n == 0 || n >= sizeof name || b[n] != '\0') {
            hs_respond_text(req, 404, "no broker here: use /events/BROKER\n");
            return;
        }
        memcpy(name, b, n);
        name[n] = '\0';
        s->events_fn(s->events_ud, name, req);
    } else {
        hs_respond_text(req, 404,
                        "no function here: use /fn/NAME/... or Host: NAME.default.DOMAIN\n");
    }
}

void srv_set_events_ingress(srv_t *s, void (*fn)(void *ud, const char *broker, hs_req_t *req),
                            void *ud)
{
    s->events_fn = fn;
    s->events_ud = ud;
}

void srv_invoke(srv_t *s, const char *name, const char *path_info, hs_req_t *req)
{
    srv_call_start(s, name, false, path_info ? path_info : "", req);
}

char *srv_invocation_json(srv_t *s, const char *id) { return srv_inv_json(s->invs, id); }

/* ---- modules loaded before a deploy ------------------------------------- */

/* srv_module_prepare: a module load on a worker (like a revision's at
 * zero, srv_load_t), for a deploy waiting on the admin API. */
typedef struct srv_prep {
    rt_job_t job;
    srv_t *srv;
    rt_module_load_t *ml;
    uint64_t memory_limit_bytes;
    srv_prepare_fn done;      /* NULL once cancelled */
    void *ud;
    struct srv_prep *prev, *next; /* srv->preps */
} srv_prep_t;

static void prep_work(rt_job_t *j, eng_exec_t *x)
{
    srv_prep_t *p = j->ud;
    rt_module_load_run(p->ml, x);
}

static void prep_unlink(srv_t *s, srv_prep_t *p)
{
    if (p->prev) p->prev->next = p->next;
    else s->preps = p->next;
    if (p->next) p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* Hands m (held, or NULL with the reason in e) to done, then lets it go:
 * whatever done deployed holds its own reference by then. */
static void prep_report(srv_t *s, rt_module_t *m, uint64_t memory_limit_bytes,
                        srv_prepare_fn done, void *ud, char *e, size_t elen)
{
    if (m && rt_module_check_limit(m, memory_limit_bytes, e, elen) != 0) {
        rt_module_release(m);
        m = NULL;
    }
    if (done) done(ud, m ? NULL : e);
    rt_module_release(m);
    cache_gauges(s);
}

static void prep_done(rt_job_t *j)
{
    srv_prep_t *p = j->ud;
    srv_t *s = p->srv;
    prep_unlink(s, p);
    char e[256];
    rt_load_source_t src;
    rt_module_t *m = rt_cache_load_finish(s->cache, p->ml, &src, e, sizeof e);
    if (m) module_loads_count(s, src);
    srv_prepare_fn done = p->done;
    void *ud = p->ud;
    uint64_t mem = p->memory_limit_bytes;
    free(p);
    prep_report(s, m, mem, done, ud, e, sizeof e);
}

int srv_module_prepare(srv_t *s, const char *digest, uint64_t memory_limit_bytes,
                       uint32_t timeout_ms, srv_prepare_fn done, void *ud)
{
    uint64_t mem = memory_limit_bytes ? memory_limit_bytes : SRV_DEFAULT_MEMORY;
    uint32_t to = timeout_ms ? timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    rt_module_t *m = rt_cache_find(s->cache, digest);
    if (m) {
        char e[256];
        prep_report(s, m, mem, done, ud, e, sizeof e);
        return 0;
    }
    srv_prep_t *p = calloc(1, sizeof *p);
    if (!p || !(p->ml = rt_module_load_new(s->cache, digest))) {
        free(p);
        return -1;
    }
    rt_module_load_limits(p->ml, mem, (uint64_t)to * 1000000ull);
    p->srv = s;
    p->memory_limit_bytes = mem;
    p->done = done;
    p->ud = ud;
    p->next = s->preps;
    if (s->preps) s->preps->prev = p;
    s->preps = p;
    p->job.work = prep_work;
    p->job.done = prep_done;
    p->job.ud = p;
    /* Urgent: a user waits for it. Its guest code (start function,
     * wizer.initialize) runs on a fiber, switched out while requests wait,
     * and stops at the revision's timeout. */
    rt_pool_submit(s->pool, &p->job, true);
    return 0;
}

void srv_module_prepare_cancel(srv_t *s, void *ud)
{
    for (srv_prep_t *p = s->preps; p; p = p->next)
        if (p->ud == ud) p->done = NULL;
}

void srv_module_forget(srv_t *s, const char *digest)
{
    if (rt_cache_forget(s->cache, digest)) cache_gauges(s);
}

/* ---- the node's budget, at start ------------------------------------------ */

/* The budget srv_new starts with (srv_config_t.max_instances), logged once
 * so that an operator sees what the node admits and why. */
static void node_budget_init(srv_t *s, uint32_t max_instances)
{
    uint64_t maps = 65530; /* the kernel's default */
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1 && v > 0) maps = v;
        fclose(f);
    }
    uint64_t usable = maps > 2 * SRV_MAPS_RESERVED ? maps - SRV_MAPS_RESERVED : maps / 2;
    uint64_t by_maps = usable / SRV_MAPS_PER_INSTANCE;
    /* Address space: RLIMIT_AS when set, else x86-64's 128 TiB of user
     * space; a quarter is left to the heap, stacks and native code. */
    struct rlimit rl;
    uint64_t as = 1ull << 47;
    bool as_limited = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    if (as_limited) as = (uint64_t)rl.rlim_cur;
    s->budget_as_bytes = as / 4 * 3;
    uint64_t n = max_instances ? max_instances : by_maps;
    if (n > by_maps) n = by_maps;
    if (n > UINT32_MAX) n = UINT32_MAX;
    s->budget_instances = n ? (uint32_t)n : 1;
    fprintf(stderr,
            "wasmfn: node budget: %u live instances (%s; vm.max_map_count %llu allows %llu at "
            "%u mappings each), %llu GiB of address space for their memories (%s)\n",
            s->budget_instances, max_instances ? "--max-instances" : "from the mappings",
            (unsigned long long)maps, (unsigned long long)by_maps, SRV_MAPS_PER_INSTANCE,
            (unsigned long long)(s->budget_as_bytes >> 30),
            as_limited ? "3/4 of RLIMIT_AS" : "3/4 of the user address space");
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
    s->mtr = c->metering;
    s->cache = rt_cache_new();
    if (s->cache) {
        rt_cache_config_t cc = {
            .max_bytes = c->module_cache_bytes,
            .load_blob = cache_load_blob,
            .artifact_get = c->artifact_get ? cache_artifact_get : NULL,
            .artifact_put = c->artifact_put ? cache_artifact_put : NULL,
            .ud = s,
            .native_get = c->native_get ? cache_native_get : NULL,
            .native_put = c->native_put ? cache_native_put : NULL,
            .native_key = c->native_key,
            .compiler = c->compiler,
            .loop = c->loop,
            .native_done = cache_native_done,
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
    metrics_register(s);
    node_budget_init(s, c->max_instances);
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

int srv_listen(srv_t *s, const char *host_port, char *err, size_t errlen)
{
    if (s->http) {
        snprintf(err, errlen, "the data plane is already listening");
        return -1;
    }
    s->http = hs_server_new(s->loop, &s->limits, srv_on_request, s);
    if (!s->http) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (hs_server_listen(s->http, host_port, err, errlen) != 0) {
        hs_server_close(s->http, NULL, NULL);
        s->http = NULL;
        return -1;
    }
    return 0;
}

uint16_t srv_port(const srv_t *s) { return s->http ? hs_server_port(s->http) : 0; }

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
        rev_free_warm(r);
        rev_gauges(s, r);
        rev_unpin_if_idle(s, r);
    }
    if (s->http) hs_server_close(s->http, srv_on_http_closed, s);
    else s->http_closed = true;
    srv_check_drained(s);
}

static void fn_unlink(srv_t *s, srv_fn_t *f)
{
    srv_fn_t **pp = &s->fns[name_hash(f->name)];
    while (*pp && *pp != f) pp = &(*pp)->hnext;
    if (*pp) *pp = f->hnext;
    f->hnext = NULL;
}

static void fn_retire_revs(srv_t *s, srv_fn_t *f)
{
    for (uint32_t i = 0; i < f->nrevs; i++) rev_retire(s, f->revs[i]);
    f->nrevs = 0;
    f->nroutes = 0;
}

static void srv_on_handle_closed(uv_handle_t *h)
{
    srv_t *s = h->data;
    if (--s->handles_open > 0) return;
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
    /* Module loads whose done will never run now. */
    while (s->preps) {
        srv_prep_t *p = s->preps;
        prep_unlink(s, p);
        rt_module_load_free(p->ml);
        free(p);
    }
    while (s->loads) {
        srv_load_t *l = s->loads;
        srv_rev_t *r = l->rev;
        load_unlink(s, l);
        r->load = NULL;
        rt_module_load_free(l->ml);
        free(l);
        rev_release(r);
    }
    for (uint32_t b = 0; b < SRV_FN_BUCKETS; b++) {
        while (s->fns[b]) {
            srv_fn_t *f = s->fns[b];
            fn_unlink(s, f);
            f->deleted = true;
            fn_retire_revs(s, f);
            fn_release(f);
        }
    }
    while (s->free_calls) {
        srv_call_t *c = s->free_calls;
        s->free_calls = c->next;
        free(c);
    }
    rt_cache_free(s->cache);
    srv_inv_store_free(s->invs);
    free(s->domain);
    uv_close((uv_handle_t *)&s->tick, srv_on_handle_closed);
    uv_close((uv_handle_t *)&s->sweep, srv_on_handle_closed);
    uv_close((uv_handle_t *)&s->drained, srv_on_handle_closed);
}

/* Same module, env and limits: the existing revision object is kept (with
 * its warm instances and scaling history). */
static bool rev_matches(const srv_rev_t *r, const srv_revision_t *d)
{
    if (strcmp(r->name, d->name) != 0 || strcmp(r->digest, d->digest) != 0)
        return false;
    uint64_t mem = d->memory_limit_bytes ? d->memory_limit_bytes : SRV_DEFAULT_MEMORY;
    uint32_t to = d->timeout_ms ? d->timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    if (r->memory_limit_bytes != mem || r->timeout_ms != to || r->nenv != d->nenv) return false;
    for (uint32_t i = 0; i < d->nenv; i++)
        if (strcmp(r->env[i], d->env[i]) != 0) return false;
    return true;
}

static srv_rev_t *rev_new(srv_t *s, srv_fn_t *f, const srv_revision_t *d, char *err,
                          size_t errlen)
{
    /* From memory, else its serialised form, else the compiler: on this
     * thread, unless srv_module_prepare has loaded it already (the admin
     * API does; loading every function at start does not). */
    char e[256];
    rt_load_source_t src = RT_LOAD_CACHED;
    uint64_t mem = d->memory_limit_bytes ? d->memory_limit_bytes : SRV_DEFAULT_MEMORY;
    uint32_t to = d->timeout_ms ? d->timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    rt_module_t *m = rt_cache_find(s->cache, d->digest);
    if (!m) {
        rt_module_load_t *l = rt_module_load_new(s->cache, d->digest);
        if (l) {
            rt_module_load_limits(l, mem, (uint64_t)to * 1000000ull);
            rt_module_load_run(l, NULL);
            m = rt_cache_load_finish(s->cache, l, &src, e, sizeof e);
        } else {
            snprintf(e, sizeof e, "out of memory");
        }
    }
    if (m && rt_module_check_limit(m, mem, e, sizeof e) != 0) {
        rt_module_release(m);
        m = NULL;
    }
    if (!m) {
        snprintf(err, errlen, "revision %s: module %s: %s", d->name, d->digest, e);
        return NULL;
    }
    module_loads_count(s, src);
    cache_gauges(s);
    srv_rev_t *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(d->name)) || !(r->digest = strdup(d->digest)) ||
        !(r->env = strv_dup(d->env, d->nenv))) {
        if (r) {
            free(r->name);
            free(r->digest);
        }
        free(r);
        rt_module_release(m);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->refs = 1; /* the function's */
    r->srv = s;
    r->fn = f;
    f->refs++;
    r->mod = m;
    r->nenv = d->nenv;
    r->memory_limit_bytes = d->memory_limit_bytes ? d->memory_limit_bytes : SRV_DEFAULT_MEMORY;
    r->timeout_ms = d->timeout_ms ? d->timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    r->scaling = d->scaling;
    r->labels[0] = f->name;
    r->labels[1] = r->name;
    uint64_t now = eng_now_ns();
    r->scaler = as_scaler_new(&r->scaling, now);
    r->conc_since_ns = now;
    if (!r->scaler) {
        snprintf(err, errlen, "out of memory");
        rev_release(r);
        return NULL;
    }
    return r;
}

int srv_function_put(srv_t *s, const char *name, const srv_revision_t *revs, uint32_t nrevs,
                     const srv_route_t *routes, uint32_t nroutes, char *err, size_t errlen)
{
    if (!srv_name_valid(name)) {
        snprintf(err, errlen, "function name '%s': want lower-case letters, digits and '-', "
                 "starting with a letter, at most 63", name);
        return -1;
    }
    if (nroutes == 0) {
        snprintf(err, errlen, "function %s: no traffic routes", name);
        return -1;
    }
    uint32_t total = 0;
    for (uint32_t i = 0; i < nroutes; i++) {
        bool found = false;
        for (uint32_t k = 0; k < nrevs && !found; k++)
            found = strcmp(routes[i].revision, revs[k].name) == 0;
        if (!found) {
            snprintf(err, errlen, "function %s: route %u names unknown revision %s", name, i,
                     routes[i].revision);
            return -1;
        }
        if (routes[i].percent > 100) {
            snprintf(err, errlen, "function %s: route %u: percent %u is over 100", name, i,
                     routes[i].percent);
            return -1;
        }
        total += routes[i].percent;
    }
    if (total != 100) {
        snprintf(err, errlen, "function %s: traffic percents add up to %u, not 100", name, total);
        return -1;
    }
    for (uint32_t k = 0; k < nrevs; k++) {
        const char *e = as_config_check(&revs[k].scaling);
        if (e) {
            snprintf(err, errlen, "revision %s: %s", revs[k].name, e);
            return -1;
        }
        for (uint32_t i = 0; i < revs[k].nenv; i++) {
            if (!strchr(revs[k].env[i], '=')) {
                snprintf(err, errlen, "revision %s: env entry '%s' is not KEY=VALUE",
                         revs[k].name, revs[k].env[i]);
                return -1;
            }
        }
    }

    srv_fn_t *old = fn_find(s, name);
    srv_fn_t *f = old;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f || !(f->name = strdup(name)) || !(f->log = lr_ring_new(SRV_LOG_RING_BYTES))) {
            if (f) free(f->name);
            free(f);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        f->refs = 1;
    }
    /* Build the new revision set; on any error nothing changes. */
    srv_rev_t **nr = calloc(nrevs ? nrevs : 1, sizeof *nr);
    bool *reused = calloc(nrevs ? nrevs : 1, sizeof *reused);
    srv_rev_t **route_rev = calloc(nroutes, sizeof *route_rev);
    uint32_t *percent = calloc(nroutes, sizeof *percent);
    int32_t *current = calloc(nroutes, sizeof *current);
    if (!nr || !reused || !route_rev || !percent || !current) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t k = 0; k < nrevs; k++) {
        for (uint32_t i = 0; old && i < old->nrevs && !nr[k]; i++) {
            if (rev_matches(old->revs[i], &revs[k])) {
                nr[k] = old->revs[i];
                reused[k] = true;
            }
        }
        if (!nr[k] && !(nr[k] = rev_new(s, f, &revs[k], err, errlen))) goto fail;
    }
    for (uint32_t i = 0; i < nroutes; i++) {
        for (uint32_t k = 0; k < nrevs; k++)
            if (strcmp(routes[i].revision, revs[k].name) == 0) route_rev[i] = nr[k];
        percent[i] = routes[i].percent;
    }
    /* Commit: retire what is gone, configure what stays, start the new. */
    if (old) {
        for (uint32_t i = 0; i < old->nrevs; i++) {
            bool kept = false;
            for (uint32_t k = 0; k < nrevs && !kept; k++) kept = nr[k] == old->revs[i];
            if (!kept) rev_retire(s, old->revs[i]);
        }
    } else {
        uint32_t b = name_hash(name);
        f->hnext = s->fns[b];
        s->fns[b] = f;
    }
    free(f->revs);
    free(f->route_rev);
    free(f->percent);
    free(f->current);
    f->revs = nr;
    f->nrevs = nrevs;
    f->route_rev = route_rev;
    f->percent = percent;
    f->current = current;
    f->nroutes = nroutes;
    uint64_t now = eng_now_ns();
    for (uint32_t k = 0; k < nrevs; k++) {
        srv_rev_t *r = nr[k];
        if (reused[k]) {
            r->scaling = revs[k].scaling;
            as_scaler_configure(r->scaler, &r->scaling);
            rev_pump(s, r); /* max-scale may have grown */
        } else {
            r->all_next = s->revs;
            if (s->revs) s->revs->all_prev = r;
            s->revs = r;
            as_decision_t d = as_scaler_decide(r->scaler, now, 0);
            r->desired = s->draining ? 0 : d.desired;
        }
    }
    node_share(s);
    for (uint32_t k = 0; k < nrevs; k++) rev_apply_desired(s, nr[k]);
    free(reused);
    return 0;
fail:
    for (uint32_t k = 0; nr && k < nrevs; k++)
        if (nr[k] && !reused[k]) rev_release(nr[k]);
    free(nr);
    free(reused);
    free(route_rev);
    free(percent);
    free(current);
    if (!old) fn_release(f);
    return -1;
}

int srv_function_delete(srv_t *s, const char *name)
{
    srv_fn_t *f = fn_find(s, name);
    if (!f) return -1;
    fn_unlink(s, f);
    fn_retire_revs(s, f);
    f->deleted = true;
    if (s->mx) {
        mx_family_t *fams[] = {s->m_requests, s->m_duration, s->m_cold, s->m_cold_duration,
                               s->m_instances, s->m_queue};
        for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
            if (fams[i]) mx_family_remove_first_label(fams[i], name);
    }
    fn_release(f);
    return 0;
}

int srv_function_status(srv_t *s, const char *name, srv_status_t *out)
{
    srv_fn_t *f = fn_find(s, name);
    if (!f) return -1;
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < f->nrevs; i++) {
        const srv_rev_t *r = f->revs[i];
        out->warm += r->nwarm;
        out->busy += r->busy;
        out->queued += r->queue.n;
        uint32_t want = rev_warm_want(r);
        if (want > r->warm_allowed && !out->warning[0])
            snprintf(out->warning, sizeof out->warning,
                     "revision %s wants %u instances; the node's budget (%u live instances, "
                     "warm ones shared fairly between revisions) allows it %u warm",
                     r->name, r->desired, s->budget_instances, r->warm_allowed);
    }
    return 0;
}

lr_ring_t *srv_function_logs(srv_t *s, const char *name)
{
    srv_fn_t *f = fn_find(s, name);
    return f ? f->log : NULL;
}
