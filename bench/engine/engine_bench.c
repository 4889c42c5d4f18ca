/*
 * engine_bench.c — times the benchmark kernels natively, in our engine and
 * in Node/V8, and prints a markdown table of the three side by side.
 *
 * The kernels (kernels.c) are linked into this program as native -O2 code and
 * are also loaded from KERNELS.wasm into the engine, twice: interpreted, and
 * compiled by the native tier; node_bench.mjs runs the same .wasm in V8. Each kernel is called once to warm up, then timed over
 * REPS calls; the table shows the median. The three checksums of every
 * kernel must agree: a mismatch means an engine computed something else than
 * the C source says, and the program exits 1 after printing the table.
 *
 * With --simd KERNELS_SIMD.wasm (the same kernels.c built with -msimd128)
 * the rows marked simd run from that module instead, in both tiers and in
 * V8; the native column is the same C either way (gcc -O2 vectorises with
 * SSE2).
 *
 * Usage: engine_bench [--reps N] [--node SCRIPT | --no-node] [--simd KERNELS_SIMD.wasm]
 *        [--only KERNEL] [--tier interp|native] [--size N] KERNELS.wasm
 *
 * --only and --tier run one kernel (its non-SIMD row) in one tier of the
 * engine and nothing else, at the table's size or at --size N, for timing
 * one kernel against node_bench.mjs at the same size, or for counting
 * instructions with callgrind, whose --toggle-collect=eng_call then leaves
 * out loading and compiling:
 *
 *     valgrind --tool=callgrind --smc-check=all-non-file --toggle-collect=eng_call \
 *         build/bench/engine_bench --reps 1 --only sieve --tier native build/bench/kernels.wasm
 *
 * This is a benchmark, not a test: nothing here fails on a timing.
 */
#include "engine/engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint32_t kernel_fib(uint32_t n);
uint32_t kernel_sieve(uint32_t n);
uint32_t kernel_matmul(uint32_t n);
uint32_t kernel_fnv(uint32_t n);
uint32_t kernel_qsort(uint32_t n);
uint32_t kernel_qsortcb(uint32_t n);
uint32_t kernel_nbody(uint32_t n);
uint32_t kernel_ikj(uint32_t n);
uint32_t kernel_dot16(uint32_t n);

typedef struct bench_kernel {
    const char *name;  /* export name in kernels.wasm */
    uint32_t size;     /* the argument every run gets */
    uint32_t (*native)(uint32_t);
    const char *what;  /* what it stresses, for the table */
    int simd;          /* run from KERNELS_SIMD.wasm (--simd) */
    int extra;         /* not in the geometric mean (which stays comparable with
                        * the figures recorded before these rows existed) */
} bench_kernel_t;

/* Sizes are picked so that a native run takes roughly 5-50 ms here. */
static const bench_kernel_t kernels[] = {
    {"fib", 35, kernel_fib, "calls", 0, 0},
    {"sieve", 2000000, kernel_sieve, "loops, byte memory", 0, 0},
    {"matmul", 300, kernel_matmul, "f64, memory", 0, 0},
    {"fnv", 16, kernel_fnv, "integer ops, memory", 0, 0},
    {"qsort", 400000, kernel_qsort, "recursion, branches", 0, 0},
    {"qsortcb", 200001, kernel_qsortcb, "indirect calls (qsort comparator)", 0, 0},
    {"nbody", 500000, kernel_nbody, "f64, sqrt", 0, 0},
    {"ikj", 8, kernel_ikj, "a loop gcc -O2 vectorises", 0, 0},
    {"dot16", 1000, kernel_dot16, "int16 dot product, byte count", 0, 1},
    {"ikj", 8, kernel_ikj, "the same, wasm with SIMD", 1, 1},
    {"dot16", 1000, kernel_dot16, "the same, wasm with SIMD", 1, 1},
};
#define NKERNELS (sizeof kernels / sizeof kernels[0])

typedef struct bench_result {
    double ms;          /* median; < 0 when not measured */
    uint32_t checksum;
    int ok;             /* measured without error */
} bench_result_t;

static double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return v[n / 2];
}

