/*
 * serving.h — the HTTP data plane: functions, revisions, traffic splits,
 * the per-revision request queue (Knative's activator), autoscaled warm
 * instances and the WAGI (CGI over WASI) request/response mapping.
 * Prefix: srv_.
 *
 * The admin API (src/api) owns persistence and manifests; it tells the data
 * plane what to serve with srv_function_put/delete. Everything here runs on
 * the event loop thread, except guest code, which runs on worker threads
 * (src/runtime).
 */
#ifndef WASMFN_SERVING_H
#define WASMFN_SERVING_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "autoscale/autoscale.h"
#include "http/http.h"
#include "common/logring.h"
#include "common/metrics.h"
#include "metering/metering.h"

typedef struct srv srv_t;

#define SRV_ASYNC_MAX_PENDING 10000u
#define SRV_ASYNC_MAX_BYTES (512ull << 20)
#define SRV_ASYNC_MAX_PENDING_PER_REVISION 1000u
#define SRV_ASYNC_MAX_BYTES_PER_REVISION (128ull << 20)

/* Runs on the event loop (srv_config_t.loop_slice_ns): the default slice
 * and the longest one allowed. */
#define SRV_LOOP_SLICE_NS 50000u
#define SRV_LOOP_SLICE_MAX_NS 1000000u

typedef struct srv_config {
    uv_loop_t *loop;
    const char *domain;            /* Host routing: NAME.default.DOMAIN; default "localhost" */
    uint32_t workers;              /* threads running guests; 0 = number of CPUs */
    hs_limits_t limits;            /* data plane request limits */
    uint32_t queue_per_revision;   /* requests waiting beyond max-scale; default 100 */
    /* Pending asynchronous invocations (accepted with 202, not yet ended):
     * beyond any of these bounds a new one gets 503 with Retry-After.
     * Bytes are their request bodies. 0 = the defaults (SRV_ASYNC_*). */
    uint32_t async_max_pending;            /* whole process; default 10,000 */
    uint64_t async_max_bytes;              /* whole process; default 512 MiB */
    uint32_t async_max_pending_per_revision; /* default 1,000 */
    uint64_t async_max_bytes_per_revision; /* default 128 MiB */
    /* The node's budget of live instances (warm, warming and busy, over
     * every function). 0 = what the memory mappings allow
     * (vm.max_map_count); the address space (RLIMIT_AS, else the user
     * address space) bounds their memory slots too. srv_new logs the
     * budget. Warm instances take at most 3/4 of it, shared fairly between
     * revisions; a request that finds no room gets 503 with Retry-After. */
    uint32_t max_instances;
    /* Runs on the event loop (docs/serving.md, "Runs on the event loop"):
     * a revision whose module may make trial runs (rt_module_trial_safe)
     * has its requests' guests run by the loop thread itself for up to
     * this long, skipping the hand-off to a worker; one that takes longer
     * or would wait is given up unseen and run again on a worker. 0 = the
     * default, SRV_LOOP_SLICE_NS; no_loop_runs: never. */
    uint64_t loop_slice_ns;
    bool no_loop_runs;
    mx_registry_t *metrics;        /* where srv registers its metric families */
    mtr_t *metering;               /* every invocation is recorded here; may be NULL */
    /* Reads a module by digest ("sha256:HEX") into a malloc'd buffer.
     * Returns 0, or -1 with a message. Called on the loop thread (at
     * deploy) and on pool workers (reloading an evicted module), possibly
     * at the same time: it must be thread-safe (the store's files are). */
    int (*load_blob)(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen);
    void *load_blob_ud;
    /* Compiled modules kept next to the blobs (optional; any thread, as
     * load_blob):
     * get returns 0 with a malloc'd buffer, 1 when there is none, -1 on
     * error; put returns 0 or -1. A module not in memory is loaded from
     * its artefact instead of being compiled (runtime.h, rt_cache_load). */
    int (*artifact_get)(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                        size_t errlen);
    int (*artifact_put)(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                        char *err, size_t errlen);
    void *artifact_ud;
    uint64_t module_cache_bytes;   /* bound on cached compiled modules; 0 = 256 MiB */
    /* Native code (optional, runtime.h rt_cache_config_t): stored sealed
     * artefacts (any thread, as artifact_get/put; ud is artifact_ud), the
     * key that seals them, and the compiler that makes new ones in the
     * background. */
    int (*native_get)(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                      size_t errlen);
    int (*native_put)(void *ud, const char *digest, const uint8_t *bytes, size_t len, char *err,
                      size_t errlen);
    const uint8_t *native_key;
    struct rt_compiler *compiler;
    /* Outbound HTTP for guests (src/host/http_out.h): the client their
     * requests run on; NULL = every request refused. */
    struct ho_client *outbound;
    /* wasmfn_kv's backend (host/kv.h), for the stores revisions are
     * granted; NULL = none (every open answers "no such store"). */
    struct kv *kv;
    /* Observability (docs/observability.md). tracer: where each call's
     * spans go (trace/trace.h); NULL records none and passes the client's
     * traceparent to the guest untouched. no_server_timing: leave out the
     * Server-Timing header (queue, cold and run durations) of answers. */
    struct tr_tracer *tracer;
    bool no_server_timing;
} srv_config_t;

