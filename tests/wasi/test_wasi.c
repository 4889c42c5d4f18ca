/*
 * test_wasi.c — unit tests of the WASI context as an embedder uses it
 * (src/wasi/wasi.h), without the CLI: stdin served from memory and stdout
 * captured by a callback, proc_exit codes, EFAULT for a guest pointer past
 * memory, and the link errors that name the import and its type. The
 * programs in this directory and run_tests.sh cover the rest through
 * `wasmfn run`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "wasi/internal.h" /* envc/env, to see what an add did */
#include "wasi/wasi.h"

/* echo.wasm, made by wat2wasm from:
 *
 * (module
 *   (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
 *   (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
 *   (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
 *   (memory (export "memory") 1)
 *   (func (export "_start") (local $n i32)
 *     (i32.store (i32.const 0) (i32.const 64))
 *     (i32.store (i32.const 4) (i32.const 5))
 *     (loop $l
 *       (if (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16))
 *         (then (call $exit (i32.const 2))))
 *       (local.set $n (i32.load (i32.const 16)))
 *       (if (i32.eqz (local.get $n)) (then (call $exit (i32.const 7))))
 *       (i32.store (i32.const 24) (i32.const 64))
 *       (i32.store (i32.const 28) (local.get $n))
 *       (drop (call $write (i32.const 1) (i32.const 24) (i32.const 1) (i32.const 32)))
 *       (br $l)))
 *   (func (export "bad") (result i32)
 *     (call $write (i32.const 1) (i32.const 65532) (i32.const 1) (i32.const 32))))
 */
static const uint8_t echo_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x14, 0x04, 0x60,
    0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x00, 0x60,
    0x00, 0x00, 0x60, 0x00, 0x01, 0x7f, 0x02, 0x67, 0x03, 0x16, 0x77, 0x61,
    0x73, 0x69, 0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f,
    0x70, 0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31, 0x07, 0x66, 0x64, 0x5f,
    0x72, 0x65, 0x61, 0x64, 0x00, 0x00, 0x16, 0x77, 0x61, 0x73, 0x69, 0x5f,
    0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70, 0x72, 0x65,
    0x76, 0x69, 0x65, 0x77, 0x31, 0x08, 0x66, 0x64, 0x5f, 0x77, 0x72, 0x69,
    0x74, 0x65, 0x00, 0x00, 0x16, 0x77, 0x61, 0x73, 0x69, 0x5f, 0x73, 0x6e,
    0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70, 0x72, 0x65, 0x76, 0x69,
    0x65, 0x77, 0x31, 0x09, 0x70, 0x72, 0x6f, 0x63, 0x5f, 0x65, 0x78, 0x69,
    0x74, 0x00, 0x01, 0x03, 0x03, 0x02, 0x02, 0x03, 0x05, 0x03, 0x01, 0x00,
    0x01, 0x07, 0x19, 0x03, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02,
    0x00, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x03, 0x03, 0x62,
    0x61, 0x64, 0x00, 0x04, 0x0a, 0x65, 0x02, 0x54, 0x01, 0x01, 0x7f, 0x41,
    0x00, 0x41, 0xc0, 0x00, 0x36, 0x02, 0x00, 0x41, 0x04, 0x41, 0x05, 0x36,
    0x02, 0x00, 0x03, 0x40, 0x41, 0x00, 0x41, 0x00, 0x41, 0x01, 0x41, 0x10,
    0x10, 0x00, 0x04, 0x40, 0x41, 0x02, 0x10, 0x02, 0x0b, 0x41, 0x10, 0x28,
    0x02, 0x00, 0x21, 0x00, 0x20, 0x00, 0x45, 0x04, 0x40, 0x41, 0x07, 0x10,
    0x02, 0x0b, 0x41, 0x18, 0x41, 0xc0, 0x00, 0x36, 0x02, 0x00, 0x41, 0x1c,
    0x20, 0x00, 0x36, 0x02, 0x00, 0x41, 0x01, 0x41, 0x18, 0x41, 0x01, 0x41,
    0x20, 0x10, 0x01, 0x1a, 0x0c, 0x00, 0x0b, 0x0b, 0x0e, 0x00, 0x41, 0x01,
    0x41, 0xfc, 0xff, 0x03, 0x41, 0x01, 0x41, 0x20, 0x10, 0x01, 0x0b,
};

typedef struct capture {
    char buf[4096];
    size_t len;
    size_t max_per_call; /* 0 = take everything */
    int calls;
} capture_t;

