/*
 * fuzz_module.c — libFuzzer targets over the whole engine pipeline.
 *
 * Each input is taken as a module and pushed as far as it goes:
 *   decode + validate + compile (eng_module_new)
 *   -> instantiate, every import satisfied by a dummy of the declared type
 *      (host functions that return zeros, zero globals, empty tables,
 *      zero-filled memories)
 *   -> call every exported function with zero arguments, under a short
 *      deadline, a 64 MiB memory limit and a small value stack.
 * A crash, a sanitizer report, a leak or a hang past libFuzzer's -timeout is
 * a bug in the engine: nothing a module does may cause one.
 *
 * Built twice from this file (mk/fuzz.mk), with clang
 * -fsanitize=fuzzer,address,undefined over every .c file of src/engine/:
 *
 *   fuzz_module   the interpreter only: thousands of inputs a second.
 *   fuzz_native   (-DFUZZ_NATIVE) every valid input is also compiled to
 *                 native code (eng_native_compile, LLVM -O2) and run once
 *                 interpreted and once natively, and the two runs must
 *                 agree. LLVM takes 10-150 ms a module, so this target is
 *                 tens of times slower; it is a separate binary rather than
 *                 a fraction of fuzz_module's inputs so that fuzz_module
 *                 keeps its speed and coverage feedback stays
 *                 deterministic per input, and it runs on demand (make
 *                 fuzz-native) and in make fuzz, not in make test.
 *
 * fuzz_native's oracle, beyond the sanitizers: a valid module the native
 * compiler refuses is a bug unless it is the tier's documented frame limit
 * (then the input is dropped); both tiers must instantiate or both fail;
 * each export call must end with the same trap code (and the same trap
 * message, which engine.h promises) or the same results, NaNs of any sign
 * and payload being equal, also in a v128's float lanes (fuzz_val_equal). Comparison stops at the first call where either tier
 * exhausts its stack or hits its deadline: depth and speed differ by
 * design, and the state afterwards may too. Memory is not compared: NaN
 * payloads, which the spec leaves open and LLVM's constant folding picks
 * differently from the CPU, may legitimately reach it (the differential
 * fuzzer, diff.sh, compares memory-derived output on modules made with
 * binaryen's --denan instead). A mismatch prints both outcomes and traps,
 * so libFuzzer keeps the input as a crash-* artifact.
 *
 * It includes internal.h only to read the table and memory types of imports,
 * which engine.h does not describe.
 */
#include "engine/engine.h"
#include "engine/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CALL_DEADLINE_NS (50ull * 1000 * 1000)  /* per call */
#define FUZZ_TOTAL_NS (300ull * 1000 * 1000)         /* per input */
#define FUZZ_MEMORY_LIMIT (64ull << 20)
#define FUZZ_STACK_BYTES (64u << 10)
#define FUZZ_MAX_IMPORT_PAGES 256u     /* bigger imported memories: skip */
#define FUZZ_MAX_IMPORT_TABLE 100000u  /* bigger imported tables: skip */
#define FUZZ_MAX_CALLS 256u            /* calls recorded for comparison */
#define FUZZ_MAX_RESULTS 8u            /* results recorded per call */

/* What one run of a module did, for fuzz_native's comparison of tiers. */
typedef struct fuzz_call {
    uint32_t export_index;
    eng_trap_t trap;
    char msg[ENG_ERR_MAX];              /* the trap message */
    uint32_t nresults;                  /* recorded, at most FUZZ_MAX_RESULTS */
    eng_valtype_t type[FUZZ_MAX_RESULTS];
    eng_val_t val[FUZZ_MAX_RESULTS];
} fuzz_call_t;

typedef struct fuzz_log {
    bool ran;                 /* imports made: instantiation was tried */
    bool instantiated;
    char err[ENG_ERR_MAX];    /* why instantiation failed */
    uint32_t ncalls;
    fuzz_call_t calls[FUZZ_MAX_CALLS];
} fuzz_log_t;

static eng_valtype_t fuzz_type_of_letter(char c)
{
    switch (c) {
    case 'i': return ENG_I32;
    case 'I': return ENG_I64;
    case 'f': return ENG_F32;
    case 'F': return ENG_F64;
    case 'r': return ENG_EXTERNREF;
    case 'R': return ENG_FUNCREF;
    default: return 0;
    }
}

/* A host function of any signature: writes zero results. env is the number
 * of results. */
