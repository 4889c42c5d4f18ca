/*
 * test_runtime.c — src/runtime: the worker pool (urgent jobs first, done
 * callbacks on the loop thread, cancel and interrupt), the module cache
 * (one compile per digest, reference counts, refusing modules that cannot
 * be functions, a byte bound with least-recently-used eviction of unpinned
 * modules, reloading evicted ones from their serialised artefact instead
 * of compiling, and rebuilding a damaged artefact) and instances (a run under a deadline stops with
 * ENG_TRAP_DEADLINE; an instance can be interrupted from the loop).
 *
 * Modules are hand-assembled, so the bytes can be checked by counting.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"

#define HDR 0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00
/* (type (func)) */
#define TYPE_VOID 0x01, 0x04, 0x01, 0x60, 0x00, 0x00
/* (func (type 0)) */
#define FUNC_ONE 0x03, 0x02, 0x01, 0x00
/* (export "_start" (func 0)) */
#define EXPORT_START 0x07, 0x0A, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00

/* _start returns at once. */
static const uint8_t mod_empty[] = {HDR, TYPE_VOID, FUNC_ONE, EXPORT_START,
                                    0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B};
/* _start loops forever: (loop (br 0)). */
static const uint8_t mod_spin[] = {HDR, TYPE_VOID, FUNC_ONE, EXPORT_START,
                                   0x0A, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B};
/* No _start: exports "run" instead. */
static const uint8_t mod_no_start[] = {HDR, TYPE_VOID, FUNC_ONE,
                                       0x07, 0x07, 0x01, 0x03, 'r', 'u', 'n', 0x00, 0x00,
                                       0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B};
/* Imports env.f (not WASI), exports _start = func 1. */
static const uint8_t mod_bad_import[] = {HDR, TYPE_VOID,
                                         0x02, 0x09, 0x01, 0x03, 'e', 'n', 'v', 0x01, 'f', 0x00, 0x00,
                                         FUNC_ONE,
                                         0x07, 0x0A, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01,
                                         0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B};

/* ---- the pool ----------------------------------------------------------- */

typedef struct tjob {
    rt_job_t job;
    int id;
    int *order;    /* where work records the run order */
    int *norder;
    pthread_mutex_t *mu;
    pthread_cond_t *gate; /* work waits on it while *closed */
    bool *closed;
    bool done_on_loop;
    int *ndone;
    pthread_t loop_thread;
} tjob_t;

static void tjob_work(rt_job_t *j, eng_exec_t *x)
{
    (void)x;
    tjob_t *t = j->ud;
    pthread_mutex_lock(t->mu);
    while (t->closed && *t->closed) pthread_cond_wait(t->gate, t->mu);
    t->order[(*t->norder)++] = t->id;
    pthread_mutex_unlock(t->mu);
}

static void tjob_done(rt_job_t *j)
{
    tjob_t *t = j->ud;
    t->done_on_loop = pthread_equal(pthread_self(), t->loop_thread);
    (*t->ndone)++;
}

