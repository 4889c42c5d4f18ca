/*
 * plane.h — the data plane's objects (srv_t, functions, revisions, calls)
 * and the functions its files share. Private to src/serving/: other
 * subsystems use serving.h. Everything here is used on the loop thread
 * only, except where a field says otherwise.
 *
 * The files, each calling only files listed after it (a DAG, which
 * `make cycles` keeps so):
 *   serving.c     life (srv_new, srv_drain, srv_free) and the tick
 *   request.c     srv_call_submit, the HTTP server and its routing
 *   call.c        the call lifecycle: admit, dispatch, answer, sweep, drain
 *   stats.c       the dashboard's numbers (series.c holds them)
 *   registry.c    srv_function_put/delete/status: revisions and routes
 *   external.c    replicas set by an external scaler (KEDA), usage
 *   cache.c       the module cache's callbacks
 *   revision.c    a revision's module, warm pool and retirement
 *   prepare.c     modules loaded before a deploy, uploads
 *   node.c        the node's instance budget and its fair share
 *   metrics.c     the Prometheus families
 *   fn.c          the table of functions, their reference counts
 *   trace.c       a call's trace context and spans
 *   series.c, invocations.c, wagi.c, route.c   leaves
 * A lower file that must set off something in a higher one goes through
 * a pointer srv_new sets (srv_t's call_dispatch and call_finish_text);
 * what every level asks of a revision is inline below.
 */
#ifndef WASMFN_SERVING_PLANE_H
#define WASMFN_SERVING_PLANE_H

#include "serving/serving.h"

#include <pthread.h>
#include <stdatomic.h>

#include "runtime/runtime.h"
#include "trace/trace.h"
#include "common/percent.h"
#include "serving/internal.h"

#define SRV_DEFAULT_MEMORY (128ull << 20)
#define SRV_DEFAULT_TIMEOUT_MS 30000u
#define SRV_UPLOAD_INIT_TIMEOUT_MS 1000u /* an upload's initialiser (prepare.c) */
#define SRV_DEFAULT_QUEUE 100u
#define SRV_MAX_STDOUT (16u << 20)
#define SRV_LOG_RING_BYTES (1u << 20)
#define SRV_TICK_MS 1000
/* Runs on the event loop (call.c): how long a revision whose run was
 * given up waits before its next try (doubling from MIN up to MAX while
 * tries keep failing). */
#define SRV_LOOP_BACKOFF_MIN_NS 1000000000ull
/* ... and how much of each millisecond of the loop's clock (uv_now) runs
 * guests at most: past it, guests go to workers until the next one, so
 * the loop always keeps half its time for connections and timers. */
#define SRV_LOOP_SHARE_NS 500000u
#define SRV_LOOP_BACKOFF_MAX_NS 60000000000ull
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
    srv_call_done_fn done;   /* NULL for an asynchronous call (answered already) */
    void *done_ud;
    bool *finished;          /* srv_call_submit's flag: set when the call ends */
    uint32_t timeout_ms;     /* deadline from arrival: the revision's timeout or shorter */
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
    bool on_loop;            /* its guest runs as a trial on the loop thread */
    uint64_t cold_ns;
    uint64_t load_ns;        /* time waiting for the module to load (loop) */
    uint64_t guest_ns, guest_end_ns; /* the guest's run (worker): after any instantiation */
    /* Observability (trace.c): the invocation id (the asynchronous
     * record's, else a fresh one), the SERVER span's context and its
     * parent (a valid traceparent from the client), the trace id for log
     * lines ("" when none), the guest's HTTP_TRACEPARENT, what triggered
     * the call (faas.trigger), and the request's method, path (without
     * the query; cut at 255 bytes) and client address, kept because the
     * caller's request is not (an asynchronous call is answered early, an
     * in-process one has none). */
    char invocation_id[SRV_INV_ID_LEN + 1];
    tr_ctx_t tr_ctx, tr_parent;
    bool tr_has_parent;
    char trace_id[33];
    char traceparent_env[sizeof "HTTP_TRACEPARENT=" + TR_TRACEPARENT_LEN];
    const char *trigger;
    char method[16];
    char url_path[256];
    char client_addr[64];
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

