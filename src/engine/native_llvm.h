/*
 * native_llvm.h — one compilation of a module to LLVM IR, shared by the
 * module-level driver (native_compile.c: types, helpers, trampolines,
 * optimisation, object code), the function-body translator (native_ir.c)
 * and the no-wrap marking (native_nowrap.c). Nothing else includes it.
 */
#ifndef WASMFN_ENGINE_NATIVE_LLVM_H
#define WASMFN_ENGINE_NATIVE_LLVM_H

#include "engine/native_abi.h"

#include <llvm-c/Core.h>

enum {
#define NC_HELPER_ENUM(name, sig) NC_##name,
    ENG_NATIVE_HELPERS(NC_HELPER_ENUM)
#undef NC_HELPER_ENUM
    NC_NHELPERS
};

typedef struct nc_module {
    const eng_module_t *m;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;        /* the translator's builder */
    LLVMBuilderRef ab;       /* for allocas, at the end of a function's entry block */

    LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f32, t_f64, t_ptr;
    LLVMTypeRef *fn_types;   /* [ntypes] the native type of each wasm function type */
    LLVMValueRef *funcs;     /* [ndefined] */
    LLVMValueRef helpers[NC_NHELPERS];
    LLVMTypeRef helper_types[NC_NHELPERS];

    /* Metadata kinds and nodes (as values, for LLVMSetMetadata). TBAA
     * separates what generated code touches into four kinds that never
     * alias, so that stores to linear memory do not make LLVM reload
     * globals, the fuel counter or the engine's structures. */
    unsigned k_tbaa, k_invariant, k_prof, k_pcsections;
    LLVMValueRef tbaa_mem, tbaa_global, tbaa_fuel, tbaa_vm;
    LLVMValueRef md_empty;        /* !{} for !invariant.load */
    LLVMValueRef md_unlikely;     /* branch weights: the true edge is rare */
    LLVMValueRef md_rsp;          /* !{!"rsp"} for llvm.read_register */

    bool guard;              /* guard mode: see internal.h, ENG_GUARD_RESERVE */

    char *err;
    size_t errlen;
} nc_module_t;

/* The two helpers below are static inline so that the function-body
 * translator uses them without depending on the driver, which calls it
 * (the files of src/engine/ form a DAG: scripts/cycles.sh). */

/* An intrinsic's declaration in nc's module for the overload types given
 * (e.g. "llvm.ctlz" with i32); *ty gets its function type. */
static inline LLVMValueRef nc_intrinsic(nc_module_t *nc, const char *name, LLVMTypeRef *types, unsigned n,
                                        LLVMTypeRef *ty)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    *ty = LLVMIntrinsicGetType(nc->ctx, id, types, n);
    return LLVMGetIntrinsicDeclaration(nc->mod, id, types, n);
}

/* The LLVM type of a wasm value type. */
static inline LLVMTypeRef nc_valtype(nc_module_t *nc, uint8_t t)
{
    switch (t) {
    case ENG_I32: return nc->t_i32;
    case ENG_I64: return nc->t_i64;
    case ENG_F32: return nc->t_f32;
    case ENG_F64: return nc->t_f64;
    case ENG_V128: return LLVMIntTypeInContext(nc->ctx, 128); /* as_vec() casts it to lanes */
    default: return nc->t_ptr; /* references */
    }
}

/* Translates the body of defined function `defined` (bytes after the size
 * prefix, at byte `offset` of the module) into nc->funcs[defined]. The
 * module was validated, but the bytes are still read with bounds checks;
 * false with a message in nc->err on anything unexpected. */
bool nc_function(nc_module_t *nc, uint32_t defined, const uint8_t *body, size_t len,
                 size_t offset);

/* Marks the 32-bit address additions of nc's functions that cannot wrap
 * (native_nowrap.c); run after SROA and EarlyCSE, before the optimiser. */
void nc_mark_no_wrap(nc_module_t *nc);

#endif
