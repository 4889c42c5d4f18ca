/*
 * duration.c — durations as manifests spell them and the retry backoff.
 *
 * Knative's delivery spec writes durations in ISO 8601 ("PT0.5S"); cron's
 * "@every" takes Go's form ("1m30s", parsed by common/duration.c). Both become
 * integer milliseconds, with
 * every multiplication overflow-checked since the text is user input.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "eventing/internal.h"

#define MS_MAX ((int64_t)1 << 52) /* ~142,000 years: far beyond any sane value */

/* Reads a decimal number with an optional fraction ("12", "0.5", "1,5");
 * returns the end or NULL. */
static const char *read_number(const char *p, double *out)
{
    const char *start = p;
    double v = 0;
    while (isdigit((unsigned char)*p))
        v = v * 10 + (*p++ - '0');
    if (p == start)
        return NULL; /* a digit must come before the decimal sign */
    if (*p == '.' || *p == ',') {
        p++;
        double scale = 0.1;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p)) {
            v += (*p++ - '0') * scale;
            scale /= 10;
        }
    }
    if (p == start)
        return NULL;
    *out = v;
    return p;
}

int64_t ev_iso_duration_ms(const char *s)
{
    if (!s || *s != 'P')
        return -1;
    const char *p = s + 1;
    bool in_time = false, any = false;
    double total = 0;
    /* Units must come in order; rank rejects "PT1S1M". */
    int last_rank = -1;
    while (*p) {
        if (*p == 'T') {
            if (in_time)
                return -1;
            in_time = true;
            p++;
            if (!*p)
                return -1;
            continue;
        }
        double v;
        const char *q = read_number(p, &v);
        if (!q)
            return -1;
        double unit;
        int rank;
        switch (*q) {
        case 'Y': if (in_time) return -1; unit = 365.0 * 86400e3; rank = 0; break;
        case 'M': unit = in_time ? 60e3 : 30.0 * 86400e3; rank = in_time ? 5 : 1; break;
        case 'W': if (in_time) return -1; unit = 7.0 * 86400e3; rank = 2; break;
        case 'D': if (in_time) return -1; unit = 86400e3; rank = 3; break;
        case 'H': if (!in_time) return -1; unit = 3600e3; rank = 4; break;
        case 'S': if (!in_time) return -1; unit = 1e3; rank = 6; break;
        default: return -1;
        }
        if (rank <= last_rank)
            return -1;
        last_rank = rank;
        total += v * unit;
        if (total > (double)MS_MAX)
            return -1;
        any = true;
        p = q + 1;
    }
    if (!any)
        return -1;
    return (int64_t)llround(total);
}

int64_t ev_go_duration_ms(const char *s)
{
    int64_t ns;
    if (cm_duration_parse(s, 0, &ns, NULL, 0) != 0)
        return -1;
    int64_t ms = ns / 1000000 + (ns % 1000000 >= 500000); /* to the nearest ms */
    return ms > 0 ? ms : -1;
}

int64_t ev_backoff_ms(ev_backoff_t policy, int64_t delay_ms, int retry)
{
    const int64_t cap = 3600 * 1000;
    if (delay_ms <= 0 || retry <= 0)
        return 0;
    if (delay_ms >= cap)
        return cap;
    if (policy == EV_BACKOFF_LINEAR) {
        if (retry > cap / delay_ms)
            return cap;
        return delay_ms * retry;
    }
    if (retry >= 32)
        return cap;
    int64_t m = (int64_t)1 << retry;
    if (m > cap / delay_ms)
        return cap;
    return delay_ms * m;
}
