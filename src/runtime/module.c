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
 * Loading off the loop thread. rt_cache_load does everything on the
 * calling (loop) thread, which is right at deploy time but not on the
 * request path: deserialising a big module takes milliseconds. So a load
 * splits in three: rt_module_load_new (loop: copies the digest and the
 * callbacks), rt_module_load_run (a worker: reads the artefact and
 * deserialises and checks it, or reads the .wasm and compiles it and writes
 * the artefact, then makes the image; it touches nothing of the cache) and
 * rt_cache_load_finish (loop: inserts the result, or returns the copy some
 * other load inserted meanwhile, and folds the counts into the stats).
 *
 * Unpinned modules hold no instance memory: when a module's last reference
 * goes, its image's warm slots (freed instances' memories kept mapped for
 * reuse, see engine/image.c) are trimmed, so a function scaled to zero
 * keeps only its compiled code and its image until the LRU evicts them.
 *
 * Native code (the LLVM tier). A module serves from the interpreter at
 * once; when the daemon has a compiler (compiler.c) the module's .wasm is
 * compiled to native code in a child process in the background, the
 * object is sealed and stored next to the blobs (native_put) and attached
 * to the module, and every instance made from then on runs natively
 * (engine.h). A load finds stored native code (native_get) and attaches it
 * when its seal checks with the key: a restarted daemon or a module coming
 * back after eviction compiles nothing. A damaged, stale or foreign
 * artefact is refused by the engine, counted, and compiled again. The
 * module is pinned while it compiles.
 *
 * Images: once compiled (or loaded), the module is instantiated once in a
 * throwaway store (data and element segments, the start function, then
 * `wizer.initialize` when the module exports it, with args ["wizer"], no
 * env and output discarded) and that state is kept as an eng_image_t.
 * Every instance of every revision then starts from the image: a
 * copy-on-write mapping of its memory instead of re-running anything. The
 * image is made under the limits of the revision that loads the module
 * (its memory limit and timeout, rt_module_load_limits): a module whose
 * start function or initialiser traps, loops or grows memory past the
 * limit could never serve a request, so its load fails and it is not
 * cached (the admin API answers 400 at deploy). When only the state cannot
 * be imaged (it holds something an image cannot, see engine.h) instances
 * are made the ordinary way.
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/link.h"
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
    uint8_t native;      /* NATIVE_* */
    bool trial_safe;     /* rt_module_trial_safe */
    int16_t *link_plan;  /* rt_link_plan_new of mod */
    /* An upload (rt_module_load_bytes): its native compile waits for the
     * first reference after the upload's, when its blob is stored. */
    bool native_later;
    char native_err[ENG_ERR_MAX]; /* NATIVE_FAILED: why */
};

enum { NATIVE_NONE, NATIVE_COMPILING, NATIVE_READY, NATIVE_FAILED };

/* A compile does not pin its module: the module may be evicted meanwhile,
 * and then the stored artefact is what its next load finds. */
typedef struct native_job {
    rt_cache_t *c;             /* NULL once the cache is freed */
    struct native_job *next;   /* c->jobs */
    char *digest;
    rt_cache_config_t cfg;     /* the callbacks, as when it began */
    uint8_t *obj;
    size_t len;
    uint64_t ns;
    bool ok;
    /* rt_cache_forget dropped the module: store nothing for it (set on the
     * loop thread, read by native_work on a libuv worker). */
    atomic_bool dropped;
    char err[ENG_ERR_MAX];
    uv_work_t work;
} native_job_t;


/* How long the start function and wizer.initialize may run when a load
 * gives no limit (rt_module_load_limits). */
#define RT_INIT_TIMEOUT_NS (10ull * 1000000000ull)