/* A revision's series of the metrics every request updates
 * (srv_rev_series). */
typedef enum srv_rev_series {
    SRV_RS_WARM,           /* wasmfn_instances{state="warm"} */
    SRV_RS_BUSY,           /* wasmfn_instances{state="busy"} */
    SRV_RS_QUEUE,          /* wasmfn_queue_depth */
    SRV_RS_DURATION,       /* wasmfn_request_duration_seconds */
    SRV_RS_COLD,           /* wasmfn_cold_starts_total */
    SRV_RS_COLD_DURATION,  /* wasmfn_cold_start_duration_seconds */
    SRV_RS_LOOP_RAN,       /* wasmfn_loop_runs_total{outcome="ran"} */
    SRV_RS_LOOP_HANDED_OFF,/* wasmfn_loop_runs_total{outcome="handed_off"} */
    SRV_RS_REQUESTS,       /* wasmfn_requests_total{code=requests_code} */
    SRV_RS_N
} srv_rev_series_t;

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
    char **allowed_hosts; /* one block, NULL-terminated */
    uint32_t nallowed_hosts;
    struct ho_policy *http_policy; /* made from allowed_hosts; instances hold references */
    uint64_t memory_limit_bytes;
    uint32_t timeout_ms;
    uint32_t cpu_limit_millis, cpu_request_millis; /* 0 = none */
    uint64_t memory_request_bytes;
    as_config_t scaling;
    as_scaler_t *scaler;
    struct kv_grant *kv;      /* its wasmfn_kv stores; its instances borrow it */
    char **kv_stores;         /* the names, as given (srv_rev_matches) */
    uint32_t nkv_stores;
    int32_t ext_replicas;     /* set by an external scaler (external.c); -1 = none */
    /* Runs on the event loop (call.c): none before loop_after_ns; the
     * wait after the last given-up run (0: the last one ran). */
    uint64_t loop_after_ns, loop_backoff_ns;
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
    int64_t shown[3];         /* warm, busy, queued as the gauges last showed them; -1 = never */
    /* Its series of the per-request metrics, found at first use
     * (srv_rev_series); series[SRV_RS_REQUESTS] is the requests counter
     * of status requests_code. */
    mx_series_t *series[SRV_RS_N];
    int requests_code;
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
    uint32_t max_scale;  /* its revisions' largest max-scale, 0 = unbounded (srv->fns_mu) */
    struct srv_series *series; /* the dashboard's last hour (stats.c), or NULL */
    /* Usage for srv_function_usage (external.c): added on the loop, read
     * by any thread that found f under srv->fns_mu. */
    _Atomic uint64_t cpu_ns, memory_kib_ms;
    _Atomic uint32_t cpu_request_millis;
    _Atomic uint64_t memory_request_bytes;
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
    rt_onloop_t *onloop;     /* runs on the loop thread; NULL: none */
    uint64_t loop_slice_ns;
    uint64_t loop_tick;      /* uv_now when loop_spent_ns began */
    uint64_t loop_spent_ns;  /* guests' time on the loop since */
    rt_cache_t *cache;
    struct ho_client *outbound; /* srv_config_t's; NULL: outbound refused */
    struct kv *kv;           /* wasmfn_kv's backend, or NULL */
    hs_server_t *http;
    srv_fn_t *fns[SRV_FN_BUCKETS]; /* changed on the loop under fns_mu */
    /* Guards changes of fns[] and of each function's max_scale, so that
     * srv_function_max_scale may look them up from any thread; the loop
     * thread (the only writer) reads them without it. */
    pthread_mutex_t fns_mu;
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
    mx_family_t *m_loop_runs;
    mx_family_t *m_cache_bytes, *m_module_loads;
    mx_family_t *m_cache_pinned_bytes, *m_cache_modules, *m_cache_evictions;
    mx_family_t *m_tier, *m_compile_seconds, *m_compiles;
    mx_family_t *m_async_pending, *m_async_rejected;
    uint64_t evictions_seen;  /* rt_cache_stats' count already added to m_cache_evictions */
    tr_tracer_t *tracer;      /* NULL: no spans (srv_config_t) */
    bool server_timing;
    struct srv_ext *ext;      /* external scalers' replicas by function (external.c) */
    /* call.c's srv_call_dispatch and srv_call_finish_text, set by srv_new.
     * revision.c sits below call.c (every step of a call calls into its
     * revision), yet a revision's state is what frees room for its queued
     * calls (srv_rev_pump: its module loaded, its bound grown) or fails
     * them (its module cannot be loaded): it reaches them through these,
     * as http's server reaches its handler through hs_server_t.process. */
    void (*call_dispatch)(srv_t *s, srv_call_t *c);
    void (*call_finish_text)(srv_t *s, srv_call_t *c, int status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
};

