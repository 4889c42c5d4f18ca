/*
 * runtime.h — running guests for the data plane: a pool of worker threads,
 * the compiled-module cache, instance lifecycle, and one WAGI request run in
 * a fresh instance. Prefix: rt_.
 *
 * Threads: the event loop thread owns the pool, the cache and every
 * rt_module reference count; worker threads only run jobs. A job's work
 * function runs on a worker, on a fiber with its own eng_exec_t; its done
 * function runs afterwards on the loop thread (posted with uv_async_send).
 * Nothing here knows HTTP: serving/ builds the CGI environment and parses
 * the CGI response.
 */
#ifndef WASMFN_RUNTIME_H
#define WASMFN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/logring.h"
#include "engine/engine.h"
#include "host/http_out.h"

/* ---- the worker pool ---------------------------------------------------- */

typedef struct rt_pool rt_pool_t;
typedef struct rt_job rt_job_t;

/* Runs on a worker thread, on the job's own fiber. x is the fiber's
 * execution context. */
typedef void (*rt_work_fn)(rt_job_t *job, eng_exec_t *x);
/* Runs on the loop thread once work has returned. */
typedef void (*rt_done_fn)(rt_job_t *job);

/* A unit of work. The caller owns the memory (usually embedded in a larger
 * struct) and must keep it alive until done runs or rt_pool_cancel returns
 * true. Fields after `ud` are the pool's. */
struct rt_job {
    rt_work_fn work;
    rt_done_fn done;
    /* At most this many thousandths of a CPU for the job's guest, over
     * every period of RT_CPU_PERIOD_NS (resources.limits.cpu); 0 = no
     * limit. A guest over its share is parked until the period ends. */
    uint32_t cpu_limit_millis;
    void *ud;
    rt_job_t *next;
    int state;
    eng_exec_t *exec;
    void *task;      /* the fiber running it (pool.c), NULL if none */
};

/* Starts `workers` threads (0 = number of CPUs). Returns NULL with a
 * message on failure. */
rt_pool_t *rt_pool_new(uv_loop_t *loop, uint32_t workers, char *err, size_t errlen);
uint32_t rt_pool_workers(const rt_pool_t *p);
/* Queues a job. Urgent jobs (requests) run before the others (warming
 * instances in the background). */
void rt_pool_submit(rt_pool_t *p, rt_job_t *job, bool urgent);
/* Removes a job that has not started: returns true, and done will not run.
 * Returns false if it is running or finished (done will run or has run). */
bool rt_pool_cancel(rt_pool_t *p, rt_job_t *job);
/* Interrupts a running job's guest (eng_exec_interrupt); no-op otherwise.
 * Best effort: a guest that is about to start may miss it, and is then
 * stopped by its own deadline. */
void rt_pool_interrupt(rt_pool_t *p, rt_job_t *job);
/* Fibers. Every job runs on a fiber of its own (an mmap'd stack with a
 * guard page, and an eng_exec_t with a value stack of
 * RT_FIBER_EXEC_BYTES), so a worker thread is a scheduler: a guest that
 * sleeps in poll_oneoff is parked until its wake time (rt_sleep_until)
 * and a CPU-bound guest is switched out at the engine's interruption
 * checks once it has run RT_SLICE_NS while others wait. Fibers never move
 * between workers. See docs/engine.md ("Fibers"). */
/* Native code recurses on the fiber's stack: 1 MiB lets a guest go as
 * deep as the interpreter's 8,192 frames with frames of up to ~120 bytes.
 * Only the pages a guest touches are memory; the rest is address space
 * (MAP_NORESERVE). C paths of the interpreter need 19 KiB at most. */
#define RT_FIBER_STACK_BYTES (1024u << 10)
#define RT_FIBER_EXEC_BYTES (256u << 10)
#define RT_SLICE_NS (10u * 1000000u)
/* CPU limits (rt_job_t.cpu_limit_millis) are enforced per period of this
 * length, as Linux's CFS bandwidth control does for containers (its
 * default period is also 100 ms): a guest at 500m runs at most 50 ms of
 * CPU in each, then waits, parked, for the next. Only jobs on a fiber are
 * limited (a job that could not get one runs unlimited). */
