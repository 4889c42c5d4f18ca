/*
 * cron.c — cron schedules for PingSource: parsing and next-fire times.
 *
 * A schedule is a set of bits per field. The next fire time is found the
 * way robfig/cron (Knative's parser) finds it: start one second after the
 * last fire and repair the first field that does not match — jump to the
 * next month, day, hour, minute or second — until all do. Days and months
 * jump in local wall time (mktime); hours, minutes and seconds jump in
 * absolute time, so a daylight-saving change can never make the search
 * loop or go backwards.
 *
 * Time zones: the C library only converts through the process-wide TZ, so
 * a computation takes tz_lock, sets TZ to the schedule's zone, and puts the
 * old value back before releasing it. Only this file changes TZ; the rest
 * of wasmfn writes UTC times (gmtime), which TZ does not affect. (A reader
 * of local time elsewhere could see a schedule's zone for the few
 * microseconds a computation takes; wasmfn has none.)
 *
 * DST semantics (ISC cron's): for a schedule with a fixed hour, a wall time
 * skipped by the spring-forward fires at the first instant after the gap,
 * and a wall time repeated by the fall-back fires only at its first
 * occurrence. A schedule whose hour field is "*" fires at every absolute
 * time that matches (so "*\/15 * * * *" keeps its 15-minute rhythm).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventing/internal.h"

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

typedef struct field_def {
    const char *what;
    int lo, hi;
    const char *const *names; /* names[i] is value lo+i ... (months 1.., days 0..) */
    int nnames, name_base;
} field_def_t;

static const field_def_t F_SEC = {"seconds", 0, 59, NULL, 0, 0};
static const field_def_t F_MIN = {"minutes", 0, 59, NULL, 0, 0};
static const field_def_t F_HOUR = {"hours", 0, 23, NULL, 0, 0};
static const field_def_t F_DOM = {"day of month", 1, 31, NULL, 0, 0};
static const field_def_t F_MON = {"month", 1, 12, month_names, 12, 1};
static const field_def_t F_DOW = {"day of week", 0, 7, dow_names, 7, 0};

static int parse_value(const char *s, size_t n, const field_def_t *f, int *out)
{
    if (n == 0)
        return -1;
    if (isdigit((unsigned char)s[0])) {
        long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)s[i]) || v > 1000)
                return -1;
            v = v * 10 + (s[i] - '0');
        }
        *out = (int)v;
        return 0;
    }
    for (int i = 0; i < f->nnames; i++)
        if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->name_base + i;
            return 0;
        }
    return -1;
}

/* One field: items separated by ','. Fills bits; *star when it is "*" or
 * "?" without a step. */
static int parse_field(const char *s, const field_def_t *f, uint64_t *bits, bool *star, char *err,
                       size_t errlen)
{
    *bits = 0;
    *star = false;
    const char *p = s;
    while (1) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *slash = memchr(p, '/', n);
        size_t rn = slash ? (size_t)(slash - p) : n;
        int lo, hi, step = 1;
        bool all = false;
        if (rn == 1 && (p[0] == '*' || p[0] == '?')) {
            lo = f->lo;
            hi = f->hi == 7 ? 6 : f->hi;
            all = true;
        } else {
            const char *dash = memchr(p, '-', rn);
            if (dash) {
                if (parse_value(p, (size_t)(dash - p), f, &lo) ||
                    parse_value(dash + 1, rn - (size_t)(dash - p) - 1, f, &hi))
                    goto bad;
            } else {
                if (parse_value(p, rn, f, &lo))
                    goto bad;
                hi = slash ? (f->hi == 7 ? 6 : f->hi) : lo;
            }
        }
        if (slash) {
            int v;
            if (parse_value(slash + 1, n - rn - 1, &F_MIN, &v) || v <= 0) {
                snprintf(err, errlen, "%s: bad step in \"%.*s\"", f->what, (int)n, p);
                return -1;
            }
            step = v;
        }
        if (lo < f->lo || hi > f->hi || lo > hi) {
            snprintf(err, errlen, "%s: \"%.*s\" is out of range %d-%d", f->what, (int)n, p, f->lo,
                     f->hi);
            return -1;
        }
        if (all && step == 1)
            *star = true;
        for (int v = lo; v <= hi; v += step)
            *bits |= (uint64_t)1 << (f == &F_DOW && v == 7 ? 0 : v);
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
bad:
    snprintf(err, errlen, "%s: cannot read \"%s\"", f->what, s);
    return -1;
}

