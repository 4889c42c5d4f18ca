/*
 * test_metering.c — src/metering: billed-duration rounding at several
 * granularities, GB-second and cost arithmetic, sums over many invocations
 * from several threads (with flushes racing the recorders), usage
 * surviving close and reopen, errors/timeouts/cold starts, per-minute
 * buckets and the since/until/step window, the JSON shape, the Prometheus
 * counters, a flush that fails and is retried, and the SIGKILL loss bound
 * (a child process killed mid-stream; docs/metering.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "common/rfc3339.h"
#include "metering/metering.h"

#define MS 1000000LL
#define US 1000LL
#define SEC 1000000000LL
#define MINUTE (60 * SEC)
#define MIB (1024ULL * 1024ULL)

/* 2024-05-01T12:00:00Z, a whole minute. */
#define T0 (1714564800LL * SEC)

/* ---- fixture: a temporary data dir ---- */

typedef struct fx {
    char dir[256];
    char db[300];
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    const char *base = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/wasmfn-mtr-XXXXXX", base && *base ? base : P_tmpdir);
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->db, sizeof f->db, "%s/wasmfn.db", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    char p[400];
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static mtr_t *open_with(const fx_t *f, int64_t granularity_ns, double price_gbs,
                        double price_mreq, mx_registry_t *mx)
{
    mtr_config_t c;
    mtr_config_init(&c);
    c.db_path = f->db;
    if (granularity_ns) c.granularity_ns = granularity_ns;
    if (price_gbs >= 0) c.price_per_gb_second = price_gbs;
    if (price_mreq >= 0) c.price_per_million_requests = price_mreq;
    c.metrics = mx;
    char err[256] = "";
    mtr_t *m = mtr_open(&c, err, sizeof err);
    if (!m) fprintf(stderr, "mtr_open: %s\n", err);
    assert_non_null(m);
    return m;
}

static mtr_t *open_default(const fx_t *f) { return open_with(f, 0, -1, -1, NULL); }

static void rec(mtr_t *m, const char *fn, const char *rev, int64_t start, int64_t dur,
                uint64_t mem, bool cold, mtr_outcome_t out)
{
    mtr_invocation_t inv = {
        .function = fn,
        .revision = rev,
        .start_ns = start,
        .duration_ns = dur,
        .cpu_ns = dur / 2,
        .peak_memory_bytes = mem / 2,
        .memory_limit_bytes = mem,
        .cold_start = cold,
        .outcome = out,
    };
    mtr_record(m, &inv);
}

/* The usage array, parsed. */
static cJSON *usage(mtr_t *m, const char *fn, int64_t since, int64_t until, int64_t step)
{
    char err[256] = "";
    char *s = mtr_usage_json(m, fn, since, until, step, err, sizeof err);
    if (!s) fprintf(stderr, "mtr_usage_json: %s\n", err);
    assert_non_null(s);
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_true(cJSON_IsArray(j));
    return j;
}

static const cJSON *find_fn(const cJSON *arr, const char *fn)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "function");
        if (cJSON_IsString(n) && strcmp(n->valuestring, fn) == 0) return o;
    }
    return NULL;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("field %s is missing or not a number", k);
    return v->valuedouble;
}

static void assert_close(double got, double want)
{
    double tol = 1e-9 * fmax(1.0, fabs(want));
    if (fabs(got - want) > tol) fail_msg("got %.17g, want %.17g", got, want);
}

/* ---- rounding ---- */

static void test_billed_ns(void **state)
{
    (void)state;
    /* 1 ms */
    assert_int_equal(mtr_billed_ns(1, MS), MS);
    assert_int_equal(mtr_billed_ns(MS - 1, MS), MS);
    assert_int_equal(mtr_billed_ns(MS, MS), MS); /* exact: not rounded up */
    assert_int_equal(mtr_billed_ns(MS + 1, MS), 2 * MS);
    assert_int_equal(mtr_billed_ns(37 * MS, MS), 37 * MS);
    /* 100 µs */
    assert_int_equal(mtr_billed_ns(1, 100 * US), 100 * US);
    assert_int_equal(mtr_billed_ns(100 * US, 100 * US), 100 * US);
    assert_int_equal(mtr_billed_ns(100 * US + 1, 100 * US), 200 * US);
    assert_int_equal(mtr_billed_ns(1234567, 100 * US), 1300 * US);
    /* 1 µs */
    assert_int_equal(mtr_billed_ns(1, US), US);
    assert_int_equal(mtr_billed_ns(US, US), US);
    assert_int_equal(mtr_billed_ns(1001, US), 2 * US);
    assert_int_equal(mtr_billed_ns(1234567, US), 1235 * US);
    /* zero and negative durations bill nothing; huge ones saturate */
    assert_int_equal(mtr_billed_ns(0, MS), 0);
    assert_int_equal(mtr_billed_ns(-5, MS), 0);
    assert_int_equal(mtr_billed_ns(INT64_MAX - 1, MS), INT64_MAX);
}

