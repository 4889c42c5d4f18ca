/*
 * test_metrics.c — the Prometheus text rendering of src/common/metrics.c,
 * checked byte for byte, and concurrent updates summing correctly.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/metrics.h"

static void assert_render(mx_registry_t *r, const char *expect)
{
    size_t len = 0;
    char *text = mx_registry_render(r, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_string_equal(text, expect);
    free(text);
}

static void test_counter(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    const char *labels[] = {"function", "revision", "code", NULL};
    mx_family_t *f = mx_family_new(r, "wasmfn_requests_total", "Requests served.", MX_COUNTER,
                                   labels, NULL, 0);
    assert_non_null(f);
    /* No series yet: HELP and TYPE only. */
    assert_render(r, "# HELP wasmfn_requests_total Requests served.\n"
                     "# TYPE wasmfn_requests_total counter\n");
    const char *a[] = {"hello", "hello-00001", "200"};
    const char *b[] = {"hello", "hello-00001", "500"};
    mx_counter_add(f, a, 1);
    mx_counter_add(f, a, 2);
    mx_counter_add(f, b, 1);
    mx_counter_add(f, a, -5);  /* counters never go down */
    mx_counter_add(f, a, NAN); /* nor become NaN */
    mx_counter_add(f, b, 0.25);
    assert_render(r, "# HELP wasmfn_requests_total Requests served.\n"
                     "# TYPE wasmfn_requests_total counter\n"
                     "wasmfn_requests_total{function=\"hello\",revision=\"hello-00001\",code=\"200\"} 3\n"
                     "wasmfn_requests_total{function=\"hello\",revision=\"hello-00001\",code=\"500\"} 1.25\n");
    mx_registry_free(r);
}

static void test_gauge_and_unlabelled(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    mx_family_t *up = mx_family_new(r, "wasmfn_up", "1 when serving.", MX_GAUGE, NULL, NULL, 0);
    const char *labels[] = {"function", "revision", "state", NULL};
    mx_family_t *inst = mx_family_new(r, "wasmfn_instances", "Instances by state.", MX_GAUGE,
                                      labels, NULL, 0);
    assert_non_null(up);
    assert_non_null(inst);
    /* An unlabelled family shows its single series at 0 from the start. */
    assert_render(r, "# HELP wasmfn_up 1 when serving.\n"
                     "# TYPE wasmfn_up gauge\n"
                     "wasmfn_up 0\n"
                     "# HELP wasmfn_instances Instances by state.\n"
                     "# TYPE wasmfn_instances gauge\n");
    mx_gauge_set(up, NULL, 1);
    const char *warm[] = {"f", "f-00001", "warm"};
    const char *busy[] = {"f", "f-00001", "busy"};
    mx_gauge_set(inst, warm, 3);
    mx_gauge_add(inst, busy, 2);
    mx_gauge_add(inst, busy, -1);
    mx_gauge_add(inst, warm, -4);
    assert_render(r, "# HELP wasmfn_up 1 when serving.\n"
                     "# TYPE wasmfn_up gauge\n"
                     "wasmfn_up 1\n"
                     "# HELP wasmfn_instances Instances by state.\n"
                     "# TYPE wasmfn_instances gauge\n"
                     "wasmfn_instances{function=\"f\",revision=\"f-00001\",state=\"warm\"} -1\n"
                     "wasmfn_instances{function=\"f\",revision=\"f-00001\",state=\"busy\"} 1\n");
    mx_registry_free(r);
}

