/*
 * native_abi.h — the contract between native code (made by native_ir.c
 * through LLVM) and the C runtime it runs in (native_rt.c).
 *
 * A defined function of the module becomes a native function
 *
 *     {i64 fuel, R1, R2, ...} f(eng_instance_t *inst, eng_exec_t *x,
 *                               i64 fuel, P1 p1, P2 p2, ...)
 *
 * with wasm's i32/i64/f32/f64 as the integer and float types of the same
 * width and references as pointers; the result is an LLVM struct of the
 * fuel left and the function's results, or just the fuel when it has none
 * (every caller is generated code, so only LLVM has to agree with
 * itself). The fuel counts down interruption checks (function entries,
 * loop headers); passing it along in registers keeps those checks free of
 * memory traffic. Where control leaves native code (a slow call, a
 * trampoline) it is kept in x->fuel. inst is the function's own
 * instance: linear memory, globals and tables are reached from it at the
 * offsets of struct eng_instance (internal.h), so the code is tied to this
 * build's struct layouts (native_load.c hashes them into the target key).
 * x carries the stack limit (and the fuel between native entries).
 *
 * Calling native code from C goes through a trampoline per function type:
 *
 *     void tramp(void *fn, eng_instance_t *inst, eng_exec_t *x, eng_val_t *io)
 *
 * which reads the arguments from io[0..nparams) and writes the results to
 * io[0..nresults). eng_native_enter (native_rt.c) sets up the trap target
 * (a jmp_buf) around it.
 *
 * Traps: generated code calls eng_nat_trap, which writes the message and
 * longjmps to the innermost native entry on x. Nothing native code does
 * needs unwinding (it holds no locks or allocations), so abandoning its
 * frames is safe; helpers that can trap do so before they change anything.
 *
 * Every helper native code calls is listed in ENG_NATIVE_HELPERS with its
 * signature in a small letter code (first the result, then ':' and the
 * parameters; v void, i i32, I i64, p pointer), from which the compiler
 * declares them and the loader resolves them (native_load.c). Libm and
 * libc functions LLVM may call on its own are in ENG_NATIVE_LIBC.
 */
#ifndef WASMFN_ENGINE_NATIVE_ABI_H
#define WASMFN_ENGINE_NATIVE_ABI_H

#include "engine/internal.h"

/* Bump when the generated code's conventions change without any struct
 * offset changing: old artefacts then no longer match the target key. */
#define ENG_NATIVE_ABI 7

/* Trap codes passed to eng_nat_trap: an eng_trap_t, or'ed with this flag
 * for the call_indirect variant of a table bounds trap, whose text the
 * interpreter gives as "undefined element". */
#define ENG_NAT_TRAP_UNDEFINED_ELEMENT 0x100u

/* Native stack: generated code checks its stack pointer against
 * x->stack_limit at every function entry. The limit leaves this much of
 * the stack below it for the last frame and for host functions and
 * helpers called from native code. No native frame may be larger than
 * ENG_NATIVE_FRAME_MAX (native_compile.c refuses a module otherwise), so a
 * frame that passes the check always ends above the stack's end. */
#define ENG_NATIVE_STACK_RESERVE (48u << 10)
#define ENG_NATIVE_FRAME_MAX (16u << 10)

/* X(name, signature) for every runtime helper. */
#define ENG_NATIVE_HELPERS(X)                                                                     \
    X(eng_nat_trap, "v:ppii")            /* inst, x, code, func: never returns */                \
    X(eng_nat_poll, "I:ppi")             /* inst, x, func: the new fuel, or traps */             \
    X(eng_nat_call, "v:ppppi")           /* inst, x, callee, io, func: any function, or traps */ \
    X(eng_nat_sig_equal, "i:pp")         /* two eng_functype_t: 1 when equal */                  \
    X(eng_nat_mem_grow, "i:pi")          /* inst, delta pages: old pages or -1 */                \
    X(eng_nat_mem_fill, "v:ppiiii")      /* inst, x, func, dst, byte, n */                       \
    X(eng_nat_mem_copy, "v:ppiiii")      /* inst, x, func, dst, src, n */                        \
    X(eng_nat_mem_init, "v:ppiiiii")     /* inst, x, func, seg, dst, src, n */                   \
    X(eng_nat_data_drop, "v:pi")         /* inst, seg */                                         \
    X(eng_nat_table_get, "p:ppiii")      /* inst, x, func, table, i */                           \
    X(eng_nat_table_set, "v:ppiiip")     /* inst, x, func, table, i, ref */                      \
    X(eng_nat_table_grow, "i:pipi")      /* inst, table, ref, delta: old size or -1 */           \
    X(eng_nat_table_fill, "v:ppiiipi")   /* inst, x, func, table, i, ref, n */                   \
    X(eng_nat_table_copy, "v:ppiiiiii")  /* inst, x, func, dst table, src table, d, s, n */      \
    X(eng_nat_table_init, "v:ppiiiiii")  /* inst, x, func, table, seg, d, s, n */                \
    X(eng_nat_elem_drop, "v:pi")         /* inst, seg */

/* Functions of the C library that LLVM's code generator may call (for
 * operations the target CPU has no instruction for, or bulk copies). */
#define ENG_NATIVE_LIBC(X)                                                                        \
    X(memcpy) X(memmove) X(memset) X(floor) X(floorf) X(ceil) X(ceilf) X(trunc) X(truncf)      \
    X(rint) X(rintf) X(nearbyint) X(nearbyintf) X(roundeven) X(roundevenf) X(sqrt) X(sqrtf)    \
    X(fmin) X(fminf) X(fmax) X(fmaxf)

