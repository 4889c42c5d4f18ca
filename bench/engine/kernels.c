/*
 * kernels.c — the compute kernels of the engine benchmark.
 *
 * The same source is built twice: natively with gcc -O2 (linked into
 * engine_bench) and to wasm32 with clang -O2 and no libc (kernels.wasm),
 * which engine_bench runs in our engine and node_bench.mjs runs in V8. Each
 * kernel takes one size parameter and returns a 32-bit checksum, so the three
 * runs can be checked against each other: a differing checksum is an engine
 * bug, not noise.
 *
 * What each kernel stresses:
 *   fib      recursive calls (call/return, locals, small integer ops)
 *   sieve    nested loops with byte loads and stores
 *   matmul   f64 multiply-add in a triple loop over linear memory
 *   fnv      integer hashing: xorshift fill, FNV-1a over a buffer, shifts/muls
 *   qsort    recursion plus data-dependent branches and i32 loads/stores
 *   qsortcb  a libc-style qsort(base, n, size, cmp): every comparison is a
 *            call through a function pointer (call_indirect in wasm)
 *   nbody    f64 arithmetic with sqrt over a small array of structs
 *   ikj      i-k-j float matrix multiply of fixed size, the kind of loop
 *            gcc -O2 vectorises
 *   dot16    an int16 dot product and a byte count over 64 KiB, the loops
 *            SIMD is for
 *
 * mk/bench.mk builds this file twice for wasm: kernels.wasm (WebAssembly
 * without SIMD) and kernels_simd.wasm (-msimd128, where clang vectorises
 * ikj and dot16 into v128 code); engine_bench runs ikj and dot16 from
 * both.
 *
 * No libc: buffers are static arrays (zero pages in wasm, .bss natively).
 */
#include <stdint.h>

#ifdef __wasm__
#define KERNEL(name) __attribute__((export_name(#name), visibility("default")))
/* clang may turn loops into calls to these even without a libc. */
void *memset(void *d, int c, unsigned long n)
{
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, unsigned long n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) *p++ = *q++;
    return d;
}
#else
#define KERNEL(name)
#endif

#define MAX_SIEVE (1u << 23)
#define MAX_MAT 320u
#define MAX_BUF (1u << 20)
#define MAX_SORT (1u << 19)
#define NBODIES 5u

static uint8_t sieve_buf[MAX_SIEVE];
static double mat_a[MAX_MAT * MAX_MAT], mat_b[MAX_MAT * MAX_MAT], mat_c[MAX_MAT * MAX_MAT];
static uint8_t hash_buf[MAX_BUF];
static int32_t sort_buf[MAX_SORT];

static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static uint32_t fib_rec(uint32_t n)
{
    return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2);
}

/* fib(n), recursively: about 1.6^n calls. */
KERNEL(fib) uint32_t kernel_fib(uint32_t n)
{
    return fib_rec(n);
}

/* Counts primes below n (capped at MAX_SIEVE), ten times over. */
KERNEL(sieve) uint32_t kernel_sieve(uint32_t n)
{
    if (n > MAX_SIEVE) n = MAX_SIEVE;
    uint32_t total = 0;
    for (int round = 0; round < 10; round++) {
        for (uint32_t i = 0; i < n; i++) sieve_buf[i] = 1;
        uint32_t count = 0;
        for (uint32_t i = 2; i < n; i++) {
            if (!sieve_buf[i]) continue;
            count++;
            for (uint32_t j = i + i; j < n; j += i) sieve_buf[j] = 0;
        }
        total += count;
    }
    return total;
}

/* C = A * B for n x n doubles (n capped at MAX_MAT); checksum of C. */
KERNEL(matmul) uint32_t kernel_matmul(uint32_t n)
{
    if (n > MAX_MAT) n = MAX_MAT;
    for (uint32_t i = 0; i < n * n; i++) {
        mat_a[i] = (double)(i % 17) * 0.25 - 1.0;
        mat_b[i] = (double)(i % 13) * 0.5 + 0.125;
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            double sum = 0.0;
            for (uint32_t k = 0; k < n; k++) sum += mat_a[i * n + k] * mat_b[k * n + j];
            mat_c[i * n + j] = sum;
        }
    }
    uint32_t h = 0;
    for (uint32_t i = 0; i < n * n; i++) h = h * 31u + (uint32_t)(int64_t)(mat_c[i] * 8.0);
    return h;
}

/* Fills a MAX_BUF buffer with xorshift output and FNV-1a hashes it,
 * n times, each round seeded with the previous hash. */
