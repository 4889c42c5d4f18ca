/*
 * metering.c — recording invocations and moving their aggregates to SQLite.
 *
 * The request path (mtr_record) must cost next to nothing, so it only adds
 * numbers into an in-memory row keyed by (function, revision, minute,
 * memory limit). The rows live in MTR_NSTRIPES striped hash tables; each
 * thread always uses the same stripe (threads are numbered round-robin on
 * their first record), so the stripe's mutex is uncontended in the common
 * case — one cache line that stays with its thread — and the flusher takes
 * it for the moment it needs to swap the table out.
 *
 * A flush (every flush interval on the flusher thread, or mtr_flush) swaps
 * every stripe's table for an empty one, merges the rows into `pending`,
 * adds them to the Prometheus counters and upserts `pending` in one
 * transaction. If the transaction fails (disk full, database locked for
 * longer than the busy timeout) the rows stay in `pending` and the next
 * flush tries again; nothing is counted twice because a row leaves
 * `pending` only when its commit succeeded.
 *
 * What SIGKILL loses: rows still in a stripe or in pending. A record made
 * at time t is taken by the first flush that starts after t (at most one
 * flush interval later) and is durable once that flush commits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cond.h"
#include "metering/internal.h"

void mtr_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t mtr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t mtr_billed_ns(int64_t duration_ns, int64_t granularity_ns)
{
    if (duration_ns <= 0 || granularity_ns <= 0) return duration_ns > 0 ? duration_ns : 0;
    int64_t units = duration_ns / granularity_ns;
    if (duration_ns % granularity_ns != 0) units++;
    if (units > INT64_MAX / granularity_ns) return INT64_MAX;
    return units * granularity_ns;
}

void mtr_config_init(mtr_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->granularity_ns = MTR_DEFAULT_GRANULARITY_NS;
    c->flush_interval_ns = MTR_DEFAULT_FLUSH_INTERVAL_NS;
    c->price_per_gb_second = MTR_DEFAULT_PRICE_PER_GB_SECOND;
    c->price_per_million_requests = MTR_DEFAULT_PRICE_PER_MILLION_REQUESTS;
}

/* ---- the in-memory table ------------------------------------------------ */

/* FNV-1a over the names (with their terminators, so "ab","c" differs from
 * "a","bc"), then the integers mixed in with a multiply-xorshift. */
uint64_t mtr_key_hash(const char *function, const char *revision, int64_t minute,
                      uint64_t memory_limit_bytes)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)function;; p++) {
        h = (h ^ *p) * 0x100000001b3ULL;
        if (!*p) break;
    }
    for (const unsigned char *p = (const unsigned char *)revision;; p++) {
        h = (h ^ *p) * 0x100000001b3ULL;
        if (!*p) break;
    }
    h ^= (uint64_t)minute * 0x9e3779b97f4a7c15ULL;
    h ^= memory_limit_bytes * 0xc2b2ae3d27d4eb4fULL;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return h ? h : 1; /* 0 marks an empty slot */
}

static bool key_equal(const mtr_agg_t *a, uint64_t hash, const char *function,
                      const char *revision, int64_t minute, uint64_t mem)
{
    return a->hash == hash && a->minute == minute && a->memory_limit_bytes == mem &&
           strcmp(a->function, function) == 0 && strcmp(a->revision, revision) == 0;
}

static int table_grow(mtr_table_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 16;
    mtr_agg_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < t->cap; i++) {
        mtr_agg_t *a = &t->slots[i];
        if (!a->hash) continue;
        size_t j = a->hash & (ncap - 1);
        while (ns[j].hash) j = (j + 1) & (ncap - 1);
        ns[j] = *a;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

mtr_agg_t *mtr_table_get(mtr_table_t *t, uint64_t hash, const char *function,
                         const char *revision, int64_t minute, uint64_t mem)
{
    if (t->cap) {
        size_t j = hash & (t->cap - 1);
        while (t->slots[j].hash) {
            if (key_equal(&t->slots[j], hash, function, revision, minute, mem))
                return &t->slots[j];
            j = (j + 1) & (t->cap - 1);
        }
    }
    if ((t->count + 1) * 4 > t->cap * 3 && table_grow(t) != 0) return NULL;
    char *f = strdup(function), *r = strdup(revision);
    if (!f || !r) {
        free(f);
        free(r);
        return NULL;
    }
    size_t j = hash & (t->cap - 1);
    while (t->slots[j].hash) j = (j + 1) & (t->cap - 1);
    mtr_agg_t *a = &t->slots[j];
    memset(a, 0, sizeof *a);
    a->hash = hash;
    a->function = f;
    a->revision = r;
    a->minute = minute;
    a->memory_limit_bytes = mem;
    t->count++;
    return a;
}

void mtr_agg_add(mtr_agg_t *d, const mtr_agg_t *s)
{
    d->requests += s->requests;
    d->errors += s->errors;
    d->timeouts += s->timeouts;
    d->cold_starts += s->cold_starts;
    d->duration_ns += s->duration_ns;
    d->billed_ns += s->billed_ns;
    d->cpu_ns += s->cpu_ns;
    if (s->peak_memory_bytes > d->peak_memory_bytes) d->peak_memory_bytes = s->peak_memory_bytes;
}

void mtr_table_clear(mtr_table_t *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].hash) continue;
        free(t->slots[i].function);
        free(t->slots[i].revision);
    }
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

