/*
 * strlist.c — appending to a list of owned strings (strlist.h).
 */
#define _GNU_SOURCE
#include "common/strlist.h"

#include <stdio.h>
#include <stdlib.h>

int cm_strlist_addv(char ***items, uint32_t *n, const char *fmt, va_list ap)
{
    char *s;
    if (*n == UINT32_MAX || vasprintf(&s, fmt, ap) < 0) return -1;
    char **grown = realloc(*items, ((size_t)*n + 1) * sizeof *grown);
    if (!grown) {
        free(s);
        return -1;
    }
    *items = grown;
    grown[(*n)++] = s;
    return 0;
}
