/*
 * stats.c — the task service's Stats: the container's resource use, typed
 * as cgroups v2's Metrics (io.containerd.cgroups.v2.Metrics), which is what
 * containerd, `ctr task metrics` and the kubelet's CRI stats read from a
 * Linux container.
 *
 * The shim puts no container in a cgroup of its own (a container is one
 * process: shim.h), so the numbers come from that process, measured the
 * way the cgroup would count it:
 *
 *   cpu.usage_usec, user_usec, system_usec
 *       the process's user and system time, every thread (/proc/PID/stat;
 *       clock ticks, 10 ms on Linux), or, once it has exited, what wait4
 *       reported for it;
 *   memory.usage
 *       its resident memory (/proc/PID/statm): the pages of the guest's
 *       linear memory it has touched, plus the engine, its code and heap;
 *       anon and file split it as the cgroup does; 0 once it has exited;
 *   memory.usage_limit
 *       the spec's memory limit (which caps linear memory; guest.c), or
 *       2^64-1 ("max") without one;
 *   pids.current
 *       its threads while it runs (the cgroup counts tasks), 0 after.
 *
 * Nothing else of Metrics (io, rdma, hugetlb, memory events) has a meaning
 * here; those fields stay unset.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "github.com/containerd/cgroups/v2/stats/metrics.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "shim/shim.h"

#define METRICS_TYPE "io.containerd.cgroups.v2.Metrics"

/* Reads a small /proc file into buf (NUL-terminated). */
static int proc_read(pid_t pid, const char *name, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return 0;
}

/* utime, stime (clock ticks) and num_threads from /proc/PID/stat. The
 * command name (field 2) may hold spaces and parentheses: fields are
 * counted from the last ')'. */
static int proc_stat(pid_t pid, uint64_t *utime, uint64_t *stime, uint64_t *threads)
{
    char buf[1024];
    if (proc_read(pid, "stat", buf, sizeof buf) != 0) return -1;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    /* p + 2 is field 3 (state); utime is field 14, stime 15, threads 20. */
    unsigned long long v[18] = {0};
    int field = 3;
    for (char *save = NULL, *t = strtok_r(p + 2, " ", &save); t && field <= 20;
         t = strtok_r(NULL, " ", &save), field++)
        if (field >= 14) v[field - 14] = strtoull(t, NULL, 10);
    if (field <= 20) return -1;
    *utime = v[0];
    *stime = v[1];
    *threads = v[6];
    return 0;
}

int shim_stats_pack(const shim_stats_t *in, uint8_t **out, size_t *out_len)
{
    Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
    Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
    Io__Containerd__Cgroups__V2__MemoryStat mem = IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
    Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
    m.cpu = &cpu;
    m.memory = &mem;
    m.pids = &pids;
    mem.usage_limit = in->memory_limit_bytes ? in->memory_limit_bytes : UINT64_MAX;

    uint64_t ut, st, threads;
    char statm[256];
    unsigned long long size, resident, shared;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (in->running && tick > 0 && proc_stat(in->pid, &ut, &st, &threads) == 0) {
        cpu.user_usec = ut * 1000000u / (uint64_t)tick;
        cpu.system_usec = st * 1000000u / (uint64_t)tick;
        pids.current = threads;
        if (proc_read(in->pid, "statm", statm, sizeof statm) == 0 &&
            sscanf(statm, "%llu %llu %llu", &size, &resident, &shared) == 3 && page > 0) {
            mem.usage = resident * (uint64_t)page;
            mem.file = shared * (uint64_t)page;
            mem.anon = resident > shared ? (resident - shared) * (uint64_t)page : 0;
        }
    } else if (!in->running) {
        cpu.user_usec = (uint64_t)in->rusage.ru_utime.tv_sec * 1000000u +
                        (uint64_t)in->rusage.ru_utime.tv_usec;
        cpu.system_usec = (uint64_t)in->rusage.ru_stime.tv_sec * 1000000u +
                          (uint64_t)in->rusage.ru_stime.tv_usec;
    }
    cpu.usage_usec = cpu.user_usec + cpu.system_usec;

    size_t mlen = io__containerd__cgroups__v2__metrics__get_packed_size(&m);
    uint8_t *mbuf = malloc(mlen ? mlen : 1);
    if (!mbuf) return SHIM_INTERNAL;
    io__containerd__cgroups__v2__metrics__pack(&m, mbuf);
    /* The type URL as containerd's typeurl names a registered gogo type:
     * the message's full name, no prefix. */
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = METRICS_TYPE;
    any.value.data = mbuf;
    any.value.len = mlen;
    Containerd__Task__V2__StatsResponse resp = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
    resp.stats = &any;
    *out_len = containerd__task__v2__stats_response__get_packed_size(&resp);
    *out = malloc(*out_len ? *out_len : 1);
    if (*out) containerd__task__v2__stats_response__pack(&resp, *out);
    free(mbuf);
    return *out ? SHIM_OK : SHIM_INTERNAL;
}
