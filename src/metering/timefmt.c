/*
 * timefmt.c — durations ("1h30m", "100us") and points in time (RFC 3339,
 * or a duration meaning "that long ago") as the usage API, the CLI and
 * serve's billing options write them. Shared so they all accept the same
 * spellings.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "metering/internal.h"

typedef struct unit {
    const char *name;
    int64_t ns;
} unit_t;

/* Longest names first where one is a prefix of another ("ms" before "m"). */
static const unit_t UNITS[] = {
    {"ns", 1LL},
    {"us", 1000LL},
    {"\xc2\xb5s", 1000LL}, /* µs, MICRO SIGN */
    {"\xce\xbcs", 1000LL}, /* μs, GREEK SMALL LETTER MU */
    {"ms", 1000000LL},
    {"s", 1000000000LL},
    {"m", 60000000000LL},
    {"h", 3600000000000LL},
    {"d", 86400000000000LL},
    {"w", 604800000000000LL},
};

int mtr_parse_duration(const char *s, int64_t *out_ns, char *err, size_t errlen)
{
    if (!s || !*s) {
        mtr_set_err(err, errlen, "empty duration (write e.g. 1h, 30m, 100ms)");
        return -1;
    }
    if (strcmp(s, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    const char *p = s;
    int64_t total = 0;
    while (*p) {
        /* digits [. digits] */
        if (!isdigit((unsigned char)*p) && *p != '.') goto bad;
        int64_t whole = 0;
        bool any = false;
        while (isdigit((unsigned char)*p)) {
            if (whole > (INT64_MAX - 9) / 10) goto too_big;
            whole = whole * 10 + (*p++ - '0');
            any = true;
        }
        int64_t frac = 0, frac_div = 1;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                if (frac_div < 1000000000000000000LL) {
                    frac = frac * 10 + (*p - '0');
                    frac_div *= 10;
                }
                p++;
                any = true;
            }
        }
        if (!any) goto bad;
        const unit_t *u = NULL;
        for (size_t i = 0; i < sizeof UNITS / sizeof UNITS[0]; i++) {
            size_t n = strlen(UNITS[i].name);
            if (strncmp(p, UNITS[i].name, n) == 0 &&
                (!u || n > strlen(u->name)))
                u = &UNITS[i];
        }
        if (!u) {
            mtr_set_err(err, errlen,
                    "duration '%s': missing or unknown unit at '%s' (use ns, us, ms, s, m, h, d, w)",
                    s, p);
            return -1;
        }
        p += strlen(u->name);
        int64_t v;
        if (__builtin_mul_overflow(whole, u->ns, &v)) goto too_big;
        /* frac/frac_div of a unit; frac_div <= 10^18, u->ns <= 6.048e14:
         * compute in long double to avoid overflow, rounding to the ns. */
        int64_t fv = (int64_t)((long double)frac * (long double)u->ns / (long double)frac_div + 0.5L);
        if (__builtin_add_overflow(v, fv, &v) || __builtin_add_overflow(total, v, &total))
            goto too_big;
    }
    *out_ns = total;
    return 0;
bad:
    mtr_set_err(err, errlen, "duration '%s': expected a number with a unit at '%s' (e.g. 1h, 30m, 100ms)",
            s, p);
    return -1;
too_big:
    mtr_set_err(err, errlen, "duration '%s' is too long", s);
    return -1;
}

/* Reads exactly n digits. */
static bool digits(const char **pp, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*pp)[i])) return false;
        v = v * 10 + ((*pp)[i] - '0');
    }
    *pp += n;
    *out = v;
    return true;
}

static int parse_rfc3339(const char *s, int64_t *out_ns, char *err, size_t errlen)
{
    const char *p = s;
    int Y, M, D, h = 0, mi = 0, sec = 0;
    int64_t frac_ns = 0, offset_s = 0;
    if (!digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' ||
        !digits(&p, 2, &D))
        goto bad;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ') goto bad;
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
            !digits(&p, 2, &sec))
            goto bad;
        if (*p == '.') {
            p++;
            int64_t scale = 100000000;
            if (!isdigit((unsigned char)*p)) goto bad;
            while (isdigit((unsigned char)*p)) {
                frac_ns += (*p - '0') * scale;
                scale /= 10;
                p++;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
                goto bad;
            offset_s = sign * (oh * 3600 + om * 60);
        } else {
            goto bad;
        }
        if (*p) goto bad;
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60) goto bad;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                    .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    /* timegm normalises 31 February into March: refuse that. */
    if (tm.tm_mday != D || tm.tm_mon != M - 1) goto bad;
    *out_ns = ((int64_t)t - offset_s) * 1000000000LL + frac_ns;
    return 0;
bad:
    mtr_set_err(err, errlen,
            "time '%s' is neither an RFC 3339 timestamp (2024-05-01T12:00:00Z) nor a duration "
            "ago (1h)", s);
    return -1;
}

int mtr_parse_time(const char *s, int64_t now_ns, int64_t *out_ns, char *err, size_t errlen)
{
    if (!s || !*s) {
        mtr_set_err(err, errlen, "empty time (write now, 1h for an hour ago, or 2024-05-01T12:00:00Z)");
        return -1;
    }
    if (strcmp(s, "now") == 0) {
        *out_ns = now_ns;
        return 0;
    }
    /* A timestamp starts with four digits and a dash. */
    if (strlen(s) >= 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
        isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) && s[4] == '-')
        return parse_rfc3339(s, out_ns, err, errlen);
    int64_t d;
    char derr[200];
    if (mtr_parse_duration(s, &d, derr, sizeof derr) != 0) {
        mtr_set_err(err, errlen,
                "time '%s' is neither an RFC 3339 timestamp (2024-05-01T12:00:00Z) nor a "
                "duration ago (1h)", s);
        return -1;
    }
    *out_ns = now_ns - d;
    return 0;
}

void mtr_format_time(int64_t t_ns, char *out, size_t outlen)
{
    int64_t sec = t_ns / 1000000000LL, ns = t_ns % 1000000000LL;
    if (ns < 0) {
        ns += 1000000000LL;
        sec--;
    }
    time_t tt = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outlen, "?");
        return;
    }
    char base[40];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ns == 0) {
        snprintf(out, outlen, "%sZ", base);
        return;
    }
    char frac[16];
    snprintf(frac, sizeof frac, "%09lld", (long long)ns);
    for (int i = 8; i > 0 && frac[i] == '0'; i--) frac[i] = 0;
    snprintf(out, outlen, "%s.%sZ", base, frac);
}
