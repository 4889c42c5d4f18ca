/*
 * test_autoscale.c — the KPA rule (src/autoscale/) on synthetic traffic.
 *
 * Every test drives a scaler with injected timestamps: each simulated
 * second records the concurrency, asks for a decision and (like the serving
 * layer would) makes the ready count what was decided. No clock, no sleeps.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "autoscale/autoscale.h"

#define S(x) ((uint64_t)(x) * 1000000000ull)

typedef struct sim {
    as_scaler_t *s;
    uint32_t ready;
    as_decision_t last;
} sim_t;

static void sim_init(sim_t *m, const as_config_t *c, uint32_t ready)
{
    m->s = as_scaler_new(c, 0);
    assert_non_null(m->s);
    m->ready = ready;
    memset(&m->last, 0, sizeof m->last);
}

/* One simulated second: record, decide, scale to the decision. */
static as_decision_t sim_tick(sim_t *m, uint64_t sec, double conc)
{
    as_scaler_record(m->s, S(sec), conc);
    m->last = as_scaler_decide(m->s, S(sec), m->ready);
    m->ready = m->last.desired;
    return m->last;
}

/* Seconds [from, to) at a steady concurrency. */
static void sim_run(sim_t *m, uint64_t from, uint64_t to, double conc)
{
    for (uint64_t t = from; t < to; t++)
        sim_tick(m, t, conc);
}

static as_config_t cfg_target(double target)
{
    as_config_t c;
    as_config_default(&c);
    c.target = target;
    return c;
}

static void test_defaults_and_check(void **state)
{
    (void)state;
    as_config_t c;
    as_config_default(&c);
    assert_true(c.target == 1.0);
    assert_int_equal(c.stable_window_ns, S(60));
    assert_true(c.panic_window_pct == 10.0);
    assert_true(c.panic_threshold == 2.0);
    assert_int_equal(c.initial_scale, 1);
    assert_int_equal(c.min_scale, 0);
    assert_int_equal(c.max_scale, 0);
    assert_null(as_config_check(&c));

    as_config_t b = c;
    b.target = 0;
    assert_non_null(strstr(as_config_check(&b), "target"));
    b = c;
    b.target = NAN;
    assert_non_null(as_config_check(&b));
    b = c;
    b.stable_window_ns = S(5);
    assert_non_null(strstr(as_config_check(&b), "window"));
    b.stable_window_ns = S(6);
    assert_null(as_config_check(&b));
    b.stable_window_ns = S(3600) + S(1);
    assert_non_null(as_config_check(&b));
    b.stable_window_ns = S(6) + 500000000ull;
    assert_non_null(as_config_check(&b));
    b = c;
    b.min_scale = 4;
    b.max_scale = 3;
    assert_non_null(strstr(as_config_check(&b), "min-scale"));
    b.max_scale = 0; /* unbounded: any min is fine */
    assert_null(as_config_check(&b));
    b = c;
    b.panic_window_pct = 0.5;
    assert_non_null(as_config_check(&b));
    b = c;
    b.panic_threshold = 1.0;
    assert_non_null(as_config_check(&b));
}

/* C concurrent requests at target T settle at ceil(C/T). */
static void steady(double conc, double target, uint32_t expect)
{
    as_config_t c = cfg_target(target);
    sim_t m;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 120, conc);
    /* After warm-up the decision holds still for a whole further window. */
    for (uint64_t t = 120; t < 240; t++) {
        as_decision_t d = sim_tick(&m, t, conc);
        assert_int_equal(d.desired, expect);
        assert_false(d.panic);
        assert_true(fabs(d.stable_avg - conc) < 1e-9);
    }
    as_scaler_free(m.s);
}

static void test_steady_load_settles(void **state)
{
    (void)state;
    steady(25, 10, 3);
    steady(20, 10, 2); /* exact multiple: no rounding up */
    steady(7, 1, 7);
    steady(1, 1, 1);
    steady(0.5, 1, 1);
    steady(100, 0.7, 143);
}

/* A ramp from 0 without ever panicking settles the same way, and the
 * average of samples in one second is their mean. */
static void test_bucket_is_average_of_its_second(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    as_scaler_t *s = as_scaler_new(&c, 0);
    for (uint64_t t = 0; t < 60; t++) {
        as_scaler_record(s, S(t), 2);
        as_scaler_record(s, S(t) + 500000000ull, 4);
    }
    as_decision_t d = as_scaler_decide(s, S(59), 3);
    assert_true(fabs(d.stable_avg - 3.0) < 1e-9);
    assert_int_equal(d.desired, 3);
    as_scaler_free(s);
}