static void test_histogram(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    const char *labels[] = {"function", "revision", NULL};
    const double buckets[] = {0.005, 0.1, 1, 2.5};
    mx_family_t *h = mx_family_new(r, "wasmfn_request_duration_seconds", "Request latency.",
                                   MX_HISTOGRAM, labels, buckets, 4);
    assert_non_null(h);
    const char *v[] = {"echo", "echo-00002"};
    mx_histogram_observe(h, v, 0.001);
    mx_histogram_observe(h, v, 0.005); /* upper bounds are inclusive */
    mx_histogram_observe(h, v, 0.05);
    mx_histogram_observe(h, v, 2);
    mx_histogram_observe(h, v, 7);     /* only in +Inf */
    mx_histogram_observe(h, v, NAN);   /* ignored */
    /* The sum is the double sum of the observations, printed so that it
     * reads back exactly (hence the ...001). */
    assert_render(r,
        "# HELP wasmfn_request_duration_seconds Request latency.\n"
        "# TYPE wasmfn_request_duration_seconds histogram\n"
        "wasmfn_request_duration_seconds_bucket{function=\"echo\",revision=\"echo-00002\",le=\"0.005\"} 2\n"
        "wasmfn_request_duration_seconds_bucket{function=\"echo\",revision=\"echo-00002\",le=\"0.1\"} 3\n"
        "wasmfn_request_duration_seconds_bucket{function=\"echo\",revision=\"echo-00002\",le=\"1\"} 3\n"
        "wasmfn_request_duration_seconds_bucket{function=\"echo\",revision=\"echo-00002\",le=\"2.5\"} 4\n"
        "wasmfn_request_duration_seconds_bucket{function=\"echo\",revision=\"echo-00002\",le=\"+Inf\"} 5\n"
        "wasmfn_request_duration_seconds_sum{function=\"echo\",revision=\"echo-00002\"} 9.056000000000001\n"
        "wasmfn_request_duration_seconds_count{function=\"echo\",revision=\"echo-00002\"} 5\n");
    mx_registry_free(r);

    /* Unlabelled histogram: le is the only label. */
    r = mx_registry_new();
    const double one[] = {1};
    h = mx_family_new(r, "x_seconds", "X.", MX_HISTOGRAM, NULL, one, 1);
    mx_histogram_observe(h, NULL, 0.5);
    assert_render(r, "# HELP x_seconds X.\n"
                     "# TYPE x_seconds histogram\n"
                     "x_seconds_bucket{le=\"1\"} 1\n"
                     "x_seconds_bucket{le=\"+Inf\"} 1\n"
                     "x_seconds_sum 0.5\n"
                     "x_seconds_count 1\n");
    mx_registry_free(r);
}

static void test_escaping(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    const char *labels[] = {"function", NULL};
    mx_family_t *f = mx_family_new(r, "m", "Help with \\ and\nnewline and \"quotes\".", MX_COUNTER,
                                   labels, NULL, 0);
    const char *v[] = {"a\\b\"c\nd"};
    mx_counter_add(f, v, 1);
    /* HELP escapes backslash and newline only; label values also '"'. */
    assert_render(r, "# HELP m Help with \\\\ and\\nnewline and \"quotes\".\n"
                     "# TYPE m counter\n"
                     "m{function=\"a\\\\b\\\"c\\nd\"} 1\n");
    mx_registry_free(r);
}

static void test_number_spelling(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    mx_family_t *g = mx_family_new(r, "g", "G.", MX_GAUGE, NULL, NULL, 0);
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {42, "42"},
        {-7, "-7"},
        {1e15, "1000000000000000"},
        {9007199254740992.0, "9007199254740992"},
        {1e300, "1e+300"},
        {0.1 + 0.2, "0.30000000000000004"},
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {2.5e-7, "2.5e-07"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mx_gauge_set(g, NULL, cases[i].v);
        char expect[128];
        snprintf(expect, sizeof expect, "# HELP g G.\n# TYPE g gauge\ng %s\n", cases[i].text);
        assert_render(r, expect);
        /* What we print must read back as the same value. */
        if (!isnan(cases[i].v) && !isinf(cases[i].v))
            assert_true(strtod(cases[i].text, NULL) == cases[i].v);
    }
    mx_registry_free(r);
}

/* Deleting a function removes its series from every family it shows in. */
static void test_remove_first_label(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    const char *labels[] = {"function", "revision", NULL};
    mx_family_t *f = mx_family_new(r, "q", "Q.", MX_GAUGE, labels, NULL, 0);
    const char *a1[] = {"a", "a-00001"}, *b1[] = {"b", "b-00001"}, *a2[] = {"a", "a-00002"};
    const char *ab[] = {"ab", "ab-00001"};
    mx_gauge_set(f, a1, 1);
    mx_gauge_set(f, b1, 2);
    mx_gauge_set(f, a2, 3);
    mx_gauge_set(f, ab, 4);
    mx_family_remove_first_label(f, "a");
    assert_render(r, "# HELP q Q.\n# TYPE q gauge\n"
                     "q{function=\"b\",revision=\"b-00001\"} 2\n"
                     "q{function=\"ab\",revision=\"ab-00001\"} 4\n");
    /* The series come back, from 0, if used again. */
    mx_gauge_add(f, a2, 5);
    assert_render(r, "# HELP q Q.\n# TYPE q gauge\n"
                     "q{function=\"b\",revision=\"b-00001\"} 2\n"
                     "q{function=\"ab\",revision=\"ab-00001\"} 4\n"
                     "q{function=\"a\",revision=\"a-00002\"} 5\n");
    mx_family_remove_first_label(f, "b");
    mx_family_remove_first_label(f, "ab");
    mx_family_remove_first_label(f, "a");
    mx_family_remove_first_label(f, "none");
    assert_render(r, "# HELP q Q.\n# TYPE q gauge\n");
    mx_registry_free(r);
}

