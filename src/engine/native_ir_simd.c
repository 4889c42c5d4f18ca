/*
 * native_ir_simd.c — translates the instructions of the 0xFD prefix
 * (fixed-width SIMD, v128) into LLVM IR for the native tier. Called by
 * native_ir.c's body loop with the fx_t of the function being translated
 * (native_ir.h); errors longjmp back as native_ir.c's do.
 *
 * A v128 is an i128 everywhere a value lives (the operand stack, locals,
 * params, block values, slot pairs of the io array, a global's val and
 * val_hi, which are adjacent); each instruction bitcasts it to the vector
 * type of its lanes, computes with LLVM's vector operations and casts
 * back. The semantics are the interpreter's (simd.c): NaN propagation and
 * quieting as for the scalar float instructions, saturation through
 * llvm.*.sat, shift counts taken modulo the lane width.
 */
#include "engine/native_ir.h"

static LLVMTypeRef vty(fx_t *f, LLVMTypeRef lane, unsigned n) { (void)f; return LLVMVectorType(lane, n); }

/* The i128 v as a vector of n lanes of type lane. */
static LLVMValueRef as_vec(fx_t *f, LLVMValueRef v, LLVMTypeRef lane, unsigned n)
{
    return LLVMBuildBitCast(f->b, v, vty(f, lane, n), "");
}

static void push_vec(fx_t *f, LLVMValueRef v)
{
    push(f, LLVMBuildBitCast(f->b, v, LLVMIntTypeInContext(f->nc->ctx, 128), ""));
}

/* The lane shapes, by the first opcode of their group. */
typedef struct vshape {
    LLVMTypeRef lane;   /* i8, i16, i32, i64, float, double */
    unsigned n;         /* lanes */
    unsigned bits;      /* lane width */
} vshape_t;

static vshape_t shape(fx_t *f, unsigned bits, bool fp)
{
    nc_module_t *nc = f->nc;
    vshape_t s = {NULL, 128 / bits, bits};
    switch (bits) {
    case 8: s.lane = nc->t_i8; break;
    case 16: s.lane = nc->t_i16; break;
    case 32: s.lane = fp ? nc->t_f32 : nc->t_i32; break;
    default: s.lane = fp ? nc->t_f64 : nc->t_i64; break;
    }
    return s;
}

static LLVMValueRef splat_const(fx_t *f, vshape_t s, uint64_t v)
{
    LLVMValueRef c = LLVMConstInt(s.lane, v, 0);
    LLVMValueRef *e = fx_alloc(f, s.n * sizeof *e);
    for (unsigned i = 0; i < s.n; i++)
        e[i] = c;
    return LLVMConstVector(e, s.n);
}

/* A scalar in every lane of a vector of shape s. */
static LLVMValueRef splat(fx_t *f, vshape_t s, LLVMValueRef x)
{
    LLVMValueRef v = LLVMBuildInsertElement(f->b, LLVMGetUndef(vty(f, s.lane, s.n)), x, c32(f, 0), "");
    LLVMValueRef *mask = fx_alloc(f, s.n * sizeof *mask);
    for (unsigned i = 0; i < s.n; i++)
        mask[i] = c32(f, 0);
    return LLVMBuildShuffleVector(f->b, v, LLVMGetUndef(vty(f, s.lane, s.n)), LLVMConstVector(mask, s.n), "");
}

/* shufflevector of a and b with lanes idx[0..n). */
static LLVMValueRef shuffle(fx_t *f, LLVMValueRef a, LLVMValueRef b, const unsigned *idx, unsigned n)
{
    LLVMValueRef *mask = fx_alloc(f, n * sizeof *mask);
    for (unsigned i = 0; i < n; i++)
        mask[i] = c32(f, idx[i]);
    return LLVMBuildShuffleVector(f->b, a, b, LLVMConstVector(mask, n), "");
}

/* Lanes [from, from + n) of v (an n-lane half, or the even/odd lanes
 * when step is 2). */
static LLVMValueRef lanes(fx_t *f, LLVMValueRef v, unsigned from, unsigned step, unsigned n)
{
    unsigned idx[16];
    for (unsigned i = 0; i < n; i++)
        idx[i] = from + i * step;
    return shuffle(f, v, LLVMGetUndef(LLVMTypeOf(v)), idx, n);
}