/* Seconds without samples count as zero concurrency. */
static void test_missing_seconds_are_zero(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    as_scaler_t *s = as_scaler_new(&c, 0);
    for (uint64_t t = 0; t < 120; t += 2)
        as_scaler_record(s, S(t), 4); /* every other second */
    as_decision_t d = as_scaler_decide(s, S(119), 2);
    assert_true(fabs(d.stable_avg - 2.0) < 1e-9);
    assert_int_equal(d.desired, 2);
    as_scaler_free(s);
}

/* Steady 10 at target 10 (one instance), then a burst of 40: the panic
 * window (6 s) sees it first and scales to 4 within it, long before the
 * 60 s stable average would ask that much. */
static void test_burst_panics_and_scales_up(void **state)
{
    (void)state;
    as_config_t c = cfg_target(10);
    sim_t m;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 120, 10);
    assert_int_equal(m.last.desired, 1);
    assert_false(m.last.panic);

    as_decision_t d = sim_tick(&m, 120, 40);
    assert_true(d.panic); /* panic avg (40 + 5x10)/6 = 15 -> 2 pods = 2x ready */
    assert_int_equal(d.desired, 2);
    static const uint32_t climb[] = {2, 3, 3, 4, 4}; /* the table in docs/autoscaling.md */
    for (uint64_t t = 121; t < 126; t++) {
        d = sim_tick(&m, t, 40);
        assert_int_equal(d.desired, climb[t - 121]);
    }
    assert_true(d.panic);
    assert_int_equal(d.desired, 4);
    assert_true(fabs(d.panic_avg - 40.0) < 1e-9);
    assert_true(d.stable_avg / 10.0 <= 2.0); /* stable alone would say 2 */
    as_scaler_free(m.s);
}

/* A burst below the threshold does not panic. */
static void test_small_burst_no_panic(void **state)
{
    (void)state;
    as_config_t c = cfg_target(10);
    sim_t m;
    sim_init(&m, &c, 2);
    sim_run(&m, 0, 120, 20);
    assert_int_equal(m.last.desired, 2);
    for (uint64_t t = 120; t < 130; t++) {
        as_decision_t d = sim_tick(&m, t, 30); /* 3 pods wanted < 2 x 2 ready */
        assert_false(d.panic);
    }
    as_scaler_free(m.s);
}

/* After the burst the load vanishes: while panicking the count never goes
 * down; panic ends a stable window after the last over-threshold decision;
 * then the stable rule applies. */
static void test_no_scale_down_during_panic_and_panic_ends(void **state)
{
    (void)state;
    as_config_t c = cfg_target(10);
    sim_t m;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 120, 10);
    sim_run(&m, 120, 126, 40);
    assert_true(m.last.panic);
    assert_int_equal(m.last.desired, 4);

    /* The panic condition (2x the ready count) last held at second 120:
     * from 121 on the ready count kept up with the panic window. So panic
     * holds, at 4, until 120 + 60 even though the load is down to 1. */
    uint64_t ended = 0;
    for (uint64_t t = 126; t < 300; t++) {
        as_decision_t d = sim_tick(&m, t, 1);
        if (d.panic) {
            assert_int_equal(d.desired, 4);
        } else {
            ended = t;
            break;
        }
    }
    assert_int_equal(ended, 180);
    /* Out of panic: the stable rule (1 request, target 10 -> 1), but the
     * burst is still in the stable window, so check after it has left. */
    sim_run(&m, ended, ended + 61, 1);
    assert_false(m.last.panic);
    assert_int_equal(m.last.desired, 1);
    as_scaler_free(m.s);
}

/* Panic is extended while the threshold keeps being crossed. */
static void test_panic_extends_while_over_threshold(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    as_scaler_t *s = as_scaler_new(&c, 0);
    /* Ready stays 1 (the platform could not scale): the panic condition
     * holds every second, so panic never ends while the burst lasts. */
    for (uint64_t t = 0; t < 200; t++) {
        as_scaler_record(s, S(t), 5);
        as_decision_t d = as_scaler_decide(s, S(t), 1);
        assert_true(d.panic);
        assert_int_equal(d.desired, 5);
    }
    as_scaler_free(s);
}

