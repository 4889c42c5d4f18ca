/* clocks.c — the WASI clocks: realtime is a plausible date, monotonic and
 * the CPU-time clock move forward across work, resolutions are sane, and
 * an unknown clock is EINVAL. Output is the same on every run. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <wasi/api.h>

static int failures;
#define CHECK(cond, what)                                  \
    do {                                                   \
        printf("%s %s\n", (cond) ? "ok  " : "FAIL", what); \
        if (!(cond)) failures++;                           \
    } while (0)

static uint64_t now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

volatile double sink;

int main(void)
{
    uint64_t rt = now(CLOCK_REALTIME);
    CHECK(rt > 1577836800ull * 1000000000ull, "realtime is after 2020");
    CHECK(rt < 4102444800ull * 1000000000ull, "realtime is before 2100");
    uint64_t m0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    double x = 0;
    for (int i = 0; i < 3000000; i++) x += i * 0.5;
    sink = x;
    uint64_t m1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    CHECK(m1 > m0, "monotonic moves forward across work");
    CHECK(c1 > c0, "process CPU time moves forward across work");
    uint64_t last = now(CLOCK_MONOTONIC);
    int backwards = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t t = now(CLOCK_MONOTONIC);
        if (t < last) backwards++;
        last = t;
    }
    CHECK(backwards == 0, "monotonic never goes back");
    struct timespec res;
    CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0 &&
              res.tv_nsec <= 1000000,
          "monotonic resolution between 1 ns and 1 ms");
    __wasi_timestamp_t t;
    CHECK(__wasi_clock_time_get(99, 1, &t) == __WASI_ERRNO_INVAL, "unknown clock is EINVAL");
    time_t secs = time(NULL);
    CHECK((uint64_t)secs >= rt / 1000000000ull, "time() agrees with realtime");
    printf("%s\n", failures ? "clocks: FAILED" : "clocks: all ok");
    return failures ? 1 : 0;
}
