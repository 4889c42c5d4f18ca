/*
 * module.c — the compiled-module cache (runtime.h).
 *
 * Compiling a module takes milliseconds; instantiating it takes
 * microseconds. So a module is compiled once per digest and every instance
 * of every revision with the same digest shares the one immutable
 * eng_module_t. Entries are reference counted: revisions and instances
 * hold references, and a referenced module is pinned. Loop thread only: no
 * lock.
 *
 * Bounded memory, LRU: a module whose last reference goes stays cached,
 * so a function deployed again (or a revision coming back) finds it; the
 * cache counts every module's bytes (eng_module_size_bytes plus its
 * image's memory) and, while the total is over its bound, frees the least
 * recently used unpinned modules. Pinned ones are never evicted, so the
 * bound can be exceeded by what live revisions need; it limits only what
 * is kept speculatively.
 *
 * Scale from zero without the compiler: when artefact callbacks are
 * configured (the daemon stores them next to the blobs, see store.h), a
 * freshly compiled module is serialised (eng_module_serialize) and written
 * there, and a cache miss loads that form (eng_module_deserialize, which
 * checks the format version, the engine build, a SHA-256 and every index)
 * instead of decoding, validating and compiling the .wasm again. A
 * missing, damaged or stale artefact is ignored: the module is compiled
 * and the artefact rewritten.
 *
 * Images: once compiled (or loaded), the module is instantiated once in a
 * throwaway store (data and element segments, the start function, then
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
    uint32_t refs;       /* > 0: pinned */
    uint64_t bytes;      /* what it counts against the cache's bound */
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
    rt_module_t *head, *tail; /* most recently used first */
    size_t count, npinned;
    uint64_t bytes, pinned_bytes;
    rt_cache_config_t cfg;
    rt_cache_stats_t stats;   /* the counters; sizes are filled in on demand */
};

rt_cache_t *rt_cache_new(void)
{
    rt_cache_t *c = calloc(1, sizeof(rt_cache_t));
    if (c) c->cfg.max_bytes = RT_CACHE_DEFAULT_BYTES;
    return c;
}

static void module_free(rt_module_t *m)
{
    eng_image_free(m->image);
    eng_module_free(m->mod);
    free(m->digest);
    free(m);
}

static void lru_unlink(rt_cache_t *c, rt_module_t *m)
{
    if (m->prev) m->prev->next = m->next;
    else c->head = m->next;
    if (m->next) m->next->prev = m->prev;
    else c->tail = m->prev;
    m->prev = m->next = NULL;
}

static void lru_push_front(rt_cache_t *c, rt_module_t *m)
{
    m->prev = NULL;
    m->next = c->head;
    if (c->head) c->head->prev = m;
    else c->tail = m;
    c->head = m;
}

/* Frees least recently used unpinned modules while over the bound. */
static void cache_evict(rt_cache_t *c)
{
    rt_module_t *m = c->tail;
    while (m && c->bytes > c->cfg.max_bytes) {
        rt_module_t *prev = m->prev;
        if (m->refs == 0) {
            lru_unlink(c, m);
            c->count--;
            c->bytes -= m->bytes;
            c->stats.evictions++;
            module_free(m);
        }
        m = prev;
    }
}

void rt_cache_configure(rt_cache_t *c, const rt_cache_config_t *cfg)
{
    c->cfg = *cfg;
    if (!c->cfg.max_bytes) c->cfg.max_bytes = RT_CACHE_DEFAULT_BYTES;
    cache_evict(c);
}

void rt_cache_free(rt_cache_t *c)
{
    if (!c) return;
    rt_module_t *m = c->head;
    while (m) {
        rt_module_t *next = m->next;
        m->prev = m->next = NULL;
        if (m->refs == 0) module_free(m);
        else m->cache = NULL;
        m = next;
    }
    free(c);
}

static void pin(rt_module_t *m)
{
    if (m->refs++ == 0 && m->cache) {
        m->cache->npinned++;
        m->cache->pinned_bytes += m->bytes;
    }
}

