/* simd.c — a CGI function built with -msimd128 (mk/serving-tests.mk) for the
 * native tier's daemon tests: QUERY_STRING n (default 1000) rounds over
 * vectors of the compilers' vector extensions (v128 code in wasm), printed
 * as "simd N CHECKSUM" so both tiers can be compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef uint8_t u8x16 __attribute__((vector_size(16)));

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    unsigned long n = q && *q ? strtoul(q, NULL, 10) : 1000;
    u32x4 v = {1, 2, 3, 4}, w = {0x9e3779b9u, 7, 0xfffffff7u, 12345};
    u8x16 b = {0};
    for (unsigned long i = 0; i < n; i++) {
        v = v * w + (v >> 3);
        b = (b + (u8x16){1, 3, 5, 7, 9, 11, 13, 15, 2, 4, 6, 8, 10, 12, 14, 16}) ^ (b >> 1);
    }
    uint32_t h = 2166136261u;
    for (int i = 0; i < 4; i++) h = (h ^ v[i]) * 16777619u;
    for (int i = 0; i < 16; i++) h = (h ^ b[i]) * 16777619u;
    printf("Content-Type: text/plain\n\nsimd %lu %u\n", n, h);
    return 0;
}
