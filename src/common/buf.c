/*
 * buf.c — the growable byte buffer (buf.h).
 *
 * Capacity doubles from 256 bytes, so appending n bytes one piece at a time
 * costs O(n) copies in all. Sizes are checked before they are added: a
 * length that would overflow size_t is an allocation failure, not a wrap.
 */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Grows to hold extra more bytes and the NUL, doubling from 256, but to
 * at most max_cap bytes (max_cap >= len + extra + 1, checked by callers). */
static int grow(cm_buf_t *b, size_t extra, size_t max_cap)
{
    if (b->oom) return -1;
    if (b->cap > b->len && extra < b->cap - b->len) return 0;
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->oom = true;
        return -1;
    }
    size_t want = b->len + extra + 1, cap = b->cap ? b->cap : 256;
    while (cap < want) cap *= 2;
    if (cap > max_cap) cap = max_cap;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int cm_buf_reserve(cm_buf_t *b, size_t extra) { return grow(b, extra, SIZE_MAX); }

int cm_buf_reserve_upto(cm_buf_t *b, size_t extra, size_t limit)
{
    if (b->len > limit || extra > limit - b->len || limit == SIZE_MAX) return -1;
    return grow(b, extra, limit + 1);
}

int cm_buf_append(cm_buf_t *b, const void *p, size_t n)
{
    if (cm_buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cm_buf_str(cm_buf_t *b, const char *s) { return cm_buf_append(b, s, strlen(s)); }

int cm_buf_printf(cm_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (int tries = 0; tries < 2; tries++) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (b->data && (size_t)n < room) {
            b->len += (size_t)n;
            return 0;
        }
        if (b->data) b->data[b->len] = '\0'; /* vsnprintf wrote past len */
        if (cm_buf_reserve(b, (size_t)n) != 0) return -1;
    }
    return -1;
}

void cm_buf_free(cm_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

char *cm_buf_take(cm_buf_t *b)
{
    char *d = b->oom ? NULL : b->data;
    if (b->oom) free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
    return d;
}
