/*
 * coldstart_bench.c — how long it takes to make an instance of a WASI
 * function, the way the data plane makes one (runtime.h: a store, a WASI
 * context with args and env, WASI linked, the instance), from the module's
 * image and, for comparison, without one (eng_instance_new: segments copied
 * into a fresh memory, the start function run). Also times a whole request
 * without HTTP: instance from the image, _start, free.
 *
 *   coldstart_bench [--native] MODULE.wasm [ITERATIONS]
 *
 * --native compiles the module to native code first and attaches it (as
 * the daemon does once its background compile is done), so every instance
 * runs natively: memory 0 then sits in a guard slot (docs/engine.md).
 *
 * Prints one line per measurement: p50, p99, p99.9 and max in microseconds
 * over ITERATIONS (default 20000) runs after 1000 warm-up runs. Timings only;
 * it fails only if something cannot be instantiated or run.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "wasi/wasi.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *t, size_t n)
{
    qsort(t, n, sizeof *t, cmp_u64);
    printf("%-44s p50 %8.2f us  p99 %8.2f us  p99.9 %8.2f us  max %8.2f us  (n=%zu)\n", what,
           t[n / 2] / 1e3, t[n * 99 / 100] / 1e3, t[n * 999 / 1000] / 1e3, t[n - 1] / 1e3, n);
}

static const char *const env[] = {"GREETING=hi", "FOO=bar"};

int main(int argc, char **argv)
{
    bool native = argc > 1 && strcmp(argv[1], "--native") == 0;
    if (native) {
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: coldstart_bench [--native] MODULE.wasm [ITERATIONS]\n");
        return 2;
    }
    size_t iters = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000, warm = 1000;
    if (iters < 100) iters = 100;
    if (iters > 10000000) iters = 10000000;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc((size_t)len);
    if (!bytes || fread(bytes, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 1;
    }
    fclose(f);

    char err[ENG_ERR_MAX];
    rt_cache_t *cache = rt_cache_new();
    uint64_t t0 = eng_now_ns();
    rt_module_t *m = rt_cache_compile(cache, "bench", bytes, (size_t)len, err, sizeof err);
    uint64_t t1 = eng_now_ns();
    if (!m) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 1;
    }
    const eng_image_t *img = rt_module_image(m);
    if (!img) {
        fprintf(stderr, "%s: no image: %s\n", argv[1], rt_module_image_error(m));
        return 1;
    }
    printf("module %s: %ld bytes, compile + image %.2f ms, image memory %llu bytes\n", argv[1], len,
           (t1 - t0) / 1e6, (unsigned long long)eng_image_memory_bytes(img));
    if (native) {
        uint8_t *obj;
        size_t objlen;
        t0 = eng_now_ns();
        /* The cache hands out its modules read-only; attaching is what the
         * daemon's cache does to them itself (runtime/module.c). */
        eng_module_t *em = (eng_module_t *)rt_module_engine(m);
        if (!eng_native_compile(bytes, (size_t)len, &obj, &objlen, err, sizeof err) ||
            !eng_module_attach_native(em, obj, objlen, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", argv[1], err);
            return 1;
        }
        free(obj);
        printf("native code: %zu bytes, compiled and attached in %.2f ms\n", objlen,
               (eng_now_ns() - t0) / 1e6);
    }

    eng_exec_t *x = eng_exec_new(0);
    uint64_t *tc = malloc(iters * sizeof *tc), *tf = malloc(iters * sizeof *tf),
             *tb = malloc(iters * sizeof *tb);
    rt_instance_config_t cfg = {.name = "hello", .env = env, .nenv = 2,
                                .memory_limit_bytes = 128u << 20};

    /* 1. rt_instance_new from the image, then rt_instance_free. */
    for (size_t k = 0; k < warm + iters; k++) {
        uint64_t a = eng_now_ns();
        rt_instance_t *i = rt_instance_new(m, &cfg, x, err, sizeof err);
        uint64_t b = eng_now_ns();
        if (!i) {
            fprintf(stderr, "instantiate: %s\n", err);
            return 1;
        }
        rt_instance_free(i);
        uint64_t c = eng_now_ns();
        if (k >= warm) {
            tc[k - warm] = b - a;
            tf[k - warm] = c - b;
            tb[k - warm] = c - a;
        }
    }
    report("instantiate from image (store+WASI+instance)", tc, iters);
    report("free the instance (store, slot reset)", tf, iters);
    report("instantiate + free", tb, iters);

    /* 2. The engine alone: eng_instance_from_image with WASI linked. */
    const eng_module_t *em = rt_module_engine(m);
    uint32_t nimp = eng_module_import_count(em);
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    uint64_t *tl = malloc(iters * sizeof *tl);
    for (size_t k = 0; k < warm + iters; k++) {
        eng_store_t *s = eng_store_new();
        eng_store_set_memory_limit(s, 128u << 20);
        wasi_ctx_t *w = wasi_ctx_new();
        uint64_t a = eng_now_ns();
        if (wasi_ctx_link(w, s, em, imports, err, sizeof err) != 0) return 1;
        uint64_t b = eng_now_ns();
        eng_instance_t *inst = eng_instance_from_image(s, img, imports, nimp, err, sizeof err);
        uint64_t c = eng_now_ns();
        if (!inst) {
            fprintf(stderr, "from image: %s\n", err);
            return 1;
        }
        eng_store_free(s);
        wasi_ctx_free(w);
        if (k >= warm) {
            tl[k - warm] = b - a;
            tc[k - warm] = c - b;
        }
    }
    report("  of which wasi_ctx_link", tl, iters);
    report("  of which eng_instance_from_image", tc, iters);

    /* 3. Without an image: eng_instance_new (segments copied, start run). */
    for (size_t k = 0; k < warm + iters; k++) {
        eng_store_t *s = eng_store_new();
        eng_store_set_memory_limit(s, 128u << 20);
        wasi_ctx_t *w = wasi_ctx_new();
        if (wasi_ctx_link(w, s, em, imports, err, sizeof err) != 0) return 1;
        uint64_t a = eng_now_ns();
        eng_instance_t *inst = eng_instance_new(s, em, imports, nimp, x, err, sizeof err);
        uint64_t b = eng_now_ns();
        if (!inst) {
            fprintf(stderr, "instantiate: %s\n", err);
            return 1;
        }
        eng_store_free(s);
        wasi_ctx_free(w);
        if (k >= warm) tc[k - warm] = b - a;
    }
    report("eng_instance_new without image (comparison)", tc, iters);

    /* 4. A whole request without HTTP: instance from the image, _start
     * with a CGI env, stdout captured, free. */
    static const char *const cgi[] = {"REQUEST_METHOD=GET", "PATH_INFO=/x", "QUERY_STRING="};
    rt_request_t rq = {.env = cgi, .nenv = 3, .max_stdout_bytes = 1 << 20};
    for (size_t k = 0; k < warm + iters; k++) {
        uint64_t a = eng_now_ns();
        rt_instance_t *i = rt_instance_new(m, &cfg, x, err, sizeof err);
        if (!i) return 1;
        rt_result_t res;
        int r = rt_instance_run(i, x, &rq, &res);
        rt_instance_free(i);
        uint64_t b = eng_now_ns();
        if (r != 0 || res.out_len == 0) {
            fprintf(stderr, "run failed: %s\n", res.message);
            return 1;
        }
        free(res.out);
        if (k >= warm) tc[k - warm] = b - a;
    }
    report("request: instantiate + _start + free", tc, iters);

    free(tc);
    free(tf);
    free(tb);
    free(tl);
    free(imports);
    eng_exec_free(x);
    rt_module_release(m);
    rt_cache_free(cache);
    free(bytes);
    return 0;
}
