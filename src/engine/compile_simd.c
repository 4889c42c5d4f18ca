/*
 * compile_simd.c — validates and compiles the instructions of the 0xFD
 * prefix (fixed-width SIMD, v128) into the interpreter's v_* instructions
 * (ops.h). A v128 takes two frame slots; the interpreter's handlers
 * (interp.c) and simd.c give the lanes their meaning.
 *
 * Called by compile.c's body loop with the comp_t of the function being
 * compiled (compile.h); errors longjmp back the way compile.c's do.
 */
#include "engine/compile.h"

#include <stdio.h>

/* What kind of instruction a 0xFD sub-opcode is, for validation. Gaps in
 * the numbering (reserved opcodes) are V_NONE: "unknown opcode". */
enum { V_NONE, V_LOAD, V_STORE, V_CONST, V_SHUFFLE, V_SPLAT, V_EXTRACT, V_REPLACE, V_LOAD_LANE,
       V_STORE_LANE, V_TEST, V_SHIFT, V_BITSELECT, V_UN, V_BIN };

static int simd_kind(uint32_t sub)
{
    switch (sub) {
    case 0x00 ... 0x0A: case 0x5C: case 0x5D: return V_LOAD;
    case 0x0B: return V_STORE;
    case 0x0C: return V_CONST;
    case 0x0D: return V_SHUFFLE;
    case 0x0E: return V_BIN; /* swizzle */
    case 0x0F ... 0x14: return V_SPLAT;
    case 0x15: case 0x16: case 0x18: case 0x19: case 0x1B: case 0x1D: case 0x1F: case 0x21:
        return V_EXTRACT;
    case 0x17: case 0x1A: case 0x1C: case 0x1E: case 0x20: case 0x22: return V_REPLACE;
    case 0x23 ... 0x4C: return V_BIN; /* comparisons */
    case 0x4D: return V_UN;
    case 0x4E ... 0x51: return V_BIN;
    case 0x52: return V_BITSELECT;
    case 0x53: case 0x63: case 0x64: case 0x83: case 0x84: case 0xA3: case 0xA4: case 0xC3:
    case 0xC4:
        return V_TEST;
    case 0x54 ... 0x57: return V_LOAD_LANE;
    case 0x58 ... 0x5B: return V_STORE_LANE;
    case 0x5E ... 0x62: case 0x67 ... 0x6A: case 0x74: case 0x75: case 0x7A: case 0x7C ... 0x81:
    case 0x87 ... 0x8A: case 0x94: case 0xA0: case 0xA1: case 0xA7 ... 0xAA: case 0xC0: case 0xC1:
    case 0xC7 ... 0xCA: case 0xE0: case 0xE1: case 0xE3: case 0xEC: case 0xED: case 0xEF:
    case 0xF8 ... 0xFF:
        return V_UN;
    case 0x65: case 0x66: case 0x6E ... 0x73: case 0x76 ... 0x79: case 0x7B: case 0x82: case 0x85:
    case 0x86: case 0x8E ... 0x93: case 0x95 ... 0x99: case 0x9B ... 0x9F: case 0xAE: case 0xB1:
    case 0xB5 ... 0xBA: case 0xBC ... 0xBF: case 0xCE: case 0xD1: case 0xD5 ... 0xDF:
    case 0xE4 ... 0xEB: case 0xF0 ... 0xF7:
        return V_BIN;
    case 0x6B ... 0x6D: case 0x8B ... 0x8D: case 0xAB ... 0xAD: case 0xCB ... 0xCD: return V_SHIFT;
    default: return V_NONE;
    }
}

/* log2 of the bytes a plain SIMD load (V_LOAD) reads: its natural alignment. */
static uint32_t simd_load_log2(uint32_t sub)
{
    switch (sub) {
    case 0x00: return 4;
    case 0x07: return 0;
    case 0x08: return 1;
    case 0x09: case 0x5C: return 2;
    default: return 3; /* 0x01..0x06 (8 bytes extended), 0x0A, 0x5D */
    }
}