#define RT_CPU_PERIOD_NS (100u * 1000000u)

/* On a pool fiber: parks the calling guest until until_ns (CLOCK_MONOTONIC,
 * UINT64_MAX = until interrupted) while the worker runs others; returns 0
 * when the time has come and -1 when the guest must stop (x interrupted,
 * its deadline passed, or the pool is stopping). Elsewhere: sleeps the
 * thread the same way, waking every 10 ms to check x. */
int rt_sleep_until(eng_exec_t *x, uint64_t until_ns);
/* Wakers: a guest that waits for something another thread finishes (an
 * outbound HTTP response) parks on a waker the way rt_sleep_until parks
 * on a time. rt_waker_wait, on the guest's fiber, parks it until
 * rt_waker_wake (any thread), until_ns (CLOCK_MONOTONIC; UINT64_MAX =
 * none) or x's stop; it returns 0 when woken (a wake that came before the
 * wait counts: it is remembered until then), 1 when until_ns has come, -1
 * when the guest must stop (as rt_sleep_until). Wakes may be spurious
 * (a wake meant for an earlier wait): the caller re-checks its condition.
 * Off a fiber it waits on a condition variable, waking every 10 ms to
 * check x. A waker serves one waiting guest at a time; rt_waker_free must
 * not race with a wake (the waker's owner makes sure of it). */
typedef struct rt_waker rt_waker_t;
rt_waker_t *rt_waker_new(void);
void rt_waker_free(rt_waker_t *k);
void rt_waker_wake(rt_waker_t *k);
int rt_waker_wait(rt_waker_t *k, eng_exec_t *x, uint64_t until_ns);
/* True when called on a pool fiber. */
bool rt_in_fiber(void);
/* CPU time this thread spent on other fibers while the calling fiber was
 * switched out (grows only while it is parked); 0 outside a fiber. Lets a
 * fiber measure its own CPU time with the thread's CPU clock (cpu_clock.h). */
uint64_t rt_fiber_foreign_cpu_ns(void);

/* Interrupts running jobs, joins the threads and drops queued jobs and
 * undelivered completions (their done never runs). The async handle is
 * closed, so the loop must run once more before uv_loop_close. */
void rt_pool_free(rt_pool_t *p);

/* ---- jobs on the loop thread (onloop.c) --------------------------------- */

/* Runs short jobs on the event loop thread, skipping the hand-off to a
 * worker. For trial runs only (rt_request_t.trial_until_ns): the job's
 * work must not wait, and must be over within tens of microseconds. */
typedef struct rt_onloop rt_onloop_t;
rt_onloop_t *rt_onloop_new(uv_loop_t *loop, char *err, size_t errlen);
/* Runs job's work now, on the calling (loop) thread, on a fiber of the
 * runner's own (its stack bounds the guest's); job->done runs on a later
 * turn of the loop, as for rt_pool_submit. Meanwhile the job is not the
 * pool's: rt_pool_cancel returns false and rt_pool_interrupt does nothing. */
void rt_onloop_run(rt_onloop_t *o, rt_job_t *job);
/* Drops finished jobs whose done has not run (it never will) and closes
 * the handle: the loop must run once more before uv_loop_close. */
void rt_onloop_free(rt_onloop_t *o);

/* ---- native code --------------------------------------------------------- */

/* The key that seals native code kept on disk (native_key.c): DIR/native.key,
 * 32 random bytes made at first use with mode 0600. Refused (-1, with a
 * message naming the fault) when the file is not a regular file owned by
 * this user and readable by it alone: code read back from disk is then
 * never trusted. */
int rt_native_key_load(const char *dir, uint8_t key[ENG_NATIVE_KEY_BYTES], char *err,
                       size_t errlen);

