/*
 * simd.c — the semantics of WebAssembly's fixed-width SIMD (v128) for the
 * interpreter.
 *
 * interp.c decodes a v_* instruction (ops.h), copies its v128 operands out
 * of their frame slots and calls one of these functions with the
 * instruction's 0xFD sub-opcode, the spec's own number; results go back to
 * the frame the same way. One switch per class of instruction keeps the
 * interpreter's label table (and its scalar fast path) as it was: SIMD pays
 * a call and a switch per instruction, scalar code nothing.
 *
 * Everything is plain C over lanes; the host is little-endian (x86-64), as
 * the spec's lane order is, so lane i of an i32x4 is u32[i]. The float
 * rules follow the spec: arithmetic lets the hardware produce NaNs (which
 * are then arithmetic or canonical NaNs, as the spec allows), min and max
 * propagate NaN and order -0 below +0, pmin/pmax are the C comparisons,
 * trunc_sat saturates and maps NaN to 0. Sub-opcodes the validator never
 * lets through (a forged image) give zero rather than anything undefined.
 */
#include "engine/internal.h"
#include "engine/numeric.h"

#include <math.h>

/* ---- helpers ---- */

static int8_t sat_s8(int32_t v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }
static uint8_t sat_u8(int32_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }
static int16_t sat_s16(int32_t v) { return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v); }
static uint16_t sat_u16(int32_t v) { return (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v); }

/* Rounding that keeps NaNs quiet (a signalling NaN in gives a NaN out). */
static float f32_round(int how, float a)
{
    if (a != a)
        return a + a;
    switch (how) {
    case 0: return ceilf(a);
    case 1: return floorf(a);
    case 2: return truncf(a);
    default: return nearbyintf(a);
    }
}
static double f64_round(int how, double a)
{
    if (a != a)
        return a + a;
    switch (how) {
    case 0: return ceil(a);
    case 1: return floor(a);
    case 2: return trunc(a);
    default: return nearbyint(a);
    }
}

/* ---- loads ---- */

uint32_t eng_simd_load_bytes(uint32_t sub)
{
    switch (sub) {
    case 0x00: return 16;
    case 0x07: return 1;
    case 0x08: return 2;
    case 0x09: case 0x5C: return 4;
    default: return 8; /* 0x01..0x06, 0x0A, 0x5D */
    }
}

void eng_simd_load(uint32_t sub, eng_v128_t *d, const uint8_t *p)
{
    eng_v128_t r;
    memset(&r, 0, sizeof r);
    uint8_t b[8];
    switch (sub) {
    case 0x00: memcpy(&r, p, 16); break;
    case 0x01: memcpy(b, p, 8); for (int i = 0; i < 8; i++) r.i16[i] = (int8_t)b[i]; break;
    case 0x02: memcpy(b, p, 8); for (int i = 0; i < 8; i++) r.u16[i] = b[i]; break;
    case 0x03: { int16_t h[4]; memcpy(h, p, 8); for (int i = 0; i < 4; i++) r.i32[i] = h[i]; break; }
    case 0x04: { uint16_t h[4]; memcpy(h, p, 8); for (int i = 0; i < 4; i++) r.u32[i] = h[i]; break; }
    case 0x05: { int32_t w[2]; memcpy(w, p, 8); for (int i = 0; i < 2; i++) r.i64[i] = w[i]; break; }
    case 0x06: { uint32_t w[2]; memcpy(w, p, 8); for (int i = 0; i < 2; i++) r.u64[i] = w[i]; break; }
    case 0x07: memset(r.u8, p[0], 16); break;
    case 0x08: { uint16_t h; memcpy(&h, p, 2); for (int i = 0; i < 8; i++) r.u16[i] = h; break; }
    case 0x09: { uint32_t w; memcpy(&w, p, 4); for (int i = 0; i < 4; i++) r.u32[i] = w; break; }
    case 0x0A: { uint64_t w; memcpy(&w, p, 8); r.u64[0] = r.u64[1] = w; break; }
    case 0x5C: memcpy(&r.u32[0], p, 4); break;
    case 0x5D: memcpy(&r.u64[0], p, 8); break;
    default: break;
    }
    *d = r;
}

/* ---- lanes ---- */