/* ---- recording ------------------------------------------------------------- */

static atomic_uint next_thread_index;
static __thread unsigned thread_stripe = UINT32_MAX;

static inline mtr_stripe_t *my_stripe(mtr_t *m)
{
    unsigned i = thread_stripe;
    if (i == UINT32_MAX) {
        i = atomic_fetch_add_explicit(&next_thread_index, 1, memory_order_relaxed) %
            MTR_NSTRIPES;
        thread_stripe = i;
    }
    return &m->stripes[i];
}

/* Saturating adds: a sum that would wrap stays at its maximum instead. */
static inline int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

void mtr_record(mtr_t *m, const mtr_invocation_t *inv)
{
    if (!m || !inv || !inv->function) return;
    const char *rev = inv->revision ? inv->revision : "";
    int64_t dur = inv->duration_ns > 0 ? inv->duration_ns : 0;
    int64_t billed = mtr_billed_ns(dur, m->granularity_ns);
    int64_t cpu = inv->cpu_ns > 0 ? inv->cpu_ns : 0;
    int64_t minute = mtr_floor_div(inv->start_ns, MTR_NS_PER_MINUTE);
    uint64_t h = mtr_key_hash(inv->function, rev, minute, inv->memory_limit_bytes);

    mtr_stripe_t *s = my_stripe(m);
    pthread_mutex_lock(&s->mu);
    s->recorded++;
    mtr_agg_t *a = mtr_table_get(&s->t, h, inv->function, rev, minute, inv->memory_limit_bytes);
    if (a) {
        a->requests++;
        if (inv->outcome == MTR_ERROR) a->errors++;
        if (inv->outcome == MTR_TIMEOUT) a->timeouts++;
        if (inv->cold_start) a->cold_starts++;
        a->duration_ns = add_sat(a->duration_ns, dur);
        a->billed_ns = add_sat(a->billed_ns, billed);
        a->cpu_ns = add_sat(a->cpu_ns, cpu);
        if (inv->peak_memory_bytes > a->peak_memory_bytes)
            a->peak_memory_bytes = inv->peak_memory_bytes;
    }
    pthread_mutex_unlock(&s->mu);
    /* Out of memory (a == NULL) loses this one record; nothing better to
     * do on the request path, and the daemon has bigger problems then. */
}

/* ---- the database -------------------------------------------------------------- */

/* Upserts every pending row in one transaction. Caller holds flush_mu. */
static int db_write_pending(mtr_t *m, char *err, size_t errlen)
{
    if (m->pending.count == 0) return 0;
    if (st_usage_begin(m->usage, err, errlen) != 0) return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < m->pending.cap; i++) {
        const mtr_agg_t *a = &m->pending.slots[i];
        if (!a->hash) continue;
        st_usage_row_t r = {
            .function = a->function,
            .revision = a->revision,
            .minute = a->minute,
            .memory_limit_bytes = a->memory_limit_bytes,
            .requests = a->requests,
            .errors = a->errors,
            .timeouts = a->timeouts,
            .cold_starts = a->cold_starts,
            .duration_ns = a->duration_ns,
            .billed_ns = a->billed_ns,
            .cpu_ns = a->cpu_ns,
            .peak_memory_bytes = a->peak_memory_bytes,
        };
        if (st_usage_add(m->usage, &r, err, errlen) != 0) return -1;
        n++;
    }
    if (st_usage_commit(m->usage, err, errlen) != 0) return -1;
    m->rows_written += n;
    return 0;
}

/* ---- flushing -------------------------------------------------------------------- */