/* Each granularity through the whole path: record, flush half, query. */
static void rounding_at(const fx_t *f, int64_t g, const int64_t *durs, size_t n,
                        int64_t want_billed_ns)
{
    mtr_t *m = open_with(f, g, -1, -1, NULL);
    int64_t dur_sum = 0;
    for (size_t i = 0; i < n; i++) {
        rec(m, "r", "r-00001", T0 + (int64_t)i * SEC, durs[i], 128 * MIB, false, MTR_OK);
        dur_sum += durs[i];
        if (i == n / 2) assert_int_equal(mtr_flush(m, NULL, 0), 0);
    }
    cJSON *j = usage(m, "r", T0, T0 + MINUTE, 0);
    const cJSON *o = find_fn(j, "r");
    assert_non_null(o);
    assert_close(num(o, "billed_ms"), (double)want_billed_ns / 1e6);
    assert_close(num(o, "duration_ms"), (double)dur_sum / 1e6);
    assert_close(num(o, "requests"), (double)n);
    cJSON_Delete(j);
    mtr_close(m);
    /* a fresh database for the next granularity */
    char p[400];
    snprintf(p, sizeof p, "%s", f->db);
    unlink(p);
    snprintf(p, sizeof p, "%s-wal", f->db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->db);
    unlink(p);
}

static void test_rounding_granularities(void **state)
{
    fx_t *f = *state;
    const int64_t durs[] = {1, MS, MS + 1, 100 * US, 250 * US, 999 * US, 2 * MS, 1234567};
    size_t n = sizeof durs / sizeof durs[0];
    /* 1 ms: 1 + 1 + 2 + 1 + 1 + 1 + 2 + 2 ms */
    rounding_at(f, MS, durs, n, 11 * MS);
    /* 100 µs: 100 + 1000 + 1100 + 100 + 300 + 1000 + 2000 + 1300 µs */
    rounding_at(f, 100 * US, durs, n, 6900 * US);
    /* 1 µs: 1 + 1000 + 1001 + 100 + 250 + 999 + 2000 + 1235 µs */
    rounding_at(f, US, durs, n, 6586 * US);
}

/* ---- GB-seconds and cost ---- */

static void test_gb_seconds_and_cost(void **state)
{
    fx_t *f = *state;
    /* prices chosen to make the arithmetic readable */
    mtr_t *m = open_with(f, MS, 2.0, 10.0, NULL);
    /* 128 MiB for 1 s, twice: 2 × 0.125 = 0.25 GB-s */
    rec(m, "a", "a-00001", T0, SEC, 128 * MIB, false, MTR_OK);
    rec(m, "a", "a-00001", T0 + SEC, SEC - 1, 128 * MIB, false, MTR_OK); /* rounds up to 1 s */
    /* a second revision with 1536 MiB for 250.5 ms -> billed 251 ms: 1.5 × 0.251 = 0.3765 */
    rec(m, "a", "a-00002", T0 + 2 * SEC, 250500 * US, 1536 * MIB, false, MTR_OK);
    /* another function: 1 GiB for 1 µs at 1 ms granularity: 0.001 GB-s */
    rec(m, "b", "b-00001", T0, 1, 1024 * MIB, false, MTR_OK);

    cJSON *j = usage(m, NULL, T0, T0 + MINUTE, 0);
    assert_int_equal(cJSON_GetArraySize(j), 2);
    const cJSON *a = find_fn(j, "a"), *b = find_fn(j, "b");
    assert_non_null(a);
    assert_non_null(b);
    assert_close(num(a, "gb_seconds"), 0.25 + 0.3765);
    assert_close(num(a, "billed_ms"), 2251);
    assert_close(num(a, "requests"), 3);
    assert_close(num(a, "cost"), (0.25 + 0.3765) * 2.0 + 3 / 1e6 * 10.0);
    assert_close(num(a, "peak_memory_bytes"), (double)(768 * MIB));
    assert_close(num(b, "gb_seconds"), 0.001);
    assert_close(num(b, "cost"), 0.001 * 2.0 + 1 / 1e6 * 10.0);

    /* the revision breakdown keeps each revision's own memory limit */
    const cJSON *revs = cJSON_GetObjectItemCaseSensitive(a, "revisions");
    assert_int_equal(cJSON_GetArraySize(revs), 2);
    const cJSON *r1 = cJSON_GetArrayItem(revs, 0), *r2 = cJSON_GetArrayItem(revs, 1);
    assert_string_equal(cJSON_GetObjectItem(r1, "revision")->valuestring, "a-00001");
    assert_string_equal(cJSON_GetObjectItem(r2, "revision")->valuestring, "a-00002");
    assert_close(num(r1, "gb_seconds"), 0.25);
    assert_close(num(r2, "gb_seconds"), 0.3765);
    assert_close(num(r2, "billed_ms"), 251);
    cJSON_Delete(j);
    mtr_close(m);
}