KERNEL(fnv) uint32_t kernel_fnv(uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t round = 0; round < n; round++) {
        uint32_t s = h | 1u;
        for (uint32_t i = 0; i < MAX_BUF; i += 4) {
            uint32_t x = xorshift32(&s);
            hash_buf[i] = (uint8_t)x;
            hash_buf[i + 1] = (uint8_t)(x >> 8);
            hash_buf[i + 2] = (uint8_t)(x >> 16);
            hash_buf[i + 3] = (uint8_t)(x >> 24);
        }
        for (uint32_t i = 0; i < MAX_BUF; i++) {
            h ^= hash_buf[i];
            h *= 16777619u;
        }
    }
    return h;
}

static void quicksort(int32_t *a, int32_t lo, int32_t hi)
{
    while (lo < hi) {
        int32_t pivot = a[lo + (hi - lo) / 2];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                int32_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        /* Recurse into the smaller half, loop on the larger. */
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
}

/* Sorts n pseudo-random int32s (n capped at MAX_SORT); checksum of the
 * sorted order. */
KERNEL(qsort) uint32_t kernel_qsort(uint32_t n)
{
    if (n > MAX_SORT) n = MAX_SORT;
    uint32_t s = 12345;
    for (uint32_t i = 0; i < n; i++) sort_buf[i] = (int32_t)xorshift32(&s);
    if (n) quicksort(sort_buf, 0, (int32_t)n - 1);
    uint32_t h = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i && sort_buf[i - 1] > sort_buf[i]) return 0; /* not sorted */
        h = h * 33u + (uint32_t)sort_buf[i];
    }
    return h;
}

/* ---- qsort with a comparator ---- */

typedef int (*cmp_fn)(const void *, const void *);

typedef struct rec {
    int32_t key;
    uint32_t tag;
} rec_t;

static int cmp_key_asc(const void *a, const void *b)
{
    int32_t x = ((const rec_t *)a)->key, y = ((const rec_t *)b)->key;
    return (x > y) - (x < y);
}

static int cmp_key_desc(const void *a, const void *b) { return cmp_key_asc(b, a); }