/* Instantiates m once and captures its state, as the comment at the top
 * says, under the limits of the revision it is made for: linear memory
 * grows to memory_limit_bytes at most (0 = none beyond the spec's) and the
 * start function and wizer.initialize together run for timeout_ns. Runs
 * on xrun (a worker's exec, so the pool can interrupt it and switch it out
 * while others wait) or, when NULL, on an exec of its own. Returns NULL
 * with the reason in err; *fatal then says whether the module can never
 * start (its start function or initialiser traps, runs out of time or
 * needs more memory than the limit: every instance would fail the same
 * way) rather than only not be imaged (engine.h, eng_image_new), in which
 * case instances are made the ordinary way. */
static eng_image_t *image_make(const eng_module_t *m, eng_exec_t *xrun, uint64_t memory_limit_bytes,
                               uint64_t timeout_ns, bool *fatal, char *err, size_t errlen)
{
    uint32_t nimp = eng_module_import_count(m);
    eng_store_t *s = eng_store_new();
    wasi_ctx_t *w = wasi_ctx_new_detached(); /* stdin empty, output dropped */
    eng_exec_t *x = xrun ? xrun : eng_exec_new(0);
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    eng_image_t *img = NULL;
    ho_ctx_t *http = NULL;
    const char *argv0 = "wizer";
    *fatal = false;
    if (!s || !w || !x || !imports || wasi_ctx_set_args(w, 1, &argv0) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (memory_limit_bytes) eng_store_set_memory_limit(s, memory_limit_bytes);
    /* Outbound requests made while the image is made (start function,
     * wizer.initialize) are refused: no revision's list applies yet; no
     * key-value store is granted either (a wasmfn_kv open answers "no
     * such store"). */
    rt_link_t link = {.wasi = w, .http = &http, .function = "wizer"};
    if (rt_link_imports(&link, s, m, imports, err, errlen) != 0) goto out;
    if (!timeout_ns) timeout_ns = RT_INIT_TIMEOUT_NS;
    uint64_t deadline = eng_now_ns() + timeout_ns;
    eng_exec_set_deadline(x, deadline);
    wasi_ctx_set_deadline(w, deadline);
    char e[ENG_ERR_MAX];
    eng_instance_t *inst = eng_instance_new(s, m, imports, nimp, x, e, sizeof e);
    if (!inst) {
        *fatal = true;
        if (eng_now_ns() >= deadline)
            snprintf(err, errlen, "its start function did not finish within %llu ms",
                     (unsigned long long)(timeout_ns / 1000000));
        else
            snprintf(err, errlen, "it cannot be instantiated: %.200s", e);
        goto out;
    }
    eng_func_t *init = eng_instance_func(inst, "wizer.initialize");
    if (init && strcmp(eng_func_signature(init), "()") == 0) {
        eng_trap_t t = eng_call(x, init, NULL, NULL);
        if (t == ENG_TRAP_DEADLINE) {
            *fatal = true;
            snprintf(err, errlen, "wizer.initialize did not finish within %llu ms",
                     (unsigned long long)(timeout_ns / 1000000));
            goto out;
        }
        if (t != ENG_OK) {
            *fatal = true;
            snprintf(err, errlen, "wizer.initialize trapped: %s", eng_exec_trap_message(x));
            goto out;
        }
    }
    img = eng_image_new(inst, err, errlen);
out:
    free(imports);
    if (x && x != xrun) eng_exec_free(x);
    if (xrun) eng_exec_set_deadline(xrun, 0);
    if (s) eng_store_free(s);
    if (w) wasi_ctx_free(w);
    ho_ctx_free(http);
    return img;
}

/* "sha256:HEX" -> 32 bytes; false when it is not such a digest. */
static bool digest_bytes(const char *digest, uint8_t out[32])
{
    if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 7 + 64) return false;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(digest + 7 + 2 * i, "%2x", &v) != 1) return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* Attaches em's stored native code when there is some and its seal checks.
 * Returns 1 when attached, 0 when there is none (or no key), -1 when there
 * was one but it was refused (damaged, stale, foreign: compiled again).
 * Any thread. */