void eng_simd_splat(uint32_t sub, eng_v128_t *d, uint64_t x)
{
    eng_v128_t r;
    memset(&r, 0, sizeof r);
    switch (sub) {
    case 0x0F: memset(r.u8, (uint8_t)x, 16); break;
    case 0x10: for (int i = 0; i < 8; i++) r.u16[i] = (uint16_t)x; break;
    case 0x11: case 0x13: for (int i = 0; i < 4; i++) r.u32[i] = (uint32_t)x; break;
    case 0x12: case 0x14: r.u64[0] = r.u64[1] = x; break;
    default: break;
    }
    *d = r;
}

/* sl = sub | lane << 8; lanes are masked so that no sub and lane indexes
 * outside the vector. */
uint64_t eng_simd_extract(uint32_t sl, const eng_v128_t *a)
{
    uint32_t lane = sl >> 8;
    switch (sl & 0xFF) {
    case 0x15: return (uint32_t)(int32_t)a->i8[lane & 15];
    case 0x16: return a->u8[lane & 15];
    case 0x18: return (uint32_t)(int32_t)a->i16[lane & 7];
    case 0x19: return a->u16[lane & 7];
    case 0x1B: case 0x1F: return a->u32[lane & 3];
    case 0x1D: case 0x21: return a->u64[lane & 1];
    default: return 0;
    }
}

void eng_simd_replace(uint32_t sl, eng_v128_t *d, const eng_v128_t *a, uint64_t x)
{
    uint32_t lane = sl >> 8;
    eng_v128_t r = *a;
    switch (sl & 0xFF) {
    case 0x17: r.u8[lane & 15] = (uint8_t)x; break;
    case 0x1A: r.u16[lane & 7] = (uint16_t)x; break;
    case 0x1C: case 0x20: r.u32[lane & 3] = (uint32_t)x; break;
    case 0x1E: case 0x22: r.u64[lane & 1] = x; break;
    default: break;
    }
    *d = r;
}

void eng_simd_shuffle(eng_v128_t *d, const eng_v128_t *a, const eng_v128_t *b, const uint8_t lanes[16])
{
    eng_v128_t r;
    for (int i = 0; i < 16; i++) {
        uint8_t l = lanes[i] & 31;
        r.u8[i] = l < 16 ? a->u8[l] : b->u8[l - 16];
    }
    *d = r;
}

/* ---- tests (to i32) ---- */

uint32_t eng_simd_test(uint32_t sub, const eng_v128_t *a)
{
    uint32_t r = 0;
    switch (sub) {
    case 0x53: return (a->u64[0] | a->u64[1]) != 0;
    case 0x63: for (int i = 0; i < 16; i++) if (!a->u8[i]) return 0; return 1;
    case 0x83: for (int i = 0; i < 8; i++) if (!a->u16[i]) return 0; return 1;
    case 0xA3: for (int i = 0; i < 4; i++) if (!a->u32[i]) return 0; return 1;
    case 0xC3: return a->u64[0] && a->u64[1];
    case 0x64: for (int i = 0; i < 16; i++) r |= (uint32_t)(a->u8[i] >> 7) << i; return r;
    case 0x84: for (int i = 0; i < 8; i++) r |= (uint32_t)(a->u16[i] >> 15) << i; return r;
    case 0xA4: for (int i = 0; i < 4; i++) r |= (a->u32[i] >> 31) << i; return r;
    case 0xC4: for (int i = 0; i < 2; i++) r |= (uint32_t)(a->u64[i] >> 63) << i; return r;
    default: return 0;
    }
}

/* ---- shifts (the count is taken modulo the lane width) ---- */

void eng_simd_shift(uint32_t sub, eng_v128_t *d, const eng_v128_t *a, uint32_t n)
{
    eng_v128_t r;
    memset(&r, 0, sizeof r);
    switch (sub) {
    case 0x6B: for (int i = 0; i < 16; i++) r.u8[i] = (uint8_t)(a->u8[i] << (n & 7)); break;
    case 0x6C: for (int i = 0; i < 16; i++) r.i8[i] = (int8_t)(a->i8[i] >> (n & 7)); break;
    case 0x6D: for (int i = 0; i < 16; i++) r.u8[i] = (uint8_t)(a->u8[i] >> (n & 7)); break;
    case 0x8B: for (int i = 0; i < 8; i++) r.u16[i] = (uint16_t)(a->u16[i] << (n & 15)); break;
    case 0x8C: for (int i = 0; i < 8; i++) r.i16[i] = (int16_t)(a->i16[i] >> (n & 15)); break;
    case 0x8D: for (int i = 0; i < 8; i++) r.u16[i] = (uint16_t)(a->u16[i] >> (n & 15)); break;
    case 0xAB: for (int i = 0; i < 4; i++) r.u32[i] = a->u32[i] << (n & 31); break;
    case 0xAC: for (int i = 0; i < 4; i++) r.i32[i] = a->i32[i] >> (n & 31); break;
    case 0xAD: for (int i = 0; i < 4; i++) r.u32[i] = a->u32[i] >> (n & 31); break;
    case 0xCB: for (int i = 0; i < 2; i++) r.u64[i] = a->u64[i] << (n & 63); break;
    case 0xCC: for (int i = 0; i < 2; i++) r.i64[i] = a->i64[i] >> (n & 63); break;
    case 0xCD: for (int i = 0; i < 2; i++) r.u64[i] = a->u64[i] >> (n & 63); break;
    default: break;
    }
    *d = r;
}

