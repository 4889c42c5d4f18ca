/*
 * test_fiber.c — fibers (src/runtime/fiber.c) and the pool's fiber
 * scheduler (src/runtime/pool.c): guests sleeping in poll_oneoff park
 * without holding the worker, so many sleep at once on one worker; a
 * CPU-bound guest is time-sliced and does not keep a sleeper, or a quick
 * guest, waiting; deadlines and interrupts still stop parked guests; a
 * trap inside a fiber comes back as usual; CPU time excludes the time
 * other fibers ran; stopping the pool stops parked guests.
 *
 * Bounds on elapsed time are generous (several times the expected value)
 * and only separate "concurrent" from "one after another": they check
 * behaviour, not speed.
 *
 * Modules are hand-assembled; the sleep module's timeout (ns, little
 * endian) is the last 8 bytes of its data segment, patched per test.
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

#include "runtime/fiber.h"
#include "runtime/runtime.h"

#define MS 1000000ull

/* (import "wasi_snapshot_preview1" "poll_oneoff"), memory 1, data at 16:
 * clock id 1 (monotonic) and the timeout; _start polls one relative clock
 * subscription at 0 (type 0 = clock) and drops the result. */
static const uint8_t mod_sleep_tmpl[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x02, 0x60, 0x04, 0x7f, 0x7f,
    0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00, 0x02, 0x26, 0x01, 0x16, 0x77, 0x61, 0x73, 0x69,
    0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70, 0x72, 0x65, 0x76, 0x69,
    0x65, 0x77, 0x31, 0x0b, 0x70, 0x6f, 0x6c, 0x6c, 0x5f, 0x6f, 0x6e, 0x65, 0x6f, 0x66, 0x66,
    0x00, 0x00, 0x03, 0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x0a, 0x01, 0x06,
    0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x01, 0x0a, 0x11, 0x01, 0x0f, 0x00, 0x41, 0x00,
    0x41, 0xc0, 0x00, 0x41, 0x01, 0x41, 0x80, 0x01, 0x10, 0x00, 0x1a, 0x0b, 0x0b, 0x16, 0x01,
    0x00, 0x41, 0x10, 0x0b, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xee,
    0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88};
/* _start: unreachable. */
static const uint8_t mod_trap[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04,
                                   0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x0a,
                                   0x01, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00,
                                   0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b};
/* _start: (loop (br 0)). */
static const uint8_t mod_spin[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04,
                                   0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x0A,
                                   0x01, 0x06, '_',  's',  't',  'a',  'r',  't',  0x00, 0x00,
                                   0x0A, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0C, 0x00, 0x0B,
                                   0x0B};
/* _start returns at once. */
static const uint8_t mod_empty[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01,
                                    0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
                                    0x07, 0x0A, 0x01, 0x06, '_',  's',  't',  'a',  'r',
                                    0x74, 0x00, 0x00, 0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B};

static rt_module_t *compile_sleep(rt_cache_t *c, uint64_t ns)
{
    uint8_t b[sizeof mod_sleep_tmpl];
    memcpy(b, mod_sleep_tmpl, sizeof b);
    for (int k = 0; k < 8; k++) b[sizeof b - 8 + k] = (uint8_t)(ns >> (8 * k));
    char digest[64], err[256];
    snprintf(digest, sizeof digest, "sha256:sleep-%llu", (unsigned long long)ns);
    rt_module_t *m = rt_cache_compile(c, digest, b, sizeof b, err, sizeof err);
    if (!m) fprintf(stderr, "compile: %s\n", err);
    return m;
}

static rt_module_t *compile(rt_cache_t *c, const char *digest, const uint8_t *b, size_t n)
{
    char err[256];
    rt_module_t *m = rt_cache_compile(c, digest, b, n, err, sizeof err);
    if (!m) fprintf(stderr, "compile: %s\n", err);
    return m;
}

/* One guest run as a pool job. */
typedef struct gjob {
    rt_job_t job;
    rt_module_t *m;
    uint64_t deadline_ns;    /* absolute; 0 = none */
    int started;             /* atomic */
    bool in_fiber;
    rt_result_t res;
    int rc;
    uint64_t end_ns;         /* when the guest returned (on the worker) */
    int *ndone;
} gjob_t;