static void test_default_prices(void **state)
{
    fx_t *f = *state;
    mtr_t *m = open_default(f);
    /* a thousand 128 MiB, 100 ms invocations: 12.5 GB-s */
    for (int i = 0; i < 1000; i++)
        rec(m, "p", "p-00001", T0 + i * MS, 100 * MS, 128 * MIB, false, MTR_OK);
    cJSON *j = usage(m, NULL, T0, T0 + MINUTE, 0);
    const cJSON *p = find_fn(j, "p");
    assert_close(num(p, "gb_seconds"), 12.5);
    assert_close(num(p, "cost"), 12.5 * MTR_DEFAULT_PRICE_PER_GB_SECOND +
                                     1000 / 1e6 * MTR_DEFAULT_PRICE_PER_MILLION_REQUESTS);
    cJSON_Delete(j);
    mtr_close(m);
}

/* ---- outcomes ---- */

static void test_errors_and_cold_starts(void **state)
{
    fx_t *f = *state;
    mtr_t *m = open_default(f);
    rec(m, "e", "e-00001", T0, MS, 64 * MIB, true, MTR_OK);
    rec(m, "e", "e-00001", T0 + 1, MS, 64 * MIB, false, MTR_ERROR);
    rec(m, "e", "e-00001", T0 + 2, MS, 64 * MIB, false, MTR_ERROR);
    rec(m, "e", "e-00002", T0 + 3, 5 * SEC, 64 * MIB, true, MTR_TIMEOUT);
    rec(m, "e", "e-00002", T0 + 4, MS, 64 * MIB, false, MTR_OK);
    mtr_flush(m, NULL, 0);
    rec(m, "e", "e-00002", T0 + 5, MS, 64 * MIB, true, MTR_ERROR); /* not flushed yet */
    cJSON *j = usage(m, "e", T0, T0 + MINUTE, 0);
    const cJSON *e = find_fn(j, "e");
    assert_close(num(e, "requests"), 6);
    assert_close(num(e, "errors"), 4); /* errors include the timeout */
    assert_close(num(e, "timeouts"), 1);
    assert_close(num(e, "cold_starts"), 3);
    const cJSON *revs = cJSON_GetObjectItemCaseSensitive(e, "revisions");
    const cJSON *r2 = cJSON_GetArrayItem(revs, 1);
    assert_close(num(r2, "errors"), 2);
    assert_close(num(r2, "cold_starts"), 2);
    cJSON_Delete(j);
    mtr_close(m);
}

/* ---- many threads ---- */

#define NTHREADS 8
#define PER_THREAD 20000

typedef struct worker {
    mtr_t *m;
    int id;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    static const char *const fns[] = {"f0", "f1", "f2"};
    for (int i = 0; i < PER_THREAD; i++) {
        /* spread over 3 functions and 5 minutes; duration i % 7 ms + 1 ns */
        rec(w->m, fns[i % 3], "rev", T0 + (int64_t)(i % 5) * MINUTE + w->id, (i % 7) * MS + 1,
            256 * MIB, i % 11 == 0, i % 13 == 0 ? MTR_ERROR : MTR_OK);
    }
    return NULL;
}

typedef struct stopper {
    mtr_t *m;
    atomic_int stop;
    int queries;
} stopper_t;

/* Queries while the workers record and the flusher runs every ms: the
 * answers must never go down (no row seen twice, then once). */
static void *querier_main(void *arg)
{
    stopper_t *s = arg;
    double last = 0;
    do {
        /* flushes from here too, in case the flusher thread gets no CPU */
        mtr_flush(s->m, NULL, 0);
        char *j = mtr_usage_json(s->m, NULL, T0, T0 + 10 * MINUTE, 0, NULL, 0);
        if (!j) continue;
        cJSON *a = cJSON_Parse(j);
        free(j);
        double total = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, a) total += cJSON_GetObjectItem(o, "requests")->valuedouble;
        cJSON_Delete(a);
        if (total < last || total > NTHREADS * PER_THREAD) s->stop = 2;
        last = total;
        s->queries++;
    } while (!s->stop);
    return NULL;
}

