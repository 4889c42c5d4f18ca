/*
 * wait.h — how a host call parks its guest while another thread does the
 * work (an outbound HTTP response, a Redis round trip), shared by the host
 * APIs. The runtime gives its fiber scheduler's wakers (runtime.h,
 * rt_waker_*, through rt_link_wait_ops), so a waiting guest holds no
 * worker: the worker runs other guests meanwhile.
 */
#ifndef WASMFN_HOST_WAIT_H
#define WASMFN_HOST_WAIT_H

#include <stdint.h>

#include "engine/engine.h"

/* waker_new/free make and free a waker; wait parks the guest running on x
 * until wake (any thread), until_ns (CLOCK_MONOTONIC; UINT64_MAX = none)
 * or x's stop, as rt_waker_wait: 0 woken (a wake before the wait counts;
 * wakes may be spurious), 1 until_ns came, -1 the guest must stop. */
typedef struct ho_wait_ops {
    void *(*waker_new)(void);
    void (*waker_free)(void *k);
    void (*wake)(void *k);
    int (*wait)(void *k, eng_exec_t *x, uint64_t until_ns);
} ho_wait_ops_t;

#endif
