/*
 * busy.c — a test function that computes for a while: writes "busy start"
 * to stderr, then spins on the clock for the milliseconds in the query
 * (`?ms=20`, default 0; or microseconds, `?us=300`) and answers 200 "busy
 * N" (N as given). It imports nothing that
 * waits, so the daemon may start it on the event loop; the scheduling
 * tests check that one that outruns the loop's slice is handed to a worker
 * unseen (one answer, one log line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    const char *p = q ? strstr(q, "ms=") : NULL, *u = q ? strstr(q, "us=") : NULL;
    long ms = p ? atol(p + 3) : u ? atol(u + 3) : 0;
    if (ms < 0 || ms > 60000) ms = 0;
    fputs("busy start\n", stderr);
    fflush(stderr);
    long long end = now_ns() + ms * (u ? 1000LL : 1000000LL);
    while (now_ns() < end) {
    }
    printf("Content-Type: text/plain\n\nbusy %ld\n", ms);
    return 0;
}
