/*
 * ops.h — the internal instruction set shared by compile.c and interp.c.
 *
 * Internal code is an array of 64-bit words. An instruction is a handler
 * address followed by operand words; operands are frame slot numbers
 * (a slot is one 64-bit eng_val_t: params, then locals, then the operand
 * stack, all at fixed positions computed by the compiler), immediates and
 * branch offsets. Two 32-bit operands share a word: LO is bits 0..31, HI is
 * bits 32..63. Branch offsets are signed word counts relative to the start
 * of the branching instruction. The layouts (word 1, word 2, ...):
 *
 *   U   unary          [d|a]               d = op a
 *   B   binary         [d|a] [b]           d = a op b
 *   BI  binary imm     [d|a] [imm]         d = a op imm
 *   L   load           [d|a] [offset]
 *   S   store          [a|v] [offset]
 *   BR  compare+branch [d|a] [b] [rel]     branch when a op b (d unused)
 *   BRI compare+branch [d|a] [imm] [rel]
 *
 * SIMD (v_*): a v128 lives in two consecutive slots (the named one holds
 * bytes 0..7). Every v_* op carries the instruction's own 0xFD sub-opcode
 * (`sub`, the spec's number) and, where it has one, a lane index packed
 * above it (`sl` = sub | lane << 8); simd.c does the lane arithmetic:
 *   v_const      [d|-] [lo] [hi]
 *   v_load       [d|a] [offset] [sub]        every load but the lane ones
 *   v_store      [a|v] [offset]
 *   v_load_lane  [d|a] [v|sl] [offset]       d = v with one lane loaded
 *   v_store_lane [a|v] [sl|-] [offset]
 *   v_splat      [d|a] [sub]                 scalar a to every lane
 *   v_extract    [d|a] [sl]                  d scalar
 *   v_replace    [d|a] [b|sl]                b scalar
 *   v_shift      [d|a] [b|sub]               b the i32 shift count
 *   v_un, v_test [d|a] [sub]                 v_test: d is an i32
 *   v_bin        [d|a] [b|sub]
 *   v_bitselect  [d|a] [b|c]
 *   v_shuffle    [d|a] [b|-] [lanes 0..7] [lanes 8..15]
 *
 * Every producing instruction keeps its destination in the LO half of
 * word 1 so the compiler can retarget it (see compile.c).
 */
#ifndef WASMFN_ENGINE_OPS_H
#define WASMFN_ENGINE_OPS_H