static void run_until(uv_loop_t *loop, int *counter, int want)
{
    for (int i = 0; i < 5000 && *counter < want; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void test_pool_order_cancel(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    rt_pool_t *p = rt_pool_new(&loop, 1, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(rt_pool_workers(p), 1);

    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t gate = PTHREAD_COND_INITIALIZER;
    bool closed = true;
    int order[8], norder = 0, ndone = 0;
    tjob_t jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = (tjob_t){.job = {.work = tjob_work, .done = tjob_done, .ud = &jobs[i]},
                           .id = i, .order = order, .norder = &norder, .mu = &mu,
                           .gate = &gate, .closed = &closed, .ndone = &ndone,
                           .loop_thread = pthread_self()};
    }
    /* Job 0 occupies the only worker (it waits at the gate). */
    rt_pool_submit(p, &jobs[0].job, false);
    usleep(50 * 1000);
    /* Background 1, 2; then urgent 3, 4: the urgent ones must run first. */
    rt_pool_submit(p, &jobs[1].job, false);
    rt_pool_submit(p, &jobs[2].job, false);
    rt_pool_submit(p, &jobs[3].job, true);
    rt_pool_submit(p, &jobs[4].job, true);
    /* Job 2 is withdrawn before it starts; job 0 is running: not cancellable. */
    assert_true(rt_pool_cancel(p, &jobs[2].job));
    assert_false(rt_pool_cancel(p, &jobs[2].job));
    assert_false(rt_pool_cancel(p, &jobs[0].job));
    pthread_mutex_lock(&mu);
    closed = false;
    pthread_cond_broadcast(&gate);
    pthread_mutex_unlock(&mu);
    run_until(&loop, &ndone, 4);
    assert_int_equal(ndone, 4);
    assert_int_equal(norder, 4);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 4);
    assert_int_equal(order[3], 1);
    for (int i = 0; i < 5; i++)
        if (i != 2) assert_true(jobs[i].done_on_loop);
    /* Done has run: a finished job cannot be cancelled. */
    assert_false(rt_pool_cancel(p, &jobs[1].job));
    rt_pool_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- modules ------------------------------------------------------------ */

static void test_cache(void **state)
{
    (void)state;
    char err[256];
    rt_cache_t *c = rt_cache_new();
    rt_module_t *a = rt_cache_compile(c, "sha256:aa", mod_empty, sizeof mod_empty, err, sizeof err);
    assert_non_null(a);
    /* The same digest is not compiled again: the same module comes back. */
    rt_module_t *b = rt_cache_compile(c, "sha256:aa", NULL, 0, err, sizeof err);
    assert_ptr_equal(a, b);
    assert_ptr_equal(rt_cache_find(c, "sha256:aa"), a);
    assert_null(rt_cache_find(c, "sha256:bb"));
    assert_int_equal(rt_cache_count(c), 1);
    assert_string_equal(rt_module_digest(a), "sha256:aa");
    rt_module_release(a);
    rt_module_release(a);
    assert_int_equal(rt_cache_count(c), 1);
    rt_module_release(a); /* the last reference: unpinned, still cached */
    assert_int_equal(rt_cache_count(c), 1);
    assert_ptr_equal(rt_cache_find(c, "sha256:aa"), a);
    rt_module_release(a);
    /* A bound it does not fit in evicts it. */
    rt_cache_configure(c, &(rt_cache_config_t){.max_bytes = 1});
    assert_int_equal(rt_cache_count(c), 0);
    assert_null(rt_cache_find(c, "sha256:aa"));

    /* Modules that cannot be functions are refused with a reason. */
    assert_null(rt_cache_compile(c, "sha256:x1", mod_no_start, sizeof mod_no_start, err, sizeof err));
    assert_non_null(strstr(err, "_start"));
    assert_null(rt_cache_compile(c, "sha256:x2", mod_bad_import, sizeof mod_bad_import, err, sizeof err));
    assert_non_null(strstr(err, "env"));
    static const uint8_t junk[] = {1, 2, 3, 4};
    assert_null(rt_cache_compile(c, "sha256:x3", junk, sizeof junk, err, sizeof err));
    assert_non_null(strstr(err, "at byte"));
    assert_int_equal(rt_cache_count(c), 0);
    rt_cache_free(c);
}

/* ---- the bounded cache and artefacts ------------------------------------ */

/* _start does one nop: a third distinct module. */
static const uint8_t mod_nop[] = {HDR, TYPE_VOID, FUNC_ONE, EXPORT_START,
                                  0x0A, 0x05, 0x01, 0x03, 0x00, 0x01, 0x0B};

/* An in-memory blob store and artefact store, counting calls. */
typedef struct fake_store {
    const char *digests[3];
    const uint8_t *blobs[3];
    size_t blob_len[3];
    uint8_t *art[3];
    size_t art_len[3];
    int blob_reads, art_reads, art_writes;
} fake_store_t;

static int fake_index(fake_store_t *f, const char *digest)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(f->digests[i], digest) == 0) return i;
    return -1;
}

static int fake_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen)
{
    fake_store_t *f = ud;
    int i = fake_index(f, digest);
    f->blob_reads++;
    if (i < 0) {
        snprintf(err, errlen, "no blob %s", digest);
        return -1;
    }
    *bytes = malloc(f->blob_len[i]);
    memcpy(*bytes, f->blobs[i], f->blob_len[i]);
    *len = f->blob_len[i];
    return 0;
}

static int fake_art_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                        size_t errlen)
{
    (void)err;
    (void)errlen;
    fake_store_t *f = ud;
    int i = fake_index(f, digest);
    f->art_reads++;
    if (i < 0 || !f->art[i]) return 1;
    *bytes = malloc(f->art_len[i]);
    memcpy(*bytes, f->art[i], f->art_len[i]);
    *len = f->art_len[i];
    return 0;
}

static int fake_art_put(void *ud, const char *digest, const uint8_t *bytes, size_t len, char *err,
                        size_t errlen)
{
    fake_store_t *f = ud;
    int i = fake_index(f, digest);
    if (i < 0) {
        snprintf(err, errlen, "no blob %s", digest);
        return -1;
    }
    free(f->art[i]);
    f->art[i] = malloc(len);
    memcpy(f->art[i], bytes, len);
    f->art_len[i] = len;
    f->art_writes++;
    return 0;
}

