/*
 * stats.c — the data plane's numbers for the dashboard (docs/dashboard.md):
 * every finished call and every tick are folded into the function's
 * srv_series_t (series.c), and the admin API asks for them as JSON: the
 * node's capacity with a summary per function (srv_stats_json), one
 * function's last hour (srv_function_series_json) and its recent calls
 * (srv_function_recent_json). Loop thread only, like the rest of srv_.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serving/plane.h"
#include "serving/series.h"

static int64_t wall_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* f's series, made at its first use; NULL when out of memory (the
 * dashboard then misses some numbers, the call is not affected). */
static srv_series_t *fn_series(srv_fn_t *f)
{
    if (!f->series) f->series = srv_series_new();
    return f->series;
}

void srv_stats_call(srv_t *s, const srv_call_t *c, int status, uint64_t now_ns, int64_t wall_ns)
{
    (void)s;
    srv_fn_t *f = c->rev->fn;
    if (f->deleted) return;
    srv_series_t *ser = fn_series(f);
    if (!ser) return;
    const char *trigger = "http";
    if (c->inv) trigger = "async";
    else if (c->trigger && strcmp(c->trigger, "http") != 0) trigger = "event"; /* pubsub, timer */
    srv_series_call_t sc = {
        .wall_ns = wall_ns,
        .latency_ns = now_ns - c->start_ns,
        .status = c->aborted ? 499 : status,
        .cold = c->cold,
        .cold_ns = c->cold_ns + c->load_ns,
        .revision = c->rev->name,
        .trigger = trigger,
        /* Every call's, so a slow one leads to its log lines and trace. */
        .id = c->invocation_id,
        .trace_id = c->trace_id,
    };
    srv_series_record(ser, &sc);
}

void srv_stats_tick(srv_t *s)
{
    int64_t now = wall_now_ns();
    for (uint32_t b = 0; b < SRV_FN_BUCKETS; b++) {
        for (srv_fn_t *f = s->fns[b]; f; f = f->hnext) {
            uint32_t warm = 0, busy = 0;
            for (uint32_t i = 0; i < f->nrevs; i++) {
                warm += f->revs[i]->nwarm;
                busy += f->revs[i]->busy;
            }
            /* A function never called and never warm needs no series. */
            if (!f->series && !warm && !busy) continue;
            srv_series_t *ser = fn_series(f);
            if (ser) srv_series_instances(ser, now, warm, busy);
        }
    }
}

/* Bytes of the process's resident memory (0 when unknown). */
static uint64_t process_rss(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long long size, rss = 0;
    if (!fp) return 0;
    if (fscanf(fp, "%llu %llu", &size, &rss) != 2) rss = 0;
    fclose(fp);
    long page = sysconf(_SC_PAGESIZE);
    return rss * (uint64_t)(page > 0 ? page : 4096);
}

/* MemAvailable from /proc/meminfo, in bytes (0 when unknown). */
static uint64_t host_available(void)
{
    FILE *fp = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kib = 0;
    if (!fp) return 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
    fclose(fp);
    return kib * 1024;
}

static cJSON *node_json(srv_t *s)
{
    cJSON *n = cJSON_CreateObject();
    uint32_t warm = 0, busy = 0, queued = 0;
    for (srv_rev_t *r = s->revs; r; r = r->all_next) {
        warm += r->nwarm;
        busy += r->busy;
        queued += r->queue.n;
    }
    cJSON *in = cJSON_AddObjectToObject(n, "instances");
    cJSON_AddNumberToObject(in, "live", s->live);
    cJSON_AddNumberToObject(in, "warm", warm);
    cJSON_AddNumberToObject(in, "busy", busy);
    cJSON_AddNumberToObject(in, "budget", s->budget_instances);
    cJSON_AddNumberToObject(in, "warmBudget", srv_node_warm_budget(s));
    cJSON_AddNumberToObject(n, "queued", queued);
    cJSON_AddNumberToObject(n, "workers", rt_pool_workers(s->pool));
    cJSON *m = cJSON_AddObjectToObject(n, "memory");
    cJSON_AddNumberToObject(m, "instanceReservedBytes", (double)s->live_as_bytes);
    cJSON_AddNumberToObject(m, "instanceBudgetBytes", (double)s->budget_as_bytes);
    cJSON_AddNumberToObject(m, "processResidentBytes", (double)process_rss());
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        cJSON_AddNumberToObject(m, "hostTotalBytes", (double)si.totalram * si.mem_unit);
    cJSON_AddNumberToObject(m, "hostAvailableBytes", (double)host_available());
    rt_cache_stats_t cs;
    rt_cache_stats(s->cache, &cs);
    cJSON *mc = cJSON_AddObjectToObject(n, "moduleCache");
    cJSON_AddNumberToObject(mc, "bytes", (double)cs.bytes);
    cJSON_AddNumberToObject(mc, "modules", (double)cs.modules);
    cJSON_AddNumberToObject(mc, "nativeModules", (double)cs.native_modules);
    return n;
}