static void test_threads_sum(void **state)
{
    fx_t *f = *state;
    mtr_config_t c;
    mtr_config_init(&c);
    c.db_path = f->db;
    c.flush_interval_ns = MS; /* flush constantly, to race the recorders */
    mtr_t *m = mtr_open(&c, NULL, 0);
    assert_non_null(m);

    pthread_t th[NTHREADS], qt;
    worker_t w[NTHREADS];
    stopper_t s = {.m = m};
    pthread_create(&qt, NULL, querier_main, &s);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker_t){m, i};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    int was = s.stop;
    s.stop = 1;
    pthread_join(qt, NULL);
    assert_int_equal(was, 0); /* a query saw the total go down or overshoot */

    /* expected sums */
    uint64_t req[3] = {0}, errs[3] = {0}, cold[3] = {0};
    int64_t billed[3] = {0};
    for (int i = 0; i < PER_THREAD; i++) {
        req[i % 3] += NTHREADS;
        billed[i % 3] += NTHREADS * ((i % 7) * MS + MS);
        if (i % 13 == 0) errs[i % 3] += NTHREADS;
        if (i % 11 == 0) cold[i % 3] += NTHREADS;
    }
    mtr_stats_t st;
    mtr_stats(m, &st);
    assert_int_equal(st.recorded, NTHREADS * PER_THREAD);
    assert_true(st.flushes > 0);

    for (int pass = 0; pass < 2; pass++) {
        cJSON *j = usage(m, NULL, T0, T0 + 10 * MINUTE, 0);
        assert_int_equal(cJSON_GetArraySize(j), 3);
        for (int k = 0; k < 3; k++) {
            char name[16];
            snprintf(name, sizeof name, "f%d", k);
            const cJSON *o = find_fn(j, name);
            assert_non_null(o);
            assert_close(num(o, "requests"), (double)req[k]);
            assert_close(num(o, "errors"), (double)errs[k]);
            assert_close(num(o, "cold_starts"), (double)cold[k]);
            assert_close(num(o, "billed_ms"), (double)billed[k] / 1e6);
            assert_close(num(o, "gb_seconds"), 0.25 * (double)billed[k] / 1e9);
        }
        cJSON_Delete(j);
        if (pass == 0) {
            /* and the same from the database alone, after a restart */
            mtr_close(m);
            m = open_default(f);
        }
    }
    mtr_close(m);
}

/* ---- persistence ---- */

