/*
 * cpu.c — the benchmark's CPU-bound function: a sieve of Eratosthenes over
 * SIEVE_N numbers followed by an FNV-1a hash of the sieve, answered as a
 * CGI response with the prime count and the hash. Integer loops and byte
 * loads/stores over 1 MiB of memory, no I/O: the request's time is the
 * kernel's time plus the system's per-request overhead. The same source is
 * compiled natively (the CGI baseline and the ratio's denominator) and to
 * wasm32-wasi (wasmfn, workerd, Node.js WASI).
 */
#include <stdint.h>
#include <stdio.h>

#define SIEVE_N (1u << 20)
#define ROUNDS 4

static unsigned char composite[SIEVE_N];

static uint32_t sieve_round(uint32_t salt)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < SIEVE_N; i++) composite[i] = 0;
    for (uint32_t i = 2; i < SIEVE_N; i++) {
        if (composite[i]) continue;
        count++;
        for (uint32_t j = i * 2; j < SIEVE_N; j += i) composite[j] = 1;
    }
    uint32_t h = 2166136261u ^ salt;
    for (uint32_t i = 0; i < SIEVE_N; i++) {
        h ^= composite[i];
        h *= 16777619u;
    }
    return h ^ count;
}

int main(void)
{
    uint32_t h = 0;
    for (uint32_t r = 0; r < ROUNDS; r++) h = sieve_round(h);
    printf("Content-Type: text/plain\n\ncpu %08x\n", (unsigned)h);
    return 0;
}
