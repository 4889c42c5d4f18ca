/*
 * fiber.h — user-space threads for the worker pool: a small stack of its
 * own (mmap'd, with a PROT_NONE guard page below it) and a saved machine
 * context, so that a guest can stop in the middle of a host call (a
 * poll_oneoff sleep) or at an interruption check (its time slice is used
 * up) and the worker thread can run another guest meanwhile.
 *
 * Prefix: rt_fiber_. A fiber is resumed from a thread's own stack (the
 * scheduler) and suspends back to it; a fiber is never resumed from another
 * fiber, and stays on the thread that first resumed it (glibc caches
 * thread-local addresses such as errno's across calls, so moving a
 * suspended stack to another thread is not safe).
 *
 * Lifetime: rt_fiber_new maps the stack; rt_fiber_start (re)arms the fiber
 * to run fn(arg) from the top of that stack, so one stack serves many
 * guests one after another; rt_fiber_free unmaps it (never while it runs).
 */
#ifndef WASMFN_RUNTIME_FIBER_H
#define WASMFN_RUNTIME_FIBER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rt_fiber rt_fiber_t;
typedef void (*rt_fiber_fn)(void *arg);

/* Maps a stack of stack_bytes (rounded up to pages; at least 16 KiB) plus
 * one guard page. Returns NULL with a message when the mapping fails. The
 * pages cost memory only once touched. */
rt_fiber_t *rt_fiber_new(size_t stack_bytes, char *err, size_t errlen);
void rt_fiber_free(rt_fiber_t *f);

/* Arms f to call fn(arg) at its next resume. f must not be running or
 * suspended mid-function (fresh, or its previous fn has returned). */
void rt_fiber_start(rt_fiber_t *f, rt_fiber_fn fn, void *arg);
/* Switches the calling thread to f until f suspends or its fn returns. */
void rt_fiber_resume(rt_fiber_t *f);
/* From inside f: switches back to the rt_fiber_resume that entered it. */
void rt_fiber_suspend(rt_fiber_t *f);
/* True once fn has returned (until the next rt_fiber_start). */
bool rt_fiber_finished(const rt_fiber_t *f);
/* The fiber running on this thread, or NULL on a thread's own stack. */
rt_fiber_t *rt_fiber_current(void);

/* Measuring stack use. rt_fiber_paint fills the whole stack with a
 * pattern (touching every page: for measurements only, never in
 * production); rt_fiber_stack_high_water then says how many bytes from the
 * top have been written since. rt_fiber_stack_resident counts the bytes of
 * the stack's pages that are resident (mincore), i.e. what it costs. */
size_t rt_fiber_stack_size(const rt_fiber_t *f);
/* The lowest byte of the stack (just above the guard page): with
 * rt_fiber_stack_size, what eng_exec_set_stack wants. */
void *rt_fiber_stack_base(const rt_fiber_t *f);
void rt_fiber_paint(rt_fiber_t *f);
size_t rt_fiber_stack_high_water(const rt_fiber_t *f);
size_t rt_fiber_stack_resident(const rt_fiber_t *f);

#endif