static eng_trap_t fuzz_host_zero(eng_host_call_t *call, eng_val_t *args)
{
    uintptr_t nresults = (uintptr_t)call->env;
    memset(args, 0, nresults * sizeof *args);
    return ENG_OK;
}

/* Makes a dummy for import i; false if it cannot or should not be made. */
static bool fuzz_make_import(eng_store_t *s, const eng_module_t *m, uint32_t i, eng_extern_t *out)
{
    eng_extern_desc_t d;
    eng_module_import(m, i, &d);
    out->kind = d.kind;
    switch (d.kind) {
    case ENG_EXTERN_FUNC: {
        const char *close = d.type ? strchr(d.type, ')') : NULL;
        if (!close) return false;
        uintptr_t nresults = strlen(close + 1);
        out->u.func = eng_func_new_host(s, d.type, fuzz_host_zero, (void *)nresults);
        return out->u.func != NULL;
    }
    case ENG_EXTERN_GLOBAL: {
        bool mut = strncmp(d.type, "mut ", 4) == 0;
        eng_valtype_t t = fuzz_type_of_letter(d.type[mut ? 4 : 0]);
        if (!t) return false;
        eng_val_t zero;
        memset(&zero, 0, sizeof zero);
        out->u.global = eng_global_new(s, t, mut, zero);
        return out->u.global != NULL;
    }
    case ENG_EXTERN_TABLE: {
        const eng_tabletype_t *tt = &m->imports[i].table;
        if (tt->limits.min > FUZZ_MAX_IMPORT_TABLE) return false;
        out->u.table = eng_table_new(s, (eng_valtype_t)tt->elem, tt->limits.min, tt->limits.max, NULL);
        return out->u.table != NULL;
    }
    case ENG_EXTERN_MEMORY: {
        const eng_limits_t *l = &m->imports[i].memory;
        if (l->min > FUZZ_MAX_IMPORT_PAGES) return false;
        out->u.memory = eng_memory_new(s, l->min, l->max);
        return out->u.memory != NULL;
    }
    }
    return false;
}

/* Instantiates m and calls its exports (see the top of the file). log, when
 * not NULL, records what happened. max_calls, when not 0, makes exactly the
 * first max_calls export calls, without the per-input time budget (to
 * repeat another run's calls). */
static void fuzz_run(eng_module_t *m, fuzz_log_t *log, uint32_t max_calls)
{
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(FUZZ_STACK_BYTES);
    uint32_t nimports = eng_module_import_count(m);
    eng_extern_t *imports = calloc(nimports ? nimports : 1, sizeof *imports);
    if (!s || !x || !imports) goto out;
    eng_store_set_memory_limit(s, FUZZ_MEMORY_LIMIT);
    for (uint32_t i = 0; i < nimports; i++)
        if (!fuzz_make_import(s, m, i, &imports[i])) goto out;

    uint64_t start = eng_now_ns();
    char err[ENG_ERR_MAX];
    err[0] = 0;
    eng_exec_set_deadline(x, start + FUZZ_CALL_DEADLINE_NS);
    eng_instance_t *inst = eng_instance_new(s, m, imports, nimports, x, err, sizeof err);
    if (log) {
        log->ran = true;
        log->instantiated = inst != NULL;
        snprintf(log->err, sizeof log->err, "%s", inst ? "" : err);
    }
    if (!inst) {
        /* A failed instantiation must say why. */
        if (err[0] == 0 || memchr(err, 0, sizeof err) == NULL) __builtin_trap();
        goto out;
    }

    /* binaryen's -ttf modules (part of the seed corpus) count every loop
     * iteration and call down from a "hang limit" that this export resets;
     * without it, every call after the first few traps at once. */
    eng_func_t *hang_init = eng_instance_func(inst, "hangLimitInitializer");
    if (hang_init && eng_func_param_count(hang_init) + eng_func_result_count(hang_init) != 0)
        hang_init = NULL;

    uint32_t nexports = eng_module_export_count(m), ncalls = 0;
    for (uint32_t i = 0; i < nexports; i++) {
        if (max_calls && ncalls == max_calls) break;
        eng_extern_desc_t d;
        eng_module_export(m, i, &d);
        if (d.kind != ENG_EXTERN_FUNC) continue;
        eng_func_t *f = eng_instance_func(inst, d.name);
        if (!f) continue;
        /* Argument arrays count slots: a v128 takes two (engine.h). */
        uint32_t np = eng_func_param_slots(f), nr = eng_func_result_slots(f);
        eng_val_t *args = calloc(np ? np : 1, sizeof *args);
        eng_val_t *res = calloc(nr ? nr : 1, sizeof *res);
        if (args && res) {
            eng_exec_set_deadline(x, eng_now_ns() + FUZZ_CALL_DEADLINE_NS);
            if (hang_init) eng_call(x, hang_init, args, res);
            eng_trap_t t = eng_call(x, f, args, res);
            /* Every trap must come with a message. */
            const char *msg = t != ENG_OK ? eng_exec_trap_message(x) : "";
            if (!msg || (t != ENG_OK && msg[0] == 0)) __builtin_trap();
            if (log && log->ncalls < FUZZ_MAX_CALLS) {
                fuzz_call_t *c = &log->calls[log->ncalls++];
                c->export_index = i;
                c->trap = t;
                snprintf(c->msg, sizeof c->msg, "%s", msg);
                /* One entry per slot, typed by the value it belongs to
                 * (both halves of a v128 compare bit for bit). */
                c->nresults = t != ENG_OK ? 0 : nr < FUZZ_MAX_RESULTS ? nr : FUZZ_MAX_RESULTS;
                for (uint32_t k = 0, slot = 0; slot < c->nresults; k++) {
                    eng_valtype_t vt = eng_func_result_type(f, k);
                    for (uint32_t h = 0; h < (vt == ENG_V128 ? 2u : 1u) && slot < c->nresults; h++) {
                        c->type[slot] = vt;
                        c->val[slot] = res[slot];
                        slot++;
                    }
                }
            }
        }
        free(args);
        free(res);
        ncalls++;
        if (!max_calls && eng_now_ns() - start > FUZZ_TOTAL_NS) break;
    }
out:
    free(imports);
    if (s) eng_store_free(s);
    if (x) eng_exec_free(x);
}

