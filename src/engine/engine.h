/*
 * engine.h — wasmfn's WebAssembly engine: the whole public API.
 *
 * Prefix: eng_. The engine decodes, validates and compiles WebAssembly 2.0
 * binary modules (no SIMD yet) into an internal code that a threaded
 * interpreter runs. It does no I/O and knows nothing of HTTP or WASI: those
 * layers sit on top and talk to guests through host functions.
 *
 * The objects, in the order one meets them:
 *
 *   eng_module_t    a decoded, validated and compiled module. Immutable once
 *                   made, so many threads may instantiate it at once. It must
 *                   outlive every instance made from it.
 *   eng_store_t     owns everything an instantiation creates: instances,
 *                   memories, tables, globals, host functions. Freed as one.
 *                   A store is used by one thread at a time.
 *   eng_exec_t      an execution context: the value stack, the call stack,
 *                   the deadline and the last trap. One per thread (or fiber)
 *                   that runs guest code. Not tied to a store.
 *   eng_instance_t  an instantiated module, living in a store.
 *   eng_func_t, eng_memory_t, eng_table_t, eng_global_t
 *                   the four kinds of extern; what modules import and export.
 *   eng_image_t     a snapshot of an instance's state from which new
 *                   instances start in microseconds (copy-on-write memory).
 *
 * A typical embedder:
 *
 *   char err[ENG_ERR_MAX];
 *   eng_module_t *m = eng_module_new(bytes, len, err, sizeof err);
 *   eng_store_t *s = eng_store_new();
 *   eng_exec_t *x = eng_exec_new(0);
 *   eng_extern_t imports[N];   // one per eng_module_import(), in order
 *   eng_instance_t *inst = eng_instance_new(s, m, imports, N, x, err, sizeof err);
 *   eng_func_t *f = eng_instance_func(inst, "add");
 *   eng_val_t args[2] = {{.i32 = 1}, {.i32 = 2}}, res[1];
 *   if (eng_call(x, f, args, res) != ENG_OK) puts(eng_exec_trap_message(x));
 *
 * Errors: functions that can fail return NULL or an error code and write a
 * one-line message naming the fault (for modules, the byte offset and
 * section) into the caller's buffer. Nothing a module does can abort the
 * process: every trap comes back as an eng_trap_t.
 */
#ifndef WASMFN_ENGINE_H
#define WASMFN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENG_ERR_MAX 256        /* a message buffer of this size always fits */
#define ENG_PAGE_BYTES 65536u  /* one WebAssembly page */

typedef struct eng_module eng_module_t;
typedef struct eng_store eng_store_t;
typedef struct eng_exec eng_exec_t;
typedef struct eng_instance eng_instance_t;
typedef struct eng_func eng_func_t;
typedef struct eng_memory eng_memory_t;
typedef struct eng_table eng_table_t;
typedef struct eng_global eng_global_t;
typedef struct eng_image eng_image_t;

/* Value types, with their binary encodings. */
typedef enum eng_valtype {
    ENG_I32 = 0x7F,
    ENG_I64 = 0x7E,
    ENG_F32 = 0x7D,
    ENG_F64 = 0x7C,
    ENG_V128 = 0x7B, /* 128-bit SIMD vector: two eng_val_t in argument arrays (below) */
    ENG_FUNCREF = 0x70,
    ENG_EXTERNREF = 0x6F,
} eng_valtype_t;

/* One value. Which member is live follows from its type. A funcref is an
 * eng_func_t pointer; an externref is any host pointer; NULL is the null
 * reference of either. Floats are stored bit-exactly (NaN payloads kept).
 * A v128 does not fit: wherever values travel in arrays (eng_call's args
 * and results, a host function's args) a v128 takes two consecutive
 * entries, its bytes 0..7 in the first .i64 and 8..15 in the second
 * (little-endian, lane 0 first), so an array's length is the number of
 * values plus the number of v128s among them (eng_func_param_slots). */
typedef union eng_val {
    uint32_t i32;
    uint64_t i64;
    float f32;
    double f64;
    void *ref;
} eng_val_t;