/* Native compiles in child processes (compiler.c): `EXE compile --raw`
 * reads the .wasm on stdin and writes the object on stdout, at low
 * priority, with its address space capped, killed past a timeout. At most
 * max_jobs run at once; the rest wait in order. Loop thread. */
typedef struct rt_compiler rt_compiler_t;
typedef struct rt_compiler_config {
    const char *exe;              /* the wasmfn binary; must outlive the compiler */
    uint32_t max_jobs;            /* 0 = 1 */
    uint64_t memory_limit_bytes;  /* RLIMIT_AS of a compile; 0 = 4 GiB */
    uint64_t timeout_ms;          /* 0 = 10 minutes */
    int nice;                     /* the compiler's niceness (0..19) */
} rt_compiler_config_t;
/* Called on the loop thread with the object (malloc'd; the callee owns it)
 * or NULL and a one-line reason ("stopped" when the compiler is freed). */
typedef void (*rt_compile_done_fn)(void *ud, uint8_t *obj, size_t len, const char *err,
                                   uint64_t elapsed_ns);
rt_compiler_t *rt_compiler_new(uv_loop_t *loop, const rt_compiler_config_t *cfg, char *err,
                               size_t errlen);
/* Queues a compile of wasm (taken: freed by the compiler). -1 when out of
 * memory (done is not called). */
int rt_compiler_submit(rt_compiler_t *c, uint8_t *wasm, size_t len, rt_compile_done_fn done,
                       void *ud);
uint32_t rt_compiler_running(const rt_compiler_t *c);
uint32_t rt_compiler_queued(const rt_compiler_t *c);
/* Reports every job as "stopped" (done runs now) and kills running
 * compilers; rt_compiler_busy stays true until they have exited (the loop
 * must run), then rt_compiler_free frees it. free stops it first. */
void rt_compiler_stop(rt_compiler_t *c);
bool rt_compiler_busy(const rt_compiler_t *c);
void rt_compiler_free(rt_compiler_t *c);

/* ---- compiled modules --------------------------------------------------- */

typedef struct rt_cache rt_cache_t;
typedef struct rt_module rt_module_t;

/* The cache is bounded in bytes (compiled code plus instance image, see
 * module.c): a module with references (serving/: a revision not at zero)
 * is pinned; one without stays cached until the least recently used unpinned modules
 * must go to keep the total under the bound. An evicted module comes back
 * from its serialised form (the artefact callbacks) rather than from the
 * compiler. */
#define RT_CACHE_DEFAULT_BYTES (256ull << 20)

/* The callbacks run on the loop thread from rt_cache_load and
 * rt_cache_compile, and on a worker from rt_module_load_run: when loads run
 * off the loop thread they must be thread-safe (ud shared read-only). */
typedef struct rt_cache_config {
    uint64_t max_bytes; /* 0 = RT_CACHE_DEFAULT_BYTES */
    /* Reads module `digest` (the .wasm) into a malloc'd buffer: 0, or -1
     * with a message. Needed by rt_cache_load. */
    int (*load_blob)(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen);
    /* The compiled form of module `digest`: get returns 0 with a malloc'd
     * buffer, 1 when there is none, -1 on error (with a message); put
     * returns 0 or -1. Either may be NULL (no artefacts). */
    int (*artifact_get)(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                        size_t errlen);
    int (*artifact_put)(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                        char *err, size_t errlen);
    void *ud;
    /* Native code (optional). native_get/native_put keep sealed native
     * artefacts per module digest (eng_native_seal under native_key), as
     * artifact_get/put do the interpreter's form; a load attaches the
     * stored code when it checks. With a compiler, a module without native
     * code is compiled in the background (the .wasm from load_blob) while
     * it serves from the interpreter; new instances run natively once it
     * is attached. native_done (loop thread; may be NULL) hears of every
     * compile, for metrics and logs. */
    int (*native_get)(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                      size_t errlen);
    int (*native_put)(void *ud, const char *digest, const uint8_t *bytes, size_t len, char *err,
                      size_t errlen);
    const uint8_t *native_key;     /* ENG_NATIVE_KEY_BYTES; NULL: none stored or read */
    rt_compiler_t *compiler;       /* NULL: no native compiles */
    uv_loop_t *loop;               /* with a compiler: where the work after it runs */
    void (*native_done)(void *ud, const char *digest, bool ok, uint64_t compile_ns,
                        const char *err);
} rt_cache_config_t;