/* A handle (mx_series) updates the same series the labels name, of
 * every type, with the same rules (counters refuse negatives and NaN,
 * histograms NaN); it makes the series at once, and NULL is ignored. */
static void test_series_handles(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    const char *labels[] = {"function", NULL};
    const double one[] = {1};
    mx_family_t *c = mx_family_new(r, "c_total", "C.", MX_COUNTER, labels, NULL, 0);
    mx_family_t *g = mx_family_new(r, "g", "G.", MX_GAUGE, labels, NULL, 0);
    mx_family_t *h = mx_family_new(r, "h_seconds", "H.", MX_HISTOGRAM, labels, one, 1);
    const char *a[] = {"a"};
    mx_series_t *sc = mx_series(c, a), *sg = mx_series(g, a), *sh = mx_series(h, a);
    assert_non_null(sc);
    assert_non_null(sg);
    assert_non_null(sh);
    assert_ptr_equal(mx_series(c, a), sc);
    assert_null(mx_series(NULL, a));
    mx_series_add(sc, 2);
    mx_series_add(sc, -1);
    mx_series_add(sc, NAN);
    mx_counter_add(c, a, 1);
    mx_series_set(sg, 7);
    mx_series_add(sg, -2);
    mx_series_observe(sh, 0.5);
    mx_series_observe(sh, 3);
    mx_series_observe(sh, NAN);
    mx_histogram_observe(h, a, 1);
    mx_series_add(NULL, 1);
    mx_series_set(NULL, 1);
    mx_series_observe(NULL, 1);
    assert_render(r, "# HELP c_total C.\n# TYPE c_total counter\n"
                     "c_total{function=\"a\"} 3\n"
                     "# HELP g G.\n# TYPE g gauge\n"
                     "g{function=\"a\"} 5\n"
                     "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
                     "h_seconds_bucket{function=\"a\",le=\"1\"} 2\n"
                     "h_seconds_bucket{function=\"a\",le=\"+Inf\"} 3\n"
                     "h_seconds_sum{function=\"a\"} 4.5\n"
                     "h_seconds_count{function=\"a\"} 3\n");
    mx_registry_free(r);
}

/* Many series: the hash table grows and every series stays reachable. */
static void test_many_series(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    const char *labels[] = {"function", "code", NULL};
    mx_family_t *f = mx_family_new(r, "n_total", "N.", MX_COUNTER, labels, NULL, 0);
    char name[32], code[8];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 500; i++) {
            snprintf(name, sizeof name, "fn%d", i);
            snprintf(code, sizeof code, "%d", 200 + i % 3);
            const char *v[] = {name, code};
            mx_counter_add(f, v, 1);
        }
    size_t len;
    char *text = mx_registry_render(r, &len);
    assert_non_null(text);
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2 + 500);
    assert_non_null(strstr(text, "\nn_total{function=\"fn0\",code=\"200\"} 3\n"));
    assert_non_null(strstr(text, "\nn_total{function=\"fn499\",code=\"201\"} 3\n"));
    free(text);
    mx_registry_free(r);
}

/* ---- concurrency ---- */

#define THREADS 8
#define ITERS 20000

