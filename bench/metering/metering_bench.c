/*
 * metering_bench.c — what metering costs on the request path: ns per
 * mtr_record call with 1..8 threads recording at once (the flusher running
 * at its default 1 s interval against a real SQLite file, as in the
 * daemon), and how long one flush of many rows takes (the commit time that
 * sits on top of the flush interval in the SIGKILL loss bound).
 *
 * Usage: metering_bench [DIR] [RECORDS_PER_THREAD]. DIR is a scratch
 * directory for the database ("" or absent: $TMPDIR, else P_tmpdir).
 * Prints a table; never fails on a timing. The end-to-end figure — hello-world throughput with metering on
 * and off — needs the daemon and is measured there.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metering/metering.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct job {
    mtr_t *m;
    long n;
    int nfunctions;
    pthread_barrier_t *start;
    int64_t elapsed_ns;
} job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    char names[100][16], revs[100][24];
    for (int i = 0; i < j->nfunctions; i++) {
        snprintf(names[i], sizeof names[i], "fn%d", i);
        snprintf(revs[i], sizeof revs[i], "fn%d-00001", i);
    }
    pthread_barrier_wait(j->start);
    int64_t t0 = mono_ns();
    for (long i = 0; i < j->n; i++) {
        int f = (int)(i % j->nfunctions);
        /* what the daemon passes: the current wall time, a short duration */
        mtr_invocation_t inv = {
            .function = names[f],
            .revision = revs[f],
            .start_ns = mtr_now_ns(),
            .duration_ns = 150000 + (i & 1023),
            .cpu_ns = 120000,
            .peak_memory_bytes = 1 << 20,
            .memory_limit_bytes = 128u << 20,
            .cold_start = (i & 4095) == 0,
            .outcome = MTR_OK,
        };
        mtr_record(j->m, &inv);
    }
    j->elapsed_ns = mono_ns() - t0;
    return NULL;
}

/* ns per call of the clock alone, to separate it from mtr_record. */
static double clock_cost(void)
{
    int64_t t0 = mono_ns(), sink = 0;
    for (int i = 0; i < 1000000; i++) sink += mtr_now_ns();
    int64_t dt = mono_ns() - t0;
    if (sink == 42) puts("");
    return (double)dt / 1e6;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 && argv[1][0] ? argv[1] : getenv("TMPDIR");
    if (!base || !*base) base = P_tmpdir;
    long n = argc > 2 ? atol(argv[2]) : 2000000;
    char dir[512], db[600];
    snprintf(dir, sizeof dir, "%s/wasmfn-mtr-bench-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    snprintf(db, sizeof db, "%s/wasmfn.db", dir);
    mtr_config_t c;
    mtr_config_init(&c);
    c.db_path = db;
    char err[256];
    mtr_t *m = mtr_open(&c, err, sizeof err);
    if (!m) {
        fprintf(stderr, "metering_bench: %s\n", err);
        return 1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("metering bench: %ld records per thread, %ld CPUs, clock_gettime(REALTIME) %.1f ns\n",
           n, ncpu, clock_cost());
    printf("%-8s %-10s %14s %16s\n", "threads", "functions", "ns/record", "records/s total");
    static const int threads[] = {1, 2, 4, 8};
    static const int fns[] = {1, 100};
    for (size_t fi = 0; fi < 2; fi++) {
        for (size_t ti = 0; ti < 4; ti++) {
            int nt = threads[ti];
            pthread_t th[8];
            job_t jobs[8];
            pthread_barrier_t bar;
            pthread_barrier_init(&bar, NULL, (unsigned)nt);
            for (int i = 0; i < nt; i++) {
                jobs[i] = (job_t){.m = m, .n = n, .nfunctions = fns[fi], .start = &bar};
                pthread_create(&th[i], NULL, worker, &jobs[i]);
            }
            int64_t worst = 0;
            double sum_per = 0;
            for (int i = 0; i < nt; i++) {
                pthread_join(th[i], NULL);
                if (jobs[i].elapsed_ns > worst) worst = jobs[i].elapsed_ns;
                sum_per += (double)jobs[i].elapsed_ns / (double)n;
            }
            pthread_barrier_destroy(&bar);
            printf("%-8d %-10d %14.1f %16.0f\n", nt, fns[fi], sum_per / nt,
                   (double)n * nt / ((double)worst / 1e9));
        }
    }

    /* One flush of many distinct rows: the commit cost. */
    for (int rows = 10; rows <= 10000; rows *= 10) {
        for (int i = 0; i < rows; i++) {
            char name[32];
            snprintf(name, sizeof name, "flush%d", i);
            mtr_invocation_t inv = {.function = name, .revision = "r", .start_ns = mtr_now_ns(),
                                    .duration_ns = 1000000, .memory_limit_bytes = 128u << 20};
            mtr_record(m, &inv);
        }
        int64_t t0 = mono_ns();
        if (mtr_flush(m, err, sizeof err) != 0) fprintf(stderr, "flush: %s\n", err);
        printf("flush of %5d rows: %.2f ms\n", rows, (double)(mono_ns() - t0) / 1e6);
    }
    /* And a usage query over all of it. */
    int64_t t0 = mono_ns();
    char *j = mtr_usage_json(m, NULL, 0, mtr_now_ns(), 0, err, sizeof err);
    printf("usage query (all functions): %.2f ms, %zu bytes\n", (double)(mono_ns() - t0) / 1e6,
           j ? strlen(j) : 0);
    free(j);
    mtr_close(m);
    char p[700];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}
