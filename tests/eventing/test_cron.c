/*
 * test_cron.c — cron parsing and next-fire times, table-driven, including
 * daylight-saving changes in America/New_York and Europe/Berlin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "eventing/internal.h"

/* "2024-03-10T07:00:00" (UTC) -> Unix ms. */
static int64_t utc_ms(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -2;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static void fmt_utc(int64_t ms, char *out, size_t n)
{
    if (ms < 0) {
        snprintf(out, n, "none");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
}

typedef struct {
    const char *expr, *tz, *after, *want; /* want "none": no fire within 5 years */
} next_case_t;

static const next_case_t next_cases[] = {
    /* plain fields, lists, ranges, steps, names */
    {"*/15 * * * *", NULL, "2024-01-01T00:07:00", "2024-01-01T00:15:00"},
    {"*/15 * * * *", NULL, "2024-01-01T00:15:00", "2024-01-01T00:30:00"}, /* strictly after */
    {"0 9 * * mon-fri", NULL, "2024-01-05T10:00:00", "2024-01-08T09:00:00"},
    {"0 0 1,15 * *", NULL, "2024-01-02T00:00:00", "2024-01-15T00:00:00"},
    {"0 8-18/5 * * *", NULL, "2024-01-01T09:00:00", "2024-01-01T13:00:00"},
    {"0 0 * JAN,jul sun", NULL, "2024-01-08T00:00:00", "2024-01-14T00:00:00"},
    {"0 0 * * 7", NULL, "2024-01-08T00:00:00", "2024-01-14T00:00:00"}, /* 7 is Sunday */
    {"0 0 13 * fri", NULL, "2024-01-01T00:00:00", "2024-01-05T00:00:00"}, /* dom OR dow */
    {"0 0 13 * *", NULL, "2024-01-01T00:00:00", "2024-01-13T00:00:00"},
    {"0 0 ? * 1", NULL, "2024-01-01T00:00:00", "2024-01-08T00:00:00"},
    {"0 0 29 2 *", NULL, "2024-03-01T00:00:00", "2028-02-29T00:00:00"},
    {"0 0 30 2 *", NULL, "2024-03-01T00:00:00", "none"},
    {"5/20 * * * *", NULL, "2024-01-01T00:30:00", "2024-01-01T00:45:00"},
    {"59 23 31 12 *", NULL, "2024-06-01T00:00:00", "2024-12-31T23:59:00"},
    /* seconds field */
    {"*/10 * * * * *", NULL, "2024-01-01T00:00:05", "2024-01-01T00:00:10"},
    {"30 0 * * * *", NULL, "2024-01-01T00:00:30", "2024-01-01T01:00:30"},
    /* macros */
    {"@hourly", NULL, "2024-01-01T10:20:00", "2024-01-01T11:00:00"},
    {"@daily", NULL, "2024-01-01T10:20:00", "2024-01-02T00:00:00"},
    {"@weekly", NULL, "2024-01-01T10:20:00", "2024-01-07T00:00:00"},
    {"@monthly", NULL, "2024-01-31T10:20:00", "2024-02-01T00:00:00"},
    {"@yearly", NULL, "2024-05-01T00:00:00", "2025-01-01T00:00:00"},
    /* time zones */
    {"0 9 * * *", "Europe/Berlin", "2024-06-01T00:00:00", "2024-06-01T07:00:00"},
    {"0 9 * * *", "Europe/Berlin", "2024-01-01T00:00:00", "2024-01-01T08:00:00"},
    {"CRON_TZ=America/New_York 0 9 * * *", NULL, "2024-06-01T00:00:00", "2024-06-01T13:00:00"},
    /* New York spring-forward, 2024-03-10 02:00 EST -> 03:00 EDT: 02:30 does
     * not exist and fires at the first instant after the gap, once. */
    {"30 2 * * *", "America/New_York", "2024-03-09T08:00:00", "2024-03-10T07:00:00"},
    {"30 2 * * *", "America/New_York", "2024-03-10T07:00:00", "2024-03-11T06:30:00"},
    /* ... a wildcard-hour schedule just goes on in absolute time */
    {"30 * * * *", "America/New_York", "2024-03-10T06:30:00", "2024-03-10T07:30:00"},
    /* New York fall-back, 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 occurs
     * twice and a fixed-hour schedule fires at the first only. */
    {"30 1 * * *", "America/New_York", "2024-11-02T12:00:00", "2024-11-03T05:30:00"},
    {"30 1 * * *", "America/New_York", "2024-11-03T05:30:00", "2024-11-04T06:30:00"},
    /* ... while every-30-minutes fires in both 01:xx hours */
    {"*/30 * * * *", "America/New_York", "2024-11-03T05:45:00", "2024-11-03T06:00:00"},
    {"*/30 * * * *", "America/New_York", "2024-11-03T06:00:00", "2024-11-03T06:30:00"},
    /* Berlin spring-forward 2024-03-31 02:00 CET -> 03:00 CEST */
    {"0 2 * * *", "Europe/Berlin", "2024-03-30T02:00:00", "2024-03-31T01:00:00"},
    {"0 2 * * *", "Europe/Berlin", "2024-03-31T01:00:00", "2024-04-01T00:00:00"},
    /* Berlin fall-back 2024-10-27 03:00 CEST -> 02:00 CET */
    {"30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00", "2024-10-27T00:30:00"},
    {"30 2 * * *", "Europe/Berlin", "2024-10-27T00:30:00", "2024-10-28T01:30:00"},
    /* local midnight in a zone ahead of UTC */
    {"0 0 * * *", "Europe/Berlin", "2024-07-01T12:00:00", "2024-07-01T22:00:00"},
};

static void test_cron_next_table(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof next_cases / sizeof next_cases[0]; i++) {
        const next_case_t *k = &next_cases[i];
        ev_cron_t c;
        char err[200];
        if (ev_cron_parse(k->expr, k->tz, &c, err, sizeof err)) {
            printf("case %zu \"%s\": parse error: %s\n", i, k->expr, err);
            failed++;
            continue;
        }
        int64_t got = ev_cron_next(&c, utc_ms(k->after), 0);
        char gs[40];
        fmt_utc(got, gs, sizeof gs);
        if (strcmp(gs, k->want) != 0) {
            printf("case %zu \"%s\" tz %s after %s: got %s, want %s\n", i, k->expr,
                   k->tz ? k->tz : "UTC", k->after, gs, k->want);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* A whole day of an every-hour schedule across a fall-back has 25 fires,
 * across a spring-forward 23; a fixed-time daily one fires once a day. */
static void test_cron_dst_counts(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *tz, *from, *to;
        int want;
    } cases[] = {
        {"0 * * * *", "America/New_York", "2024-11-03T04:00:00", "2024-11-04T05:00:00", 25},
        {"0 * * * *", "America/New_York", "2024-03-10T05:00:00", "2024-03-11T04:00:00", 23},
        {"30 1 * * *", "America/New_York", "2024-11-01T00:00:00", "2024-11-06T00:00:00", 5},
        {"30 2 * * *", "America/New_York", "2024-03-08T00:00:00", "2024-03-13T00:00:00", 5},
        {"30 2 * * *", "Europe/Berlin", "2024-10-25T00:00:00", "2024-10-30T00:00:00", 5},
        {"30 2 * * *", "Europe/Berlin", "2024-03-29T00:00:00", "2024-04-03T00:00:00", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ev_cron_t c;
        char err[200];
        assert_int_equal(ev_cron_parse(cases[i].expr, cases[i].tz, &c, err, sizeof err), 0);
        int64_t t = utc_ms(cases[i].from) - 1000, end = utc_ms(cases[i].to);
        int n = 0;
        while ((t = ev_cron_next(&c, t, 0)) >= 0 && t < end)
            n++;
        if (n != cases[i].want)
            printf("case %zu \"%s\" %s: %d fires, want %d\n", i, cases[i].expr, cases[i].tz, n,
                   cases[i].want);
        assert_int_equal(n, cases[i].want);
    }
}

static void test_cron_every(void **state)
{
    (void)state;
    ev_cron_t c;
    char err[200];
    assert_int_equal(ev_cron_parse("@every 90s", NULL, &c, err, sizeof err), 0);
    assert_int_equal(c.every_ms, 90000);
    /* Keeps the phase of the anchor (the last fire), skipping missed ticks. */
    assert_int_equal(ev_cron_next(&c, 1000000, 1000000), 1090000);
    assert_int_equal(ev_cron_next(&c, 1000000 + 90000 * 10 + 5, 1000000), 1000000 + 90000 * 11);
    assert_int_equal(ev_cron_parse("@every 1m30s", NULL, &c, err, sizeof err), 0);
    assert_int_equal(c.every_ms, 90000);
    assert_int_equal(ev_cron_parse("@every 500ms", NULL, &c, err, sizeof err), 0);
    assert_int_equal(c.every_ms, 500);
}

static void test_cron_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *tz, *mention;
    } bad[] = {
        {"* * * *", NULL, "fields"},
        {"* * * * * * *", NULL, "fields"},
        {"60 * * * *", NULL, "minutes"},
        {"* 24 * * *", NULL, "hours"},
        {"* * 0 * *", NULL, "day of month"},
        {"* * * 13 *", NULL, "month"},
        {"* * * * 8", NULL, "day of week"},
        {"*/0 * * * *", NULL, "minutes"},
        {"5-1 * * * *", NULL, "minutes"},
        {"abc * * * *", NULL, "minutes"},
        {"* * * foo *", NULL, "month"},
        {"61 * * * * *", NULL, "seconds"},
        {"@fortnightly", NULL, "macro"},
        {"@every x", NULL, "@every"},
        {"@every -5s", NULL, "@every"},
        {"0 0 * * *", "Mars/Olympus_Mons", "time zone"},
        {"0 0 * * *", "../../etc/passwd", "time zone"},
        {"CRON_TZ=Nowhere/City 0 0 * * *", NULL, "time zone"},
        {"", NULL, "fields"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ev_cron_t c;
        char err[200] = "";
        int r = ev_cron_parse(bad[i].expr, bad[i].tz, &c, err, sizeof err);
        if (r != -1 || !strstr(err, bad[i].mention))
            printf("case %zu \"%s\": r=%d err=\"%s\" (want mention of %s)\n", i, bad[i].expr, r,
                   err, bad[i].mention);
        assert_int_equal(r, -1);
        assert_non_null(strstr(err, bad[i].mention));
    }
}

static void test_tz_valid(void **state)
{
    (void)state;
    assert_true(ev_tz_valid("America/New_York"));
    assert_true(ev_tz_valid("Europe/Berlin"));
    assert_true(ev_tz_valid("UTC"));
    assert_false(ev_tz_valid("Europe/Nowhere"));
    assert_false(ev_tz_valid("/etc/localtime"));
    assert_false(ev_tz_valid(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cron_next_table), cmocka_unit_test(test_cron_dst_counts),
        cmocka_unit_test(test_cron_every),      cmocka_unit_test(test_cron_parse_errors),
        cmocka_unit_test(test_tz_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