static void test_close_reopen(void **state)
{
    fx_t *f = *state;
    mtr_t *m = open_default(f);
    rec(m, "keep", "keep-00001", T0, 3 * MS, 128 * MIB, true, MTR_OK);
    rec(m, "keep", "keep-00001", T0 + MINUTE, 2 * MS, 128 * MIB, false, MTR_ERROR);
    mtr_close(m); /* no explicit flush: close must write it */

    m = open_default(f);
    cJSON *j = usage(m, NULL, T0, T0 + 2 * MINUTE, 0);
    const cJSON *o = find_fn(j, "keep");
    assert_non_null(o);
    assert_close(num(o, "requests"), 2);
    assert_close(num(o, "billed_ms"), 5);
    assert_close(num(o, "errors"), 1);
    assert_close(num(o, "cold_starts"), 1);
    cJSON_Delete(j);
    /* more usage in the same minute adds to the stored row */
    rec(m, "keep", "keep-00001", T0 + 30 * SEC, 1 * MS, 128 * MIB, false, MTR_OK);
    mtr_close(m);
    m = open_default(f);
    j = usage(m, "keep", T0, T0 + 2 * MINUTE, 0);
    assert_close(num(find_fn(j, "keep"), "requests"), 3);
    assert_close(num(find_fn(j, "keep"), "billed_ms"), 6);
    cJSON_Delete(j);
    mtr_close(m);

    /* the rows are in the table the docs name, one per minute */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), sum(requests) FROM mtr_usage", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 2);
    assert_int_equal(sqlite3_column_int64(st, 1), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- minutes and windows ---- */

static void test_minute_boundaries(void **state)
{
    fx_t *f = *state;
    mtr_t *m = open_default(f);
    rec(m, "b", "b-1", T0 - 1, MS, 128 * MIB, false, MTR_OK);          /* minute -1 */
    rec(m, "b", "b-1", T0, MS, 128 * MIB, false, MTR_OK);              /* minute 0 */
    rec(m, "b", "b-1", T0 + MINUTE - 1, 2 * MS, 128 * MIB, false, MTR_OK); /* minute 0 */
    rec(m, "b", "b-1", T0 + MINUTE, 3 * MS, 128 * MIB, false, MTR_OK);     /* minute 1 */
    rec(m, "b", "b-1", T0 + 5 * MINUTE + 1, 4 * MS, 128 * MIB, false, MTR_OK); /* minute 5 */
    mtr_flush(m, NULL, 0);
    rec(m, "b", "b-1", T0 + MINUTE + 7 * SEC, 5 * MS, 128 * MIB, false, MTR_OK); /* minute 1, memory */

    /* per-minute buckets */
    cJSON *j = usage(m, "b", T0, T0 + 10 * MINUTE, MINUTE);
    assert_int_equal(cJSON_GetArraySize(j), 3); /* empty minutes are left out */
    const cJSON *b0 = cJSON_GetArrayItem(j, 0), *b1 = cJSON_GetArrayItem(j, 1),
                *b5 = cJSON_GetArrayItem(j, 2);
    assert_string_equal(cJSON_GetObjectItem(b0, "start")->valuestring, "2024-05-01T12:00:00Z");
    assert_string_equal(cJSON_GetObjectItem(b0, "end")->valuestring, "2024-05-01T12:01:00Z");
    assert_close(num(b0, "requests"), 2);
    assert_close(num(b0, "billed_ms"), 3);
    assert_string_equal(cJSON_GetObjectItem(b1, "start")->valuestring, "2024-05-01T12:01:00Z");
    assert_close(num(b1, "requests"), 2);
    assert_close(num(b1, "billed_ms"), 8);
    assert_string_equal(cJSON_GetObjectItem(b5, "start")->valuestring, "2024-05-01T12:05:00Z");
    assert_close(num(b5, "billed_ms"), 4);
    cJSON_Delete(j);

    /* 5-minute buckets from T0: [0,5) and [5,10) */
    j = usage(m, "b", T0, T0 + 10 * MINUTE, 5 * MINUTE);
    assert_int_equal(cJSON_GetArraySize(j), 2);
    assert_close(num(cJSON_GetArrayItem(j, 0), "requests"), 4);
    assert_close(num(cJSON_GetArrayItem(j, 1), "requests"), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "end")->valuestring,
                        "2024-05-01T12:10:00Z");
    cJSON_Delete(j);

    /* until is exclusive at a minute boundary ... */
    j = usage(m, "b", T0, T0 + MINUTE, 0);
    assert_close(num(find_fn(j, "b"), "requests"), 2);
    cJSON_Delete(j);
    /* ... and rounded up to the whole minute otherwise */
    j = usage(m, "b", T0, T0 + MINUTE + 1, 0);
    assert_close(num(find_fn(j, "b"), "requests"), 4);
    cJSON_Delete(j);
    /* since is rounded down to its minute */
    j = usage(m, "b", T0 + MINUTE - 1, T0 + 2 * MINUTE, 0);
    assert_close(num(find_fn(j, "b"), "requests"), 4);
    cJSON_Delete(j);
    j = usage(m, "b", T0 + MINUTE, T0 + 2 * MINUTE, 0);
    assert_close(num(find_fn(j, "b"), "requests"), 2);
    cJSON_Delete(j);
    /* everything, including the minute before T0 */
    j = usage(m, NULL, INT64_MIN, INT64_MAX, 0);
    assert_close(num(find_fn(j, "b"), "requests"), 6);
    cJSON_Delete(j);
    /* a window with nothing in it */
    j = usage(m, NULL, T0 + 20 * MINUTE, T0 + 30 * MINUTE, MINUTE);
    assert_int_equal(cJSON_GetArraySize(j), 0);
    cJSON_Delete(j);

    /* bad windows */
    char err[256] = "";
    assert_null(mtr_usage_json(m, NULL, T0 + MINUTE, T0, 0, err, sizeof err));
    assert_non_null(strstr(err, "since"));
    assert_null(mtr_usage_json(m, NULL, T0, T0 + MINUTE, 90 * SEC, err, sizeof err));
    assert_non_null(strstr(err, "step"));
    mtr_close(m);
}

/* ---- the JSON ---- */

static void test_json_shape(void **state)
{
    fx_t *f = *state;
    mtr_t *m = open_default(f);
    rec(m, "zeta", "zeta-00001", T0, MS, 128 * MIB, false, MTR_OK);
    rec(m, "alpha", "alpha-00002", T0, MS, 128 * MIB, true, MTR_OK);
    rec(m, "alpha", "alpha-00001", T0, MS, 256 * MIB, false, MTR_OK);
    rec(m, "other\"name", NULL, T0, MS, 0, false, MTR_OK); /* odd but valid */
    char *s = mtr_usage_json(m, NULL, T0, T0 + MINUTE, 0, NULL, 0);
    assert_non_null(s);
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 3);
    /* sorted by function name */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "function")->valuestring,
                        "alpha");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "function")->valuestring,
                        "other\"name");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 2), "function")->valuestring,
                        "zeta");
    static const char *const numbers[] = {"requests",    "errors",   "timeouts", "cold_starts",
                                          "duration_ms", "billed_ms", "cpu_ms",  "gb_seconds",
                                          "peak_memory_bytes", "cost"};
    const cJSON *o;
    cJSON_ArrayForEach(o, j)
    {
        assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "function")));
        for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
            assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, numbers[i])));
        /* no step: no bucket times */
        assert_null(cJSON_GetObjectItem(o, "start"));
        const cJSON *revs = cJSON_GetObjectItemCaseSensitive(o, "revisions"), *r;
        assert_true(cJSON_IsArray(revs));
        assert_true(cJSON_GetArraySize(revs) >= 1);
        cJSON_ArrayForEach(r, revs)
        {
            assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "revision")));
            for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
                assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, numbers[i])));
        }
    }
    const cJSON *alpha = cJSON_GetArrayItem(j, 0);
    const cJSON *revs = cJSON_GetObjectItem(alpha, "revisions");
    assert_int_equal(cJSON_GetArraySize(revs), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(revs, 0), "revision")->valuestring,
                        "alpha-00001");
    /* a NULL revision is recorded as "" */
    const cJSON *odd = cJSON_GetArrayItem(j, 1);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(odd, "revisions"), 0),
                            "revision")
            ->valuestring,
        "");
    cJSON_Delete(j);

    /* filtered by function; an unknown function gives [] */
    s = mtr_usage_json(m, "zeta", T0, T0 + MINUTE, 0, NULL, 0);
    j = cJSON_Parse(s);
    free(s);
    assert_int_equal(cJSON_GetArraySize(j), 1);
    cJSON_Delete(j);
    s = mtr_usage_json(m, "nope", T0, T0 + MINUTE, 0, NULL, 0);
    assert_string_equal(s, "[]");
    free(s);
    mtr_close(m);
}