/* srv_module_prepare: a module load on a worker (like a revision's at
 * zero, srv_load_t), for a deploy waiting on the admin API. */
typedef struct srv_prep {
    rt_job_t job;
    srv_t *srv;
    rt_module_load_t *ml;
    uint64_t memory_limit_bytes;
    srv_prepare_fn done;      /* NULL once cancelled */
    srv_upload_fn up_done;    /* srv_module_upload's instead (NULL once cancelled) */
    void *ud;
    struct srv_prep *prev, *next; /* srv->preps */
} srv_prep_t;

/* ---- revisions and their queues, read by every layer -------------------- */

/* These answer from a revision's fields alone and sit here, inline, rather
 * than in one file, because files at every level ask them (call.c at each
 * admission, revision.c's pump, node.c's sharing, registry.c's status):
 * in any one file they would be a call back up. */

/* How many idle warm instances the revision should hold. The autoscaler's
 * desired count is all instances, busy ones included (Knative's desired
 * pods), so the warm pool only makes up the difference: under a load of N
 * concurrent requests with desired N, no extra N instances are kept idle. */
static inline uint32_t srv_rev_warm_want(const srv_rev_t *r)
{
    return r->desired > r->busy ? r->desired - r->busy : 0;
}

/* The most calls r may run at once: its max-scale (0 = unbounded), or the
 * replicas an external scaler holds it at (external.c), at least 1. */
static inline uint32_t srv_rev_max_busy(const srv_rev_t *r)
{
    if (r->ext_replicas < 0) return r->scaling.max_scale;
    return r->ext_replicas > 0 ? (uint32_t)r->ext_replicas : 1;
}

/* Takes c out of l (a revision's queue or running list). */
static inline void srv_list_remove(call_list_t *l, srv_call_t *c)
{
    if (c->prev) c->prev->next = c->next;
    else l->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

/* ---- shared between the data plane's files ------------------------------ */


/* fn.c: the table of functions (link and unlink change it under fns_mu)
 * and their reference counts. */
srv_fn_t *srv_fn_find(srv_t *s, const char *name);
void srv_fn_link(srv_t *s, srv_fn_t *f);
void srv_fn_unlink(srv_t *s, srv_fn_t *f);
void srv_fn_release(srv_fn_t *f);

/* registry.c */
void srv_fn_retire_revs(srv_t *s, srv_fn_t *f);

/* call.c */
srv_call_t *srv_call_alloc(srv_t *s);
void srv_call_free(srv_t *s, srv_call_t *c);
void srv_call_finish(srv_t *s, srv_call_t *c, int status, const hs_header_t *h, size_t nh,
                        const void *body, size_t len);
void srv_call_finish_text(srv_t *s, srv_call_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void srv_call_dispatch(srv_t *s, srv_call_t *c);
void srv_call_admit(srv_t *s, srv_call_t *c);
void srv_call_on_abort(hs_req_t *req, void *ud);
void srv_on_sweep(uv_timer_t *t);
void srv_check_drained(srv_t *s);

/* node.c */
void srv_node_add(srv_t *s, const srv_rev_t *r, uint32_t n);
void srv_node_sub(srv_t *s, const srv_rev_t *r, uint32_t n);
bool srv_node_room(const srv_t *s, const srv_rev_t *r, uint32_t limit);
uint32_t srv_node_warm_budget(const srv_t *s);
bool srv_node_reclaim(srv_t *s, srv_rev_t *r);
void srv_node_share(srv_t *s);
void srv_node_budget_init(srv_t *s, uint32_t max_instances);

/* metrics.c */
void srv_metrics_register(srv_t *s);
void srv_cache_gauges(srv_t *s);
void srv_module_loads_count(srv_t *s, rt_load_source_t src);
void srv_rev_tier_gauge(srv_t *s, srv_rev_t *r);
void srv_rev_gauges(srv_t *s, srv_rev_t *r);
void srv_call_count_cold(srv_t *s, srv_call_t *c);
/* r's series k of the per-request metrics (mx_series: no lookup once
 * found), or NULL without metrics. The caller checks that r's function is
 * not deleted: its series go with it. */
mx_series_t *srv_rev_series(srv_t *s, srv_rev_t *r, srv_rev_series_t k);
/* r's series of wasmfn_requests_total for that status. */
mx_series_t *srv_rev_requests(srv_t *s, srv_rev_t *r, int status);

/* cache.c: rt_cache_config_t's callbacks (ud is the srv_t). */
int srv_cache_load_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                           size_t errlen);
int srv_cache_artifact_get(void *ud, const char *digest, uint8_t **bytes, size_t *len,
                              char *err, size_t errlen);
int srv_cache_artifact_put(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                              char *err, size_t errlen);
int srv_cache_native_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                            size_t errlen);
int srv_cache_native_put(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                            char *err, size_t errlen);
void srv_cache_native_done(void *ud, const char *digest, bool ok, uint64_t ns, const char *err);