srv_t *srv_new(const srv_config_t *c, char *err, size_t errlen);
/* Starts the data plane listener on "HOST:PORT". */
int srv_listen(srv_t *s, const char *host_port, char *err, size_t errlen);
uint16_t srv_port(const srv_t *s);
/* SIGTERM: stop accepting, let queued and running requests finish (each is
 * bounded by its revision's timeout), then call done(ud). */
void srv_drain(srv_t *s, void (*done)(void *ud), void *ud);
void srv_free(srv_t *s);

/* One revision as the data plane needs it. Strings are copied. */
typedef struct srv_revision {
    const char *name;        /* "hello-00002" */
    const char *digest;      /* "sha256:HEX" of its module */
    const char *const *env;  /* "KEY=VALUE" entries */
    uint32_t nenv;
    uint64_t memory_limit_bytes; /* 0 = default (128 MiB) */
    uint32_t timeout_ms;         /* 0 = default (30 s) */
    as_config_t scaling;         /* min/max/initial scale, target, window */
    const char *const *allowed_hosts; /* outbound HTTP destinations (checked) */
    uint32_t nallowed_hosts;
    const char *const *kv_stores; /* wasmfn_kv stores it may open (wasmfn.dev/kv-stores) */
    uint32_t nkv_stores;
    /* resources (0 = not set): limits.cpu is enforced on every instance
     * (rt_job_t.cpu_limit_millis); the requests are what KEDA's cpu and
     * memory triggers measure utilization against (srv_function_usage). */
    uint32_t cpu_limit_millis, cpu_request_millis;
    uint64_t memory_request_bytes;
} srv_revision_t;

typedef struct srv_route {
    const char *revision;    /* one of the revisions given */
    uint32_t percent;        /* routes of a function add up to 100 */
} srv_route_t;

/* Installs or replaces function `name`: the revisions that its routes
 * name, and the routes. Modules not yet compiled are loaded and compiled
 * now; on error (naming the revision) nothing changes. Revisions that
 * disappear are drained: their in-flight requests finish. */
int srv_function_put(srv_t *s, const char *name, const srv_revision_t *revs, uint32_t nrevs,
                     const srv_route_t *routes, uint32_t nroutes, char *err, size_t errlen);
/* Returns -1 if there is no such function. */
int srv_function_delete(srv_t *s, const char *name);

/* Loads module `digest` into the module cache on a worker, under a
 * revision's limits (its memory limit, and its timeout for the start
 * function and wizer.initialize; 0 = the defaults), so that a
 * srv_function_put naming it finds it there and does no heavy work on the
 * loop thread. done runs on the loop thread with err NULL when the module
 * is ready (it stays cached at least until done returns) or a one-line
 * reason: "the module cannot start: ..." for one that traps, loops or
 * needs more memory than the limit while initialising. done may run
 * before this returns (the module was cached). Returns 0, or -1 when out
 * of memory (done is not called). */
typedef void (*srv_prepare_fn)(void *ud, const char *err);
int srv_module_prepare(srv_t *s, const char *digest, uint64_t memory_limit_bytes,
                       uint32_t timeout_ms, srv_prepare_fn done, void *ud);
/* The prepares and uploads with this ud will not call done (their owner
 * is going). */
