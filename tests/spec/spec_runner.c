/*
 * spec_runner.c — runs the official WebAssembly core test suite against the
 * engine.
 *
 * Input is what `wast2json` makes of each .wast file of the suite
 * (mk/spec.mk does the conversion): DIR/NAME/NAME.json, a list of commands,
 * plus the .wasm files they name. Every command counts once as passed, failed
 * or skipped:
 *
 *   module / register / action      must load, instantiate, run without trap
 *   assert_return                   results compared bit-exactly (NaN classes
 *                                   as the spec defines them)
 *   assert_trap / assert_exhaustion must trap, with the trap the text names
 *   assert_invalid / assert_malformed (binary)   eng_module_new must fail
 *   assert_unlinkable / assert_uninstantiable    instantiation must fail
 *
 * Skipped: text-format modules (the engine reads binaries only). v128
 * values are compared lane by lane (NaN classes per lane). Imports resolve against instances registered earlier in the
 * script and the "spectest" host module the reference interpreter provides.
 *
 * Tiers: every script runs once per tier, in the interpreter and in native
 * code (each module compiled with eng_native_compile and attached before it
 * is instantiated; a valid module the native compiler refuses is a failure).
 * --tier interp|native|both picks (default both).
 *
 * Usage: spec-runner [--tier T] DIR [PATTERN...]. Patterns (fnmatch, e.g.
 * i32 or "memory_*") pick scripts; none means every script in DIR. Failures
 * are detailed (at most MAX_DETAIL lines per script), one summary line per
 * script and tier follows, then one line per tier, "spec: N passed, M
 * failed, K skipped (tier T)", and the last line is the total over the
 * tiers, "spec: N passed, M failed, K skipped". The exit status is 1 when
 * anything failed, 2 on a usage or setup error.
 */
#define _GNU_SOURCE /* memmem */
#include "engine/engine.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DETAIL 20           /* failure lines printed per script */
#define ACTION_DEADLINE_NS (5ull * 1000 * 1000 * 1000) /* a hang becomes a failure */
#define MAX_VALUES 1024         /* params or results of one call */

typedef struct counts {
    unsigned passed, failed, skipped;
} counts_t;

/* A name bound to an instance: a module's $name, or a `register`ed name.
 * inst is NULL when the module so named failed to load. */
typedef struct binding {
    char *name;
    eng_instance_t *inst;
} binding_t;

typedef struct binding_list {
    binding_t *v;
    size_t n, cap;
} binding_list_t;

/* One spectest export. */
typedef struct host_export {
    const char *name;
    eng_extern_t ext;
} host_export_t;

#define SPECTEST_COUNT 13

/* Everything one script needs. One store and one exec for the whole script,
 * as the reference interpreter has. */
typedef struct script {
    const char *name;          /* "i32" */
    char dir[4096];            /* DIR/NAME */
    eng_store_t *store;
    eng_exec_t *exec;
    host_export_t spectest[SPECTEST_COUNT];
    eng_module_t **mods;       /* every module loaded, freed after the store */
    size_t nmods, capmods;
    binding_list_t named;      /* module $names */
    binding_list_t registered; /* `register` names */
    eng_instance_t *current;   /* the most recent module; NULL if it failed */
    bool have_current;
    counts_t c;
    unsigned ndetail;
} script_t;

/* ---- small helpers ------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "spec-runner: out of memory\n");
        exit(2);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "spec-runner: out of memory\n");
        exit(2);
    }
    return d;
}

/* Copies s into out with non-printable bytes escaped (names.wast has export
 * names made of control characters and odd Unicode). */
static void escape_name(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 5 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
    }
    if (*s && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

static void binding_add(binding_list_t *l, const char *name, eng_instance_t *inst)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].name = xstrdup(name);
    l->v[l->n].inst = inst;
    l->n++;
}

