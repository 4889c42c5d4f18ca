/*
 * pool.c — the worker threads that run guest code (runtime.h), each a
 * scheduler of fibers.
 *
 * A guest may run for seconds, so it must never run on the event loop
 * thread. Jobs wait in two FIFO lists — urgent (requests) and background
 * (warming instances) — under one mutex with a condition variable. A
 * worker takes the oldest urgent job, else the oldest background one, and
 * runs it on a fiber of its own (fiber.h: a small stack with a guard page,
 * plus an eng_exec_t), so the job can stop half-way without holding the
 * thread:
 *
 *   - a guest sleeping in poll_oneoff (the WASI sleep hook calls
 *     rt_sleep_until) is put in the worker's sleepers, a binary heap
 *     ordered by wake time, and the worker runs something else;
 *   - a CPU-bound guest is switched out at the engine's interruption
 *     checks (the exec's yield hook) once it has run RT_SLICE_NS and
 *     something else is waiting: a ready fiber, a sleeper whose time has
 *     come, or a new job;
 *   - a guest with a CPU limit (rt_job_t.cpu_limit_millis) that has used
 *     its share of the current RT_CPU_PERIOD_NS is parked in the sleepers
 *     until the period ends, whether or not anything else waits (see
 *     task_cpu_limit).
 *
 * The scheduler loop, per worker: move due sleepers to the ready list;
 * then alternate between starting a new job and resuming the oldest ready
 * fiber (new work cannot starve parked guests, nor the reverse); with
 * neither, wait on the condition variable until the next wake time or new
 * work. Fibers stay on the worker that started them (fiber.h says why), so
 * ready lists and heaps are per worker; the lock is still the one pool
 * mutex, because rt_pool_interrupt (loop thread) must be able to wake a
 * parked guest. Finished jobs go on a completion list and the loop is
 * woken with uv_async_send (which coalesces, so one wake-up may deliver
 * many).
 *
 * The one lock (`mu`) guards the job lists, the completion list, every
 * job's `state`, `exec` and `task`, every task's `state`, and each
 * worker's ready list, heap and `running`. A task's fiber and exec are
 * touched only by its own worker thread. Finished tasks (fiber stack +
 * exec) are kept in a small per-worker cache, so starting a job maps
 * nothing in the common case.
 *
 * If a fiber cannot be made (out of memory, or of mappings), the job runs
 * directly on the worker thread with the worker's own exec, as before
 * fibers: slower to share, never lost.
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cond.h"
#include "runtime/cpu_clock.h"
#include "runtime/fiber.h"

/* Finished tasks kept per worker for reuse. Each holds a fiber stack and
 * an exec whose touched pages stay resident, so the cache is small. */
#define TASK_CACHE_MAX 64

enum { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };
enum { TASK_RUNNING, TASK_READY, TASK_SLEEPING };

typedef struct worker worker_t;

typedef struct task {
    rt_fiber_t *fiber;
    eng_exec_t *exec;
    worker_t *w;
    rt_job_t *job;
    int state;                /* TASK_*; guarded by mu */
    uint64_t wake_ns;         /* while sleeping */
    uint32_t heap_idx;        /* while sleeping: its index in w->heap */
    uint64_t slice_start_ns;  /* when it was last resumed */
    uint64_t foreign_cpu_ns;  /* thread CPU spent elsewhere while switched out */
    /* The CPU limit (task_cpu_limit), fiber thread only. */
    uint32_t cpu_limit_millis; /* 0 = none */
    uint64_t period_start_ns;  /* when the current period began; 0 = not yet */
    uint64_t period_cpu0_ns;   /* task_cpu_ns at that moment */
    uint64_t cpu_checked_ns;   /* when the CPU clock was last read */
    uint64_t cpu_used_ns;      /* CPU used in the period, as read then */
    struct task *next;        /* ready list or spare cache */
} task_t;

typedef struct task_list {
    task_t *head, *tail;
} task_list_t;

typedef struct job_list {
    rt_job_t *head, *tail;
} job_list_t;

struct worker {
    rt_pool_t *pool;
    pthread_t thread;
    eng_exec_t *exec;         /* for jobs that could not get a fiber */
    bool started;
    task_list_t ready;        /* guarded by mu */
    task_t **heap;            /* sleepers, min-heap on wake_ns; guarded by mu */
    uint32_t nheap, heap_cap; /* heap_cap >= nlive always, so a push never fails */
    uint32_t nlive;           /* tasks holding a job; guarded by mu */
    task_t *running;          /* guarded by mu */
    bool new_turn;            /* next pick: a new job before a ready task */
    task_t *spare;            /* worker thread only */
    uint32_t nspare;
};

