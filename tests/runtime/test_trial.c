/*
 * test_trial.c — trial runs (rt_request_t.trial_until_ns) and the loop
 * thread's runner (rt_onloop_*): a trial that ends in time counts, and its
 * stderr reaches the log once; one that runs past its end, floods stderr,
 * or whose module may wait is given up with nothing seen (no output, no
 * log line), within its slice; the loop's runner runs a job at once, on
 * the calling thread, on a stack of its own (deep recursion traps instead
 * of overflowing), and calls done on a later turn of the loop.
 *
 * Modules are assembled with wat2wasm (the text is beside each).
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

#include "common/logring.h"
#include "runtime/runtime.h"

/* Writes "trial-line\n" to stderr and "out" to stdout, then returns:
 *   (module
 *     (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
 *     (memory (export "memory") 1)
 *     (data (i32.const 16) "trial-line\n")
 *     (data (i32.const 32) "out")
 *     (func (export "_start")
 *       (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 11))
 *       (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
 *       (i32.store (i32.const 0) (i32.const 32)) (i32.store (i32.const 4) (i32.const 3))
 *       (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
 */
static const uint8_t mod_logexit[] = {
    0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0C, 0x02, 0x60,
    0x04, 0x7F, 0x7F, 0x7F, 0x7F, 0x01, 0x7F, 0x60, 0x00, 0x00, 0x02, 0x23,
    0x01, 0x16, 0x77, 0x61, 0x73, 0x69, 0x5F, 0x73, 0x6E, 0x61, 0x70, 0x73,
    0x68, 0x6F, 0x74, 0x5F, 0x70, 0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31,
    0x08, 0x66, 0x64, 0x5F, 0x77, 0x72, 0x69, 0x74, 0x65, 0x00, 0x00, 0x03,
    0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06,
    0x6D, 0x65, 0x6D, 0x6F, 0x72, 0x79, 0x02, 0x00, 0x06, 0x5F, 0x73, 0x74,
    0x61, 0x72, 0x74, 0x00, 0x01, 0x0A, 0x36, 0x01, 0x34, 0x00, 0x41, 0x00,
    0x41, 0x10, 0x36, 0x02, 0x00, 0x41, 0x04, 0x41, 0x0B, 0x36, 0x02, 0x00,
    0x41, 0x02, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1A, 0x41,
    0x00, 0x41, 0x20, 0x36, 0x02, 0x00, 0x41, 0x04, 0x41, 0x03, 0x36, 0x02,
    0x00, 0x41, 0x01, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1A,
    0x0B, 0x0B, 0x19, 0x02, 0x00, 0x41, 0x10, 0x0B, 0x0B, 0x74, 0x72, 0x69,
    0x61, 0x6C, 0x2D, 0x6C, 0x69, 0x6E, 0x65, 0x0A, 0x00, 0x41, 0x20, 0x0B,
    0x03, 0x6F, 0x75, 0x74,
};

/* Writes "spin-line\n" to stderr, then loops forever:
 *   (module
 *     (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
 *     (memory (export "memory") 1)
 *     (data (i32.const 16) "spin-line\n")
 *     (func (export "_start")
 *       (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 10))
 *       (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
 *       (loop (br 0))))
 */
static const uint8_t mod_logspin[] = {
    0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0C, 0x02, 0x60,
    0x04, 0x7F, 0x7F, 0x7F, 0x7F, 0x01, 0x7F, 0x60, 0x00, 0x00, 0x02, 0x23,
    0x01, 0x16, 0x77, 0x61, 0x73, 0x69, 0x5F, 0x73, 0x6E, 0x61, 0x70, 0x73,
    0x68, 0x6F, 0x74, 0x5F, 0x70, 0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31,
    0x08, 0x66, 0x64, 0x5F, 0x77, 0x72, 0x69, 0x74, 0x65, 0x00, 0x00, 0x03,
    0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06,
    0x6D, 0x65, 0x6D, 0x6F, 0x72, 0x79, 0x02, 0x00, 0x06, 0x5F, 0x73, 0x74,
    0x61, 0x72, 0x74, 0x00, 0x01, 0x0A, 0x22, 0x01, 0x20, 0x00, 0x41, 0x00,
    0x41, 0x10, 0x36, 0x02, 0x00, 0x41, 0x04, 0x41, 0x0A, 0x36, 0x02, 0x00,
    0x41, 0x02, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1A, 0x03,
    0x40, 0x0C, 0x00, 0x0B, 0x0B, 0x0B, 0x10, 0x01, 0x00, 0x41, 0x10, 0x0B,
    0x0A, 0x73, 0x70, 0x69, 0x6E, 0x2D, 0x6C, 0x69, 0x6E, 0x65, 0x0A,
};

