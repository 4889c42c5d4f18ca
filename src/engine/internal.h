/*
 * internal.h — structures shared by the engine's own files; not for other
 * subsystems (they use engine.h).
 *
 * Files of the engine:
 *   reader.h     bounds-checked binary reader (LEB128, bytes, names)
 *   decode.c     module sections -> eng_module (calls eng_compile_func per body)
 *   compile.c    validates one function body and compiles it to internal code
 *   interp.c     the threaded interpreter, eng_call, execution contexts
 *   instance.c   stores, memories, tables, globals, host functions, linking,
 *                segment initialisation, exports
 *   image.c      instance images (copy-on-write memory snapshots) and the
 *                process-wide pool of linear-memory reservations (slots)
 *   serialize.c  compiled modules to bytes and back (checked on loading)
 *   objload.c    x86-64 ELF relocatable objects (the native tier's cached
 *                code) loaded into the process as callable code, no LLVM
 *   native_*.c   the native tier: native_compile.c and native_ir.c turn a
 *                module into an x86-64 object through LLVM, objload.c maps
 *                an object into memory, native_load.c seals, checks and
 *                attaches native code, native_rt.c is what generated code
 *                calls and how eng_call enters it (native_abi.h is the
 *                contract between the two sides)
 */
#ifndef WASMFN_ENGINE_INTERNAL_H
#define WASMFN_ENGINE_INTERNAL_H

#include "engine/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Limits we enforce on untrusted modules (beyond the spec's own). */
#define ENG_MAX_FUNCS 1000000u
#define ENG_MAX_LOCALS 50000u        /* per function, params included */
#define ENG_MAX_TABLE_ELEMS 10000000u
#define ENG_MAX_PAGES 65536u         /* 4 GiB: memory32 */
/* The largest memory a store makes (growing past it fails, as the spec
 * allows), one page short of 4 GiB: then an address just accessed plus
 * less than a page cannot wrap, which native code uses (native_nowrap.c). */
#define ENG_LIMIT_PAGES 65535u
#define ENG_NO_MAX 0xFFFFFFFFu

/* ---- Types ---- */

typedef struct eng_functype {
    uint32_t nparams, nresults;
    uint8_t *types;  /* nparams param types then nresults result types */
    char *sig;       /* "(ii)i" form, see engine.h */
    /* Frame slots (eng_val_t) the params and results take: a v128 takes
     * two. Set by eng_functype_write_sig. */
    uint32_t param_slots, result_slots;
    uint64_t key;    /* eng_functype_key, set with sig */
} eng_functype_t;

static inline uint8_t eng_ft_param(const eng_functype_t *t, uint32_t i) { return t->types[i]; }
static inline uint8_t eng_ft_result(const eng_functype_t *t, uint32_t i) { return t->types[t->nparams + i]; }
bool eng_functype_equal(const eng_functype_t *a, const eng_functype_t *b);
/* A number equal for two types exactly when the types are equal, for
 * every type of at most ENG_FUNCTYPE_KEY_MAX params and results together;
 * 0 for a larger one (compare those with eng_functype_equal). Native code
 * checks a call_indirect's callee against it as an immediate. */
#define ENG_FUNCTYPE_KEY_MAX 18u
uint64_t eng_functype_key(const eng_functype_t *t);
/* Frame slots a value of type t takes: 2 for v128, else 1. */
static inline uint32_t eng_type_slots(uint8_t t) { return t == ENG_V128 ? 2u : 1u; }
/* Writes t->sig ("(ii)i", see engine.h), t->param_slots/result_slots and
 * t->key from t's types; t->sig must hold nparams + nresults + 3 bytes. */
void eng_functype_write_sig(eng_functype_t *t);

typedef struct eng_limits {
    uint32_t min, max; /* max == ENG_NO_MAX when absent */
} eng_limits_t;

typedef struct eng_tabletype {
    uint8_t elem; /* ENG_FUNCREF or ENG_EXTERNREF */
    eng_limits_t limits;
} eng_tabletype_t;

typedef struct eng_globaltype {
    uint8_t type;
    bool mut;
} eng_globaltype_t;