static void swap_bytes(unsigned char *a, unsigned char *b, uint32_t size)
{
    while (size--) {
        unsigned char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

/* A generic sort with libc qsort's interface: quicksort on bytes, the
 * comparator called through a pointer. */
static void sort_generic(void *base, uint32_t n, uint32_t size, cmp_fn cmp)
{
    unsigned char *a = base;
    while (n > 1) {
        if (n < 8) { /* insertion sort */
            for (uint32_t i = 1; i < n; i++)
                for (uint32_t j = i; j > 0 && cmp(a + (j - 1) * size, a + j * size) > 0; j--)
                    swap_bytes(a + (j - 1) * size, a + j * size, size);
            return;
        }
        swap_bytes(a, a + (n / 2) * size, size); /* pivot to the front */
        uint32_t last = 0;
        for (uint32_t i = 1; i < n; i++)
            if (cmp(a + i * size, a) < 0)
                swap_bytes(a + ++last * size, a + i * size, size);
        swap_bytes(a, a + last * size, size);
        /* Recurse into the smaller side, loop on the larger. */
        if (last < n - last - 1) {
            sort_generic(a, last, size, cmp);
            a += (last + 1) * size;
            n -= last + 1;
        } else {
            sort_generic(a + (last + 1) * size, n - last - 1, size, cmp);
            n = last;
        }
    }
}

static rec_t rec_buf[MAX_SORT / 2];
static cmp_fn cmps[2] = {cmp_key_asc, cmp_key_desc};

/* Sorts n pseudo-random records (capped at MAX_SORT / 2) by key with the
 * comparator the size's parity picks (so no compiler can inline it);
 * checksum of the order. */
KERNEL(qsortcb) uint32_t kernel_qsortcb(uint32_t n)
{
    if (n > MAX_SORT / 2) n = MAX_SORT / 2;
    uint32_t s = 777;
    for (uint32_t i = 0; i < n; i++) {
        rec_buf[i].key = (int32_t)(xorshift32(&s) >> 8);
        rec_buf[i].tag = i;
    }
    sort_generic(rec_buf, n, sizeof(rec_t), cmps[n & 1]);
    uint32_t h = 0;
    for (uint32_t i = 0; i < n; i++) h = h * 33u + (uint32_t)rec_buf[i].key;
    return h;
}

/* ---- a loop compilers vectorise ---- */

#define IKJ 192u
static float ikj_a[IKJ * IKJ], ikj_b[IKJ * IKJ], ikj_c[IKJ * IKJ];

/* reps times C = A * B for fixed 192x192 floats, i-k-j order: the inner
 * loop runs over contiguous rows with a constant trip count, which gcc -O2
 * vectorises. Every product and sum is exact (multiples of 0.25 below
 * 2^22), so any order of addition gives the same checksum. */
KERNEL(ikj) uint32_t kernel_ikj(uint32_t reps)
{
    for (uint32_t i = 0; i < IKJ * IKJ; i++) {
        ikj_a[i] = (float)(i % 7) - 3.0f;
        ikj_b[i] = (float)(i % 5) * 0.25f;
    }
    for (uint32_t r = 0; r < reps; r++) {
        for (uint32_t i = 0; i < IKJ * IKJ; i++) ikj_c[i] = 0;
        for (uint32_t i = 0; i < IKJ; i++)
            for (uint32_t k = 0; k < IKJ; k++) {
                float a = ikj_a[i * IKJ + k];
                for (uint32_t j = 0; j < IKJ; j++) ikj_c[i * IKJ + j] += a * ikj_b[k * IKJ + j];
            }
    }
    uint32_t h = 0;
    for (uint32_t i = 0; i < IKJ * IKJ; i++) h = h * 31u + (uint32_t)(int32_t)ikj_c[i];
    return h;
}

/* ---- integer SIMD ---- */

#define DOT_N 32768u
static int16_t dot_a[DOT_N], dot_b[DOT_N];
static uint8_t scan_buf[2 * DOT_N];

/* reps times: an int16 dot product into 32 bits (pmaddwd natively,
 * i32x4.dot_i16x8_s or extmul in wasm) and a count of one byte value over
 * 64 KiB (pcmpeqb / i8x16.eq). Integer only: the same checksum whatever
 * the order of additions. */
KERNEL(dot16) uint32_t kernel_dot16(uint32_t reps)
{
    uint32_t s = 12345;
    for (uint32_t i = 0; i < DOT_N; i++) {
        s = s * 1103515245u + 12345u;
        dot_a[i] = (int16_t)(s >> 16);
        dot_b[i] = (int16_t)(s >> 3);
        scan_buf[2 * i] = (uint8_t)(s >> 24);
        scan_buf[2 * i + 1] = (uint8_t)(s >> 11);
    }
    uint32_t h = 0;
    for (uint32_t r = 0; r < reps; r++) {
        uint32_t acc = 0; /* wraps, as the wasm does */
        for (uint32_t i = 0; i < DOT_N; i++)
            acc += (uint32_t)((int32_t)dot_a[i] * dot_b[i]);
        uint32_t count = 0;
        uint8_t want = (uint8_t)r;
        for (uint32_t i = 0; i < 2 * DOT_N; i++)
            count += scan_buf[i] == want;
        h = h * 31u + acc + count;
        dot_a[r & (DOT_N - 1)] ^= 1; /* the next repetition sees other data */
    }
    return h;
}

typedef struct body {
    double x, y, z, vx, vy, vz, mass;
} body_t;

/* n steps of a 5-body gravity simulation; checksum of the final energy. */
KERNEL(nbody) uint32_t kernel_nbody(uint32_t n)
{
    body_t b[NBODIES];
    for (uint32_t i = 0; i < NBODIES; i++) {
        b[i].x = (double)i * 1.5 - 3.0;
        b[i].y = (double)(i * i) * 0.25;
        b[i].z = (double)(NBODIES - i) * 0.5;
        b[i].vx = (double)i * 0.01;
        b[i].vy = -(double)i * 0.02;
        b[i].vz = 0.005;
        b[i].mass = 1.0 + (double)i * 0.1;
    }
    const double dt = 0.01;
    for (uint32_t step = 0; step < n; step++) {
        for (uint32_t i = 0; i < NBODIES; i++) {
            for (uint32_t j = i + 1; j < NBODIES; j++) {
                double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
                double d2 = dx * dx + dy * dy + dz * dz + 0.01;
                double d = __builtin_sqrt(d2);
                double mag = dt / (d2 * d);
                b[i].vx -= dx * b[j].mass * mag;
                b[i].vy -= dy * b[j].mass * mag;
                b[i].vz -= dz * b[j].mass * mag;
                b[j].vx += dx * b[i].mass * mag;
                b[j].vy += dy * b[i].mass * mag;
                b[j].vz += dz * b[i].mass * mag;
            }
        }
        for (uint32_t i = 0; i < NBODIES; i++) {
            b[i].x += dt * b[i].vx;
            b[i].y += dt * b[i].vy;
            b[i].z += dt * b[i].vz;
        }
    }
    double e = 0.0;
    for (uint32_t i = 0; i < NBODIES; i++)
        e += 0.5 * b[i].mass * (b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz);
    return (uint32_t)(int64_t)(e * 1e9);
}
