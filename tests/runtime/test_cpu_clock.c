/*
 * test_cpu_clock.c — the thread CPU clock metering bills
 * (src/runtime/cpu_clock.c): its readings add up to what the kernel's
 * CLOCK_THREAD_CPUTIME_ID counts; time the thread spent asleep, or
 * preempted by another thread on its CPU, is not counted, though the fast
 * path measures elapsed time; most readings need no system call where the
 * kernel supports it; without glibc's rseq area every reading is exact.
 *
 * Bounds are generous: they tell CPU time from wall time (a factor of
 * two or more apart in each test), not one microsecond from another.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cpu_clock.h"

#define MS 1000000ull

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spins for about ns of wall time. */
static void busy(uint64_t ns)
{
    uint64_t end = clock_ns(CLOCK_MONOTONIC) + ns;
    while (clock_ns(CLOCK_MONOTONIC) < end) {
    }
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Many short readings, as metering takes them around short calls: their
 * sum is the kernel's count, and where the fast path is on, nearly all of
 * them are made without a system call. */
static void test_short_readings_add_up(void **state)
{
    (void)state;
    rt_cpu_thread_ns();
    uint64_t exact0 = rt_cpu_exact_reads();
    uint64_t k0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t sum = 0, prev = 0;
    const int n = 2000;
    for (int i = 0; i < n; i++) {
        uint64_t a = rt_cpu_thread_ns();
        busy(20000);
        uint64_t b = rt_cpu_thread_ns();
        assert_true(a >= prev && b >= a);
        sum += b - a;
        prev = b;
    }
    uint64_t kernel = clock_ns(CLOCK_THREAD_CPUTIME_ID) - k0;
    uint64_t exact = rt_cpu_exact_reads() - exact0;
    printf("# %d readings: sum %.2f ms, kernel %.2f ms, %llu system calls (fast path %s)\n",
           2 * n, sum / 1e6, kernel / 1e6, (unsigned long long)exact, rt_cpu_fast() ? "on" : "off");
    assert_true(sum <= kernel + kernel / 10);
    assert_true(sum >= kernel * 8 / 10);
    if (rt_cpu_fast())
        assert_true(exact < (uint64_t)n / 2);
    else
        assert_int_equal(exact, 2 * n);
}

/* A reading's difference may exceed the kernel's count over the same
 * stretch by a little: the fast path's rounding, and interrupt or
 * hypervisor time the kernel's clock may leave out (cpu_clock.c). */
#define SLACK_NS 20000ull

/* A thread that sleeps between two readings was switched out: the
 * difference must leave the sleep out. Each round compares it with the
 * kernel's count taken just outside it. Short sleeps (ten of 300 µs
 * within one anchor's span of 10 ms: elapsed time would count 4 ms where
 * the kernel counts about 1) and a long one (40 ms, past the span). */
static void test_sleep_not_counted(void **state)
{
    (void)state;
    for (int round = 0; round < 11; round++) {
        bool long_sleep = round == 10;
        rt_cpu_thread_ns();
        busy(100000);
        uint64_t k0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        uint64_t a = rt_cpu_thread_ns(); /* with an anchor: the fast path if on */
        for (int i = 0; i < (long_sleep ? 1 : 10); i++) {
            busy(100000);
            sleep_ns(long_sleep ? 40 * MS : 300000);
        }
        uint64_t used = rt_cpu_thread_ns() - a;
        uint64_t kernel = clock_ns(CLOCK_THREAD_CPUTIME_ID) - k0;
        printf("# %s: %.3f ms counted, kernel %.3f ms\n",
               long_sleep ? "a 40 ms sleep" : "ten 300 us sleeps", used / 1e6, kernel / 1e6);
        assert_true(used >= 100000);
        assert_true(used <= kernel + kernel / 4 + SLACK_NS);
    }
}

static atomic_bool spin_stop;

static bool pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

/* Wakes every 500 µs and runs for 300 µs, on the given CPU. */
static void *intruder(void *arg)
{
    pin_to(*(int *)arg);
    while (!atomic_load(&spin_stop)) {
        sleep_ns(500000);
        busy(300000);
    }
    return NULL;
}

/* Another thread on the same CPU that wakes up often takes the CPU from
 * this one again and again, for less than an anchor's span each time,
 * while this one never blocks: the readings must leave those gaps out,
 * as the kernel does. */
static void test_preemption_not_counted(void **state)
{
    (void)state;
    cpu_set_t old;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    int cpu = sched_getcpu();
    if (cpu < 0 || !pin_to(cpu)) {
        printf("# cannot pin threads to one CPU here; test skipped\n");
        skip();
    }
    atomic_store(&spin_stop, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, intruder, &cpu), 0);
    busy(5 * MS);
    uint64_t w0 = clock_ns(CLOCK_MONOTONIC);
    uint64_t kernel_all = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t sum = 0, n = 0, over = 0, worst = 0;
    while (clock_ns(CLOCK_MONOTONIC) - w0 < 400 * MS) {
        uint64_t k0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        uint64_t a = rt_cpu_thread_ns();
        busy(50000);
        uint64_t used = rt_cpu_thread_ns() - a;
        uint64_t kernel = clock_ns(CLOCK_THREAD_CPUTIME_ID) - k0;
        sum += used;
        n++;
        if (used > kernel + SLACK_NS) over++;
        if (used > kernel && used - kernel > worst) worst = used - kernel;
    }
    kernel_all = clock_ns(CLOCK_THREAD_CPUTIME_ID) - kernel_all;
    uint64_t wall = clock_ns(CLOCK_MONOTONIC) - w0;
    atomic_store(&spin_stop, true);
    pthread_join(t, NULL);
    sched_setaffinity(0, sizeof old, &old);
    printf("# sharing a CPU for %.0f ms: kernel %.1f ms, readings %.1f ms; "
           "%llu of %llu over the kernel's by more than %llu us (worst by %.1f us)\n",
           wall / 1e6, kernel_all / 1e6, sum / 1e6, (unsigned long long)over, (unsigned long long)n,
           (unsigned long long)(SLACK_NS / 1000), worst / 1e3);
    assert_true(kernel_all < wall * 8 / 10); /* the premise: it was preempted */
    assert_true(over <= n / 100); /* a preemption counted would be 300 us over */
    assert_true(sum >= kernel_all * 7 / 10);
}

/* Without glibc's rseq area every reading is a system call, and still
 * right. Run in a child started with the tunable that turns rseq off. */
static int child_without_rseq(void)
{
    if (rt_cpu_fast()) return 2;
    uint64_t e0 = rt_cpu_exact_reads();
    uint64_t a = rt_cpu_thread_ns();
    busy(1 * MS);
    sleep_ns(20 * MS);
    uint64_t used = rt_cpu_thread_ns() - a;
    if (rt_cpu_exact_reads() - e0 != 2) return 3;
    if (used < 1 * MS || used > 10 * MS) return 4;
    return 0;
}

static void test_without_rseq_every_reading_exact(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1);
        setenv("CPU_CLOCK_CHILD", "1", 1);
        execl("/proc/self/exe", "test_cpu_clock", (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    if (getenv("CPU_CLOCK_CHILD")) return child_without_rseq();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_readings_add_up),
        cmocka_unit_test(test_sleep_not_counted),
        cmocka_unit_test(test_preemption_not_counted),
        cmocka_unit_test(test_without_rseq_every_reading_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