/* How a call ended. ENG_OK is 0; everything else is a trap. */
typedef enum eng_trap {
    ENG_OK = 0,
    ENG_TRAP_UNREACHABLE,      /* "unreachable" executed */
    ENG_TRAP_MEMORY_OOB,       /* memory access out of bounds */
    ENG_TRAP_DIV_ZERO,         /* integer divide by zero */
    ENG_TRAP_INT_OVERFLOW,     /* integer overflow (div, trunc) */
    ENG_TRAP_INVALID_CONV,     /* invalid conversion to integer (NaN) */
    ENG_TRAP_TABLE_OOB,        /* undefined element / table index out of bounds */
    ENG_TRAP_NULL_REF,         /* uninitialized element / null reference */
    ENG_TRAP_INDIRECT_TYPE,    /* indirect call type mismatch */
    ENG_TRAP_STACK_EXHAUSTED,  /* call stack exhausted */
    ENG_TRAP_DEADLINE,         /* deadline passed or eng_exec_interrupt() */
    ENG_TRAP_HOST,             /* a host function failed; see the message */
    ENG_TRAP_EXIT,             /* a host function ended the guest (proc_exit) */
} eng_trap_t;

/* The standard text of a trap code ("integer divide by zero", ...). */
const char *eng_trap_name(eng_trap_t t);

/* ---- Modules ------------------------------------------------------------ */

/* Decodes, validates and compiles a binary module. Returns NULL and writes a
 * message such as "at byte 0x1f (code section): unknown opcode 0xfd" into
 * err on failure. The bytes are not retained. Free with eng_module_free. */
eng_module_t *eng_module_new(const uint8_t *bytes, size_t len, char *err, size_t errlen);
void eng_module_free(eng_module_t *m);
/* Modules eng_module_new has compiled in this process so far (a statistic,
 * any thread: the tests check that an upload is compiled once). */
uint64_t eng_module_compiles(void);

typedef enum eng_extern_kind {
    ENG_EXTERN_FUNC = 0,
    ENG_EXTERN_TABLE = 1,
    ENG_EXTERN_MEMORY = 2,
    ENG_EXTERN_GLOBAL = 3,
} eng_extern_kind_t;

/* An import or export as the module declares it. Strings point into the
 * module and live as long as it does. For functions, `type` is a signature
 * string (see eng_func_new_host). */
typedef struct eng_extern_desc {
    const char *module; /* imports only */
    const char *name;
    eng_extern_kind_t kind;
    const char *type;   /* functions: "(ii)i"; globals: "i", "mut i"; others: "" */
} eng_extern_desc_t;

uint32_t eng_module_import_count(const eng_module_t *m);
void eng_module_import(const eng_module_t *m, uint32_t i, eng_extern_desc_t *out);
uint32_t eng_module_export_count(const eng_module_t *m);
void eng_module_export(const eng_module_t *m, uint32_t i, eng_extern_desc_t *out);

/* Compiled modules as bytes, so that a module need not be compiled again
 * (src/engine/serialize.c; the format is in docs/engine.md). serialize
 * writes a malloc'd buffer to *out (caller frees) and returns true, or
 * false with a message. deserialize checks the bytes whole — format
 * version, engine build, SHA-256, then every count, index, slot and branch
 * — and returns a module equivalent to the one serialised (free with
 * eng_module_free), or NULL with a message: "stale: ..." when it was made
 * by another version or build of the engine (recompile then), anything
 * else when it is damaged. It never trusts the bytes before checking them,
 * but see serialize.c for what the checks cannot prove about a forged file
 * with a valid hash. */
bool eng_module_serialize(const eng_module_t *m, uint8_t **out, size_t *len, char *err,
                          size_t errlen);
eng_module_t *eng_module_deserialize(const uint8_t *buf, size_t len, char *err, size_t errlen);
/* Roughly the heap bytes the module holds (code, segments, tables of
 * types, imports and exports), for caches that bound their memory. */
size_t eng_module_size_bytes(const eng_module_t *m);

/* ---- Stores and execution contexts -------------------------------------- */

eng_store_t *eng_store_new(void);
/* Frees the store and everything in it. No exec may be running its code. */
void eng_store_free(eng_store_t *s);
/* Caps the linear memory any one memory of this store may reach, in bytes
 * (rounded down to pages). memory.grow past it returns -1; instantiating a
 * memory whose minimum exceeds it fails. 0 means the 4 GiB the spec allows. */
void eng_store_set_memory_limit(eng_store_t *s, uint64_t max_bytes);

/* stack_bytes: size of the value stack (0 = 1 MiB); call depth is bounded
 * too, so unbounded recursion traps with ENG_TRAP_STACK_EXHAUSTED. */
eng_exec_t *eng_exec_new(size_t stack_bytes);
void eng_exec_free(eng_exec_t *x);
/* Absolute CLOCK_MONOTONIC deadline in ns for the calls that follow;
 * 0 = none. Checked at function entries and loop back-edges. */