/* The helpers (native_rt.c). */
__attribute__((noreturn)) void eng_nat_trap(eng_instance_t *inst, eng_exec_t *x, uint32_t code,
                                            uint32_t func);
int64_t eng_nat_poll(eng_instance_t *inst, eng_exec_t *x, uint32_t func);
void eng_nat_call(eng_instance_t *inst, eng_exec_t *x, eng_func_t *callee, eng_val_t *io,
                  uint32_t func);
uint32_t eng_nat_sig_equal(const eng_functype_t *a, const eng_functype_t *b);
uint32_t eng_nat_mem_grow(eng_instance_t *inst, uint32_t delta);
void eng_nat_mem_fill(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t d, uint32_t val,
                      uint32_t n);
void eng_nat_mem_copy(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t d, uint32_t s,
                      uint32_t n);
void eng_nat_mem_init(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t seg, uint32_t d,
                      uint32_t s, uint32_t n);
void eng_nat_data_drop(eng_instance_t *inst, uint32_t seg);
void *eng_nat_table_get(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t, uint32_t i);
void eng_nat_table_set(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t, uint32_t i,
                       void *ref);
uint32_t eng_nat_table_grow(eng_instance_t *inst, uint32_t t, void *ref, uint32_t delta);
void eng_nat_table_fill(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t, uint32_t i,
                        void *ref, uint32_t n);
void eng_nat_table_copy(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t dt,
                        uint32_t st, uint32_t d, uint32_t s, uint32_t n);
void eng_nat_table_init(eng_instance_t *inst, eng_exec_t *x, uint32_t func, uint32_t t,
                        uint32_t seg, uint32_t d, uint32_t s, uint32_t n);
void eng_nat_elem_drop(eng_instance_t *inst, uint32_t seg);

/* The symbols an object defines for the loader. */
#define ENG_NATIVE_SYM_FUNCS "wfn_funcs"   /* ptr[ndefined]: each defined function */
#define ENG_NATIVE_SYM_TRAMPS "wfn_tramps" /* ptr[ntypes]: a trampoline per type */
#define ENG_NATIVE_SYM_META "wfn_meta"     /* u32[ENG_NATIVE_META_WORDS] */
enum {
    ENG_NATIVE_META_MAGIC, /* ENG_NATIVE_MAGIC */
    ENG_NATIVE_META_ABI,   /* ENG_NATIVE_ABI */
    ENG_NATIVE_META_NFUNCS,
    ENG_NATIVE_META_NIMPORTS,
    ENG_NATIVE_META_NTYPES,
    ENG_NATIVE_META_FIRST,  /* the first defined function in this object */
    ENG_NATIVE_META_COUNT,  /* how many (wfn_funcs has as many) */
    ENG_NATIVE_META_TRAMPS, /* 1: this object has wfn_tramps */
    ENG_NATIVE_META_GUARD,  /* 1: guard mode (internal.h, ENG_GUARD_RESERVE) */
    ENG_NATIVE_META_SHA256, /* 8 words: the module's SHA-256, as bytes */
    ENG_NATIVE_META_WORDS = ENG_NATIVE_META_SHA256 + 8
};
#define ENG_NATIVE_MAGIC 0x6e66776eu /* "nwfn" */

/* What eng_native_compile makes: a pack of objects, each compiled on a
 * thread of its own from a contiguous range of the defined functions
 * (native_compile.c). "WFNOBJS\0", u32 count, then per object a u64
 * length and the ELF bytes; little-endian. */
#define ENG_NATIVE_PACK_MAGIC "WFNOBJS"
#define ENG_NATIVE_PACK_HEADER 12
#define ENG_NATIVE_PACK_MAX_OBJECTS 64

/* Native code attached to a module (native_load.c). */
typedef struct eng_native {
    struct eng_obj **objs; /* the loaded objects (objload.c) */
    uint32_t nobjs;
    void **funcs;          /* [ndefined], gathered from the objects' tables */
    void *const *tramps;   /* [ntypes] */
    bool has_tramps;       /* one object had the table (empty without types) */
    bool guard;            /* compiled in guard mode: memory 0 needs a guard slot */
    bool registered;       /* its code is known to the fault handler */
} eng_native_t;

/* Guard mode's faults (native_rt.c). The fault handler turns a fault in
 * native code into an "out of bounds memory access" trap; it knows native
 * code by these ranges, which attaching registers (false: no room, the
 * module then stays interpreted) and freeing unregisters. */
bool eng_native_code_register(eng_native_t *n, const eng_module_t *m);
void eng_native_code_unregister(eng_native_t *n);
/* Where the fault handler sends the faulting thread (not a signal handler
 * any more): writes the trap's message and unwinds. */
__attribute__((noreturn)) void eng_nat_fault(eng_exec_t *x, uintptr_t pc);

/* The struct offsets generated code depends on, hashed into the target
 * key (native_compile.c). */
#define ENG_NATIVE_OFFSETS(X)                                                                     \
    X(eng_instance_t, module) X(eng_instance_t, funcs) X(eng_instance_t, tables)                 \
    X(eng_instance_t, mems) X(eng_instance_t, globals) X(eng_instance_t, mem0_data)               \
    X(eng_memory_t, data)                     \
    X(eng_memory_t, size) X(eng_global_t, val) X(eng_table_t, elems) X(eng_table_t, size)        \
    X(eng_func_t, type) X(eng_func_t, type_key) X(eng_func_t, inst) X(eng_func_t, native)        \
    X(eng_module_t, types)                                                                        \
    X(eng_exec_t, fuel) X(eng_exec_t, stack_limit)

#endif
