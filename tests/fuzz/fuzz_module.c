/*
 * fuzz_module.c — libFuzzer target over the whole engine pipeline.
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
 * Built with clang -fsanitize=fuzzer,address,undefined over every .c file of
 * src/engine/ (mk/fuzz.mk). It includes internal.h only to read the table and memory
 * types of imports, which engine.h does not describe.
 */
#include "engine/engine.h"
#include "engine/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CALL_DEADLINE_NS (50ull * 1000 * 1000)  /* per call */
#define FUZZ_TOTAL_NS (300ull * 1000 * 1000)         /* per input */
#define FUZZ_MEMORY_LIMIT (64ull << 20)
#define FUZZ_STACK_BYTES (64u << 10)
#define FUZZ_MAX_IMPORT_PAGES 256u     /* bigger imported memories: skip */
#define FUZZ_MAX_IMPORT_TABLE 100000u  /* bigger imported tables: skip */

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

static void fuzz_run(eng_module_t *m)
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

    uint32_t nexports = eng_module_export_count(m);
    for (uint32_t i = 0; i < nexports; i++) {
        eng_extern_desc_t d;
        eng_module_export(m, i, &d);
        if (d.kind != ENG_EXTERN_FUNC) continue;
        eng_func_t *f = eng_instance_func(inst, d.name);
        if (!f) continue;
        uint32_t np = eng_func_param_count(f), nr = eng_func_result_count(f);
        eng_val_t *args = calloc(np ? np : 1, sizeof *args);
        eng_val_t *res = calloc(nr ? nr : 1, sizeof *res);
        if (args && res) {
            eng_exec_set_deadline(x, eng_now_ns() + FUZZ_CALL_DEADLINE_NS);
            if (hang_init) eng_call(x, hang_init, args, res);
            eng_trap_t t = eng_call(x, f, args, res);
            /* Every trap must come with a message. */
            const char *msg = t != ENG_OK ? eng_exec_trap_message(x) : "";
            if (!msg || (t != ENG_OK && msg[0] == 0)) __builtin_trap();
        }
        free(args);
        free(res);
        if (eng_now_ns() - start > FUZZ_TOTAL_NS) break;
    }
out:
    free(imports);
    if (s) eng_store_free(s);
    if (x) eng_exec_free(x);
}

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
    fuzz_run(m);
    eng_module_free(m);
    return 0;
}
