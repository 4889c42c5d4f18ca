/*
 * test_cond.c — the monotonic condition variables of src/common/cond.c
 * (the worker pool, the scaler, metering's flusher and outbound HTTP wait
 * on them): a wait ends at its CLOCK_MONOTONIC deadline, not before, and
 * one whose deadline has passed does not block.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "common/cond.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_waits_until_the_monotonic_deadline(void **state)
{
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    assert_int_equal(cm_cond_init_monotonic(&cv), 0);
    pthread_mutex_lock(&mu);
    uint64_t start = mono_ns(), at = start + 20000000u; /* 20 ms */
    int rc;
    do rc = cm_cond_wait_until_ns(&cv, &mu, at); /* spurious wake-ups wait again */
    while (rc == 0);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(mono_ns() >= at);
    /* A deadline in the past: no wait at all. */
    assert_int_equal(cm_cond_wait_until_ns(&cv, &mu, start), ETIMEDOUT);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_until_the_monotonic_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