/* A constant expression. WebAssembly 2.0 allows exactly one instruction. */
enum { ENG_CE_CONST, ENG_CE_GLOBAL_GET, ENG_CE_REF_NULL, ENG_CE_REF_FUNC };
typedef struct eng_constexpr {
    uint8_t kind;      /* ENG_CE_* */
    uint8_t type;      /* the value type it produces */
    uint32_t index;    /* global or function index */
    eng_val_t val;     /* for ENG_CE_CONST (a v128's bytes 0..7) */
    uint64_t hi;       /* ENG_CE_CONST of v128: bytes 8..15 */
} eng_constexpr_t;

typedef struct eng_import {
    char *module, *name;
    uint8_t kind;      /* eng_extern_kind_t */
    uint32_t type_index;           /* functions */
    eng_tabletype_t table;
    eng_limits_t memory;
    eng_globaltype_t global;
} eng_import_t;

typedef struct eng_export {
    char *name;        /* NUL-terminated copy; may itself contain NULs */
    uint32_t name_len;
    uint8_t kind;
    uint32_t index;
} eng_export_t;

enum { ENG_SEG_ACTIVE, ENG_SEG_PASSIVE, ENG_SEG_DECLARATIVE };

typedef struct eng_elem {
    uint8_t mode;       /* ENG_SEG_* */
    uint8_t type;       /* ENG_FUNCREF / ENG_EXTERNREF */
    uint32_t table;
    eng_constexpr_t offset;
    uint32_t count;
    eng_constexpr_t *items; /* each ENG_CE_REF_FUNC, ENG_CE_REF_NULL or ENG_CE_GLOBAL_GET */
} eng_elem_t;

typedef struct eng_data {
    uint8_t mode;       /* ENG_SEG_ACTIVE or ENG_SEG_PASSIVE */
    uint32_t memory;
    eng_constexpr_t offset;
    uint32_t len;
    uint8_t *bytes;     /* owned copy */
} eng_data_t;

/* One unit of internal code: a handler address or packed operands. */
typedef uint64_t eng_code_t;

/* A function defined by the module, compiled. */
typedef struct eng_code_func {
    uint32_t type_index;
    uint32_t nlocals;      /* slots of params + declared locals (a v128 takes two) */
    uint32_t param_slots;  /* slots of the params (the first of the nlocals) */
    uint32_t frame_slots;  /* nlocals + the deepest operand stack, in slots */
    eng_code_t *code;      /* owned */
    size_t code_len;       /* in units */
    uint32_t body_offset;  /* byte offset of the body in the module */
} eng_code_func_t;

struct eng_module {
    uint32_t ntypes;
    eng_functype_t *types;

    uint32_t nimports;
    eng_import_t *imports;

    /* Index spaces: imports come first. */
    uint32_t nfuncs, nfunc_imports;
    uint32_t *func_type;            /* type index of every function */
    uint32_t ntables, ntable_imports;
    eng_tabletype_t *tables;
    uint32_t nmems, nmem_imports;
    eng_limits_t *mems;
    uint32_t nglobals, nglobal_imports;
    eng_globaltype_t *globals;
    eng_constexpr_t *global_init;   /* [nglobals]; entries < nglobal_imports unused */

    uint32_t nexports;
    eng_export_t *exports;

    bool has_start;
    uint32_t start;

    uint32_t nelems;
    eng_elem_t *elems;
    bool has_data_count;
    uint32_t data_count;
    uint32_t ndatas;
    eng_data_t *datas;

    eng_code_func_t *code;          /* [nfuncs - nfunc_imports] */

    /* Functions that ref.func may name ("declared" references, C.refs):
     * referenced from elems, exports or global initialisers. */
    uint8_t *func_declared;         /* [nfuncs] bool */

    char **func_names;              /* [nfuncs] from the name section, or NULL; entries may be NULL */
    uint8_t sha256[32];             /* of the bytes it was decoded from */

    /* Native code, once attached (native_load.c): NULL until then. Set
     * once with a release store while other threads may instantiate;
     * read with an acquire load. Instances made before it interpret. */
    struct eng_native *native;
};

/* ---- Runtime objects ---- */