/* ---- Prometheus ---- */

static void test_metrics_counters(void **state)
{
    fx_t *f = *state;
    mx_registry_t *mx = mx_registry_new();
    mtr_t *m = open_with(f, MS, -1, -1, mx);
    rec(m, "hello", "hello-00001", T0, 1500 * US, 512 * MIB, false, MTR_OK); /* 2 ms */
    rec(m, "hello", "hello-00001", T0, 1 * MS, 512 * MIB, false, MTR_OK);    /* 1 ms */
    assert_int_equal(mtr_flush(m, NULL, 0), 0);
    size_t len;
    char *text = mx_registry_render(mx, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE wasmfn_billed_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE wasmfn_billed_gb_seconds_total counter\n"));
    assert_non_null(strstr(text, "wasmfn_billed_seconds_total{function=\"hello\",revision=\"hello-00001\"} 0.003\n"));
    assert_non_null(strstr(text, "wasmfn_billed_gb_seconds_total{function=\"hello\",revision=\"hello-00001\"} 0.0015\n"));
    free(text);
    mtr_close(m);
    mx_registry_free(mx);
}

/* ---- configuration ---- */

static void test_config_errors(void **state)
{
    fx_t *f = *state;
    mtr_config_t c;
    char err[256];

    mtr_config_init(&c);
    assert_int_equal(c.granularity_ns, MS);
    assert_int_equal(c.flush_interval_ns, SEC);
    assert_true(c.price_per_gb_second > 0 && c.price_per_million_requests > 0);
    c.db_path = f->db;

    c.granularity_ns = 999;
    assert_null(mtr_open(&c, err, sizeof err));
    assert_non_null(strstr(err, "granularity"));
    c.granularity_ns = US; /* the finest allowed */
    mtr_t *m = mtr_open(&c, err, sizeof err);
    assert_non_null(m);
    mtr_close(m);

    mtr_config_init(&c);
    c.db_path = f->db;
    c.flush_interval_ns = 2 * SEC;
    assert_null(mtr_open(&c, err, sizeof err));
    assert_non_null(strstr(err, "flush interval"));

    mtr_config_init(&c);
    c.db_path = f->db;
    c.price_per_gb_second = -1;
    assert_null(mtr_open(&c, err, sizeof err));
    assert_non_null(strstr(err, "GB-second"));
    c.price_per_gb_second = NAN;
    assert_null(mtr_open(&c, err, sizeof err));

    mtr_config_init(&c);
    char bad[400];
    snprintf(bad, sizeof bad, "%s/no/such/dir/wasmfn.db", f->dir);
    c.db_path = bad;
    assert_null(mtr_open(&c, err, sizeof err));
    assert_non_null(strstr(err, bad));

    mtr_config_init(&c);
    assert_null(mtr_open(&c, err, sizeof err)); /* no path */

    /* free prices are allowed */
    mtr_config_init(&c);
    c.db_path = f->db;
    c.price_per_gb_second = 0;
    c.price_per_million_requests = 0;
    m = mtr_open(&c, err, sizeof err);
    assert_non_null(m);
    rec(m, "free", "free-1", T0, SEC, 1024 * MIB, false, MTR_OK);
    cJSON *j = usage(m, NULL, T0, T0 + MINUTE, 0);
    assert_close(num(find_fn(j, "free"), "cost"), 0);
    assert_close(num(find_fn(j, "free"), "gb_seconds"), 1);
    cJSON_Delete(j);
    mtr_close(m);
}

/* ---- a flush that fails keeps its rows and succeeds later ---- */

static void test_flush_failure_retried(void **state)
{
    fx_t *f = *state;
    mtr_t *m = open_default(f);
    rec(m, "x", "x-1", T0, MS, 128 * MIB, false, MTR_OK);
    assert_int_equal(mtr_flush(m, NULL, 0), 0);

    /* another connection holds the write lock past the busy timeout */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    rec(m, "x", "x-1", T0, MS, 128 * MIB, false, MTR_OK);
    char err[256] = "";
    assert_int_equal(mtr_flush(m, err, sizeof err), -1);
    assert_non_null(strstr(err, "metering database"));
    mtr_stats_t st;
    mtr_stats(m, &st);
    assert_true(st.flush_errors >= 1); /* the background flusher may have failed too */
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* the failed rows were neither lost nor counted twice */
    cJSON *j = usage(m, "x", T0, T0 + MINUTE, 0);
    assert_close(num(find_fn(j, "x"), "requests"), 2);
    cJSON_Delete(j);
    rec(m, "x", "x-1", T0, MS, 128 * MIB, false, MTR_OK);
    assert_int_equal(mtr_flush(m, NULL, 0), 0);
    mtr_close(m);
    m = open_default(f);
    j = usage(m, "x", T0, T0 + MINUTE, 0);
    assert_close(num(find_fn(j, "x"), "requests"), 3);
    cJSON_Delete(j);
    mtr_close(m);
}

/* ---- SIGKILL ---- */

/* How many invocations the database holds for fn, read directly. */
static int64_t db_requests(const char *path, const char *fn)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(requests), 0) FROM mtr_usage WHERE function = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, fn, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static bool db_intact(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return false;
    sqlite3_stmt *st;
    bool ok = false;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        ok = sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (up to 10 s) for n more flushes to complete after `from`. */
static bool wait_flushes(mtr_t *m, uint64_t from, uint64_t n)
{
    for (int i = 0; i < 10000; i++) {
        mtr_stats_t st;
        mtr_stats(m, &st);
        if (st.flushes >= from + n) return true;
        sleep_ms(1);
    }
    return false;
}

/* The child records batch A ("a"), waits until two flushes have completed
 * since (so one started after A's last record), records batch B ("b"),
 * tells the parent, and is SIGKILLed without closing anything. The
 * background flusher is all that can have saved A. */
static void test_sigkill_after_flush(void **state)
{
    fx_t *f = *state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        mtr_config_t c;
        mtr_config_init(&c);
        c.db_path = f->db;
        c.flush_interval_ns = 50 * MS;
        mtr_t *m = mtr_open(&c, NULL, 0);
        if (!m) _exit(3);
        mtr_stats_t st;
        for (int i = 0; i < 1000; i++) rec(m, "a", "a-1", T0 + i * MS, MS, 128 * MIB, false, MTR_OK);
        mtr_stats(m, &st);
        if (!wait_flushes(m, st.flushes, 2)) _exit(4);
        for (int i = 0; i < 1000; i++) rec(m, "b", "b-1", T0 + i * MS, MS, 128 * MIB, false, MTR_OK);
        char ok = 'k';
        if (write(pfd[1], &ok, 1) != 1) _exit(5);
        for (;;) pause();
    }
    close(pfd[1]);
    char c = 0;
    ssize_t n = read(pfd[0], &c, 1);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(pfd[0]);
    assert_int_equal(n, 1);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    assert_true(db_intact(f->db));
    assert_int_equal(db_requests(f->db, "a"), 1000); /* older than a flush: all there */
    int64_t b = db_requests(f->db, "b");               /* within the last interval: maybe */
    assert_true(b >= 0 && b <= 1000);

    /* the database opens and keeps counting after the crash */
    mtr_t *m = open_default(f);
    rec(m, "a", "a-1", T0, MS, 128 * MIB, false, MTR_OK);
    cJSON *j = usage(m, "a", T0, T0 + MINUTE, 0);
    assert_close(num(find_fn(j, "a"), "requests"), 1001);
    cJSON_Delete(j);
    mtr_close(m);
}