void srv_module_prepare_cancel(srv_t *s, void *ud);
/* An uploaded module (the admin API's POST /v1/blobs), validated through
 * the runtime so that it is compiled once: on a worker its bytes (digest
 * is theirs) are decoded, validated and compiled, and a module that can
 * run as a function stays in the module cache (unpinned: the LRU may drop
 * it; its artefact is written), where the deploy that names it finds it.
 * Its image is made under the default limits (128 MiB, 30 s). done runs
 * on the loop thread with status 0 (valid, cached), 1 (a valid module that
 * cannot run as a function or not under those limits: err says why; it
 * is not cached) or -1 (not a valid module: err is the engine's message,
 * "at byte 0x1f (code section): ..."); done may run before this returns
 * (the module was cached). bytes must stay valid until done runs. Returns
 * 0, or -1 when out of memory (done is not called). */
typedef void (*srv_upload_fn)(void *ud, int status, const char *err);
int srv_module_upload(srv_t *s, const char *digest, const uint8_t *bytes, size_t len,
                      srv_upload_fn done, void *ud);
/* Drops module `digest` from the module cache if no revision uses it (its
 * revisions were deleted), rather than waiting for the LRU. */
void srv_module_forget(srv_t *s, const char *digest);

typedef struct srv_status {
    uint32_t warm, busy, queued; /* summed over the function's revisions */
    /* Non-empty when a revision wants more instances than the node's
     * budget gives it (srv_config_t.max_instances): one line saying so. */
    char warning[256];
} srv_status_t;
int srv_function_status(srv_t *s, const char *name, srv_status_t *out);
/* The largest max-scale among the function's revisions (0: unknown
 * function, or a revision without a bound). Unlike the rest of srv_, any
 * thread may call it (eventing's consumers size their parallelism by it). */
uint32_t srv_function_max_scale(srv_t *s, const char *name);
/* The tier new instances of module `digest` run in: "native", "interp"
 * (with *detail "compiling", "failed: REASON" or "") or "not loaded". */
const char *srv_module_tier(srv_t *s, const char *digest, const char **detail);
/* The function's stderr ring, or NULL. */
lr_ring_t *srv_function_logs(srv_t *s, const char *name);

/* ---- external scaling (external.c): KEDA's ScaledObject ---------------- */

/* Hands function name's instance count to an external scaler: replicas >= 0
 * holds the function's routed revisions at that many instances (split by
 * their traffic percent, rounded up, at least 1 each when replicas > 0),
 * as their warm-pool target and their bound on concurrent instances (at
 * least 1, so a request to a function held at zero still runs, as a cold
 * start); the Knative autoscaler steps aside, though it keeps recording
 * traffic. replicas < 0 hands the function back to the autoscaler. Kept by
 * name: a function deployed later, or a new revision, gets it too. Loop
 * thread. Returns 0, or -1 when out of memory. */
int srv_function_set_replicas(srv_t *s, const char *name, int32_t replicas);

/* What a function's instances have used since it was deployed, for KEDA's
 * cpu and memory triggers, and what its routed revisions request. CPU and
 * memory are counted when each request ends. Any thread (like
 * srv_function_max_scale). */
typedef struct srv_usage {
    uint64_t cpu_ns;            /* CPU time of its guests */
    uint64_t memory_kib_ms;     /* linear memory of its guests, times their run time */
    uint32_t cpu_request_millis; /* requests.cpu, else limits.cpu, of its routed revisions (largest); 0 = none */
    uint64_t memory_request_bytes; /* requests.memory, else limits.memory (largest) */
} srv_usage_t;
/* 0, or -1 when there is no such function. */
int srv_function_usage(srv_t *s, const char *name, srv_usage_t *out);

/* Routes POST /events/BROKER on the data plane to fn (the eventing
 * subsystem's broker ingress). Until it is set such paths are 404. */
void srv_set_events_ingress(srv_t *s, void (*fn)(void *ud, const char *broker, hs_req_t *req),
                            void *ud);

/* ---- calling a function ------------------------------------------------- */

/* One call of a function: what the guest sees as its CGI request. Every
 * way into a function goes through srv_call_submit: the data plane's HTTP
 * handler, the admin API's invoke endpoint (srv_invoke) and eventing's
 * deliveries to Service sinks (in-process: no socket, no extra thread). */