/* ---- unary ---- */

#define LANES(n, expr)                                                                             \
    do {                                                                                           \
        for (int i = 0; i < (n); i++)                                                              \
            expr;                                                                                  \
    } while (0)

void eng_simd_un(uint32_t sub, eng_v128_t *d, const eng_v128_t *a)
{
    eng_v128_t r;
    memset(&r, 0, sizeof r);
    switch (sub) {
    case 0x4D: r.u64[0] = ~a->u64[0], r.u64[1] = ~a->u64[1]; break;
    case 0x5E: LANES(2, r.f32[i] = (float)a->f64[i]); break;                 /* demote, zero */
    case 0x5F: LANES(2, r.f64[i] = (double)a->f32[i]); break;                /* promote low */
    case 0x60: LANES(16, r.u8[i] = a->i8[i] < 0 ? (uint8_t)-a->u8[i] : a->u8[i]); break;
    case 0x61: LANES(16, r.u8[i] = (uint8_t)-a->u8[i]); break;
    case 0x62: LANES(16, r.u8[i] = (uint8_t)__builtin_popcount(a->u8[i])); break;
    case 0x67: LANES(4, r.f32[i] = f32_round(0, a->f32[i])); break;
    case 0x68: LANES(4, r.f32[i] = f32_round(1, a->f32[i])); break;
    case 0x69: LANES(4, r.f32[i] = f32_round(2, a->f32[i])); break;
    case 0x6A: LANES(4, r.f32[i] = f32_round(3, a->f32[i])); break;
    case 0x74: LANES(2, r.f64[i] = f64_round(0, a->f64[i])); break;
    case 0x75: LANES(2, r.f64[i] = f64_round(1, a->f64[i])); break;
    case 0x7A: LANES(2, r.f64[i] = f64_round(2, a->f64[i])); break;
    case 0x94: LANES(2, r.f64[i] = f64_round(3, a->f64[i])); break;
    case 0x7C: LANES(8, r.i16[i] = (int16_t)(a->i8[2 * i] + a->i8[2 * i + 1])); break;
    case 0x7D: LANES(8, r.u16[i] = (uint16_t)(a->u8[2 * i] + a->u8[2 * i + 1])); break;
    case 0x7E: LANES(4, r.i32[i] = a->i16[2 * i] + a->i16[2 * i + 1]); break;
    case 0x7F: LANES(4, r.u32[i] = (uint32_t)a->u16[2 * i] + a->u16[2 * i + 1]); break;
    case 0x80: LANES(8, r.u16[i] = a->i16[i] < 0 ? (uint16_t)-a->u16[i] : a->u16[i]); break;
    case 0x81: LANES(8, r.u16[i] = (uint16_t)-a->u16[i]); break;
    case 0x87: LANES(8, r.i16[i] = a->i8[i]); break;
    case 0x88: LANES(8, r.i16[i] = a->i8[i + 8]); break;
    case 0x89: LANES(8, r.u16[i] = a->u8[i]); break;
    case 0x8A: LANES(8, r.u16[i] = a->u8[i + 8]); break;
    case 0xA0: LANES(4, r.u32[i] = a->i32[i] < 0 ? -a->u32[i] : a->u32[i]); break;
    case 0xA1: LANES(4, r.u32[i] = -a->u32[i]); break;
    case 0xA7: LANES(4, r.i32[i] = a->i16[i]); break;
    case 0xA8: LANES(4, r.i32[i] = a->i16[i + 4]); break;
    case 0xA9: LANES(4, r.u32[i] = a->u16[i]); break;
    case 0xAA: LANES(4, r.u32[i] = a->u16[i + 4]); break;
    case 0xC0: LANES(2, r.u64[i] = a->i64[i] < 0 ? -a->u64[i] : a->u64[i]); break;
    case 0xC1: LANES(2, r.u64[i] = -a->u64[i]); break;
    case 0xC7: LANES(2, r.i64[i] = a->i32[i]); break;
    case 0xC8: LANES(2, r.i64[i] = a->i32[i + 2]); break;
    case 0xC9: LANES(2, r.u64[i] = a->u32[i]); break;
    case 0xCA: LANES(2, r.u64[i] = a->u32[i + 2]); break;
    case 0xE0: LANES(4, r.u32[i] = a->u32[i] & 0x7FFFFFFFu); break;
    case 0xE1: LANES(4, r.u32[i] = a->u32[i] ^ 0x80000000u); break;
    case 0xE3: LANES(4, r.f32[i] = sqrtf(a->f32[i])); break;
    case 0xEC: LANES(2, r.u64[i] = a->u64[i] & 0x7FFFFFFFFFFFFFFFull); break;
    case 0xED: LANES(2, r.u64[i] = a->u64[i] ^ 0x8000000000000000ull); break;
    case 0xEF: LANES(2, r.f64[i] = sqrt(a->f64[i])); break;
    case 0xF8: LANES(4, r.i32[i] = sat_i32_f64(a->f32[i])); break;
    case 0xF9: LANES(4, r.u32[i] = sat_u32_f64(a->f32[i])); break;
    case 0xFA: LANES(4, r.f32[i] = (float)a->i32[i]); break;
    case 0xFB: LANES(4, r.f32[i] = (float)a->u32[i]); break;
    case 0xFC: LANES(2, r.i32[i] = sat_i32_f64(a->f64[i])); break;
    case 0xFD: LANES(2, r.u32[i] = sat_u32_f64(a->f64[i])); break;
    case 0xFE: LANES(2, r.f64[i] = a->i32[i]); break;
    case 0xFF: LANES(2, r.f64[i] = a->u32[i]); break;
    default: break;
    }
    *d = r;
}

