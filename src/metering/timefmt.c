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

#include "common/duration.h"
#include "metering/internal.h"

int mtr_parse_duration(const char *s, int64_t *out_ns, char *err, size_t errlen)
{
    return cm_duration_parse(s, CM_DURATION_DAYS, out_ns, err, errlen);
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