typedef struct srv_call_req {
    const char *function;         /* the function's name */
    const char *method;           /* REQUEST_METHOD */
    const char *path;             /* PATH_INFO still percent-encoded ("/a%20b"); NULL = "" */
    const char *query;            /* QUERY_STRING; NULL = "" */
    const hs_header_t *headers;   /* one HTTP_* variable each (wagi.c); copied by submit */
    size_t nheaders;
    const uint8_t *body;          /* stdin: valid until done runs (async calls copy it) */
    size_t body_len;
    /* The call's deadline from now, when shorter than the revision's
     * timeout (0: the revision's). A call past it ends with 504. */
    uint32_t timeout_ms;
    bool async;                   /* Prefer: respond-async (see srv_invocation_json) */
    bool by_host;                 /* routed by Host: SCRIPT_NAME is "" not "/fn/NAME" */
    /* The connection it arrived on, for REQUEST_URI, REMOTE_ADDR,
     * SERVER_PORT and SERVER_PROTOCOL. NULL / 0 for an in-process call:
     * REQUEST_URI is SCRIPT_NAME + path (+ "?" query), the addresses
     * 127.0.0.1, SERVER_PORT the data plane's, HTTP/1.1. */
    const char *request_uri;
    const char *remote_addr, *local_addr;
    uint16_t remote_port, local_port;
    int http_minor;               /* with request_uri: 0 or 1 */
} srv_call_req_t;

typedef struct srv_call srv_call_t;

/* The answer of a call, on the loop thread: the function's status,
 * headers and body (valid only during the callback), or the data plane's
 * own answer (404 no such function, 400 bad path, 503 queue full, 504
 * timed out, 502 the guest failed, 499 cancelled, 202 for an async call
 * accepted). Runs exactly once per srv_call_submit. */
typedef void (*srv_call_done_fn)(void *ud, int status, const hs_header_t *headers,
                                 size_t nheaders, const void *body, size_t len);

/* Routes rq to a revision of its function (traffic split), then queues or
 * dispatches it like any request (max-scale, queue, node budget, metrics,
 * metering, logs). Returns the call while its answer is pending (for
 * srv_call_cancel), or NULL when done has run already (answered at once:
 * no such function, refused, or an async call accepted). Loop thread. */
srv_call_t *srv_call_submit(srv_t *s, const srv_call_req_t *rq, srv_call_done_fn done,
                            void *ud);
/* The caller no longer wants c's answer (its client went away): a queued
 * or not yet started call ends now, a running guest is interrupted; done
 * runs with 499 (now or when the guest has stopped). Only before done ran. */
void srv_call_cancel(srv_t *s, srv_call_t *c);

/* Serves an HTTP request as the data plane would for function `name` with
 * PATH_INFO path_info (still percent-encoded): srv_call_submit with the
 * request's method, query, headers, body and connection, Prefer:
 * respond-async honoured, cancelled when the client goes away. The admin
 * API's invoke endpoint uses it. Ends the response. */
void srv_invoke(srv_t *s, const char *name, const char *path_info, hs_req_t *req);

/* Asynchronous invocation: a request carrying `Prefer: respond-async`
 * (RFC 7240) is answered at once with 202, `Location:
 * /v1/invocations/ID` and `Preference-Applied: respond-async`, and then
 * runs like any other (queued, counted, logged, same timeout from
 * arrival). Its outcome is kept (docs/serving.md says how long and how
 * much). Returns the record as JSON (malloc'd; free it), or NULL when the
 * id is unknown or was dropped. */
char *srv_invocation_json(srv_t *s, const char *id);

/* The dashboard's numbers (docs/dashboard.md, docs/api.md), as JSON
 * (malloc'd; free it; NULL when out of memory). The data plane keeps each
 * function's last hour in 10-second samples (serving/series.h: about
 * 58 KiB per function that has been called, nothing for the others).
 * window_s is 1..3600, rounded up to whole samples.
 *   srv_stats_json: the node's capacity and, per function, its requests,
 *     requests/s, errors, error rate, p50/p99 latency, cold starts and
 *     their mean time over the window, and its instances now;
 *   srv_function_series_json: the function's samples over the window
 *     (zeros for a function unknown to the data plane);
 *   srv_function_recent_json: its last calls, newest first, at most
 *     limit (at most 50 are kept). */
char *srv_stats_json(srv_t *s, uint32_t window_s);
char *srv_function_series_json(srv_t *s, const char *name, uint32_t window_s);
char *srv_function_recent_json(srv_t *s, const char *name, uint32_t limit);

#endif