#ifdef FUZZ_NATIVE
/* ---- fuzz_native: the two tiers must agree ---- */

/* One half of a v128 (8 bytes) as the same value in both tiers: equal
 * bits, or NaNs in both when read as one f64 lane, or lane by lane as two
 * f32 lanes, each equal or NaN in both. The result type does not say
 * which shape the lanes have, so both are allowed. Without this, f32x4.div
 * of 0 by 0 failed: the interpreter runs the CPU's division, whose NaN has
 * the sign bit set (0xffc00000), while LLVM folds the constant to
 * 0x7fc00000. The spec allows either sign. A NaN-shaped integer lane that
 * differs only in sign or payload would pass too; that is the price. */
static bool fuzz_v128_half_equal(uint64_t a, uint64_t b)
{
    if (a == b) return true;
    double da, db;
    memcpy(&da, &a, 8);
    memcpy(&db, &b, 8);
    if (isnan(da) && isnan(db)) return true;
    for (int lane = 0; lane < 2; lane++) {
        uint32_t la = (uint32_t)(a >> (32 * lane)), lb = (uint32_t)(b >> (32 * lane));
        float fa, fb;
        memcpy(&fa, &la, 4);
        memcpy(&fb, &lb, 4);
        if (la != lb && !(isnan(fa) && isnan(fb))) return false;
    }
    return true;
}

/* True when a and b are the same value of type t; NaNs of any sign and
 * payload are equal (the spec leaves both open). */
static bool fuzz_val_equal(eng_valtype_t t, eng_val_t a, eng_val_t b)
{
    switch (t) {
    case ENG_V128: return fuzz_v128_half_equal(a.i64, b.i64);
    case ENG_I32: return a.i32 == b.i32;
    case ENG_F32:
        if (isnan(a.f32) || isnan(b.f32)) return isnan(a.f32) && isnan(b.f32);
        return a.i32 == b.i32;
    case ENG_F64:
        if (isnan(a.f64) || isnan(b.f64)) return isnan(a.f64) && isnan(b.f64);
        return a.i64 == b.i64;
    case ENG_FUNCREF:
    case ENG_EXTERNREF:
        /* Different instances: only nullness can be compared. */
        return (a.ref == NULL) == (b.ref == NULL);
    default: return a.i64 == b.i64;
    }
}

