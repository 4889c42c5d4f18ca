/*
 * fiber.c — stacks and context switches for the pool's fibers (fiber.h).
 *
 * Switching uses ucontext (makecontext/swapcontext). glibc's swapcontext
 * also saves and restores the signal mask, one rt_sigprocmask system call
 * each way (a few hundred ns per switch). A guest switches at most twice
 * per sleep and twice per 10 ms time slice, so that cost is far below
 * anything measurable in a request; a hand-written register switch would
 * save it but must then be kept right for every ABI detail (callee-saved
 * registers, the x87/SSE control words, shadow stacks). Not worth it here.
 *
 * Stack: one mmap of guard + stack, PROT_NONE first, then the stack part
 * made read-write. The stack grows down towards the guard page, so a host
 * function that overflows it faults at once instead of writing over
 * whatever happens to be mapped below.
 *
 * Under AddressSanitizer the switches are announced with the sanitizer's
 * fiber interface, which keeps its idea of "the current stack" right (it
 * needs that for stack-use-after-return and for reporting).
 */
#define _GNU_SOURCE
#include "runtime/fiber.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_ASAN 1
#else
#define FIBER_ASAN 0
#endif

#define FIBER_PAINT 0xA5u

struct rt_fiber {
    ucontext_t ctx;     /* the fiber's own context while it is switched out */
    ucontext_t caller;  /* the resumer's context while the fiber runs */
    uint8_t *map;       /* guard page + stack */
    size_t map_len;
    uint8_t *stack;     /* lowest stack byte (just above the guard) */
    size_t stack_len;
    rt_fiber_fn fn;
    void *arg;
    bool finished;
    rt_fiber_t *outer;  /* rt_fiber_current() before the resume */
#if FIBER_ASAN
    const void *caller_bottom;
    size_t caller_size;
#endif
};

static __thread rt_fiber_t *fiber_now;

static size_t page_bytes(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

rt_fiber_t *rt_fiber_new(size_t stack_bytes, char *err, size_t errlen)
{
    size_t pg = page_bytes();
    if (stack_bytes < 16384) stack_bytes = 16384;
    stack_bytes = (stack_bytes + pg - 1) / pg * pg;
    rt_fiber_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "fiber: out of memory");
        return NULL;
    }
    f->map_len = stack_bytes + pg;
    f->map = mmap(NULL, f->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (f->map == MAP_FAILED) {
        snprintf(err, errlen, "fiber: cannot map a %zu-byte stack: %s", stack_bytes, strerror(errno));
        free(f);
        return NULL;
    }
    f->stack = f->map + pg;
    f->stack_len = stack_bytes;
    if (mprotect(f->stack, f->stack_len, PROT_READ | PROT_WRITE) != 0) {
        snprintf(err, errlen, "fiber: cannot make the stack writable: %s", strerror(errno));
        munmap(f->map, f->map_len);
        free(f);
        return NULL;
    }
    f->finished = true;
    return f;
}

void rt_fiber_free(rt_fiber_t *f)
{
    if (!f) return;
    munmap(f->map, f->map_len);
    free(f);
}

/* The first frame on a fiber's stack. makecontext passes int arguments
 * only, so the fiber pointer comes in two halves. Never returns: when fn
 * is done it switches back to the resumer for good (the next start builds
 * a new first frame). */
static void fiber_entry(unsigned int hi, unsigned int lo)
{
    rt_fiber_t *f = (rt_fiber_t *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
#if FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
    f->fn(f->arg);
    f->finished = true;
#if FIBER_ASAN
    __sanitizer_start_switch_fiber(NULL, f->caller_bottom, f->caller_size);
#endif
    setcontext(&f->caller);
}

void rt_fiber_start(rt_fiber_t *f, rt_fiber_fn fn, void *arg)
{
    f->fn = fn;
    f->arg = arg;
    f->finished = false;
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack;
    f->ctx.uc_stack.ss_size = f->stack_len;
    f->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)f;
    makecontext(&f->ctx, (void (*)(void))fiber_entry, 2, (unsigned int)(p >> 32),
                (unsigned int)(p & 0xFFFFFFFFu));
}

void rt_fiber_resume(rt_fiber_t *f)
{
    f->outer = fiber_now;
    fiber_now = f;
#if FIBER_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, f->stack, f->stack_len);
#endif
    swapcontext(&f->caller, &f->ctx);
#if FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    fiber_now = f->outer;
}

void rt_fiber_suspend(rt_fiber_t *f)
{
#if FIBER_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, f->caller_bottom, f->caller_size);
#endif
    swapcontext(&f->ctx, &f->caller);
#if FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, &f->caller_bottom, &f->caller_size);
#endif
}

bool rt_fiber_finished(const rt_fiber_t *f) { return f->finished; }

rt_fiber_t *rt_fiber_current(void) { return fiber_now; }

size_t rt_fiber_stack_size(const rt_fiber_t *f) { return f->stack_len; }

void rt_fiber_paint(rt_fiber_t *f) { memset(f->stack, FIBER_PAINT, f->stack_len); }

size_t rt_fiber_stack_high_water(const rt_fiber_t *f)
{
    size_t k = 0;
    while (k < f->stack_len && f->stack[k] == FIBER_PAINT) k++;
    return f->stack_len - k;
}

size_t rt_fiber_stack_resident(const rt_fiber_t *f)
{
    size_t pg = page_bytes(), n = f->stack_len / pg, resident = 0;
    unsigned char *vec = malloc(n ? n : 1);
    if (!vec) return 0;
    if (mincore(f->stack, f->stack_len, vec) == 0)
        for (size_t k = 0; k < n; k++) resident += (vec[k] & 1) ? pg : 0;
    free(vec);
    return resident;
}