struct eng_func {
    const eng_functype_t *type;
    uint64_t type_key;             /* type->key, where call_indirect finds it in one load */
    eng_instance_t *inst;          /* NULL for host functions */
    const eng_code_func_t *code;   /* wasm functions */
    eng_host_fn_t host;            /* host functions */
    void *env;
    uint32_t index;                /* index in its module (wasm functions) */
    eng_functype_t own_type;       /* host functions own their type here */
    /* Native tier (native_rt.c): the function's machine code and the
     * trampoline that calls it from C, both NULL when it is interpreted. */
    void *native;
    void *tramp;
    /* How C enters the native code (eng_native_enter), set with native by
     * native_load.c: the interpreter and eng_call call through it, so they
     * do not depend on the native tier (which calls eng_call). */
    eng_trap_t (*enter)(eng_exec_t *x, eng_func_t *f, eng_val_t *io);
};

struct eng_memory {
    uint8_t *data;          /* start of the reservation; accessible up to size */
    uint64_t size;          /* bytes, = pages * 64 KiB */
    uint32_t pages;
    uint32_t max_pages;     /* from the type and the store's limit */
    uint32_t type_max;      /* the declared maximum, ENG_NO_MAX if none (import matching) */
    uint64_t reserved;      /* bytes of address space reserved at data (a slot, image.c) */
    uint64_t accessible;    /* bytes from data that are readable and writable (>= size; more
                             * when the slot was a warm one, image.c) */
    /* Set when the memory was made from an image (image.c): freeing it
     * (store.c) offers the slot back to the image as a warm slot, through
     * image_release, image.c's function. */
    struct image_mem *image;
    void (*image_release)(struct image_mem *im, uint8_t *p, uint64_t bytes, uint64_t used);
};

struct eng_table {
    void **elems;
    uint32_t size;
    uint32_t max;           /* ENG_NO_MAX when absent */
    uint8_t elem;
};

struct eng_global {
    eng_val_t val;
    eng_val_t val_hi;       /* v128: bytes 8..15 (val holds 0..7), right after val */
    uint8_t type;
    bool mut;
};

struct eng_instance {
    const eng_module_t *module;
    eng_store_t *store;
    eng_func_t **funcs;      /* [nfuncs]; defined ones point into func_objs */
    eng_func_t *func_objs;   /* the defined functions */
    eng_table_t **tables;
    eng_memory_t **mems;
    eng_global_t **globals;
    void ***elem_refs;       /* [nelems] evaluated segment refs, NULL once dropped */
    uint32_t *elem_len;      /* [nelems] 0 once dropped */
    bool *data_dropped;      /* [ndatas] */
    bool native_guard;       /* its native code needs memory 0 in a guard slot */
    uint8_t *mem0_data;      /* mems[0]->data (it never moves), for native code */
    eng_global_t *global_objs; /* the defined globals */
    /* Every array above lives in one allocation that starts at funcs. */
};

/* ---- Execution contexts (exec.c; run on by interp.c and native_rt.c) ---- */

/* An interpreter frame record (interp.c). */
typedef struct eng_frame {
    const eng_code_t *ret_pc;
    eng_val_t *fp;
    eng_instance_t *inst;  /* the caller's instance */
    eng_func_t *func;      /* the function running in this frame */
} eng_frame_t;

struct eng_exec {
    eng_val_t *stack, *stack_end;
    eng_val_t *top;         /* where the next eng_call puts its frame */
    eng_frame_t *frames;
    uint32_t depth, max_depth;
    uint32_t nest;          /* eng_calls under way on this exec (re-entrancy) */
    uint64_t deadline_ns;
    int interrupt;          /* accessed with __atomic builtins */
    eng_yield_fn yield_fn;  /* called at interruption checks (may be NULL) */
    void *yield_ud;
    eng_trap_t trap;
    int exit_code;
    char msg[ENG_ERR_MAX];

    /* Native tier (native_rt.c). Generated code reads and writes fuel and
     * reads stack_limit at the offsets native_abi.h names. */
    int64_t fuel;           /* events left before the next interruption check */
    uintptr_t stack_limit;  /* native code traps when its stack pointer is below */
    void *jmp;              /* the innermost native entry's jmp_buf */
    uintptr_t stack_lo, stack_hi; /* the stack guests run on (eng_exec_set_stack), 0 = the thread's */
};

/* Events (function entries, backward branches) between interruption
 * checks, in both tiers (interp.c says why this many). */
#define ENG_BUDGET 10000