static long capture_write(void *ud, const uint8_t *data, size_t len)
{
    capture_t *c = ud;
    c->calls++;
    if (c->max_per_call && len > c->max_per_call) len = c->max_per_call;
    if (len > sizeof c->buf - c->len) len = sizeof c->buf - c->len;
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return (long)len;
}

typedef struct fixture {
    eng_module_t *m;
    eng_store_t *s;
    eng_exec_t *x;
    wasi_ctx_t *w;
    eng_instance_t *inst;
} fixture_t;

static void fixture_start(fixture_t *f, const uint8_t *wasm, size_t len)
{
    char err[ENG_ERR_MAX];
    f->m = eng_module_new(wasm, len, err, sizeof err);
    assert_non_null(f->m);
    f->s = eng_store_new();
    f->x = eng_exec_new(0);
    f->w = wasi_ctx_new();
    assert_non_null(f->s);
    assert_non_null(f->x);
    assert_non_null(f->w);
}

static void fixture_instantiate(fixture_t *f)
{
    char err[ENG_ERR_MAX];
    uint32_t n = eng_module_import_count(f->m);
    eng_extern_t imports[8];
    assert_true(n <= 8);
    assert_int_equal(wasi_ctx_link(f->w, f->s, f->m, imports, err, sizeof err), 0);
    f->inst = eng_instance_new(f->s, f->m, imports, n, f->x, err, sizeof err);
    assert_non_null(f->inst);
}

static void fixture_end(fixture_t *f)
{
    eng_store_free(f->s);
    wasi_ctx_free(f->w);
    eng_exec_free(f->x);
    eng_module_free(f->m);
}

static void test_memory_stdio(void **state)
{
    (void)state;
    fixture_t f;
    capture_t out = {.max_per_call = 0};
    static const char input[] = "a body of 33 bytes, read 5 a time";
    fixture_start(&f, echo_wasm, sizeof echo_wasm);
    wasi_ctx_set_stdin_bytes(f.w, (const uint8_t *)input, strlen(input));
    wasi_ctx_set_output(f.w, 1, capture_write, &out);
    fixture_instantiate(&f);
    eng_trap_t t = eng_call(f.x, eng_instance_func(f.inst, "_start"), NULL, NULL);
    assert_int_equal(t, ENG_TRAP_EXIT);
    assert_int_equal(eng_exec_exit_code(f.x), 7); /* end of input */
    assert_int_equal(out.len, strlen(input));
    assert_memory_equal(out.buf, input, strlen(input));
    assert_int_equal(out.calls, 7); /* ceil(33 / 5) writes */
    fixture_end(&f);
}

static void test_short_sink_writes(void **state)
{
    (void)state;
    fixture_t f;
    capture_t out = {.max_per_call = 2};
    fixture_start(&f, echo_wasm, sizeof echo_wasm);
    wasi_ctx_set_stdin_bytes(f.w, (const uint8_t *)"hello", 5);
    wasi_ctx_set_output(f.w, 1, capture_write, &out);
    fixture_instantiate(&f);
    assert_int_equal(eng_call(f.x, eng_instance_func(f.inst, "_start"), NULL, NULL), ENG_TRAP_EXIT);
    /* The guest ignores short writes, so only the first 2 bytes arrive. */
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.buf, "he", 2);
    fixture_end(&f);
}

static void test_bad_pointer_is_efault(void **state)
{
    (void)state;
    fixture_t f;
    capture_t out = {0};
    fixture_start(&f, echo_wasm, sizeof echo_wasm);
    wasi_ctx_set_output(f.w, 1, capture_write, &out);
    fixture_instantiate(&f);
    eng_val_t res[1];
    assert_int_equal(eng_call(f.x, eng_instance_func(f.inst, "bad"), NULL, res), ENG_OK);
    assert_int_equal(res[0].i32, 21); /* EFAULT */
    assert_int_equal(out.calls, 0);
    fixture_end(&f);
}