/* The latest binding of name, or NULL if there is none. */
static binding_t *binding_find(binding_list_t *l, const char *name)
{
    for (size_t i = l->n; i-- > 0;)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

static void binding_list_free(binding_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Records a failure and prints its detail while the script's cap allows. */
static void fail(script_t *s, int line, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(script_t *s, int line, const char *type, const char *fmt, ...)
{
    s->c.failed++;
    if (s->ndetail++ >= MAX_DETAIL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("  %s.wast:%d: %s: %s\n", s->name, line, type, msg);
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool read_file(const char *path, uint8_t **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool ok = !ferror(f);
    fclose(f);
    if (!ok) {
        free(buf);
        return false;
    }
    *out = buf;
    *outlen = len;
    return true;
}

/* ---- the spectest host module -------------------------------------------- */

static eng_trap_t spectest_print(eng_host_call_t *call, eng_val_t *args)
{
    (void)call;
    (void)args;
    return ENG_OK;
}

static bool spectest_init(script_t *s)
{
    static const struct {
        const char *name, *sig;
    } prints[] = {
        {"print", "()"},           {"print_i32", "(i)"},      {"print_i64", "(I)"},
        {"print_f32", "(f)"},      {"print_f64", "(F)"},      {"print_i32_f32", "(if)"},
        {"print_f64_f64", "(FF)"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof prints / sizeof prints[0]; i++) {
        eng_func_t *f = eng_func_new_host(s->store, prints[i].sig, spectest_print, NULL);
        if (!f)
            return false;
        s->spectest[n++] = (host_export_t){prints[i].name, {.kind = ENG_EXTERN_FUNC, .u.func = f}};
    }
    eng_global_t *gi32 = eng_global_new(s->store, ENG_I32, false, (eng_val_t){.i32 = 666});
    eng_global_t *gi64 = eng_global_new(s->store, ENG_I64, false, (eng_val_t){.i64 = 666});
    eng_global_t *gf32 = eng_global_new(s->store, ENG_F32, false, (eng_val_t){.f32 = 666.6f});
    eng_global_t *gf64 = eng_global_new(s->store, ENG_F64, false, (eng_val_t){.f64 = 666.6});
    eng_table_t *table = eng_table_new(s->store, ENG_FUNCREF, 10, 20, NULL);
    eng_memory_t *memory = eng_memory_new(s->store, 1, 2);
    if (!gi32 || !gi64 || !gf32 || !gf64 || !table || !memory)
        return false;
    s->spectest[n++] = (host_export_t){"global_i32", {.kind = ENG_EXTERN_GLOBAL, .u.global = gi32}};
    s->spectest[n++] = (host_export_t){"global_i64", {.kind = ENG_EXTERN_GLOBAL, .u.global = gi64}};
    s->spectest[n++] = (host_export_t){"global_f32", {.kind = ENG_EXTERN_GLOBAL, .u.global = gf32}};
    s->spectest[n++] = (host_export_t){"global_f64", {.kind = ENG_EXTERN_GLOBAL, .u.global = gf64}};
    s->spectest[n++] = (host_export_t){"table", {.kind = ENG_EXTERN_TABLE, .u.table = table}};
    s->spectest[n++] = (host_export_t){"memory", {.kind = ENG_EXTERN_MEMORY, .u.memory = memory}};
    return n == SPECTEST_COUNT;
}

/* ---- modules --------------------------------------------------------------- */

static eng_tier_t tier; /* the tier scripts run in now */

/* Reads and compiles DIR/filename. Returns NULL with a message in err. */
static eng_module_t *module_load(script_t *s, const char *filename, char *err, size_t errlen)
{
    if (!filename) {
        snprintf(err, errlen, "command has no filename");
        return NULL;
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", s->dir, filename);
    uint8_t *bytes;
    size_t len;
    if (!read_file(path, &bytes, &len)) {
        snprintf(err, errlen, "cannot read %.300s: %s", path, strerror(errno));
        return NULL;
    }
    eng_module_t *m = eng_module_new(bytes, len, err, errlen);
    if (m && tier == ENG_TIER_NATIVE) {
        /* Compile to native code from the same bytes and attach it: the
         * module's instances then run natively. */
        uint8_t *obj;
        size_t objlen;
        bool ok = eng_native_compile(bytes, len, &obj, &objlen, err, errlen) &&
                  eng_module_attach_native(m, obj, objlen, err, errlen);
        if (ok)
            free(obj);
        if (!ok || eng_module_tier(m) != ENG_TIER_NATIVE) {
            eng_module_free(m);
            m = NULL;
            if (ok)
                snprintf(err, errlen, "native code attached but the module is not native");
        }
    }
    free(bytes);
    if (m) {
        if (s->nmods == s->capmods) {
            s->capmods = s->capmods ? s->capmods * 2 : 16;
            s->mods = xrealloc(s->mods, s->capmods * sizeof *s->mods);
        }
        s->mods[s->nmods++] = m;
    }
    return m;
}

/* Resolves m's imports against registered instances, then spectest, and
 * instantiates it. Kinds and types are not checked here: that is the
 * engine's job ("incompatible import type"). */
static eng_instance_t *module_instantiate(script_t *s, eng_module_t *m, char *err, size_t errlen)
{
    uint32_t n = eng_module_import_count(m);
    eng_extern_t *imports = calloc(n ? n : 1, sizeof *imports);
    if (!imports) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        eng_extern_desc_t d;
        eng_module_import(m, i, &d);
        bool found = false;
        binding_t *b = binding_find(&s->registered, d.module);
        if (b && b->inst) {
            found = eng_instance_export(b->inst, d.name, &imports[i]);
        } else if (!b && strcmp(d.module, "spectest") == 0) {
            for (size_t k = 0; k < SPECTEST_COUNT; k++) {
                if (strcmp(s->spectest[k].name, d.name) == 0) {
                    imports[i] = s->spectest[k].ext;
                    found = true;
                    break;
                }
            }
        }
        if (!found) {
            char mod[128], name[128];
            escape_name(d.module, mod, sizeof mod);
            escape_name(d.name, name, sizeof name);
            snprintf(err, errlen, "unknown import %s.%s", mod, name);
            free(imports);
            return NULL;
        }
    }
    eng_exec_set_deadline(s->exec, eng_now_ns() + ACTION_DEADLINE_NS);
    eng_instance_t *inst = eng_instance_new(s->store, m, imports, n, s->exec, err, errlen);
    free(imports);
    return inst;
}

/* ---- values ---------------------------------------------------------------- */

static bool valtype_parse(const char *name, eng_valtype_t *out)
{
    static const struct {
        const char *name;
        eng_valtype_t t;
    } types[] = {
        {"i32", ENG_I32},         {"i64", ENG_I64},
        {"f32", ENG_F32},         {"f64", ENG_F64},
        {"funcref", ENG_FUNCREF}, {"externref", ENG_EXTERNREF},
        {"v128", ENG_V128},
    };
    for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(name, types[i].name) == 0) {
            *out = types[i].t;
            return true;
        }
    }
    return false;
}

static const char *valtype_name(eng_valtype_t t)
{
    switch (t) {
    case ENG_I32: return "i32";
    case ENG_I64: return "i64";
    case ENG_F32: return "f32";
    case ENG_F64: return "f64";
    case ENG_V128: return "v128";
    case ENG_FUNCREF: return "funcref";
    case ENG_EXTERNREF: return "externref";
    }
    return "?";
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Lanes of a v128 as wast2json writes them: {"type": "v128", "lane_type":
 * "i32", "value": ["1", "2", "3", "4"]}. Lane bits are written into
 * bytes[]; *lane_bytes gets the lane width. A lane that is not a number
 * (a NaN pattern) makes it fail unless pattern_ok, when its bits are 0. */
static bool v128_lanes(const cJSON *v, uint8_t bytes[16], unsigned *lane_bytes, bool pattern_ok)
{
    const char *lt = json_str(v, "lane_type");
    unsigned w = !lt ? 0
                 : strcmp(lt, "i8") == 0 ? 1
                 : strcmp(lt, "i16") == 0 ? 2
                 : strcmp(lt, "i32") == 0 || strcmp(lt, "f32") == 0 ? 4
                 : strcmp(lt, "i64") == 0 || strcmp(lt, "f64") == 0 ? 8 : 0;
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(v, "value");
    if (!w || !cJSON_IsArray(vals) || cJSON_GetArraySize(vals) != (int)(16 / w))
        return false;
    *lane_bytes = w;
    memset(bytes, 0, 16);
    int i = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, vals) {
        uint64_t u;
        if (!cJSON_IsString(l))
            return false;
        if (!parse_u64(l->valuestring, &u)) {
            if (!pattern_ok || strncmp(l->valuestring, "nan:", 4) != 0)
                return false;
            u = 0;
        } else if (w < 8 && u >> (8 * w)) {
            return false;
        }
        for (unsigned k = 0; k < w; k++)
            bytes[i * w + k] = (uint8_t)(u >> (8 * k));
        i++;
    }
    return true;
}

/* An argument or expected value as wast2json writes it: {"type": "i32",
 * "value": "4294967295"}. Numbers are the unsigned decimal of the bits;
 * references are "null" or, for externref, a number N that we map to the
 * host pointer N+1 (so extern 0 is not the null reference). out has room
 * for two values: a v128 takes both (engine.h). */
static bool value_parse(const cJSON *v, eng_valtype_t *type, eng_val_t *out)
{
    if (!valtype_parse(json_str(v, "type"), type))
        return false;
    const char *s = json_str(v, "value");
    uint64_t u;
    memset(out, 0, 2 * sizeof *out);
    switch (*type) {
    case ENG_I32:
    case ENG_F32:
        if (!parse_u64(s, &u) || u > UINT32_MAX)
            return false;
        out->i32 = (uint32_t)u;
        return true;
    case ENG_I64:
    case ENG_F64:
        if (!parse_u64(s, &u))
            return false;
        out->i64 = u;
        return true;
    case ENG_FUNCREF:
    case ENG_EXTERNREF:
        if (s && strcmp(s, "null") == 0) {
            out->ref = NULL;
            return true;
        }
        if (*type == ENG_EXTERNREF && parse_u64(s, &u) && u < UINTPTR_MAX) {
            out->ref = (void *)(uintptr_t)(u + 1);
            return true;
        }
        return false;
    case ENG_V128: {
        uint8_t b[16];
        unsigned w;
        if (!v128_lanes(v, b, &w, false))
            return false;
        memcpy(out, b, 16);
        return true;
    }
    }
    return false;
}

static void value_format(eng_valtype_t t, const eng_val_t *vp, char *out, size_t outlen)
{
    eng_val_t v = vp[0];
    switch (t) {
    case ENG_V128: {
        uint8_t b[16];
        memcpy(b, vp, 16);
        size_t o = (size_t)snprintf(out, outlen, "v128:");
        for (int i = 0; i < 16 && o < outlen; i++)
            o += (size_t)snprintf(out + o, outlen - o, "%02x%s", b[i], i % 4 == 3 && i < 15 ? " " : "");
        break;
    }
    case ENG_I32:
        snprintf(out, outlen, "i32:0x%08" PRIx32 " (%" PRId32 ")", v.i32, (int32_t)v.i32);
        break;
    case ENG_I64:
        snprintf(out, outlen, "i64:0x%016" PRIx64 " (%" PRId64 ")", v.i64, (int64_t)v.i64);
        break;
    case ENG_F32:
        snprintf(out, outlen, "f32:0x%08" PRIx32 " (%.9g)", v.i32, (double)v.f32);
        break;
    case ENG_F64:
        snprintf(out, outlen, "f64:0x%016" PRIx64 " (%.17g)", v.i64, v.f64);
        break;
    case ENG_FUNCREF:
    case ENG_EXTERNREF:
        if (!v.ref)
            snprintf(out, outlen, "%s:null", valtype_name(t));
        else if (t == ENG_EXTERNREF)
            snprintf(out, outlen, "externref:%" PRIuPTR, (uintptr_t)v.ref - 1);
        else
            snprintf(out, outlen, "funcref:%p", v.ref);
        break;
    default:
        snprintf(out, outlen, "%s:?", valtype_name(t));
    }
}

static bool nan_match(bool canonical, unsigned w, uint64_t bits)
{
    if (w == 4) {
        uint32_t b = (uint32_t)bits & 0x7FFFFFFFu;
        return canonical ? b == 0x7FC00000u : (b & 0x7FC00000u) == 0x7FC00000u;
    }
    uint64_t b = bits & 0x7FFFFFFFFFFFFFFFull;
    return canonical ? b == 0x7FF8000000000000ull
                     : (b & 0x7FF8000000000000ull) == 0x7FF8000000000000ull;
}

/* A v128 result against its expected lanes, each a number or a NaN class. */
static bool v128_match(const cJSON *e, const eng_val_t *gotp, char *desc, size_t desclen)
{
    uint8_t want[16], got[16];
    unsigned w;
    memcpy(got, gotp, 16);
    if (!v128_lanes(e, want, &w, true)) {
        snprintf(desc, desclen, "unparsable v128 value");
        return false;
    }
    eng_val_t wv[2];
    memcpy(wv, want, 16);
    value_format(ENG_V128, wv, desc, desclen);
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(e, "value");
    int i = 0;
    const cJSON *l;
    bool ok = true;
    cJSON_ArrayForEach(l, vals) {
        uint64_t g = 0;
        for (unsigned k = 0; k < w; k++)
            g |= (uint64_t)got[i * w + k] << (8 * k);
        if (strncmp(l->valuestring, "nan:", 4) == 0) {
            if (w < 4 || !nan_match(l->valuestring[4] == 'c', w, g))
                ok = false;
            size_t o = strlen(desc);
            if (o < desclen)
                snprintf(desc + o, desclen - o, " lane %d %s", i, l->valuestring);
        } else if (memcmp(got + i * w, want + i * w, w) != 0) {
            ok = false;
        }
        i++;
    }
    return ok;
}

/* Does result (of type t) match one expected value? desc gets the expected
 * value in words for a failure message. got points at the result's slot
 * (two for a v128). */
static bool value_match(const cJSON *e, eng_valtype_t t, const eng_val_t *gotp, char *desc,
                        size_t desclen)
{
    const char *tname = json_str(e, "type");
    const char *s = json_str(e, "value");
    eng_val_t got = gotp[0];
    eng_valtype_t et;
    if (!valtype_parse(tname, &et)) {
        snprintf(desc, desclen, "unsupported type %s", tname ? tname : "(none)");
        return false;
    }
    if (et == ENG_V128) {
        if (t != ENG_V128) {
            snprintf(desc, desclen, "a v128");
            return false;
        }
        return v128_match(e, gotp, desc, desclen);
    }
    if (s && (strcmp(s, "nan:canonical") == 0 || strcmp(s, "nan:arithmetic") == 0)) {
        snprintf(desc, desclen, "%s:%s", tname, s);
        if (et != t)
            return false;
        bool canonical = s[4] == 'c';
        if (et == ENG_F32)
            return nan_match(canonical, 4, got.i32);
        if (et == ENG_F64)
            return nan_match(canonical, 8, got.i64);
        return false;
    }
    eng_val_t want[2];
    if (!value_parse(e, &et, want)) {
        snprintf(desc, desclen, "unparsable %s value %s", tname, s ? s : "(none)");
        return false;
    }
    value_format(et, want, desc, desclen);
    if (et != t)
        return false;
    switch (t) {
    case ENG_I32:
    case ENG_F32:
        return got.i32 == want[0].i32;
    case ENG_I64:
    case ENG_F64:
        return got.i64 == want[0].i64;
    case ENG_FUNCREF:
    case ENG_EXTERNREF:
        return got.ref == want[0].ref;
    default:
        return false;
    }
}

/* ---- actions --------------------------------------------------------------- */

typedef enum action_outcome {
    ACTION_DONE,   /* ran to the end; results are valid */
    ACTION_TRAP,   /* trapped; trap is set, msg holds the engine's message */
    ACTION_ERROR,  /* could not be run at all; msg says why */
} action_outcome_t;

typedef struct action_result {
    action_outcome_t outcome;
    eng_trap_t trap;
    uint32_t nresults;
    eng_valtype_t types[MAX_VALUES];
    eng_val_t values[2 * MAX_VALUES]; /* in slots: a v128 takes two */
    char what[256];  /* "f(i32:1, ...)" for messages */
    char msg[512];
} action_result_t;

/* The instance an action or register names: its "module" field, or the
 * most recent module. NULL with a message when there is none. */
static eng_instance_t *instance_for(script_t *s, const char *modname, char *msg, size_t msglen)
{
    if (modname) {
        binding_t *b = binding_find(&s->named, modname);
        if (!b) {
            snprintf(msg, msglen, "no module named %s", modname);
            return NULL;
        }
        if (!b->inst)
            snprintf(msg, msglen, "module %s failed to load", modname);
        return b->inst;
    }
    if (!s->have_current)
        snprintf(msg, msglen, "no module loaded yet");
    else if (!s->current)
        snprintf(msg, msglen, "the current module failed to load");
    return s->current;
}

static size_t name_unmask(const char *in, char *out, size_t cap);

static void action_run(script_t *s, const cJSON *action, action_result_t *r)
{
    memset(r, 0, offsetof(action_result_t, types));
    r->what[0] = r->msg[0] = 0;
    const char *type = json_str(action, "type");
    const char *field = json_str(action, "field");
    char fname[96];
    escape_name(field ? field : "", fname, sizeof fname);
    snprintf(r->what, sizeof r->what, "%s", fname);
    r->outcome = ACTION_ERROR;

    eng_instance_t *inst = instance_for(s, json_str(action, "module"), r->msg, sizeof r->msg);
    if (!inst)
        return;
    if (!type || !field) {
        snprintf(r->msg, sizeof r->msg, "action without type or field");
        return;
    }
    eng_extern_t ext;
    char raw[512];
    size_t raw_len = name_unmask(field, raw, sizeof raw);
    if (!eng_instance_export_n(inst, raw, raw_len, &ext)) {
        snprintf(r->msg, sizeof r->msg, "no export named \"%s\"", fname);
        return;
    }

    if (strcmp(type, "get") == 0) {
        if (ext.kind != ENG_EXTERN_GLOBAL) {
            snprintf(r->msg, sizeof r->msg, "export \"%s\" is not a global", fname);
            return;
        }
        r->nresults = 1;
        r->types[0] = eng_global_type(ext.u.global);
        r->values[0] = eng_global_get(ext.u.global);
        if (r->types[0] == ENG_V128) {
            uint8_t b[16];
            eng_global_get_v128(ext.u.global, b);
            memcpy(r->values, b, 16);
        }
        r->outcome = ACTION_DONE;
        return;
    }
    if (strcmp(type, "invoke") != 0) {
        snprintf(r->msg, sizeof r->msg, "unknown action type %s", type);
        return;
    }
    if (ext.kind != ENG_EXTERN_FUNC) {
        snprintf(r->msg, sizeof r->msg, "export \"%s\" is not a function", fname);
        return;
    }
    eng_func_t *f = ext.u.func;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(action, "args");
    int nargs = cJSON_GetArraySize(args);
    uint32_t nparams = eng_func_param_count(f);
    uint32_t nresults = eng_func_result_count(f);
    if (nparams > MAX_VALUES || nresults > MAX_VALUES) {
        snprintf(r->msg, sizeof r->msg, "%s has more than %d params or results", fname, MAX_VALUES);
        return;
    }
    if ((uint32_t)nargs != nparams) {
        snprintf(r->msg, sizeof r->msg, "%s takes %u arguments, the script gives %d", fname,
                 nparams, nargs);
        return;
    }
    eng_val_t argv[2 * MAX_VALUES];
    uint32_t slot = 0;
    size_t w = strlen(r->what);
    w += (size_t)snprintf(r->what + w, sizeof r->what - w, "(");
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, args) {
        eng_valtype_t t;
        if (!value_parse(a, &t, &argv[slot])) {
            const char *tn = json_str(a, "type"), *vs = json_str(a, "value");
            snprintf(r->msg, sizeof r->msg, "argument %d: unsupported value %s:%s", i,
                     tn ? tn : "?", vs ? vs : "?");
            return;
        }
        if (t != eng_func_param_type(f, (uint32_t)i)) {
            snprintf(r->msg, sizeof r->msg, "argument %d is %s, the function takes %s", i,
                     valtype_name(t), valtype_name(eng_func_param_type(f, (uint32_t)i)));
            return;
        }
        slot += t == ENG_V128 ? 2 : 1;
        if (w < sizeof r->what) {
            const char *vs = t == ENG_V128 ? "..." : json_str(a, "value");
            w += (size_t)snprintf(r->what + w, sizeof r->what - w, "%s%s:%s", i ? ", " : "",
                                  valtype_name(t), vs ? vs : "?");
        }
        i++;
    }
    if (w < sizeof r->what)
        snprintf(r->what + w, sizeof r->what - w, ")");

    eng_exec_set_deadline(s->exec, eng_now_ns() + ACTION_DEADLINE_NS);
    eng_trap_t trap = eng_call(s->exec, f, argv, r->values);
    if (trap != ENG_OK) {
        r->outcome = ACTION_TRAP;
        r->trap = trap;
        snprintf(r->msg, sizeof r->msg, "%s", eng_exec_trap_message(s->exec));
        return;
    }
    r->nresults = nresults;
    for (uint32_t k = 0; k < nresults; k++)
        r->types[k] = eng_func_result_type(f, k);
    r->outcome = ACTION_DONE;
}

/* The trap an assert_trap text stands for. Texts we do not know accept any
 * trap but the deadline. */
static bool trap_matches(const char *text, eng_trap_t t)
{
    static const struct {
        const char *prefix;
        eng_trap_t trap;
    } map[] = {
        {"unreachable", ENG_TRAP_UNREACHABLE},
        {"out of bounds memory access", ENG_TRAP_MEMORY_OOB},
        {"integer divide by zero", ENG_TRAP_DIV_ZERO},
        {"integer overflow", ENG_TRAP_INT_OVERFLOW},
        {"invalid conversion to integer", ENG_TRAP_INVALID_CONV},
        {"undefined element", ENG_TRAP_TABLE_OOB},
        {"out of bounds table access", ENG_TRAP_TABLE_OOB},
        {"uninitialized element", ENG_TRAP_NULL_REF},
        {"indirect call type mismatch", ENG_TRAP_INDIRECT_TYPE},
        {"call stack exhausted", ENG_TRAP_STACK_EXHAUSTED},
    };
    if (t == ENG_OK || t == ENG_TRAP_DEADLINE)
        return false;
    for (size_t i = 0; text && i < sizeof map / sizeof map[0]; i++)
        if (strncmp(text, map[i].prefix, strlen(map[i].prefix)) == 0)
            return t == map[i].trap;
    return true;
}

/* ---- commands -------------------------------------------------------------- */

/* Names may contain U+0000 (names.wast exports one), which wast2json writes
 * as \u0000 and cJSON would turn into a C string cut short. Before parsing,
 * each such escape is swapped for U+100000 (a private-use code point the
 * suite never uses, UTF-8 F4 80 80 80); name_unmask() swaps it back. */
static uint8_t *nul_mask(uint8_t *text, size_t *len)
{
    /* "\u0000" (6 bytes) becomes "\uDBC0\uDC00" (12 bytes): rewrite into a
     * larger buffer. */
    size_t n = 0;
    for (size_t i = 0; i + 6 <= *len; i++)
        if (memcmp(text + i, "\\u0000", 6) == 0 && (i == 0 || text[i - 1] != '\\'))
            n++;
    if (n == 0)
        return text;
    uint8_t *out = xrealloc(NULL, *len + 6 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < *len;) {
        if (i + 6 <= *len && memcmp(text + i, "\\u0000", 6) == 0 && (i == 0 || text[i - 1] != '\\')) {
            memcpy(out + o, "\\uDBC0\\uDC00", 12);
            o += 12;
            i += 6;
        } else {
            out[o++] = text[i++];
        }
    }
    free(text);
    *len = o;
    return out;
}

/* A name from the JSON as bytes: the mask undone. Returns its length. */
static size_t name_unmask(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 1 < cap;) {
        if ((uint8_t)in[i] == 0xF4 && (uint8_t)in[i + 1] == 0x80 && (uint8_t)in[i + 2] == 0x80 &&
            (uint8_t)in[i + 3] == 0x80) {
            out[o++] = 0;
            i += 4;
        } else {
            out[o++] = in[i++];
        }
    }
    out[o] = 0;
    return o;
}

static void cmd_module(script_t *s, const cJSON *cmd, int line)
{
    char err[ENG_ERR_MAX * 2];
    const char *name = json_str(cmd, "name");
    eng_instance_t *inst = NULL;
    eng_module_t *m = module_load(s, json_str(cmd, "filename"), err, sizeof err);
    if (m)
        inst = module_instantiate(s, m, err, sizeof err);
    s->current = inst;
    s->have_current = true;
    if (name)
        binding_add(&s->named, name, inst);
    if (inst) {
        s->c.passed++;
    } else {
        fail(s, line, "module", "%s %s: %s", m ? "instantiating" : "loading",
             json_str(cmd, "filename") ? json_str(cmd, "filename") : "?", err);
    }
}

static void cmd_register(script_t *s, const cJSON *cmd, int line)
{
    char msg[256];
    const char *as = json_str(cmd, "as");
    eng_instance_t *inst = instance_for(s, json_str(cmd, "name"), msg, sizeof msg);
    if (!as) {
        fail(s, line, "register", "no \"as\" name");
        return;
    }
    /* Registered even when NULL, so imports from it fail instead of
     * silently resolving against an older registration. */
    binding_add(&s->registered, as, inst);
    if (inst)
        s->c.passed++;
    else
        fail(s, line, "register", "as %s: %s", as, msg);
}

static void cmd_action(script_t *s, const cJSON *cmd, int line, const char *type)
{
    static action_result_t r; /* large; one at a time */
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(cmd, "action");
    action_run(s, action, &r);
    const char *text = json_str(cmd, "text");

    if (strcmp(type, "action") == 0) {
        if (r.outcome == ACTION_DONE)
            s->c.passed++;
        else
            fail(s, line, type, "%s: %s%s", r.what, r.outcome == ACTION_TRAP ? "trapped: " : "",
                 r.msg);
        return;
    }

    if (strcmp(type, "assert_trap") == 0 || strcmp(type, "assert_exhaustion") == 0) {
        bool exhaustion = type[7] == 'e';
        if (r.outcome == ACTION_TRAP &&
            (exhaustion ? r.trap == ENG_TRAP_STACK_EXHAUSTED : trap_matches(text, r.trap))) {
            s->c.passed++;
        } else if (r.outcome == ACTION_TRAP) {
            fail(s, line, type, "%s: expected trap \"%s\", got trap \"%s\" (%s)", r.what,
                 text ? text : "?", eng_trap_name(r.trap), r.msg);
        } else if (r.outcome == ACTION_DONE) {
            fail(s, line, type, "%s: expected trap \"%s\", returned normally", r.what,
                 text ? text : "?");
        } else {
            fail(s, line, type, "%s: %s", r.what, r.msg);
        }
        return;
    }

    /* assert_return */
    if (r.outcome != ACTION_DONE) {
        fail(s, line, type, "%s: %s%s", r.what, r.outcome == ACTION_TRAP ? "trapped: " : "", r.msg);
        return;
    }
    const cJSON *expected = cJSON_GetObjectItemCaseSensitive(cmd, "expected");
    int nexp = cJSON_GetArraySize(expected);
    if ((uint32_t)nexp != r.nresults) {
        fail(s, line, type, "%s: expected %d results, got %u", r.what, nexp, r.nresults);
        return;
    }
    int i = 0;
    uint32_t slot = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, expected) {
        char want[256], got[128];
        if (!value_match(e, r.types[i], &r.values[slot], want, sizeof want)) {
            value_format(r.types[i], &r.values[slot], got, sizeof got);
            fail(s, line, type, "%s: result %d: expected %s, got %s", r.what, i, want, got);
            return;
        }
        slot += r.types[i] == ENG_V128 ? 2 : 1;
        i++;
    }
    s->c.passed++;
}

/* assert_invalid, assert_malformed, assert_unlinkable, assert_uninstantiable. */
static void cmd_assert_module(script_t *s, const cJSON *cmd, int line, const char *type)
{
    const char *mtype = json_str(cmd, "module_type");
    const char *file = json_str(cmd, "filename");
    const char *text = json_str(cmd, "text");
    if (mtype && strcmp(mtype, "binary") != 0) {
        s->c.skipped++; /* text format: the engine reads binaries only */
        return;
    }
    char err[ENG_ERR_MAX * 2];
    eng_module_t *m = module_load(s, file, err, sizeof err);
    bool decode_must_fail = strcmp(type, "assert_invalid") == 0 || strcmp(type, "assert_malformed") == 0;
    if (decode_must_fail) {
        if (!m)
            s->c.passed++;
        else
            fail(s, line, type, "%s: expected \"%s\", but the module was accepted", file ? file : "?",
                 text ? text : "?");
        return;
    }
    if (!m) {
        fail(s, line, type, "%s: expected a valid module, got: %s", file ? file : "?", err);
        return;
    }
    eng_instance_t *inst = module_instantiate(s, m, err, sizeof err);
    if (inst) {
        fail(s, line, type, "%s: expected \"%s\", but instantiation succeeded", file ? file : "?",
             text ? text : "?");
        return;
    }
    /* For unlinkable modules the reason matters: both texts the suite uses
     * ("unknown import", "incompatible import type") are ones we promise. */
    if (strcmp(type, "assert_unlinkable") == 0 && text && !strstr(err, text)) {
        fail(s, line, type, "%s: expected \"%s\", got: %s", file ? file : "?", text, err);
        return;
    }
    s->c.passed++;
}

static void command_run(script_t *s, const cJSON *cmd)
{
    const char *type = json_str(cmd, "type");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(cmd, "line");
    int line = cJSON_IsNumber(l) ? l->valueint : 0;
    if (!type) {
        fail(s, line, "?", "command without a type");
    } else if (strcmp(type, "module") == 0) {
        cmd_module(s, cmd, line);
    } else if (strcmp(type, "register") == 0) {
        cmd_register(s, cmd, line);
    } else if (strcmp(type, "action") == 0 || strcmp(type, "assert_return") == 0 ||
               strcmp(type, "assert_trap") == 0 || strcmp(type, "assert_exhaustion") == 0) {
        cmd_action(s, cmd, line, type);
    } else if (strcmp(type, "assert_invalid") == 0 || strcmp(type, "assert_malformed") == 0 ||
               strcmp(type, "assert_unlinkable") == 0 ||
               strcmp(type, "assert_uninstantiable") == 0) {
        cmd_assert_module(s, cmd, line, type);
    } else {
        fail(s, line, type, "unknown command type");
    }
}

/* ---- scripts --------------------------------------------------------------- */

/* Runs DIR/NAME/NAME.json and adds its counts to total. */
static void script_run(const char *dir, const char *name, counts_t *total)
{
    script_t *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "spec-runner: out of memory\n");
        exit(2);
    }
    s->name = name;
    snprintf(s->dir, sizeof s->dir, "%s/%s", dir, name);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s.json", s->dir, name);

    uint8_t *text = NULL;
    size_t len = 0;
    cJSON *doc = NULL;
    if (read_file(path, &text, &len)) {
        text = nul_mask(text, &len);
        doc = cJSON_ParseWithLength((const char *)text, len);
        free(text);
    }
    const cJSON *cmds = doc ? cJSON_GetObjectItemCaseSensitive(doc, "commands") : NULL;
    if (!cJSON_IsArray(cmds)) {
        fail(s, 0, "script", "cannot read %s", path);
        goto done;
    }

    s->store = eng_store_new();
    s->exec = eng_exec_new(0);
    if (!s->store || !s->exec || !spectest_init(s)) {
        fail(s, 0, "script", "cannot set up a store, exec and the spectest module");
        goto done;
    }
    const cJSON *cmd;
    cJSON_ArrayForEach(cmd, cmds) command_run(s, cmd);

