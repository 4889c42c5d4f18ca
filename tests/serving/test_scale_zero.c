/*
 * test_scale_zero.c — scale from zero with the module load in flight, made
 * deterministic by artefact reads that block on a gate until the test
 * opens it:
 *
 *   - runtime (src/runtime/module.c): a load split into new (loop), run
 *     (any thread) and finish (loop) — the artefact is used, two loads of
 *     one digest give one module, a failure keeps its message — and a
 *     module's last reference trims its image's warm slots;
 *   - data plane (src/serving/serving.c, over a real listener and a client
 *     thread): a revision deployed at initial-scale 0 pins nothing; calls to
 *     it wait in its queue while its module loads on a worker (the loop
 *     keeps admitting them) and are answered after the one load; delete
 *     and a new revision while the load is in flight; a module that cannot
 *     be loaded is a 502 naming it, logged; drain with a load in flight,
 *     then srv_free with another still running (its completion never runs:
 *     srv_free frees it; the ASan build checks for leaks).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "serving/serving.h"

/* A WASI command answering a CGI response "ok" (wat2wasm of:
 *   (module
 *     (import "wasi_snapshot_preview1" "fd_write"
 *       (func $w (param i32 i32 i32 i32) (result i32)))
 *     (memory (export "memory") 1)
 *     (data (i32.const 64) "Content-Type: text/plain\n\nok\n")
 *     (func (export "_start")
 *       (i32.store (i32.const 0) (i32.const 64))
 *       (i32.store (i32.const 4) (i32.const 29))
 *       (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))). */
static const uint8_t mod_ok[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x02, 0x60, 0x04, 0x7f,
    0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00, 0x02, 0x23, 0x01, 0x16, 0x77, 0x61,
    0x73, 0x69, 0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70, 0x72,
    0x65, 0x76, 0x69, 0x65, 0x77, 0x31, 0x08, 0x66, 0x64, 0x5f, 0x77, 0x72, 0x69, 0x74,
    0x65, 0x00, 0x00, 0x03, 0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13,
    0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x06, 0x5f, 0x73, 0x74,
    0x61, 0x72, 0x74, 0x00, 0x01, 0x0a, 0x1e, 0x01, 0x1c, 0x00, 0x41, 0x00, 0x41, 0xc0,
    0x00, 0x36, 0x02, 0x00, 0x41, 0x04, 0x41, 0x1d, 0x36, 0x02, 0x00, 0x41, 0x01, 0x41,
    0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1a, 0x0b, 0x0b, 0x24, 0x01, 0x00, 0x41,
    0xc0, 0x00, 0x0b, 0x1d, 0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x54, 0x79,
    0x70, 0x65, 0x3a, 0x20, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e,
    0x0a, 0x0a, 0x6f, 0x6b, 0x0a};

/* ---- a store whose artefact reads can be held --------------------------- */

#define NDIG 8

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *digests[NDIG]; /* every one is mod_ok */
    bool gone[NDIG];           /* blob and artefact removed */
    bool gated[NDIG];          /* artifact_get waits while set */
    int in_get[NDIG];          /* artifact_get calls waiting at the gate */
    uint8_t *art[NDIG];
    size_t art_len[NDIG];
    int blob_reads, art_reads, art_writes;
} fake_t;

static fake_t F = {.mu = PTHREAD_MUTEX_INITIALIZER,
                   .cv = PTHREAD_COND_INITIALIZER,
                   .digests = {"sha256:a", "sha256:b", "sha256:c", "sha256:d", "sha256:e",
                               "sha256:f", "sha256:g", "sha256:h"}};

static int dig(const char *d)
{
    for (int i = 0; i < NDIG; i++)
        if (strcmp(F.digests[i], d) == 0) return i;
    return -1;
}

static int fake_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen)
{
    (void)ud;
    int i = dig(digest);
    pthread_mutex_lock(&F.mu);
    bool gone = i < 0 || F.gone[i];
    F.blob_reads++;
    pthread_mutex_unlock(&F.mu);
    if (gone) {
        snprintf(err, errlen, "no blob %s", digest);
        return -1;
    }
    *bytes = malloc(sizeof mod_ok);
    memcpy(*bytes, mod_ok, sizeof mod_ok);
    *len = sizeof mod_ok;
    return 0;
}