/* memory.fill and memory.copy of n bytes (already bounds-checked), in
 * chunks of ENG_BULK_CHUNK with a deadline and interrupt check between
 * them (exec.c): one instruction may move up to 4 GiB, which would
 * otherwise hold the thread (the event loop's, for a trial run) for
 * hundreds of milliseconds past a deadline. false = stopped: the caller
 * traps ENG_TRAP_DEADLINE, with the bytes moved so far left as they are
 * (a trap ends the call; in the data plane, the instance too). */
#define ENG_BULK_CHUNK (1u << 20)
bool eng_bulk_fill(eng_exec_t *x, uint8_t *dst, int val, uint64_t n);
bool eng_bulk_move(eng_exec_t *x, uint8_t *dst, const uint8_t *src, uint64_t n);

/* Writes x->msg and x->trap for trap t raised in function func_index of
 * module m (m NULL: no function named). text replaces the trap's standard
 * text (NULL: standard). Host and exit traps keep the host's message. */
void eng_trap_message(eng_exec_t *x, eng_trap_t t, const char *text, const eng_module_t *m,
                      uint32_t func_index);

/* ---- Stores (store.c) and instances (instance.c) ---- */

enum { ENG_OBJ_FUNC, ENG_OBJ_MEMORY, ENG_OBJ_TABLE, ENG_OBJ_GLOBAL, ENG_OBJ_INSTANCE };

/* Records p in the store, which frees it with the store; false (nothing
 * recorded) when out of memory. */
bool eng_store_add(eng_store_t *s, uint8_t kind, void *p);
/* The store's memory limit in pages. */
uint32_t eng_store_limit_pages(const eng_store_t *s);
/* Checks imports[0..n) against m's imports (count, kinds, types). */
bool eng_imports_check(const eng_module_t *m, const eng_extern_t *imports, uint32_t n, char *err,
                       size_t errlen);
/* Makes an instance of m in s with every array allocated, the imports at the
 * front of each index space, the defined functions made and the defined
 * globals' objects in place (values zero). Tables, memories and segments
 * are left to the caller. NULL when out of memory. */
eng_instance_t *eng_instance_alloc(eng_store_t *s, const eng_module_t *m, const eng_extern_t *imports);

/* ---- Memory slots (slots.c) ---- */

/* Guard regions for native code (native_ir.c, native_rt.c). Native code
 * compiled in guard mode checks no memory access whose constant offset and
 * size stay within ENG_GUARD_SLACK: its instance's memory 0 sits at the
 * start of a reservation of ENG_GUARD_RESERVE bytes, so any such address
 * (zext(i32) + offset) lands inside it, and past the memory's size it is
 * PROT_NONE: the access faults, and the fault becomes the trap. Such slots
 * are counted; past ENG_GUARD_SLOTS_MAX (64 TiB of address space) new
 * instances are made without one and interpreted. */
#define ENG_GUARD_SLACK (64u << 10)
#define ENG_GUARD_RESERVE ((4ull << 30) + ENG_GUARD_SLACK)
#define ENG_GUARD_SLOTS_MAX 16384u

/* A PROT_NONE reservation of at least *bytes (rounded up to a power of two
 * of at least 64 KiB, written back to *bytes), from the process-wide pool
 * when one is free, else fresh from mmap. NULL when mmap fails. Exactly
 * ENG_GUARD_RESERVE asks for a guard slot: NULL also when
 * ENG_GUARD_SLOTS_MAX of them exist. */
uint8_t *eng_slot_acquire(uint64_t *bytes);
/* Gives a reservation back. `used` bytes from its start may have been made
 * accessible or mapped from an image; they are reset to an inaccessible,
 * zero-filled state (one mmap over them) before the slot is reused. */
void eng_slot_release(uint8_t *p, uint64_t bytes, uint64_t used);
/* The size of the reservation eng_slot_acquire makes for `bytes` (not a
 * guard slot): the power of two of at least 64 KiB it is rounded up to. */
uint64_t eng_slot_rounded(uint64_t bytes);

/* ---- Tracking the pages a warm slot's instances touch (touch.c) ---- */

#define ENG_TOUCH_MAX 64 /* pages a tracked slot may have; more ends the tracking */
typedef struct eng_touch eng_touch_t;
/* Starts reporting every page of [base + from, base + to) that becomes
 * mapped (page-aligned offsets); pages[0..n) (4 KiB indices from base) are
 * the ones mapped now. NULL when the kernel cannot (no userfaultfd) or n is
 * over ENG_TOUCH_MAX. */