bool ev_tz_valid(const char *zone)
{
    if (!zone || !*zone || zone[0] == '/' || strstr(zone, "..") || strlen(zone) > 60)
        return false;
    for (const char *p = zone; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_+-/", *p))
            return false;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", zone);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char magic[4];
    ssize_t n = read(fd, magic, 4);
    close(fd);
    return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

int ev_cron_parse(const char *expr, const char *tz, ev_cron_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!expr) {
        snprintf(err, errlen, "empty schedule");
        return -1;
    }
    while (isspace((unsigned char)*expr))
        expr++;
    char zone[64] = "";
    if (tz && *tz)
        snprintf(zone, sizeof zone, "%s", tz);
    /* "CRON_TZ=Zone rest" or "TZ=Zone rest" (robfig's prefix). */
    const char *pre = NULL;
    if (strncmp(expr, "CRON_TZ=", 8) == 0)
        pre = expr + 8;
    else if (strncmp(expr, "TZ=", 3) == 0)
        pre = expr + 3;
    if (pre) {
        size_t n = strcspn(pre, " \t");
        if (n == 0 || n >= sizeof zone) {
            snprintf(err, errlen, "bad time zone prefix");
            return -1;
        }
        memcpy(zone, pre, n);
        zone[n] = 0;
        expr = pre + n;
        while (isspace((unsigned char)*expr))
            expr++;
    }
    if (zone[0] && !ev_tz_valid(zone)) {
        snprintf(err, errlen, "unknown time zone \"%s\"", zone);
        return -1;
    }
    snprintf(c->tz, sizeof c->tz, "%s", zone);

    static const struct { const char *name, *expand; } macros[] = {
        {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
        {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
        {"@hourly", "0 0 * * * *"},
    };
    char buf[256];
    if (expr[0] == '@') {
        if (strncmp(expr, "@every", 6) == 0 && isspace((unsigned char)expr[6])) {
            const char *d = expr + 6;
            while (isspace((unsigned char)*d))
                d++;
            char dur[64];
            snprintf(dur, sizeof dur, "%s", d);
            size_t dl = strlen(dur);
            while (dl && isspace((unsigned char)dur[dl - 1]))
                dur[--dl] = 0;
            int64_t ms = ev_go_duration_ms(dur);
            if (ms < 0) {
                snprintf(err, errlen, "@every: bad duration \"%s\" (like 10s, 1m30s, 500ms)", dur);
                return -1;
            }
            c->every_ms = ms;
            return 0;
        }
        size_t n = strcspn(expr, " \t");
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0 &&
                expr[n + strspn(expr + n, " \t")] == 0) {
                snprintf(buf, sizeof buf, "%s", macros[i].expand);
                goto fields;
            }
        snprintf(err, errlen, "unknown macro \"%.*s\"", (int)n, expr);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", expr);
fields:;
    char *f[7];
    int nf = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (nf == 7) {
            nf++;
            break;
        }
        f[nf++] = tok;
    }
    if (nf != 5 && nf != 6) {
        snprintf(err, errlen, "want 5 fields (minute hour day-of-month month day-of-week) or 6 "
                              "(seconds first), got %d",
                 nf);
        return -1;
    }
    int i = 0;
    uint64_t b;
    bool star;
    if (nf == 6) {
        if (parse_field(f[i++], &F_SEC, &c->sec, &star, err, errlen))
            return -1;
    } else {
        c->sec = 1; /* second 0 */
    }
    if (parse_field(f[i++], &F_MIN, &c->min, &star, err, errlen))
        return -1;
    if (parse_field(f[i++], &F_HOUR, &b, &c->hour_star, err, errlen))
        return -1;
    c->hour = (uint32_t)b;
    if (parse_field(f[i++], &F_DOM, &b, &c->dom_star, err, errlen))
        return -1;
    c->dom = (uint32_t)b;
    if (parse_field(f[i++], &F_MON, &b, &star, err, errlen))
        return -1;
    c->mon = (uint16_t)b;
    if (parse_field(f[i++], &F_DOW, &b, &c->dow_star, err, errlen))
        return -1;
    c->dow = (uint8_t)b;
    return 0;
}

/* ---- next fire ---- */

static bool day_matches(const ev_cron_t *c, const struct tm *tm)
{
    bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

static bool all_match(const ev_cron_t *c, const struct tm *tm)
{
    return (c->mon >> (tm->tm_mon + 1) & 1) && day_matches(c, tm) && (c->hour >> tm->tm_hour & 1) &&
           (c->min >> tm->tm_min & 1) && (c->sec >> tm->tm_sec & 1);
}

/* True when t's wall time already occurred earlier (a fall-back repeat). */
static bool wall_repeats(time_t t, const struct tm *tm)
{
    static const int shifts[] = {3600, 1800, 7200};
    for (size_t i = 0; i < 3; i++) {
        struct tm e;
        time_t te = t - shifts[i];
        localtime_r(&te, &e);
        if (e.tm_gmtoff - tm->tm_gmtoff == shifts[i])
            return true;
    }
    return false;
}

/* A step from t to t2 crossed a spring-forward gap: does a wall time the
 * schedule matches lie in it? */
static bool gap_has_match(const ev_cron_t *c, time_t t, time_t t2)
{
    struct tm a, b;
    localtime_r(&t, &a);
    localtime_r(&t2, &b);
    long gap = b.tm_gmtoff - a.tm_gmtoff;
    if (gap <= 0 || gap > 4 * 3600)
        return false;
    time_t wall2 = t2 + b.tm_gmtoff;
    for (time_t w = wall2 - gap; w < wall2; w++) {
        struct tm g;
        gmtime_r(&w, &g);
        if (all_match(c, &g))
            return true;
    }
    return false;
}

static int64_t next_locked(const ev_cron_t *c, time_t t)
{
    time_t limit = t + (time_t)5 * 366 * 86400;
    while (t < limit) {
        struct tm tm;
        localtime_r(&t, &tm);
        time_t t2;
        if (!(c->mon >> (tm.tm_mon + 1) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            tm.tm_isdst = -1;
            t2 = mktime(&tm);
        } else if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            tm.tm_isdst = -1;
            t2 = mktime(&tm);
        } else if (!(c->hour >> tm.tm_hour & 1)) {
            t2 = t - tm.tm_min * 60 - tm.tm_sec + 3600;
        } else if (!(c->min >> tm.tm_min & 1)) {
            t2 = t - tm.tm_sec + 60;
        } else if (!(c->sec >> tm.tm_sec & 1)) {
            t2 = t + 1;
        } else {
            if (!c->hour_star && wall_repeats(t, &tm)) {
                t++;
                continue;
            }
            return (int64_t)t * 1000;
        }
        if (t2 <= t)
            t2 = t + 1;
        if (!c->hour_star && gap_has_match(c, t, t2))
            return (int64_t)t2 * 1000;
        t = t2;
    }
    return -1;
}

int64_t ev_cron_next(const ev_cron_t *c, int64_t after_ms, int64_t anchor_ms)
{
    if (c->every_ms > 0) {
        if (anchor_ms > after_ms)
            return anchor_ms;
        int64_t k = (after_ms - anchor_ms) / c->every_ms + 1;
        return anchor_ms + k * c->every_ms;
    }
    time_t t = (time_t)(after_ms >= 0 ? after_ms / 1000 : (after_ms - 999) / 1000) + 1;
    pthread_mutex_lock(&tz_lock);
    /* Other threads may read the environment (libcurl looks up proxy
     * variables), so TZ is only ever replaced in place, never added or
     * removed after the first time: adding or removing a variable can move
     * the environ array under a concurrent getenv, replacing one cannot.
     * An unset TZ becomes ":/etc/localtime", which means the same. */
    const char *old = getenv("TZ");
    char *saved = strdup(old ? old : ":/etc/localtime");
    setenv("TZ", c->tz[0] ? c->tz : "UTC", 1);
    tzset();
    int64_t r = next_locked(c, t);
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    }
    tzset();
    pthread_mutex_unlock(&tz_lock);
    return r;
}

/* eventing.h: a schedule's next fire time for other subsystems (KEDA's
 * cron trigger, src/keda), without the ev_cron_t type. */
int64_t ev_cron_next_fire(const char *expr, const char *tz, int64_t after_ms, char *err,
                          size_t errlen)
{
    ev_cron_t c;
    if (ev_cron_parse(expr, tz, &c, err, errlen) != 0) return -2;
    int64_t next = ev_cron_next(&c, after_ms, after_ms);
    if (next < 0) snprintf(err, errlen, "\"%s\" never fires", expr);
    return next;
}