struct rt_pool {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_list_t urgent, background, finished; /* guarded by mu */
    bool stopping;                           /* guarded by mu */
    uint32_t nworkers;
    worker_t *workers;
};

/* The task running on this thread, if any. */
static __thread task_t *task_now;

/* ---- lists and the sleepers' heap --------------------------------------- */

static void list_push(job_list_t *l, rt_job_t *j)
{
    j->next = NULL;
    if (l->tail) l->tail->next = j;
    else l->head = j;
    l->tail = j;
}

static rt_job_t *list_pop(job_list_t *l)
{
    rt_job_t *j = l->head;
    if (j) {
        l->head = j->next;
        if (!l->head) l->tail = NULL;
        j->next = NULL;
    }
    return j;
}

static bool list_remove(job_list_t *l, rt_job_t *j)
{
    rt_job_t *prev = NULL;
    for (rt_job_t *it = l->head; it; prev = it, it = it->next) {
        if (it != j) continue;
        if (prev) prev->next = it->next;
        else l->head = it->next;
        if (l->tail == it) l->tail = prev;
        it->next = NULL;
        return true;
    }
    return false;
}

static void tlist_push(task_list_t *l, task_t *t)
{
    t->next = NULL;
    if (l->tail) l->tail->next = t;
    else l->head = t;
    l->tail = t;
}

static task_t *tlist_pop(task_list_t *l)
{
    task_t *t = l->head;
    if (t) {
        l->head = t->next;
        if (!l->head) l->tail = NULL;
        t->next = NULL;
    }
    return t;
}

static void heap_set(worker_t *w, uint32_t i, task_t *t)
{
    w->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(worker_t *w, uint32_t i)
{
    task_t *t = w->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (w->heap[parent]->wake_ns <= t->wake_ns) break;
        heap_set(w, i, w->heap[parent]);
        i = parent;
    }
    heap_set(w, i, t);
}

static void heap_down(worker_t *w, uint32_t i)
{
    task_t *t = w->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= w->nheap) break;
        if (c + 1 < w->nheap && w->heap[c + 1]->wake_ns < w->heap[c]->wake_ns) c++;
        if (t->wake_ns <= w->heap[c]->wake_ns) break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, t);
}

static void heap_push(worker_t *w, task_t *t)
{
    heap_set(w, w->nheap++, t);
    heap_up(w, w->nheap - 1);
}

static void heap_remove(worker_t *w, task_t *t)
{
    uint32_t i = t->heap_idx;
    task_t *last = w->heap[--w->nheap];
    if (i == w->nheap) return;
    heap_set(w, i, last);
    heap_up(w, i);
    heap_down(w, last->heap_idx);
}

/* ---- switching out of a fiber ------------------------------------------- */

/* Called on the fiber after it has put itself on the ready list or in the
 * heap (under mu): back to the scheduler until resumed. */
static void task_switch_out(task_t *t)
{
    uint64_t out = rt_cpu_thread_ns();
    rt_fiber_suspend(t->fiber);
    t->foreign_cpu_ns += rt_cpu_thread_ns() - out;
}

/* CPU time of the fiber t (on its thread): the thread's CPU clock less
 * what other fibers used while t was switched out. Only differences mean
 * anything. */
static uint64_t task_cpu_ns(const task_t *t) { return rt_cpu_thread_ns() - t->foreign_cpu_ns; }

/* Parks t until wake_ns; false when the pool is stopping (x is then
 * interrupted). Called on t's fiber, without mu. */
static bool task_park(task_t *t, eng_exec_t *x, uint64_t wake_ns)
{
    rt_pool_t *p = t->w->pool;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        eng_exec_interrupt(x);
        return false;
    }
    t->wake_ns = wake_ns;
    t->state = TASK_SLEEPING;
    heap_push(t->w, t);
    pthread_mutex_unlock(&p->mu);
    task_switch_out(t);
    return true;
}

/* The CPU limit, CFS bandwidth control's rule applied to one fiber: in each
 * period of RT_CPU_PERIOD_NS the guest may use limit/1000 of it as CPU
 * time (its quota); once it has, it sleeps until the period ends, and the
 * next period starts when it wakes. Reading the thread's CPU clock may be
 * a system call (cpu_clock.h), so it is read only when the quota could
 * have been reached: CPU time grows no faster than wall time, so until
 * used + (now - last read) reaches the quota there is nothing to check. A guest interrupted
 * while parked is woken at once (rt_pool_interrupt) and stops at the
 * engine's check that follows. Returns true when it parked. */