/* ---- binary ---- */

/* Comparisons set a lane to all ones when true. */
#define CMP(n, field, mask, op) LANES(n, r.field[i] = a->field[i] op b->field[i] ? mask : 0)

void eng_simd_bin(uint32_t sub, eng_v128_t *d, const eng_v128_t *a, const eng_v128_t *b)
{
    eng_v128_t r;
    memset(&r, 0, sizeof r);
    switch (sub) {
    case 0x0E: LANES(16, r.u8[i] = b->u8[i] < 16 ? a->u8[b->u8[i]] : 0); break; /* swizzle */
    /* i8x16 comparisons */
    case 0x23: CMP(16, u8, 0xFF, ==); break;
    case 0x24: CMP(16, u8, 0xFF, !=); break;
    case 0x25: LANES(16, r.u8[i] = a->i8[i] < b->i8[i] ? 0xFF : 0); break;
    case 0x26: CMP(16, u8, 0xFF, <); break;
    case 0x27: LANES(16, r.u8[i] = a->i8[i] > b->i8[i] ? 0xFF : 0); break;
    case 0x28: CMP(16, u8, 0xFF, >); break;
    case 0x29: LANES(16, r.u8[i] = a->i8[i] <= b->i8[i] ? 0xFF : 0); break;
    case 0x2A: CMP(16, u8, 0xFF, <=); break;
    case 0x2B: LANES(16, r.u8[i] = a->i8[i] >= b->i8[i] ? 0xFF : 0); break;
    case 0x2C: CMP(16, u8, 0xFF, >=); break;
    /* i16x8 */
    case 0x2D: CMP(8, u16, 0xFFFF, ==); break;
    case 0x2E: CMP(8, u16, 0xFFFF, !=); break;
    case 0x2F: LANES(8, r.u16[i] = a->i16[i] < b->i16[i] ? 0xFFFF : 0); break;
    case 0x30: CMP(8, u16, 0xFFFF, <); break;
    case 0x31: LANES(8, r.u16[i] = a->i16[i] > b->i16[i] ? 0xFFFF : 0); break;
    case 0x32: CMP(8, u16, 0xFFFF, >); break;
    case 0x33: LANES(8, r.u16[i] = a->i16[i] <= b->i16[i] ? 0xFFFF : 0); break;
    case 0x34: CMP(8, u16, 0xFFFF, <=); break;
    case 0x35: LANES(8, r.u16[i] = a->i16[i] >= b->i16[i] ? 0xFFFF : 0); break;
    case 0x36: CMP(8, u16, 0xFFFF, >=); break;
    /* i32x4 */
    case 0x37: CMP(4, u32, UINT32_MAX, ==); break;
    case 0x38: CMP(4, u32, UINT32_MAX, !=); break;
    case 0x39: LANES(4, r.u32[i] = a->i32[i] < b->i32[i] ? UINT32_MAX : 0); break;
    case 0x3A: CMP(4, u32, UINT32_MAX, <); break;
    case 0x3B: LANES(4, r.u32[i] = a->i32[i] > b->i32[i] ? UINT32_MAX : 0); break;
    case 0x3C: CMP(4, u32, UINT32_MAX, >); break;
    case 0x3D: LANES(4, r.u32[i] = a->i32[i] <= b->i32[i] ? UINT32_MAX : 0); break;
    case 0x3E: CMP(4, u32, UINT32_MAX, <=); break;
    case 0x3F: LANES(4, r.u32[i] = a->i32[i] >= b->i32[i] ? UINT32_MAX : 0); break;
    case 0x40: CMP(4, u32, UINT32_MAX, >=); break;
    /* f32x4 */
    case 0x41: LANES(4, r.u32[i] = a->f32[i] == b->f32[i] ? UINT32_MAX : 0); break;
    case 0x42: LANES(4, r.u32[i] = a->f32[i] != b->f32[i] ? UINT32_MAX : 0); break;
    case 0x43: LANES(4, r.u32[i] = a->f32[i] < b->f32[i] ? UINT32_MAX : 0); break;
    case 0x44: LANES(4, r.u32[i] = a->f32[i] > b->f32[i] ? UINT32_MAX : 0); break;
    case 0x45: LANES(4, r.u32[i] = a->f32[i] <= b->f32[i] ? UINT32_MAX : 0); break;
    case 0x46: LANES(4, r.u32[i] = a->f32[i] >= b->f32[i] ? UINT32_MAX : 0); break;
    /* f64x2 */
    case 0x47: LANES(2, r.u64[i] = a->f64[i] == b->f64[i] ? UINT64_MAX : 0); break;
    case 0x48: LANES(2, r.u64[i] = a->f64[i] != b->f64[i] ? UINT64_MAX : 0); break;
    case 0x49: LANES(2, r.u64[i] = a->f64[i] < b->f64[i] ? UINT64_MAX : 0); break;
    case 0x4A: LANES(2, r.u64[i] = a->f64[i] > b->f64[i] ? UINT64_MAX : 0); break;
    case 0x4B: LANES(2, r.u64[i] = a->f64[i] <= b->f64[i] ? UINT64_MAX : 0); break;
    case 0x4C: LANES(2, r.u64[i] = a->f64[i] >= b->f64[i] ? UINT64_MAX : 0); break;
    /* bitwise */
    case 0x4E: LANES(2, r.u64[i] = a->u64[i] & b->u64[i]); break;
    case 0x4F: LANES(2, r.u64[i] = a->u64[i] & ~b->u64[i]); break;
    case 0x50: LANES(2, r.u64[i] = a->u64[i] | b->u64[i]); break;
    case 0x51: LANES(2, r.u64[i] = a->u64[i] ^ b->u64[i]); break;
    /* narrowing: a's lanes then b's */
    case 0x65: LANES(16, r.i8[i] = sat_s8(i < 8 ? a->i16[i] : b->i16[i - 8])); break;
    case 0x66: LANES(16, r.u8[i] = sat_u8(i < 8 ? a->i16[i] : b->i16[i - 8])); break;
    case 0x85: LANES(8, r.i16[i] = sat_s16(i < 4 ? a->i32[i] : b->i32[i - 4])); break;
    case 0x86: {
        for (int i = 0; i < 8; i++) {
            int32_t v = i < 4 ? a->i32[i] : b->i32[i - 4];
            r.u16[i] = sat_u16(v);
        }
        break;
    }
    /* i8x16 arithmetic */
    case 0x6E: LANES(16, r.u8[i] = (uint8_t)(a->u8[i] + b->u8[i])); break;
    case 0x6F: LANES(16, r.i8[i] = sat_s8(a->i8[i] + b->i8[i])); break;
    case 0x70: LANES(16, r.u8[i] = sat_u8(a->u8[i] + b->u8[i])); break;
    case 0x71: LANES(16, r.u8[i] = (uint8_t)(a->u8[i] - b->u8[i])); break;
    case 0x72: LANES(16, r.i8[i] = sat_s8(a->i8[i] - b->i8[i])); break;
    case 0x73: LANES(16, r.u8[i] = sat_u8(a->u8[i] - b->u8[i])); break;
    case 0x76: LANES(16, r.i8[i] = a->i8[i] < b->i8[i] ? a->i8[i] : b->i8[i]); break;
    case 0x77: LANES(16, r.u8[i] = a->u8[i] < b->u8[i] ? a->u8[i] : b->u8[i]); break;
    case 0x78: LANES(16, r.i8[i] = a->i8[i] > b->i8[i] ? a->i8[i] : b->i8[i]); break;
    case 0x79: LANES(16, r.u8[i] = a->u8[i] > b->u8[i] ? a->u8[i] : b->u8[i]); break;
    case 0x7B: LANES(16, r.u8[i] = (uint8_t)((a->u8[i] + b->u8[i] + 1) >> 1)); break;
    /* i16x8 arithmetic */
    case 0x82: /* q15mulr_sat_s */
        LANES(8, r.i16[i] = sat_s16((a->i16[i] * b->i16[i] + 0x4000) >> 15));
        break;
    case 0x8E: LANES(8, r.u16[i] = (uint16_t)(a->u16[i] + b->u16[i])); break;
    case 0x8F: LANES(8, r.i16[i] = sat_s16(a->i16[i] + b->i16[i])); break;
    case 0x90: LANES(8, r.u16[i] = sat_u16(a->u16[i] + b->u16[i])); break;
    case 0x91: LANES(8, r.u16[i] = (uint16_t)(a->u16[i] - b->u16[i])); break;
    case 0x92: LANES(8, r.i16[i] = sat_s16(a->i16[i] - b->i16[i])); break;
    case 0x93: LANES(8, r.u16[i] = sat_u16(a->u16[i] - b->u16[i])); break;
    case 0x95: LANES(8, r.u16[i] = (uint16_t)((uint32_t)a->u16[i] * b->u16[i])); break;
    case 0x96: LANES(8, r.i16[i] = a->i16[i] < b->i16[i] ? a->i16[i] : b->i16[i]); break;
    case 0x97: LANES(8, r.u16[i] = a->u16[i] < b->u16[i] ? a->u16[i] : b->u16[i]); break;
    case 0x98: LANES(8, r.i16[i] = a->i16[i] > b->i16[i] ? a->i16[i] : b->i16[i]); break;
    case 0x99: LANES(8, r.u16[i] = a->u16[i] > b->u16[i] ? a->u16[i] : b->u16[i]); break;
    case 0x9B: LANES(8, r.u16[i] = (uint16_t)((a->u16[i] + b->u16[i] + 1) >> 1)); break;
    case 0x9C: LANES(8, r.i16[i] = (int16_t)(a->i8[i] * b->i8[i])); break;
    case 0x9D: LANES(8, r.i16[i] = (int16_t)(a->i8[i + 8] * b->i8[i + 8])); break;
    case 0x9E: LANES(8, r.u16[i] = (uint16_t)(a->u8[i] * b->u8[i])); break;
    case 0x9F: LANES(8, r.u16[i] = (uint16_t)(a->u8[i + 8] * b->u8[i + 8])); break;
    /* i32x4 arithmetic */
    case 0xAE: LANES(4, r.u32[i] = a->u32[i] + b->u32[i]); break;
    case 0xB1: LANES(4, r.u32[i] = a->u32[i] - b->u32[i]); break;
    case 0xB5: LANES(4, r.u32[i] = a->u32[i] * b->u32[i]); break;
    case 0xB6: LANES(4, r.i32[i] = a->i32[i] < b->i32[i] ? a->i32[i] : b->i32[i]); break;
    case 0xB7: LANES(4, r.u32[i] = a->u32[i] < b->u32[i] ? a->u32[i] : b->u32[i]); break;
    case 0xB8: LANES(4, r.i32[i] = a->i32[i] > b->i32[i] ? a->i32[i] : b->i32[i]); break;
    case 0xB9: LANES(4, r.u32[i] = a->u32[i] > b->u32[i] ? a->u32[i] : b->u32[i]); break;
    case 0xBA: /* dot: the pairs' products summed (wraps only for -32768^2 * 2) */
        LANES(4, r.u32[i] = (uint32_t)(a->i16[2 * i] * b->i16[2 * i]) +
                            (uint32_t)(a->i16[2 * i + 1] * b->i16[2 * i + 1]));
        break;
    case 0xBC: LANES(4, r.i32[i] = a->i16[i] * b->i16[i]); break;
    case 0xBD: LANES(4, r.i32[i] = a->i16[i + 4] * b->i16[i + 4]); break;
    case 0xBE: LANES(4, r.u32[i] = (uint32_t)a->u16[i] * b->u16[i]); break;
    case 0xBF: LANES(4, r.u32[i] = (uint32_t)a->u16[i + 4] * b->u16[i + 4]); break;
    /* i64x2 */
    case 0xCE: LANES(2, r.u64[i] = a->u64[i] + b->u64[i]); break;
    case 0xD1: LANES(2, r.u64[i] = a->u64[i] - b->u64[i]); break;
    case 0xD5: LANES(2, r.u64[i] = a->u64[i] * b->u64[i]); break;
    case 0xD6: CMP(2, u64, UINT64_MAX, ==); break;
    case 0xD7: CMP(2, u64, UINT64_MAX, !=); break;
    case 0xD8: LANES(2, r.u64[i] = a->i64[i] < b->i64[i] ? UINT64_MAX : 0); break;
    case 0xD9: LANES(2, r.u64[i] = a->i64[i] > b->i64[i] ? UINT64_MAX : 0); break;
    case 0xDA: LANES(2, r.u64[i] = a->i64[i] <= b->i64[i] ? UINT64_MAX : 0); break;
    case 0xDB: LANES(2, r.u64[i] = a->i64[i] >= b->i64[i] ? UINT64_MAX : 0); break;
    case 0xDC: LANES(2, r.i64[i] = (int64_t)a->i32[i] * b->i32[i]); break;
    case 0xDD: LANES(2, r.i64[i] = (int64_t)a->i32[i + 2] * b->i32[i + 2]); break;
    case 0xDE: LANES(2, r.u64[i] = (uint64_t)a->u32[i] * b->u32[i]); break;
    case 0xDF: LANES(2, r.u64[i] = (uint64_t)a->u32[i + 2] * b->u32[i + 2]); break;
    /* f32x4 */
    case 0xE4: LANES(4, r.f32[i] = a->f32[i] + b->f32[i]); break;
    case 0xE5: LANES(4, r.f32[i] = a->f32[i] - b->f32[i]); break;
    case 0xE6: LANES(4, r.f32[i] = a->f32[i] * b->f32[i]); break;
    case 0xE7: LANES(4, r.f32[i] = a->f32[i] / b->f32[i]); break;
    case 0xE8: LANES(4, r.f32[i] = eng_fminf(a->f32[i], b->f32[i])); break;
    case 0xE9: LANES(4, r.f32[i] = eng_fmaxf(a->f32[i], b->f32[i])); break;
    case 0xEA: LANES(4, r.u32[i] = b->f32[i] < a->f32[i] ? b->u32[i] : a->u32[i]); break;
    case 0xEB: LANES(4, r.u32[i] = a->f32[i] < b->f32[i] ? b->u32[i] : a->u32[i]); break;
    /* f64x2 */
    case 0xF0: LANES(2, r.f64[i] = a->f64[i] + b->f64[i]); break;
    case 0xF1: LANES(2, r.f64[i] = a->f64[i] - b->f64[i]); break;
    case 0xF2: LANES(2, r.f64[i] = a->f64[i] * b->f64[i]); break;
    case 0xF3: LANES(2, r.f64[i] = a->f64[i] / b->f64[i]); break;
    case 0xF4: LANES(2, r.f64[i] = eng_fmin(a->f64[i], b->f64[i])); break;
    case 0xF5: LANES(2, r.f64[i] = eng_fmax(a->f64[i], b->f64[i])); break;
    case 0xF6: LANES(2, r.u64[i] = b->f64[i] < a->f64[i] ? b->u64[i] : a->u64[i]); break;
    case 0xF7: LANES(2, r.u64[i] = a->f64[i] < b->f64[i] ? b->u64[i] : a->u64[i]); break;
    default: break;
    }
    *d = r;
}
