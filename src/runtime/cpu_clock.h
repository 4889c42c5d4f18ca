/*
 * cpu_clock.h — the calling thread's CPU time, which metering bills
 * (rt_call_result_t.cpu_ns) and the pool's CPU limits and fiber accounting
 * use, read without a system call when the thread has stayed on its CPU
 * since the last exact reading. cpu_clock.c says how and why.
 *
 * Prefix: rt_cpu_. Thread-safe: all state is per thread.
 */
#ifndef WASMFN_RUNTIME_CPU_CLOCK_H
#define WASMFN_RUNTIME_CPU_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* The calling thread's CPU time in ns, as CLOCK_THREAD_CPUTIME_ID counts
 * it; only differences mean anything. */
uint64_t rt_cpu_thread_ns(void);

/* True when this process reads the clock without system calls where it
 * can (the kernel's restartable-sequences area is registered and passed
 * the self-test); false: every reading is a system call. The first call in
 * the process (of this or rt_cpu_thread_ns) runs the self-test, which
 * sleeps 100 µs: the pool's workers make it as they start. */
bool rt_cpu_fast(void);

/* How many readings on the calling thread were system calls (for tests
 * and measurements). */
uint64_t rt_cpu_exact_reads(void);

#endif