static void bench_run_native(const bench_kernel_t *k, int reps, bench_result_t *out)
{
    double times[reps];
    /* volatile keeps the compiler from treating the size as a constant. */
    volatile uint32_t size = k->size;
    out->checksum = k->native(size);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        uint32_t c = k->native(size);
        times[r] = bench_now_ms() - t0;
        if (c != out->checksum) {
            fprintf(stderr, "engine_bench: native %s: checksum changed between runs\n", k->name);
            return;
        }
    }
    out->ms = bench_median(times, reps);
    out->ok = 1;
}

static void bench_run_engine(eng_instance_t *inst, eng_exec_t *x, const bench_kernel_t *k, uint32_t size,
                             int reps, bench_result_t *out)
{
    eng_func_t *f = eng_instance_func(inst, k->name);
    if (!f || strcmp(eng_func_signature(f), "(i)i") != 0) {
        fprintf(stderr, "engine_bench: kernels.wasm has no export %s of type (i)i\n", k->name);
        return;
    }
    eng_val_t arg = {.i32 = size}, res = {0};
    double times[reps];
    for (int r = -1; r < reps; r++) {
        double t0 = bench_now_ms();
        eng_trap_t t = eng_call(x, f, &arg, &res);
        double dt = bench_now_ms() - t0;
        if (t != ENG_OK) {
            fprintf(stderr, "engine_bench: %s trapped: %s\n", k->name, eng_exec_trap_message(x));
            return;
        }
        if (r < 0) {
            out->checksum = res.i32;
            continue;
        }
        if (res.i32 != out->checksum) {
            fprintf(stderr, "engine_bench: wasmfn %s: checksum changed between runs\n", k->name);
            return;
        }
        times[r] = dt;
    }
    out->ms = bench_median(times, reps);
    out->ok = 1;
}

/* Runs node_bench.mjs once for the kernels of one module (simd or not)
 * and parses "NAME CHECKSUM MS". */
static void bench_run_node(const char *script, const char *wasm, int simd, int reps, bench_result_t *out)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "node '%s' '%s' %d", script, wasm, reps);
    for (size_t i = 0; i < NKERNELS && n > 0 && (size_t)n < sizeof cmd; i++)
        if (kernels[i].simd == simd)
            n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s:%u", kernels[i].name, kernels[i].size);
    if (n <= 0 || (size_t)n >= sizeof cmd) {
        fprintf(stderr, "engine_bench: node command too long\n");
        return;
    }
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "engine_bench: cannot run node: %s\n", strerror(errno));
        return;
    }
    char line[256], name[64];
    unsigned long checksum;
    double ms;
    while (fgets(line, sizeof line, p)) {
        if (sscanf(line, "%63s %lu %lf", name, &checksum, &ms) != 3) continue;
        for (size_t i = 0; i < NKERNELS; i++) {
            if (kernels[i].simd == simd && strcmp(name, kernels[i].name) == 0) {
                out[i].checksum = (uint32_t)checksum;
                out[i].ms = ms;
                out[i].ok = 1;
            }
        }
    }
    int status = pclose(p);
    if (status != 0) fprintf(stderr, "engine_bench: node exited with status %d\n", status);
}

static uint8_t *bench_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* --only KERNEL --tier T [--size N]: that kernel in one tier, at the
 * table's size unless size > 0, printing its median. */
static int bench_only(const uint8_t *bytes, size_t len, const char *name, int native, uint32_t size, int reps)
{
    const bench_kernel_t *k = NULL;
    for (size_t i = 0; i < NKERNELS && !k; i++)
        if (!kernels[i].simd && strcmp(kernels[i].name, name) == 0)
            k = &kernels[i];
    if (!k) {
        fprintf(stderr, "engine_bench: no kernel %s\n", name);
        return 2;
    }
    char err[ENG_ERR_MAX];
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    eng_module_t *m = s && x ? eng_module_new(bytes, len, err, sizeof err) : NULL;
    if (!m) {
        fprintf(stderr, "engine_bench: %s\n", s && x ? err : "out of memory");
        return 1;
    }
    if (native) {
        uint8_t *obj;
        size_t objlen;
        if (!eng_native_compile(bytes, len, &obj, &objlen, err, sizeof err) ||
            !eng_module_attach_native(m, obj, objlen, err, sizeof err)) {
            fprintf(stderr, "engine_bench: native code: %s\n", err);
            return 1;
        }
        free(obj);
    }
    eng_instance_t *inst = eng_instance_new(s, m, NULL, 0, x, err, sizeof err);
    if (!inst) {
        fprintf(stderr, "engine_bench: instantiating: %s\n", err);
        return 1;
    }
    bench_result_t r = {.ms = -1};
    bench_run_engine(inst, x, k, size ? size : k->size, reps, &r);
    if (r.ok)
        printf("%s %s: %.2f ms, checksum %u\n", k->name, native ? "native tier" : "interpreter", r.ms,
               r.checksum);
    eng_store_free(s);
    eng_exec_free(x);
    eng_module_free(m);
    return r.ok ? 0 : 1;
}

