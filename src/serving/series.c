/*
 * series.c — a function's last hour in 10-second samples and its recent
 * invocations, for the dashboard (series.h says what is kept and why).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rfc3339.h"
#include "common/strcopy.h"
#include "serving/series.h"

typedef struct sample {
    int64_t slot;               /* wall seconds / SRV_SERIES_STEP_S; another: empty */
    uint32_t requests, errors, cold_starts;
    uint32_t warm_max, busy_max;
    uint64_t cold_ns;           /* sum over the cold starts */
    uint64_t latency_max_ns;
    uint32_t latency[SRV_SERIES_BUCKETS];
} sample_t;

typedef struct recent {
    int64_t wall_ns;
    uint64_t latency_ns;
    uint16_t status;
    bool cold;
    char trigger[6];
    char revision[SRV_SERIES_REV_MAX];
    char id[33];
    char trace_id[33];
} recent_t;

struct srv_series {
    sample_t samples[SRV_SERIES_SAMPLES];
    recent_t recent[SRV_SERIES_RECENT]; /* a ring: next is where the next call goes */
    uint32_t next, nrecent;
};

srv_series_t *srv_series_new(void) { return calloc(1, sizeof(srv_series_t)); }

void srv_series_free(srv_series_t *s) { free(s); }

static int64_t slot_of(int64_t wall_ns)
{
    int64_t sec = wall_ns / 1000000000LL;
    return sec >= 0 ? sec / SRV_SERIES_STEP_S : 0;
}

/* The sample for slot, emptied first if it held an older one. */
static sample_t *sample_at(srv_series_t *s, int64_t slot)
{
    sample_t *p = &s->samples[slot % SRV_SERIES_SAMPLES];
    if (p->slot != slot) {
        memset(p, 0, sizeof *p);
        p->slot = slot;
    }
    return p;
}

static unsigned bucket_of(uint64_t ns)
{
    uint64_t q = ns / SRV_SERIES_BUCKET0_NS;
    if (q == 0) return 0;
    unsigned k = 64u - (unsigned)__builtin_clzll(q);
    return k < SRV_SERIES_BUCKETS ? k : SRV_SERIES_BUCKETS - 1;
}

void srv_series_record(srv_series_t *s, const srv_series_call_t *c)
{
    sample_t *p = sample_at(s, slot_of(c->wall_ns));
    /* Counts saturate rather than wrap (4 billion calls in 10 s is not a
     * real load, but the counts must never go backwards). */
    if (p->requests < UINT32_MAX) p->requests++;
    if (c->status >= 500 && p->errors < UINT32_MAX) p->errors++;
    if (c->cold) {
        if (p->cold_starts < UINT32_MAX) p->cold_starts++;
        p->cold_ns += c->cold_ns;
    }
    uint32_t *b = &p->latency[bucket_of(c->latency_ns)];
    if (*b < UINT32_MAX) (*b)++;
    if (c->latency_ns > p->latency_max_ns) p->latency_max_ns = c->latency_ns;

    recent_t *r = &s->recent[s->next];
    s->next = (s->next + 1) % SRV_SERIES_RECENT;
    if (s->nrecent < SRV_SERIES_RECENT) s->nrecent++;
    r->wall_ns = c->wall_ns;
    r->latency_ns = c->latency_ns;
    r->status = c->status > 0 && c->status < 1000 ? (uint16_t)c->status : 0;
    r->cold = c->cold;
    cm_strcopy(r->trigger, sizeof r->trigger, c->trigger ? c->trigger : "http");
    cm_strcopy(r->revision, sizeof r->revision, c->revision);
    cm_strcopy(r->id, sizeof r->id, c->id);
    cm_strcopy(r->trace_id, sizeof r->trace_id, c->trace_id);
}

void srv_series_instances(srv_series_t *s, int64_t wall_ns, uint32_t warm, uint32_t busy)
{
    sample_t *p = sample_at(s, slot_of(wall_ns));
    if (warm > p->warm_max) p->warm_max = warm;
    if (busy > p->busy_max) p->busy_max = busy;
}

double srv_series_quantile(const uint64_t *buckets, uint64_t max_ns, double q)
{
    uint64_t n = 0;
    for (unsigned k = 0; k < SRV_SERIES_BUCKETS; k++) n += buckets[k];
    if (n == 0) return -1;
    double rank = q * (double)n, cum = 0;
    if (rank < 1) rank = 1;
    for (unsigned k = 0; k < SRV_SERIES_BUCKETS; k++) {
        if (!buckets[k] || cum + (double)buckets[k] < rank) {
            cum += (double)buckets[k];
            continue;
        }
        double f = (rank - cum) / (double)buckets[k]; /* 0 < f <= 1 */
        double v;
        if (k == SRV_SERIES_BUCKETS - 1) {
            v = (double)max_ns;
        } else if (k == 0) {
            v = f * (double)SRV_SERIES_BUCKET0_NS;
        } else {
            double lo = (double)(SRV_SERIES_BUCKET0_NS << (k - 1));
            v = lo * exp2(f); /* hi = 2 lo */
        }
        return v < (double)max_ns ? v : (double)max_ns;
    }
    return (double)max_ns;
}

/* The samples of the window: first and last slot. */
static void window_slots(int64_t now_ns, uint32_t window_s, int64_t *first, int64_t *last)
{
    uint32_t n = (window_s + SRV_SERIES_STEP_S - 1) / SRV_SERIES_STEP_S;
    if (n == 0) n = 1;
    if (n > SRV_SERIES_SAMPLES) n = SRV_SERIES_SAMPLES;
    *last = slot_of(now_ns);
    *first = *last - (int64_t)n + 1;
}