/* X(name) for every internal instruction. */
#define ENG_OPS(X)                                                                        \
    /* control */                                                                         \
    X(unreachable) X(exit) X(br) X(br_if) X(br_unless) X(br_table) X(ret) X(ret1)        \
    X(call) X(call_indirect) X(copy) X(const32) X(const64) X(select) X(global_get)        \
    X(global_set)                                                                         \
    /* memory */                                                                          \
    X(ld8s) X(ld8u) X(ld16s) X(ld16u) X(ld32s) X(ld32u) X(ld64)                           \
    X(st8) X(st16) X(st32) X(st64)                                                        \
    X(mem_size) X(mem_grow) X(mem_fill) X(mem_copy) X(mem_init) X(data_drop)              \
    /* tables and references */                                                           \
    X(tbl_get) X(tbl_set) X(tbl_size) X(tbl_grow) X(tbl_fill) X(tbl_copy) X(tbl_init)     \
    X(elem_drop) X(ref_func) X(ref_is_null)                                               \
    /* i32 */                                                                             \
    X(eqz32) X(eq32) X(ne32) X(lts32) X(ltu32) X(gts32) X(gtu32) X(les32) X(leu32)        \
    X(ges32) X(geu32) X(clz32) X(ctz32) X(popcnt32) X(add32) X(sub32) X(mul32) X(divs32)  \
    X(divu32) X(rems32) X(remu32) X(and32) X(or32) X(xor32) X(shl32) X(shrs32) X(shru32)  \
    X(rotl32) X(rotr32)                                                                   \
    /* i64 */                                                                             \
    X(eqz64) X(eq64) X(ne64) X(lts64) X(ltu64) X(gts64) X(gtu64) X(les64) X(leu64)        \
    X(ges64) X(geu64) X(clz64) X(ctz64) X(popcnt64) X(add64) X(sub64) X(mul64) X(divs64)  \
    X(divu64) X(rems64) X(remu64) X(and64) X(or64) X(xor64) X(shl64) X(shrs64) X(shru64)  \
    X(rotl64) X(rotr64)                                                                   \
    /* f32 */                                                                             \
    X(eqf32) X(nef32) X(ltf32) X(gtf32) X(lef32) X(gef32) X(absf32) X(negf32) X(ceilf32)  \
    X(floorf32) X(truncf32) X(nearestf32) X(sqrtf32) X(addf32) X(subf32) X(mulf32)        \
    X(divf32) X(minf32) X(maxf32) X(copysignf32)                                          \
    /* f64 */                                                                             \
    X(eqf64) X(nef64) X(ltf64) X(gtf64) X(lef64) X(gef64) X(absf64) X(negf64) X(ceilf64)  \
    X(floorf64) X(truncf64) X(nearestf64) X(sqrtf64) X(addf64) X(subf64) X(mulf64)        \
    X(divf64) X(minf64) X(maxf64) X(copysignf64)                                          \
    /* conversions */                                                                     \
    X(i32_trunc_f32_s) X(i32_trunc_f32_u) X(i32_trunc_f64_s) X(i32_trunc_f64_u)           \
    X(i64_extend_i32_s) X(i64_extend_i32_u) X(i64_trunc_f32_s) X(i64_trunc_f32_u)         \
    X(i64_trunc_f64_s) X(i64_trunc_f64_u) X(f32_convert_i32_s) X(f32_convert_i32_u)       \
    X(f32_convert_i64_s) X(f32_convert_i64_u) X(f32_demote_f64) X(f64_convert_i32_s)      \
    X(f64_convert_i32_u) X(f64_convert_i64_s) X(f64_convert_i64_u) X(f64_promote_f32)     \
    X(i32_extend8_s) X(i32_extend16_s) X(i64_extend8_s) X(i64_extend16_s)                 \
    X(i32_trunc_sat_f32_s) X(i32_trunc_sat_f32_u) X(i32_trunc_sat_f64_s)                  \
    X(i32_trunc_sat_f64_u) X(i64_trunc_sat_f32_s) X(i64_trunc_sat_f32_u)                  \
    X(i64_trunc_sat_f64_s) X(i64_trunc_sat_f64_u)                                         \
    /* binary with an immediate right operand (layout BI) */                              \
    X(add32i) X(sub32i) X(mul32i) X(and32i) X(or32i) X(xor32i) X(shl32i) X(shrs32i)       \
    X(shru32i) X(eq32i) X(ne32i) X(lts32i) X(ltu32i) X(gts32i) X(gtu32i) X(les32i)        \
    X(leu32i) X(ges32i) X(geu32i) X(add64i) X(sub64i) X(and64i) X(or64i) X(xor64i)        \
    X(shl64i) X(shrs64i) X(shru64i)                                                       \
    /* fused compare and branch-if-true (layouts BR, BRI) */                              \
    X(br_eqz32) X(br_eq32) X(br_ne32) X(br_lts32) X(br_ltu32) X(br_gts32) X(br_gtu32)     \
    X(br_les32) X(br_leu32) X(br_ges32) X(br_geu32) X(br_eq32i) X(br_ne32i) X(br_lts32i)  \
    X(br_ltu32i) X(br_gts32i) X(br_gtu32i) X(br_les32i) X(br_leu32i) X(br_ges32i)         \
    X(br_geu32i)                                                                          \
    /* v128 (two slots each) */                                                           \
    X(select128) X(global_get128) X(global_set128) X(v_const) X(v_load) X(v_store)        \
    X(v_load_lane) X(v_store_lane) X(v_splat) X(v_extract) X(v_replace) X(v_shift)        \
    X(v_un) X(v_test) X(v_bin) X(v_bitselect) X(v_shuffle)

enum eng_op {
#define ENG_OP_ENUM(n) OP_##n,
    ENG_OPS(ENG_OP_ENUM)
#undef ENG_OP_ENUM
    OP_COUNT
};

/* The handler address of every op (interp.c). */
const void *const *eng_interp_handlers(void);

/* Operand shapes, for the serialiser (serialize.c), which must find every
 * instruction boundary and check every operand of code it did not compile.
 * S(name, shape) for every op the compiler emits (OP_exit is only ever in
 * the interpreter's exit stub). A shape is two characters per operand word,
 * in order; a word is either two 32-bit halves (LO char, HI char) or, when
 * the second char is '_', one 64-bit value:
 *   halves:  s slot   a call's argument slot (<= frame size)   i any
 *            - unused f function   t type   T table   F funcref table
 *            g global   G mutable global   d data segment   e element
 *            segment   n br_table label count (n + 1 'R_' words follow)
 *            v v128 slot pair (it and the next slot are in the frame)
 *   words:   S_ slot   I_ any   O_ memory offset (32 bits)   R_ branch
 *            offset   T_ table   D_ data segment   E_ element segment
 * The instruction's length is 1 + strlen(shape) / 2 words (br_table adds
 * its labels). A new op needs a line here: serialize.c refuses to run (and
 * tests/engine/test_serialize.c fails) while any op lacks one, and a length
 * that disagrees with interp.c's `pc +=` makes the serialiser's walk miss
 * an instruction start, which it reports. */
