/*
 * cpu_clock.c — the calling thread's CPU time (cpu_clock.h), usually
 * without a system call.
 *
 * Why. Metering bills each call's CPU time, so every request reads the
 * thread's CPU clock twice. CLOCK_THREAD_CPUTIME_ID has no vDSO fast path:
 * each reading is a system call that takes the run queue's lock, 620 ns on
 * the 2-CPU AMD VM where the hello benchmarks run (CLOCK_MONOTONIC through
 * the vDSO: 27 ns). perf put the two readings at 6% of the daemon's CPU
 * under a fresh-instance-per-request hello load (docs/benchmarks.md,
 * "Metering's clock without system calls").
 *
 * How. While a thread stays on its CPU, its CPU time and the wall clock
 * advance together. So an exact reading (the system call) is kept as an
 * anchor, with the CLOCK_MONOTONIC time it was taken at, and a later
 * reading is anchor + elapsed wall time — provided the thread has not
 * been switched out since. The kernel tells us that through the
 * restartable-sequences area glibc registers for every thread (rseq(2),
 * <sys/rseq.h>): its rseq_cs field points at the thread's current
 * critical section, and when the kernel preempts the thread, switches it
 * out, migrates it or delivers it a signal, and finds it running outside
 * that section on its way back to user space, it sets the field to 0 (the
 * documented ABI; it is how a section that was not interrupted is told
 * from one that was). Our "section" is a descriptor whose range covers
 * two bytes of read-only data, so no code ever runs inside it and the
 * kernel never redirects anything: it only clears the field. Arm the
 * field, take the anchor; later, read CLOCK_MONOTONIC and then the field:
 * still armed means the thread ran without a break from the anchor to
 * that moment.
 *
 * The kernel checks the descriptor whenever it finds the field set: the
 * range must be sane and the four bytes before abort_ip must hold the
 * signature glibc registered (RSEQ_SIG), or it kills the process. Our
 * descriptor satisfies both (marker_sig below); abort_ip is never jumped
 * to, since no instruction lies in the range.
 *
 * Guards.
 *   - A self-test, once per process: arm the field and sleep 100 µs
 *     (the thread blocks, so it is switched out). If the field is still
 *     armed, this kernel does not clear it on a switch and every reading
 *     is a system call. So is every reading when glibc registered no rseq
 *     area (old kernel, or GLIBC_TUNABLES=glibc.pthread.rseq=0), and on a
 *     thread whose registration failed.
 *   - An anchor older than FAST_SPAN_NS is renewed with an exact reading,
 *     so a long call ends on the kernel's own clock. While the thread is
 *     on its CPU, elapsed time also counts interrupt handling and, in a
 *     VM, time the hypervisor took from the virtual CPU; the kernel's
 *     thread clock may leave those out (IRQ time and steal accounting).
 *     The difference is bounded by what happened within one span.
 *
 * Nothing else in the process uses rseq critical sections (glibc only
 * reads the CPU number); if anything did, it would replace our pointer and
 * we would simply take exact readings.
 */
#define _GNU_SOURCE
#include "runtime/cpu_clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/rseq.h>
#include <time.h>

#include "engine/engine.h"

#define FAST_SPAN_NS 10000000ull /* anchors older than 10 ms are renewed */

/* The "critical section": the signature word, then the word abort_ip
 * points at. */
static const uint32_t marker_sig[2] = {RSEQ_SIG, 0};
static struct rseq_cs marker; /* 32-byte aligned by its type */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool fast;

static __thread uint64_t anchor_cpu;
static __thread uint64_t anchor_wall; /* 0: no anchor */
static __thread uint64_t exact_reads;
static __thread uint64_t last; /* the last reading: none goes below it */

/* The system call; the elapsed-time clock is eng_now_ns (CLOCK_MONOTONIC). */
static uint64_t thread_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The calling thread's rseq_cs field, or NULL when it has no rseq area. */
static volatile uint64_t *rseq_field(void)
{
    if (__rseq_size < offsetof(struct rseq, rseq_cs) + sizeof(uint64_t)) return NULL;
    struct rseq *r = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    if ((int32_t)r->cpu_id < 0) return NULL; /* uninitialised or registration failed */
    return (volatile uint64_t *)&r->rseq_cs;
}

static void self_test(void)
{
    marker.version = 0;
    marker.flags = 0;
    marker.start_ip = (uintptr_t)&marker_sig[0];
    marker.post_commit_offset = 2;
    marker.abort_ip = (uintptr_t)&marker_sig[1];
    volatile uint64_t *cs = rseq_field();
    if (!cs) return;
    *cs = (uintptr_t)&marker;
    struct timespec pause = {0, 100000};
    nanosleep(&pause, NULL);
    fast = *cs == 0;
    *cs = 0;
}

/* The reading, or where the fast path was not allowed, the system call. */
static uint64_t reading(void)
{
    volatile uint64_t *cs = fast ? rseq_field() : NULL;
    if (!cs) {
        exact_reads++;
        return thread_clock_ns();
    }
    uint64_t now = eng_now_ns();
    atomic_signal_fence(memory_order_seq_cst); /* the time, then the field */
    if (anchor_wall && *cs == (uintptr_t)&marker && now - anchor_wall < FAST_SPAN_NS)
        return anchor_cpu + (now - anchor_wall);
    /* Armed first: a switch from here on clears it. The wall time is taken
     * on both sides of the system call and halved, so that fast readings
     * agree with exact ones to well under a microsecond. */
    *cs = (uintptr_t)&marker;
    atomic_signal_fence(memory_order_seq_cst);
    uint64_t w0 = eng_now_ns();
    anchor_cpu = thread_clock_ns();
    uint64_t w1 = eng_now_ns();
    anchor_wall = w0 + (w1 - w0) / 2;
    exact_reads++;
    return anchor_cpu;
}

/* An exact reading may land a little below the fast one before it (the
 * rounding above; interrupt or steal time the kernel leaves out): held at
 * the last value instead, so that differences never go negative. */
uint64_t rt_cpu_thread_ns(void)
{
    pthread_once(&once, self_test);
    uint64_t v = reading();
    if (v < last) v = last;
    last = v;
    return v;
}

bool rt_cpu_fast(void)
{
    pthread_once(&once, self_test);
    return fast;
}

uint64_t rt_cpu_exact_reads(void) { return exact_reads; }