static void bench_usage(void)
{
    fprintf(stderr, "usage: engine_bench [--reps N] [--node SCRIPT | --no-node] "
                    "[--simd KERNELS_SIMD.wasm] [--only KERNEL] [--tier interp|native] "
                    "[--size N] KERNELS.wasm\n");
}

int main(int argc, char **argv)
{
    int reps = 5;
    long size = 0;
    const char *node_script = "bench/engine/node_bench.mjs";
    const char *wasm_path = NULL, *simd_path = NULL, *only = NULL, *tier = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc) {
            node_script = argv[++i];
        } else if (strcmp(argv[i], "--simd") == 0 && i + 1 < argc) {
            simd_path = argv[++i];
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--tier") == 0 && i + 1 < argc) {
            tier = argv[++i];
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size = atol(argv[++i]);
            if (size < 1 || size > UINT32_MAX) {
                bench_usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--no-node") == 0) {
            node_script = NULL;
        } else if (argv[i][0] == '-') {
            bench_usage();
            return 2;
        } else {
            wasm_path = argv[i];
        }
    }
    if (!wasm_path || reps < 1 || reps > 1000 || !only != !tier || (size && !only) ||
        (tier && strcmp(tier, "interp") != 0 && strcmp(tier, "native") != 0)) {
        bench_usage();
        return 2;
    }

    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    if (!s || !x) {
        fprintf(stderr, "engine_bench: out of memory\n");
        return 1;
    }
    /* [0] kernels.wasm, [1] kernels_simd.wasm; each interpreted and native. */
    const char *paths[2] = {wasm_path, simd_path};
    eng_module_t *m[2] = {NULL, NULL}, *mn[2] = {NULL, NULL};
    eng_instance_t *inst[2] = {NULL, NULL}, *instn[2] = {NULL, NULL};
    double compile_ms = 0;
    size_t wasm_len = 0, obj_len = 0;
    for (int v = 0; v < 2; v++) {
        if (!paths[v])
            continue;
        size_t len = 0;
        uint8_t *bytes = bench_read_file(paths[v], &len);
        if (!bytes) {
            fprintf(stderr, "engine_bench: cannot read %s\n", paths[v]);
            return 1;
        }
        char err[ENG_ERR_MAX];
        if (only) {
            int rc = bench_only(bytes, len, only, strcmp(tier, "native") == 0, (uint32_t)size, reps);
            free(bytes);
            return rc;
        }
        m[v] = eng_module_new(bytes, len, err, sizeof err);
        mn[v] = eng_module_new(bytes, len, err, sizeof err);
        if (!m[v] || !mn[v]) {
            fprintf(stderr, "engine_bench: %s: %s\n", paths[v], err);
            return 1;
        }
        uint8_t *obj;
        size_t objlen;
        double c0 = bench_now_ms();
        if (!eng_native_compile(bytes, len, &obj, &objlen, err, sizeof err) ||
            !eng_module_attach_native(mn[v], obj, objlen, err, sizeof err)) {
            fprintf(stderr, "engine_bench: native code for %s: %s\n", paths[v], err);
            return 1;
        }
        if (v == 0) {
            compile_ms = bench_now_ms() - c0;
            wasm_len = len;
            obj_len = objlen;
        }
        free(obj);
        free(bytes);
        inst[v] = eng_instance_new(s, m[v], NULL, 0, x, err, sizeof err);
        instn[v] = inst[v] ? eng_instance_new(s, mn[v], NULL, 0, x, err, sizeof err) : NULL;
        if (!inst[v] || !instn[v]) {
            fprintf(stderr, "engine_bench: instantiating %s: %s\n", paths[v], err);
            return 1;
        }
    }

    bench_result_t native[NKERNELS] = {0}, engine[NKERNELS] = {0}, node[NKERNELS] = {0};
    bench_result_t tier2[NKERNELS] = {0};
    for (size_t i = 0; i < NKERNELS; i++) {
        native[i].ms = engine[i].ms = node[i].ms = tier2[i].ms = -1;
        int v = kernels[i].simd;
        if (!inst[v])
            continue; /* no --simd */
        bench_run_native(&kernels[i], reps, &native[i]);
        bench_run_engine(inst[v], x, &kernels[i], kernels[i].size, reps, &engine[i]);
        bench_run_engine(instn[v], x, &kernels[i], kernels[i].size, reps, &tier2[i]);
        fprintf(stderr, "engine_bench: %s%s native %.2f ms, wasmfn %.2f ms, wasmfn native tier %.2f ms\n",
                kernels[i].name, v ? " (simd)" : "", native[i].ms, engine[i].ms, tier2[i].ms);
    }
    if (node_script) {
        bench_run_node(node_script, wasm_path, 0, reps, node);
        if (simd_path)
            bench_run_node(node_script, simd_path, 1, reps, node);
    }

    int mismatch = 0, failed = 0;
    const bench_result_t *cols[3] = {engine, tier2, node};
    const char *colname[3] = {"wasmfn interp", "wasmfn native", "node"};
    double logs[3] = {0, 0, 0};
    int counts[3] = {0, 0, 0};
    printf("| kernel | stresses | size | native ms | interp ms | interp / native | wasmfn native ms "
           "| wasmfn native / native | node ms | node / native |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < NKERNELS; i++) {
        const bench_kernel_t *k = &kernels[i];
        if (!inst[k->simd])
            continue;
        char ms[3][32], ratio[3][32];
        if (!native[i].ok) failed = 1;
        for (int c = 0; c < 3; c++) {
            const bench_result_t *r = &cols[c][i];
            snprintf(ms[c], sizeof ms[c], c == 2 && !node_script ? "n/a" : "error");
            snprintf(ratio[c], sizeof ratio[c], "-");
            if (!r->ok) {
                if (c < 2 || node_script) failed = 1;
                continue;
            }
            snprintf(ms[c], sizeof ms[c], "%.2f", r->ms);
            if (r->checksum != native[i].checksum) {
                fprintf(stderr, "engine_bench: CHECKSUM MISMATCH %s: native %u, %s %u\n", k->name,
                        native[i].checksum, colname[c], r->checksum);
                snprintf(ms[c], sizeof ms[c], "wrong result");
                mismatch = 1;
            } else if (native[i].ok && native[i].ms > 0) {
                double q = r->ms / native[i].ms;
                snprintf(ratio[c], sizeof ratio[c], "%.2f×", q);
                if (!k->extra) {
                    logs[c] += log(q);
                    counts[c]++;
                }
            }
        }
        printf("| %s%s | %s | %u | %.2f | %s | %s | %s | %s | %s | %s |\n", k->name,
               k->simd ? " (simd128)" : "", k->what, k->size,
               native[i].ms, ms[0], ratio[0], ms[1], ratio[1], ms[2], ratio[2]);
    }
    char g[3][32];
    for (int c = 0; c < 3; c++) {
        snprintf(g[c], sizeof g[c], "-");
        if (counts[c]) snprintf(g[c], sizeof g[c], "**%.2f×**", exp(logs[c] / counts[c]));
    }
    printf("| **geometric mean** (the first eight) | | | | | %s | | %s | | %s |\n", g[0], g[1], g[2]);
    printf("\nNative tier: kernels.wasm (%zu bytes) compiled in %.0f ms to %zu bytes of objects.\n",
           wasm_len, compile_ms, obj_len);

    eng_store_free(s);
    eng_exec_free(x);
    for (int v = 0; v < 2; v++) {
        eng_module_free(m[v]);
        eng_module_free(mn[v]);
    }
    return mismatch || failed ? 1 : 0;
}