/* Writes 20 KiB to stderr (1 KiB of zero bytes, 20 times), then returns:
 *   (module
 *     (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
 *     (memory (export "memory") 1)
 *     (func (export "_start") (local $i i32)
 *       (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 1024))
 *       (loop
 *         (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
 *         (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *         (br_if 0 (i32.lt_u (local.get $i) (i32.const 20))))))
 */
static const uint8_t mod_flood[] = {
    0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0C, 0x02, 0x60,
    0x04, 0x7F, 0x7F, 0x7F, 0x7F, 0x01, 0x7F, 0x60, 0x00, 0x00, 0x02, 0x23,
    0x01, 0x16, 0x77, 0x61, 0x73, 0x69, 0x5F, 0x73, 0x6E, 0x61, 0x70, 0x73,
    0x68, 0x6F, 0x74, 0x5F, 0x70, 0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31,
    0x08, 0x66, 0x64, 0x5F, 0x77, 0x72, 0x69, 0x74, 0x65, 0x00, 0x00, 0x03,
    0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06,
    0x6D, 0x65, 0x6D, 0x6F, 0x72, 0x79, 0x02, 0x00, 0x06, 0x5F, 0x73, 0x74,
    0x61, 0x72, 0x74, 0x00, 0x01, 0x0A, 0x32, 0x01, 0x30, 0x01, 0x01, 0x7F,
    0x41, 0x00, 0x41, 0xC0, 0x00, 0x36, 0x02, 0x00, 0x41, 0x04, 0x41, 0x80,
    0x08, 0x36, 0x02, 0x00, 0x03, 0x40, 0x41, 0x02, 0x41, 0x00, 0x41, 0x01,
    0x41, 0x08, 0x10, 0x00, 0x1A, 0x20, 0x00, 0x41, 0x01, 0x6A, 0x21, 0x00,
    0x20, 0x00, 0x41, 0x14, 0x49, 0x0D, 0x00, 0x0B, 0x0B,
};

/* Imports poll_oneoff (so it might sleep); writes "sleeper-line\n" to stderr:
 *   (module
 *     (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
 *     (import "wasi_snapshot_preview1" "poll_oneoff" (func $p (param i32 i32 i32 i32) (result i32)))
 *     (memory (export "memory") 1)
 *     (data (i32.const 16) "sleeper-line\n")
 *     (func (export "_start")
 *       (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 13))
 *       (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))))
 */
static const uint8_t mod_sleeper[] = {
    0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0C, 0x02, 0x60,
    0x04, 0x7F, 0x7F, 0x7F, 0x7F, 0x01, 0x7F, 0x60, 0x00, 0x00, 0x02, 0x48,
    0x02, 0x16, 0x77, 0x61, 0x73, 0x69, 0x5F, 0x73, 0x6E, 0x61, 0x70, 0x73,
    0x68, 0x6F, 0x74, 0x5F, 0x70, 0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31,
    0x08, 0x66, 0x64, 0x5F, 0x77, 0x72, 0x69, 0x74, 0x65, 0x00, 0x00, 0x16,
    0x77, 0x61, 0x73, 0x69, 0x5F, 0x73, 0x6E, 0x61, 0x70, 0x73, 0x68, 0x6F,
    0x74, 0x5F, 0x70, 0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31, 0x0B, 0x70,
    0x6F, 0x6C, 0x6C, 0x5F, 0x6F, 0x6E, 0x65, 0x6F, 0x66, 0x66, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02,
    0x06, 0x6D, 0x65, 0x6D, 0x6F, 0x72, 0x79, 0x02, 0x00, 0x06, 0x5F, 0x73,
    0x74, 0x61, 0x72, 0x74, 0x00, 0x02, 0x0A, 0x1D, 0x01, 0x1B, 0x00, 0x41,
    0x00, 0x41, 0x10, 0x36, 0x02, 0x00, 0x41, 0x04, 0x41, 0x0D, 0x36, 0x02,
    0x00, 0x41, 0x02, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1A,
    0x0B, 0x0B, 0x13, 0x01, 0x00, 0x41, 0x10, 0x0B, 0x0D, 0x73, 0x6C, 0x65,
    0x65, 0x70, 0x65, 0x72, 0x2D, 0x6C, 0x69, 0x6E, 0x65, 0x0A,
};

