/*
 * kv_park.c — wasmfn_kv calls on Redis run off the guest's worker
 * (internal.h, kv_park_*).
 *
 * A call on Redis waits for a network round trip. Made on the guest's
 * worker, it would hold the worker, and every other guest scheduled on it,
 * for as long as Redis takes: with Redis stopped, up to the command
 * timeout per call, call after call, so one function looping over KV calls
 * would starve every other function on its worker until its deadline. So
 * the guest's side (kv_guest.c) copies what a call needs out of guest
 * memory into a job, a thread of this pool makes the blocking call, and
 * the guest parks on a waker (wait.h) until the job is done, then copies
 * the result into guest memory. The copies matter: a guest stopped at its
 * deadline lets go of its job while a thread may still be in the call, and
 * its memory may be gone by the time the call returns; the thread then
 * frees the job.
 *
 * Threads are made on demand, up to KV_PARK_THREADS (the Redis connection
 * pool's size: more would only wait for a connection), and live until the
 * pool is freed; jobs queue in arrival order while all are busy. The cost
 * is a thread hand-off each way and a wake per call.
 */
#define _GNU_SOURCE
#include "host/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define KV_PARK_THREADS 16

struct kv_park {
    const ho_wait_ops_t *ops;
    pthread_mutex_t mu;          /* guards everything below and every job's done/abandoned/waker */
    pthread_cond_t cv;           /* a job queued, or stop */
    kv_job_t *head, *tail;       /* queued jobs */
    pthread_t threads[KV_PARK_THREADS];
    int nthreads, idle;
    bool stop;
};

kv_park_t *kv_park_new(const ho_wait_ops_t *ops)
{
    kv_park_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ops = ops;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

static void *park_main(void *arg)
{
    kv_park_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (!p->head) break; /* stopping, nothing left */
        kv_job_t *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        if (j->abandoned) { /* its guest stopped before it started: not made at all */
            pthread_mutex_unlock(&p->mu);
            j->free(j);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        j->run(j);
        pthread_mutex_lock(&p->mu);
        j->done = true;
        if (j->abandoned) {
            pthread_mutex_unlock(&p->mu);
            j->free(j);
            pthread_mutex_lock(&p->mu);
        } else if (j->waker) {
            p->ops->wake(j->waker); /* under mu: the guest frees it only after taking mu */
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void kv_park_free(kv_park_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int kv_park_run(kv_park_t *p, kv_job_t *j, eng_exec_t *x)
{
    void *waker = p->ops->waker_new();
    if (!waker) {
        j->run(j); /* out of memory for a waker: make the call here */
        return 0;
    }
    j->waker = waker;
    j->done = j->abandoned = false;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        p->ops->waker_free(waker);
        j->waker = NULL;
        j->run(j);
        return 0;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    if (p->idle == 0 && p->nthreads < KV_PARK_THREADS &&
        pthread_create(&p->threads[p->nthreads], NULL, park_main, p) == 0)
        p->nthreads++;
    if (p->nthreads == 0) { /* no thread could be made: make the call here */
        p->head = p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        p->ops->waker_free(waker);
        j->waker = NULL;
        j->run(j);
        return 0;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);

    uint64_t deadline = eng_exec_deadline(x);
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool done = j->done;
        pthread_mutex_unlock(&p->mu);
        if (done) break;
        /* Wakes may be spurious: the loop re-checks done. */
        if (p->ops->wait(waker, x, deadline ? deadline : UINT64_MAX) != 0) {
            pthread_mutex_lock(&p->mu);
            if (!j->done) {
                j->abandoned = true; /* the thread frees it */
                rc = -1;
            }
            j->waker = NULL;
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
    /* No wake can come now: done was seen under mu (the thread wakes under
     * mu right after setting it), or the waker was detached under mu. */
    pthread_mutex_lock(&p->mu);
    j->waker = NULL;
    pthread_mutex_unlock(&p->mu);
    p->ops->waker_free(waker);
    return rc;
}