static void test_link_errors(void **state)
{
    (void)state;
    /* (module (import "env" "foo" (func (param i32) (result i32)))) */
    static const uint8_t env_wasm[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60,
        0x01, 0x7f, 0x01, 0x7f, 0x02, 0x0b, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03,
        0x66, 0x6f, 0x6f, 0x00, 0x00};
    fixture_t f;
    char err[ENG_ERR_MAX] = "";
    eng_extern_t imports[1];
    fixture_start(&f, env_wasm, sizeof env_wasm);
    assert_int_equal(wasi_ctx_link(f.w, f.s, f.m, imports, err, sizeof err), -1);
    assert_string_equal(err, "unknown import env.foo (func (i)i)");

    eng_extern_desc_t d = {.module = "env", .name = "foo", .kind = ENG_EXTERN_FUNC, .type = "(i)i"};
    assert_int_equal(wasi_import_resolve(f.w, f.s, &d, imports, err, sizeof err), WASI_RESOLVE_NOT_WASI);
    d.module = WASI_MODULE_NAME;
    d.name = "fd_write";
    d.type = "(ii)i";
    assert_int_equal(wasi_import_resolve(f.w, f.s, &d, imports, err, sizeof err), WASI_RESOLVE_ERROR);
    assert_string_equal(err, "import wasi_snapshot_preview1.fd_write has type (ii)i, expected (iiii)i");
    d.name = "no_such_call";
    assert_int_equal(wasi_import_resolve(f.w, f.s, &d, imports, err, sizeof err), WASI_RESOLVE_ERROR);
    assert_non_null(strstr(err, "wasi_snapshot_preview1.no_such_call"));
    d.name = "memory";
    d.kind = ENG_EXTERN_MEMORY;
    d.type = "";
    assert_int_equal(wasi_import_resolve(f.w, f.s, &d, imports, err, sizeof err), WASI_RESOLVE_ERROR);
    d.name = "random_get";
    d.kind = ENG_EXTERN_FUNC;
    d.type = "(ii)i";
    assert_int_equal(wasi_import_resolve(f.w, f.s, &d, imports, err, sizeof err), WASI_RESOLVE_OK);
    assert_int_equal(imports[0].kind, ENG_EXTERN_FUNC);
    assert_string_equal(eng_func_signature(imports[0].u.func), "(ii)i");
    fixture_end(&f);
}

/* Every preview1 function resolves by its name (looked up in a hash table),
 * with its own signature; near misses do not. */
static void test_link_every_function(void **state)
{
    (void)state;
    static const char *const funcs[][2] = {
        {"args_get", "(ii)i"}, {"args_sizes_get", "(ii)i"}, {"environ_get", "(ii)i"},
        {"environ_sizes_get", "(ii)i"}, {"clock_res_get", "(ii)i"}, {"clock_time_get", "(iIi)i"},
        {"fd_advise", "(iIIi)i"}, {"fd_allocate", "(iII)i"}, {"fd_close", "(i)i"},
        {"fd_datasync", "(i)i"}, {"fd_fdstat_get", "(ii)i"}, {"fd_fdstat_set_flags", "(ii)i"},
        {"fd_fdstat_set_rights", "(iII)i"}, {"fd_filestat_get", "(ii)i"},
        {"fd_filestat_set_size", "(iI)i"}, {"fd_filestat_set_times", "(iIIi)i"},
        {"fd_pread", "(iiiIi)i"}, {"fd_prestat_get", "(ii)i"}, {"fd_prestat_dir_name", "(iii)i"},
        {"fd_pwrite", "(iiiIi)i"}, {"fd_read", "(iiii)i"}, {"fd_readdir", "(iiiIi)i"},
        {"fd_renumber", "(ii)i"}, {"fd_seek", "(iIii)i"}, {"fd_sync", "(i)i"}, {"fd_tell", "(ii)i"},
        {"fd_write", "(iiii)i"}, {"path_create_directory", "(iii)i"},
        {"path_filestat_get", "(iiiii)i"}, {"path_filestat_set_times", "(iiiiIIi)i"},
        {"path_link", "(iiiiiii)i"}, {"path_open", "(iiiiiIIii)i"}, {"path_readlink", "(iiiiii)i"},
        {"path_remove_directory", "(iii)i"}, {"path_rename", "(iiiiii)i"},
        {"path_symlink", "(iiiii)i"}, {"path_unlink_file", "(iii)i"}, {"poll_oneoff", "(iiii)i"},
        {"proc_exit", "(i)"}, {"proc_raise", "(i)i"}, {"sched_yield", "()i"},
        {"random_get", "(ii)i"}, {"sock_accept", "(iii)i"}, {"sock_recv", "(iiiiii)i"},
        {"sock_send", "(iiiii)i"}, {"sock_shutdown", "(ii)i"},
    };
    static const char *const misses[] = {"", "fd_writ", "fd_write_", "FD_WRITE", "fd_", "proc_exitt"};
    fixture_t f;
    char err[ENG_ERR_MAX] = "";
    eng_extern_t imports[1];
    fixture_start(&f, echo_wasm, sizeof echo_wasm);
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++) {
        eng_extern_desc_t d = {.module = WASI_MODULE_NAME, .name = funcs[i][0],
                               .kind = ENG_EXTERN_FUNC, .type = funcs[i][1]};
        assert_int_equal(wasi_import_resolve(f.w, f.s, &d, imports, err, sizeof err), WASI_RESOLVE_OK);
        assert_string_equal(eng_func_signature(imports[0].u.func), funcs[i][1]);
        /* The two-step form (a module's link plan) binds the same. */
        int k = wasi_import_index(&d);
        assert_true(k >= 0);
        assert_int_equal(wasi_import_bind(f.w, f.s, k, imports, err, sizeof err), WASI_RESOLVE_OK);
        assert_string_equal(eng_func_signature(imports[0].u.func), funcs[i][1]);
        d.type = "(iiiiiiiiiiiiiiii)";
        assert_int_equal(wasi_import_index(&d), -1);
        d.module = "env";
        d.type = funcs[i][1];
        assert_int_equal(wasi_import_index(&d), -1);
    }
    assert_int_equal(wasi_import_bind(f.w, f.s, -1, imports, err, sizeof err), WASI_RESOLVE_ERROR);
    assert_int_equal(wasi_import_bind(f.w, f.s, 4096, imports, err, sizeof err), WASI_RESOLVE_ERROR);
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        eng_extern_desc_t d = {.module = WASI_MODULE_NAME, .name = misses[i],
                               .kind = ENG_EXTERN_FUNC, .type = "(iiii)i"};
        assert_int_equal(wasi_import_resolve(f.w, f.s, &d, imports, err, sizeof err), WASI_RESOLVE_ERROR);
        assert_non_null(strstr(err, "not a WASI preview1 function"));
        assert_int_equal(wasi_import_index(&d), -1);
    }
    fixture_end(&f);
}