eng_touch_t *eng_touch_start(uint8_t *base, uint64_t from, uint64_t to, const uint32_t *pages, uint32_t n);
/* The tracker of the slot at base, or NULL. */
eng_touch_t *eng_touch_find(const uint8_t *base);
/* The end of the tracked range (offset from base). */
uint64_t eng_touch_end(const eng_touch_t *t);
/* The pages mapped so far into out[ENG_TOUCH_MAX]; false when more than
 * ENG_TOUCH_MAX were (the tracker is then useless: stop it). */
bool eng_touch_pages(eng_touch_t *t, uint32_t *out, uint32_t *n);
/* Stops tracking and frees t; the slot must be idle. */
void eng_touch_stop(eng_touch_t *t);
/* How many slots are tracked in the process (tests). */
uint32_t eng_touch_count(void);

/* Grows a table by delta, filling with init. Returns the old size or -1
 * (store.c). */
int64_t eng_table_grow(eng_table_t *t, uint32_t delta, void *init);

/* Evaluates a constant expression in an instance under construction;
 * *hi gets bytes 8..15 of a v128 (0 for other types; hi may be NULL). */
eng_val_t eng_constexpr_eval(const eng_instance_t *inst, const eng_constexpr_t *ce, uint64_t *hi);

/* ---- Compiler interface (compile.c) ---- */

/* Validates and compiles the body of defined function `defined_index` (index
 * among defined functions). body/len is the body after its size prefix;
 * `offset` is the body's byte offset in the module, for messages. The module
 * fields up to and including data_count and func_declared are filled in.
 * Fills m->code[defined_index]. Returns false with a message in err. */
bool eng_compile_func(eng_module_t *m, uint32_t defined_index, const uint8_t *body, size_t len,
                      size_t offset, char *err, size_t errlen);

/* Frees the code of one compiled function. */
void eng_code_func_free(eng_code_func_t *c);

/* ---- Native tier (native_rt.c, native_load.c) ---- */

/* Runs f, which has native code, on x with its arguments in io[0..nparams)
 * and writes its results to io[0..nresults). Returns ENG_OK or the trap,
 * with the message in x. Re-entrant (host functions may call eng_call). */
eng_trap_t eng_native_enter(eng_exec_t *x, eng_func_t *f, eng_val_t *io);
/* The lowest stack address guest code entered with stack pointer sp may
 * use on x's stack (eng_exec_set_stack, else the thread's): the stack's
 * end plus ENG_NATIVE_STACK_RESERVE, or UINTPTR_MAX when even that is not
 * there. eng_call sets x->stack_limit from it at the outermost call;
 * native code and nested eng_calls trap below it. */
uintptr_t eng_stack_limit(const eng_exec_t *x, uintptr_t sp);
/* Gives a new instance's defined functions the module's native code, if
 * the module has any attached (called by eng_instance_alloc). */
void eng_native_link_instance(eng_instance_t *inst);
/* Makes an instance's functions interpreted again (no guard slot was to
 * be had for its memory). */
void eng_native_unlink_instance(eng_instance_t *inst);
/* Makes a memory for instance creation: in a guard slot when guard is
 * set (NULL when none is to be had, *no_slot set), else as
 * eng_memory_new (instance.c). */
eng_memory_t *eng_memory_new_slot(eng_store_t *s, uint32_t min_pages, uint32_t max_pages, bool guard,
                                  bool *no_slot);
/* Frees native code (with its module). */
void eng_native_free(struct eng_native *n);
size_t eng_native_size_bytes(const struct eng_native *n);


/* ---- Serialisation (serialize.c) ---- */

/* True when every op has an operand shape in ops.h (a test checks it). */
bool eng_serial_shapes_complete(void);

/* ---- Object loader (objload.c) ---- */

/* A loaded object: one mapping holding its code (read+execute), read-only
 * data (read) and writable data, plus a table of its symbols. Immutable
 * once loaded: any thread may look symbols up and run its code. */
typedef struct eng_obj eng_obj_t;

/* Resolves an undefined (external) symbol: its address, or NULL when
 * unknown (the load then fails naming it). Called only from inside
 * eng_obj_load, on the loading thread, at most once per symbol, and only
 * for symbols a loaded relocation uses. */