/* Shared with the recording child of the next test. */
typedef struct shared {
    volatile int64_t recorded; /* records completed */
    volatile int64_t durable;  /* records made before a flush that has since completed */
} shared_t;

/* Records continuously and is killed at a random moment, several times
 * over the same database: what it holds is never less than what had been
 * recorded before the last completed flush began, never more than was
 * recorded, and the database is never corrupt. */
static void test_sigkill_while_recording(void **state)
{
    fx_t *f = *state;
    shared_t *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    int64_t before = 0, durable_total = 0;
    unsigned seed = 12345;
    for (int round = 0; round < 5; round++) {
        sh->recorded = sh->durable = 0;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            mtr_config_t c;
            mtr_config_init(&c);
            c.db_path = f->db;
            c.flush_interval_ns = 20 * MS;
            mtr_t *m = mtr_open(&c, NULL, 0);
            if (!m) _exit(3);
            /* snapshot: (recorded count, flushes completed) */
            int64_t snap_rec = 0;
            uint64_t snap_flushes = 0;
            for (int64_t i = 1;; i++) {
                rec(m, "k", "k-1", T0 + (i % 1000) * 10 * SEC, MS, 128 * MIB, false, MTR_OK);
                sh->recorded = i;
                if (i % 500 == 0) {
                    mtr_stats_t st;
                    mtr_stats(m, &st);
                    /* two completions after the snapshot: one of them
                     * started after it, so it took the snapshot's records */
                    if (st.flushes >= snap_flushes + 2) {
                        sh->durable = snap_rec;
                        snap_rec = i;
                        snap_flushes = st.flushes;
                    }
                }
            }
        }
        sleep_ms(60 + (int)(rand_r(&seed) % 200));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        int64_t recorded = sh->recorded, durable = sh->durable;
        assert_true(db_intact(f->db));
        int64_t got = db_requests(f->db, "k") - before;
        if (got < durable || got > recorded + 1) /* +1: killed between a record and its count */
            fail_msg("round %d: database holds %lld, want between %lld and %lld", round,
                     (long long)got, (long long)durable, (long long)recorded);
        before += got;
        durable_total += durable;
    }
    /* the bound above is only worth something if flushes happened */
    assert_true(durable_total > 0);
    munmap(sh, sizeof *sh);
}

