/*
 * exec.c — execution contexts: what a guest runs on and how it stops.
 *
 * An eng_exec_t holds the interpreter's value stack and frame records, the
 * deadline and interrupt flag every tier polls, the yield hook, the C stack
 * bounds native code and nested eng_calls are checked against, and the
 * last trap with its message, and the bulk memory moves that check the
 * deadline as they go. Both tiers (interp.c, native_rt.c) run on it
 * and report traps through eng_trap_message, so a trap reads the same
 * whichever tier hit it.
 *
 * This file is below both tiers: it calls neither.
 */
#define _GNU_SOURCE /* pthread_getattr_np */
#include "engine/native_abi.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_STACK_BYTES (1u << 20)

uint64_t eng_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *eng_trap_name(eng_trap_t t)
{
    switch (t) {
    case ENG_OK: return "ok";
    case ENG_TRAP_UNREACHABLE: return "unreachable";
    case ENG_TRAP_MEMORY_OOB: return "out of bounds memory access";
    case ENG_TRAP_DIV_ZERO: return "integer divide by zero";
    case ENG_TRAP_INT_OVERFLOW: return "integer overflow";
    case ENG_TRAP_INVALID_CONV: return "invalid conversion to integer";
    case ENG_TRAP_TABLE_OOB: return "out of bounds table access";
    case ENG_TRAP_NULL_REF: return "uninitialized element";
    case ENG_TRAP_INDIRECT_TYPE: return "indirect call type mismatch";
    case ENG_TRAP_STACK_EXHAUSTED: return "call stack exhausted";
    case ENG_TRAP_DEADLINE: return "deadline exceeded";
    case ENG_TRAP_HOST: return "host function failed";
    case ENG_TRAP_EXIT: return "exit";
    }
    return "unknown trap";
}

/* ---- Execution contexts ---- */

eng_exec_t *eng_exec_new(size_t stack_bytes)
{
    if (stack_bytes == 0)
        stack_bytes = DEFAULT_STACK_BYTES;
    if (stack_bytes < 4096)
        stack_bytes = 4096;
    eng_exec_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    size_t slots = stack_bytes / sizeof(eng_val_t);
    x->max_depth = (uint32_t)(stack_bytes / 32);
    x->stack = malloc(slots * sizeof *x->stack);
    x->frames = malloc((size_t)x->max_depth * sizeof *x->frames);
    if (!x->stack || !x->frames) {
        eng_exec_free(x);
        return NULL;
    }
    x->stack_end = x->stack + slots;
    x->top = x->stack;
    return x;
}

void eng_exec_free(eng_exec_t *x)
{
    if (!x)
        return;
    free(x->stack);
    free(x->frames);
    free(x);
}

void eng_exec_set_deadline(eng_exec_t *x, uint64_t deadline_ns) { x->deadline_ns = deadline_ns; }

void eng_exec_set_yield(eng_exec_t *x, eng_yield_fn fn, void *ud)
{
    x->yield_fn = fn;
    x->yield_ud = ud;
}

void eng_exec_interrupt(eng_exec_t *x) { __atomic_store_n(&x->interrupt, 1, __ATOMIC_RELAXED); }

const char *eng_exec_trap_message(const eng_exec_t *x) { return x->msg; }

int eng_exec_exit_code(const eng_exec_t *x) { return x->exit_code; }

eng_trap_t eng_exec_trap_host(eng_exec_t *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
    x->trap = ENG_TRAP_HOST;
    return ENG_TRAP_HOST;
}

eng_trap_t eng_exec_exit(eng_exec_t *x, int code)
{
    x->exit_code = code;
    snprintf(x->msg, sizeof x->msg, "exit %d", code);
    x->trap = ENG_TRAP_EXIT;
    return ENG_TRAP_EXIT;
}

uint64_t eng_exec_deadline(const eng_exec_t *x) { return x->deadline_ns; }

bool eng_exec_should_stop(eng_exec_t *x)
{
    if (__atomic_load_n(&x->interrupt, __ATOMIC_RELAXED))
        return true;
    return x->deadline_ns != 0 && eng_now_ns() >= x->deadline_ns;
}

