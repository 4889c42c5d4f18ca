/* simd.c — compute kernel built with -msimd128 (mk/wasi.mk): 128-bit
 * vector code through the compilers' vector extensions (which clang turns
 * into WebAssembly SIMD instructions and gcc into SSE), plus loops the
 * auto-vectoriser turns into SIMD: a dot product, a byte scan, saturating
 * arithmetic, min/max, lane-wise float arithmetic. Output must be
 * byte-identical natively and in Wasm. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef uint8_t u8x16 __attribute__((vector_size(16)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint64_t u64x2 __attribute__((vector_size(16)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef double f64x2 __attribute__((vector_size(16)));

#define N 4096

static uint8_t bytes[N];
static int16_t a16[N], b16[N];
static int32_t a32[N], b32[N];
static float af[N], bf[N];

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* An i16 dot product into i32 lanes: the pattern of i32x4.dot_i16x8_s. */
static uint32_t dot16(const int16_t *x, const int16_t *y, int n)
{
    uint32_t acc = 0;
    for (int i = 0; i < n; i++)
        acc += (uint32_t)((int32_t)x[i] * y[i]);
    return acc;
}

/* How many bytes equal c (i8x16.eq + bitmask/popcnt or an add of masks). */
static int count_byte(const uint8_t *p, int n, uint8_t c)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += p[i] == c;
    return k;
}

static void sat_add_u8(uint8_t *d, const uint8_t *x, const uint8_t *y, int n)
{
    for (int i = 0; i < n; i++) {
        unsigned s = (unsigned)x[i] + y[i];
        d[i] = (uint8_t)(s > 255 ? 255 : s);
    }
}

static void minmax32(int32_t *lo, int32_t *hi, const int32_t *x, const int32_t *y, int n)
{
    for (int i = 0; i < n; i++) {
        lo[i] = x[i] < y[i] ? x[i] : y[i];
        hi[i] = x[i] > y[i] ? x[i] : y[i];
    }
}

static void fma_lanes(float *d, const float *x, const float *y, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = x[i] * y[i] + 0.5f; /* two roundings, as C says (no contraction) */
}

int main(void)
{
    for (int i = 0; i < N; i++) {
        uint32_t r = rng();
        bytes[i] = (uint8_t)(r % 7 == 0 ? 'x' : r >> 8);
        a16[i] = (int16_t)r;
        b16[i] = (int16_t)(r >> 16);
        a32[i] = (int32_t)rng();
        b32[i] = (int32_t)rng();
        af[i] = (float)(int32_t)rng() / 65536.0f;
        bf[i] = (float)(rng() % 1000) / 7.0f;
    }

    /* Vector extensions (unsigned lanes: they wrap, as Wasm's do). */
    u32x4 v = {1, 0xfffffffe, 3, 0xfffffffc}, w = {100000, 7, 0xfffffff7, 2147483647};
    for (uint32_t r = 0; r < 1000; r++) {
        v = v * w + (v >> 3) - (w << 2);
        v ^= (u32x4)(v > w) & (u32x4){5, 6, 7, 8};
        w = w + (u32x4){r, 0u - r, r * 3, 1};
    }
    u8x16 b8 = {0};
    memcpy(&b8, bytes, 16);
    for (int r = 0; r < 1000; r++)
        b8 = (b8 + (u8x16){1, 3, 5, 7, 9, 11, 13, 15, 2, 4, 6, 8, 10, 12, 14, 16}) ^ (b8 >> 1);
    u16x8 h = {0};
    memcpy(&h, a16, 16);
    for (int r = 0; r < 1000; r++)
        h = h * (u16x8){3, 5, 7, 9, 65533, 65531, 65529, 65527} + (h >> 2);
    u64x2 q = {0x0123456789abcdefull, 0xfedcba9876543210ull};
    for (int r = 0; r < 100; r++)
        q = (q << 7 | q >> 57) * (u64x2){0x9e3779b97f4a7c15ull, 3};
    f32x4 f = {1.5f, -2.25f, 1e-3f, 3e7f};
    f64x2 d = {1.0 / 3.0, -2.5};
    for (int r = 0; r < 100; r++) {
        f = f * (f32x4){1.01f, 0.99f, 1.5f, 0.5f} + (f32x4){0.25f, -0.25f, 1e-4f, 7.0f};
        d = d / (f64x2){1.0001, 0.999} - (f64x2){1e-9, -1e-9};
    }
    uint64_t hv = fnv(&v, 16, 0xcbf29ce484222325ull);
    hv = fnv(&b8, 16, hv);
    hv = fnv(&h, 16, hv);
    hv = fnv(&q, 16, hv);
    hv = fnv(&f, 16, hv);
    hv = fnv(&d, 16, hv);
    printf("vector extensions: %016" PRIx64 "\n", hv);

    /* Loops the auto-vectoriser takes. */
    printf("dot16: %" PRIu32 "\n", dot16(a16, b16, N));
    printf("count 'x': %d\n", count_byte(bytes, N, 'x'));
    static uint8_t sat[N];
    sat_add_u8(sat, bytes, bytes + 1, N - 1);
    printf("saturating add: %016" PRIx64 "\n", fnv(sat, N - 1, 0xcbf29ce484222325ull));
    static int32_t lo[N], hi[N];
    minmax32(lo, hi, a32, b32, N);
    printf("min/max: %016" PRIx64 "\n", fnv(hi, sizeof hi, fnv(lo, sizeof lo, 0xcbf29ce484222325ull)));
    static float fd[N];
    fma_lanes(fd, af, bf, N);
    printf("float lanes: %016" PRIx64 " (%.6g)\n", fnv(fd, sizeof fd, 0xcbf29ce484222325ull), fd[N / 2]);
    return 0;
}
