/*
 * docs.h — one row of a table of named documents (scaled.h,
 * triggerauths.h), as their st_*_each functions hand it over. Prefix:
 * st_doc_. The tables themselves are written once, in doctable.c.
 */
#ifndef WASMFN_STORE_DOCS_H
#define WASMFN_STORE_DOCS_H

#include <stdint.h>

typedef struct st_doc {
    const char *name;
    const char *target; /* ScaledObjects: the Service it scales; else NULL */
    int64_t created;    /* Unix seconds of the first put */
    const char *doc;    /* the document as applied (JSON text) */
} st_doc_t;

/* Called once per row, by name; the strings are valid during the call. */
typedef void (*st_doc_fn)(void *ud, const st_doc_t *d);

#endif
