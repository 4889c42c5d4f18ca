/*
 * numeric.h — WebAssembly's numeric semantics where C's differ: min and max
 * (NaN propagates, -0 is below +0), rounding that quiets a NaN, rotations,
 * saturating truncation. Shared by the interpreter's scalar handlers
 * (interp.c) and the SIMD lanes (simd.c); static inline because the
 * interpreter's handlers must not pay a call for them.
 */
#ifndef WASMFN_ENGINE_NUMERIC_H
#define WASMFN_ENGINE_NUMERIC_H

#include <math.h>
#include <stdint.h>

static inline float eng_fminf(float a, float b)
{
    if (a != a || b != b)
        return a + b; /* a NaN operand gives a quiet NaN */
    if (a == 0 && b == 0)
        return signbit(a) ? a : b;
    return a < b ? a : b;
}

static inline float eng_fmaxf(float a, float b)
{
    if (a != a || b != b)
        return a + b;
    if (a == 0 && b == 0)
        return signbit(a) ? b : a;
    return a > b ? a : b;
}

static inline double eng_fmin(double a, double b)
{
    if (a != a || b != b)
        return a + b;
    if (a == 0 && b == 0)
        return signbit(a) ? a : b;
    return a < b ? a : b;
}

static inline double eng_fmax(double a, double b)
{
    if (a != a || b != b)
        return a + b;
    if (a == 0 && b == 0)
        return signbit(a) ? b : a;
    return a > b ? a : b;
}

/* Rounding functions return their NaN operand unchanged in glibc, so a
 * signalling NaN would come back signalling; wasm wants it quieted. */
#define ROUNDF(fn, a) ((a) != (a) ? (a) + (a) : fn(a))

static inline uint32_t rotl32(uint32_t a, uint32_t b) { b &= 31; return (a << b) | (a >> ((32 - b) & 31)); }
static inline uint32_t rotr32(uint32_t a, uint32_t b) { b &= 31; return (a >> b) | (a << ((32 - b) & 31)); }
static inline uint64_t rotl64(uint64_t a, uint64_t b) { b &= 63; return (a << b) | (a >> ((64 - b) & 63)); }
static inline uint64_t rotr64(uint64_t a, uint64_t b) { b &= 63; return (a >> b) | (a << ((64 - b) & 63)); }

/* Saturating truncations: NaN gives 0, out of range clamps. */
static inline int32_t sat_i32_f64(double f)
{
    if (f != f) return 0;
    if (f <= -2147483649.0) return INT32_MIN;
    if (f >= 2147483648.0) return INT32_MAX;
    return (int32_t)f;
}
static inline uint32_t sat_u32_f64(double f)
{
    if (f != f || f <= -1.0) return 0;
    if (f >= 4294967296.0) return UINT32_MAX;
    return (uint32_t)f;
}
static inline int64_t sat_i64_f64(double f)
{
    if (f != f) return 0;
    if (f < -9223372036854775808.0) return INT64_MIN;
    if (f >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)f;
}
static inline uint64_t sat_u64_f64(double f)
{
    if (f != f || f <= -1.0) return 0;
    if (f >= 18446744073709551616.0) return UINT64_MAX;
    return (uint64_t)f;
}

#endif