static void test_ctx_config_errors(void **state)
{
    (void)state;
    char err[ENG_ERR_MAX] = "";
    wasi_ctx_t *w = wasi_ctx_new();
    assert_non_null(w);
    assert_int_equal(wasi_ctx_add_env(w, "NOEQUALS"), -1);
    assert_int_equal(wasi_ctx_add_env(w, "=value"), -1);
    assert_int_equal(wasi_ctx_add_env(w, "K=V"), 0);
    /* A list goes in whole or not at all, in order, copied. */
    char a[] = "A=1", b[] = "B==2";
    const char *bad[] = {a, "C=3", "NOEQUALS"}, *good[] = {a, b, "EMPTY="};
    assert_int_equal(wasi_ctx_add_envs(w, bad, 3), -1);
    assert_int_equal(w->envc, 1);
    assert_int_equal(wasi_ctx_add_envs(w, good, 3), 0);
    assert_int_equal(wasi_ctx_add_envs(w, good, 0), 0);
    a[0] = 'X';
    b[0] = 'Y';
    assert_int_equal(w->envc, 4);
    assert_string_equal(w->env[0], "K=V");
    assert_string_equal(w->env[1], "A=1");
    assert_string_equal(w->env[2], "B==2");
    assert_string_equal(w->env[3], "EMPTY=");
    /* Borrowed (a request's environment): whole or not at all, after the
     * copied ones, and not copied. */
    char r[] = "REQUEST_METHOD=GET";
    const char *rbad[] = {r, "=x"}, *rgood[] = {r};
    assert_int_equal(wasi_ctx_add_envs_borrowed(w, rbad, 2), -1);
    assert_int_equal(w->envc, 4);
    assert_int_equal(wasi_ctx_add_envs_borrowed(w, rgood, 1), 0);
    assert_int_equal(w->envc, 5);
    assert_ptr_equal(w->env[4], r);
    assert_string_equal(w->env[3], "EMPTY=");
    assert_int_equal(wasi_ctx_preopen(w, "/nonexistent/wasmfn-test-dir", "/x", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/wasmfn-test-dir"));
    assert_int_equal(wasi_ctx_preopen(w, ".", "/here", err, sizeof err), 0);
    wasi_ctx_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_stdio),
        cmocka_unit_test(test_short_sink_writes),
        cmocka_unit_test(test_bad_pointer_is_efault),
        cmocka_unit_test(test_link_errors),
        cmocka_unit_test(test_link_every_function),
        cmocka_unit_test(test_ctx_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
