/*
 * native_compile.c — a module to x86-64 machine code through LLVM 19's C
 * API (eng_native_compile in engine.h).
 *
 * The module is decoded and validated by the engine as always; this file
 * then builds one LLVM module holding every defined function (native_ir.c
 * translates the bodies), a trampoline per function type for calls from
 * C, and three tables the loader looks up by name (native_abi.h). LLVM's
 * standard -O2 pipeline optimises it, for the CPU of this machine, and the
 * result is an ELF relocatable object in memory: position-independent,
 * with no references outside it but the helpers and a few libc functions
 * (native_load.c maps and links it with objload.c).
 *
 * Stack frames: no native frame may be larger than ENG_NATIVE_FRAME_MAX,
 * because the entry check compares the stack pointer after the frame is
 * allocated (native_abi.h). LLVM reports a frame over the
 * "warn-stack-size" attribute as a diagnostic; such a module is refused
 * with a message and stays on the interpreter. Real code's frames are a
 * few hundred bytes (its own stack lives in linear memory).
 *
 * Everything LLVM allocates belongs to one LLVMContext per compilation, so
 * compilations on different threads do not share state.
 */
#include "engine/native_llvm.h"
#include "engine/reader.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static bool llvm_ready;

static void llvm_init(void)
{
#if defined(__x86_64__)
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmPrinter();
    llvm_ready = true;
#endif
}

bool eng_native_can_compile(void)
{
    pthread_once(&llvm_once, llvm_init);
    return llvm_ready;
}

/* ---- Metadata ---- */

static LLVMMetadataRef md_str(nc_module_t *nc, const char *s)
{
    return LLVMMDStringInContext2(nc->ctx, s, strlen(s));
}

static LLVMMetadataRef md_int(LLVMTypeRef ty, uint64_t v)
{
    return LLVMValueAsMetadata(LLVMConstInt(ty, v, 0));
}

static LLVMValueRef tbaa_tag(nc_module_t *nc, LLVMMetadataRef root, const char *name)
{
    LLVMMetadataRef type[3] = {md_str(nc, name), root, md_int(nc->t_i64, 0)};
    LLVMMetadataRef t = LLVMMDNodeInContext2(nc->ctx, type, 3);
    LLVMMetadataRef tag[3] = {t, t, md_int(nc->t_i64, 0)};
    return LLVMMetadataAsValue(nc->ctx, LLVMMDNodeInContext2(nc->ctx, tag, 3));
}

static void setup_metadata(nc_module_t *nc)
{
    nc->k_tbaa = LLVMGetMDKindIDInContext(nc->ctx, "tbaa", 4);
    nc->k_invariant = LLVMGetMDKindIDInContext(nc->ctx, "invariant.load", 14);
    nc->k_prof = LLVMGetMDKindIDInContext(nc->ctx, "prof", 4);
    nc->k_pcsections = LLVMGetMDKindIDInContext(nc->ctx, "pcsections", 10);
    LLVMMetadataRef rootname = md_str(nc, "wasmfn tbaa");
    LLVMMetadataRef root = LLVMMDNodeInContext2(nc->ctx, &rootname, 1);
    nc->tbaa_mem = tbaa_tag(nc, root, "linear memory");
    nc->tbaa_global = tbaa_tag(nc, root, "global");
    nc->tbaa_fuel = tbaa_tag(nc, root, "fuel");
    nc->tbaa_vm = tbaa_tag(nc, root, "engine");
    nc->md_empty = LLVMMetadataAsValue(nc->ctx, LLVMMDNodeInContext2(nc->ctx, NULL, 0));
    LLVMMetadataRef w[3] = {md_str(nc, "branch_weights"), md_int(nc->t_i32, 1),
                            md_int(nc->t_i32, 100000)};
    nc->md_unlikely = LLVMMetadataAsValue(nc->ctx, LLVMMDNodeInContext2(nc->ctx, w, 3));
    LLVMMetadataRef rsp = md_str(nc, "rsp");
    nc->md_rsp = LLVMMetadataAsValue(nc->ctx, LLVMMDNodeInContext2(nc->ctx, &rsp, 1));
}

