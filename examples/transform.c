/*
 * transform.c — a JSON-in, JSON-out function with no libraries: reads one
 * JSON object from the request body and answers with the same object, every
 * key upper-cased (at every depth), plus two computed fields at the top:
 * "_FIELDS" (how many members the object had) and "_SUM" (the sum of its
 * top-level numbers).
 *
 *   curl -d '{"a":1,"b":{"c":2.5},"d":[1,2]}' http://127.0.0.1:8080/fn/transform/
 *   {"A":1,"B":{"C":2.5},"D":[1,2],"_FIELDS":3,"_SUM":1}
 *
 * Bad JSON gets 400 with {"error":"at byte N: ..."}. The parser is a small
 * recursive descent that copies the input to the output as it goes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
    char *p;
    size_t len, cap;
} out_t;

typedef struct in {
    const char *s;
    size_t len, pos;
    const char *err;
} in_t;

static int put(out_t *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        while (cap < o->len + n + 1) cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) return -1;
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
    return 0;
}

static void skip_ws(in_t *in)
{
    while (in->pos < in->len && strchr(" \t\r\n", in->s[in->pos])) in->pos++;
}

static int fail(in_t *in, const char *why)
{
    if (!in->err) in->err = why;
    return -1;
}

static int value(in_t *in, out_t *o, int depth, double *num);

/* A string; upper-cased when it is a key. */
static int string(in_t *in, out_t *o, int upper)
{
    size_t start = in->pos++; /* the opening quote */
    while (in->pos < in->len && in->s[in->pos] != '"') {
        unsigned char c = (unsigned char)in->s[in->pos];
        if (c < 0x20) return fail(in, "control character in a string");
        if (c == '\\') {
            in->pos++;
            if (in->pos >= in->len || !strchr("\"\\/bfnrtu", in->s[in->pos]))
                return fail(in, "bad escape in a string");
        }
        in->pos++;
    }
    if (in->pos >= in->len) return fail(in, "unterminated string");
    in->pos++;
    size_t n = in->pos - start;
    if (!upper) return put(o, in->s + start, n);
    for (size_t i = 0; i < n; i++) {
        char c = in->s[start + i];
        /* Escapes keep their letter (\n must not become \N). */
        if (c == '\\') {
            if (put(o, in->s + start + i, 2)) return -1;
            i++;
            continue;
        }
        c = (char)toupper((unsigned char)c);
        if (put(o, &c, 1)) return -1;
    }
    return 0;
}

static int number(in_t *in, out_t *o, double *num)
{
    size_t start = in->pos;
    if (in->s[in->pos] == '-') in->pos++;
    size_t digits = 0;
    while (in->pos < in->len && isdigit((unsigned char)in->s[in->pos])) in->pos++, digits++;
    if (!digits) return fail(in, "bad number");
    if (in->pos < in->len && in->s[in->pos] == '.') {
        in->pos++;
        digits = 0;
        while (in->pos < in->len && isdigit((unsigned char)in->s[in->pos])) in->pos++, digits++;
        if (!digits) return fail(in, "bad number");
    }
    if (in->pos < in->len && (in->s[in->pos] == 'e' || in->s[in->pos] == 'E')) {
        in->pos++;
        if (in->pos < in->len && (in->s[in->pos] == '+' || in->s[in->pos] == '-')) in->pos++;
        digits = 0;
        while (in->pos < in->len && isdigit((unsigned char)in->s[in->pos])) in->pos++, digits++;
        if (!digits) return fail(in, "bad number");
    }
    char tmp[64];
    size_t n = in->pos - start;
    if (num && n < sizeof tmp) {
        memcpy(tmp, in->s + start, n);
        tmp[n] = 0;
        *num = strtod(tmp, NULL);
    }
    return put(o, in->s + start, n);
}

static int literal(in_t *in, out_t *o, const char *word)
{
    size_t n = strlen(word);
    if (in->len - in->pos < n || memcmp(in->s + in->pos, word, n) != 0)
        return fail(in, "unexpected character");
    in->pos += n;
    return put(o, word, n);
}

