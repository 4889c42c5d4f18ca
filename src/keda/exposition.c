/*
 * exposition.c — a value in Prometheus's text exposition format, for the
 * metrics-api trigger's `format: prometheus` (an application's own
 * /metrics, read without a Prometheus server). valueLocation is a series
 * selector: a metric name with optional label matchers,
 * `http_requests{method="get",code="200"}`. The value is that of the first
 * sample line with the selector's name and every label it names at that
 * value (the line may have more labels), as KEDA compares them. Comment
 * and malformed lines are skipped; a value that is NaN or infinite is an
 * error, not a number to scale on.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keda/internal.h"

#define MAX_LABELS 16u
#define MAX_TEXT 256u /* a name or a label value, as a selector may give it */

typedef struct label {
    char name[MAX_TEXT], value[MAX_TEXT];
    bool long_value; /* a sample's value longer than MAX_TEXT: matches no selector */
} label_t;

typedef struct series {
    char name[MAX_TEXT];
    label_t labels[MAX_LABELS];
    unsigned n;
} series_t;

static bool name_start(char ch, bool metric)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (metric && ch == ':');
}

static bool name_char(char ch, bool metric)
{
    return name_start(ch, metric) || (ch >= '0' && ch <= '9');
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    return p;
}

/* A name at p into out; NULL when there is none (or it is too long). */
static const char *read_name(const char *p, const char *end, bool metric, char *out)
{
    if (p >= end || !name_start(*p, metric)) return NULL;
    size_t n = 0;
    while (p < end && name_char(*p, metric)) {
        if (n + 1 >= MAX_TEXT) return NULL;
        out[n++] = *p++;
    }
    out[n] = '\0';
    return p;
}

/* A quoted label value at p (its escapes \\, \" and \n decoded); NULL when
 * it is not one. A value too long for out is skipped, with *too_long. */
static const char *read_value(const char *p, const char *end, char *out, bool *too_long)
{
    if (p >= end || *p != '"') return NULL;
    p++;
    size_t n = 0;
    *too_long = false;
    while (p < end && *p != '"') {
        char ch = *p++;
        if (ch == '\n') return NULL;
        if (ch == '\\') {
            if (p >= end) return NULL;
            ch = *p++;
            if (ch == 'n') ch = '\n';
            else if (ch != '\\' && ch != '"') return NULL;
        }
        if (n + 1 < MAX_TEXT) out[n++] = ch;
        else *too_long = true;
    }
    if (p >= end) return NULL;
    out[n] = '\0';
    return p + 1;
}

/* `name{l="v",...}` at p (spaces allowed between the tokens of a selector):
 * s filled and the position after it, or NULL with err. */
static const char *read_series(const char *p, const char *end, bool selector, series_t *s,
                               char *err, size_t errlen)
{
    s->n = 0;
    if (selector) p = skip_ws(p, end);
    if (!(p = read_name(p, end, true, s->name))) {
        snprintf(err, errlen, "no metric name");
        return NULL;
    }
    if (selector) p = skip_ws(p, end);
    if (p >= end || *p != '{') return p;
    p++;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}') return p + 1;
        if (s->n == MAX_LABELS) {
            snprintf(err, errlen, "more than %u labels", MAX_LABELS);
            return NULL;
        }
        label_t *l = &s->labels[s->n];
        if (!(p = read_name(p, end, false, l->name))) {
            snprintf(err, errlen, "a label name is missing or malformed");
            return NULL;
        }
        p = skip_ws(p, end);
        if (p < end && (*p == '!' || (*p == '=' && p + 1 < end && p[1] == '~'))) {
            snprintf(err, errlen, "label %s: only = matchers (a label equal to a value)", l->name);
            return NULL;
        }
        if (p >= end || *p != '=') {
            snprintf(err, errlen, "label %s: '=' expected", l->name);
            return NULL;
        }
        p = skip_ws(p + 1, end);
        if (!(p = read_value(p, end, l->value, &l->long_value))) {
            snprintf(err, errlen, "label %s: a quoted value expected", l->name);
            return NULL;
        }
        if (selector && l->long_value) {
            snprintf(err, errlen, "label %s: value longer than %u characters", l->name,
                     MAX_TEXT - 1);
            return NULL;
        }
        s->n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') p++;
        else if (p >= end || *p != '}') {
            snprintf(err, errlen, "',' or '}' expected after label %s", l->name);
            return NULL;
        }
    }
}

int kd_series_check(const char *selector, char *err, size_t errlen)
{
    series_t s;
    const char *end = selector + strlen(selector);
    const char *p = read_series(selector, end, true, &s, err, errlen);
    if (!p) return -1;
    if (skip_ws(p, end) != end) {
        snprintf(err, errlen, "unexpected text after the selector");
        return -1;
    }
    return 0;
}

/* Whether sample has every label of want at its value. */
static bool matches(const series_t *want, const series_t *sample)
{
    if (strcmp(want->name, sample->name) != 0) return false;
    for (unsigned i = 0; i < want->n; i++) {
        bool found = false;
        for (unsigned k = 0; k < sample->n && !found; k++)
            found = !sample->labels[k].long_value &&
                    strcmp(want->labels[i].name, sample->labels[k].name) == 0 &&
                    strcmp(want->labels[i].value, sample->labels[k].value) == 0;
        if (!found) return false;
    }
    return true;
}

int kd_exposition_value(const char *body, size_t len, const char *selector, double *value,
                        char *err, size_t errlen)
{
    series_t want, sample;
    char e[160];
    if (!read_series(selector, selector + strlen(selector), true, &want, e, sizeof e)) {
        snprintf(err, errlen, "valueLocation %s: %s", selector, e);
        return -1;
    }
    const char *end = body + len;
    for (const char *line = body; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *eol = nl ? nl : end;
        const char *p = skip_ws(line, eol);
        line = nl ? nl + 1 : end;
        if (p == eol || *p == '#') continue;
        if (!(p = read_series(p, eol, false, &sample, e, sizeof e)) || !matches(&want, &sample))
            continue; /* another series, or a line that is not a sample */
        const char *v = skip_ws(p, eol);
        if (v == p || v == eol) continue; /* "name value": the space is required */
        char num[64];
        size_t n = 0;
        while (v + n < eol && v[n] != ' ' && v[n] != '\t' && v[n] != '\r') n++;
        if (n >= sizeof num) continue;
        memcpy(num, v, n);
        num[n] = '\0';
        char *stop;
        double d = strtod(num, &stop);
        if (!n || *stop) continue;
        if (!isfinite(d)) {
            snprintf(err, errlen, "valueLocation %s is %s, not a number to scale on", selector,
                     num);
            return -1;
        }
        *value = d;
        return 0;
    }
    snprintf(err, errlen, "valueLocation %s: no such sample in the answer", selector);
    return -1;
}
