/*
 * buf.h — the one growable byte buffer. Prefix: cm_buf_.
 *
 * A cm_buf_t starts zeroed ({0}) and grows by doubling. After every cm_buf_
 * call that succeeded, data[len] is a NUL byte (not counted in len), so a
 * buffer of text can be handed on as a C string. A failed allocation
 * returns -1 and also sets the sticky `oom` flag, so a caller that appends
 * many pieces may check once at the end instead of after each one; once
 * oom is set, later appends do nothing and fail too.
 *
 * Ownership: the buffer owns data; cm_buf_free releases it, cm_buf_take
 * hands it to the caller (who frees it with free()).
 */
#ifndef WASMFN_COMMON_BUF_H
#define WASMFN_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cm_buf {
    char *data; /* NUL-terminated when non-NULL */
    size_t len, cap;
    bool oom;   /* an allocation failed: the content is incomplete */
} cm_buf_t;

/* Makes room for `extra` more bytes plus the NUL: afterwards
 * cap - len > extra. Returns 0, or -1 (oom set) when out of memory. */
int cm_buf_reserve(cm_buf_t *b, size_t extra);
/* As cm_buf_reserve, for a buffer with a hard bound: the capacity never
 * grows past limit + 1 bytes (the content and its NUL), so doubling does
 * not allocate up to twice the bound. -1 when len + extra > limit (oom is
 * not set: nothing failed but the caller's bound) or out of memory. */
int cm_buf_reserve_upto(cm_buf_t *b, size_t extra, size_t limit);
/* Appends n bytes (p may be NULL when n is 0, which still allocates, so
 * data is a valid empty string afterwards). Returns 0 or -1. */
int cm_buf_append(cm_buf_t *b, const void *p, size_t n);
/* Appends a C string. */
int cm_buf_str(cm_buf_t *b, const char *s);
/* Appends printf-formatted text. */
int cm_buf_printf(cm_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the data and zeroes the buffer (it may be reused). */
void cm_buf_free(cm_buf_t *b);
/* Returns the data (the caller frees it) and zeroes the buffer; NULL if
 * nothing was ever appended or an allocation failed (then it is freed). */
char *cm_buf_take(cm_buf_t *b);

#endif
