/*
 * modcache_bench.c — what a module-cache miss costs: loading a module from
 * its serialised form (eng_module_deserialize, all checks included) against
 * compiling it from the .wasm (eng_module_new: decode, validate, compile),
 * and the same through the runtime's cache (rt_cache_load after an
 * eviction: the module, check that it links against WASI, and its instance
 * image), from an artefact or from the .wasm.
 *
 *   modcache_bench [-n ITERATIONS] MODULE.wasm...
 *
 * Prints per module: sizes, then p50 and p99 in microseconds for each way
 * over ITERATIONS runs (default 300) after 20 warm-up runs. Timings only;
 * it fails only if a module cannot be compiled, serialised or loaded.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *t, size_t n, double *p50_out)
{
    qsort(t, n, sizeof *t, cmp_u64);
    printf("  %-34s p50 %9.1f us  p99 %9.1f us\n", what, t[n / 2] / 1e3, t[n * 99 / 100] / 1e3);
    if (p50_out) *p50_out = t[n / 2] / 1e3;
}

/* The runtime's callbacks, from memory (no disk in the timings). */
typedef struct mem_store {
    const uint8_t *wasm, *art;
    size_t wasm_len, art_len;
} mem_store_t;

static int mem_blob(void *ud, const char *digest, uint8_t **b, size_t *len, char *err, size_t el)
{
    (void)digest, (void)err, (void)el;
    mem_store_t *s = ud;
    *b = malloc(s->wasm_len);
    memcpy(*b, s->wasm, s->wasm_len);
    *len = s->wasm_len;
    return 0;
}

static int mem_art(void *ud, const char *digest, uint8_t **b, size_t *len, char *err, size_t el)
{
    (void)digest, (void)err, (void)el;
    mem_store_t *s = ud;
    if (!s->art) return 1;
    *b = malloc(s->art_len);
    memcpy(*b, s->art, s->art_len);
    *len = s->art_len;
    return 0;
}

static int bench_module(const char *path, size_t iters)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *wasm = malloc((size_t)len);
    if (!wasm || fread(wasm, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(wasm, (size_t)len, err, sizeof err);
    uint8_t *ser = NULL;
    size_t ser_len = 0;
    if (!m || !eng_module_serialize(m, &ser, &ser_len, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        return -1;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("%s: %ld bytes of wasm, %zu bytes serialised, %zu bytes in memory\n", base, len,
           ser_len, eng_module_size_bytes(m));
    eng_module_free(m);

    size_t warm = 20, n = iters;
    uint64_t *t = malloc(n * sizeof *t);
    double compile_p50, load_p50;
    for (size_t i = 0; i < warm + n; i++) {
        uint64_t t0 = eng_now_ns();
        eng_module_t *x = eng_module_new(wasm, (size_t)len, err, sizeof err);
        uint64_t t1 = eng_now_ns();
        eng_module_free(x);
        if (i >= warm) t[i - warm] = t1 - t0;
    }
    report("engine: compile from .wasm", t, n, &compile_p50);
    for (size_t i = 0; i < warm + n; i++) {
        uint64_t t0 = eng_now_ns();
        eng_module_t *x = eng_module_deserialize(ser, ser_len, err, sizeof err);
        uint64_t t1 = eng_now_ns();
        if (!x) {
            fprintf(stderr, "%s: %s\n", path, err);
            return -1;
        }
        eng_module_free(x);
        if (i >= warm) t[i - warm] = t1 - t0;
    }
    report("engine: load serialised", t, n, &load_p50);
    printf("  %-34s %.1fx\n", "engine: speed-up", compile_p50 / load_p50);

    /* Through the cache, bound 1 byte: every release evicts, every load
     * misses. Only WASI command modules qualify (rt_cache checks). */
    mem_store_t ms = {.wasm = wasm, .wasm_len = (size_t)len};
    for (int from_art = 0; from_art < 2; from_art++) {
        ms.art = from_art ? ser : NULL;
        ms.art_len = from_art ? ser_len : 0;
        rt_cache_t *c = rt_cache_new();
        rt_cache_configure(c, &(rt_cache_config_t){.max_bytes = 1, .load_blob = mem_blob,
                                                     .artifact_get = mem_art, .ud = &ms});
        bool ok = true;
        for (size_t i = 0; i < warm + n && ok; i++) {
            rt_load_source_t src;
            uint64_t t0 = eng_now_ns();
            rt_module_t *rm = rt_cache_load(c, "sha256:bench", &src, err, sizeof err);
            uint64_t t1 = eng_now_ns();
            if (!rm || src != (from_art ? RT_LOAD_SERIALIZED : RT_LOAD_COMPILED)) {
                printf("  runtime: skipped (%s)\n", rm ? "unexpected source" : err);
                ok = false;
            }
            rt_module_release(rm);
            if (i >= warm) t[i - warm] = t1 - t0;
        }
        if (ok)
            report(from_art ? "runtime miss: from artefact" : "runtime miss: compile", t, n, NULL);
        rt_cache_free(c);
        if (!ok) break;
    }
    free(t);
    free(ser);
    free(wasm);
    return 0;
}

int main(int argc, char **argv)
{
    size_t iters = 300;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        iters = strtoul(argv[2], NULL, 10);
        i = 3;
    }
    if (iters < 100) iters = 100;
    if (i >= argc) {
        fprintf(stderr, "usage: modcache_bench [-n ITERATIONS] MODULE.wasm...\n");
        return 2;
    }
    for (; i < argc; i++)
        if (bench_module(argv[i], iters) != 0) return 1;
    return 0;
}