/* revision.c */
void srv_rev_free_warm(srv_rev_t *r);
void srv_rev_release(srv_rev_t *r);
void srv_rev_retire(srv_t *s, srv_rev_t *r);
void srv_rev_conc_update(srv_rev_t *r, uint64_t now);
void srv_rev_unpin_if_idle(srv_t *s, srv_rev_t *r);
void srv_load_unlink(srv_t *s, srv_load_t *l);
int srv_rev_module_get(srv_t *s, srv_rev_t *r);
void srv_rev_refill(srv_t *s, srv_rev_t *r);
void srv_rev_apply_desired(srv_t *s, srv_rev_t *r);

void srv_rev_pump(srv_t *s, srv_rev_t *r);
bool srv_rev_matches(const srv_rev_t *r, const srv_revision_t *d);
srv_rev_t *srv_rev_new(srv_t *s, srv_fn_t *f, const srv_revision_t *d, char *err,
                          size_t errlen);

/* external.c */
void srv_ext_refresh(srv_t *s, srv_fn_t *f);
void srv_ext_account(srv_rev_t *r, uint64_t cpu_ns, uint64_t memory_bytes, uint64_t run_ns);
void srv_ext_free(srv_t *s);

/* prepare.c */
void srv_prep_unlink(srv_t *s, srv_prep_t *p);

/* stats.c: a finished call (before it is freed), and the tick's instances. */
/* now_ns: eng_now_ns(); wall_ns: CLOCK_REALTIME, both read at the end of
 * the call (srv_call_finish reads each clock once for all it records). */
void srv_stats_call(srv_t *s, const srv_call_t *c, int status, uint64_t now_ns, int64_t wall_ns);
void srv_stats_tick(srv_t *s);
/* trace.c: observability of calls (docs/observability.md). */
/* At the call's start (req still there): its invocation id, trace context
 * (the client's traceparent honoured), trigger, and the guest's
 * HTTP_TRACEPARENT / HTTP_TRACESTATE in c->env. */
void srv_call_trace_start(srv_t *s, srv_call_t *c, const hs_req_t *req);
/* Writes "queue;dur=MS, cold;dur=MS, run;dur=MS" for a call ending now. */
#define SRV_TIMING_LEN 128
void srv_call_server_timing(const srv_call_t *c, uint64_t now_ns, char out[SRV_TIMING_LEN]);
/* At the call's end: its spans (the SERVER span and the queue, module
 * load, instantiation and run under it) go to the tracer. */
void srv_call_trace_end(srv_t *s, srv_call_t *c, int status, uint64_t now_ns);

#endif