/* A vector of 2 lanes widened to 4 with zeros in lanes 2 and 3. */
static LLVMValueRef zero_high(fx_t *f, LLVMValueRef v2)
{
    static const unsigned idx[4] = {0, 1, 2, 3};
    return shuffle(f, v2, LLVMConstNull(LLVMTypeOf(v2)), idx, 4);
}

static LLVMValueRef ext(fx_t *f, LLVMValueRef v, LLVMTypeRef to, bool sign)
{
    return sign ? LLVMBuildSExt(f->b, v, to, "") : LLVMBuildZExt(f->b, v, to, "");
}

/* A wider-lane vector type: n lanes of 2 * bits. */
static LLVMTypeRef wide(fx_t *f, unsigned bits, unsigned n)
{
    return vty(f, LLVMIntTypeInContext(f->nc->ctx, 2 * bits), n);
}

/* A vector load of n bytes (the scalar or vector type ty) at the memarg. */
static LLVMValueRef simd_load(fx_t *f, LLVMTypeRef ty, unsigned n, uint32_t off, LLVMValueRef addr)
{
    LLVMValueRef v = LLVMBuildLoad2(f->b, ty, mem_addr(f, addr, off, n), "");
    LLVMSetAlignment(v, 1);
    tag(f, v, f->nc->tbaa_mem);
    if (f->nc->guard && (uint64_t)off + n <= ENG_GUARD_SLACK)
        guard_access(f, v);
    return v;
}

static void simd_store(fx_t *f, LLVMValueRef v, unsigned n, uint32_t off, LLVMValueRef addr)
{
    LLVMValueRef s = LLVMBuildStore(f->b, v, mem_addr(f, addr, off, n));
    LLVMSetAlignment(s, 1);
    tag(f, s, f->nc->tbaa_mem);
    if (f->nc->guard && (uint64_t)off + n <= ENG_GUARD_SLACK)
        guard_access(f, s);
}

static LLVMValueRef icmp_mask(fx_t *f, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSExt(f->b, LLVMBuildICmp(f->b, p, a, b, ""), LLVMTypeOf(a), "");
}

static LLVMValueRef fcmp_mask(fx_t *f, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b, vshape_t s)
{
    LLVMTypeRef it = vty(f, LLVMIntTypeInContext(f->nc->ctx, s.bits), s.n);
    return LLVMBuildSExt(f->b, LLVMBuildFCmp(f->b, p, a, b, ""), it, "");
}

/* lo <= v <= hi lane by lane (signed), for narrowing and q15mulr. */
static LLVMValueRef clamp(fx_t *f, LLVMValueRef v, vshape_t s, int64_t lo, int64_t hi)
{
    v = intrinsic2(f, "llvm.smax", v, splat_const(f, s, (uint64_t)lo));
    return intrinsic2(f, "llvm.smin", v, splat_const(f, s, (uint64_t)hi));
}

static LLVMValueRef reduce_and(fx_t *f, LLVMValueRef v)
{
    return intrinsic1(f, "llvm.vector.reduce.and", v);
}

static uint8_t read_lane_imm(fx_t *f)
{
    uint8_t l = rd_u8(&f->r);
    check_reader(f);
    return l;
}

