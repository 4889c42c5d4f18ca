/*
 * triggers.c — the triggers computed here rather than read from a server:
 * cron (KEDA's window between two schedules) and cpu and memory (the
 * Service's own usage, from the data plane).
 */
#include <stdio.h>

#include "eventing/eventing.h"
#include "keda/internal.h"

/* KEDA's rule: inside the window when the next end comes before the next
 * start. The value is then desiredReplicas (target 1), else 0. */
int kd_read_cron(const kd_trigger_t *t, int64_t now_ms, double *value, char *err, size_t errlen)
{
    char e[256];
    int64_t start = ev_cron_next_fire(t->start, t->tz, now_ms, e, sizeof e);
    if (start == -2) {
        snprintf(err, errlen, "cron start: %s", e);
        return -1;
    }
    int64_t end = ev_cron_next_fire(t->end, t->tz, now_ms, e, sizeof e);
    if (end == -2) {
        snprintf(err, errlen, "cron end: %s", e);
        return -1;
    }
    bool inside = end >= 0 && (start < 0 || end < start);
    *value = inside ? (double)t->desired_replicas : 0;
    return 0;
}

/* cpu: the CPU its requests used since the last poll, in cores; memory:
 * the linear memory its running guests held on average, in bytes.
 * Utilization is that as a percent of one instance's request (requests.cpu
 * or limits.cpu; requests.memory or limits.memory), so that value /
 * target is the instances needed. The first poll has nothing to compare
 * with and reads 0. */
int kd_read_usage(const kd_trigger_t *t, const kd_usage_t *u, uint64_t now_ns,
                  kd_usage_mark_t *mark, double *value, char *err, size_t errlen)
{
    bool cpu = t->type == KD_CPU;
    if (t->metric_type == KD_UTILIZATION) {
        if (cpu && !u->cpu_request_millis) {
            snprintf(err, errlen, "cpu utilization needs resources.requests.cpu or limits.cpu on "
                                  "the Service's containers");
            return -1;
        }
        if (!cpu && !u->memory_request_bytes) {
            snprintf(err, errlen, "memory utilization needs resources.requests.memory");
            return -1;
        }
    }
    double used = 0;
    if (mark->have && now_ns > mark->at_ns) {
        double secs = (double)(now_ns - mark->at_ns) / 1e9;
        if (cpu)
            used = u->cpu_ns >= mark->cpu_ns ? (double)(u->cpu_ns - mark->cpu_ns) / 1e9 / secs : 0;
        else
            used = u->memory_kib_ms >= mark->memory_kib_ms
                       ? (double)(u->memory_kib_ms - mark->memory_kib_ms) * 1024.0 / 1000.0 / secs
                       : 0;
    }
    mark->have = true;
    mark->at_ns = now_ns;
    mark->cpu_ns = u->cpu_ns;
    mark->memory_kib_ms = u->memory_kib_ms;
    if (t->metric_type == KD_UTILIZATION)
        used = used * 100.0 /
               (cpu ? (double)u->cpu_request_millis / 1000.0 : (double)u->memory_request_bytes);
    *value = used;
    return 0;
}
