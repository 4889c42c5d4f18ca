/*
 * cond.h — condition variables that wait on CLOCK_MONOTONIC, so a wall
 * clock step (NTP, an operator's `date`) never stretches or cuts a wait.
 * Prefix: cm_cond_.
 */
#ifndef WASMFN_COMMON_COND_H
#define WASMFN_COMMON_COND_H

#include <pthread.h>
#include <stdint.h>

/* pthread_cond_init with the monotonic clock. Returns its result. */
int cm_cond_init_monotonic(pthread_cond_t *cv);

/* pthread_cond_timedwait until at_ns on CLOCK_MONOTONIC (cv made by
 * cm_cond_init_monotonic, mu held). Returns its result (ETIMEDOUT once
 * at_ns has passed). */
int cm_cond_wait_until_ns(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t at_ns);

#endif
