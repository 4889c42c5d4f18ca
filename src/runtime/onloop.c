/*
 * onloop.c — running a short job on the event loop thread itself
 * (runtime.h, rt_onloop_).
 *
 * Handing a request to a worker costs both threads a wake-up and a
 * context switch, 4–5 µs of CPU per request on the machines of
 * docs/benchmarks.md ("No hand-off at all"): more than a hello-world guest
 * runs. So serving/ may run a job here instead, as a trial
 * (rt_request_t.trial_until_ns): its guest is given up after a slice of
 * tens of microseconds or as soon as it would wait, with nothing of it
 * seen, and the request then goes to a worker as usual. The loop thread
 * is never held longer than a slice plus one interruption check.
 *
 * The job runs at once on a fiber of its own (a stack with a guard page,
 * and an eng_exec_t bounded by it, as a worker's fibers are), so a deep
 * guest traps "call stack exhausted" instead of overflowing the loop
 * thread's stack. Nothing can park it: the fiber always runs to its end
 * before rt_onloop_run returns. Its done function runs later, from an idle
 * handle, as a worker's job's done does from the pool's async handle, so a
 * caller never sees its job finish inside its own call.
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>

#include "runtime/cpu_clock.h"
#include "runtime/fiber.h"

struct rt_onloop {
    uv_idle_t idle;
    rt_fiber_t *fiber;
    eng_exec_t *exec;
    rt_job_t *job;               /* the one running */
    rt_job_t *done_head, *done_tail; /* finished, their done not yet run */
};

static void onloop_main(void *arg)
{
    rt_onloop_t *o = arg;
    o->job->work(o->job, o->exec);
}

static void onloop_on_idle(uv_idle_t *h)
{
    rt_onloop_t *o = h->data;
    rt_job_t *j = o->done_head;
    o->done_head = o->done_tail = NULL;
    uv_idle_stop(&o->idle);
    while (j) {
        rt_job_t *next = j->next;
        j->next = NULL;
        j->done(j); /* may free j, and may run another job here */
        j = next;
    }
}

rt_onloop_t *rt_onloop_new(uv_loop_t *loop, char *err, size_t errlen)
{
    rt_onloop_t *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
#if defined(__SANITIZE_ADDRESS__)
    size_t stack = (size_t)RT_FIBER_STACK_BYTES * 4; /* as pool.c's fibers */
#else
    size_t stack = RT_FIBER_STACK_BYTES;
#endif
    if (!(o->fiber = rt_fiber_new(stack, err, errlen))) {
        free(o);
        return NULL;
    }
    if (!(o->exec = eng_exec_new(RT_FIBER_EXEC_BYTES))) {
        snprintf(err, errlen, "out of memory");
        rt_fiber_free(o->fiber);
        free(o);
        return NULL;
    }
    eng_exec_set_stack(o->exec, rt_fiber_stack_base(o->fiber), rt_fiber_stack_size(o->fiber));
    uv_idle_init(loop, &o->idle);
    o->idle.data = o;
    rt_cpu_fast(); /* the CPU clock's one-time self-test, not on a request's path */
    return o;
}

void rt_onloop_run(rt_onloop_t *o, rt_job_t *job)
{
    /* Not the pool's: rt_pool_cancel and rt_pool_interrupt leave it be. */
    job->state = 0;
    job->exec = NULL;
    job->task = NULL;
    job->next = NULL;
    o->job = job;
    rt_fiber_start(o->fiber, onloop_main, o);
    rt_fiber_resume(o->fiber);
    if (!rt_fiber_finished(o->fiber)) abort(); /* nothing here suspends a fiber */
    o->job = NULL;
    if (o->done_tail) o->done_tail->next = job;
    else o->done_head = job;
    o->done_tail = job;
    uv_idle_start(&o->idle, onloop_on_idle);
}

static void onloop_on_closed(uv_handle_t *h)
{
    free(h->data);
}

void rt_onloop_free(rt_onloop_t *o)
{
    if (!o) return;
    o->done_head = o->done_tail = NULL;
    rt_fiber_free(o->fiber);
    eng_exec_free(o->exec);
    uv_close((uv_handle_t *)&o->idle, onloop_on_closed);
}
