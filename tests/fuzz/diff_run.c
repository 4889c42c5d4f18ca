/*
 * diff_run.c — our half of the differential fuzzer (see diff.sh).
 *
 * Usage: diff_run [--tier interp|native] MODULE.wasm
 *
 * Runs one module the way tests/fuzz/diff_run.mjs runs it in V8 and prints
 * the same transcript, so that diff.sh can compare the two byte for byte:
 *
 *   invalid                     the module does not validate (nothing more)
 *   unsupported import M.N      an import we do not know how to satisfy
 *   instantiate fail            linking or the start function failed
 *   log i32:0000002a            one line per call of a fuzzing-support log-*
 *   call NAME                   before calling exported function NAME
 *   result i32:00000001 f64:nan the results, or "result" alone for none
 *   trap                        any trap but the two below
 *   exhausted                   call stack exhausted
 *   timeout                     the deadline passed (diff.sh normalises it)
 *   done
 *
 * Then, ours only (so any such line is a mismatch against V8): the same
 * calls again on two instances made from an image of the instance as it
 * was right after instantiation — the first in a freshly mapped memory
 * slot, the second in the same slot reset in place after the first one's
 * writes (a warm slot, src/engine/image.c) — and where either transcript
 * differs from the original instance's, "image mismatch (fresh slot)" or
 * "image mismatch (warm slot)" (the differing transcript goes to stderr).
 *
 * Tiers. --tier interp (the default) runs the module in the interpreter;
 * --tier native compiles it once with eng_native_compile, attaches the code
 * before anything is instantiated, and so runs the start function, every
 * call and the image instances natively. diff.sh runs both and compares
 * each with V8 and with the other. In the native tier:
 *
 *   native compile fail: MSG    the module validates but could not be
 *                               compiled or attached (a bug: the
 *                               transcript then differs from the others)
 *   wrong tier: WHAT            an instance's function is not running in
 *                               the tier asked for (checked for the
 *                               original instance and the image ones)
 *
 * and exit status 3, with the message on stderr, when the native compiler
 * refuses the module for a documented limit of the tier (a function's
 * native frame over ENG_NATIVE_FRAME_MAX): such a module legitimately stays
 * interpreted, and diff.sh names it and compares the other two only.
 *
 * Every exported function is called in export order with zero arguments (0,
 * 0.0 or null of each parameter's type). binaryen's -ttf modules count down a
 * "hang limit" global that hangLimitInitializer resets; both sides call that
 * export before every other one, so each call gets the same budget.
 *
 * Values print as exact bit patterns in hex; every NaN prints as "nan",
 * because V8 and we may legitimately produce NaNs with different payloads
 * (V8's JS API does not even keep a returned f32 NaN's payload).
 */
#include "engine/engine.h"
#include "engine/internal.h" /* eng_func_t.native: which tier a function runs in */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_CALL_DEADLINE_NS (5ull * 1000 * 1000 * 1000)

/* Exit status when the native tier refuses the module for its frame limit. */
#define DIFF_EXIT_NATIVE_REFUSED 3

/* Where the transcript of the current run goes (see main). */
static FILE *out;

/* The tier asked for with --tier. */
static eng_tier_t tier = ENG_TIER_INTERP;

static void diff_print_val(eng_valtype_t t, eng_val_t v)
{
    switch (t) {
    case ENG_I32: fprintf(out, "i32:%08" PRIx32, v.i32); break;
    case ENG_I64: fprintf(out, "i64:%016" PRIx64, v.i64); break;
    case ENG_F32:
        if (isnan(v.f32)) fprintf(out, "f32:nan");
        else {
            uint32_t bits;
            memcpy(&bits, &v.f32, 4);
            fprintf(out, "f32:%08" PRIx32, bits);
        }
        break;
    case ENG_F64:
        if (isnan(v.f64)) fprintf(out, "f64:nan");
        else {
            uint64_t bits;
            memcpy(&bits, &v.f64, 8);
            fprintf(out, "f64:%016" PRIx64, bits);
        }
        break;
    case ENG_FUNCREF:
    case ENG_EXTERNREF: fprintf(out, "ref:%s", v.ref ? "nonnull" : "null"); break;
    default: fprintf(out, "type%02x:?", (unsigned)t); break;
    }
}

/* What both harnesses print when a v128 would cross the JS boundary (an
 * export or a log import with v128 in its signature), which V8 refuses
 * with a TypeError: JS has no v128 values. */
#define DIFF_V128_JS "v128 at the JS boundary"

static eng_valtype_t diff_type_of_letter(char c)
{
    switch (c) {
    case 'i': return ENG_I32;
    case 'I': return ENG_I64;
    case 'f': return ENG_F32;
    case 'F': return ENG_F64;
    case 'r': return ENG_EXTERNREF;
    case 'v': return ENG_V128;
    default: return ENG_FUNCREF;
    }
}

/* The fuzzing-support log-* functions, linked with the signature the module
 * declares (as a JS function would be): prints every parameter. env is the
 * signature string "(PARAMS)RESULTS"; results, if any, are zero. */