/* ---- Declarations ---- */

static void add_attr(nc_module_t *nc, LLVMValueRef fn, const char *name, uint64_t val)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(nc->ctx, kind, val));
}

static void add_str_attr(nc_module_t *nc, LLVMValueRef fn, const char *k, const char *v)
{
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(nc->ctx, k, strlen(k), v, strlen(v)));
}

static LLVMTypeRef sig_letter(nc_module_t *nc, char c)
{
    switch (c) {
    case 'i': return nc->t_i32;
    case 'I': return nc->t_i64;
    case 'p': return nc->t_ptr;
    default: return nc->t_void;
    }
}

static void declare_helpers(nc_module_t *nc)
{
    static const char *const names[NC_NHELPERS] = {
#define NC_HELPER_NAME(name, sig) #name,
        ENG_NATIVE_HELPERS(NC_HELPER_NAME)
#undef NC_HELPER_NAME
    };
    static const char *const sigs[NC_NHELPERS] = {
#define NC_HELPER_SIG(name, sig) sig,
        ENG_NATIVE_HELPERS(NC_HELPER_SIG)
#undef NC_HELPER_SIG
    };
    for (int h = 0; h < NC_NHELPERS; h++) {
        const char *s = sigs[h];
        LLVMTypeRef params[16];
        unsigned n = 0;
        for (const char *p = s + 2; *p && n < 16; p++)
            params[n++] = sig_letter(nc, *p);
        nc->helper_types[h] = LLVMFunctionType(sig_letter(nc, s[0]), params, n, 0);
        LLVMValueRef fn = LLVMAddFunction(nc->mod, names[h], nc->helper_types[h]);
        add_attr(nc, fn, "nounwind", 0);
        nc->helpers[h] = fn;
    }
    add_attr(nc, nc->helpers[NC_eng_nat_trap], "noreturn", 0);
    add_attr(nc, nc->helpers[NC_eng_nat_trap], "cold", 0);
    /* The poll touches nothing generated code can see (it returns the new
     * fuel rather than storing it), so LLVM may keep values in registers
     * across it. memory(inaccessiblemem: readwrite) is 3 << 2 in LLVM's
     * encoding of memory effects. */
    add_attr(nc, nc->helpers[NC_eng_nat_poll], "memory", 3u << 2);
}

/* (ptr inst, ptr x, i64 fuel, params...) -> i64 fuel, or {i64 fuel,
 * results...}: see native_abi.h. */
static LLVMTypeRef native_fn_type(nc_module_t *nc, const eng_functype_t *t)
{
    uint32_t n = t->nparams + 3;
    LLVMTypeRef *params = malloc(n * sizeof *params);
    LLVMTypeRef *rs = malloc((t->nresults + 1) * sizeof *rs);
    if (!params || !rs) {
        free(params);
        free(rs);
        return NULL;
    }
    params[0] = nc->t_ptr;
    params[1] = nc->t_ptr;
    params[2] = nc->t_i64;
    for (uint32_t i = 0; i < t->nparams; i++)
        params[i + 3] = nc_valtype(nc, eng_ft_param(t, i));
    rs[0] = nc->t_i64;
    for (uint32_t i = 0; i < t->nresults; i++)
        rs[i + 1] = nc_valtype(nc, eng_ft_result(t, i));
    LLVMTypeRef ret = t->nresults == 0 ? nc->t_i64
                                       : LLVMStructTypeInContext(nc->ctx, rs, t->nresults + 1, 0);
    LLVMTypeRef ft = LLVMFunctionType(ret, params, n, 0);
    free(params);
    free(rs);
    return ft;
}

