/*
 * query.c — the usage report (mtr_usage_json): sums from the database,
 * plus the rows not flushed yet, grouped by function (and step bucket),
 * with a per-revision breakdown and the cost at the configured prices.
 *
 * The database does the heavy grouping (one row per function, revision,
 * memory limit and bucket); the in-memory rows are folded into the same
 * groups here. The whole query holds flush_mu, so a concurrent flush cannot
 * move a row between "in memory" and "in the database" while we look.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "metering/internal.h"
#include "common/rfc3339.h"

typedef struct query {
    const char *function; /* NULL = all */
    int64_t since_min, until_min, step_min;
} query_t;

/* Adds one row (keyed by minute) to the result table if the query wants it. */
static int fold(const query_t *q, mtr_table_t *out, const mtr_agg_t *a)
{
    if (a->minute < q->since_min || a->minute >= q->until_min) return 0;
    if (q->function && strcmp(q->function, a->function) != 0) return 0;
    int64_t bucket = (a->minute - q->since_min) / q->step_min;
    uint64_t h = mtr_key_hash(a->function, a->revision, bucket, a->memory_limit_bytes);
    mtr_agg_t *r = mtr_table_get(out, h, a->function, a->revision, bucket, a->memory_limit_bytes);
    if (!r) return -1;
    mtr_agg_add(r, a);
    return 0;
}

static int fold_table(const query_t *q, mtr_table_t *out, const mtr_table_t *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].hash && fold(q, out, &t->slots[i]) != 0) return -1;
    return 0;
}

/* One group of the database's sums into the result table; 1 when out of
 * memory. */
static int collect_row(void *ud, const st_usage_row_t *row)
{
    mtr_table_t *out = ud;
    uint64_t h = mtr_key_hash(row->function, row->revision, row->minute, row->memory_limit_bytes);
    mtr_agg_t *r = mtr_table_get(out, h, row->function, row->revision, row->minute,
                                 row->memory_limit_bytes);
    if (!r) return 1;
    mtr_agg_t a = {
        .requests = row->requests,
        .errors = row->errors,
        .timeouts = row->timeouts,
        .cold_starts = row->cold_starts,
        .duration_ns = row->duration_ns,
        .billed_ns = row->billed_ns,
        .cpu_ns = row->cpu_ns,
        .peak_memory_bytes = row->peak_memory_bytes,
    };
    mtr_agg_add(r, &a);
    return 0;
}

/* Caller holds flush_mu. */
static int collect(mtr_t *m, const query_t *q, mtr_table_t *out, char *err, size_t errlen)
{
    int rc = st_usage_query(m->usage, q->since_min, q->step_min, q->until_min, q->function,
                            collect_row, out, err, errlen);
    if (rc > 0) goto oom;
    if (rc < 0) return -1;

    if (fold_table(q, out, &m->pending) != 0) goto oom;
    for (int i = 0; i < MTR_NSTRIPES; i++) {
        mtr_stripe_t *s = &m->stripes[i];
        pthread_mutex_lock(&s->mu);
        int frc = fold_table(q, out, &s->t);
        pthread_mutex_unlock(&s->mu);
        if (frc != 0) goto oom;
    }
    return 0;
oom:
    mtr_set_err(err, errlen, "metering: out of memory");
    return -1;
}

static int cmp_rows(const void *pa, const void *pb)
{
    const mtr_agg_t *a = *(const mtr_agg_t *const *)pa, *b = *(const mtr_agg_t *const *)pb;
    int c = strcmp(a->function, b->function);
    if (c) return c;
    if (a->minute != b->minute) return a->minute < b->minute ? -1 : 1;
    c = strcmp(a->revision, b->revision);
    if (c) return c;
    if (a->memory_limit_bytes != b->memory_limit_bytes)
        return a->memory_limit_bytes < b->memory_limit_bytes ? -1 : 1;
    return 0;
}

/* Sums of a group of rows, and the GB-seconds each row's memory limit
 * gives (rows differ in memory limit, so GB-s cannot come from sums). */
typedef struct sums {
    mtr_agg_t a;
    double gb_seconds;
} sums_t;

static void sums_add(sums_t *s, const mtr_agg_t *r)
{
    mtr_agg_add(&s->a, r);
    s->gb_seconds += mtr_gb_seconds(r->memory_limit_bytes, r->billed_ns);
}

static double cost_of(const mtr_t *m, const sums_t *s)
{
    return s->gb_seconds * m->price_gb_s + (double)s->a.requests / 1e6 * m->price_million_req;
}