/* From zero instances: one request is not a panic, a burst is. */
static void test_scale_from_zero(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    c.initial_scale = 0;
    as_scaler_t *s = as_scaler_new(&c, 0);
    as_decision_t d = as_scaler_decide(s, S(100), 0);
    assert_int_equal(d.desired, 0);
    as_scaler_record(s, S(100), 1);
    d = as_scaler_decide(s, S(100), 0);
    assert_int_equal(d.desired, 1);
    assert_false(d.panic);
    as_scaler_free(s);

    s = as_scaler_new(&c, S(0));
    /* The 6 s panic window sees 10/6 -> 2 instances, 2x the (at least one)
     * ready: panic, and it climbs as the window fills. */
    as_scaler_record(s, S(100), 10);
    d = as_scaler_decide(s, S(100), 0);
    assert_true(d.panic);
    assert_int_equal(d.desired, 2);
    static const uint32_t climb[] = {4, 5, 7, 9, 10}; /* docs/autoscaling.md */
    for (uint64_t t = 101; t < 106; t++) {
        as_scaler_record(s, S(t), 10);
        d = as_scaler_decide(s, S(t), d.desired);
        assert_true(d.panic);
        assert_int_equal(d.desired, climb[t - 101]);
    }
    as_scaler_free(s);
}

/* Zero only after a whole stable window without traffic. */
static void test_scale_to_zero_after_window(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    sim_t m;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 101, 1); /* last request seen in second 100 */
    for (uint64_t t = 101; t < 160; t++) {
        /* nothing recorded: the caller may stop sampling when idle */
        as_decision_t d = as_scaler_decide(m.s, S(t), m.ready);
        assert_int_equal(d.desired, 1);
        m.ready = d.desired;
    }
    as_decision_t d = as_scaler_decide(m.s, S(160), m.ready);
    assert_int_equal(d.desired, 0);
    assert_true(d.stable_avg == 0.0);
    as_scaler_free(m.s);

    /* The same with zero samples recorded every second. */
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 101, 1);
    sim_run(&m, 101, 160, 0);
    assert_int_equal(m.last.desired, 1);
    assert_int_equal(sim_tick(&m, 160, 0).desired, 0);
    as_scaler_free(m.s);
}

/* A grace period longer than the window holds the last instance longer. */
static void test_scale_to_zero_grace(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    c.scale_to_zero_grace_ns = S(90);
    sim_t m;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 101, 1);
    sim_run(&m, 101, 190, 0);
    assert_int_equal(m.last.desired, 1);
    assert_int_equal(sim_tick(&m, 190, 0).desired, 0);
    as_scaler_free(m.s);
}

static void test_min_max_clamps(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    c.min_scale = 2;
    sim_t m;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 200, 0);
    assert_int_equal(m.last.desired, 2); /* no traffic, still min-scale */
    sim_run(&m, 200, 300, 5);
    assert_int_equal(m.last.desired, 5);
    as_scaler_free(m.s);

    c = cfg_target(1);
    c.max_scale = 3;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 200, 50);
    assert_int_equal(m.last.desired, 3);
    assert_true(m.last.panic); /* 50 wanted against 3 ready */
    assert_true(m.last.stable_avg == 50.0);
    as_scaler_free(m.s);

    c = cfg_target(1);
    c.min_scale = 4;
    c.max_scale = 4;
    sim_init(&m, &c, 0);
    assert_int_equal(sim_tick(&m, 0, 0).desired, 4);
    sim_run(&m, 1, 200, 100);
    assert_int_equal(m.last.desired, 4);
    sim_run(&m, 200, 400, 0);
    assert_int_equal(m.last.desired, 4);
    as_scaler_free(m.s);
}

/* initial-scale holds for the first stable window, then the rule decides. */
static void test_initial_scale(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    c.initial_scale = 3;
    as_scaler_t *s = as_scaler_new(&c, S(1000));
    for (uint64_t t = 1000; t < 1060; t++)
        assert_int_equal(as_scaler_decide(s, S(t), 3).desired, 3);
    assert_int_equal(as_scaler_decide(s, S(1060), 3).desired, 0);
    as_scaler_free(s);

    /* Traffic beyond initial-scale is served during the first window. */
    s = as_scaler_new(&c, 0);
    for (uint64_t t = 0; t < 10; t++)
        as_scaler_record(s, S(t), 8);
    as_decision_t d = as_scaler_decide(s, S(9), 3);
    assert_int_equal(d.desired, 8);
    as_scaler_free(s);

    /* initial-scale 0: nothing until traffic comes. */
    c.initial_scale = 0;
    s = as_scaler_new(&c, 0);
    assert_int_equal(as_scaler_decide(s, 0, 0).desired, 0);
    assert_int_equal(as_scaler_decide(s, S(30), 0).desired, 0);
    as_scaler_free(s);

    /* Clamped by min/max like every decision. */
    c.initial_scale = 10;
    c.max_scale = 2;
    s = as_scaler_new(&c, 0);
    assert_int_equal(as_scaler_decide(s, 0, 0).desired, 2);
    as_scaler_free(s);
}