done:
    if (s->ndetail > MAX_DETAIL)
        printf("  %s.wast: ... %u more failures not shown\n", name, s->ndetail - MAX_DETAIL);
    printf("%s.wast (%s): %u passed, %u failed, %u skipped\n", name,
           tier == ENG_TIER_NATIVE ? "native" : "interp", s->c.passed, s->c.failed,
           s->c.skipped);
    fflush(stdout);
    total->passed += s->c.passed;
    total->failed += s->c.failed;
    total->skipped += s->c.skipped;
    if (s->exec)
        eng_exec_free(s->exec);
    if (s->store)
        eng_store_free(s->store);
    for (size_t i = 0; i < s->nmods; i++)
        eng_module_free(s->mods[i]);
    free(s->mods);
    binding_list_free(&s->named);
    binding_list_free(&s->registered);
    cJSON_Delete(doc);
    free(s);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    bool run_interp = true, run_native = true;
    if (argc >= 3 && strcmp(argv[1], "--tier") == 0) {
        run_interp = strcmp(argv[2], "interp") == 0 || strcmp(argv[2], "both") == 0;
        run_native = strcmp(argv[2], "native") == 0 || strcmp(argv[2], "both") == 0;
        if (!run_interp && !run_native) {
            fprintf(stderr, "spec-runner: --tier takes interp, native or both, not %s\n", argv[2]);
            return 2;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(stderr, "usage: %s [--tier interp|native|both] DIR [PATTERN...]\n"
                        "  runs DIR/NAME/NAME.json (from wast2json) for every NAME matching a\n"
                        "  PATTERN (fnmatch; none = all), in each tier (default both)\n", argv[0]);
        return 2;
    }
    if (run_native && !eng_native_can_compile()) {
        fprintf(stderr, "spec-runner: this build cannot compile native code\n");
        return 2;
    }
    const char *dir = argv[1];
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "spec-runner: cannot open %s: %s\n", dir, strerror(errno));
        return 2;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char json[8192];
        if (de->d_name[0] == '.')
            continue;
        snprintf(json, sizeof json, "%s/%s/%s.json", dir, de->d_name, de->d_name);
        FILE *f = fopen(json, "r");
        if (!f)
            continue; /* not a converted script (e.g. a scratch directory) */
        fclose(f);
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, name_cmp);

    int status = 0;
    bool *selected = calloc(n ? n : 1, sizeof *selected);
    if (!selected)
        return 2;
    for (int a = 2; a < argc; a++) {
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (fnmatch(argv[a], names[i], 0) == 0) {
                selected[i] = true;
                any = true;
            }
        }
        if (!any) {
            fprintf(stderr, "spec-runner: no script in %s matches %s\n", dir, argv[a]);
            status = 2;
        }
    }
    if (status)
        return status;

    counts_t total = {0}, per[2] = {{0}, {0}};
    size_t ran = 0;
    for (int t = 0; t < 2; t++) {
        if ((t == 0 && !run_interp) || (t == 1 && !run_native))
            continue;
        tier = t == 0 ? ENG_TIER_INTERP : ENG_TIER_NATIVE;
        for (size_t i = 0; i < n; i++) {
            if (argc > 2 && !selected[i])
                continue;
            script_run(dir, names[i], &per[t]);
            ran++;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(selected);
    if (ran == 0) {
        fprintf(stderr, "spec-runner: no scripts in %s\n", dir);
        return 2;
    }
    for (int t = 0; t < 2; t++) {
        if ((t == 0 && !run_interp) || (t == 1 && !run_native))
            continue;
        printf("spec: %u passed, %u failed, %u skipped (tier %s)\n", per[t].passed, per[t].failed,
               per[t].skipped, t == 0 ? "interp" : "native");
        total.passed += per[t].passed;
        total.failed += per[t].failed;
        total.skipped += per[t].skipped;
    }
    printf("spec: %u passed, %u failed, %u skipped\n", total.passed, total.failed, total.skipped);
    return total.failed ? 1 : 0;
}