#define ENG_OP_SHAPES(S)                                                                          \
    S(unreachable, "") S(br, "R_") S(br_if, "S_R_") S(br_unless, "S_R_") S(br_table, "sn")    \
    S(ret, "") S(ret1, "S_") S(call, "fa") S(call_indirect, "taFs") S(copy, "ss")             \
    S(const32, "si") S(const64, "S_I_") S(select, "ssss") S(global_get, "sg")                 \
    S(global_set, "Gs") S(ld8s, "ssO_") S(ld8u, "ssO_") S(ld16s, "ssO_") S(ld16u, "ssO_")     \
    S(ld32s, "ssO_") S(ld32u, "ssO_") S(ld64, "ssO_") S(st8, "ssO_") S(st16, "ssO_")          \
    S(st32, "ssO_") S(st64, "ssO_") S(mem_size, "S_") S(mem_grow, "ss") S(mem_fill, "ssS_")   \
    S(mem_copy, "ssS_") S(mem_init, "sssd") S(data_drop, "D_") S(tbl_get, "ssT_")             \
    S(tbl_set, "ssT_") S(tbl_size, "sT") S(tbl_grow, "sssT") S(tbl_fill, "sssT")              \
    S(tbl_copy, "ssS_TT") S(tbl_init, "ssseT_") S(elem_drop, "E_") S(ref_func, "sf")          \
    S(ref_is_null, "ss") S(eqz32, "ss") S(eq32, "ssS_") S(ne32, "ssS_") S(lts32, "ssS_")      \
    S(ltu32, "ssS_") S(gts32, "ssS_") S(gtu32, "ssS_") S(les32, "ssS_") S(leu32, "ssS_")      \
    S(ges32, "ssS_") S(geu32, "ssS_") S(clz32, "ss") S(ctz32, "ss") S(popcnt32, "ss")         \
    S(add32, "ssS_") S(sub32, "ssS_") S(mul32, "ssS_") S(divs32, "ssS_") S(divu32, "ssS_")    \
    S(rems32, "ssS_") S(remu32, "ssS_") S(and32, "ssS_") S(or32, "ssS_") S(xor32, "ssS_")     \
    S(shl32, "ssS_") S(shrs32, "ssS_") S(shru32, "ssS_") S(rotl32, "ssS_") S(rotr32, "ssS_")  \
    S(eqz64, "ss") S(eq64, "ssS_") S(ne64, "ssS_") S(lts64, "ssS_") S(ltu64, "ssS_")          \
    S(gts64, "ssS_") S(gtu64, "ssS_") S(les64, "ssS_") S(leu64, "ssS_") S(ges64, "ssS_")      \
    S(geu64, "ssS_") S(clz64, "ss") S(ctz64, "ss") S(popcnt64, "ss") S(add64, "ssS_")         \
    S(sub64, "ssS_") S(mul64, "ssS_") S(divs64, "ssS_") S(divu64, "ssS_") S(rems64, "ssS_")   \
    S(remu64, "ssS_") S(and64, "ssS_") S(or64, "ssS_") S(xor64, "ssS_") S(shl64, "ssS_")      \
    S(shrs64, "ssS_") S(shru64, "ssS_") S(rotl64, "ssS_") S(rotr64, "ssS_") S(eqf32, "ssS_")  \
    S(nef32, "ssS_") S(ltf32, "ssS_") S(gtf32, "ssS_") S(lef32, "ssS_") S(gef32, "ssS_")      \
    S(absf32, "ss") S(negf32, "ss") S(ceilf32, "ss") S(floorf32, "ss") S(truncf32, "ss")      \
    S(nearestf32, "ss") S(sqrtf32, "ss") S(addf32, "ssS_") S(subf32, "ssS_")                  \
    S(mulf32, "ssS_") S(divf32, "ssS_") S(minf32, "ssS_") S(maxf32, "ssS_")                   \
    S(copysignf32, "ssS_") S(eqf64, "ssS_") S(nef64, "ssS_") S(ltf64, "ssS_")                 \
    S(gtf64, "ssS_") S(lef64, "ssS_") S(gef64, "ssS_") S(absf64, "ss") S(negf64, "ss")        \
    S(ceilf64, "ss") S(floorf64, "ss") S(truncf64, "ss") S(nearestf64, "ss")                  \
    S(sqrtf64, "ss") S(addf64, "ssS_") S(subf64, "ssS_") S(mulf64, "ssS_") S(divf64, "ssS_")  \
    S(minf64, "ssS_") S(maxf64, "ssS_") S(copysignf64, "ssS_") S(i32_trunc_f32_s, "ss")       \
    S(i32_trunc_f32_u, "ss") S(i32_trunc_f64_s, "ss") S(i32_trunc_f64_u, "ss")                \
    S(i64_extend_i32_s, "ss") S(i64_extend_i32_u, "ss") S(i64_trunc_f32_s, "ss")              \
    S(i64_trunc_f32_u, "ss") S(i64_trunc_f64_s, "ss") S(i64_trunc_f64_u, "ss")                \
    S(f32_convert_i32_s, "ss") S(f32_convert_i32_u, "ss") S(f32_convert_i64_s, "ss")          \
    S(f32_convert_i64_u, "ss") S(f32_demote_f64, "ss") S(f64_convert_i32_s, "ss")             \
    S(f64_convert_i32_u, "ss") S(f64_convert_i64_s, "ss") S(f64_convert_i64_u, "ss")          \
    S(f64_promote_f32, "ss") S(i32_extend8_s, "ss") S(i32_extend16_s, "ss")                   \
    S(i64_extend8_s, "ss") S(i64_extend16_s, "ss") S(i32_trunc_sat_f32_s, "ss")               \
    S(i32_trunc_sat_f32_u, "ss") S(i32_trunc_sat_f64_s, "ss") S(i32_trunc_sat_f64_u, "ss")    \
    S(i64_trunc_sat_f32_s, "ss") S(i64_trunc_sat_f32_u, "ss") S(i64_trunc_sat_f64_s, "ss")    \
    S(i64_trunc_sat_f64_u, "ss") S(add32i, "ssI_") S(sub32i, "ssI_") S(mul32i, "ssI_")        \
    S(and32i, "ssI_") S(or32i, "ssI_") S(xor32i, "ssI_") S(shl32i, "ssI_")                    \
    S(shrs32i, "ssI_") S(shru32i, "ssI_") S(eq32i, "ssI_") S(ne32i, "ssI_")                   \
    S(lts32i, "ssI_") S(ltu32i, "ssI_") S(gts32i, "ssI_") S(gtu32i, "ssI_")                   \
    S(les32i, "ssI_") S(leu32i, "ssI_") S(ges32i, "ssI_") S(geu32i, "ssI_")                   \
    S(add64i, "ssI_") S(sub64i, "ssI_") S(and64i, "ssI_") S(or64i, "ssI_") S(xor64i, "ssI_")  \
    S(shl64i, "ssI_") S(shrs64i, "ssI_") S(shru64i, "ssI_") S(br_eqz32, "-sR_")               \
    S(br_eq32, "-sS_R_") S(br_ne32, "-sS_R_") S(br_lts32, "-sS_R_") S(br_ltu32, "-sS_R_")     \
    S(br_gts32, "-sS_R_") S(br_gtu32, "-sS_R_") S(br_les32, "-sS_R_") S(br_leu32, "-sS_R_")   \
    S(br_ges32, "-sS_R_") S(br_geu32, "-sS_R_") S(br_eq32i, "-sI_R_") S(br_ne32i, "-sI_R_")   \
    S(br_lts32i, "-sI_R_") S(br_ltu32i, "-sI_R_") S(br_gts32i, "-sI_R_")                      \
    S(br_gtu32i, "-sI_R_") S(br_les32i, "-sI_R_") S(br_leu32i, "-sI_R_")                      \
    S(br_ges32i, "-sI_R_") S(br_geu32i, "-sI_R_") S(select128, "vsvv") S(global_get128, "vg")  \
    S(global_set128, "Gv") S(v_const, "v-I_I_") S(v_load, "vsO_I_") S(v_store, "svO_")        \
    S(v_load_lane, "vsviO_") S(v_store_lane, "svi-O_") S(v_splat, "vsI_") S(v_extract, "svI_") \
    S(v_replace, "vvsi") S(v_shift, "vvsi") S(v_un, "vvI_") S(v_test, "svI_") S(v_bin, "vvvi")  \
    S(v_bitselect, "vvvv") S(v_shuffle, "vvv-I_I_")


#endif