typedef void *(*eng_obj_resolve_fn)(void *ud, const char *name);

/* Loads an ELF64 x86-64 relocatable object (ET_REL, as LLVM emits with code
 * model small and PIC): maps its allocatable sections, applies relocations,
 * resolves undefined symbols through resolve, then makes code read+execute
 * and read-only data read-only (never writable and executable at once).
 * Returns NULL with a one-line message naming the fault (section,
 * relocation or symbol) on anything malformed or unsupported. The bytes are
 * untrusted and not retained. The caller owns the result: eng_obj_free. */
eng_obj_t *eng_obj_load(const uint8_t *bytes, size_t len, eng_obj_resolve_fn resolve, void *ud, char *err,
                        size_t errlen);
/* Address of a defined symbol (global or local, function or object) by
 * name, or NULL. A global wins over a local of the same name. */
void *eng_obj_symbol(const eng_obj_t *o, const char *name);
/* Bytes mapped (code + data + stubs + GOT, in whole pages), for caches that
 * bound memory. */
size_t eng_obj_size_bytes(const eng_obj_t *o);
/* The object's code: [*start, *start + *len), read and execute only. */
void eng_obj_code(const eng_obj_t *o, uintptr_t *start, size_t *len);
/* The name of the function symbol whose code holds addr, or NULL. */
const char *eng_obj_function_at(const eng_obj_t *o, uintptr_t addr);
/* The section whose PC table eng_obj_pc_value reads (LLVM's !pcsections:
 * the native tier marks each memory access that may fault in guard mode
 * with the wasm function it came from, which inlining hides otherwise). */
#define ENG_OBJ_PC_SECTION "wasmfn_pc"
/* Rewrites an object LLVM just emitted for storage (objpack.c): its PC
 * table resolved to code offsets and not allocatable, the relocations
 * that pointed into it dropped; eng_obj_load reads only this form. *out
 * is malloc'ed; false with a message on anything unexpected. An object
 * without a PC table comes back re-laid but the same. */
bool eng_obj_pack_pcs(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen, char *err,
                      size_t errlen);
/* The value the PC table gives the instruction that starts at pc: true and
 * *value set, or false when pc is not in the table. */
bool eng_obj_pc_value(const eng_obj_t *o, uintptr_t pc, uint32_t *value);
/* Unmaps the object and frees it; its code must no longer be running. NULL
 * is allowed. */
void eng_obj_free(eng_obj_t *o);

/* ---- SIMD (simd.c) ---- */

/* A v128 value as the interpreter computes with it: lane i of each view
 * is lane i of the spec (the host is little-endian). In a frame it is two
 * consecutive slots, copied in and out with memcpy. */
typedef union eng_v128 {
    uint8_t u8[16];
    int8_t i8[16];
    uint16_t u16[8];
    int16_t i16[8];
    uint32_t u32[4];
    int32_t i32[4];
    uint64_t u64[2];
    int64_t i64[2];
    float f32[4];
    double f64[2];
} eng_v128_t;

/* Each takes the instruction's 0xFD sub-opcode (sl: sub | lane << 8) as
 * the validator let it through; d may alias no input (callers pass
 * copies). */
uint32_t eng_simd_load_bytes(uint32_t sub);
void eng_simd_load(uint32_t sub, eng_v128_t *d, const uint8_t *p);
void eng_simd_splat(uint32_t sub, eng_v128_t *d, uint64_t x);
uint64_t eng_simd_extract(uint32_t sl, const eng_v128_t *a);
void eng_simd_replace(uint32_t sl, eng_v128_t *d, const eng_v128_t *a, uint64_t x);
void eng_simd_shuffle(eng_v128_t *d, const eng_v128_t *a, const eng_v128_t *b,
                      const uint8_t lanes[16]);
uint32_t eng_simd_test(uint32_t sub, const eng_v128_t *a);
void eng_simd_shift(uint32_t sub, eng_v128_t *d, const eng_v128_t *a, uint32_t n);
void eng_simd_un(uint32_t sub, eng_v128_t *d, const eng_v128_t *a);
void eng_simd_bin(uint32_t sub, eng_v128_t *d, const eng_v128_t *a, const eng_v128_t *b);

/* Formats an error message; always returns false for convenience. */
bool eng_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