/* The scalar type of a splat, extract or replace, and the lane count. */
static void simd_lane_shape(uint32_t sub, uint8_t *scalar, uint32_t *lanes)
{
    static const struct { uint8_t t; uint8_t lanes; } splat[6] = {
        {ENG_I32, 16}, {ENG_I32, 8}, {ENG_I32, 4}, {ENG_I64, 2}, {ENG_F32, 4}, {ENG_F64, 2},
    };
    if (sub >= 0x0F && sub <= 0x14) {
        *scalar = splat[sub - 0x0F].t;
        *lanes = splat[sub - 0x0F].lanes;
    } else if (sub <= 0x17) {
        *scalar = ENG_I32, *lanes = 16;
    } else if (sub <= 0x1A) {
        *scalar = ENG_I32, *lanes = 8;
    } else if (sub <= 0x1C) {
        *scalar = ENG_I32, *lanes = 4;
    } else if (sub <= 0x1E) {
        *scalar = ENG_I64, *lanes = 2;
    } else if (sub <= 0x20) {
        *scalar = ENG_F32, *lanes = 4;
    } else {
        *scalar = ENG_F64, *lanes = 2;
    }
}

static uint8_t read_lane(comp_t *c, uint32_t lanes)
{
    uint8_t l = rd_u8(&c->r);
    check_reader(c);
    if (l >= lanes) {
        c->r.p--; /* name the lane's byte */
        fail(c, "invalid lane index");
    }
    return l;
}