/* The common fields of a function object and of a revision entry. */
static void add_sums(cJSON *o, const mtr_t *m, const sums_t *s)
{
    cJSON_AddNumberToObject(o, "requests", (double)s->a.requests);
    cJSON_AddNumberToObject(o, "errors", (double)(s->a.errors + s->a.timeouts));
    cJSON_AddNumberToObject(o, "timeouts", (double)s->a.timeouts);
    cJSON_AddNumberToObject(o, "cold_starts", (double)s->a.cold_starts);
    cJSON_AddNumberToObject(o, "duration_ms", (double)s->a.duration_ns / 1e6);
    cJSON_AddNumberToObject(o, "billed_ms", (double)s->a.billed_ns / 1e6);
    cJSON_AddNumberToObject(o, "cpu_ms", (double)s->a.cpu_ns / 1e6);
    cJSON_AddNumberToObject(o, "gb_seconds", s->gb_seconds);
    cJSON_AddNumberToObject(o, "peak_memory_bytes", (double)s->a.peak_memory_bytes);
    cJSON_AddNumberToObject(o, "cost", cost_of(m, s));
}

static char *render(const mtr_t *m, const query_t *q, mtr_agg_t **rows, size_t n, bool step)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (size_t i = 0; i < n;) {
        /* rows[i..j) share function and bucket */
        size_t j = i;
        while (j < n && strcmp(rows[j]->function, rows[i]->function) == 0 &&
               rows[j]->minute == rows[i]->minute)
            j++;
        cJSON *o = cJSON_CreateObject(), *revs = cJSON_CreateArray();
        if (!o || !revs) {
            cJSON_Delete(o);
            cJSON_Delete(revs);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "function", rows[i]->function);
        if (step) {
            char t[48];
            int64_t start_min = q->since_min + rows[i]->minute * q->step_min;
            int64_t end_min = start_min + q->step_min;
            if (end_min > q->until_min) end_min = q->until_min;
            cm_rfc3339_format(start_min * MTR_NS_PER_MINUTE, CM_RFC3339_EXACT, t, sizeof t);
            cJSON_AddStringToObject(o, "start", t);
            cm_rfc3339_format(end_min * MTR_NS_PER_MINUTE, CM_RFC3339_EXACT, t, sizeof t);
            cJSON_AddStringToObject(o, "end", t);
        }
        sums_t total = {0};
        for (size_t k = i; k < j;) {
            size_t l = k;
            sums_t rs = {0};
            while (l < j && strcmp(rows[l]->revision, rows[k]->revision) == 0)
                sums_add(&rs, rows[l++]);
            cJSON *r = cJSON_CreateObject();
            if (r) {
                cJSON_AddStringToObject(r, "revision", rows[k]->revision);
                add_sums(r, m, &rs);
                cJSON_AddItemToArray(revs, r);
            }
            mtr_agg_add(&total.a, &rs.a);
            total.gb_seconds += rs.gb_seconds;
            k = l;
        }
        add_sums(o, m, &total);
        cJSON_AddItemToObject(o, "revisions", revs);
        i = j;
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}

char *mtr_usage_json(mtr_t *m, const char *function, int64_t since_ns, int64_t until_ns,
                     int64_t step_ns, char *err, size_t errlen)
{
    /* Keep the minute arithmetic below clear of INT64_MIN. */
    if (since_ns < INT64_MIN / 2) since_ns = INT64_MIN / 2;
    if (until_ns < INT64_MIN / 2) until_ns = INT64_MIN / 2;
    if (until_ns > INT64_MAX / 2) until_ns = INT64_MAX / 2;
    if (since_ns > until_ns) {
        mtr_set_err(err, errlen, "since is after until");
        return NULL;
    }
    if (step_ns < 0 || step_ns % MTR_NS_PER_MINUTE != 0) {
        mtr_set_err(err, errlen, "step must be a whole number of minutes (usage is kept per minute)");
        return NULL;
    }
    if (function && !*function) function = NULL;
    query_t q = {
        .function = function,
        .since_min = mtr_floor_div(since_ns, MTR_NS_PER_MINUTE),
        .until_min = -mtr_floor_div(-until_ns, MTR_NS_PER_MINUTE), /* ceiling */
        .step_min = step_ns ? step_ns / MTR_NS_PER_MINUTE : INT64_MAX,
    };
    mtr_table_t out = {0};
    pthread_mutex_lock(&m->flush_mu);
    int rc = collect(m, &q, &out, err, errlen);
    pthread_mutex_unlock(&m->flush_mu);
    if (rc != 0) {
        mtr_table_clear(&out);
        return NULL;
    }
    mtr_agg_t **rows = malloc((out.count ? out.count : 1) * sizeof *rows);
    if (!rows) {
        mtr_table_clear(&out);
        mtr_set_err(err, errlen, "metering: out of memory");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < out.cap; i++)
        if (out.slots[i].hash && out.slots[i].requests) rows[n++] = &out.slots[i];
    qsort(rows, n, sizeof *rows, cmp_rows);
    char *json = render(m, &q, rows, n, step_ns > 0);
    free(rows);
    mtr_table_clear(&out);
    if (!json) mtr_set_err(err, errlen, "metering: out of memory");
    return json;
}