/* Recurses without end:
 *   (module
 *     (func $f (call $f))
 *     (func (export "_start") (call $f)))
 */
static const uint8_t mod_deep[] = {
    0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60,
    0x00, 0x00, 0x03, 0x03, 0x02, 0x00, 0x00, 0x07, 0x0A, 0x01, 0x06, 0x5F,
    0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x01, 0x0A, 0x0B, 0x02, 0x04, 0x00,
    0x10, 0x00, 0x0B, 0x04, 0x00, 0x10, 0x00, 0x0B,
};

typedef struct fixture {
    rt_cache_t *cache;
    rt_module_t *m;
    eng_exec_t *x;
    lr_ring_t *log;
} fixture_t;

static void fx_init(fixture_t *f, const uint8_t *bytes, size_t len)
{
    char err[256];
    f->cache = rt_cache_new();
    f->m = rt_cache_compile(f->cache, "sha256:t", bytes, len, err, sizeof err);
    if (!f->m) fail_msg("%s", err);
    f->x = eng_exec_new(0);
    f->log = lr_ring_new(1 << 16);
    assert_non_null(f->x);
    assert_non_null(f->log);
}

static void fx_free(fixture_t *f)
{
    lr_ring_free(f->log);
    eng_exec_free(f->x);
    rt_module_release(f->m);
    rt_cache_free(f->cache);
}

/* Runs a fresh instance once; trial_ns > 0 makes it a trial of that length,
 * deadline_ns > 0 gives it a deadline that far away. */
static int run_once(fixture_t *f, eng_exec_t *x, uint64_t trial_ns, uint64_t deadline_ns,
                    rt_result_t *res)
{
    char err[256];
    rt_instance_config_t cfg = {.name = "fn"};
    rt_instance_t *i = rt_instance_new(f->m, &cfg, x, err, sizeof err);
    if (!i) fail_msg("%s", err);
    uint64_t now = eng_now_ns();
    rt_request_t rq = {.log = f->log, .log_source = "fn-00001"};
    if (trial_ns) rq.trial_until_ns = now + trial_ns;
    if (deadline_ns) rq.deadline_ns = now + deadline_ns;
    int rc = rt_instance_run(i, x, &rq, res);
    rt_instance_free(i);
    return rc;
}

/* How often needle occurs in the log's lines, as lr_ring_read formats
 * them; "" counts the bytes of the log instead. */
static size_t log_count(fixture_t *f, const char *needle)
{
    uint64_t next;
    size_t len, n = 0;
    char *s = lr_ring_read(f->log, 0, 0, &next, &len);
    assert_non_null(s);
    if (!*needle) n = strlen(s);
    else
        for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    free(s);
    return n;
}

/* A trial of f's module is given up, and nothing of it shows: no output,
 * no log line. */
static void expect_unseen(fixture_t *f, uint64_t trial_ns, uint64_t deadline_ns)
{
    rt_result_t res;
    assert_int_equal(run_once(f, f->x, trial_ns, deadline_ns, &res), -1);
    assert_true(res.abandoned);
    assert_null(res.out);
    assert_int_equal(log_count(f, ""), 0);
}

static void test_trial_that_ends_counts(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, mod_logexit, sizeof mod_logexit);
    assert_true(rt_module_trial_safe(f.m));
    rt_result_t res;
    assert_int_equal(run_once(&f, f.x, 1000000000ull, 0, &res), 0);
    assert_false(res.abandoned);
    assert_int_equal(res.trap, ENG_OK);
    assert_int_equal(res.out_len, 3);
    assert_memory_equal(res.out, "out", 3);
    free(res.out);
    assert_int_equal(log_count(&f, "fn-00001: trial-line"), 1);
    fx_free(&f);
}

static void test_trial_past_its_end_is_unseen(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, mod_logspin, sizeof mod_logspin);
    assert_true(rt_module_trial_safe(f.m));
    uint64_t t0 = eng_now_ns();
    expect_unseen(&f, 1000000ull, 10000000000ull); /* the line it wrote never shows */
    assert_true(eng_now_ns() - t0 < 500000000ull); /* its 1 ms, not its 10 s deadline */
    rt_result_t res;

    /* The same guest in an ordinary run: its deadline stops it, nothing is
     * given up, and its line is logged. */
    assert_int_equal(run_once(&f, f.x, 0, 20000000ull, &res), -1);
    assert_false(res.abandoned);
    assert_int_equal(res.trap, ENG_TRAP_DEADLINE);
    assert_int_equal(log_count(&f, "spin-line"), 1);

    /* A deadline before the trial's end is the request's own: a timeout,
     * not a run to repeat. */
    assert_int_equal(run_once(&f, f.x, 10000000000ull, 5000000ull, &res), -1);
    assert_false(res.abandoned);
    assert_int_equal(res.trap, ENG_TRAP_DEADLINE);
    fx_free(&f);
}