void eng_compile_simd(comp_t *c)
{
    const uint8_t *start = c->r.p - 1; /* the 0xFD */
    uint32_t sub = rd_u32(&c->r);
    check_reader(c);
    int kind = sub <= 0xFF ? simd_kind(sub) : V_NONE;
    switch (kind) {
    case V_LOAD: {
        uint32_t off = read_memarg(c, simd_load_log2(sub));
        opnd_t a = pop(c, ENG_I32);
        uint32_t sa = read_slot(c, &a);
        uint32_t d = push_temp(c, ENG_V128);
        emit_op(c, OP_v_load, true);
        emit_word(c, pack(d, sa));
        emit_word(c, off);
        emit_word(c, sub);
        return;
    }
    case V_STORE: {
        uint32_t off = read_memarg(c, 4);
        opnd_t v = pop(c, ENG_V128);
        opnd_t a = pop(c, ENG_I32);
        uint32_t sa = read_slot(c, &a), sv = read_slot(c, &v);
        emit_op(c, OP_v_store, false);
        emit_word(c, pack(sa, sv));
        emit_word(c, off);
        return;
    }
    case V_LOAD_LANE:
    case V_STORE_LANE: {
        uint32_t log2 = (sub - 0x54) & 3;
        uint32_t off = read_memarg(c, log2);
        uint8_t lane = read_lane(c, 16u >> log2);
        opnd_t v = pop(c, ENG_V128);
        opnd_t a = pop(c, ENG_I32);
        uint32_t sa = read_slot(c, &a), sv = read_slot(c, &v);
        uint32_t sl = sub | (uint32_t)lane << 8;
        if (kind == V_LOAD_LANE) {
            uint32_t d = push_temp(c, ENG_V128);
            emit_op(c, OP_v_load_lane, true);
            emit_word(c, pack(d, sa));
            emit_word(c, pack(sv, sl));
        } else {
            emit_op(c, OP_v_store_lane, false);
            emit_word(c, pack(sa, sv));
            emit_word(c, sl);
        }
        emit_word(c, off);
        return;
    }
    case V_CONST: {
        uint64_t lo = rd_fixed64(&c->r), hi = rd_fixed64(&c->r);
        check_reader(c);
        uint32_t d = push_temp(c, ENG_V128);
        emit_op(c, OP_v_const, true);
        emit_word(c, d);
        emit_word(c, lo);
        emit_word(c, hi);
        return;
    }
    case V_SHUFFLE: {
        uint8_t lanes[16];
        for (int i = 0; i < 16; i++)
            lanes[i] = read_lane(c, 32);
        opnd_t b = pop(c, ENG_V128), a = pop(c, ENG_V128);
        uint32_t sa = read_slot(c, &a), sb = read_slot(c, &b);
        uint32_t d = push_temp(c, ENG_V128);
        uint64_t w[2];
        memcpy(w, lanes, 16);
        emit_op(c, OP_v_shuffle, true);
        emit_word(c, pack(d, sa));
        emit_word(c, sb);
        emit_word(c, w[0]);
        emit_word(c, w[1]);
        return;
    }
    case V_SPLAT: {
        uint8_t t;
        uint32_t lanes;
        simd_lane_shape(sub, &t, &lanes);
        opnd_t a = pop(c, t);
        uint32_t sa = read_slot(c, &a);
        uint32_t d = push_temp(c, ENG_V128);
        emit_op(c, OP_v_splat, true);
        emit_word(c, pack(d, sa));
        emit_word(c, sub);
        return;
    }
    case V_EXTRACT: {
        uint8_t t;
        uint32_t lanes;
        simd_lane_shape(sub, &t, &lanes);
        uint8_t lane = read_lane(c, lanes);
        opnd_t a = pop(c, ENG_V128);
        uint32_t sa = read_slot(c, &a);
        uint32_t d = push_temp(c, t);
        emit_op(c, OP_v_extract, true);
        emit_word(c, pack(d, sa));
        emit_word(c, sub | (uint32_t)lane << 8);
        return;
    }
    case V_REPLACE: {
        uint8_t t;
        uint32_t lanes;
        simd_lane_shape(sub, &t, &lanes);
        uint8_t lane = read_lane(c, lanes);
        opnd_t b = pop(c, t), a = pop(c, ENG_V128);
        uint32_t sa = read_slot(c, &a), sb = read_slot(c, &b);
        uint32_t d = push_temp(c, ENG_V128);
        emit_op(c, OP_v_replace, true);
        emit_word(c, pack(d, sa));
        emit_word(c, pack(sb, sub | (uint32_t)lane << 8));
        return;
    }
    case V_TEST:
    case V_UN: {
        opnd_t a = pop(c, ENG_V128);
        uint32_t sa = read_slot(c, &a);
        uint32_t d = push_temp(c, kind == V_TEST ? ENG_I32 : ENG_V128);
        emit_op(c, kind == V_TEST ? OP_v_test : OP_v_un, true);
        emit_word(c, pack(d, sa));
        emit_word(c, sub);
        return;
    }
    case V_SHIFT:
    case V_BIN: {
        opnd_t b = pop(c, kind == V_SHIFT ? ENG_I32 : ENG_V128), a = pop(c, ENG_V128);
        uint32_t sa = read_slot(c, &a), sb = read_slot(c, &b);
        uint32_t d = push_temp(c, ENG_V128);
        emit_op(c, kind == V_SHIFT ? OP_v_shift : OP_v_bin, true);
        emit_word(c, pack(d, sa));
        emit_word(c, pack(sb, sub));
        return;
    }
    case V_BITSELECT: {
        opnd_t m = pop(c, ENG_V128), b = pop(c, ENG_V128), a = pop(c, ENG_V128);
        uint32_t sa = read_slot(c, &a), sb = read_slot(c, &b), sm = read_slot(c, &m);
        uint32_t d = push_temp(c, ENG_V128);
        emit_op(c, OP_v_bitselect, true);
        emit_word(c, pack(d, sa));
        emit_word(c, pack(sb, sm));
        return;
    }
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown opcode 0xfd 0x%x", sub);
        c->r.p = start;
        fail(c, msg);
    }
    }
}