void nc_simd(fx_t *f)
{
    nc_module_t *nc = f->nc;
    LLVMBuilderRef b = f->b;
    uint32_t sub = rd_u32(&f->r);
    check_reader(f);
    LLVMTypeRef i128 = LLVMIntTypeInContext(nc->ctx, 128);
    vshape_t b8 = shape(f, 8, false), b16 = shape(f, 16, false), b32 = shape(f, 32, false),
             b64 = shape(f, 64, false), f32 = shape(f, 32, true), f64 = shape(f, 64, true);
    /* Comparisons: eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u. */
    static const LLVMIntPredicate icmps[10] = {LLVMIntEQ,  LLVMIntNE,  LLVMIntSLT, LLVMIntULT,
                                               LLVMIntSGT, LLVMIntUGT, LLVMIntSLE, LLVMIntULE,
                                               LLVMIntSGE, LLVMIntUGE};
    static const LLVMRealPredicate fcmps[6] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                               LLVMRealOGT, LLVMRealOLE, LLVMRealOGE};
    if (sub >= 0x23 && sub <= 0x40) {
        vshape_t s = sub < 0x2D ? b8 : sub < 0x37 ? b16 : b32;
        unsigned k = (sub - 0x23) % 10;
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        push_vec(f, icmp_mask(f, icmps[k], x, y));
        return;
    }
    if (sub >= 0x41 && sub <= 0x4C) {
        vshape_t s = sub < 0x47 ? f32 : f64;
        unsigned k = (sub - 0x41) % 6;
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        push_vec(f, fcmp_mask(f, fcmps[k], x, y, s));
        return;
    }
    if (sub >= 0xD6 && sub <= 0xDB) {
        static const LLVMIntPredicate p64[6] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT,
                                                LLVMIntSGT, LLVMIntSLE, LLVMIntSGE};
        LLVMValueRef y = as_vec(f, pop(f), b64.lane, 2), x = as_vec(f, pop(f), b64.lane, 2);
        push_vec(f, icmp_mask(f, p64[sub - 0xD6], x, y));
        return;
    }
    switch (sub) {
    /* ---- memory ---- */
    case 0x00: case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06: case 0x07:
    case 0x08: case 0x09: case 0x0A: case 0x5C: case 0x5D: {
        uint32_t off = read_memarg(f);
        LLVMValueRef addr = pop(f);
        if (sub == 0x00) {
            push(f, simd_load(f, i128, 16, off, addr));
        } else if (sub <= 0x06) {
            static const unsigned from_bits[3] = {8, 16, 32};
            unsigned bits = from_bits[(sub - 1) / 2], n = 64 / bits;
            LLVMValueRef v = simd_load(f, vty(f, LLVMIntTypeInContext(nc->ctx, bits), n), 8, off, addr);
            push_vec(f, ext(f, v, wide(f, bits, n), (sub & 1) != 0));
        } else if (sub <= 0x0A) {
            vshape_t s = shape(f, 8u << (sub - 0x07), false);
            push_vec(f, splat(f, s, simd_load(f, s.lane, s.bits / 8, off, addr)));
        } else {
            LLVMTypeRef t = sub == 0x5C ? nc->t_i32 : nc->t_i64;
            push(f, LLVMBuildZExt(b, simd_load(f, t, sub == 0x5C ? 4 : 8, off, addr), i128, ""));
        }
        return;
    }
    case 0x0B: {
        uint32_t off = read_memarg(f);
        LLVMValueRef v = pop(f);
        simd_store(f, v, 16, off, pop(f));
        return;
    }
    case 0x54: case 0x55: case 0x56: case 0x57: case 0x58: case 0x59: case 0x5A: case 0x5B: {
        uint32_t off = read_memarg(f);
        vshape_t s = shape(f, 8u << ((sub - 0x54) & 3), false);
        uint8_t lane = read_lane_imm(f) & (s.n - 1);
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n), addr = pop(f);
        if (sub <= 0x57) {
            LLVMValueRef x = simd_load(f, s.lane, s.bits / 8, off, addr);
            push_vec(f, LLVMBuildInsertElement(b, v, x, c32(f, lane), ""));
        } else {
            simd_store(f, LLVMBuildExtractElement(b, v, c32(f, lane), ""), s.bits / 8, off, addr);
        }
        return;
    }
    /* ---- constants, lanes, shuffles ---- */
    case 0x0C: {
        uint64_t w[2];
        w[0] = rd_fixed64(&f->r);
        w[1] = rd_fixed64(&f->r);
        check_reader(f);
        push(f, LLVMConstIntOfArbitraryPrecision(i128, 2, w));
        return;
    }
    case 0x0D: {
        unsigned idx[16];
        for (int i = 0; i < 16; i++)
            idx[i] = read_lane_imm(f) & 31;
        LLVMValueRef y = as_vec(f, pop(f), b8.lane, 16), x = as_vec(f, pop(f), b8.lane, 16);
        push_vec(f, shuffle(f, x, y, idx, 16));
        return;
    }
    case 0x0E: { /* swizzle: lanes >= 16 give 0 */
        LLVMValueRef y = as_vec(f, pop(f), b8.lane, 16), x = as_vec(f, pop(f), b8.lane, 16);
        LLVMValueRef r = LLVMConstNull(vty(f, b8.lane, 16));
        for (unsigned i = 0; i < 16; i++) {
            LLVMValueRef k = LLVMBuildExtractElement(b, y, c32(f, i), "");
            LLVMValueRef in = LLVMBuildICmp(b, LLVMIntULT, k, LLVMConstInt(nc->t_i8, 16, 0), "");
            LLVMValueRef safe = LLVMBuildAnd(b, k, LLVMConstInt(nc->t_i8, 15, 0), "");
            LLVMValueRef e = LLVMBuildExtractElement(b, x, LLVMBuildZExt(b, safe, nc->t_i32, ""), "");
            e = LLVMBuildSelect(b, in, e, LLVMConstInt(nc->t_i8, 0, 0), "");
            r = LLVMBuildInsertElement(b, r, e, c32(f, i), "");
        }
        push_vec(f, r);
        return;
    }
    case 0x0F: case 0x10: case 0x11: case 0x12: case 0x13: case 0x14: {
        static const struct { unsigned bits; bool fp; } sp[6] = {
            {8, false}, {16, false}, {32, false}, {64, false}, {32, true}, {64, true}};
        vshape_t s = shape(f, sp[sub - 0x0F].bits, sp[sub - 0x0F].fp);
        LLVMValueRef x = pop(f);
        if (sub <= 0x10)
            x = LLVMBuildTrunc(b, x, s.lane, "");
        push_vec(f, splat(f, s, x));
        return;
    }
    case 0x15: case 0x16: case 0x17: case 0x18: case 0x19: case 0x1A: case 0x1B: case 0x1C:
    case 0x1D: case 0x1E: case 0x1F: case 0x20: case 0x21: case 0x22: {
        vshape_t s = sub <= 0x17 ? b8 : sub <= 0x1A ? b16 : sub <= 0x1C ? b32 : sub <= 0x1E ? b64
                   : sub <= 0x20 ? f32 : f64;
        uint8_t lane = read_lane_imm(f) & (s.n - 1);
        bool replace = sub == 0x17 || sub == 0x1A || sub == 0x1C || sub == 0x1E || sub == 0x20 ||
                       sub == 0x22;
        if (replace) {
            LLVMValueRef x = pop(f);
            LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n);
            if (s.bits < 32)
                x = LLVMBuildTrunc(b, x, s.lane, "");
            push_vec(f, LLVMBuildInsertElement(b, v, x, c32(f, lane), ""));
        } else {
            LLVMValueRef e = LLVMBuildExtractElement(b, as_vec(f, pop(f), s.lane, s.n), c32(f, lane), "");
            if (s.bits < 32)
                e = ext(f, e, nc->t_i32, sub == 0x15 || sub == 0x18);
            push(f, e);
        }
        return;
    }
    /* ---- bitwise ---- */
    case 0x4D: push(f, LLVMBuildNot(b, pop(f), "")); return;
    case 0x4E: case 0x4F: case 0x50: case 0x51: {
        LLVMValueRef y = pop(f), x = pop(f);
        if (sub == 0x4E) push(f, LLVMBuildAnd(b, x, y, ""));
        else if (sub == 0x4F) push(f, LLVMBuildAnd(b, x, LLVMBuildNot(b, y, ""), ""));
        else if (sub == 0x50) push(f, LLVMBuildOr(b, x, y, ""));
        else push(f, LLVMBuildXor(b, x, y, ""));
        return;
    }
    case 0x52: {
        LLVMValueRef m = pop(f), y = pop(f), x = pop(f);
        push(f, LLVMBuildOr(b, LLVMBuildAnd(b, x, m, ""), LLVMBuildAnd(b, y, LLVMBuildNot(b, m, ""), ""), ""));
        return;
    }
    case 0x53:
        push(f, bool32(f, LLVMBuildICmp(b, LLVMIntNE, pop(f), LLVMConstNull(i128), "")));
        return;
    case 0x63: case 0x83: case 0xA3: case 0xC3: { /* all_true */
        vshape_t s = sub == 0x63 ? b8 : sub == 0x83 ? b16 : sub == 0xA3 ? b32 : b64;
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n);
        LLVMValueRef nz = LLVMBuildICmp(b, LLVMIntNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
        push(f, bool32(f, reduce_and(f, nz)));
        return;
    }
    case 0x64: case 0x84: case 0xA4: case 0xC4: { /* bitmask */
        vshape_t s = sub == 0x64 ? b8 : sub == 0x84 ? b16 : sub == 0xA4 ? b32 : b64;
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n);
        LLVMValueRef neg = LLVMBuildICmp(b, LLVMIntSLT, v, LLVMConstNull(LLVMTypeOf(v)), "");
        LLVMValueRef bits = LLVMBuildBitCast(b, neg, LLVMIntTypeInContext(nc->ctx, s.n), "");
        push(f, LLVMBuildZExt(b, bits, nc->t_i32, ""));
        return;
    }
    /* ---- float conversions ---- */
    case 0x5E: { /* f32x4.demote_f64x2_zero */
        LLVMValueRef v = as_vec(f, pop(f), f64.lane, 2);
        push_vec(f, zero_high(f, LLVMBuildFPTrunc(b, v, vty(f, nc->t_f32, 2), "")));
        return;
    }
    case 0x5F: { /* f64x2.promote_low_f32x4 */
        LLVMValueRef v = lanes(f, as_vec(f, pop(f), f32.lane, 4), 0, 1, 2);
        push_vec(f, LLVMBuildFPExt(b, v, vty(f, nc->t_f64, 2), ""));
        return;
    }
    case 0xF8: case 0xF9: case 0xFC: case 0xFD: { /* trunc_sat */
        bool sign = sub == 0xF8 || sub == 0xFC;
        bool from64 = sub >= 0xFC;
        vshape_t s = from64 ? f64 : f32;
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n);
        LLVMTypeRef to = vty(f, nc->t_i32, s.n), types[2] = {to, LLVMTypeOf(v)}, ty;
        LLVMValueRef fn = nc_intrinsic(nc, sign ? "llvm.fptosi.sat" : "llvm.fptoui.sat", types, 2, &ty);
        LLVMValueRef r = LLVMBuildCall2(b, ty, fn, &v, 1, "");
        push_vec(f, from64 ? zero_high(f, r) : r);
        return;
    }
    case 0xFA: case 0xFB: {
        LLVMValueRef v = as_vec(f, pop(f), b32.lane, 4);
        LLVMTypeRef to = vty(f, nc->t_f32, 4);
        push_vec(f, sub == 0xFA ? LLVMBuildSIToFP(b, v, to, "") : LLVMBuildUIToFP(b, v, to, ""));
        return;
    }
    case 0xFE: case 0xFF: {
        LLVMValueRef v = lanes(f, as_vec(f, pop(f), b32.lane, 4), 0, 1, 2);
        LLVMTypeRef to = vty(f, nc->t_f64, 2);
        push_vec(f, sub == 0xFE ? LLVMBuildSIToFP(b, v, to, "") : LLVMBuildUIToFP(b, v, to, ""));
        return;
    }
    /* ---- integer lanes ---- */
    case 0x60: case 0x80: case 0xA0: case 0xC0: { /* abs: INT_MIN stays */
        vshape_t s = sub == 0x60 ? b8 : sub == 0x80 ? b16 : sub == 0xA0 ? b32 : b64;
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n);
        LLVMTypeRef ty, ovl = LLVMTypeOf(v);
        LLVMValueRef fn = nc_intrinsic(nc, "llvm.abs", &ovl, 1, &ty);
        LLVMValueRef args[2] = {v, LLVMConstInt(nc->t_i1, 0, 0)};
        push_vec(f, LLVMBuildCall2(b, ty, fn, args, 2, ""));
        return;
    }
    case 0x61: case 0x81: case 0xA1: case 0xC1: {
        vshape_t s = sub == 0x61 ? b8 : sub == 0x81 ? b16 : sub == 0xA1 ? b32 : b64;
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n);
        push_vec(f, LLVMBuildSub(b, LLVMConstNull(LLVMTypeOf(v)), v, ""));
        return;
    }
    case 0x62: push_vec(f, intrinsic1(f, "llvm.ctpop", as_vec(f, pop(f), b8.lane, 16))); return;
    case 0x65: case 0x66: case 0x85: case 0x86: { /* narrow with saturation */
        bool from16 = sub <= 0x66, sign = sub == 0x65 || sub == 0x85;
        vshape_t s = from16 ? b16 : b32;
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        unsigned idx[16];
        for (unsigned i = 0; i < 2 * s.n; i++)
            idx[i] = i;
        LLVMValueRef both = shuffle(f, x, y, idx, 2 * s.n);
        vshape_t s2 = {s.lane, 2 * s.n, s.bits};
        unsigned nb = s.bits / 2;
        int64_t lo = sign ? -(1ll << (nb - 1)) : 0, hi = sign ? (1ll << (nb - 1)) - 1 : (1ll << nb) - 1;
        both = clamp(f, both, s2, lo, hi);
        push_vec(f, LLVMBuildTrunc(b, both, vty(f, LLVMIntTypeInContext(nc->ctx, nb), 2 * s.n), ""));
        return;
    }
    case 0x6B: case 0x6C: case 0x6D: case 0x8B: case 0x8C: case 0x8D: case 0xAB: case 0xAC: case 0xAD:
    case 0xCB: case 0xCC: case 0xCD: {
        vshape_t s = sub <= 0x6D ? b8 : sub <= 0x8D ? b16 : sub <= 0xAD ? b32 : b64;
        unsigned k = (sub - 0x6B) % 32; /* 0 shl, 1 shr_s, 2 shr_u */
        LLVMValueRef n = LLVMBuildAnd(b, pop(f), c32(f, s.bits - 1), "");
        n = s.bits < 32 ? LLVMBuildTrunc(b, n, s.lane, "") : s.bits > 32 ? LLVMBuildZExt(b, n, s.lane, "") : n;
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n), ns = splat(f, s, n);
        push_vec(f, k == 0 ? LLVMBuildShl(b, v, ns, "") : k == 1 ? LLVMBuildAShr(b, v, ns, "")
                                                               : LLVMBuildLShr(b, v, ns, ""));
        return;
    }
    case 0x6E: case 0x71: case 0x8E: case 0x91: case 0xAE: case 0xB1: case 0xCE: case 0xD1:
    case 0x95: case 0xB5: case 0xD5: {
        vshape_t s = sub <= 0x71 ? b8 : sub <= 0x95 ? b16 : sub <= 0xB5 ? b32 : b64;
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        bool add = sub == 0x6E || sub == 0x8E || sub == 0xAE || sub == 0xCE;
        bool mul = sub == 0x95 || sub == 0xB5 || sub == 0xD5;
        push_vec(f, add ? LLVMBuildAdd(b, x, y, "") : mul ? LLVMBuildMul(b, x, y, "") : LLVMBuildSub(b, x, y, ""));
        return;
    }
    case 0x6F: case 0x70: case 0x72: case 0x73: case 0x8F: case 0x90: case 0x92: case 0x93: {
        static const char *const names[4] = {"llvm.sadd.sat", "llvm.uadd.sat", "llvm.ssub.sat", "llvm.usub.sat"};
        vshape_t s = sub <= 0x73 ? b8 : b16;
        unsigned k = sub == 0x6F || sub == 0x8F ? 0 : sub == 0x70 || sub == 0x90 ? 1 : sub == 0x72 || sub == 0x92 ? 2 : 3;
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        push_vec(f, intrinsic2(f, names[k], x, y));
        return;
    }
    case 0x76: case 0x77: case 0x78: case 0x79: case 0x96: case 0x97: case 0x98: case 0x99:
    case 0xB6: case 0xB7: case 0xB8: case 0xB9: {
        static const char *const names[4] = {"llvm.smin", "llvm.umin", "llvm.smax", "llvm.umax"};
        vshape_t s = sub <= 0x79 ? b8 : sub <= 0x99 ? b16 : b32;
        unsigned k = (sub - (sub <= 0x79 ? 0x76 : sub <= 0x99 ? 0x96 : 0xB6));
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        push_vec(f, intrinsic2(f, names[k], x, y));
        return;
    }
    case 0x7B: case 0x9B: { /* avgr_u: (a + b + 1) >> 1 without overflow */
        vshape_t s = sub == 0x7B ? b8 : b16;
        LLVMTypeRef w = wide(f, s.bits, s.n);
        LLVMValueRef y = ext(f, as_vec(f, pop(f), s.lane, s.n), w, false);
        LLVMValueRef x = ext(f, as_vec(f, pop(f), s.lane, s.n), w, false);
        vshape_t ws = {LLVMGetElementType(w), s.n, 2 * s.bits};
        LLVMValueRef r = LLVMBuildAdd(b, LLVMBuildAdd(b, x, y, ""), splat_const(f, ws, 1), "");
        r = LLVMBuildLShr(b, r, splat_const(f, ws, 1), "");
        push_vec(f, LLVMBuildTrunc(b, r, vty(f, s.lane, s.n), ""));
        return;
    }
    case 0x7C: case 0x7D: case 0x7E: case 0x7F: { /* extadd_pairwise */
        vshape_t s = sub <= 0x7D ? b8 : b16;
        bool sign = sub == 0x7C || sub == 0x7E;
        LLVMValueRef v = as_vec(f, pop(f), s.lane, s.n);
        LLVMTypeRef w = wide(f, s.bits, s.n / 2);
        LLVMValueRef ev = ext(f, lanes(f, v, 0, 2, s.n / 2), w, sign);
        LLVMValueRef od = ext(f, lanes(f, v, 1, 2, s.n / 2), w, sign);
        push_vec(f, LLVMBuildAdd(b, ev, od, ""));
        return;
    }
    case 0x82: { /* q15mulr_sat_s */
        LLVMTypeRef w = wide(f, 16, 8);
        vshape_t ws = {LLVMGetElementType(w), 8, 32};
        LLVMValueRef y = ext(f, as_vec(f, pop(f), b16.lane, 8), w, true);
        LLVMValueRef x = ext(f, as_vec(f, pop(f), b16.lane, 8), w, true);
        LLVMValueRef r = LLVMBuildAdd(b, LLVMBuildMul(b, x, y, ""), splat_const(f, ws, 0x4000), "");
        r = clamp(f, LLVMBuildAShr(b, r, splat_const(f, ws, 15), ""), ws, -32768, 32767);
        push_vec(f, LLVMBuildTrunc(b, r, vty(f, b16.lane, 8), ""));
        return;
    }
    case 0x87: case 0x88: case 0x89: case 0x8A: case 0xA7: case 0xA8: case 0xA9: case 0xAA:
    case 0xC7: case 0xC8: case 0xC9: case 0xCA: { /* extend low/high */
        vshape_t s = sub <= 0x8A ? b8 : sub <= 0xAA ? b16 : b32;
        unsigned k = sub & 3; /* 3 low_s, 0 high_s, 1 low_u, 2 high_u (0x87..0x8A) */
        bool sign = k == 3 || k == 0, high = k == 0 || k == 2;
        LLVMValueRef v = lanes(f, as_vec(f, pop(f), s.lane, s.n), high ? s.n / 2 : 0, 1, s.n / 2);
        push_vec(f, ext(f, v, wide(f, s.bits, s.n / 2), sign));
        return;
    }
    case 0x9C: case 0x9D: case 0x9E: case 0x9F: case 0xBC: case 0xBD: case 0xBE: case 0xBF:
    case 0xDC: case 0xDD: case 0xDE: case 0xDF: { /* extmul low/high */
        vshape_t s = sub <= 0x9F ? b8 : sub <= 0xBF ? b16 : b32;
        unsigned k = sub & 3; /* 0 low_s, 1 high_s, 2 low_u, 3 high_u */
        bool sign = k < 2, high = k & 1;
        LLVMTypeRef w = wide(f, s.bits, s.n / 2);
        LLVMValueRef y = ext(f, lanes(f, as_vec(f, pop(f), s.lane, s.n), high ? s.n / 2 : 0, 1, s.n / 2), w, sign);
        LLVMValueRef x = ext(f, lanes(f, as_vec(f, pop(f), s.lane, s.n), high ? s.n / 2 : 0, 1, s.n / 2), w, sign);
        push_vec(f, LLVMBuildMul(b, x, y, ""));
        return;
    }
    case 0xBA: { /* i32x4.dot_i16x8_s */
        LLVMTypeRef w = wide(f, 16, 8);
        LLVMValueRef y = ext(f, as_vec(f, pop(f), b16.lane, 8), w, true);
        LLVMValueRef x = ext(f, as_vec(f, pop(f), b16.lane, 8), w, true);
        LLVMValueRef p = LLVMBuildMul(b, x, y, "");
        push_vec(f, LLVMBuildAdd(b, lanes(f, p, 0, 2, 4), lanes(f, p, 1, 2, 4), ""));
        return;
    }
    /* ---- float lanes ---- */
    case 0x67: case 0x68: case 0x69: case 0x6A: case 0x74: case 0x75: case 0x7A: case 0x94: {
        vshape_t s = sub <= 0x6A ? f32 : f64;
        const char *name = sub == 0x67 || sub == 0x74 ? "llvm.ceil"
                         : sub == 0x68 || sub == 0x75 ? "llvm.floor"
                         : sub == 0x69 || sub == 0x7A ? "llvm.trunc" : "llvm.roundeven";
        push_vec(f, intrinsic1(f, name, as_vec(f, pop(f), s.lane, s.n)));
        return;
    }
    case 0xE0: case 0xEC: {
        vshape_t s = sub == 0xE0 ? f32 : f64;
        push_vec(f, intrinsic1(f, "llvm.fabs", as_vec(f, pop(f), s.lane, s.n)));
        return;
    }
    case 0xE1: case 0xED: {
        vshape_t s = sub == 0xE1 ? f32 : f64;
        push_vec(f, LLVMBuildFNeg(b, as_vec(f, pop(f), s.lane, s.n), ""));
        return;
    }
    case 0xE3: case 0xEF: {
        vshape_t s = sub == 0xE3 ? f32 : f64;
        push_vec(f, intrinsic1(f, "llvm.sqrt", as_vec(f, pop(f), s.lane, s.n)));
        return;
    }
    case 0xE4: case 0xE5: case 0xE6: case 0xE7: case 0xF0: case 0xF1: case 0xF2: case 0xF3: {
        vshape_t s = sub <= 0xE7 ? f32 : f64;
        static const LLVMOpcode ops[4] = {LLVMFAdd, LLVMFSub, LLVMFMul, LLVMFDiv};
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        LLVMValueRef r = LLVMBuildBinOp(b, ops[(sub - (sub <= 0xE7 ? 0xE4 : 0xF0))], x, y, "");
        /* As float_binop: constant identities must not pass a signalling
         * NaN through (LLVM folds x * 1 to x). */
        if (LLVMIsConstant(x) || LLVMIsConstant(y)) {
            LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, r, r, "");
            r = LLVMBuildSelect(b, nan, LLVMBuildFAdd(b, r, r, ""), r, "");
        }
        push_vec(f, r);
        return;
    }
    case 0xE8: case 0xE9: case 0xF4: case 0xF5: {
        vshape_t s = sub <= 0xE9 ? f32 : f64;
        bool min = sub == 0xE8 || sub == 0xF4;
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        LLVMValueRef r = intrinsic2(f, min ? "llvm.minimum" : "llvm.maximum", x, y);
        LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, y, "");
        push_vec(f, LLVMBuildSelect(b, nan, LLVMBuildFAdd(b, x, y, ""), r, ""));
        return;
    }
    case 0xEA: case 0xEB: case 0xF6: case 0xF7: { /* pmin: b < a ? b : a; pmax: a < b ? b : a */
        vshape_t s = sub <= 0xEB ? f32 : f64;
        bool min = sub == 0xEA || sub == 0xF6;
        LLVMValueRef y = as_vec(f, pop(f), s.lane, s.n), x = as_vec(f, pop(f), s.lane, s.n);
        LLVMValueRef c = min ? LLVMBuildFCmp(b, LLVMRealOLT, y, x, "") : LLVMBuildFCmp(b, LLVMRealOLT, x, y, "");
        push_vec(f, LLVMBuildSelect(b, c, y, x, ""));
        return;
    }
    default:
        fail(f, "unknown 0xfd opcode");
    }
}