/* Object members; `top` adds the computed fields before the '}'. */
static int object(in_t *in, out_t *o, int depth, int top)
{
    int fields = 0;
    double sum = 0;
    in->pos++;
    if (put(o, "{", 1)) return -1;
    skip_ws(in);
    if (in->pos < in->len && in->s[in->pos] == '}') {
        in->pos++;
    } else {
        for (;;) {
            skip_ws(in);
            if (in->pos >= in->len || in->s[in->pos] != '"') return fail(in, "expected a key");
            if (fields && put(o, ",", 1)) return -1;
            if (string(in, o, 1)) return -1;
            skip_ws(in);
            if (in->pos >= in->len || in->s[in->pos] != ':') return fail(in, "expected ':'");
            in->pos++;
            if (put(o, ":", 1)) return -1;
            double num = 0;
            int was_number;
            skip_ws(in);
            was_number = in->pos < in->len &&
                         (in->s[in->pos] == '-' || isdigit((unsigned char)in->s[in->pos]));
            if (value(in, o, depth + 1, &num)) return -1;
            if (was_number) sum += num;
            fields++;
            skip_ws(in);
            if (in->pos < in->len && in->s[in->pos] == ',') {
                in->pos++;
                continue;
            }
            if (in->pos < in->len && in->s[in->pos] == '}') {
                in->pos++;
                break;
            }
            return fail(in, "expected ',' or '}'");
        }
    }
    if (top) {
        char extra[96];
        int n = snprintf(extra, sizeof extra, "%s\"_FIELDS\":%d,\"_SUM\":%.17g", fields ? "," : "",
                         fields, sum);
        if (put(o, extra, (size_t)n)) return -1;
    }
    return put(o, "}", 1);
}

static int value(in_t *in, out_t *o, int depth, double *num)
{
    if (depth > 100) return fail(in, "nested too deeply");
    skip_ws(in);
    if (in->pos >= in->len) return fail(in, "unexpected end of input");
    char c = in->s[in->pos];
    if (c == '{') return object(in, o, depth, 0);
    if (c == '[') {
        in->pos++;
        if (put(o, "[", 1)) return -1;
        skip_ws(in);
        if (in->pos < in->len && in->s[in->pos] == ']') {
            in->pos++;
            return put(o, "]", 1);
        }
        for (int i = 0;; i++) {
            if (i && put(o, ",", 1)) return -1;
            if (value(in, o, depth + 1, NULL)) return -1;
            skip_ws(in);
            if (in->pos < in->len && in->s[in->pos] == ',') {
                in->pos++;
                continue;
            }
            if (in->pos < in->len && in->s[in->pos] == ']') {
                in->pos++;
                return put(o, "]", 1);
            }
            return fail(in, "expected ',' or ']'");
        }
    }
    if (c == '"') return string(in, o, 0);
    if (c == '-' || isdigit((unsigned char)c)) return number(in, o, num);
    if (c == 't') return literal(in, o, "true");
    if (c == 'f') return literal(in, o, "false");
    if (c == 'n') return literal(in, o, "null");
    return fail(in, "unexpected character");
}

int main(void)
{
    out_t body = {0};
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (put(&body, buf, r)) return 1;

    in_t in = {.s = body.p ? body.p : "", .len = body.len};
    out_t o = {0};
    skip_ws(&in);
    int rc;
    if (in.pos >= in.len)
        rc = fail(&in, "empty body: send a JSON object");
    else if (in.s[in.pos] != '{')
        rc = fail(&in, "expected a JSON object");
    else
        rc = object(&in, &o, 0, 1);
    if (rc == 0) {
        skip_ws(&in);
        if (in.pos != in.len) rc = fail(&in, "trailing data after the object");
    }
    if (rc != 0) {
        printf("Status: 400 Bad Request\nContent-Type: application/json\n\n");
        printf("{\"error\":\"at byte %zu: %s\"}\n", in.pos, in.err ? in.err : "out of memory");
        fprintf(stderr, "transform: rejected a body at byte %zu: %s\n", in.pos,
                in.err ? in.err : "out of memory");
        return 0;
    }
    printf("Content-Type: application/json\n\n%s\n", o.p);
    return 0;
}