static bool task_cpu_limit(task_t *t, eng_exec_t *x, uint64_t now)
{
    const uint64_t period = RT_CPU_PERIOD_NS;
    if (t->period_start_ns == 0 || now - t->period_start_ns >= period) {
        t->period_start_ns = now;
        t->period_cpu0_ns = task_cpu_ns(t);
        t->cpu_checked_ns = now;
        t->cpu_used_ns = 0;
        return false;
    }
    uint64_t quota = (uint64_t)t->cpu_limit_millis * (period / 1000u);
    if (t->cpu_used_ns + (now - t->cpu_checked_ns) < quota) return false;
    t->cpu_used_ns = task_cpu_ns(t) - t->period_cpu0_ns;
    t->cpu_checked_ns = now;
    if (t->cpu_used_ns < quota) return false;
    if (!task_park(t, x, t->period_start_ns + period)) return false;
    now = eng_now_ns();
    t->period_start_ns = now;
    t->period_cpu0_ns = task_cpu_ns(t);
    t->cpu_checked_ns = now;
    t->cpu_used_ns = 0;
    t->slice_start_ns = now; /* it was off the CPU: a fresh slice */
    return true;
}

/* The exec's yield hook: the CPU limit, then the time slice. */
static void task_yield(eng_exec_t *x, void *ud)
{
    task_t *t = ud;
    if (task_now != t) return; /* the exec is being used off its fiber */
    uint64_t now = eng_now_ns();
    if (t->cpu_limit_millis && task_cpu_limit(t, x, now)) return;
    if (now - t->slice_start_ns < RT_SLICE_NS) return;
    worker_t *w = t->w;
    rt_pool_t *p = w->pool;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        eng_exec_interrupt(x);
        return;
    }
    bool others = w->ready.head || (w->nheap && w->heap[0]->wake_ns <= now) || p->urgent.head ||
                  p->background.head;
    if (!others) {
        pthread_mutex_unlock(&p->mu);
        t->slice_start_ns = now;
        return;
    }
    t->state = TASK_READY;
    tlist_push(&w->ready, t);
    pthread_mutex_unlock(&p->mu);
    task_switch_out(t);
}

bool rt_in_fiber(void) { return task_now != NULL; }

uint64_t rt_fiber_foreign_cpu_ns(void) { return task_now ? task_now->foreign_cpu_ns : 0; }

int rt_sleep_until(eng_exec_t *x, uint64_t until_ns)
{
    task_t *t = task_now;
    for (;;) {
        if (eng_exec_should_stop(x)) return -1;
        uint64_t now = eng_now_ns();
        if (now >= until_ns) return 0;
        if (!t) {
            uint64_t d = until_ns - now;
            if (d > 10000000u) d = 10000000u;
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)d};
            nanosleep(&ts, NULL);
            continue;
        }
        rt_pool_t *p = t->w->pool;
        pthread_mutex_lock(&p->mu);
        if (p->stopping) {
            pthread_mutex_unlock(&p->mu);
            eng_exec_interrupt(x);
            return -1;
        }
        t->wake_ns = until_ns;
        t->state = TASK_SLEEPING;
        heap_push(t->w, t);
        pthread_mutex_unlock(&p->mu);
        task_switch_out(t);
    }
}

/* ---- wakers --------------------------------------------------------------- */

/* Lock order: a waker's mu, then the pool's mu (both the waiting fiber and
 * the waking thread take them in that order). `task` is set only while its
 * fiber is parked in rt_waker_wait and cleared (under mu) before the fiber
 * goes on, so a wake never touches a task that has moved to another job. */
struct rt_waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* off-fiber waits */
    bool signaled;      /* guarded by mu */
    task_t *task;       /* the parked fiber; guarded by mu */
};

static void task_wake(rt_pool_t *p, task_t *t);

rt_waker_t *rt_waker_new(void)
{
    rt_waker_t *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    pthread_mutex_init(&k->mu, NULL);
    cm_cond_init_monotonic(&k->cv);
    return k;
}

void rt_waker_free(rt_waker_t *k)
{
    if (!k) return;
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
}