rt_module_t *rt_cache_find(rt_cache_t *c, const char *digest)
{
    for (rt_module_t *m = c->head; m; m = m->next) {
        if (strcmp(m->digest, digest) == 0) {
            lru_unlink(c, m);
            lru_push_front(c, m);
            pin(m);
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

/* Adds em (checked runnable) as module `digest` with one reference; NULL
 * (em freed) when out of memory. */
static rt_module_t *cache_insert(rt_cache_t *c, const char *digest, eng_module_t *em, char *err,
                                 size_t errlen)
{
    rt_module_t *m = calloc(1, sizeof *m);
    if (!m || !(m->digest = strdup(digest))) {
        free(m);
        eng_module_free(em);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->mod = em;
    m->image = image_make(em, m->image_err, sizeof m->image_err);
    m->bytes = eng_module_size_bytes(em) + (m->image ? eng_image_memory_bytes(m->image) : 0);
    m->cache = c;
    lru_push_front(c, m);
    c->count++;
    c->bytes += m->bytes;
    pin(m);
    cache_evict(c);
    return m;
}

/* Writes em's serialised form as digest's artefact; failures only count
 * (the next load compiles again). */
static void artifact_write(rt_cache_t *c, const char *digest, const eng_module_t *em)
{
    if (!c->cfg.artifact_put) return;
    uint8_t *buf;
    size_t len;
    char e[ENG_ERR_MAX];
    if (!eng_module_serialize(em, &buf, &len, e, sizeof e)) {
        c->stats.artifact_errors++;
        return;
    }
    if (c->cfg.artifact_put(c->cfg.ud, digest, buf, len, e, sizeof e) != 0)
        c->stats.artifact_errors++;
    free(buf);
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
    c->stats.loads_compiled++;
    artifact_write(c, digest, em);
    return cache_insert(c, digest, em, err, errlen);
}

rt_module_t *rt_cache_load(rt_cache_t *c, const char *digest, rt_load_source_t *source,
                           char *err, size_t errlen)
{
    rt_load_source_t dummy;
    if (!source) source = &dummy;
    *source = RT_LOAD_CACHED;
    rt_module_t *m = rt_cache_find(c, digest);
    if (m) return m;
    if (c->cfg.artifact_get) {
        uint8_t *buf = NULL;
        size_t len = 0;
        char e[ENG_ERR_MAX];
        int r = c->cfg.artifact_get(c->cfg.ud, digest, &buf, &len, e, sizeof e);
        if (r == 0) {
            eng_module_t *em = eng_module_deserialize(buf, len, e, sizeof e);
            free(buf);
            /* The artefact was written only for a runnable module, but it
             * is cheap to be sure it matches what the data plane needs. */
            if (em && check_runnable(em, e, sizeof e) == 0) {
                c->stats.loads_serialized++;
                *source = RT_LOAD_SERIALIZED;
                return cache_insert(c, digest, em, err, errlen);
            }
            eng_module_free(em);
            c->stats.artifact_errors++; /* damaged or stale: rebuilt below */
        } else if (r < 0) {
            c->stats.artifact_errors++;
        }
    }
    if (!c->cfg.load_blob) {
        snprintf(err, errlen, "module %s is not cached and there is no way to load it", digest);
        return NULL;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (c->cfg.load_blob(c->cfg.ud, digest, &bytes, &len, err, errlen) != 0) return NULL;
    m = rt_cache_compile(c, digest, bytes, len, err, errlen);
    free(bytes);
    if (m) *source = RT_LOAD_COMPILED;
    return m;
}

size_t rt_cache_count(const rt_cache_t *c) { return c->count; }

void rt_cache_stats(const rt_cache_t *c, rt_cache_stats_t *out)
{
    *out = c->stats;
    out->bytes = c->bytes;
    out->pinned_bytes = c->pinned_bytes;
    out->modules = c->count;
    out->pinned = c->npinned;
}

void rt_module_ref(rt_module_t *m) { pin(m); }

void rt_module_release(rt_module_t *m)
{
    if (!m || --m->refs > 0) return;
    rt_cache_t *c = m->cache;
    if (!c) {
        module_free(m);
        return;
    }
    c->npinned--;
    c->pinned_bytes -= m->bytes;
    cache_evict(c);
}

const eng_module_t *rt_module_engine(const rt_module_t *m) { return m->mod; }
const char *rt_module_digest(const rt_module_t *m) { return m->digest; }
const eng_image_t *rt_module_image(const rt_module_t *m) { return m->image; }
const char *rt_module_image_error(const rt_module_t *m) { return m->image ? "" : m->image_err; }