static void gjob_work(rt_job_t *j, eng_exec_t *x)
{
    gjob_t *g = j->ud;
    char err[256];
    g->in_fiber = rt_in_fiber() && rt_fiber_current() != NULL;
    rt_instance_config_t cfg = {.name = "t"};
    rt_instance_t *i = rt_instance_new(g->m, &cfg, x, err, sizeof err);
    __atomic_store_n(&g->started, 1, __ATOMIC_SEQ_CST);
    rt_request_t rq = {.deadline_ns = g->deadline_ns};
    g->rc = i ? rt_instance_run(i, x, &rq, &g->res) : -2;
    g->end_ns = eng_now_ns();
    rt_instance_free(i);
    free(g->res.out);
    g->res.out = NULL;
}

static void gjob_done(rt_job_t *j)
{
    gjob_t *g = j->ud;
    (*g->ndone)++;
}

static void gjob_init(gjob_t *g, rt_module_t *m, uint64_t deadline_ns, int *ndone)
{
    memset(g, 0, sizeof *g);
    g->job.work = gjob_work;
    g->job.done = gjob_done;
    g->job.ud = g;
    g->m = m;
    g->deadline_ns = deadline_ns;
    g->ndone = ndone;
}

static void run_until(uv_loop_t *loop, int *counter, int want, int max_ms)
{
    for (int i = 0; i < max_ms && *counter < want; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* ---- fibers themselves -------------------------------------------------- */

typedef struct pingpong {
    rt_fiber_t *f;
    int steps[8];
    int n;
    size_t used;
} pingpong_t;

static void pingpong_fn(void *arg)
{
    pingpong_t *pp = arg;
    volatile uint8_t big[20000];
    memset((void *)big, 1, sizeof big);
    pp->steps[pp->n++] = 1;
    assert_ptr_equal(rt_fiber_current(), pp->f);
    rt_fiber_suspend(pp->f);
    pp->steps[pp->n++] = 3 + big[100];
}

static void test_fiber_switch(void **state)
{
    (void)state;
    char err[128];
    pingpong_t pp = {0};
    pp.f = rt_fiber_new(64 << 10, err, sizeof err);
    assert_non_null(pp.f);
    assert_int_equal(rt_fiber_stack_size(pp.f), 64 << 10);
    assert_true(rt_fiber_finished(pp.f));
    for (int round = 0; round < 2; round++) {
        pp.n = 0;
        rt_fiber_paint(pp.f);
        rt_fiber_start(pp.f, pingpong_fn, &pp);
        assert_false(rt_fiber_finished(pp.f));
        assert_null(rt_fiber_current());
        rt_fiber_resume(pp.f);
        pp.steps[pp.n++] = 2;
        assert_false(rt_fiber_finished(pp.f));
        rt_fiber_resume(pp.f);
        assert_true(rt_fiber_finished(pp.f));
        assert_null(rt_fiber_current());
        assert_int_equal(pp.n, 3);
        assert_int_equal(pp.steps[0], 1);
        assert_int_equal(pp.steps[1], 2);
        assert_int_equal(pp.steps[2], 4);
        /* The 20,000-byte array was on the fiber's stack. */
        size_t hw = rt_fiber_stack_high_water(pp.f);
        assert_true(hw >= 20000);
        assert_true(hw < (64 << 10));
        assert_true(rt_fiber_stack_resident(pp.f) >= 20000);
    }
    rt_fiber_free(pp.f);
}

/* ---- the scheduler ------------------------------------------------------ */

/* 40 guests each sleeping 300 ms on one worker: together about 300 ms,
 * not 12 s. */
static void test_sleepers_share_one_worker(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    rt_cache_t *c = rt_cache_new();
    rt_module_t *m = compile_sleep(c, 300 * MS);
    assert_non_null(m);
    rt_pool_t *p = rt_pool_new(&loop, 1, err, sizeof err);
    assert_non_null(p);
    enum { N = 40 };
    gjob_t *g = calloc(N, sizeof *g);
    int ndone = 0;
    uint64_t t0 = eng_now_ns();
    for (int k = 0; k < N; k++) {
        gjob_init(&g[k], m, 0, &ndone);
        rt_pool_submit(p, &g[k].job, true);
    }
    run_until(&loop, &ndone, N, 10000);
    uint64_t elapsed = eng_now_ns() - t0;
    assert_int_equal(ndone, N);
    for (int k = 0; k < N; k++) {
        assert_int_equal(g[k].rc, 0);
        assert_int_equal(g[k].res.trap, ENG_OK);
        assert_true(g[k].in_fiber);
        assert_true(g[k].end_ns - t0 >= 300 * MS); /* each really slept */
        assert_true(g[k].res.cpu_ns < 100 * MS);   /* and sleeping cost no CPU */
    }
    assert_true(elapsed < 3000 * MS);
    rt_pool_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(g);
    rt_module_release(m);
    rt_cache_free(c);
}

/* One worker, a guest spinning until its 1.5 s deadline, then a 100 ms
 * sleeper and a guest that returns at once: both finish long before the
 * spinner, which is time-sliced, and the sleeper's CPU time does not
 * include the spinner's. */
static void test_cpu_bound_does_not_starve(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    rt_cache_t *c = rt_cache_new();
    rt_module_t *ms = compile(c, "sha256:spin", mod_spin, sizeof mod_spin);
    rt_module_t *mz = compile_sleep(c, 100 * MS);
    rt_module_t *me = compile(c, "sha256:empty", mod_empty, sizeof mod_empty);
    assert_non_null(ms);
    assert_non_null(mz);
    assert_non_null(me);
    rt_pool_t *p = rt_pool_new(&loop, 1, err, sizeof err);
    assert_non_null(p);
    int ndone = 0;
    gjob_t spin, sleeper, quick;
    uint64_t t0 = eng_now_ns();
    gjob_init(&spin, ms, t0 + 1500 * MS, &ndone);
    rt_pool_submit(p, &spin.job, true);
    for (int k = 0; k < 2000 && !__atomic_load_n(&spin.started, __ATOMIC_SEQ_CST); k++) usleep(1000);
    usleep(50 * 1000); /* the spinner holds the worker */
    uint64_t t1 = eng_now_ns();
    gjob_init(&sleeper, mz, 0, &ndone);
    gjob_init(&quick, me, 0, &ndone);
    rt_pool_submit(p, &sleeper.job, true);
    rt_pool_submit(p, &quick.job, true);
    run_until(&loop, &ndone, 3, 10000);
    assert_int_equal(ndone, 3);
    assert_int_equal(spin.res.trap, ENG_TRAP_DEADLINE);
    assert_int_equal(sleeper.res.trap, ENG_OK);
    assert_int_equal(quick.res.trap, ENG_OK);
    /* Without slicing they would end after the spinner, at t0 + 1.5 s. */
    assert_true(quick.end_ns - t1 < 500 * MS);
    assert_true(sleeper.end_ns - t1 >= 100 * MS);
    assert_true(sleeper.end_ns - t1 < 700 * MS);
    assert_true(sleeper.end_ns < spin.end_ns);
    assert_true(sleeper.res.cpu_ns < 100 * MS);
    assert_true(spin.res.cpu_ns > 500 * MS); /* it still got most of the CPU */
    rt_pool_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    rt_module_release(ms);
    rt_module_release(mz);
    rt_module_release(me);
    rt_cache_free(c);
}

/* A parked guest still stops at its deadline, and at once when
 * interrupted; a trap inside a fiber is reported like any other. */
static void test_deadline_interrupt_trap(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    rt_cache_t *c = rt_cache_new();
    rt_module_t *mz = compile_sleep(c, 10000 * MS);
    rt_module_t *mt = compile(c, "sha256:trap", mod_trap, sizeof mod_trap);
    assert_non_null(mz);
    assert_non_null(mt);
    rt_pool_t *p = rt_pool_new(&loop, 1, err, sizeof err);
    assert_non_null(p);
    int ndone = 0;
    gjob_t late, intr, trap;
    uint64_t t0 = eng_now_ns();
    gjob_init(&late, mz, t0 + 200 * MS, &ndone);
    gjob_init(&intr, mz, 0, &ndone);
    gjob_init(&trap, mt, 0, &ndone);
    rt_pool_submit(p, &late.job, true);
    rt_pool_submit(p, &intr.job, true);
    rt_pool_submit(p, &trap.job, true);
    for (int k = 0; k < 2000 && !__atomic_load_n(&intr.started, __ATOMIC_SEQ_CST); k++) usleep(1000);
    usleep(100 * 1000); /* intr is parked by now */
    uint64_t t1 = eng_now_ns();
    rt_pool_interrupt(p, &intr.job);
    run_until(&loop, &ndone, 3, 10000);
    assert_int_equal(ndone, 3);

    assert_int_equal(late.rc, -1);
    assert_int_equal(late.res.trap, ENG_TRAP_DEADLINE);
    assert_true(late.end_ns >= t0 + 200 * MS);
    assert_true(late.end_ns < t0 + 2000 * MS);

    assert_int_equal(intr.rc, -1);
    assert_int_equal(intr.res.trap, ENG_TRAP_DEADLINE);
    assert_non_null(strstr(intr.res.message, "interrupted"));
    assert_true(intr.end_ns - t1 < 1000 * MS);

    assert_int_equal(trap.rc, -1);
    assert_int_equal(trap.res.trap, ENG_TRAP_UNREACHABLE);
    assert_non_null(strstr(trap.res.message, "unreachable"));
    assert_true(trap.in_fiber);

    rt_pool_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    rt_module_release(mz);
    rt_module_release(mt);
    rt_cache_free(c);
}

/* rt_pool_free wakes and stops parked guests instead of waiting 30 s. */
static void test_free_stops_parked(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    rt_cache_t *c = rt_cache_new();
    rt_module_t *mz = compile_sleep(c, 30000 * MS);
    assert_non_null(mz);
    rt_pool_t *p = rt_pool_new(&loop, 2, err, sizeof err);
    assert_non_null(p);
    int ndone = 0;
    gjob_t g[4];
    for (int k = 0; k < 4; k++) {
        gjob_init(&g[k], mz, 0, &ndone);
        rt_pool_submit(p, &g[k].job, true);
    }
    for (int k = 0; k < 4; k++)
        for (int n = 0; n < 2000 && !__atomic_load_n(&g[k].started, __ATOMIC_SEQ_CST); n++)
            usleep(1000);
    usleep(50 * 1000);
    uint64_t t0 = eng_now_ns();
    rt_pool_free(p);
    assert_true(eng_now_ns() - t0 < 2000 * MS);
    for (int k = 0; k < 4; k++) assert_int_equal(g[k].res.trap, ENG_TRAP_DEADLINE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(ndone, 0); /* done never runs after free */
    rt_module_release(mz);
    rt_cache_free(c);
}

/* Off a fiber, rt_sleep_until sleeps the thread and honours the exec. */
static void test_sleep_until_off_fiber(void **state)
{
    (void)state;
    eng_exec_t *x = eng_exec_new(0);
    assert_false(rt_in_fiber());
    assert_int_equal(rt_fiber_foreign_cpu_ns(), 0);
    uint64_t t0 = eng_now_ns();
    assert_int_equal(rt_sleep_until(x, t0 + 30 * MS), 0);
    assert_true(eng_now_ns() >= t0 + 30 * MS);
    eng_exec_set_deadline(x, eng_now_ns() + 20 * MS);
    t0 = eng_now_ns();
    assert_int_equal(rt_sleep_until(x, UINT64_MAX), -1);
    assert_true(eng_now_ns() - t0 < 1000 * MS);
    eng_exec_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fiber_switch),
        cmocka_unit_test(test_sleepers_share_one_worker),
        cmocka_unit_test(test_cpu_bound_does_not_starve),
        cmocka_unit_test(test_deadline_interrupt_trap),
        cmocka_unit_test(test_free_stops_parked),
        cmocka_unit_test(test_sleep_until_off_fiber),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