static void metrics_add(mtr_t *m, const mtr_agg_t *a)
{
    if (!m->billed_seconds) return;
    const char *labels[] = {a->function, a->revision};
    mx_counter_add(m->billed_seconds, labels, (double)a->billed_ns / 1e9);
    mx_counter_add(m->billed_gb_seconds, labels,
                   mtr_gb_seconds(a->memory_limit_bytes, a->billed_ns));
}

/* Moves every stripe's rows into pending. Caller holds flush_mu. The stripe
 * lock is held only for the swap; the merge happens outside it. */
static void take_stripes(mtr_t *m)
{
    for (int i = 0; i < MTR_NSTRIPES; i++) {
        mtr_stripe_t *s = &m->stripes[i];
        pthread_mutex_lock(&s->mu);
        mtr_table_t t = s->t;
        s->t = (mtr_table_t){0};
        pthread_mutex_unlock(&s->mu);
        for (size_t j = 0; j < t.cap; j++) {
            mtr_agg_t *a = &t.slots[j];
            if (!a->hash) continue;
            metrics_add(m, a);
            mtr_agg_t *p = mtr_table_get(&m->pending, a->hash, a->function, a->revision,
                                         a->minute, a->memory_limit_bytes);
            if (p) mtr_agg_add(p, a);
        }
        mtr_table_clear(&t);
    }
}

/* Caller holds flush_mu. */
static int flush_locked(mtr_t *m, char *err, size_t errlen)
{
    int64_t started = mono_ns();
    take_stripes(m);
    int rc = db_write_pending(m, err, errlen);
    m->flushes++;
    if (rc == 0) {
        mtr_table_clear(&m->pending);
        m->last_flush_ns = started;
    } else {
        m->flush_errors++;
    }
    return rc;
}

int mtr_flush(mtr_t *m, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->flush_mu);
    int rc = flush_locked(m, err, errlen);
    pthread_mutex_unlock(&m->flush_mu);
    return rc;
}

static void *flusher_main(void *arg)
{
    mtr_t *m = arg;
    /* A failure is reported once, not every interval, until a flush works. */
    bool failing = false;
    int64_t next = mono_ns() + m->flush_interval_ns;
    pthread_mutex_lock(&m->ctl_mu);
    while (!m->stop) {
        int rc = cm_cond_wait_until_ns(&m->ctl_cv, &m->ctl_mu, (uint64_t)next);
        if (m->stop) break;
        if (rc != ETIMEDOUT && mono_ns() < next) continue; /* spurious wake-up */
        pthread_mutex_unlock(&m->ctl_mu);
        char err[256];
        int64_t started = mono_ns();
        if (mtr_flush(m, err, sizeof err) != 0) {
            if (!failing) fprintf(stderr, "wasmfn: metering: %s (will retry)\n", err);
            failing = true;
        } else {
            if (failing) fprintf(stderr, "wasmfn: metering: flushing works again\n");
            failing = false;
        }
        /* A record made just after a flush began waits for the next one
         * to take it and for that one's commit. So the next flush starts
         * one interval after this one began, less the time this one took:
         * in steady state (commits about as long as the last) nothing
         * recorded more than one interval ago is uncommitted. */
        int64_t took = mono_ns() - started;
        if (took > m->flush_interval_ns / 2) took = m->flush_interval_ns / 2;
        next = started + m->flush_interval_ns - took;
        int64_t now = mono_ns();
        if (next < now) next = now;
        pthread_mutex_lock(&m->ctl_mu);
    }
    pthread_mutex_unlock(&m->ctl_mu);
    return NULL;
}

/* ---- open / close ------------------------------------------------------------------ */

static void free_mtr(mtr_t *m)
{
    for (int i = 0; i < MTR_NSTRIPES; i++) {
        mtr_table_clear(&m->stripes[i].t);
        pthread_mutex_destroy(&m->stripes[i].mu);
    }
    mtr_table_clear(&m->pending);
    st_usage_close(m->usage);
    pthread_mutex_destroy(&m->flush_mu);
    pthread_mutex_destroy(&m->ctl_mu);
    pthread_cond_destroy(&m->ctl_cv);
    free(m);
}

