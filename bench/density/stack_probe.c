/*
 * stack_probe.c — how much C stack a guest's run needs on a fiber: runs
 * each given WASI program's _start on a painted 1 MiB fiber (fiber.h) with
 * an exec of RT_FIBER_EXEC_BYTES, a fresh preopened directory /sandbox and
 * argv [NAME, /sandbox], and prints the stack high-water mark. This is
 * what RT_FIBER_STACK_BYTES is chosen from (docs/engine.md, "Fibers"):
 * the deepest path is a host call (WASI, which may format messages or
 * resolve paths) on top of the interpreter's own frame.
 *
 *   build/bench/stack_probe WASM...   (make bench-density passes the WASI
 *   test programs, the examples and the serving test functions)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "wasi/wasi.h"

typedef struct probe {
    const char *path;
    const char *dir;
    eng_exec_t *x;
    int status;  /* 0 ran, 1 trapped or exited non-zero, 2 could not start */
    char msg[ENG_ERR_MAX];
} probe_t;

static long sink(void *ud, const uint8_t *d, size_t n)
{
    (void)ud, (void)d;
    return (long)n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void probe_run(void *arg)
{
    probe_t *p = arg;
    size_t len;
    uint8_t *bytes = slurp(p->path, &len);
    eng_module_t *m = bytes ? eng_module_new(bytes, len, p->msg, sizeof p->msg) : NULL;
    free(bytes);
    p->status = 2;
    if (!m) return;
    eng_store_t *s = eng_store_new();
    wasi_ctx_t *w = wasi_ctx_new();
    const char *argv[] = {p->path, "/sandbox"};
    wasi_ctx_set_args(w, 2, argv);
    wasi_ctx_preopen(w, p->dir, "/sandbox", p->msg, sizeof p->msg);
    wasi_ctx_set_stdin_bytes(w, (const uint8_t *)"some input\n", 11);
    wasi_ctx_set_output(w, 1, sink, NULL);
    wasi_ctx_set_output(w, 2, sink, NULL);
    uint32_t n = eng_module_import_count(m);
    eng_extern_t *imp = calloc(n ? n : 1, sizeof *imp);
    eng_instance_t *inst = NULL;
    if (wasi_ctx_link(w, s, m, imp, p->msg, sizeof p->msg) == 0)
        inst = eng_instance_new(s, m, imp, n, p->x, p->msg, sizeof p->msg);
    eng_func_t *start = inst ? eng_instance_func(inst, "_start") : NULL;
    if (start) {
        eng_exec_set_deadline(p->x, eng_now_ns() + 5000000000ull);
        wasi_ctx_set_deadline(w, eng_now_ns() + 5000000000ull);
        eng_trap_t t = eng_call(p->x, start, NULL, NULL);
        p->status = (t == ENG_OK || (t == ENG_TRAP_EXIT && eng_exec_exit_code(p->x) == 0)) ? 0 : 1;
        snprintf(p->msg, sizeof p->msg, "%s", eng_exec_trap_message(p->x));
    }
    free(imp);
    eng_store_free(s);
    wasi_ctx_free(w);
    eng_module_free(m);
}

int main(int argc, char **argv)
{
    char err[256];
    rt_fiber_t *f = rt_fiber_new(1u << 20, err, sizeof err);
    eng_exec_t *x = eng_exec_new(RT_FIBER_EXEC_BYTES);
    if (!f || !x) {
        fprintf(stderr, "stack_probe: %s\n", f ? "out of memory" : err);
        return 1;
    }
    size_t worst = 0;
    for (int i = 1; i < argc; i++) {
        const char *tmpdir = getenv("TMPDIR");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/stack_probe.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
        if (!mkdtemp(dir)) continue;
        probe_t p = {.path = argv[i], .dir = dir, .x = x};
        rt_fiber_paint(f);
        rt_fiber_start(f, probe_run, &p);
        rt_fiber_resume(f);
        size_t hw = rt_fiber_stack_high_water(f);
        if (hw > worst) worst = hw;
        printf("%-40s %7zu bytes  (%s%s%s)\n", argv[i], hw,
               p.status == 0 ? "ran" : p.status == 1 ? "stopped" : "did not start",
               p.msg[0] ? ": " : "", p.msg);
        char cmd[sizeof dir + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "stack_probe: cannot remove %s\n", dir);
    }
    printf("deepest: %zu bytes of C stack (fiber stack is %u bytes)\n", worst, RT_FIBER_STACK_BYTES);
    rt_fiber_free(f);
    eng_exec_free(x);
    return 0;
}
