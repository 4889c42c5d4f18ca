/*
 * module.c — the compiled-module cache (runtime.h).
 *
 * Compiling a module takes milliseconds; instantiating it takes
 * microseconds. So a module is compiled once per digest, when a revision
 * that uses it is installed, and every instance of every revision with the
 * same digest shares the one immutable eng_module_t. Entries are reference
 * counted (revisions and warm instances hold references) and the last
 * release frees the compiled code. Loop thread only: no lock.
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
    uint32_t refs;
};

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
    eng_module_free(m->mod);
    free(m->digest);
    free(m);
}

const eng_module_t *rt_module_engine(const rt_module_t *m) { return m->mod; }
const char *rt_module_digest(const rt_module_t *m) { return m->digest; }