static void fuzz_print_call(const char *tier, const fuzz_call_t *c)
{
    fprintf(stderr, "  %s: export #%u: ", tier, c->export_index);
    if (c->trap != ENG_OK) {
        fprintf(stderr, "trap %d: %s\n", (int)c->trap, c->msg);
        return;
    }
    fprintf(stderr, "result");
    for (uint32_t k = 0; k < c->nresults; k++)
        fprintf(stderr, " %02x:%016" PRIx64, (unsigned)c->type[k], c->val[k].i64);
    fprintf(stderr, "\n");
}

/* A trap whose point depends on stack size or speed, which the tiers
 * legitimately differ in. */
static bool fuzz_trap_unstable(eng_trap_t t)
{
    return t == ENG_TRAP_STACK_EXHAUSTED || t == ENG_TRAP_DEADLINE;
}

static bool fuzz_msg_unstable(const char *msg)
{
    return strstr(msg, eng_trap_name(ENG_TRAP_STACK_EXHAUSTED)) ||
           strstr(msg, eng_trap_name(ENG_TRAP_DEADLINE));
}

/* Traps (so libFuzzer keeps the input) when the runs disagree. */
static void fuzz_compare(const fuzz_log_t *in, const fuzz_log_t *na)
{
    if (!in->ran) return;
    if (in->instantiated != na->instantiated) {
        if (fuzz_msg_unstable(in->err) || fuzz_msg_unstable(na->err)) return;
        fprintf(stderr, "fuzz_native: instantiation differs: interpreter %s, native %s\n",
                in->instantiated ? "ok" : in->err, na->instantiated ? "ok" : na->err);
        __builtin_trap();
    }
    for (uint32_t i = 0; i < in->ncalls && i < na->ncalls; i++) {
        const fuzz_call_t *a = &in->calls[i], *b = &na->calls[i];
        if (fuzz_trap_unstable(a->trap) || fuzz_trap_unstable(b->trap)) return;
        bool same = a->trap == b->trap && a->nresults == b->nresults &&
                    (a->trap == ENG_OK || strcmp(a->msg, b->msg) == 0);
        for (uint32_t k = 0; same && k < a->nresults; k++)
            same = fuzz_val_equal(a->type[k], a->val[k], b->val[k]);
        if (!same) {
            fprintf(stderr, "fuzz_native: call %u differs between the tiers:\n", i + 1);
            fuzz_print_call("interpreter", a);
            fuzz_print_call("native     ", b);
            __builtin_trap();
        }
    }
}

static fuzz_log_t fuzz_log_interp, fuzz_log_native; /* large: not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ENG_ERR_MAX];
    err[0] = 0;
    eng_module_t *m = eng_module_new(data, size, err, sizeof err);
    if (!m) {
        if (err[0] == 0 || memchr(err, 0, sizeof err) == NULL) __builtin_trap();
        return 0;
    }
    uint8_t *obj = NULL;
    size_t objlen = 0;
    if (!eng_native_compile(data, size, &obj, &objlen, err, sizeof err)) {
        /* The frame limit is the tier's documented refusal; anything else
         * on a valid module is a bug. */
        if (strstr(err, "the native tier's limit")) {
            eng_module_free(m);
            return 0;
        }
        fprintf(stderr, "fuzz_native: a valid module was not compiled: %s\n", err);
        __builtin_trap();
    }
    /* The interpreted run first: instances made before the native code is
     * attached keep interpreting. */
    memset(&fuzz_log_interp, 0, sizeof fuzz_log_interp);
    memset(&fuzz_log_native, 0, sizeof fuzz_log_native);
    fuzz_run(m, &fuzz_log_interp, 0);
    if (!eng_module_attach_native(m, obj, objlen, err, sizeof err) ||
        eng_module_tier(m) != ENG_TIER_NATIVE) {
        fprintf(stderr, "fuzz_native: native code not attached: %s\n", err);
        __builtin_trap();
    }
    free(obj);
    fuzz_run(m, &fuzz_log_native, fuzz_log_interp.ncalls);
    fuzz_compare(&fuzz_log_interp, &fuzz_log_native);
    eng_module_free(m);
    return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ENG_ERR_MAX];
    err[0] = 0;
    eng_module_t *m = eng_module_new(data, size, err, sizeof err);
    if (!m) {
        /* A rejection must say why. */
        if (err[0] == 0 || memchr(err, 0, sizeof err) == NULL) __builtin_trap();
        return 0;
    }
    fuzz_run(m, NULL, 0);
    eng_module_free(m);
    return 0;
}
#endif
