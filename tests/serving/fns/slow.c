/*
 * slow.c — a test function that takes its time: sleeps for the number of
 * milliseconds in the query (`?ms=800`, default 1000) and then answers 200
 * with "slept N ms". The serving tests use it to hold instances busy
 * (max-scale and the queue) and to have a request in flight during SIGTERM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    const char *p = q ? strstr(q, "ms=") : NULL;
    long ms = p ? atol(p + 3) : 1000;
    if (ms < 0 || ms > 600000) ms = 1000;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    printf("Content-Type: text/plain\n\nslept %ld ms\n", ms);
    return 0;
}
