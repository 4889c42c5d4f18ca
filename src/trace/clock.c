/*
 * clock.c — span times: OTLP wants Unix nanoseconds, while calls measure
 * with the monotonic clock (eng_now_ns); this converts between them.
 * A file of its own, below context.c and tracer.c, so neither calls back
 * into the other (make cycles).
 */
#include "trace/trace.h"

#include <time.h>

uint64_t tr_unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tr_unix_from_mono_ns(uint64_t mono_ns)
{
    struct timespec m;
    clock_gettime(CLOCK_MONOTONIC, &m);
    uint64_t mono_now = (uint64_t)m.tv_sec * 1000000000ull + (uint64_t)m.tv_nsec;
    uint64_t unix_now = tr_unix_now_ns();
    return mono_ns <= mono_now ? unix_now - (mono_now - mono_ns) : unix_now + (mono_ns - mono_now);
}