static int fake_art_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                        size_t errlen)
{
    (void)ud;
    (void)err;
    (void)errlen;
    int i = dig(digest);
    if (i < 0) return 1;
    pthread_mutex_lock(&F.mu);
    F.art_reads++;
    F.in_get[i]++;
    pthread_cond_broadcast(&F.cv);
    while (F.gated[i]) pthread_cond_wait(&F.cv, &F.mu);
    F.in_get[i]--;
    int r = 1;
    if (F.art[i] && !F.gone[i]) {
        *bytes = malloc(F.art_len[i]);
        memcpy(*bytes, F.art[i], F.art_len[i]);
        *len = F.art_len[i];
        r = 0;
    }
    pthread_mutex_unlock(&F.mu);
    return r;
}

static int fake_art_put(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                        char *err, size_t errlen)
{
    (void)ud;
    int i = dig(digest);
    if (i < 0) {
        snprintf(err, errlen, "unknown %s", digest);
        return -1;
    }
    pthread_mutex_lock(&F.mu);
    free(F.art[i]);
    F.art[i] = malloc(len);
    memcpy(F.art[i], bytes, len);
    F.art_len[i] = len;
    F.art_writes++;
    pthread_mutex_unlock(&F.mu);
    return 0;
}

static void gate(int i, bool closed)
{
    pthread_mutex_lock(&F.mu);
    F.gated[i] = closed;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
}

static int waiting_at_gate(int i)
{
    pthread_mutex_lock(&F.mu);
    int n = F.in_get[i];
    pthread_mutex_unlock(&F.mu);
    return n;
}

static void fake_reset(void)
{
    for (int i = 0; i < NDIG; i++) {
        free(F.art[i]);
        F.art[i] = NULL;
        F.art_len[i] = 0;
        F.gone[i] = F.gated[i] = false;
    }
    F.blob_reads = F.art_reads = F.art_writes = 0;
}

/* ---- runtime: the load split and trimming -------------------------------- */

static rt_cache_t *cache_new(uint64_t max)
{
    rt_cache_t *c = rt_cache_new();
    rt_cache_config_t cfg = {.max_bytes = max, .load_blob = fake_blob,
                             .artifact_get = fake_art_get, .artifact_put = fake_art_put};
    rt_cache_configure(c, &cfg);
    return c;
}

static void *run_load(void *l)
{
    rt_module_load_run(l, NULL);
    return NULL;
}