void eng_trap_message(eng_exec_t *x, eng_trap_t t, const char *text, const eng_module_t *m,
                      uint32_t func_index)
{
    x->trap = t;
    if (t == ENG_TRAP_HOST || t == ENG_TRAP_EXIT)
        return; /* the host wrote its own message */
    if (!text)
        text = eng_trap_name(t);
    if (t == ENG_TRAP_DEADLINE && __atomic_load_n(&x->interrupt, __ATOMIC_RELAXED))
        text = "interrupted";
    if (m) {
        const char *name = m->func_names ? m->func_names[func_index] : NULL;
        if (name)
            snprintf(x->msg, sizeof x->msg, "%s in function %u (%s)", text, func_index, name);
        else
            snprintf(x->msg, sizeof x->msg, "%s in function %u", text, func_index);
    } else {
        snprintf(x->msg, sizeof x->msg, "%s", text);
    }
}

/* ---- The C stack ---- */

/* A stack we know nothing of (an embedder's own, not given to
 * eng_exec_set_stack): assume only this much below the entry, which
 * leaves guests little room but never more than the smallest stack we
 * make (a fiber's, 1 MiB in the daemon; tests use 128 KiB). */
#define UNKNOWN_STACK_BYTES (96u << 10)

static __thread uintptr_t thread_stack_lo, thread_stack_hi;

/* The calling thread's stack, [lo, hi), from pthread_getattr_np (once per
 * thread). 0, 0 when unknown. */
static void thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    if (!thread_stack_hi) {
        pthread_attr_t a;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            void *addr;
            size_t size;
            if (pthread_attr_getstack(&a, &addr, &size) == 0) {
                thread_stack_lo = (uintptr_t)addr;
                thread_stack_hi = (uintptr_t)addr + size;
            }
            pthread_attr_destroy(&a);
        }
    }
    *lo = thread_stack_lo;
    *hi = thread_stack_hi;
}

void eng_exec_set_stack(eng_exec_t *x, void *lo, size_t bytes)
{
    x->stack_lo = (uintptr_t)lo;
    x->stack_hi = lo ? (uintptr_t)lo + bytes : 0;
}

uintptr_t eng_stack_limit(const eng_exec_t *x, uintptr_t sp)
{
    uintptr_t lo = x->stack_lo, hi = x->stack_hi;
    if (!(sp > lo && sp <= hi))
        thread_stack(&lo, &hi);
    if (!(sp > lo && sp <= hi))
        lo = sp > UNKNOWN_STACK_BYTES ? sp - UNKNOWN_STACK_BYTES : 0;
    /* Too little left even for the reserve: every entry traps at once. */
    if (sp - lo <= ENG_NATIVE_STACK_RESERVE)
        return UINTPTR_MAX;
    return lo + ENG_NATIVE_STACK_RESERVE;
}

/* ---- bulk memory ---------------------------------------------------------- */

bool eng_bulk_fill(eng_exec_t *x, uint8_t *dst, int val, uint64_t n)
{
    while (n > ENG_BULK_CHUNK) {
        memset(dst, val, ENG_BULK_CHUNK);
        dst += ENG_BULK_CHUNK;
        n -= ENG_BULK_CHUNK;
        if (eng_exec_should_stop(x))
            return false;
    }
    memset(dst, val, n);
    return true;
}

/* Overlapping ranges move as memmove does: forward chunk by chunk when the
 * destination is below the source (each chunk's writes end before the
 * next chunk's source begins), backward from the top otherwise. */
bool eng_bulk_move(eng_exec_t *x, uint8_t *dst, const uint8_t *src, uint64_t n)
{
    if (n <= ENG_BULK_CHUNK) {
        memmove(dst, src, n);
        return true;
    }
    if (dst < src) {
        while (n) {
            uint64_t c = n < ENG_BULK_CHUNK ? n : ENG_BULK_CHUNK;
            memmove(dst, src, c);
            dst += c;
            src += c;
            n -= c;
            if (n && eng_exec_should_stop(x))
                return false;
        }
    } else {
        while (n) {
            uint64_t c = n < ENG_BULK_CHUNK ? n : ENG_BULK_CHUNK;
            n -= c;
            memmove(dst + n, src + n, c);
            if (n && eng_exec_should_stop(x))
                return false;
        }
    }
    return true;
}