/* Where rt_cache_load found a module. */
typedef enum rt_load_source {
    RT_LOAD_CACHED,     /* in memory already */
    RT_LOAD_SERIALIZED, /* from its artefact (no compilation) */
    RT_LOAD_COMPILED,   /* compiled from the .wasm (and the artefact written) */
} rt_load_source_t;

typedef struct rt_cache_stats {
    uint64_t bytes;            /* every cached module, pinned or not */
    uint64_t pinned_bytes;
    size_t modules, pinned;
    uint64_t loads_compiled, loads_serialized, evictions;
    uint64_t artifact_errors;  /* artefacts refused (damaged, stale) or not written */
    uint64_t native_loaded;    /* native code attached from its artefact */
    uint64_t native_compiled, native_failed; /* background compiles */
    size_t native_modules;     /* cached modules running native code */
} rt_cache_stats_t;

rt_cache_t *rt_cache_new(void);
/* Sets the bound and the callbacks (copied); evicts at once if needed. */
void rt_cache_configure(rt_cache_t *c, const rt_cache_config_t *cfg);
/* Frees the cache and the unpinned modules. Modules still referenced stay
 * valid until released. */
void rt_cache_free(rt_cache_t *c);
/* The module with this digest, with a new reference, or NULL. */
rt_module_t *rt_cache_find(rt_cache_t *c, const char *digest);
/* The module with this digest, with a new reference: from memory, else
 * from its artefact (checked: a damaged or stale one is ignored and
 * replaced), else compiled from load_blob's bytes (then the artefact is
 * written). *source (may be NULL) says which. NULL with a message when the
 * module cannot be read, compiled or run (as for rt_cache_compile). */
rt_module_t *rt_cache_load(rt_cache_t *c, const char *digest, rt_load_source_t *source,
                           char *err, size_t errlen);
/* The same load in three steps, so that the slow part (reading and
 * deserialising the artefact, or compiling, then making the image) runs on
 * a worker while the loop thread goes on:
 *   rt_module_load_new     loop thread: a load of `digest` with the cache's
 *                          callbacks as they are now; NULL when out of memory.
 *   rt_module_load_run     any thread, once (e.g. a pool job's work, x its
 *                          exec, which the start function and
 *                          wizer.initialize then run on; NULL = an exec of
 *                          its own). Touches nothing of the cache.
 *   rt_cache_load_finish   loop thread, after run: the module with a new
 *                          reference (inserted, or the copy already cached
 *                          if another load got there first, then *source is
 *                          RT_LOAD_CACHED), or NULL with the load's error
 *                          message. Frees the load either way.
 * rt_module_load_free drops a load that will not be finished (not while it
 * runs). Nothing here keeps the cache alive: finish a load only on the
 * cache it was made from. */
typedef struct rt_module_load rt_module_load_t;
rt_module_load_t *rt_module_load_new(const rt_cache_t *c, const char *digest);
/* The limits the module's image is made under (before run): linear memory
 * up to memory_limit_bytes (0 = no limit beyond the spec's) and
 * init_timeout_ns for the start function and wizer.initialize together
 * (0 = 10 s). A module that cannot start under them (its start function
 * or initialiser traps, runs out of time, or needs more memory) fails the
 * load ("the module cannot start: REASON") and is not cached. */
void rt_module_load_limits(rt_module_load_t *l, uint64_t memory_limit_bytes,
                           uint64_t init_timeout_ns);
void rt_module_load_run(rt_module_load_t *l, eng_exec_t *x);
rt_module_t *rt_cache_load_finish(rt_cache_t *c, rt_module_load_t *l, rt_load_source_t *source,
                                  char *err, size_t errlen);
