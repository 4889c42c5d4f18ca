/*
 * pool.c — the worker threads that run guest code (runtime.h).
 *
 * A guest may run for seconds, so it must never run on the event loop
 * thread. Jobs wait in two FIFO lists — urgent (requests) and background
 * (warming instances) — under one mutex with a condition variable; a
 * worker takes the oldest urgent job, else the oldest background one.
 * Finished jobs go on a completion list and the loop is woken with
 * uv_async_send (which coalesces, so one wake-up may deliver many).
 *
 * The one lock (`mu`) guards both lists, the completion list and every
 * job's `state` and `exec`, which is what makes rt_pool_cancel and
 * rt_pool_interrupt race-free against a worker picking the job up.
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

typedef struct job_list {
    rt_job_t *head, *tail;
} job_list_t;

typedef struct worker {
    rt_pool_t *pool;
    pthread_t thread;
    eng_exec_t *exec;
    bool started;
} worker_t;

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

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    rt_pool_t *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && !p->urgent.head && !p->background.head)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stopping) break;
        rt_job_t *j = list_pop(&p->urgent);
        if (!j) j = list_pop(&p->background);
        j->state = JOB_RUNNING;
        j->exec = w->exec;
        pthread_mutex_unlock(&p->mu);

        j->work(j, w->exec);

        pthread_mutex_lock(&p->mu);
        j->state = JOB_FINISHED;
        j->exec = NULL;
        list_push(&p->finished, j);
        pthread_mutex_unlock(&p->mu);
        uv_async_send(&p->async);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

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
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n > 0 ? (uint32_t)n : 1;
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
    pthread_cond_init(&p->cv, NULL);
    if (uv_async_init(loop, &p->async, pool_on_async) != 0) {
        snprintf(err, errlen, "worker pool: cannot create the async handle");
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
        /* Guests recurse on their own value stack, not the C stack, but
         * host calls and the interpreter want some room. */
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

void rt_pool_interrupt(rt_pool_t *p, rt_job_t *job)
{
    pthread_mutex_lock(&p->mu);
    if (job->state == JOB_RUNNING && job->exec) eng_exec_interrupt(job->exec);
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
    for (uint32_t i = 0; i < p->nworkers; i++)
        if (p->workers[i].exec) eng_exec_interrupt(p->workers[i].exec);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (uint32_t i = 0; i < p->nworkers; i++) {
        if (p->workers[i].started) pthread_join(p->workers[i].thread, NULL);
        if (p->workers[i].exec) eng_exec_free(p->workers[i].exec);
    }
    free(p->workers);
    p->workers = NULL;
    p->finished.head = p->finished.tail = NULL;
    uv_close((uv_handle_t *)&p->async, pool_on_closed);
}