static void add_ms(cJSON *o, const char *key, double ms)
{
    if (ms < 0) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, (double)(int64_t)(ms * 1000 + 0.5) / 1000);
}

static cJSON *function_summary_json(srv_t *s, srv_fn_t *f, int64_t now, uint32_t window_s)
{
    cJSON *o = cJSON_CreateObject();
    srv_series_summary_t sum;
    srv_series_summarize(f->series, now, window_s, &sum);
    cJSON_AddStringToObject(o, "name", f->name);
    cJSON_AddNumberToObject(o, "requests", (double)sum.requests);
    cJSON_AddNumberToObject(o, "requestsPerSecond",
                            (double)(int64_t)((double)sum.requests / sum.elapsed_s * 1000) / 1000);
    cJSON_AddNumberToObject(o, "errors", (double)sum.errors);
    if (sum.requests)
        cJSON_AddNumberToObject(o, "errorRate", (double)sum.errors / (double)sum.requests);
    else
        cJSON_AddNullToObject(o, "errorRate");
    add_ms(o, "p50Ms", sum.p50_ms);
    add_ms(o, "p99Ms", sum.p99_ms);
    cJSON_AddNumberToObject(o, "coldStarts", (double)sum.cold_starts);
    add_ms(o, "coldStartMeanMs", sum.cold_start_mean_ms);
    srv_status_t st;
    if (srv_function_status(s, f->name, &st) == 0) {
        cJSON_AddNumberToObject(o, "warm", st.warm);
        cJSON_AddNumberToObject(o, "busy", st.busy);
        cJSON_AddNumberToObject(o, "queued", st.queued);
    }
    return o;
}

static char *print_free(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *srv_stats_json(srv_t *s, uint32_t window_s)
{
    int64_t now = wall_now_ns();
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "windowSeconds", window_s);
    cJSON_AddItemToObject(o, "node", node_json(s));
    cJSON *fns = cJSON_AddArrayToObject(o, "functions");
    for (uint32_t b = 0; b < SRV_FN_BUCKETS; b++)
        for (srv_fn_t *f = s->fns[b]; f; f = f->hnext)
            cJSON_AddItemToArray(fns, function_summary_json(s, f, now, window_s));
    return print_free(o);
}

char *srv_function_series_json(srv_t *s, const char *name, uint32_t window_s)
{
    srv_fn_t *f = srv_fn_find(s, name);
    int64_t now = wall_now_ns();
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "function", name);
    cJSON_AddNumberToObject(o, "stepSeconds", SRV_SERIES_STEP_S);
    cJSON_AddNumberToObject(o, "windowSeconds", window_s);
    cJSON_AddNumberToObject(o, "now", (double)(now / 1000000) / 1000);
    cJSON *arr = srv_series_samples_json(f ? f->series : NULL, now, window_s);
    if (!arr) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToObject(o, "samples", arr);
    return print_free(o);
}

char *srv_function_recent_json(srv_t *s, const char *name, uint32_t limit)
{
    srv_fn_t *f = srv_fn_find(s, name);
    return print_free(srv_series_recent_json(f ? f->series : NULL, limit));
}