static rt_module_t *load(rt_cache_t *c, const char *digest, rt_load_source_t want)
{
    char err[256];
    rt_load_source_t got = (rt_load_source_t)-1;
    rt_module_t *m = rt_cache_load(c, digest, &got, err, sizeof err);
    if (!m) fail_msg("load %s: %s", digest, err);
    if (got != want) fail_msg("load %s: source %d, expected %d", digest, (int)got, (int)want);
    return m;
}

static void test_cache_lru_and_artifacts(void **state)
{
    (void)state;
    fake_store_t f = {.digests = {"sha256:e", "sha256:s", "sha256:n"},
                      .blobs = {mod_empty, mod_spin, mod_nop},
                      .blob_len = {sizeof mod_empty, sizeof mod_spin, sizeof mod_nop}};
    rt_cache_config_t cfg = {.max_bytes = 1ull << 30, .load_blob = fake_blob,
                             .artifact_get = fake_art_get, .artifact_put = fake_art_put, .ud = &f};
    rt_cache_t *c = rt_cache_new();
    rt_cache_configure(c, &cfg);
    rt_cache_stats_t st;

    /* First load: compiled, and the artefact written. */
    rt_module_t *e = load(c, "sha256:e", RT_LOAD_COMPILED);
    assert_int_equal(f.blob_reads, 1);
    assert_int_equal(f.art_writes, 1);
    rt_module_release(e);
    e = load(c, "sha256:e", RT_LOAD_CACHED); /* unpinned but cached */
    rt_module_release(e);

    /* Evicted, it comes back from the artefact: the .wasm is not read. */
    cfg.max_bytes = 1;
    rt_cache_configure(c, &cfg);
    assert_int_equal(rt_cache_count(c), 0);
    e = load(c, "sha256:e", RT_LOAD_SERIALIZED);
    assert_int_equal(f.blob_reads, 1);
    rt_cache_stats(c, &st);
    assert_int_equal(st.loads_compiled, 1);
    assert_int_equal(st.loads_serialized, 1);
    assert_int_equal(st.evictions, 1);
    /* Pinned: over the bound, yet kept while referenced. */
    assert_int_equal(rt_cache_count(c), 1);
    assert_int_equal(st.pinned, 1);
    assert_true(st.bytes > 1 && st.bytes == st.pinned_bytes);
    /* ... and it runs like the compiled one. */
    char err[256];
    eng_exec_t *x = eng_exec_new(0);
    rt_instance_config_t icfg = {.name = "fn", .memory_limit_bytes = 1 << 20};
    rt_instance_t *i = rt_instance_new(e, &icfg, x, err, sizeof err);
    assert_non_null(i);
    rt_request_t rq = {.stdin_bytes = (const uint8_t *)"", .stdin_len = 0};
    rt_result_t res;
    assert_int_equal(rt_instance_run(i, x, &rq, &res), 0);
    assert_int_equal(res.trap, ENG_OK);
    rt_instance_free(i);
    rt_module_release(e); /* unpinned over the bound: freed */
    assert_int_equal(rt_cache_count(c), 0);

    rt_module_t *s = load(c, "sha256:s", RT_LOAD_COMPILED);
    rt_module_release(s);
    s = load(c, "sha256:s", RT_LOAD_SERIALIZED);
    i = rt_instance_new(s, &icfg, x, err, sizeof err);
    assert_non_null(i);
    rq.deadline_ns = eng_now_ns() + 20 * 1000000ull;
    assert_int_equal(rt_instance_run(i, x, &rq, &res), -1);
    assert_int_equal(res.trap, ENG_TRAP_DEADLINE);
    rt_instance_free(i);
    rt_module_release(s);

    /* A damaged artefact is refused, the module compiled again and the
     * artefact rewritten. */
    f.art[0][f.art_len[0] / 2] ^= 0x40;
    int blobs = f.blob_reads, writes = f.art_writes;
    e = load(c, "sha256:e", RT_LOAD_COMPILED);
    assert_int_equal(f.blob_reads, blobs + 1);
    assert_int_equal(f.art_writes, writes + 1);
    rt_cache_stats(c, &st);
    assert_int_equal(st.artifact_errors, 1);
    rt_module_release(e);
    e = load(c, "sha256:e", RT_LOAD_SERIALIZED);
    rt_module_release(e);

    /* Least recently used goes first. Room for two of the three. */
    cfg.max_bytes = 1ull << 30;
    rt_cache_configure(c, &cfg);
    rt_module_release(load(c, "sha256:e", RT_LOAD_SERIALIZED));
    rt_module_release(load(c, "sha256:s", RT_LOAD_SERIALIZED));
    rt_module_release(load(c, "sha256:n", RT_LOAD_COMPILED));
    rt_cache_stats(c, &st);
    assert_int_equal(st.modules, 3);
    assert_int_equal(st.pinned, 0);
    uint64_t three = st.bytes;
    rt_module_release(load(c, "sha256:e", RT_LOAD_CACHED)); /* e is now newer than s */
    cfg.max_bytes = three - 1;
    rt_cache_configure(c, &cfg);
    assert_int_equal(rt_cache_count(c), 2);
    assert_null(rt_cache_find(c, "sha256:s"));
    rt_module_t *n = load(c, "sha256:n", RT_LOAD_CACHED);
    rt_module_release(load(c, "sha256:e", RT_LOAD_CACHED));
    /* Only unpinned modules go: n stays while referenced. */
    cfg.max_bytes = 1;
    rt_cache_configure(c, &cfg);
    assert_int_equal(rt_cache_count(c), 1);
    assert_ptr_equal(rt_cache_find(c, "sha256:n"), n);
    rt_module_release(n);
    /* Freeing the cache with a referenced module leaves it usable. */
    rt_cache_free(c);
    assert_string_equal(rt_module_digest(n), "sha256:n");
    rt_module_release(n);

    eng_exec_free(x);
    for (int k = 0; k < 3; k++) free(f.art[k]);
}