void rt_waker_wake(rt_waker_t *k)
{
    pthread_mutex_lock(&k->mu);
    k->signaled = true;
    if (k->task) {
        rt_pool_t *p = k->task->w->pool;
        pthread_mutex_lock(&p->mu);
        task_wake(p, k->task);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

int rt_waker_wait(rt_waker_t *k, eng_exec_t *x, uint64_t until_ns)
{
    task_t *t = task_now;
    for (;;) {
        if (eng_exec_should_stop(x)) return -1;
        pthread_mutex_lock(&k->mu);
        if (k->signaled) {
            k->signaled = false;
            pthread_mutex_unlock(&k->mu);
            return 0;
        }
        uint64_t now = eng_now_ns();
        if (now >= until_ns) {
            pthread_mutex_unlock(&k->mu);
            return 1;
        }
        if (!t) {
            uint64_t at = until_ns - now > 10000000u ? now + 10000000u : until_ns;
            cm_cond_wait_until_ns(&k->cv, &k->mu, at);
            pthread_mutex_unlock(&k->mu);
            continue;
        }
        rt_pool_t *p = t->w->pool;
        pthread_mutex_lock(&p->mu);
        if (p->stopping) {
            pthread_mutex_unlock(&p->mu);
            pthread_mutex_unlock(&k->mu);
            eng_exec_interrupt(x);
            return -1;
        }
        t->wake_ns = until_ns;
        t->state = TASK_SLEEPING;
        heap_push(t->w, t);
        k->task = t;
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&k->mu);
        task_switch_out(t);
        pthread_mutex_lock(&k->mu);
        k->task = NULL;
        pthread_mutex_unlock(&k->mu);
    }
}

/* ---- the scheduler ------------------------------------------------------ */

static void task_main(void *arg)
{
    task_t *t = arg;
    t->job->work(t->job, t->exec);
}

/* A finished task: a spare for the next job, or freed. Worker thread. */
static void task_put(worker_t *w, task_t *t)
{
    t->job = NULL;
    if (w->nspare < TASK_CACHE_MAX) {
        t->next = w->spare;
        w->spare = t;
        w->nspare++;
        return;
    }
    rt_fiber_free(t->fiber);
    eng_exec_free(t->exec);
    free(t);
}

static task_t *task_get(worker_t *w)
{
    task_t *t = w->spare;
    if (t) {
        w->spare = t->next;
        w->nspare--;
        t->next = NULL;
        t->foreign_cpu_ns = 0;
        return t;
    }
    char err[128];
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->w = w;
    /* Under AddressSanitizer every C frame is several times larger. */
#if defined(__SANITIZE_ADDRESS__)
    size_t stack = (size_t)RT_FIBER_STACK_BYTES * 4;
#else
    size_t stack = RT_FIBER_STACK_BYTES;
#endif
    t->fiber = rt_fiber_new(stack, err, sizeof err);
    t->exec = t->fiber ? eng_exec_new(RT_FIBER_EXEC_BYTES) : NULL;
    if (!t->exec) {
        rt_fiber_free(t->fiber);
        free(t);
        return NULL;
    }
    /* Native code and nested calls check the stack they run on against
     * this: a runaway guest traps instead of hitting the guard page. */
    eng_exec_set_stack(t->exec, rt_fiber_stack_base(t->fiber), rt_fiber_stack_size(t->fiber));
    eng_exec_set_yield(t->exec, task_yield, t);
    return t;
}

/* Hands a finished job to the loop. mu held; the caller then wakes the
 * loop (pool_wake_loop) once it has let go of mu. */
static void job_finish_locked(rt_pool_t *p, rt_job_t *j)
{
    j->state = JOB_FINISHED;
    j->exec = NULL;
    j->task = NULL;
    list_push(&p->finished, j);
}

static void pool_wake_loop(rt_pool_t *p) { uv_async_send(&p->async); }

/* Runs t until it parks or finishes. Called without mu; t->state is
 * TASK_RUNNING and w->running == t. Takes mu once on the way out (the
 * worker and the loop thread contend for it on every request, so each
 * hold counts). */
static void task_run(worker_t *w, task_t *t)
{
    task_now = t;
    t->slice_start_ns = eng_now_ns();
    rt_fiber_resume(t->fiber);
    task_now = NULL;
    rt_pool_t *p = w->pool;
    bool finished = rt_fiber_finished(t->fiber);
    rt_job_t *j = t->job;
    pthread_mutex_lock(&p->mu);
    w->running = NULL;
    if (finished) {
        w->nlive--;
        job_finish_locked(p, j);
    }
    pthread_mutex_unlock(&p->mu);
    if (finished) {
        task_put(w, t);
        pool_wake_loop(p);
    }
}

/* Starts job j (already JOB_RUNNING) on task t (NULL: none could be made).
 * Called with mu held; returns without it. */
static void worker_start(worker_t *w, rt_job_t *j, task_t *t)
{
    rt_pool_t *p = w->pool;
    if (t && w->nlive + 1 > w->heap_cap) {
        uint32_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        task_t **h = realloc(w->heap, cap * sizeof *h);
        if (h) {
            w->heap = h;
            w->heap_cap = cap;
        }
    }
    if (!t || w->nlive + 1 > w->heap_cap) {
        /* No fiber: run it right here, holding the thread. */
        j->exec = w->exec;
        pthread_mutex_unlock(&p->mu);
        if (t) task_put(w, t);
        j->work(j, w->exec);
        pthread_mutex_lock(&p->mu);
        job_finish_locked(p, j);
        pthread_mutex_unlock(&p->mu);
        pool_wake_loop(p);
        return;
    }
    t->job = j;
    t->state = TASK_RUNNING;
    /* A limit of a whole CPU or more cannot bind a guest on one thread. */
    t->cpu_limit_millis = j->cpu_limit_millis < 1000u ? j->cpu_limit_millis : 0;
    t->period_start_ns = 0;
    j->exec = t->exec;
    j->task = t;
    w->nlive++;
    w->running = t;
    pthread_mutex_unlock(&p->mu);
    rt_fiber_start(t->fiber, task_main, t);
    task_run(w, t);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    rt_pool_t *p = w->pool;
    rt_cpu_fast(); /* the CPU clock's one-time self-test (100 µs), not on a request's path */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        uint64_t now = eng_now_ns();
        while (w->nheap && w->heap[0]->wake_ns <= now) {
            task_t *t = w->heap[0];
            heap_remove(w, t);
            t->state = TASK_READY;
            tlist_push(&w->ready, t);
        }
        bool have_new = !p->stopping && (p->urgent.head || p->background.head);
        if (have_new && (!w->ready.head || w->new_turn)) {
            /* A spare task is a pointer pop (worker-local); making a new one
             * maps a stack, so that is done without mu, and then the lists
             * are looked at again. */
            task_t *t = w->spare ? task_get(w) : NULL;
            if (!t) {
                pthread_mutex_unlock(&p->mu);
                t = task_get(w);
                pthread_mutex_lock(&p->mu);
                if (p->stopping || !(p->urgent.head || p->background.head)) {
                    if (t) task_put(w, t);
                    continue;
                }
            }
            rt_job_t *j = list_pop(&p->urgent);
            if (!j) j = list_pop(&p->background);
            j->state = JOB_RUNNING;
            j->exec = NULL;
            j->task = NULL;
            w->new_turn = false;
            worker_start(w, j, t);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (w->ready.head) {
            task_t *t = tlist_pop(&w->ready);
            t->state = TASK_RUNNING;
            w->running = t;
            w->new_turn = true;
            pthread_mutex_unlock(&p->mu);
            task_run(w, t);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (p->stopping && w->nlive == 0) break;
        if (w->nheap) {
            uint64_t at = w->heap[0]->wake_ns;
            cm_cond_wait_until_ns(&p->cv, &p->mu, at);
        } else {
            pthread_cond_wait(&p->cv, &p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    while (w->spare) {
        task_t *t = w->spare;
        w->spare = t->next;
        rt_fiber_free(t->fiber);
        eng_exec_free(t->exec);
        free(t);
    }
    w->nspare = 0;
    return NULL;
}

/* ---- the pool ----------------------------------------------------------- */

static void pool_on_async(uv_async_t *a)
{
    rt_pool_t *p = a->data;
    pthread_mutex_lock(&p->mu);
    rt_job_t *j = p->finished.head;
    p->finished.head = p->finished.tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (j) {
        rt_job_t *next = j->next;
        j->next = NULL;
        j->state = JOB_IDLE;
        j->done(j); /* may free j */
        j = next;
    }
}

rt_pool_t *rt_pool_new(uv_loop_t *loop, uint32_t workers, char *err, size_t errlen)
{
    if (workers == 0) {
        /* One CPU is left to the event-loop thread, which parses HTTP and
         * answers, so workers and loop do not oversubscribe the cores. On 2
         * CPUs a short test gave one worker ~20% more hello-world requests/s
         * than two; the full comparison (docs/benchmarks.md) was within its
         * noise either way. Guests that sleep or wait park their fibers, so
         * one worker does not serialise them. */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n > 1 ? (uint32_t)(n - 1) : 1;
    }
    if (workers > 1024) workers = 1024;
    rt_pool_t *p = calloc(1, sizeof *p);
    if (!p || !(p->workers = calloc(workers, sizeof *p->workers))) {
        free(p);
        snprintf(err, errlen, "worker pool: out of memory");
        return NULL;
    }
    p->loop = loop;
    p->nworkers = workers;
    pthread_mutex_init(&p->mu, NULL);
    /* Wake times are CLOCK_MONOTONIC (eng_now_ns), so the wait is too. */
    cm_cond_init_monotonic(&p->cv);
    if (uv_async_init(loop, &p->async, pool_on_async) != 0) {
        snprintf(err, errlen, "worker pool: cannot create the async handle");
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p->workers);
        free(p);
        return NULL;
    }
    p->async.data = p;
    for (uint32_t i = 0; i < workers; i++) {
        worker_t *w = &p->workers[i];
        w->pool = p;
        w->exec = eng_exec_new(0);
        if (!w->exec) {
            snprintf(err, errlen, "worker pool: out of memory for worker %u", i);
            rt_pool_free(p);
            return NULL;
        }
        /* The scheduler and jobs that could not get a fiber run on the
         * thread's own stack. */
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8u << 20);
        int r = pthread_create(&w->thread, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (r != 0) {
            snprintf(err, errlen, "worker pool: cannot start thread %u: %s", i, strerror(r));
            rt_pool_free(p);
            return NULL;
        }
        w->started = true;
    }
    return p;
}

uint32_t rt_pool_workers(const rt_pool_t *p) { return p->nworkers; }

void rt_pool_submit(rt_pool_t *p, rt_job_t *job, bool urgent)
{
    pthread_mutex_lock(&p->mu);
    job->state = JOB_QUEUED;
    job->exec = NULL;
    job->task = NULL;
    list_push(urgent ? &p->urgent : &p->background, job);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool rt_pool_cancel(rt_pool_t *p, rt_job_t *job)
{
    bool removed = false;
    pthread_mutex_lock(&p->mu);
    if (job->state == JOB_QUEUED)
        removed = list_remove(&p->urgent, job) || list_remove(&p->background, job);
    if (removed) job->state = JOB_IDLE;
    pthread_mutex_unlock(&p->mu);
    return removed;
}

/* Makes a parked task ready. mu held. */
static void task_wake(rt_pool_t *p, task_t *t)
{
    if (t->state != TASK_SLEEPING) return;
    heap_remove(t->w, t);
    t->state = TASK_READY;
    tlist_push(&t->w->ready, t);
    pthread_cond_broadcast(&p->cv);
}

void rt_pool_interrupt(rt_pool_t *p, rt_job_t *job)
{
    pthread_mutex_lock(&p->mu);
    if (job->state == JOB_RUNNING && job->exec) {
        eng_exec_interrupt(job->exec);
        if (job->task) task_wake(p, job->task);
    }
    pthread_mutex_unlock(&p->mu);
}

static void pool_on_closed(uv_handle_t *h)
{
    rt_pool_t *p = h->data;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

void rt_pool_free(rt_pool_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    p->urgent.head = p->urgent.tail = NULL;
    p->background.head = p->background.tail = NULL;
    /* Every guest stops: the running ones at their next check, parked ones
     * are woken; hooks refuse to park or continue from now on. */
    for (uint32_t i = 0; i < p->nworkers; i++) {
        worker_t *w = &p->workers[i];
        if (w->exec) eng_exec_interrupt(w->exec);
        if (w->running) eng_exec_interrupt(w->running->exec);
        for (task_t *t = w->ready.head; t; t = t->next) eng_exec_interrupt(t->exec);
        while (w->nheap) {
            eng_exec_interrupt(w->heap[0]->exec);
            task_wake(p, w->heap[0]);
        }
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (uint32_t i = 0; i < p->nworkers; i++) {
        worker_t *w = &p->workers[i];
        if (w->started) pthread_join(w->thread, NULL);
        if (w->exec) eng_exec_free(w->exec);
        free(w->heap);
    }
    free(p->workers);
    p->workers = NULL;
    p->finished.head = p->finished.tail = NULL;
    uv_close((uv_handle_t *)&p->async, pool_on_closed);
}
