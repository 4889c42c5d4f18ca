/*
 * native_rt.c — what native code runs on: the entry from C
 * (eng_native_enter), the stack limit, and the helpers generated code
 * calls for traps, interruption checks, slow calls and the bulk memory and
 * table instructions (native_abi.h is the contract).
 *
 * Traps unwind with longjmp. An entry sets a jmp_buf on the exec and calls
 * the function's trampoline; a trap anywhere below writes its message and
 * jumps back, abandoning the native frames in between. That is safe
 * because native code holds nothing that needs releasing, and every C
 * frame a trap can cross is a helper of this file that traps before it
 * changes anything. Entries nest (native code calls a host function that
 * calls eng_call that enters native code again): each entry saves and
 * restores the previous jmp_buf, so a trap lands in the innermost one.
 *
 * The semantics (bounds, trap kinds and texts, what a dropped segment
 * holds) are the interpreter's, interp.c, on purpose: both tiers must
 * behave the same, and the spec suite and the differential fuzzer compare
 * them.
 *
 * Guard mode (internal.h, ENG_GUARD_RESERVE): most memory accesses of
 * native code are not checked, and one past the memory's size faults on a
 * PROT_NONE page of its guard slot. The SIGSEGV handler below recognises
 * such a fault — native code running on this thread (tls_exec, set by the
 * entry and after anything that may have switched fibers) and the faulting
 * instruction inside registered native code — and, rather than unwinding
 * from inside the signal handler, makes the thread return from it into
 * eng_nat_fault, an ordinary function that writes the trap and unwinds as
 * every other trap does. Any other fault goes to the handler installed
 * before ours (or kills the process as it would have).
 */
#define _GNU_SOURCE /* pthread_getattr_np, REG_RIP */
#include "engine/native_abi.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

typedef void (*tramp_fn)(void *fn, eng_instance_t *inst, eng_exec_t *x, eng_val_t *io);

/* Events between interruption checks in native code. Native code runs an
 * event in nanoseconds rather than the interpreter's tens, so a check
 * every ENG_BUDGET events would cost more than it does there; ten times
 * as many still notices a deadline within well under a millisecond. */
#define NATIVE_BUDGET (10 * ENG_BUDGET)

/* The exec whose native code runs on this thread now, for the fault
 * handler. */
static __thread eng_exec_t *tls_exec;

eng_trap_t eng_native_enter(eng_exec_t *x, eng_func_t *f, eng_val_t *io)
{
    if (!x->jmp)
        x->fuel = NATIVE_BUDGET; /* the outermost native entry on this exec */
    jmp_buf jb;
    void *volatile prev = x->jmp;
    eng_exec_t *volatile prev_exec = tls_exec;
    eng_trap_t t = ENG_OK;
    x->jmp = &jb;
    tls_exec = x;
    if (_setjmp(jb) == 0)
        ((tramp_fn)f->tramp)(f->native, f->inst, x, io);
    else
        t = x->trap;
    x->jmp = prev;
    tls_exec = prev_exec;
    return t;
}

/* ---- Guard mode: faults ---- */

/* Registered native code: a table the signal handler scans without locks.
 * An entry is published by storing its start last (release) and retired by
 * clearing it; writers take the mutex. Entries of freed code may be reused
 * at once: no code runs from them, so no fault can name them. */
#define CODE_RANGES 65536

typedef struct code_range {
    uintptr_t start;               /* atomic; 0 = free */
    uintptr_t end;
    const eng_module_t *m;
    struct eng_obj *obj;
    eng_native_t *owner;
} code_range_t;

static code_range_t code_ranges[CODE_RANGES];
static uint32_t code_ranges_used; /* atomic: entries at or above are all free */
static pthread_mutex_t code_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static struct sigaction old_segv, old_bus;

static const code_range_t *code_range_of(uintptr_t pc)
{
    uint32_t n = __atomic_load_n(&code_ranges_used, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        uintptr_t start = __atomic_load_n(&code_ranges[i].start, __ATOMIC_ACQUIRE);
        if (start && pc >= start && pc < code_ranges[i].end)
            return &code_ranges[i];
    }
    return NULL;
}

/* Hands a fault that is not ours to whoever handled it before. */
static void chain(int sig, siginfo_t *si, void *ctx)
{
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, ctx);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* The default action: the instruction faults again, and the process
     * dies as it would have without us. */
    signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    eng_exec_t *x = tls_exec;
    /* Ours: a PROT_NONE page (not an unmapped address) touched by native
     * code while this thread runs it. */
    if (sig == SIGSEGV && si->si_code == SEGV_ACCERR && x && x->jmp && code_range_of(pc)) {
        /* Return into eng_nat_fault(x, pc), as if called, below the red
         * zone and 16-byte aligned as at a function's entry. */
        uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
        sp = ((sp - 512) & ~(uintptr_t)15) - 8;
        uc->uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)eng_nat_fault;
        uc->uc_mcontext.gregs[REG_RDI] = (greg_t)(uintptr_t)x;
        uc->uc_mcontext.gregs[REG_RSI] = (greg_t)pc;
        return;
    }
    chain(sig, si, ctx);
}