static eng_trap_t diff_host_log(eng_host_call_t *call, eng_val_t *args)
{
    const char *sig = call->env;
    /* JS cannot take a v128 (V8 throws a TypeError before the function
     * runs): log-v128 stops the call as diff_run.mjs reports it. */
    const char *close = strchr(sig, ')');
    if (close && memchr(sig, 'v', (size_t)(close - sig)))
        return eng_exec_trap_host(call->exec, "%s", DIFF_V128_JS);
    fprintf(out, "log");
    uint32_t i = 0;
    for (const char *p = sig + 1; *p && *p != ')'; p++, i++) {
        fprintf(out, " ");
        diff_print_val(diff_type_of_letter(*p), args[i]);
    }
    fprintf(out, "\n");
    const char *r = strchr(sig, ')');
    uint32_t nres = r ? (uint32_t)strlen(r + 1) : 0;
    for (uint32_t j = 0; j < nres; j++) memset(&args[j], 0, sizeof args[j]);
    return ENG_OK;
}

static uint8_t *diff_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void diff_call(eng_exec_t *x, eng_func_t *f)
{
    /* Argument arrays count slots (engine.h); exports with a v128 never
     * get here (run_exports), so slots and values are the same. */
    uint32_t np = eng_func_param_slots(f), nr = eng_func_result_slots(f);
    eng_val_t *args = calloc(np ? np : 1, sizeof *args);
    eng_val_t *res = calloc(nr ? nr : 1, sizeof *res);
    if (!args || !res) {
        fprintf(out, "error out of memory\n");
        exit(1);
    }
    eng_exec_set_deadline(x, eng_now_ns() + DIFF_CALL_DEADLINE_NS);
    eng_trap_t t = eng_call(x, f, args, res);
    fflush(out);
    switch (t) {
    case ENG_OK:
        fprintf(out, "result");
        for (uint32_t i = 0; i < nr; i++) {
            fprintf(out, " ");
            diff_print_val(eng_func_result_type(f, i), res[i]);
        }
        fprintf(out, "\n");
        break;
    case ENG_TRAP_STACK_EXHAUSTED: fprintf(out, "exhausted\n"); break;
    case ENG_TRAP_DEADLINE: fprintf(out, "timeout\n"); break;
    case ENG_TRAP_HOST:
    case ENG_TRAP_EXIT: fprintf(out, "error %s\n", eng_exec_trap_message(x)); break;
    default: fprintf(out, "trap\n"); break;
    }
    free(args);
    free(res);
}

/* Calls every exported function of inst in export order (as diff_run.mjs
 * does), each after hangLimitInitializer when there is one; returns the
 * transcript (malloc'd, NUL-terminated, *len bytes). */