/* void tramp(ptr fn, ptr inst, ptr x, ptr io): see native_abi.h. The fuel
 * goes in from x->fuel and comes back there. */
static LLVMValueRef make_trampoline(nc_module_t *nc, uint32_t ti)
{
    const eng_functype_t *t = &nc->m->types[ti];
    LLVMTypeRef p4[4] = {nc->t_ptr, nc->t_ptr, nc->t_ptr, nc->t_ptr};
    char name[32];
    snprintf(name, sizeof name, "t%u", ti);
    LLVMValueRef fn = LLVMAddFunction(nc->mod, name, LLVMFunctionType(nc->t_void, p4, 4, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_attr(nc, fn, "nounwind", 0);
    LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(nc->ctx, fn, "");
    LLVMPositionBuilderAtEnd(nc->b, bb);
    LLVMValueRef x = LLVMGetParam(fn, 2), io = LLVMGetParam(fn, 3);
    LLVMValueRef off = LLVMConstInt(nc->t_i64, offsetof(eng_exec_t, fuel), 0);
    LLVMValueRef fuel_ptr = LLVMBuildInBoundsGEP2(nc->b, nc->t_i8, x, &off, 1, "");
    uint32_t n = t->nparams + 3;
    LLVMValueRef *args = malloc(n * sizeof *args);
    if (!args)
        return NULL;
    args[0] = LLVMGetParam(fn, 1);
    args[1] = x;
    args[2] = LLVMBuildLoad2(nc->b, nc->t_i64, fuel_ptr, "");
    LLVMSetMetadata(args[2], nc->k_tbaa, nc->tbaa_fuel);
    /* io is in slots: a v128 takes two (engine.h). */
    for (uint32_t i = 0, slot = 0; i < t->nparams; slot += eng_type_slots(eng_ft_param(t, i)), i++) {
        LLVMValueRef o = LLVMConstInt(nc->t_i64, (uint64_t)slot * 8, 0);
        LLVMValueRef p = LLVMBuildInBoundsGEP2(nc->b, nc->t_i8, io, &o, 1, "");
        args[i + 3] = LLVMBuildLoad2(nc->b, nc_valtype(nc, eng_ft_param(t, i)), p, "");
        LLVMSetAlignment(args[i + 3], 8); /* slots are 8-aligned; a v128 (i128) is two */
    }
    LLVMValueRef r = LLVMBuildCall2(nc->b, nc->fn_types[ti], LLVMGetParam(fn, 0), args, n, "");
    LLVMValueRef fuel = t->nresults == 0 ? r : LLVMBuildExtractValue(nc->b, r, 0, "");
    LLVMSetMetadata(LLVMBuildStore(nc->b, fuel, fuel_ptr), nc->k_tbaa, nc->tbaa_fuel);
    for (uint32_t i = 0, slot = 0; i < t->nresults; slot += eng_type_slots(eng_ft_result(t, i)), i++) {
        LLVMValueRef v = LLVMBuildExtractValue(nc->b, r, i + 1, "");
        LLVMValueRef o = LLVMConstInt(nc->t_i64, (uint64_t)slot * 8, 0);
        LLVMSetAlignment(LLVMBuildStore(nc->b, v, LLVMBuildInBoundsGEP2(nc->b, nc->t_i8, io, &o, 1, "")), 8);
    }
    LLVMBuildRetVoid(nc->b);
    free(args);
    return fn;
}

static void add_table(nc_module_t *nc, const char *name, LLVMTypeRef elem, LLVMValueRef *vals,
                      uint32_t n)
{
    LLVMValueRef init = LLVMConstArray2(elem, vals, n);
    LLVMValueRef g = LLVMAddGlobal(nc->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
}

/* ---- Finding the bodies ---- */

/* The code section's bodies, by walking the sections of the (already
 * validated) module: each body's bytes after its size prefix. Checks that
 * they are where decoding found them, i.e. that bytes are m's. */
static bool find_bodies(const eng_module_t *m, const uint8_t *wasm, size_t len,
                        const uint8_t **bodies, size_t *lens, char *err, size_t errlen)
{
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    eng_reader_t r;
    rd_init(&r, wasm, len, 0);
    rd_bytes(&r, 8); /* magic and version */
    while (rd_ok(&r) && !rd_eof(&r)) {
        uint8_t id = rd_u8(&r);
        uint32_t size = rd_u32(&r);
        const uint8_t *sec = rd_bytes(&r, size);
        if (!rd_ok(&r))
            break;
        if (id != 10)
            continue;
        eng_reader_t c;
        rd_init(&c, sec, size, (size_t)(sec - wasm));
        uint32_t n = rd_u32(&c);
        if (n != ndefined)
            return eng_errf(err, errlen, "native: the bytes are not the module's (%u bodies)", n);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t blen = rd_u32(&c);
            size_t off = rd_offset(&c);
            bodies[i] = rd_bytes(&c, blen);
            lens[i] = blen;
            if (!rd_ok(&c) || off != m->code[i].body_offset)
                return eng_errf(err, errlen, "native: the bytes are not the module's (body %u)", i);
        }
        return true;
    }
    if (ndefined == 0)
        return true;
    return eng_errf(err, errlen, "native: the bytes are not the module's (no code section)");
}

/* ---- Driver ---- */

typedef struct diag_state {
    bool frame_too_big;
    bool error;
    char msg[200];
} diag_state_t;

static void on_diagnostic(LLVMDiagnosticInfoRef di, void *ud)
{
    diag_state_t *d = ud;
    char *desc = LLVMGetDiagInfoDescription(di);
    LLVMDiagnosticSeverity sev = LLVMGetDiagInfoSeverity(di);
    bool frame = desc && strstr(desc, "stack frame size");
    if ((frame || sev == LLVMDSError) && !d->error && !d->frame_too_big)
        snprintf(d->msg, sizeof d->msg, "%s", desc ? desc : "?");
    if (frame)
        d->frame_too_big = true;
    else if (sev == LLVMDSError)
        d->error = true;
    LLVMDisposeMessage(desc);
}

static LLVMTargetMachineRef host_machine(char *err, size_t errlen)
{
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        eng_errf(err, errlen, "native: no LLVM target for %s: %s", triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm =
        LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelDefault,
                                LLVMRelocPIC, LLVMCodeModelSmall);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    if (!tm)
        eng_errf(err, errlen, "native: cannot make an LLVM target machine");
    return tm;
}

/* One partition of the module's defined functions, [lo, hi), compiled on a
 * thread of its own into an object of its own. */
typedef struct part {
    const eng_module_t *m;
    const uint8_t **bodies;
    const size_t *lens;
    uint32_t lo, hi;
    bool tramps;               /* this one holds the trampolines */
    uint8_t *obj;
    size_t objlen;
    bool ok;
    char err[ENG_ERR_MAX];
} part_t;

/* Builds the partition's LLVM module into nc (its ctx, mod and builders
 * set). Functions of other partitions are not declared: calls to them go
 * through the instance's function objects (native_ir.c). */
static bool build_module(nc_module_t *nc, const part_t *p)
{
    const eng_module_t *m = nc->m;
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    nc->t_void = LLVMVoidTypeInContext(nc->ctx);
    nc->t_i1 = LLVMInt1TypeInContext(nc->ctx);
    nc->t_i8 = LLVMInt8TypeInContext(nc->ctx);
    nc->t_i16 = LLVMInt16TypeInContext(nc->ctx);
    nc->t_i32 = LLVMInt32TypeInContext(nc->ctx);
    nc->t_i64 = LLVMInt64TypeInContext(nc->ctx);
    nc->t_f32 = LLVMFloatTypeInContext(nc->ctx);
    nc->t_f64 = LLVMDoubleTypeInContext(nc->ctx);
    nc->t_ptr = LLVMPointerTypeInContext(nc->ctx, 0);
    setup_metadata(nc);
    declare_helpers(nc);

    nc->fn_types = calloc(m->ntypes + 1, sizeof *nc->fn_types);
    nc->funcs = calloc(ndefined + 1, sizeof *nc->funcs);
    if (!nc->fn_types || !nc->funcs)
        return eng_errf(nc->err, nc->errlen, "native: out of memory");
    for (uint32_t i = 0; i < m->ntypes; i++)
        if (!(nc->fn_types[i] = native_fn_type(nc, &m->types[i])))
            return eng_errf(nc->err, nc->errlen, "native: out of memory");

    char frame_max[16];
    snprintf(frame_max, sizeof frame_max, "%u", ENG_NATIVE_FRAME_MAX);
    for (uint32_t i = p->lo; i < p->hi; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%u", m->nfunc_imports + i);
        LLVMValueRef fn = LLVMAddFunction(nc->mod, name, nc->fn_types[m->func_type[m->nfunc_imports + i]]);
        LLVMSetLinkage(fn, LLVMInternalLinkage);
        add_attr(nc, fn, "nounwind", 0);
        add_str_attr(nc, fn, "warn-stack-size", frame_max);
        nc->funcs[i] = fn;
    }
    for (uint32_t i = p->lo; i < p->hi; i++)
        if (!nc_function(nc, i, p->bodies[i], p->lens[i], m->code[i].body_offset))
            return false;

    uint32_t ntramps = p->tramps ? m->ntypes : 0;
    LLVMValueRef *tramps = calloc(ntramps + 1, sizeof *tramps);
    if (!tramps)
        return eng_errf(nc->err, nc->errlen, "native: out of memory");
    for (uint32_t i = 0; i < ntramps; i++) {
        if (!(tramps[i] = make_trampoline(nc, i))) {
            free(tramps);
            return eng_errf(nc->err, nc->errlen, "native: out of memory");
        }
    }
    add_table(nc, ENG_NATIVE_SYM_FUNCS, nc->t_ptr, nc->funcs + p->lo, p->hi - p->lo);
    if (ntramps)
        add_table(nc, ENG_NATIVE_SYM_TRAMPS, nc->t_ptr, tramps, ntramps);
    free(tramps);
    LLVMValueRef meta[ENG_NATIVE_META_WORDS];
    meta[ENG_NATIVE_META_MAGIC] = LLVMConstInt(nc->t_i32, ENG_NATIVE_MAGIC, 0);
    meta[ENG_NATIVE_META_ABI] = LLVMConstInt(nc->t_i32, ENG_NATIVE_ABI, 0);
    meta[ENG_NATIVE_META_NFUNCS] = LLVMConstInt(nc->t_i32, m->nfuncs, 0);
    meta[ENG_NATIVE_META_NIMPORTS] = LLVMConstInt(nc->t_i32, m->nfunc_imports, 0);
    meta[ENG_NATIVE_META_NTYPES] = LLVMConstInt(nc->t_i32, m->ntypes, 0);
    meta[ENG_NATIVE_META_FIRST] = LLVMConstInt(nc->t_i32, p->lo, 0);
    meta[ENG_NATIVE_META_COUNT] = LLVMConstInt(nc->t_i32, p->hi - p->lo, 0);
    meta[ENG_NATIVE_META_TRAMPS] = LLVMConstInt(nc->t_i32, p->tramps ? 1 : 0, 0);
    meta[ENG_NATIVE_META_GUARD] = LLVMConstInt(nc->t_i32, nc->guard, 0);
    for (int i = 0; i < 8; i++) {
        uint32_t w;
        memcpy(&w, m->sha256 + 4 * i, 4);
        meta[ENG_NATIVE_META_SHA256 + i] = LLVMConstInt(nc->t_i32, w, 0);
    }
    add_table(nc, ENG_NATIVE_SYM_META, nc->t_i32, meta, ENG_NATIVE_META_WORDS);
    return true;
}

/* Compiles one partition to an object (a thread's whole job: one LLVM
 * context, module and target machine of its own). */
static void *compile_part(void *arg)
{
    part_t *p = arg;
    char *err = p->err;
    size_t errlen = sizeof p->err;
    /* Guard mode when the module defines its memory (an imported one may
     * live anywhere: checked explicitly). */
    nc_module_t nc = {.m = p->m, .err = err, .errlen = errlen,
                      .guard = p->m->nmems > 0 && p->m->nmem_imports == 0};
    diag_state_t diag = {0};
    LLVMTargetMachineRef tm = host_machine(err, errlen);
    if (!tm)
        return NULL;
    nc.ctx = LLVMContextCreate();
    LLVMContextSetDiagnosticHandler(nc.ctx, on_diagnostic, &diag);
    nc.mod = LLVMModuleCreateWithNameInContext("wasm", nc.ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(nc.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(nc.mod, layout);
    LLVMDisposeTargetData(layout);
    nc.b = LLVMCreateBuilderInContext(nc.ctx);
    nc.ab = LLVMCreateBuilderInContext(nc.ctx);
    if (!build_module(&nc, p))
        goto done;

    char *msg = NULL;
    if (LLVMVerifyModule(nc.mod, LLVMReturnStatusAction, &msg)) {
        char *nl = msg ? strchr(msg, '\n') : NULL;
        if (nl)
            *nl = '\0';
        eng_errf(err, errlen, "native: internal error: invalid IR: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        goto done;
    }
    LLVMDisposeMessage(msg);

    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
    /* Locals into SSA values first, so that nc_mark_no_wrap sees one value
     * where wasm reads a local twice; then the optimiser; then the same
     * rewrite again, for the copies of a loop's body that unrolling made:
     * their addresses are the first copy's plus a constant (matmul's row,
     * a[k + 2] after a[k]), which the code generator then folds into the
     * accesses (docs/engine.md, "Address arithmetic"). */
    LLVMErrorRef perr = LLVMRunPasses(nc.mod, "function(sroa,early-cse)", tm, opts);
    if (!perr) {
        nc_mark_no_wrap(&nc);
        perr = LLVMRunPasses(nc.mod, "default<O2>", tm, opts);
    }
    if (!perr)
        nc_mark_no_wrap(&nc);
    LLVMDisposePassBuilderOptions(opts);
    if (perr) {
        char *pm = LLVMGetErrorMessage(perr);
        eng_errf(err, errlen, "native: LLVM passes failed: %s", pm);
        LLVMDisposeErrorMessage(pm);
        goto done;
    }

    LLVMMemoryBufferRef buf = NULL;
    msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, nc.mod, LLVMObjectFile, &msg, &buf)) {
        eng_errf(err, errlen, "native: code generation failed: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        goto done;
    }
    if (diag.frame_too_big || diag.error) {
        eng_errf(err, errlen, "native: %s%s", diag.msg,
                 diag.frame_too_big ? " (the native tier's limit; the module stays interpreted)" : "");
        LLVMDisposeMemoryBuffer(buf);
        goto done;
    }
    bool packed = eng_obj_pack_pcs((const uint8_t *)LLVMGetBufferStart(buf), LLVMGetBufferSize(buf),
                                   &p->obj, &p->objlen, err, errlen);
    LLVMDisposeMemoryBuffer(buf);
    if (!packed)
        goto done;
    p->ok = true;

done:
    if (nc.b)
        LLVMDisposeBuilder(nc.b);
    if (nc.ab)
        LLVMDisposeBuilder(nc.ab);
    if (nc.mod)
        LLVMDisposeModule(nc.mod);
    if (nc.ctx)
        LLVMContextDispose(nc.ctx);
    LLVMDisposeTargetMachine(tm);
    free(nc.fn_types);
    free(nc.funcs);
    return NULL;
}

/* Below this much code one thread compiles it all: splitting a small module
 * costs calls between the parts (never inlined) for no time saved. */
#define PARALLEL_MIN_BYTES (64u << 10)
#define MAX_PARTS 8

/* How many parts, and where they start: contiguous ranges of about equal
 * code size (toolchains lay out related functions together, so most calls
 * stay inside a part). */
static uint32_t plan_parts(const size_t *lens, uint32_t ndefined, part_t *parts)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < ndefined; i++)
        total += lens[i];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t n = total < PARALLEL_MIN_BYTES || cpus < 2 ? 1 : (uint32_t)(cpus < MAX_PARTS ? cpus : MAX_PARTS);
    if (n > ndefined)
        n = ndefined ? ndefined : 1;
    uint32_t i = 0;
    uint64_t done = 0;
    for (uint32_t k = 0; k < n; k++) {
        parts[k].lo = i;
        uint64_t goal = total * (k + 1) / n;
        while (i < ndefined && (k == n - 1 || done + lens[i] / 2 < goal || i == parts[k].lo))
            done += lens[i++];
        parts[k].hi = i;
    }
    return n;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

bool eng_native_compile(const uint8_t *wasm, size_t len, uint8_t **out, size_t *outlen, char *err,
                        size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (!eng_native_can_compile())
        return eng_errf(err, errlen, "native: this build cannot compile native code for this CPU");
    eng_module_t *m = eng_module_new(wasm, len, err, errlen);
    if (!m)
        return false;
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    const uint8_t **bodies = calloc(ndefined + 1, sizeof *bodies);
    size_t *lens = calloc(ndefined + 1, sizeof *lens);
    part_t parts[MAX_PARTS];
    memset(parts, 0, sizeof parts);
    uint32_t n = 0;
    bool ok = false;
    if (!bodies || !lens) {
        eng_errf(err, errlen, "native: out of memory");
        goto done;
    }
    if (!find_bodies(m, wasm, len, bodies, lens, err, errlen))
        goto done;
    n = plan_parts(lens, ndefined, parts);
    pthread_t tids[MAX_PARTS];
    bool started[MAX_PARTS] = {false};
    for (uint32_t k = 0; k < n; k++) {
        parts[k].m = m;
        parts[k].bodies = bodies;
        parts[k].lens = lens;
        parts[k].tramps = k == 0;
        if (k > 0 && pthread_create(&tids[k], NULL, compile_part, &parts[k]) == 0)
            started[k] = true;
    }
    compile_part(&parts[0]);
    for (uint32_t k = 1; k < n; k++) {
        if (started[k])
            pthread_join(tids[k], NULL);
        else
            compile_part(&parts[k]); /* no thread: do it here */
    }
    /* The pack: "WFNOBJS\0", u32 count, then per object u64 length and bytes. */
    size_t total = ENG_NATIVE_PACK_HEADER;
    for (uint32_t k = 0; k < n; k++) {
        if (!parts[k].ok) {
            eng_errf(err, errlen, "%s", parts[k].err);
            goto done;
        }
        total += 8 + parts[k].objlen;
    }
    uint8_t *pack = malloc(total);
    if (!pack) {
        eng_errf(err, errlen, "native: out of memory");
        goto done;
    }
    memcpy(pack, ENG_NATIVE_PACK_MAGIC, 8);
    put_u32(pack + 8, n);
    size_t at = ENG_NATIVE_PACK_HEADER;
    for (uint32_t k = 0; k < n; k++) {
        put_u64(pack + at, parts[k].objlen);
        memcpy(pack + at + 8, parts[k].obj, parts[k].objlen);
        at += 8 + parts[k].objlen;
    }
    *out = pack;
    *outlen = total;
    ok = true;

done:
    for (uint32_t k = 0; k < n; k++)
        free(parts[k].obj);
    free(bodies);
    free(lens);
    eng_module_free(m);
    return ok;
}