/* Puts on_fault in place for sig, keeping whatever was there to chain to
 * (unless it is on_fault already). */
static void install_for(int sig, struct sigaction *old)
{
    struct sigaction cur, sa;
    if (sigaction(sig, NULL, &cur) != 0 || ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault))
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) == 0)
        *old = cur;
}

void eng_native_install_fault_handler(void)
{
    pthread_mutex_lock(&code_mu);
    install_for(SIGSEGV, &old_segv);
    install_for(SIGBUS, &old_bus);
    pthread_mutex_unlock(&code_mu);
}

static void handler_install(void) { eng_native_install_fault_handler(); }

bool eng_native_code_register(eng_native_t *n, const eng_module_t *m)
{
    pthread_once(&handler_once, handler_install);
    pthread_mutex_lock(&code_mu);
    uint32_t need = n->nobjs, found = 0, used = code_ranges_used;
    uint32_t idx[ENG_NATIVE_PACK_MAX_OBJECTS];
    for (uint32_t i = 0; i < CODE_RANGES && found < need; i++)
        if (!code_ranges[i].start)
            idx[found++] = i;
    if (found < need) {
        pthread_mutex_unlock(&code_mu);
        return false;
    }
    for (uint32_t k = 0; k < need; k++) {
        code_range_t *r = &code_ranges[idx[k]];
        uintptr_t start;
        size_t len;
        eng_obj_code(n->objs[k], &start, &len);
        r->end = start + len;
        r->m = m;
        r->obj = n->objs[k];
        r->owner = n;
        if (idx[k] >= used)
            used = idx[k] + 1;
        __atomic_store_n(&r->start, start, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&code_ranges_used, used, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&code_mu);
    n->registered = true;
    return true;
}

void eng_native_code_unregister(eng_native_t *n)
{
    pthread_mutex_lock(&code_mu);
    for (uint32_t i = 0; i < code_ranges_used; i++)
        if (code_ranges[i].owner == n)
            __atomic_store_n(&code_ranges[i].start, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&code_mu);
    n->registered = false;
}

static __attribute__((noreturn)) void unwind(eng_exec_t *x, eng_trap_t t);

void eng_nat_fault(eng_exec_t *x, uintptr_t pc)
{
    const code_range_t *r = code_range_of(pc);
    /* The access's own function, from the PC table, even when LLVM
     * inlined it into another; else the function whose code holds pc. */
    uint32_t idx;
    const char *name = NULL;
    if (r && eng_obj_pc_value(r->obj, pc, &idx) && idx < r->m->nfuncs)
        eng_trap_message(x, ENG_TRAP_MEMORY_OOB, NULL, r->m, idx);
    else if ((name = r ? eng_obj_function_at(r->obj, pc) : NULL) && sscanf(name, "f%u", &idx) == 1 &&
             idx < r->m->nfuncs)
        eng_trap_message(x, ENG_TRAP_MEMORY_OOB, NULL, r->m, idx);
    else
        eng_trap_message(x, ENG_TRAP_MEMORY_OOB, NULL, NULL, 0);
    unwind(x, ENG_TRAP_MEMORY_OOB);
}

static __attribute__((noreturn)) void unwind(eng_exec_t *x, eng_trap_t t)
{
    x->trap = t;
    _longjmp(*(jmp_buf *)x->jmp, 1);
}

void eng_nat_trap(eng_instance_t *inst, eng_exec_t *x, uint32_t code, uint32_t func)
{
    const char *text = NULL;
    if (code & ENG_NAT_TRAP_UNDEFINED_ELEMENT) {
        text = "undefined element";
        code &= ~ENG_NAT_TRAP_UNDEFINED_ELEMENT;
    }
    eng_trap_message(x, (eng_trap_t)code, text, inst->module, func);
    unwind(x, (eng_trap_t)code);
}

int64_t eng_nat_poll(eng_instance_t *inst, eng_exec_t *x, uint32_t func)
{
    if (x->yield_fn) {
        x->yield_fn(x, x->yield_ud);
        tls_exec = x; /* other fibers may have run native code meanwhile */
    }
    if (eng_exec_should_stop(x))
        eng_nat_trap(inst, x, ENG_TRAP_DEADLINE, func);
    return NATIVE_BUDGET;
}

void eng_nat_call(eng_instance_t *inst, eng_exec_t *x, eng_func_t *callee, eng_val_t *io,
                  uint32_t func)
{
    eng_trap_t t;
    if (callee->host) {
        eng_host_call_t hc = {x, inst, callee->env};
        t = callee->host(&hc, io);
        if (t != ENG_OK)
            eng_trap_message(x, t, NULL, inst->module, func);
    } else {
        /* Another instance's function, in either tier: it writes its own
         * trap message. */
        t = eng_call(x, callee, io, io);
    }
    tls_exec = x; /* the callee may have parked this fiber */
    if (t != ENG_OK)
        unwind(x, t);
}

uint32_t eng_nat_sig_equal(const eng_functype_t *a, const eng_functype_t *b)
{
    return eng_functype_equal(a, b);
}

/* ---- Memory ---- */

uint32_t eng_nat_mem_grow(eng_instance_t *inst, uint32_t delta)
{
    return (uint32_t)(int32_t)eng_memory_grow(inst->mems[0], delta);
}

void eng_nat_mem_fill(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t d, uint32_t val,
                      uint32_t n)
{
    eng_memory_t *m = inst->mems[0];
    if ((uint64_t)d + n > m->size)
        eng_nat_trap(inst, x, ENG_TRAP_MEMORY_OOB, func);
    if (n && !eng_bulk_fill(x, m->data + d, (int)(uint8_t)val, n))
        eng_nat_trap(inst, x, ENG_TRAP_DEADLINE, func);
}

void eng_nat_mem_copy(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t d, uint32_t s,
                      uint32_t n)
{
    eng_memory_t *m = inst->mems[0];
    if ((uint64_t)d + n > m->size || (uint64_t)s + n > m->size)
        eng_nat_trap(inst, x, ENG_TRAP_MEMORY_OOB, func);
    if (n && !eng_bulk_move(x, m->data + d, m->data + s, n))
        eng_nat_trap(inst, x, ENG_TRAP_DEADLINE, func);
}

void eng_nat_mem_init(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t seg, uint32_t d,
                      uint32_t s, uint32_t n)
{
    eng_memory_t *m = inst->mems[0];
    const eng_data_t *ds = &inst->module->datas[seg];
    uint64_t len = inst->data_dropped[seg] ? 0 : ds->len;
    if ((uint64_t)s + n > len || (uint64_t)d + n > m->size)
        eng_nat_trap(inst, x, ENG_TRAP_MEMORY_OOB, func);
    if (n)
        memcpy(m->data + d, ds->bytes + s, n);
}

void eng_nat_data_drop(eng_instance_t *inst, uint32_t seg) { inst->data_dropped[seg] = true; }

/* ---- Tables ---- */

void *eng_nat_table_get(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t, uint32_t i)
{
    eng_table_t *tb = inst->tables[t];
    if (i >= tb->size)
        eng_nat_trap(inst, x, ENG_TRAP_TABLE_OOB, func);
    return tb->elems[i];
}

void eng_nat_table_set(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t, uint32_t i,
                       void *ref)
{
    eng_table_t *tb = inst->tables[t];
    if (i >= tb->size)
        eng_nat_trap(inst, x, ENG_TRAP_TABLE_OOB, func);
    tb->elems[i] = ref;
}

uint32_t eng_nat_table_grow(eng_instance_t *inst, uint32_t t, void *ref, uint32_t delta)
{
    return (uint32_t)(int32_t)eng_table_grow(inst->tables[t], delta, ref);
}

void eng_nat_table_fill(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t, uint32_t i,
                        void *ref, uint32_t n)
{
    eng_table_t *tb = inst->tables[t];
    if ((uint64_t)i + n > tb->size)
        eng_nat_trap(inst, x, ENG_TRAP_TABLE_OOB, func);
    for (uint32_t k = 0; k < n; k++)
        tb->elems[i + k] = ref;
}

void eng_nat_table_copy(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t dt,
                        uint32_t st, uint32_t d, uint32_t s, uint32_t n)
{
    eng_table_t *td = inst->tables[dt], *ts = inst->tables[st];
    if ((uint64_t)d + n > td->size || (uint64_t)s + n > ts->size)
        eng_nat_trap(inst, x, ENG_TRAP_TABLE_OOB, func);
    if (n)
        memmove(td->elems + d, ts->elems + s, (size_t)n * sizeof(void *));
}

void eng_nat_table_init(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t,
                        uint32_t seg, uint32_t d, uint32_t s, uint32_t n)
{
    eng_table_t *tb = inst->tables[t];
    uint64_t len = inst->elem_len[seg];
    if ((uint64_t)s + n > len || (uint64_t)d + n > tb->size)
        eng_nat_trap(inst, x, ENG_TRAP_TABLE_OOB, func);
    if (n)
        memcpy(tb->elems + d, inst->elem_refs[seg] + s, (size_t)n * sizeof(void *));
}

void eng_nat_elem_drop(eng_instance_t *inst, uint32_t seg) { inst->elem_len[seg] = 0; }