static char *run_exports(eng_exec_t *x, const eng_module_t *m, eng_instance_t *inst, size_t *len)
{
    char *buf = NULL;
    out = open_memstream(&buf, len);
    if (!out) {
        fprintf(stderr, "diff_run: out of memory\n");
        exit(1);
    }
    eng_func_t *hang_init = eng_instance_func(inst, "hangLimitInitializer");
    uint32_t nexports = eng_module_export_count(m);
    for (uint32_t i = 0; i < nexports; i++) {
        eng_extern_desc_t d;
        eng_module_export(m, i, &d);
        if (d.kind != ENG_EXTERN_FUNC || strcmp(d.name, "hangLimitInitializer") == 0) continue;
        eng_func_t *f = eng_instance_func(inst, d.name);
        if (!f) {
            fprintf(out, "error export %s not found\n", d.name);
            continue;
        }
        /* Exports of the module's own functions must run in the tier
         * asked for (a re-exported import is a host function). */
        if (f->inst && (f->native != NULL) != (tier == ENG_TIER_NATIVE))
            fprintf(out, "wrong tier: export %s is %s\n", d.name, f->native ? "native" : "interpreted");
        if (hang_init && eng_func_param_count(hang_init) == 0) {
            eng_val_t none[4];
            eng_exec_set_deadline(x, eng_now_ns() + DIFF_CALL_DEADLINE_NS);
            if (eng_call(x, hang_init, none, none) != ENG_OK)
                fprintf(out, "error hangLimitInitializer trapped\n");
        }
        fprintf(out, "call %s\n", d.name);
        if (strchr(eng_func_signature(f), 'v')) {
            fprintf(out, "error %s\n", DIFF_V128_JS); /* as JS cannot call it */
            continue;
        }
        diff_call(x, f);
    }
    fclose(out);
    out = stdout;
    return buf;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    if (argc == 2) {
        path = argv[1];
    } else if (argc == 4 && strcmp(argv[1], "--tier") == 0 &&
               (strcmp(argv[2], "interp") == 0 || strcmp(argv[2], "native") == 0)) {
        tier = strcmp(argv[2], "native") == 0 ? ENG_TIER_NATIVE : ENG_TIER_INTERP;
        path = argv[3];
    } else {
        fprintf(stderr, "usage: diff_run [--tier interp|native] MODULE.wasm\n");
        return 2;
    }
    size_t len = 0;
    uint8_t *bytes = diff_read_file(path, &len);
    if (!bytes) {
        fprintf(stderr, "diff_run: cannot read %s\n", path);
        return 2;
    }
    out = stdout;
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(bytes, len, err, sizeof err);
    if (!m) {
        free(bytes);
        printf("invalid\n");
        fprintf(stderr, "diff_run: %s\n", err);
        return 0;
    }
    if (tier == ENG_TIER_NATIVE) {
        /* Once per module, before any instance: every instance (the
         * original and those from its image) then runs the same code. */
        uint8_t *obj = NULL;
        size_t objlen = 0;
        bool ok = eng_native_compile(bytes, len, &obj, &objlen, err, sizeof err) &&
                  eng_module_attach_native(m, obj, objlen, err, sizeof err);
        free(obj);
        /* engine.h has no error codes for this: the frame-limit refusal is
         * told apart by its text (native_compile.c). */
        if (!ok && strstr(err, "the native tier's limit")) {
            fprintf(stderr, "diff_run: %s\n", err);
            eng_module_free(m);
            free(bytes);
            return DIFF_EXIT_NATIVE_REFUSED;
        }
        if (ok && eng_module_tier(m) != ENG_TIER_NATIVE) {
            ok = false;
            snprintf(err, sizeof err, "attached, but the module's tier is not native");
        }
        if (!ok) {
            printf("native compile fail: %s\n", err);
            fprintf(stderr, "diff_run: %s\n", err);
            eng_module_free(m);
            free(bytes);
            return 0;
        }
    }
    free(bytes);
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    if (!s || !x) {
        fprintf(stderr, "diff_run: out of memory\n");
        return 1;
    }

    uint32_t nimports = eng_module_import_count(m);
    eng_extern_t *imports = calloc(nimports ? nimports : 1, sizeof *imports);
    if (!imports) return 1;
    for (uint32_t i = 0; i < nimports; i++) {
        eng_extern_desc_t d;
        eng_module_import(m, i, &d);
        if (d.kind != ENG_EXTERN_FUNC || strcmp(d.module, "fuzzing-support") != 0 ||
            strncmp(d.name, "log-", 4) != 0) {
            printf("unsupported import %s.%s\n", d.module, d.name);
            return 0;
        }
        imports[i].kind = ENG_EXTERN_FUNC;
        imports[i].u.func = eng_func_new_host(s, d.type, diff_host_log, (void *)d.type);
        if (!imports[i].u.func) return 1;
    }

    eng_exec_set_deadline(x, eng_now_ns() + DIFF_CALL_DEADLINE_NS);
    eng_instance_t *inst = eng_instance_new(s, m, imports, nimports, x, err, sizeof err);
    fflush(stdout);
    if (!inst) {
        printf("instantiate fail\n");
        fprintf(stderr, "diff_run: %s\n", err);
        return 0;
    }
    /* The state right after instantiation, for the image runs below (NULL
     * when the module's state cannot be imaged: then they are skipped). */
    eng_image_t *img = eng_image_new(inst, err, sizeof err);

    size_t t0_len = 0;
    char *t0 = run_exports(x, m, inst, &t0_len);
    fputs(t0, stdout);
    printf("done\n");
    if (img && !strstr(t0, "timeout\n")) {
        /* The same calls on two instances made from the image, one after
         * the other: the first maps a fresh slot, the second gets it back
         * warm (reset in place after the first one's writes). Both must say
         * exactly what the original instance said; a difference is printed
         * after "done", which V8's transcript never has. */
        static const char *const what[] = {"fresh slot", "warm slot"};
        for (int k = 0; k < 2; k++) {
            eng_store_t *s2 = eng_store_new();
            eng_extern_t *imp2 = calloc(nimports ? nimports : 1, sizeof *imp2);
            if (!s2 || !imp2) return 1;
            for (uint32_t i = 0; i < nimports; i++) {
                eng_extern_desc_t d;
                eng_module_import(m, i, &d);
                imp2[i].kind = ENG_EXTERN_FUNC;
                imp2[i].u.func = eng_func_new_host(s2, d.type, diff_host_log, (void *)d.type);
                if (!imp2[i].u.func) return 1;
            }
            eng_instance_t *i2 = eng_instance_from_image(s2, img, imp2, nimports, err, sizeof err);
            if (!i2) {
                printf("image instantiate fail (%s): %s\n", what[k], err);
            } else {
                size_t len = 0;
                char *t = run_exports(x, m, i2, &len);
                if (len != t0_len || memcmp(t, t0, len) != 0) {
                    printf("image mismatch (%s)\n", what[k]);
                    fprintf(stderr, "diff_run: from an image (%s) the transcript differs:\n%s", what[k], t);
                }
                free(t);
            }
            eng_store_free(s2);
            free(imp2);
        }
    }
    free(t0);
    eng_image_free(img);
    eng_store_free(s);
    eng_exec_free(x);
    eng_module_free(m);
    free(imports);
    return 0;
}