void rt_module_load_free(rt_module_load_t *l);
const char *rt_module_load_digest(const rt_module_load_t *l);
/* A load of a module given as bytes (an upload: `digest` must be their
 * digest): run compiles them, which also validates them, and writes the
 * artefact, instead of reading the artefact or the blob. The bytes must
 * stay valid until run has returned. After run, rt_module_load_invalid
 * says whether the load failed because the bytes are not a valid module
 * (the error is the engine's: "at byte 0x1f (code section): ..."), as
 * opposed to a valid module that cannot run as a function. */
rt_module_load_t *rt_module_load_bytes(const rt_cache_t *c, const char *digest,
                                       const uint8_t *bytes, size_t len);
bool rt_module_load_invalid(const rt_module_load_t *l);
/* Compiles bytes (the module `digest` names) and checks that it can run as
 * a function: exports `_start` of type () and imports only WASI and the
 * host APIs (src/host/), and its start function and wizer.initialize
 * finish (within 10 s). Returns it with one reference, or NULL with a
 * message. The bytes are not kept. The artefact is written when artefacts
 * are configured. */
rt_module_t *rt_cache_compile(rt_cache_t *c, const char *digest, const uint8_t *bytes,
                              size_t len, char *err, size_t errlen);
/* Frees the cached module with this digest now when nothing holds it
 * (unpinned); returns whether it did. A native compile of it under way
 * stores no artefact (its caller is deleting them). */
bool rt_cache_forget(rt_cache_t *c, const char *digest);
/* Cached modules, pinned or not. */
size_t rt_cache_count(const rt_cache_t *c);
void rt_cache_stats(const rt_cache_t *c, rt_cache_stats_t *out);
void rt_module_ref(rt_module_t *m);
/* Drops a reference. The last one unpins the module: its image's warm
 * slots are trimmed (eng_image_trim: no instance memory is kept for it) and
 * it stays cached (or is freed at once when the cache is over its bound or
 * gone). Loop thread. Instances hold no reference: the owner keeps one
 * while any is alive (else a slot freed later is kept warm again). */
void rt_module_release(rt_module_t *m);
const eng_module_t *rt_module_engine(const rt_module_t *m);
const char *rt_module_digest(const rt_module_t *m);
/* The instance image every instance starts from (made when the module was
 * compiled, after the start function and `wizer.initialize`), or NULL when
 * the module's state cannot be imaged; rt_module_image_error says why. */
const eng_image_t *rt_module_image(const rt_module_t *m);
const char *rt_module_image_error(const rt_module_t *m);
/* True when m's instances may make trial runs (rt_request_t.trial_until_ns):
 * m has an image, so instantiating runs none of its code, and its imports
 * are only the WASI functions rt_link_trial_safe allows. */
bool rt_module_trial_safe(const rt_module_t *m);
/* rt_link_plan_new of its module, made once (NULL: link by name). */
const int16_t *rt_module_link_plan(const rt_module_t *m);
/* 0 when m's instances fit in memory_limit_bytes (its image's memory is
 * no larger), else -1 with "the module cannot start: ..." in err. A cached
 * module's image may have been made under another revision's limit. */
int rt_module_check_limit(const rt_module_t *m, uint64_t memory_limit_bytes, char *err,
                          size_t errlen);
/* The tier new instances of m run in: "native", or "interp" with, in
 * *detail, "compiling", "queued", "failed: REASON" or "" (no native
 * compiler). */
const char *rt_module_tier(const rt_module_t *m, const char **detail);
/* The same for the cached module with this digest (not pinned, not moved
 * in the LRU), or "not loaded". */
const char *rt_cache_tier(const rt_cache_t *c, const char *digest, const char **detail);

/* ---- instances ---------------------------------------------------------- */

typedef struct rt_instance rt_instance_t;