/* ---- parsing ---- */

static void test_parse_duration(void **state)
{
    (void)state;
    int64_t v;
    char err[256];
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        {"0", 0},           {"1ns", 1},         {"1us", US},          {"1\xc2\xb5s", US},
        {"100us", 100 * US}, {"1ms", MS},       {"1.5s", 1500 * MS},  {"1m", MINUTE},
        {"1h", 60 * MINUTE},   {"1h30m", 90 * MINUTE}, {"2d", 2880 * MINUTE},  {"1w", 7 * 1440 * MINUTE},
        {".5ms", 500 * US}, {"1m30s", 90 * SEC},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(mtr_parse_duration(ok[i].s, &v, err, sizeof err), 0);
        assert_int_equal(v, ok[i].ns);
    }
    static const char *const bad[] = {"", "1", "h", "1x", "-1h", "1h-", "99999999999999999999s",
                                      "1.h.", "20000w"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(mtr_parse_duration(bad[i], &v, err, sizeof err), -1);
        assert_true(err[0] != 0);
    }
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t v, now = T0 + 123;
    char err[256];
    assert_int_equal(mtr_parse_time("now", now, &v, err, sizeof err), 0);
    assert_int_equal(v, now);
    assert_int_equal(mtr_parse_time("1h", now, &v, err, sizeof err), 0);
    assert_int_equal(v, now - 60 * MINUTE);
    assert_int_equal(mtr_parse_time("2024-05-01T12:00:00Z", now, &v, err, sizeof err), 0);
    assert_int_equal(v, T0);
    assert_int_equal(mtr_parse_time("2024-05-01T14:00:00+02:00", now, &v, err, sizeof err), 0);
    assert_int_equal(v, T0);
    assert_int_equal(mtr_parse_time("2024-05-01T11:30:00.25-00:30", now, &v, err, sizeof err), 0);
    assert_int_equal(v, T0 + 250 * MS);
    assert_int_equal(mtr_parse_time("2024-05-01", now, &v, err, sizeof err), 0);
    assert_int_equal(v, T0 - 12 * 60 * MINUTE);
    static const char *const bad[] = {"", "yesterday", "2024-02-30T00:00:00Z",
                                      "2024-05-01T12:00:00", "2024-05-01T25:00:00Z",
                                      "2024-05-01T12:00Z", "2024-5-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mtr_parse_time(bad[i], now, &v, err, sizeof err), -1);

    char out[64];
    cm_rfc3339_format(T0, CM_RFC3339_EXACT, out, sizeof out);
    assert_string_equal(out, "2024-05-01T12:00:00Z");
    cm_rfc3339_format(T0 + 250 * MS, CM_RFC3339_EXACT, out, sizeof out);
    assert_string_equal(out, "2024-05-01T12:00:00.25Z");
    cm_rfc3339_format(-1, CM_RFC3339_EXACT, out, sizeof out);
    assert_string_equal(out, "1969-12-31T23:59:59.999999999Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_billed_ns),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test_setup_teardown(test_rounding_granularities, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_gb_seconds_and_cost, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_default_prices, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors_and_cold_starts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_threads_sum, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_reopen, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_minute_boundaries, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_json_shape, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_counters, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_flush_failure_retried, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_after_flush, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_while_recording, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