typedef struct worker_arg {
    mx_family_t *counter, *hist, *gauge, *tmp;
    int id;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *w = p;
    char code[8];
    for (int i = 0; i < ITERS; i++) {
        /* A shared series, plus series created concurrently by everyone. */
        const char *shared[] = {"f", "200"};
        mx_counter_add(w->counter, shared, 1);
        snprintf(code, sizeof code, "%d", i % 16);
        const char *mine[] = {"g", code};
        mx_counter_add(w->counter, mine, 0.5);
        const char *h[] = {"f"};
        mx_histogram_observe(w->hist, h, (i % 4) * 0.5); /* 0, .5, 1, 1.5 */
        mx_gauge_add(w->gauge, NULL, 1);
        mx_gauge_add(w->gauge, NULL, -1);
        /* Series of a function being deleted while others update it. */
        const char *tmp[] = {"gone", code};
        mx_gauge_add(w->tmp, tmp, 1);
        if (w->id == 0 && i % 100 == 0)
            mx_family_remove_first_label(w->tmp, "gone");
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    mx_registry_t *r = mx_registry_new();
    const char *cl[] = {"function", "code", NULL};
    const char *hl[] = {"function", NULL};
    const double b[] = {0.5, 1};
    worker_arg_t args[THREADS];
    pthread_t th[THREADS];
    mx_family_t *c = mx_family_new(r, "c_total", "C.", MX_COUNTER, cl, NULL, 0);
    mx_family_t *h = mx_family_new(r, "h", "H.", MX_HISTOGRAM, hl, b, 2);
    mx_family_t *g = mx_family_new(r, "g", "G.", MX_GAUGE, NULL, NULL, 0);
    mx_family_t *t = mx_family_new(r, "t", "T.", MX_GAUGE, cl, NULL, 0);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){c, h, g, t, i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    /* Render while they run: must not crash, and buckets stay monotonic. */
    for (int k = 0; k < 50; k++) {
        char *text = mx_registry_render(r, NULL);
        assert_non_null(text);
        unsigned long long b1 = 0, b2 = 0, inf = 0;
        const char *p = strstr(text, "h_bucket{function=\"f\",le=\"0.5\"} ");
        if (p) {
            assert_int_equal(sscanf(p, "h_bucket{function=\"f\",le=\"0.5\"} %llu\n"
                                       "h_bucket{function=\"f\",le=\"1\"} %llu\n"
                                       "h_bucket{function=\"f\",le=\"+Inf\"} %llu",
                                    &b1, &b2, &inf),
                             3);
            assert_true(b1 <= b2 && b2 <= inf);
        }
        free(text);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    mx_family_remove_first_label(t, "gone");

    char expect[4096];
    const unsigned long long n = (unsigned long long)THREADS * ITERS;
    int o = snprintf(expect, sizeof expect,
                     "# HELP c_total C.\n# TYPE c_total counter\nc_total{function=\"f\",code=\"200\"} %llu\n",
                     n);
    for (int i = 0; i < 16; i++)
        o += snprintf(expect + o, sizeof expect - o, "c_total{function=\"g\",code=\"%d\"} %llu\n", i,
                      n / 16 / 2);
    o += snprintf(expect + o, sizeof expect - o,
                  "# HELP h H.\n# TYPE h histogram\n"
                  "h_bucket{function=\"f\",le=\"0.5\"} %llu\n"
                  "h_bucket{function=\"f\",le=\"1\"} %llu\n"
                  "h_bucket{function=\"f\",le=\"+Inf\"} %llu\n"
                  "h_sum{function=\"f\"} %llu\n"
                  "h_count{function=\"f\"} %llu\n"
                  "# HELP g G.\n# TYPE g gauge\ng 0\n"
                  "# HELP t T.\n# TYPE t gauge\n",
                  n / 2, n * 3 / 4, n, n * 3 / 4, n);
    /* Series creation order between threads is not fixed: compare the
     * sorted lines of the counter part, the rest in order. */
    char *text = mx_registry_render(r, NULL);
    assert_non_null(text);
    assert_int_equal(strlen(text), strlen(expect));
    const char *hist_at = strstr(expect, "# HELP h ");
    assert_string_equal(strstr(text, "# HELP h "), hist_at);
    /* every expected counter line is present exactly once */
    for (const char *line = expect; line < hist_at;) {
        const char *nl = strchr(line, '\n');
        char buf[128];
        size_t len = (size_t)(nl - line + 1);
        memcpy(buf, line, len);
        buf[len] = '\0';
        const char *hit = strstr(text, buf);
        assert_non_null(hit);
        assert_null(strstr(hit + 1, buf));
        line = nl + 1;
    }
    free(text);
    mx_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_gauge_and_unlabelled),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_number_spelling),
        cmocka_unit_test(test_remove_first_label),
        cmocka_unit_test(test_series_handles),
        cmocka_unit_test(test_many_series),
        cmocka_unit_test(test_concurrent_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