static void test_load_split(void **state)
{
    (void)state;
    fake_reset();
    rt_cache_t *c = cache_new(1ull << 30);
    char err[256];
    rt_load_source_t src;
    rt_cache_stats_t st;

    /* No artefact yet: compiled, and the artefact written (on the thread
     * that ran the load). */
    rt_module_load_t *l = rt_module_load_new(c, "sha256:a");
    assert_string_equal(rt_module_load_digest(l), "sha256:a");
    pthread_t t;
    pthread_create(&t, NULL, run_load, l);
    pthread_join(t, NULL);
    assert_int_equal(rt_cache_count(c), 0); /* run touches no cache state */
    rt_module_t *m = rt_cache_load_finish(c, l, &src, err, sizeof err);
    assert_non_null(m);
    assert_int_equal(src, RT_LOAD_COMPILED);
    assert_int_equal(F.art_writes, 1);
    assert_non_null(rt_module_image(m));
    rt_module_release(m);

    /* Evicted; two loads at once: both read the artefact, one module. */
    rt_cache_configure(c, &(rt_cache_config_t){.max_bytes = 1, .load_blob = fake_blob,
                                               .artifact_get = fake_art_get,
                                               .artifact_put = fake_art_put});
    assert_int_equal(rt_cache_count(c), 0);
    int blobs = F.blob_reads;
    rt_module_load_t *l1 = rt_module_load_new(c, "sha256:a");
    rt_module_load_t *l2 = rt_module_load_new(c, "sha256:a");
    pthread_t t1, t2;
    pthread_create(&t1, NULL, run_load, l1);
    pthread_create(&t2, NULL, run_load, l2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    rt_module_t *m1 = rt_cache_load_finish(c, l1, &src, err, sizeof err);
    assert_non_null(m1);
    assert_int_equal(src, RT_LOAD_SERIALIZED);
    rt_module_t *m2 = rt_cache_load_finish(c, l2, &src, err, sizeof err);
    assert_ptr_equal(m1, m2);
    assert_int_equal(src, RT_LOAD_CACHED);
    assert_int_equal(F.blob_reads, blobs); /* the .wasm was not read */
    rt_cache_stats(c, &st);
    assert_int_equal(st.loads_compiled, 1);
    assert_int_equal(st.loads_serialized, 1);
    assert_int_equal(st.modules, 1);
    rt_module_release(m1);
    rt_module_release(m2); /* unpinned over the bound: evicted */
    assert_int_equal(rt_cache_count(c), 0);

    /* A module that cannot be had: the load's message, nothing cached. */
    F.gone[1] = true;
    l = rt_module_load_new(c, "sha256:b");
    rt_module_load_run(l, NULL);
    assert_null(rt_cache_load_finish(c, l, &src, err, sizeof err));
    assert_string_equal(err, "no blob sha256:b");
    /* A load dropped without being finished frees what it made. */
    l = rt_module_load_new(c, "sha256:a");
    rt_module_load_run(l, NULL);
    rt_module_load_free(l);
    rt_module_load_free(rt_module_load_new(c, "sha256:a")); /* and one never run */
    /* Finishing a load that never ran is an error, not a crash. */
    l = rt_module_load_new(c, "sha256:a");
    assert_null(rt_cache_load_finish(c, l, &src, err, sizeof err));
    rt_cache_free(c);
    fake_reset();
}

static void test_release_trims_warm_slots(void **state)
{
    (void)state;
    fake_reset();
    rt_cache_t *c = cache_new(1ull << 30);
    char err[256];
    rt_module_t *m = rt_cache_load(c, "sha256:a", NULL, err, sizeof err);
    assert_non_null(m);
    const eng_image_t *img = rt_module_image(m);
    assert_non_null(img);
    eng_exec_t *x = eng_exec_new(0);
    rt_instance_config_t icfg = {.name = "fn", .memory_limit_bytes = 16u << 20};
    for (int k = 0; k < 2; k++) {
        rt_instance_t *i = rt_instance_new(m, &icfg, x, err, sizeof err);
        assert_non_null(i);
        rt_request_t rq = {.stdin_bytes = (const uint8_t *)"", .max_stdout_bytes = 1024};
        rt_result_t res;
        assert_int_equal(rt_instance_run(i, x, &rq, &res), 0);
        assert_int_equal(res.out_len, 29);
        free(res.out);
        rt_instance_free(i);
    }
    uint32_t warm = eng_image_warm_slots(img);
    rt_module_release(m); /* the last reference: unpinned, still cached */
    assert_int_equal(rt_cache_count(c), 1);
    assert_int_equal(eng_image_warm_slots(img), 0);
    if (warm == 0) print_message("no warm slots here (no /proc/self/pagemap?): trim not seen\n");
    eng_exec_free(x);
    rt_cache_free(c);
    fake_reset();
}

/* ---- the data plane ------------------------------------------------------ */

typedef struct client {
    pthread_t thread;
    uint16_t port;
    char path[64];
    volatile int done;
    int status;
    char body[512];
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    char buf[4096];
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->status = -1;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char rq[256];
        int l = snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         c->path);
        if (write(fd, rq, (size_t)l) == l) {
            ssize_t r;
            while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
                n += (size_t)r;
        }
    }
    if (fd >= 0) close(fd);
    buf[n] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &c->status) != 1) c->status = 0;
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(c->body, sizeof c->body, "%s", b ? b + 4 : "");
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void client_start(client_t *c, uint16_t port, const char *fn)
{
    memset(c, 0, sizeof *c);
    c->port = port;
    snprintf(c->path, sizeof c->path, "/fn/%s/", fn);
    pthread_create(&c->thread, NULL, client_main, c);
}

static bool client_done(client_t *c) { return __atomic_load_n(&c->done, __ATOMIC_ACQUIRE); }

typedef bool (*pred_fn)(void *);

/* Runs the loop until pred holds; false after 10 s. */
static bool run_until(uv_loop_t *loop, pred_fn pred, void *arg)
{
    for (int i = 0; i < 10000; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (pred(arg)) return true;
        usleep(1000);
    }
    return false;
}

static bool pred_clients(void *arg)
{
    client_t **cs = arg;
    for (; *cs; cs++)
        if (!client_done(*cs)) return false;
    return true;
}

