/* sort.c — compute kernel: sorts 200k pseudo-random 64-bit keys with qsort,
 * a hand-written merge sort and an LSD radix sort, checks they agree, and
 * prints checksums. Its output must be byte-identical natively and in Wasm. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 200000

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void merge_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(a, tmp, h);
    merge_sort(a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static void radix_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[((a[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) tmp[count[(a[i] >> shift) & 0xff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

static uint64_t checksum(const uint64_t *a, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ a[i]) * 1099511628211ull;
    return h;
}

int main(void)
{
    uint64_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c),
             *tmp = malloc(N * sizeof *tmp);
    for (size_t i = 0; i < N; i++) a[i] = b[i] = c[i] = next() % 1000000007ull;
    printf("unsorted %016" PRIx64 "\n", checksum(a, N));
    qsort(a, N, sizeof *a, cmp_u64);
    merge_sort(b, tmp, N);
    radix_sort(c, tmp, N);
    printf("qsort    %016" PRIx64 "\n", checksum(a, N));
    printf("merge    %016" PRIx64 "\n", checksum(b, N));
    printf("radix    %016" PRIx64 "\n", checksum(c, N));
    int same = !memcmp(a, b, N * sizeof *a) && !memcmp(a, c, N * sizeof *a);
    size_t bad = 0;
    for (size_t i = 1; i < N; i++) bad += a[i - 1] > a[i];
    printf("agree=%d out_of_order=%zu min=%" PRIu64 " median=%" PRIu64 " max=%" PRIu64 "\n",
           same, bad, a[0], a[N / 2], a[N - 1]);
    /* Strings too: sort decimal renderings of the keys. */
    char (*s)[24] = malloc(20000 * sizeof *s);
    for (size_t i = 0; i < 20000; i++) snprintf(s[i], 24, "%" PRIu64, b[i * 7] * 2654435761u);
    qsort(s, 20000, sizeof *s, (int (*)(const void *, const void *))strcmp);
    printf("strings first=%s last=%s\n", s[0], s[19999]);
    return same && !bad ? 0 : 1;
}