/* A new config (new revision settings) keeps the traffic history. */
static void test_configure_keeps_history(void **state)
{
    (void)state;
    as_config_t c = cfg_target(10);
    sim_t m;
    sim_init(&m, &c, 3);
    sim_run(&m, 0, 120, 30);
    assert_int_equal(m.last.desired, 3);

    c.target = 5;
    as_scaler_configure(m.s, &c);
    /* ready 6 as if already scaled, so no panic muddles the checks */
    as_decision_t d = as_scaler_decide(m.s, S(119), 6);
    assert_true(fabs(d.stable_avg - 30.0) < 1e-9);
    assert_int_equal(d.desired, 6);

    /* Shrinking the window keeps the newest seconds. */
    c.stable_window_ns = S(30);
    as_scaler_configure(m.s, &c);
    d = as_scaler_decide(m.s, S(119), 6);
    assert_true(fabs(d.stable_avg - 30.0) < 1e-9);
    assert_int_equal(d.desired, 6);

    /* Growing it keeps them too: 30 s of 30 and 90 s without samples
     * (they were outside the 30 s ring) average to 7.5 over 120 s. */
    c.stable_window_ns = S(120);
    as_scaler_configure(m.s, &c);
    d = as_scaler_decide(m.s, S(119), 6);
    assert_true(fabs(d.stable_avg - 7.5) < 1e-9);
    assert_false(d.panic);
    assert_int_equal(d.desired, 2);
    m.ready = 2;
    sim_run(&m, 120, 240, 30);
    assert_int_equal(m.last.desired, 6);
    as_scaler_free(m.s);
}

/* A shorter window reacts sooner: 6 s is the least Knative allows. */
static void test_short_window(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    c.stable_window_ns = S(6);
    sim_t m;
    sim_init(&m, &c, 1);
    sim_run(&m, 0, 20, 2);
    assert_int_equal(m.last.desired, 2);
    sim_run(&m, 20, 25, 0);
    assert_int_equal(m.last.desired, 1); /* window 19..24 still holds second 19 */
    assert_int_equal(sim_tick(&m, 25, 0).desired, 0);
    as_scaler_free(m.s);
}

/* Samples out of order (older than the window) are ignored, and NaN or
 * negative concurrency reads as zero instead of poisoning the averages. */
static void test_bad_samples(void **state)
{
    (void)state;
    as_config_t c = cfg_target(1);
    as_scaler_t *s = as_scaler_new(&c, 0);
    for (uint64_t t = 0; t < 200; t++)
        as_scaler_record(s, S(t), 2);
    as_scaler_record(s, S(10), 1000); /* stale: 190 s old */
    as_scaler_record(s, S(199), NAN);
    as_scaler_record(s, S(199), -5);
    as_decision_t d = as_scaler_decide(s, S(199), 2);
    assert_false(isnan(d.stable_avg));
    /* second 199 holds 2, 0, 0 -> 2/3; the other 59 seconds hold 2 */
    assert_true(fabs(d.stable_avg - (59 * 2 + 2.0 / 3) / 60) < 1e-9);
    assert_int_equal(d.desired, 2);
    as_scaler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_check),
        cmocka_unit_test(test_steady_load_settles),
        cmocka_unit_test(test_bucket_is_average_of_its_second),
        cmocka_unit_test(test_missing_seconds_are_zero),
        cmocka_unit_test(test_burst_panics_and_scales_up),
        cmocka_unit_test(test_small_burst_no_panic),
        cmocka_unit_test(test_no_scale_down_during_panic_and_panic_ends),
        cmocka_unit_test(test_panic_extends_while_over_threshold),
        cmocka_unit_test(test_scale_from_zero),
        cmocka_unit_test(test_scale_to_zero_after_window),
        cmocka_unit_test(test_scale_to_zero_grace),
        cmocka_unit_test(test_min_max_clamps),
        cmocka_unit_test(test_initial_scale),
        cmocka_unit_test(test_configure_keeps_history),
        cmocka_unit_test(test_short_window),
        cmocka_unit_test(test_bad_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