typedef struct gate_wait {
    int digest, n;
    srv_t *s;
    const char *fn;
    uint32_t queued;
} gate_wait_t;

/* The load is at the gate and the function has `queued` calls waiting. */
static bool pred_gate(void *arg)
{
    gate_wait_t *g = arg;
    srv_status_t st = {0};
    if (g->fn && srv_function_status(g->s, g->fn, &st) != 0) return false;
    return waiting_at_gate(g->digest) >= g->n && st.queued == g->queued;
}

static bool pred_flag(void *arg) { return *(volatile bool *)arg; }

static double metric(mx_registry_t *mx, const char *series)
{
    size_t len;
    char *text = mx_registry_render(mx, &len);
    const char *p = text;
    double v = -1;
    size_t sl = strlen(series);
    while ((p = strstr(p, series))) {
        if ((p == text || p[-1] == '\n') && p[sl] == ' ') {
            v = strtod(p + sl + 1, NULL);
            break;
        }
        p += sl;
    }
    free(text);
    return v < 0 ? 0 : v;
}

static void put(srv_t *s, const char *fn, const char *rev, const char *digest, uint32_t timeout_ms)
{
    srv_revision_t r = {.name = rev, .digest = digest, .timeout_ms = timeout_ms};
    as_config_default(&r.scaling);
    r.scaling.initial_scale = 0;
    r.scaling.stable_window_ns = 6000000000ull;
    srv_route_t route = {.revision = rev, .percent = 100};
    char err[256];
    int rc = srv_function_put(s, fn, &r, 1, &route, 1, err, sizeof err);
    if (rc != 0) fail_msg("put %s: %s", fn, err);
}

static void on_drained(void *ud) { *(bool *)ud = true; }

static void *open_gate_later(void *arg)
{
    usleep(50000);
    gate((int)(intptr_t)arg, false);
    return NULL;
}