mtr_t *mtr_open(const mtr_config_t *c, char *err, size_t errlen)
{
    if (!c || !c->db_path || !*c->db_path) {
        mtr_set_err(err, errlen, "metering: no database path");
        return NULL;
    }
    int64_t g = c->granularity_ns ? c->granularity_ns : MTR_DEFAULT_GRANULARITY_NS;
    int64_t fi = c->flush_interval_ns ? c->flush_interval_ns : MTR_DEFAULT_FLUSH_INTERVAL_NS;
    if (g < MTR_MIN_GRANULARITY_NS || g > MTR_MAX_GRANULARITY_NS) {
        mtr_set_err(err, errlen,
                "metering: billing granularity %lld ns is out of range (1 us to 1 min)",
                (long long)g);
        return NULL;
    }
    if (fi < MTR_MIN_FLUSH_INTERVAL_NS || fi > MTR_DEFAULT_FLUSH_INTERVAL_NS) {
        mtr_set_err(err, errlen, "metering: flush interval %lld ns is out of range (1 ms to 1 s)",
                (long long)fi);
        return NULL;
    }
    if (!(c->price_per_gb_second >= 0) || !isfinite(c->price_per_gb_second)) {
        mtr_set_err(err, errlen, "metering: price per GB-second must be a number >= 0");
        return NULL;
    }
    if (!(c->price_per_million_requests >= 0) || !isfinite(c->price_per_million_requests)) {
        mtr_set_err(err, errlen, "metering: price per million requests must be a number >= 0");
        return NULL;
    }

    mtr_t *m = aligned_alloc(64, (sizeof(mtr_t) + 63) / 64 * 64);
    if (!m) {
        mtr_set_err(err, errlen, "metering: out of memory");
        return NULL;
    }
    memset(m, 0, sizeof *m);
    m->granularity_ns = g;
    m->flush_interval_ns = fi;
    m->price_gb_s = c->price_per_gb_second;
    m->price_million_req = c->price_per_million_requests;
    for (int i = 0; i < MTR_NSTRIPES; i++) pthread_mutex_init(&m->stripes[i].mu, NULL);
    pthread_mutex_init(&m->flush_mu, NULL);
    pthread_mutex_init(&m->ctl_mu, NULL);
    cm_cond_init_monotonic(&m->ctl_cv);

    m->usage = st_usage_open(c->db_path, err, errlen);
    if (!m->usage) {
        free_mtr(m);
        return NULL;
    }
    if (c->metrics) {
        static const char *const labels[] = {"function", "revision", NULL};
        m->billed_seconds = mx_family_new(
            c->metrics, "wasmfn_billed_seconds_total",
            "Billed invocation time (duration rounded up to the billing granularity), seconds.",
            MX_COUNTER, labels, NULL, 0);
        m->billed_gb_seconds = mx_family_new(
            c->metrics, "wasmfn_billed_gb_seconds_total",
            "Billed GB-seconds (memory limit in GiB times billed seconds).", MX_COUNTER, labels,
            NULL, 0);
        if (!m->billed_seconds || !m->billed_gb_seconds) {
            mtr_set_err(err, errlen, "metering: cannot register the billing metrics");
            free_mtr(m);
            return NULL;
        }
    }
    int rc = pthread_create(&m->thread, NULL, flusher_main, m);
    if (rc != 0) {
        mtr_set_err(err, errlen, "metering: cannot start the flusher thread: %s", strerror(rc));
        free_mtr(m);
        return NULL;
    }
    m->thread_started = true;
    return m;
}

void mtr_close(mtr_t *m)
{
    if (!m) return;
    if (m->thread_started) {
        pthread_mutex_lock(&m->ctl_mu);
        m->stop = true;
        pthread_cond_signal(&m->ctl_cv);
        pthread_mutex_unlock(&m->ctl_mu);
        pthread_join(m->thread, NULL);
    }
    char err[256];
    if (mtr_flush(m, err, sizeof err) != 0) {
        uint64_t lost = 0;
        for (size_t i = 0; i < m->pending.cap; i++)
            if (m->pending.slots[i].hash) lost += m->pending.slots[i].requests;
        fprintf(stderr, "wasmfn: metering: %s; usage of %llu invocations is lost\n", err,
                (unsigned long long)lost);
    }
    free_mtr(m);
}

void mtr_stats(mtr_t *m, mtr_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < MTR_NSTRIPES; i++) {
        pthread_mutex_lock(&m->stripes[i].mu);
        out->recorded += m->stripes[i].recorded;
        pthread_mutex_unlock(&m->stripes[i].mu);
    }
    pthread_mutex_lock(&m->flush_mu);
    out->flushes = m->flushes;
    out->flush_errors = m->flush_errors;
    out->rows_written = m->rows_written;
    out->last_flush_ns = m->last_flush_ns;
    pthread_mutex_unlock(&m->flush_mu);
}