/* The sample of slot, or NULL when it holds nothing for it. */
static const sample_t *sample_get(const srv_series_t *s, int64_t slot)
{
    if (!s || slot < 0) return NULL;
    const sample_t *p = &s->samples[slot % SRV_SERIES_SAMPLES];
    return p->slot == slot ? p : NULL;
}

void srv_series_summarize(const srv_series_t *s, int64_t now_ns, uint32_t window_s,
                          srv_series_summary_t *out)
{
    memset(out, 0, sizeof *out);
    out->window_s = window_s;
    int64_t first, last;
    window_slots(now_ns, window_s, &first, &last);
    out->elapsed_s = (double)now_ns / 1e9 - (double)(first * SRV_SERIES_STEP_S);
    if (out->elapsed_s < 1) out->elapsed_s = 1;
    uint64_t buckets[SRV_SERIES_BUCKETS] = {0}, max_ns = 0, cold_ns = 0;
    for (int64_t slot = first; slot <= last; slot++) {
        const sample_t *p = sample_get(s, slot);
        if (!p) continue;
        out->requests += p->requests;
        out->errors += p->errors;
        out->cold_starts += p->cold_starts;
        cold_ns += p->cold_ns;
        for (unsigned k = 0; k < SRV_SERIES_BUCKETS; k++) buckets[k] += p->latency[k];
        if (p->latency_max_ns > max_ns) max_ns = p->latency_max_ns;
    }
    double p50 = srv_series_quantile(buckets, max_ns, 0.5);
    double p99 = srv_series_quantile(buckets, max_ns, 0.99);
    out->p50_ms = p50 < 0 ? -1 : p50 / 1e6;
    out->p99_ms = p99 < 0 ? -1 : p99 / 1e6;
    out->cold_start_mean_ms =
        out->cold_starts ? (double)cold_ns / (double)out->cold_starts / 1e6 : -1;
}

/* Milliseconds rounded to the microsecond, or null when v < 0. */
static void add_ms(cJSON *o, const char *key, double ms)
{
    if (ms < 0) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, round(ms * 1000) / 1000);
}

cJSON *srv_series_samples_json(const srv_series_t *s, int64_t now_ns, uint32_t window_s)
{
    int64_t first, last;
    window_slots(now_ns, window_s, &first, &last);
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (int64_t slot = first; slot <= last; slot++) {
        const sample_t *p = sample_get(s, slot);
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
        int64_t t0 = slot * SRV_SERIES_STEP_S;
        cJSON_AddNumberToObject(o, "time", (double)t0);
        /* The current sample covers only the seconds so far. */
        double span = SRV_SERIES_STEP_S;
        if (slot == last) {
            span = (double)now_ns / 1e9 - (double)t0;
            if (span < 1) span = 1;
            cJSON_AddBoolToObject(o, "partial", true);
        }
        uint64_t buckets[SRV_SERIES_BUCKETS] = {0};
        if (p)
            for (unsigned k = 0; k < SRV_SERIES_BUCKETS; k++) buckets[k] = p->latency[k];
        uint64_t max_ns = p ? p->latency_max_ns : 0;
        uint32_t req = p ? p->requests : 0, cold = p ? p->cold_starts : 0;
        cJSON_AddNumberToObject(o, "requests", req);
        cJSON_AddNumberToObject(o, "requestsPerSecond", round(req / span * 1000) / 1000);
        cJSON_AddNumberToObject(o, "errors", p ? p->errors : 0);
        double p50 = srv_series_quantile(buckets, max_ns, 0.5);
        double p99 = srv_series_quantile(buckets, max_ns, 0.99);
        add_ms(o, "p50Ms", p50 < 0 ? -1 : p50 / 1e6);
        add_ms(o, "p99Ms", p99 < 0 ? -1 : p99 / 1e6);
        cJSON_AddNumberToObject(o, "coldStarts", cold);
        add_ms(o, "coldStartMeanMs", cold ? (double)p->cold_ns / cold / 1e6 : -1);
        cJSON_AddNumberToObject(o, "warm", p ? p->warm_max : 0);
        cJSON_AddNumberToObject(o, "busy", p ? p->busy_max : 0);
    }
    return arr;
}

cJSON *srv_series_recent_json(const srv_series_t *s, uint32_t limit)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr || !s) return arr;
    uint32_t n = s->nrecent < limit ? s->nrecent : limit;
    for (uint32_t i = 0; i < n; i++) {
        const recent_t *r =
            &s->recent[(s->next + SRV_SERIES_RECENT - 1 - i) % SRV_SERIES_RECENT];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(arr, o);
        char t[40];
        cm_rfc3339_format(r->wall_ns, CM_RFC3339_MILLIS, t, sizeof t);
        cJSON_AddStringToObject(o, "time", t);
        cJSON_AddStringToObject(o, "revision", r->revision);
        cJSON_AddStringToObject(o, "trigger", r->trigger);
        cJSON_AddNumberToObject(o, "status", r->status);
        add_ms(o, "durationMs", (double)r->latency_ns / 1e6);
        cJSON_AddBoolToObject(o, "coldStart", r->cold);
        if (r->id[0]) cJSON_AddStringToObject(o, "id", r->id);
        if (r->trace_id[0]) cJSON_AddStringToObject(o, "traceId", r->trace_id);
    }
    return arr;
}