static void test_data_plane(void **state)
{
    (void)state;
    fake_reset();
    uv_loop_t loop;
    uv_loop_init(&loop);
    mx_registry_t *mx = mx_registry_new();
    srv_config_t cfg = {.loop = &loop, .workers = 2, .metrics = mx,
                        .limits = {.max_header_bytes = 16384, .max_body_bytes = 1 << 20},
                        .load_blob = fake_blob, .artifact_get = fake_art_get,
                        .artifact_put = fake_art_put, .module_cache_bytes = 1};
    char err[256];
    srv_t *s = srv_new(&cfg, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(srv_listen(s, "127.0.0.1:0", err, sizeof err), 0);
    uint16_t port = srv_port(s);

    /* Deployed at initial-scale 0: compiled, unpinned, evicted (bound 1). */
    put(s, "f", "f-00001", "sha256:a", 0);
    assert_true(metric(mx, "wasmfn_module_loads_total{source=\"compiled\"}") == 1);
    assert_true(metric(mx, "wasmfn_module_cache_modules{state=\"pinned\"}") == 0);
    assert_true(metric(mx, "wasmfn_module_cache_bytes") == 0);

    /* Three calls while the load is held: the loop admits them all into
     * the queue (it is not blocked by the load), one load serves them. */
    gate(0, true);
    client_t c1, c2, c3;
    client_start(&c1, port, "f");
    gate_wait_t gw = {.digest = 0, .n = 1, .s = s, .fn = "f", .queued = 1};
    assert_true(run_until(&loop, pred_gate, &gw));
    client_start(&c2, port, "f");
    client_start(&c3, port, "f");
    gw.queued = 3;
    assert_true(run_until(&loop, pred_gate, &gw));
    srv_status_t st;
    srv_function_status(s, "f", &st);
    assert_int_equal(st.busy, 0);
    gate(0, false);
    client_t *all[] = {&c1, &c2, &c3, NULL};
    assert_true(run_until(&loop, pred_clients, all));
    for (int i = 0; all[i]; i++) {
        pthread_join(all[i]->thread, NULL);
        assert_int_equal(all[i]->status, 200);
        assert_string_equal(all[i]->body, "ok\n");
    }
    assert_true(metric(mx, "wasmfn_module_loads_total{source=\"serialized\"}") == 1);
    assert_true(metric(mx, "wasmfn_module_loads_total{source=\"compiled\"}") == 1);
    assert_true(metric(mx, "wasmfn_cold_starts_total{function=\"f\",revision=\"f-00001\"}") == 3);

    /* Delete while the load is in flight: the call admitted before is
     * still served, by the retired revision. */
    put(s, "g", "g-00001", "sha256:b", 0);
    gate(1, true);
    client_start(&c1, port, "g");
    gw = (gate_wait_t){.digest = 1, .n = 1, .s = s, .fn = "g", .queued = 1};
    assert_true(run_until(&loop, pred_gate, &gw));
    assert_int_equal(srv_function_delete(s, "g"), 0);
    gate(1, false);
    client_t *one[] = {&c1, NULL};
    assert_true(run_until(&loop, pred_clients, one));
    pthread_join(c1.thread, NULL);
    assert_int_equal(c1.status, 200);
    assert_string_equal(c1.body, "ok\n");

    /* A new revision (another module) while the old one's load is held:
     * new calls go to the new revision; the old call is served after. */
    put(s, "h", "h-00001", "sha256:c", 0);
    gate(2, true);
    client_start(&c1, port, "h");
    gw = (gate_wait_t){.digest = 2, .n = 1, .s = s, .fn = "h", .queued = 1};
    assert_true(run_until(&loop, pred_gate, &gw));
    put(s, "h", "h-00002", "sha256:d", 0);
    client_start(&c2, port, "h");
    assert_true(run_until(&loop, pred_clients, (client_t *[]){&c2, NULL}));
    pthread_join(c2.thread, NULL);
    assert_int_equal(c2.status, 200);
    assert_false(client_done(&c1));
    gate(2, false);
    assert_true(run_until(&loop, pred_clients, one));
    pthread_join(c1.thread, NULL);
    assert_int_equal(c1.status, 200);

    /* A module that cannot be loaded: 502 naming it and the fault, and a
     * line in the function's log. */
    put(s, "k", "k-00001", "sha256:e", 0);
    F.gone[4] = true;
    client_start(&c1, port, "k");
    assert_true(run_until(&loop, pred_clients, one));
    pthread_join(c1.thread, NULL);
    assert_int_equal(c1.status, 502);
    assert_string_equal(c1.body, "function k: cannot load module sha256:e: no blob sha256:e\n");
    uint64_t next;
    size_t len;
    char *log = lr_ring_read(srv_function_logs(s, "k"), 0, 0, &next, &len);
    assert_non_null(strstr(log, "k-00001: wasmfn: cannot load module sha256:e: no blob sha256:e"));
    free(log);

    /* Nothing is pinned now that every revision is at zero. */
    assert_true(metric(mx, "wasmfn_module_cache_modules{state=\"pinned\"}") == 0);
    assert_true(metric(mx, "wasmfn_module_cache_pinned_bytes") == 0);

    /* Drain with two loads held: m's call (long timeout) waits for its
     * load and is served once the gate opens; n's call (300 ms) times
     * out while its load is still held. Then srv_free with n's load still
     * running: its completion never runs, srv_free frees it. */
    put(s, "m", "m-00001", "sha256:f", 0);
    put(s, "n", "n-00001", "sha256:g", 300);
    gate(5, true);
    gate(6, true);
    client_start(&c1, port, "m");
    client_start(&c2, port, "n");
    gw = (gate_wait_t){.digest = 5, .n = 1, .s = s, .fn = "m", .queued = 1};
    assert_true(run_until(&loop, pred_gate, &gw));
    gw = (gate_wait_t){.digest = 6, .n = 1, .s = s, .fn = "n", .queued = 1};
    assert_true(run_until(&loop, pred_gate, &gw));
    bool drained = false;
    srv_drain(s, on_drained, &drained);
    assert_true(run_until(&loop, pred_clients, (client_t *[]){&c2, NULL}));
    pthread_join(c2.thread, NULL);
    assert_int_equal(c2.status, 504);
    assert_false(drained);
    gate(5, false);
    assert_true(run_until(&loop, pred_flag, &drained));
    pthread_join(c1.thread, NULL);
    assert_int_equal(c1.status, 200);
    assert_int_equal(waiting_at_gate(6), 1); /* n's load is still in flight */
    pthread_t opener;
    pthread_create(&opener, NULL, open_gate_later, (void *)(intptr_t)6);
    srv_free(s);
    pthread_join(opener, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    mx_registry_free(mx);
    fake_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_split),
        cmocka_unit_test(test_release_trims_warm_slots),
        cmocka_unit_test(test_data_plane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
