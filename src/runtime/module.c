/*
 * module.c — the compiled-module cache (runtime.h).
 *
 * Compiling a module takes milliseconds; instantiating it takes
 * microseconds. So a module is compiled once per digest, when a revision
 * that uses it is installed, and every instance of every revision with the
 * same digest shares the one immutable eng_module_t. Entries are reference
 * counted (revisions and warm instances hold references) and the last
 * release frees the compiled code. Loop thread only: no lock.
 *
 * Images: once compiled, the module is instantiated once in a throwaway
 * store (data and element segments, the start function, then
 * `wizer.initialize` when the module exports it, with args ["wizer"], no
 * env and output discarded) and that state is kept as an eng_image_t.
 * Every instance of every revision then starts from the image: a
 * copy-on-write mapping of its memory instead of re-running anything. When
 * no image can be made (the start function or initialiser traps, or the
 * state holds something an image cannot, see engine.h) instances are made
 * the ordinary way and report the failure per request as before.
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasi/wasi.h"

struct rt_module {
    rt_cache_t *cache; /* NULL once the cache is gone */
    rt_module_t *prev, *next;
    char *digest;
    eng_module_t *mod;
    eng_image_t *image;  /* NULL: instantiate without one */
    char image_err[ENG_ERR_MAX];
    uint32_t refs;
};

/* How long the start function and wizer.initialize may run at deploy. */
#define RT_INIT_TIMEOUT_NS (10ull * 1000000000ull)

static long discard(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)data;
    return (long)len;
}

/* Instantiates m once and captures its state, as the comment at the top
 * says. Returns NULL with the reason in err. */
static eng_image_t *image_make(const eng_module_t *m, char *err, size_t errlen)
{
    uint32_t nimp = eng_module_import_count(m);
    eng_store_t *s = eng_store_new();
    wasi_ctx_t *w = wasi_ctx_new();
    eng_exec_t *x = eng_exec_new(0);
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    eng_image_t *img = NULL;
    const char *argv0 = "wizer";
    if (!s || !w || !x || !imports || wasi_ctx_set_args(w, 1, &argv0) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    wasi_ctx_set_stdin_bytes(w, (const uint8_t *)"", 0);
    wasi_ctx_set_output(w, 1, discard, NULL);
    wasi_ctx_set_output(w, 2, discard, NULL);
    if (wasi_ctx_link(w, s, m, imports, err, errlen) != 0) goto out;
    uint64_t deadline = eng_now_ns() + RT_INIT_TIMEOUT_NS;
    eng_exec_set_deadline(x, deadline);
    wasi_ctx_set_deadline(w, deadline);
    eng_instance_t *inst = eng_instance_new(s, m, imports, nimp, x, err, errlen);
    if (!inst) goto out;
    eng_func_t *init = eng_instance_func(inst, "wizer.initialize");
    if (init && strcmp(eng_func_signature(init), "()") == 0) {
        eng_trap_t t = eng_call(x, init, NULL, NULL);
        if (t != ENG_OK) {
            snprintf(err, errlen, "wizer.initialize trapped: %s", eng_exec_trap_message(x));
            goto out;
        }
    }
    img = eng_image_new(inst, err, errlen);
out:
    free(imports);
    if (x) eng_exec_free(x);
    if (s) eng_store_free(s);
    if (w) wasi_ctx_free(w);
    return img;
}

struct rt_cache {
    rt_module_t *head;
    size_t count;
};

rt_cache_t *rt_cache_new(void) { return calloc(1, sizeof(rt_cache_t)); }

void rt_cache_free(rt_cache_t *c)
{
    if (!c) return;
    for (rt_module_t *m = c->head; m; m = m->next) m->cache = NULL;
    free(c);
}

rt_module_t *rt_cache_find(rt_cache_t *c, const char *digest)
{
    for (rt_module_t *m = c->head; m; m = m->next) {
        if (strcmp(m->digest, digest) == 0) {
            m->refs++;
            return m;
        }
    }
    return NULL;
}

/* Checks that the module links against WASI alone and has a runnable
 * _start, by linking it once in a throwaway store: a module that would fail
 * at every request is refused at deploy time instead. */
static int check_runnable(const eng_module_t *m, char *err, size_t errlen)
{
    bool has_start = false;
    uint32_t nexp = eng_module_export_count(m);
    for (uint32_t i = 0; i < nexp; i++) {
        eng_extern_desc_t d;
        eng_module_export(m, i, &d);
        if (d.kind == ENG_EXTERN_FUNC && strcmp(d.name, "_start") == 0) {
            if (strcmp(d.type, "()") != 0) {
                snprintf(err, errlen, "_start has type %s, expected ()", d.type);
                return -1;
            }
            has_start = true;
        }
    }
    if (!has_start) {
        snprintf(err, errlen, "no exported function _start (not a WASI command module)");
        return -1;
    }
    uint32_t nimp = eng_module_import_count(m);
    eng_store_t *s = eng_store_new();
    wasi_ctx_t *w = wasi_ctx_new();
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    int r = -1;
    if (!s || !w || !imports) snprintf(err, errlen, "out of memory");
    else r = wasi_ctx_link(w, s, m, imports, err, errlen);
    free(imports);
    if (s) eng_store_free(s);
    if (w) wasi_ctx_free(w);
    return r;
}

rt_module_t *rt_cache_compile(rt_cache_t *c, const char *digest, const uint8_t *bytes,
                              size_t len, char *err, size_t errlen)
{
    rt_module_t *found = rt_cache_find(c, digest);
    if (found) return found;
    eng_module_t *em = eng_module_new(bytes, len, err, errlen);
    if (!em) return NULL;
    if (check_runnable(em, err, errlen) != 0) {
        eng_module_free(em);
        return NULL;
    }
    rt_module_t *m = calloc(1, sizeof *m);
    if (!m || !(m->digest = strdup(digest))) {
        free(m);
        eng_module_free(em);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->mod = em;
    m->image = image_make(em, m->image_err, sizeof m->image_err);
    m->refs = 1;
    m->cache = c;
    m->next = c->head;
    if (c->head) c->head->prev = m;
    c->head = m;
    c->count++;
    return m;
}

size_t rt_cache_count(const rt_cache_t *c) { return c->count; }

void rt_module_ref(rt_module_t *m) { m->refs++; }

void rt_module_release(rt_module_t *m)
{
    if (!m || --m->refs > 0) return;
    if (m->cache) {
        if (m->prev) m->prev->next = m->next;
        else m->cache->head = m->next;
        if (m->next) m->next->prev = m->prev;
        m->cache->count--;
    }
    eng_image_free(m->image);
    eng_module_free(m->mod);
    free(m->digest);
    free(m);
}

const eng_module_t *rt_module_engine(const rt_module_t *m) { return m->mod; }
const char *rt_module_digest(const rt_module_t *m) { return m->digest; }
const eng_image_t *rt_module_image(const rt_module_t *m) { return m->image; }
const char *rt_module_image_error(const rt_module_t *m) { return m->image ? "" : m->image_err; }