typedef struct rt_instance_config {
    const char *name;              /* argv[0] the guest sees */
    const char *const *env;        /* "KEY=VALUE", the revision's env */
    uint32_t nenv;
    uint64_t memory_limit_bytes;   /* 0 = no limit beyond the spec's */
    uint64_t deadline_ns;          /* for the module's start function; 0 = none */
    /* Outbound HTTP (wasi_experimental_http): the daemon's client and the
     * revision's allowed destinations (the instance takes a reference).
     * Either NULL: every request is refused. */
    ho_client_t *http_client;
    ho_policy_t *http_policy;
    /* The wasmfn_kv stores the instance may open (host/kv.h); borrowed,
     * must outlive the instance. NULL = none. */
    const struct kv_grant *kv;
} rt_instance_config_t;

/* Instantiates m in a store of its own, with a WASI context holding args
 * [name] and the env, and no preopens (and, when m imports it, an
 * outbound HTTP context whose sessions end with the instance): ready to run _start. Starts from
 * the module's image when it has one (no guest code runs, and x and
 * deadline_ns are unused), else instantiates afresh, running the start
 * function on x. Runs on a worker (x is its exec). The module must outlive the instance. Returns
 * NULL with a message on failure. Thread-safe for distinct instances. */
rt_instance_t *rt_instance_new(const rt_module_t *m, const rt_instance_config_t *cfg,
                               eng_exec_t *x, char *err, size_t errlen);
/* Frees the store and the WASI context (any thread; not while running). */
void rt_instance_free(rt_instance_t *i);

/* One run of _start. */
typedef struct rt_request {
    const char *const *env;    /* added after the instance's env (CGI env); not
                                * copied: unchanged until the run ends */
    uint32_t nenv;
    const uint8_t *stdin_bytes; /* must outlive the run */
    size_t stdin_len;
    uint64_t deadline_ns;      /* absolute, eng_now_ns; 0 = none */
    size_t max_stdout_bytes;   /* beyond it the guest's writes fail (EIO) */
    lr_ring_t *log;            /* stderr lines go here (may be NULL) */
    const char *log_source;    /* the source name for the lines */
    const lr_tags_t *log_tags; /* the invocation and trace the lines belong to (may be NULL) */
    /* The invocation's trace (its SERVER span's context; NULL: untraced):
     * the guest's outbound requests become CLIENT spans under it, recorded
     * by tracer, and carry it on (ho_ctx_set_trace). */
    tr_tracer_t *tracer;
    const tr_ctx_t *trace;
    /* A trial run (0: an ordinary one): one that may be given up with
     * nothing of it seen, so that the request can run again on a fresh
     * instance elsewhere. It is given up when this time (eng_now_ns)
     * comes before the guest ends (and before deadline_ns), when the
     * guest would sleep, when it writes more than 16 KiB to stderr, and
     * at once when the instance's module is not rt_module_trial_safe;
     * rt_result_t.abandoned says so. Its stdout is dropped then, and its
     * stderr lines reach the log only when the run counts. */
    uint64_t trial_until_ns;
} rt_request_t;

typedef struct rt_result {
    eng_trap_t trap;           /* ENG_OK, ENG_TRAP_EXIT (see exit_code), or a trap */
    int exit_code;             /* 0 for ENG_OK */
    char message[ENG_ERR_MAX]; /* the trap's message, "" if none */
    uint8_t *out;              /* stdout, malloc'd (NULL if empty); caller frees */
    size_t out_len;
    bool out_overflow;         /* the guest wrote more than max_stdout_bytes */
    uint64_t cpu_ns;           /* CPU time of the guest's thread during the run */
    uint64_t peak_memory_bytes; /* linear memory at the end (it never shrinks) */
    bool abandoned;            /* a trial run given up (the other fields but
                                * cpu_ns say nothing); the instance is spent */
} rt_result_t;

/* Runs the instance's _start once (an instance serves one request) on
 * exec x. Always fills res; returns 0 if the guest ran to its end (returned
 * or exited) and -1 if it trapped or ran out of time. */
int rt_instance_run(rt_instance_t *i, eng_exec_t *x, const rt_request_t *rq, rt_result_t *res);

#endif