void eng_exec_set_deadline(eng_exec_t *x, uint64_t deadline_ns);
uint64_t eng_exec_deadline(const eng_exec_t *x);
/* Asks the running guest to stop with ENG_TRAP_DEADLINE. Safe from any
 * thread and from signal handlers. Cleared at the next eng_call. */
void eng_exec_interrupt(eng_exec_t *x);
/* True once the deadline has passed or eng_exec_interrupt was called: a
 * host function that blocks (sleeps, waits for I/O) polls this and returns
 * ENG_TRAP_DEADLINE when it turns true. */
bool eng_exec_should_stop(eng_exec_t *x);
/* A scheduler's hook into the interpreter's interruption checks (every
 * 10,000 function entries and loop back-edges: tens of microseconds of
 * guest code at most). fn runs on the guest's thread just before the
 * deadline check, with the guest paused between two instructions; it may
 * switch the thread to other work (another fiber) and return later. It
 * must not call into x. Used for time-slicing CPU-bound guests; NULL (the
 * default) = no hook. Costs nothing between checks. */
typedef void (*eng_yield_fn)(eng_exec_t *x, void *ud);
void eng_exec_set_yield(eng_exec_t *x, eng_yield_fn fn, void *ud);
/* After a trap: a one-line description, e.g. "integer divide by zero in
 * function 3 (fib)". Valid until the next call on x. */
const char *eng_exec_trap_message(const eng_exec_t *x);
/* After ENG_TRAP_EXIT: the code passed to eng_exec_exit. */
int eng_exec_exit_code(const eng_exec_t *x);
/* The value of eng_now_ns(): CLOCK_MONOTONIC in nanoseconds. */
uint64_t eng_now_ns(void);

/* ---- Host functions ----------------------------------------------------- */

/* What a host function is told about the call. */
typedef struct eng_host_call {
    eng_exec_t *exec;        /* to trap or exit */
    eng_instance_t *caller;  /* the instance whose code called; NULL from eng_call */
    void *env;               /* as given to eng_func_new_host */
} eng_host_call_t;

/* A host function reads its arguments from args[0..nparams) and writes its
 * results to args[0..nresults) (the same array). It returns ENG_OK, a trap
 * made with eng_exec_trap_host / eng_exec_exit, or ENG_TRAP_DEADLINE when it
 * noticed eng_exec_should_stop while blocking. */
typedef eng_trap_t (*eng_host_fn_t)(eng_host_call_t *call, eng_val_t *args);

/* Makes a host function in store s. `sig` is "(PARAMS)RESULTS" with one
 * letter per type: i=i32 I=i64 f=f32 F=f64 v=v128 r=externref R=funcref, e.g.
 * "(iiii)i" or "()". Returns NULL if sig is malformed. */
eng_func_t *eng_func_new_host(eng_store_t *s, const char *sig, eng_host_fn_t fn, void *env);
/* The same from a type parsed once (eng_host_type_new; NULL if sig is
 * malformed) and shared by every function made from it, which it must
 * outlive (WASI's live for the process; eng_host_type_free frees one):
 * binding a module's imports per instance then parses nothing and
 * allocates only the function. */
typedef struct eng_host_type eng_host_type_t;
const eng_host_type_t *eng_host_type_new(const char *sig);
void eng_host_type_free(const eng_host_type_t *t);
eng_func_t *eng_func_new_host_typed(eng_store_t *s, const eng_host_type_t *t, eng_host_fn_t fn,
                                    void *env);