static int native_from_artifact(const rt_cache_config_t *cfg, const char *digest, eng_module_t *em)
{
    uint8_t d[32];
    if (!cfg->native_get || !cfg->native_key || !digest_bytes(digest, d)) return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    char e[ENG_ERR_MAX];
    int r = cfg->native_get(cfg->ud, digest, &buf, &len, e, sizeof e);
    if (r != 0) return r > 0 ? 0 : -1;
    const uint8_t *obj;
    size_t objlen;
    bool ok = eng_native_open(buf, len, d, cfg->native_key, &obj, &objlen, e, sizeof e) &&
              eng_module_attach_native(em, obj, objlen, e, sizeof e);
    free(buf);
    return ok ? 1 : -1;
}

struct rt_cache {
    rt_module_t *head, *tail; /* most recently used first */
    size_t count, npinned;
    uint64_t bytes, pinned_bytes;
    rt_cache_config_t cfg;
    rt_cache_stats_t stats;   /* the counters; sizes are filled in on demand */
    struct native_job *jobs;  /* native compiles under way */
    char *failed[256];        /* digests whose native compile failed (a ring) */
    uint32_t nfailed;
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
    free(m->link_plan);
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
    for (struct native_job *j = c->jobs; j; j = j->next) j->c = NULL;
    for (uint32_t i = 0; i < sizeof c->failed / sizeof c->failed[0]; i++) free(c->failed[i]);
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

static void native_schedule(rt_cache_t *c, rt_module_t *m);

static void pin(rt_module_t *m)
{
    if (m->refs++ == 0 && m->cache) {
        m->cache->npinned++;
        m->cache->pinned_bytes += m->bytes;
        if (m->native_later) {
            m->native_later = false;
            native_schedule(m->cache, m);
        }
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

/* Checks that the module links against WASI and the host APIs and has a runnable
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
    wasi_ctx_t *w = wasi_ctx_new_detached();
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    ho_ctx_t *http = NULL;
    rt_link_t link = {.wasi = w, .http = &http, .function = ""};
    int r = -1;
    if (!s || !w || !imports) snprintf(err, errlen, "out of memory");
    else r = rt_link_imports(&link, s, m, imports, err, errlen);
    free(imports);
    if (s) eng_store_free(s);
    if (w) wasi_ctx_free(w);
    ho_ctx_free(http);
    return r;
}

static uint64_t module_bytes(const rt_module_t *m)
{
    return eng_module_size_bytes(m->mod) + (m->image ? eng_image_memory_bytes(m->image) : 0);
}

/* ---- background native compiles ----------------------------------------- */


/* Digests whose native compile failed, so that a module reloaded after
 * eviction does not run a compile that fails again. Bounded: the oldest
 * is forgotten. */
#define NATIVE_FAILED_KEEP 256

static rt_module_t *cache_peek(rt_cache_t *c, const char *digest)
{
    for (rt_module_t *m = c->head; m; m = m->next)
        if (strcmp(m->digest, digest) == 0) return m;
    return NULL;
}

static void native_job_free(native_job_t *nj)
{
    free(nj->digest);
    free(nj->obj);
    free(nj);
}

static void native_finish(native_job_t *nj)
{
    rt_cache_t *c = nj->c;
    if (c) {
        for (native_job_t **p = &c->jobs; *p; p = &(*p)->next) {
            if (*p == nj) {
                *p = nj->next;
                break;
            }
        }
        rt_module_t *m = cache_peek(c, nj->digest);
        if (nj->ok && m && m->native != NATIVE_READY)
            nj->ok = eng_module_attach_native(m->mod, nj->obj, nj->len, nj->err, sizeof nj->err);
        if (nj->ok) {
            c->stats.native_compiled++;
        } else {
            c->stats.native_failed++;
            if (strcmp(nj->err, "stopped") != 0) {
                uint32_t slot = c->nfailed++ % NATIVE_FAILED_KEEP;
                free(c->failed[slot]);
                c->failed[slot] = nj->digest; /* kept */
                nj->digest = NULL;
            }
        }
        if (m) {
            m->native = nj->ok ? NATIVE_READY : NATIVE_FAILED;
            if (!nj->ok) snprintf(m->native_err, sizeof m->native_err, "failed: %.200s", nj->err);
            /* The native code counts against the bound now. */
            uint64_t b = module_bytes(m);
            c->bytes = c->bytes - m->bytes + b;
            if (m->refs) c->pinned_bytes = c->pinned_bytes - m->bytes + b;
            m->bytes = b;
        }
        if (nj->cfg.native_done)
            nj->cfg.native_done(nj->cfg.ud, m ? m->digest : nj->digest ? nj->digest : "", nj->ok, nj->ns,
                                nj->ok ? NULL : nj->err);
        cache_evict(c);
    }
    native_job_free(nj);
}

/* On a libuv worker: seal and store the object (a cache: best effort). */
static void native_work(uv_work_t *w)
{
    native_job_t *nj = w->data;
    const rt_cache_config_t *cfg = &nj->cfg;
    uint8_t d[32];
    if (cfg->native_put && cfg->native_key && !atomic_load(&nj->dropped) &&
        digest_bytes(nj->digest, d)) {
        uint8_t *art;
        size_t alen;
        char e[ENG_ERR_MAX];
        if (eng_native_seal(nj->obj, nj->len, d, cfg->native_key, &art, &alen, e, sizeof e)) {
            cfg->native_put(cfg->ud, nj->digest, art, alen, e, sizeof e);
            free(art);
        }
    }
}

static void native_after(uv_work_t *w, int status)
{
    (void)status;
    native_finish(w->data);
}

static void native_compiled(void *ud, uint8_t *obj, size_t len, const char *err, uint64_t ns)
{
    native_job_t *nj = ud;
    nj->ns = ns;
    if (!obj) {
        snprintf(nj->err, sizeof nj->err, "%s", err ? err : "failed");
        native_finish(nj);
        return;
    }
    nj->ok = true;
    nj->obj = obj;
    nj->len = len;
    nj->work.data = nj;
    if (!nj->cfg.loop || uv_queue_work(nj->cfg.loop, &nj->work, native_work, native_after) != 0) {
        native_work(&nj->work);
        native_finish(nj);
    }
}

/* Starts compiling m to native code when that is wanted and not done (or
 * under way, or known to fail). */
static void native_schedule(rt_cache_t *c, rt_module_t *m)
{
    const rt_cache_config_t *cfg = &c->cfg;
    if (m->native != NATIVE_NONE || !cfg->compiler || !cfg->load_blob) return;
    for (native_job_t *j = c->jobs; j; j = j->next) {
        if (strcmp(j->digest, m->digest) == 0) {
            m->native = NATIVE_COMPILING;
            return;
        }
    }
    for (uint32_t i = 0; i < NATIVE_FAILED_KEEP && i < c->nfailed; i++) {
        if (c->failed[i] && strcmp(c->failed[i], m->digest) == 0) {
            m->native = NATIVE_FAILED;
            snprintf(m->native_err, sizeof m->native_err, "failed: it failed before");
            return;
        }
    }
    native_job_t *nj = calloc(1, sizeof *nj);
    uint8_t *bytes = NULL;
    size_t len = 0;
    char e[ENG_ERR_MAX] = "out of memory";
    if (!nj || !(nj->digest = strdup(m->digest)) ||
        cfg->load_blob(cfg->ud, m->digest, &bytes, &len, e, sizeof e) != 0) {
        snprintf(m->native_err, sizeof m->native_err, "failed: %.200s", e);
        if (nj) free(nj->digest);
        free(nj);
        m->native = NATIVE_FAILED;
        return;
    }
    nj->c = c;
    nj->cfg = *cfg;
    nj->next = c->jobs;
    c->jobs = nj;
    m->native = NATIVE_COMPILING;
    if (rt_compiler_submit(cfg->compiler, bytes, len, native_compiled, nj) != 0) {
        snprintf(nj->err, sizeof nj->err, "out of memory");
        native_finish(nj);
    }
}

/* Adds em (checked runnable) and its image (NULL, with the reason in
 * image_err) as module `digest` with one reference; NULL (both freed) when
 * out of memory. */
static rt_module_t *cache_insert(rt_cache_t *c, const char *digest, eng_module_t *em,
                                 eng_image_t *img, const char *image_err, bool native_later,
                                 char *err, size_t errlen)
{
    rt_module_t *m = calloc(1, sizeof *m);
    if (!m || !(m->digest = strdup(digest))) {
        free(m);
        eng_image_free(img);
        eng_module_free(em);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->mod = em;
    m->image = img;
    m->trial_safe = img && rt_link_trial_safe(em);
    m->link_plan = rt_link_plan_new(em);
    if (!img) snprintf(m->image_err, sizeof m->image_err, "%s", image_err ? image_err : "");
    m->bytes = module_bytes(m);
    m->native = eng_module_tier(em) == ENG_TIER_NATIVE ? NATIVE_READY : NATIVE_NONE;
    m->cache = c;
    lru_push_front(c, m);
    c->count++;
    c->bytes += m->bytes;
    pin(m);
    cache_evict(c);
    if (native_later) m->native_later = true;
    else native_schedule(c, m);
    return m;
}

/* Serialises em and hands it to put as digest's artefact. Returns false
 * when that failed (the next load compiles again); any thread. */
static bool artifact_write(const rt_cache_config_t *cfg, const char *digest,
                           const eng_module_t *em)
{
    if (!cfg->artifact_put) return true;
    uint8_t *buf;
    size_t len;
    char e[ENG_ERR_MAX];
    if (!eng_module_serialize(em, &buf, &len, e, sizeof e)) return false;
    bool ok = cfg->artifact_put(cfg->ud, digest, buf, len, e, sizeof e) == 0;
    free(buf);
    return ok;
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
    if (!artifact_write(&c->cfg, digest, em)) c->stats.artifact_errors++;
    int nr = native_from_artifact(&c->cfg, digest, em);
    if (nr > 0) c->stats.native_loaded++;
    else if (nr < 0) c->stats.artifact_errors++;
    char ierr[ENG_ERR_MAX];
    bool fatal;
    eng_image_t *img = image_make(em, NULL, 0, 0, &fatal, ierr, sizeof ierr);
    if (fatal) {
        snprintf(err, errlen, "the module cannot start: %s", ierr);
        eng_module_free(em);
        return NULL;
    }
    return cache_insert(c, digest, em, img, ierr, false, err, errlen);
}

/* ---- loads off the loop thread ------------------------------------------ */

struct rt_module_load {
    char *digest;
    rt_cache_config_t cfg;     /* the callbacks, as when the load began */
    uint64_t memory_limit_bytes, init_timeout_ns; /* for the image (rt_module_load_limits) */
    bool ran;
    /* What rt_module_load_run found. */
    eng_module_t *mod;         /* NULL: failed, see err */
    eng_image_t *image;
    char image_err[ENG_ERR_MAX];
    bool image_fatal;          /* the module can never start: image_err says why */
    rt_load_source_t source;
    uint64_t artifact_errors;
    bool native_loaded;        /* native code attached from its artefact */
    /* rt_module_load_bytes: the module's bytes (the caller's), compiled
     * instead of reading an artefact or the blob. */
    const uint8_t *bytes;
    size_t len;
    bool invalid;              /* the bytes are not a valid module (err is the engine's) */
    char err[ENG_ERR_MAX];
};

rt_module_load_t *rt_module_load_new(const rt_cache_t *c, const char *digest)
{
    rt_module_load_t *l = calloc(1, sizeof *l);
    if (!l || !(l->digest = strdup(digest))) {
        free(l);
        return NULL;
    }
    l->cfg = c->cfg;
    return l;
}

rt_module_load_t *rt_module_load_bytes(const rt_cache_t *c, const char *digest,
                                       const uint8_t *bytes, size_t len)
{
    rt_module_load_t *l = rt_module_load_new(c, digest);
    if (!l) return NULL;
    l->bytes = bytes;
    l->len = len;
    return l;
}

bool rt_module_load_invalid(const rt_module_load_t *l) { return l->invalid; }

void rt_module_load_limits(rt_module_load_t *l, uint64_t memory_limit_bytes,
                           uint64_t init_timeout_ns)
{
    l->memory_limit_bytes = memory_limit_bytes;
    l->init_timeout_ns = init_timeout_ns;
}

void rt_module_load_run(rt_module_load_t *l, eng_exec_t *x)
{
    if (l->ran) return;
    l->ran = true;
    const rt_cache_config_t *cfg = &l->cfg;
    eng_module_t *em = NULL;
    if (l->bytes) {
        /* An upload: these bytes are the module, and the compile is also
         * its validation. */
        em = eng_module_new(l->bytes, l->len, l->err, sizeof l->err);
        if (!em) {
            l->invalid = true;
            return;
        }
        if (check_runnable(em, l->err, sizeof l->err) != 0) {
            eng_module_free(em);
            return;
        }
        l->source = RT_LOAD_COMPILED;
        if (!artifact_write(cfg, l->digest, em)) l->artifact_errors++;
    } else if (cfg->artifact_get) {
        uint8_t *buf = NULL;
        size_t len = 0;
        char e[ENG_ERR_MAX];
        int r = cfg->artifact_get(cfg->ud, l->digest, &buf, &len, e, sizeof e);
        if (r == 0) {
            em = eng_module_deserialize(buf, len, e, sizeof e);
            free(buf);
            /* The artefact was written only for a runnable module, but it
             * is cheap to be sure it matches what the data plane needs. */
            if (em && check_runnable(em, e, sizeof e) != 0) {
                eng_module_free(em);
                em = NULL;
            }
            if (em) l->source = RT_LOAD_SERIALIZED;
            else l->artifact_errors++; /* damaged or stale: rebuilt below */
        } else if (r < 0) {
            l->artifact_errors++;
        }
    }
    if (!em) {
        if (!cfg->load_blob) {
            snprintf(l->err, sizeof l->err,
                     "module %s is not cached and there is no way to load it", l->digest);
            return;
        }
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (cfg->load_blob(cfg->ud, l->digest, &bytes, &len, l->err, sizeof l->err) != 0)
            return;
        em = eng_module_new(bytes, len, l->err, sizeof l->err);
        free(bytes);
        if (!em) return;
        if (check_runnable(em, l->err, sizeof l->err) != 0) {
            eng_module_free(em);
            return;
        }
        l->source = RT_LOAD_COMPILED;
        if (!artifact_write(cfg, l->digest, em)) l->artifact_errors++;
    }
    int nr = native_from_artifact(cfg, l->digest, em);
    if (nr > 0) l->native_loaded = true;
    else if (nr < 0) l->artifact_errors++;
    l->mod = em;
    l->image = image_make(em, x, l->memory_limit_bytes, l->init_timeout_ns, &l->image_fatal,
                          l->image_err, sizeof l->image_err);
}

void rt_module_load_free(rt_module_load_t *l)
{
    if (!l) return;
    eng_image_free(l->image);
    eng_module_free(l->mod);
    free(l->digest);
    free(l);
}

const char *rt_module_load_digest(const rt_module_load_t *l) { return l->digest; }

rt_module_t *rt_cache_load_finish(rt_cache_t *c, rt_module_load_t *l, rt_load_source_t *source,
                                  char *err, size_t errlen)
{
    rt_load_source_t dummy;
    if (!source) source = &dummy;
    *source = RT_LOAD_CACHED;
    c->stats.artifact_errors += l->artifact_errors;
    /* Another load of the same digest may have finished first: one copy. */
    rt_module_t *m = rt_cache_find(c, l->digest);
    if (m) {
        rt_module_load_free(l);
        return m;
    }
    if (!l->mod) {
        snprintf(err, errlen, "%s", l->ran ? l->err : "the load did not run");
        rt_module_load_free(l);
        return NULL;
    }
    /* Not cached: a load under another revision's limits (more memory,
     * more time) may yet succeed, and must not find this failure. */
    if (l->image_fatal) {
        snprintf(err, errlen, "the module cannot start: %s", l->image_err);
        rt_module_load_free(l);
        return NULL;
    }
    if (l->source == RT_LOAD_SERIALIZED) c->stats.loads_serialized++;
    else c->stats.loads_compiled++;
    if (l->native_loaded) c->stats.native_loaded++;
    *source = l->source;
    m = cache_insert(c, l->digest, l->mod, l->image, l->image_err, l->bytes != NULL, err,
                     errlen);
    l->mod = NULL;
    l->image = NULL;
    rt_module_load_free(l);
    return m;
}

rt_module_t *rt_cache_load(rt_cache_t *c, const char *digest, rt_load_source_t *source,
                           char *err, size_t errlen)
{
    rt_load_source_t dummy;
    if (!source) source = &dummy;
    *source = RT_LOAD_CACHED;
    rt_module_t *m = rt_cache_find(c, digest);
    if (m) return m;
    rt_module_load_t *l = rt_module_load_new(c, digest);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rt_module_load_run(l, NULL);
    return rt_cache_load_finish(c, l, source, err, errlen);
}

bool rt_cache_forget(rt_cache_t *c, const char *digest)
{
    /* A compile under way finishes, but stores nothing (best effort: one
     * already storing may still leave its artefact, a harmless cache). */
    for (native_job_t *j = c->jobs; j; j = j->next)
        if (strcmp(j->digest, digest) == 0) atomic_store(&j->dropped, true);
    rt_module_t *m = cache_peek(c, digest);
    if (!m || m->refs) return false;
    lru_unlink(c, m);
    c->count--;
    c->bytes -= m->bytes;
    module_free(m);
    return true;
}

size_t rt_cache_count(const rt_cache_t *c) { return c->count; }

void rt_cache_stats(const rt_cache_t *c, rt_cache_stats_t *out)
{
    *out = c->stats;
    out->native_modules = 0;
    for (const rt_module_t *m = c->head; m; m = m->next)
        if (m->native == NATIVE_READY) out->native_modules++;
    out->bytes = c->bytes;
    out->pinned_bytes = c->pinned_bytes;
    out->modules = c->count;
    out->pinned = c->npinned;
}

void rt_module_ref(rt_module_t *m) { pin(m); }

void rt_module_release(rt_module_t *m)
{
    if (!m || --m->refs > 0) return;
    /* Unpinned: no instance is left, so the slots kept warm for the next
     * ones go back to the system. */
    if (m->image) eng_image_trim(m->image);
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
bool rt_module_trial_safe(const rt_module_t *m) { return m->trial_safe; }
const int16_t *rt_module_link_plan(const rt_module_t *m) { return m->link_plan; }

int rt_module_check_limit(const rt_module_t *m, uint64_t memory_limit_bytes, char *err,
                          size_t errlen)
{
    if (!m->image || !memory_limit_bytes) return 0;
    uint64_t need = eng_image_memory_size_bytes(m->image);
    if (need <= memory_limit_bytes) return 0;
    snprintf(err, errlen,
             "the module cannot start: its memory after initialisation is %llu bytes, over the "
             "memory limit of %llu bytes",
             (unsigned long long)need, (unsigned long long)memory_limit_bytes);
    return -1;
}

const char *rt_module_tier(const rt_module_t *m, const char **detail)
{
    const char *d = "";
    const char *tier = "interp";
    switch (m->native) {
    case NATIVE_READY: tier = "native"; break;
    case NATIVE_COMPILING: d = "compiling"; break;
    case NATIVE_FAILED: d = m->native_err; break;
    default: break;
    }
    if (detail) *detail = d;
    return tier;
}

const char *rt_cache_tier(const rt_cache_t *c, const char *digest, const char **detail)
{
    for (const rt_module_t *m = c->head; m; m = m->next)
        if (strcmp(m->digest, digest) == 0) return rt_module_tier(m, detail);
    if (detail) *detail = "";
    return "not loaded";
}
