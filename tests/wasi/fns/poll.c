/* poll.c — poll_oneoff: relative and absolute clock subscriptions sleep at
 * least as long as asked, nanosleep/usleep go through it, an fd subscription
 * on stdin (which the driver fills) fires before a long timeout, and a bad
 * fd gives an event carrying EBADF. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static int failures;
#define CHECK(cond, ...)                                       \
    do {                                                       \
        printf("%s ", (cond) ? "ok  " : "FAIL");               \
        printf(__VA_ARGS__);                                   \
        printf("\n");                                          \
        if (!(cond)) failures++;                               \
    } while (0)

static uint64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(void)
{
    __wasi_subscription_t sub[2];
    __wasi_event_t ev[2];
    __wasi_size_t n = 0;

    memset(sub, 0, sizeof sub);
    sub[0].userdata = 42;
    sub[0].u.tag = __WASI_EVENTTYPE_CLOCK;
    sub[0].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub[0].u.u.clock.timeout = 100000000; /* 100 ms */
    uint64_t t0 = mono();
    __wasi_errno_t e = __wasi_poll_oneoff(sub, ev, 1, &n);
    uint64_t dt = mono() - t0;
    CHECK(e == 0 && n == 1 && ev[0].userdata == 42 && ev[0].type == __WASI_EVENTTYPE_CLOCK &&
              ev[0].error == 0,
          "relative clock event");
    CHECK(dt >= 100000000, "relative sleep lasted >= 100 ms");

    sub[0].u.u.clock.flags = __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME;
    sub[0].u.u.clock.timeout = mono() + 80000000;
    t0 = mono();
    e = __wasi_poll_oneoff(sub, ev, 1, &n);
    dt = mono() - t0;
    CHECK(e == 0 && n == 1 && dt >= 70000000, "absolute monotonic sleep");

    t0 = mono();
    struct timespec req = {0, 50000000};
    CHECK(nanosleep(&req, NULL) == 0, "nanosleep");
    usleep(30000);
    dt = mono() - t0;
    CHECK(dt >= 80000000, "nanosleep + usleep lasted >= 80 ms");

    /* stdin has data (the driver pipes some): the read event wins over a
     * 10 s timeout. */
    memset(sub, 0, sizeof sub);
    sub[0].userdata = 1;
    sub[0].u.tag = __WASI_EVENTTYPE_CLOCK;
    sub[0].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub[0].u.u.clock.timeout = 10000000000ull;
    sub[1].userdata = 2;
    sub[1].u.tag = __WASI_EVENTTYPE_FD_READ;
    sub[1].u.u.fd_read.file_descriptor = 0;
    t0 = mono();
    e = __wasi_poll_oneoff(sub, ev, 2, &n);
    dt = mono() - t0;
    CHECK(e == 0 && n == 1 && ev[0].userdata == 2 && ev[0].type == __WASI_EVENTTYPE_FD_READ,
          "stdin read event fires");
    CHECK(dt < 5000000000ull, "and does not wait for the clock");

    sub[1].u.u.fd_read.file_descriptor = 77;
    e = __wasi_poll_oneoff(sub, ev, 2, &n);
    CHECK(e == 0 && n == 1 && ev[0].userdata == 2 && ev[0].error == __WASI_ERRNO_BADF,
          "bad fd gives an EBADF event");
    CHECK(__wasi_poll_oneoff(sub, ev, 0, &n) == __WASI_ERRNO_INVAL, "no subscriptions: EINVAL");
    char buf[64];
    ssize_t r = read(0, buf, sizeof buf);
    CHECK(r > 0, "stdin is still readable (%zd bytes)", r);
    printf("%s\n", failures ? "poll: FAILED" : "poll: all ok");
    return failures ? 1 : 0;
}
