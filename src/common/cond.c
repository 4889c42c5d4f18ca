/*
 * cond.c — monotonic condition variables (cond.h).
 */
#include "common/cond.h"

#include <time.h>

int cm_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

int cm_cond_wait_until_ns(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t at_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(at_ns / 1000000000u),
                          .tv_nsec = (long)(at_ns % 1000000000u)};
    return pthread_cond_timedwait(cv, mu, &ts);
}
