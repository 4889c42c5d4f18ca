/*
 * strlist.h — a growable list of owned strings (char **items, uint32_t
 * n), as manifests and KEDA objects collect their warnings. Prefix:
 * cm_strlist_.
 */
#ifndef WASMFN_COMMON_STRLIST_H
#define WASMFN_COMMON_STRLIST_H

#include <stdarg.h>
#include <stdint.h>

/* Formats fmt with ap and appends the new string (malloc'd) to *items,
 * which grows by one (realloc). Returns 0, or -1 when memory ran out: the
 * list is then as it was. The caller frees every item and the array. */
int cm_strlist_addv(char ***items, uint32_t *n, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