/* ---- instances ---------------------------------------------------------- */

static void test_instance_run_and_deadline(void **state)
{
    (void)state;
    char err[256];
    rt_cache_t *c = rt_cache_new();
    rt_module_t *me = rt_cache_compile(c, "sha256:e", mod_empty, sizeof mod_empty, err, sizeof err);
    rt_module_t *ms = rt_cache_compile(c, "sha256:s", mod_spin, sizeof mod_spin, err, sizeof err);
    assert_non_null(me);
    assert_non_null(ms);
    eng_exec_t *x = eng_exec_new(0);
    const char *env[] = {"A=1"};
    rt_instance_config_t cfg = {.name = "fn", .env = env, .nenv = 1, .memory_limit_bytes = 1 << 20};

    rt_instance_t *i = rt_instance_new(me, &cfg, x, err, sizeof err);
    assert_non_null(i);
    rt_request_t rq = {.stdin_bytes = (const uint8_t *)"in", .stdin_len = 2};
    rt_result_t res;
    assert_int_equal(rt_instance_run(i, x, &rq, &res), 0);
    assert_int_equal(res.trap, ENG_OK);
    assert_int_equal(res.out_len, 0);
    assert_null(res.out);
    rt_instance_free(i);

    i = rt_instance_new(ms, &cfg, x, err, sizeof err);
    assert_non_null(i);
    rq.deadline_ns = eng_now_ns() + 50 * 1000000ull;
    assert_int_equal(rt_instance_run(i, x, &rq, &res), -1);
    assert_int_equal(res.trap, ENG_TRAP_DEADLINE);
    assert_true(eng_now_ns() >= rq.deadline_ns);
    rt_instance_free(i);

    eng_exec_free(x);
    rt_module_release(me);
    rt_module_release(ms);
    rt_cache_free(c);
}

/* A spinning guest on the pool, stopped from the loop by rt_pool_interrupt. */
typedef struct spin_job {
    rt_job_t job;
    rt_module_t *m;
    rt_result_t res;
    int started; /* atomic */
    int done;
} spin_job_t;

static void spin_work(rt_job_t *j, eng_exec_t *x)
{
    spin_job_t *s = j->ud;
    char err[256];
    rt_instance_config_t cfg = {.name = "spin"};
    rt_instance_t *i = rt_instance_new(s->m, &cfg, x, err, sizeof err);
    rt_request_t rq = {0};
    __atomic_store_n(&s->started, 1, __ATOMIC_SEQ_CST);
    if (i) rt_instance_run(i, x, &rq, &s->res);
    rt_instance_free(i);
}

static void spin_done(rt_job_t *j) { ((spin_job_t *)j->ud)->done++; }

static void test_pool_interrupt(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    rt_cache_t *c = rt_cache_new();
    rt_pool_t *p = rt_pool_new(&loop, 2, err, sizeof err);
    spin_job_t s = {.job = {.work = spin_work, .done = spin_done}};
    s.job.ud = &s;
    s.m = rt_cache_compile(c, "sha256:s", mod_spin, sizeof mod_spin, err, sizeof err);
    assert_non_null(s.m);
    rt_pool_submit(p, &s.job, true);
    for (int k = 0; k < 2000 && !__atomic_load_n(&s.started, __ATOMIC_SEQ_CST); k++) usleep(1000);
    usleep(20 * 1000); /* well inside eng_call by now */
    rt_pool_interrupt(p, &s.job);
    run_until(&loop, &s.done, 1);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.res.trap, ENG_TRAP_DEADLINE);
    rt_pool_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    rt_module_release(s.m);
    rt_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_order_cancel),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_lru_and_artifacts),
        cmocka_unit_test(test_instance_run_and_deadline),
        cmocka_unit_test(test_pool_interrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
