/*
 * native_stacks.h — running a guest's call on a small stack, in a child
 * process: on a fresh fiber whose stack is given to the engine, or on a
 * thread with a small stack of its own. What the trap tests
 * (test_native_traps.c) and the re-entrancy tests (test_native_host.c)
 * share; everything is static. Include after native_pair.h.
 */
#ifndef WASMFN_TESTS_ENGINE_NATIVE_STACKS_H
#define WASMFN_TESTS_ENGINE_NATIVE_STACKS_H

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/fiber.h"

/* Guests on small stacks: a fiber whose stack is given to the engine, and
 * a thread with a small stack of its own. */
typedef struct stack_run {
    eng_exec_t *x;
    eng_func_t *f;
    eng_val_t args[4], res[4];
    eng_trap_t trap;
    char msg[ENG_ERR_MAX];
    rt_fiber_t *fiber;   /* on a fiber: give its stack to the exec */
    size_t near_top;     /* bytes from the stack's top to the fiber's first frame */
    size_t used;         /* the fiber stack's high-water mark */
} stack_run_t;

static inline void stack_run_call(stack_run_t *r)
{
    r->trap = eng_call(r->x, r->f, r->args, r->res);
    snprintf(r->msg, sizeof r->msg, "%s", r->trap ? eng_exec_trap_message(r->x) : "");
}

/* fiber.h has no accessor for the lowest address of a fiber's stack, only
 * its size (rt_fiber_stack_size). Its top is page-aligned (the stack is
 * mapped in whole pages), and the fiber's first frame lies a few hundred
 * bytes below it, so the top is this frame's address rounded up to a page. */
static inline void on_fiber(void *arg)
{
    stack_run_t *r = arg;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t top = (here + pg - 1) & ~(pg - 1);
    size_t len = rt_fiber_stack_size(r->fiber);
    r->near_top = top - here;
    eng_exec_set_stack(r->x, (void *)(top - len), len);
    stack_run_call(r);
    eng_exec_set_stack(r->x, NULL, 0);
}

static inline void *on_thread(void *arg)
{
    stack_run_t *r = arg;
    eng_exec_set_stack(r->x, NULL, 0); /* the thread's own stack */
    stack_run_call(r);
    return NULL;
}

/* Runs in's call on a fresh fiber of fiber_bytes (0: on a thread with a
 * stack of thread_bytes) in a child process, and returns the outcome (the
 * run lives in shared memory meanwhile). A stack overflow kills the child
 * and fails the test naming the signal, instead of ending the program. */
static inline stack_run_t run_small_stack(const stack_run_t *in, size_t fiber_bytes, size_t thread_bytes,
                                   const char *what)
{
    stack_run_t *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) fail_msg("mmap failed");
    *r = *in;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork failed");
    if (pid == 0) {
        if (fiber_bytes) {
            char err[256];
            r->fiber = rt_fiber_new(fiber_bytes, err, sizeof err);
            if (!r->fiber || rt_fiber_stack_size(r->fiber) != fiber_bytes) _exit(101);
            rt_fiber_paint(r->fiber);
            rt_fiber_start(r->fiber, on_fiber, r);
            rt_fiber_resume(r->fiber);
            if (!rt_fiber_finished(r->fiber)) _exit(102);
            r->used = rt_fiber_stack_high_water(r->fiber);
            rt_fiber_free(r->fiber);
            r->fiber = NULL;
        } else {
            pthread_attr_t a;
            pthread_t th;
            if (pthread_attr_init(&a) != 0 || pthread_attr_setstacksize(&a, thread_bytes) != 0 ||
                pthread_create(&th, &a, on_thread, r) != 0 || pthread_join(th, NULL) != 0)
                _exit(103);
        }
        _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) fail_msg("waitpid failed");
    stack_run_t out = *r;
    munmap(r, sizeof *r);
    if (WIFSIGNALED(st))
        fail_msg("%s: the process died with signal %d (%s)", what, WTERMSIG(st), strsignal(WTERMSIG(st)));
    if (WEXITSTATUS(st) != 0)
        fail_msg("%s: the child exited with status %d (see any sanitizer report above)", what,
                 WEXITSTATUS(st));
    if (fiber_bytes && out.near_top >= 4096)
        fail_msg("%s: the fiber's first frame is %zu bytes below its top", what, out.near_top);
    return out;
}

#endif