static void test_trial_that_floods_stderr_is_unseen(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, mod_flood, sizeof mod_flood);
    expect_unseen(&f, 1000000000ull, 0);
    /* Ordinary: the 20 KiB are logged. */
    rt_result_t res;
    assert_int_equal(run_once(&f, f.x, 0, 0, &res), 0);
    assert_false(res.abandoned);
    assert_true(log_count(&f, "") > 20000);
    fx_free(&f);
}

static void test_trial_of_a_module_that_may_wait(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f, mod_sleeper, sizeof mod_sleeper);
    assert_false(rt_module_trial_safe(f.m));
    expect_unseen(&f, 1000000000ull, 0); /* not run at all */
    rt_result_t res;
    assert_int_equal(run_once(&f, f.x, 0, 0, &res), 0);
    assert_int_equal(log_count(&f, "sleeper-line"), 1);
    fx_free(&f);
}

/* ---- the loop's runner ---------------------------------------------------- */

typedef struct loop_job {
    rt_job_t job;
    fixture_t *f;
    uint64_t trial_ns;
    rt_result_t res;
    int rc;
    pthread_t ran_on, done_on;
    int ran, done;
} loop_job_t;

static void loop_work(rt_job_t *j, eng_exec_t *x)
{
    loop_job_t *l = j->ud;
    l->ran_on = pthread_self();
    l->ran++;
    l->rc = run_once(l->f, x, l->trial_ns, 0, &l->res);
}

static void loop_done(rt_job_t *j)
{
    loop_job_t *l = j->ud;
    l->done_on = pthread_self();
    l->done++;
}

static void run_on_loop(const uint8_t *bytes, size_t len, uint64_t trial_ns, loop_job_t *l)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    rt_onloop_t *o = rt_onloop_new(&loop, err, sizeof err);
    if (!o) fail_msg("%s", err);
    fixture_t f;
    fx_init(&f, bytes, len);
    *l = (loop_job_t){.job = {.work = loop_work, .done = loop_done}, .f = &f, .trial_ns = trial_ns};
    l->job.ud = l;
    rt_onloop_run(o, &l->job);
    assert_int_equal(l->ran, 1);
    assert_true(pthread_equal(l->ran_on, pthread_self()));
    assert_int_equal(l->done, 0); /* not inside rt_onloop_run */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(l->done, 1);
    assert_true(pthread_equal(l->done_on, pthread_self()));
    free(l->res.out);
    rt_onloop_free(o);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    l->f = NULL;
    fx_free(&f);
}

static void test_onloop_runs_at_once_done_later(void **state)
{
    (void)state;
    loop_job_t l;
    run_on_loop(mod_logexit, sizeof mod_logexit, 1000000000ull, &l);
    assert_int_equal(l.rc, 0);
    assert_false(l.res.abandoned);
}

static void test_onloop_deep_recursion_traps(void **state)
{
    (void)state;
    loop_job_t l;
    run_on_loop(mod_deep, sizeof mod_deep, 1000000000ull, &l);
    assert_int_equal(l.rc, -1);
    assert_false(l.res.abandoned);
    assert_int_equal(l.res.trap, ENG_TRAP_STACK_EXHAUSTED);
}

static void test_onloop_spin_is_given_up(void **state)
{
    (void)state;
    loop_job_t l;
    uint64_t t0 = eng_now_ns();
    run_on_loop(mod_logspin, sizeof mod_logspin, 200000ull, &l);
    assert_true(eng_now_ns() - t0 < 500000000ull);
    assert_int_equal(l.rc, -1);
    assert_true(l.res.abandoned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trial_that_ends_counts),
        cmocka_unit_test(test_trial_past_its_end_is_unseen),
        cmocka_unit_test(test_trial_that_floods_stderr_is_unseen),
        cmocka_unit_test(test_trial_of_a_module_that_may_wait),
        cmocka_unit_test(test_onloop_runs_at_once_done_later),
        cmocka_unit_test(test_onloop_deep_recursion_traps),
        cmocka_unit_test(test_onloop_spin_is_given_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
