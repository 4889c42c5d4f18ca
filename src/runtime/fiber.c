/*
 * fiber.c — stacks and context switches for the pool's fibers (fiber.h).
 *
 * Switching. Every request runs on a fiber, so a request costs at least
 * one arm and two switches (in, and out when it ends). glibc's ucontext
 * (getcontext/swapcontext/setcontext) saves and restores the signal mask
 * at each of them: three rt_sigprocmask system calls per request, measured
 * on the hello-world throughput benchmark as a few percent of the daemon's
 * CPU. On x86-64 we switch with fiber_switch below instead: it saves the
 * registers the System V ABI makes callee-saved (rbx, rbp, r12-r15, the
 * stack pointer, and the MXCSR and x87 control words, which are also
 * callee-saved) on the old stack and loads them from the new one. Nothing
 * else needs saving at a call boundary, and the signal mask is the same
 * for every fiber of a thread anyway. Shadow stacks (CET) are not enabled
 * for our binary (this object carries no SHSTK property note), which a
 * plain stack switch requires. Other architectures keep ucontext.
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

#if defined(__x86_64__)
#define FIBER_ASM 1
#else
#define FIBER_ASM 0
#endif

struct rt_fiber {
#if FIBER_ASM
    void *sp;           /* the fiber's saved stack pointer while it is switched out */
    void *caller_sp;    /* the resumer's, while the fiber runs */
#else
    ucontext_t ctx;     /* the fiber's own context while it is switched out */
    ucontext_t caller;  /* the resumer's context while the fiber runs */
#endif
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

#if FIBER_ASM
/* fiber_switch(save, to): pushes the callee-saved state on the current
 * stack, stores the stack pointer in *save, loads `to` as the stack
 * pointer and pops the state saved there; returns into whoever saved it.
 * Frame, from the saved stack pointer up: MXCSR (4 bytes), x87 control
 * word (2, padded to 4), r15, r14, r13, r12, rbx, rbp, return address.
 * fiber_boot is where a new fiber's first switch "returns" to: r12 holds
 * the fiber and r13 the C entry point; the stack is 16-byte aligned there,
 * as a call needs. */
void fiber_switch(void **save, void *to);
void fiber_boot(void);
__asm__(".pushsection .text\n"
        ".p2align 4\n"
        ".type fiber_switch, @function\n"
        "fiber_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size fiber_switch, .-fiber_switch\n"
        ".p2align 4\n"
        ".type fiber_boot, @function\n"
        "fiber_boot:\n"
        "    movq %r12, %rdi\n"
        "    callq *%r13\n"
        "    ud2\n"
        ".size fiber_boot, .-fiber_boot\n"
        ".popsection\n");
#endif

/* The first frame on a fiber's stack. Never returns: when fn is done it
 * switches back to the resumer for good (the next start builds a new first
 * frame). */
static void fiber_run(rt_fiber_t *f)
{
#if FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
    f->fn(f->arg);
    f->finished = true;
#if FIBER_ASAN
    __sanitizer_start_switch_fiber(NULL, f->caller_bottom, f->caller_size);
#endif
#if FIBER_ASM
    fiber_switch(&f->sp, f->caller_sp);
#else
    setcontext(&f->caller);
#endif
}

#if !FIBER_ASM
/* makecontext passes int arguments only, so the fiber pointer comes in two
 * halves. */
static void fiber_entry(unsigned int hi, unsigned int lo)
{
    fiber_run((rt_fiber_t *)(((uintptr_t)hi << 32) | (uintptr_t)lo));
}
#endif

void rt_fiber_start(rt_fiber_t *f, rt_fiber_fn fn, void *arg)
{
    f->fn = fn;
    f->arg = arg;
    f->finished = false;
#if FIBER_ASM
    /* The frame fiber_switch pops (see above), at the top of the stack;
     * the return address sits at 8 mod 16 so that fiber_boot starts with
     * the stack 16-byte aligned. */
    uintptr_t top = ((uintptr_t)(f->stack + f->stack_len)) & ~(uintptr_t)15;
    uint64_t *ret = (uint64_t *)(top - 24);
    uint64_t *fr = ret - 7;
    uint32_t csr[2] = {0x1F80u, 0x037Fu}; /* MXCSR and x87 control word at process start */
    memcpy(&fr[0], csr, sizeof csr);
    fr[1] = 0;                            /* r15 */
    fr[2] = 0;                            /* r14 */
    fr[3] = (uint64_t)(uintptr_t)fiber_run; /* r13 */
    fr[4] = (uint64_t)(uintptr_t)f;       /* r12 */
    fr[5] = 0;                            /* rbx */
    fr[6] = 0;                            /* rbp */
    *ret = (uint64_t)(uintptr_t)fiber_boot;
    f->sp = fr;
#else
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack;
    f->ctx.uc_stack.ss_size = f->stack_len;
    f->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)f;
    makecontext(&f->ctx, (void (*)(void))fiber_entry, 2, (unsigned int)(p >> 32),
                (unsigned int)(p & 0xFFFFFFFFu));
#endif
}

void rt_fiber_resume(rt_fiber_t *f)
{
    f->outer = fiber_now;
    fiber_now = f;
#if FIBER_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, f->stack, f->stack_len);
#endif
#if FIBER_ASM
    fiber_switch(&f->caller_sp, f->sp);
#else
    swapcontext(&f->caller, &f->ctx);
#endif
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
#if FIBER_ASM
    fiber_switch(&f->sp, f->caller_sp);
#else
    swapcontext(&f->ctx, &f->caller);
#endif
#if FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, &f->caller_bottom, &f->caller_size);
#endif
}

bool rt_fiber_finished(const rt_fiber_t *f) { return f->finished; }

rt_fiber_t *rt_fiber_current(void) { return fiber_now; }

size_t rt_fiber_stack_size(const rt_fiber_t *f) { return f->stack_len; }

void *rt_fiber_stack_base(const rt_fiber_t *f) { return f->stack; }

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