eng_trap_t eng_exec_trap_host(eng_exec_t *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
eng_trap_t eng_exec_exit(eng_exec_t *x, int code);

/* The memory the calling instance uses (its memory 0), or NULL. Host
 * functions must bounds-check every guest pointer against eng_memory_size. */
eng_memory_t *eng_instance_memory(eng_instance_t *inst);

/* ---- Externs ------------------------------------------------------------ */

typedef struct eng_extern {
    eng_extern_kind_t kind;
    union {
        eng_func_t *func;
        eng_table_t *table;
        eng_memory_t *memory;
        eng_global_t *global;
    } u;
} eng_extern_t;

/* Functions. The signature string is as for eng_func_new_host. */
const char *eng_func_signature(const eng_func_t *f);
uint32_t eng_func_param_count(const eng_func_t *f);
uint32_t eng_func_result_count(const eng_func_t *f);
eng_valtype_t eng_func_param_type(const eng_func_t *f, uint32_t i);
eng_valtype_t eng_func_result_type(const eng_func_t *f, uint32_t i);
/* eng_val_t entries the params (results) take in an argument array: the
 * count plus one per v128 (see eng_val_t). */
uint32_t eng_func_param_slots(const eng_func_t *f);
uint32_t eng_func_result_slots(const eng_func_t *f);

/* Memories. max_pages 0xFFFFFFFF = no maximum. */
eng_memory_t *eng_memory_new(eng_store_t *s, uint32_t min_pages, uint32_t max_pages);
uint8_t *eng_memory_data(eng_memory_t *m);
uint64_t eng_memory_size(const eng_memory_t *m); /* bytes */
/* Returns the old size in pages, or -1 if the memory cannot grow by delta. */
int64_t eng_memory_grow(eng_memory_t *m, uint32_t delta_pages);

/* Tables of funcref or externref. */
eng_table_t *eng_table_new(eng_store_t *s, eng_valtype_t elem, uint32_t min, uint32_t max,
                           void *init);
uint32_t eng_table_size(const eng_table_t *t);
bool eng_table_get(const eng_table_t *t, uint32_t i, void **out);
bool eng_table_set(eng_table_t *t, uint32_t i, void *ref);

/* Globals. */
eng_global_t *eng_global_new(eng_store_t *s, eng_valtype_t type, bool mut, eng_val_t v);
eng_valtype_t eng_global_type(const eng_global_t *g);
eng_val_t eng_global_get(const eng_global_t *g);
void eng_global_set(eng_global_t *g, eng_val_t v);
/* A v128 global's 16 bytes (lane 0 first); for other types the first 8
 * bytes hold the value as eng_global_get returns it. */
void eng_global_get_v128(const eng_global_t *g, uint8_t out[16]);
void eng_global_set_v128(eng_global_t *g, const uint8_t in[16]);

/* ---- Instances ---------------------------------------------------------- */

/* Instantiates m in s. imports[i] satisfies eng_module_import(m, i); kinds
 * and types are checked ("incompatible import type" errors name the import).
 * Runs the start function on exec x. On failure returns NULL with a message;
 * a trap in the start function is reported as "start function trapped: ...".
 * Segments written before such a trap stay written, as the spec says. */
eng_instance_t *eng_instance_new(eng_store_t *s, const eng_module_t *m,
                                 const eng_extern_t *imports, uint32_t nimports,
                                 eng_exec_t *x, char *err, size_t errlen);
/* Looks up an export by name. */
bool eng_instance_export(eng_instance_t *inst, const char *name, eng_extern_t *out);
/* The same for names given by length (export names may contain NUL bytes). */
bool eng_instance_export_n(eng_instance_t *inst, const char *name, size_t len, eng_extern_t *out);
/* An exported function by name, or NULL. */
eng_func_t *eng_instance_func(eng_instance_t *inst, const char *name);
const eng_module_t *eng_instance_module(const eng_instance_t *inst);

/* ---- Images ------------------------------------------------------------- */

/* Captures inst's current state as an image: its linear memory (into a
 * sealed memfd), globals, tables and which segments are dropped. Take it
 * right after instantiation, or after running an initialiser such as the
 * module's `wizer.initialize` export: new instances then start in that
 * state. The image refers to the instance's module, which must outlive it;
 * it holds nothing of inst or its store, which may be freed at once.
 * Functions in tables and globals are kept as indices, so imported (host)
 * functions are re-linked per instance. Returns NULL with a message when
 * the state cannot be kept: the module imports a memory, table or global,
 * or a table, global or segment holds an externref or another instance's
 * function. An embedder then instantiates with eng_instance_new instead. */
eng_image_t *eng_image_new(eng_instance_t *inst, char *err, size_t errlen);
void eng_image_free(eng_image_t *img);
const eng_module_t *eng_image_module(const eng_image_t *img);
/* Bytes of memory image shared by every instance (up to the last non-zero
 * 4 KiB page). */
uint64_t eng_image_memory_bytes(const eng_image_t *img);
/* The size of the image's memories when it was captured (pages times
 * 64 KiB, summed): what every instance starts with, so what a memory
 * limit must allow. */
uint64_t eng_image_memory_size_bytes(const eng_image_t *img);
/* Slots the image keeps warm: freed instances' memories, reset in place to
 * the image's state, which its next instances take without mapping
 * anything (image.c says how and what bounds them). */
uint32_t eng_image_warm_slots(const eng_image_t *img);
/* Releases the warm slots (their memory goes back to the system). */
void eng_image_trim(eng_image_t *img);

/* Instantiates the image's module in s, in the image's state, without
 * running anything (the start function already ran before the capture).
 * imports are checked as for eng_instance_new and are typically fresh host
 * functions made in s. The memory maps the image copy-on-write: writes are
 * private to this instance and never reach the image or other instances.
 * The store's memory limit applies (an image larger than it fails). Any
 * thread may instantiate the same image at the same time. */
eng_instance_t *eng_instance_from_image(eng_store_t *s, const eng_image_t *img,
                                        const eng_extern_t *imports, uint32_t nimports,
                                        char *err, size_t errlen);

/* ---- Native code -------------------------------------------------------- */

/* The native tier compiles a module's functions to x86-64 machine code
 * through LLVM (src/engine/native_*.c; docs/engine.md, "Native code"). It
 * has the interpreter's semantics: the same traps with the same messages,
 * deadlines and interrupts, bounded stack use, images and fibers. A module
 * starts interpreted; once native code is attached to it, instances made
 * from then on run natively (instances made before keep interpreting). */
typedef enum eng_tier { ENG_TIER_INTERP = 0, ENG_TIER_NATIVE = 1 } eng_tier_t;

/* True when this build can compile native code on this machine. */
bool eng_native_can_compile(void);
/* What native code made by this process is for: this build of wasmfn,
 * LLVM's version, the CPU and its features. Code made for another target
 * is never loaded. A static string. */
const char *eng_native_target(void);
/* The SHA-256 of eng_native_target(), to name stored code by target. */
void eng_native_target_digest(uint8_t out[32]);

/* Compiles the module in bytes (decoding and validating it again) to
 * native code: a pack of ELF relocatable objects (a large module is split
 * into parts compiled on several threads, one per CPU) in a malloc'd
 * buffer (*obj, caller frees). Takes seconds for large modules; runs on
 * any thread (each call is independent). false with a message ("native: ...") when the module
 * cannot be compiled; it then runs in the interpreter. */
bool eng_native_compile(const uint8_t *wasm, size_t len, uint8_t **obj, size_t *objlen,
                        char *err, size_t errlen);
/* Loads obj (from eng_native_compile of the bytes m was made from) and
 * attaches it to m: instances made afterwards run natively. Safe while
 * other threads instantiate m. A second attach is a no-op. false with a
 * message when the object is not m's or cannot be loaded. */
bool eng_module_attach_native(eng_module_t *m, const uint8_t *obj, size_t len, char *err,
                              size_t errlen);
/* ENG_TIER_NATIVE once native code is attached. */
eng_tier_t eng_module_tier(const eng_module_t *m);

/* Native code as a stored artefact. seal wraps obj with what it is for
 * (the target, the SHA-256 of the module's .wasm) and an HMAC-SHA-256
 * under key; open checks all of that and points *obj into art, or fails
 * with "damaged", "stale" (another build or CPU: compile again) or "made
 * from another module". Never load native code from storage without open:
 * only a matching MAC shows that this build made it. */
#define ENG_NATIVE_KEY_BYTES 32
bool eng_native_seal(const uint8_t *obj, size_t len, const uint8_t module_sha256[32],
                     const uint8_t key[ENG_NATIVE_KEY_BYTES], uint8_t **art, size_t *artlen,
                     char *err, size_t errlen);
bool eng_native_open(const uint8_t *art, size_t len, const uint8_t module_sha256[32],
                     const uint8_t key[ENG_NATIVE_KEY_BYTES], const uint8_t **obj, size_t *objlen,
                     char *err, size_t errlen);

/* Native code checks most memory accesses with the MMU rather than with
 * instructions (a guard region follows every memory; docs/engine.md): a
 * SIGSEGV handler turns those faults into traps, and hands any other fault
 * to the handler that was in place before it. The engine installs it when
 * such code is first attached. An embedder that installs a SIGSEGV or
 * SIGBUS handler of its own afterwards must call this again (the engine's
 * then chains to the embedder's). */
void eng_native_install_fault_handler(void);

/* Native code runs on the calling thread's stack and traps with "call
 * stack exhausted" before it is used up. The engine knows a thread's own
 * stack; an embedder that runs guests on stacks of its own (fibers) gives
 * the stack of x here ([lo, lo + bytes); NULL = the thread's). */
void eng_exec_set_stack(eng_exec_t *x, void *lo, size_t bytes);

/* ---- Calling ------------------------------------------------------------ */

/* Calls f with args[0..param slots) and writes results[0..result slots)
 * (one entry per value, two per v128: eng_func_param_slots). Returns
 * ENG_OK or the trap; the message is eng_exec_trap_message(x). May be called
 * from inside a host function (re-entrantly) on the same exec. */
eng_trap_t eng_call(eng_exec_t *x, eng_func_t *f, const eng_val_t *args, eng_val_t *results);

#endif
