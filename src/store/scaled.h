/*
 * scaled.h — KEDA ScaledObjects kept across restarts, in DATA/wasmfn.db
 * beside the functions they scale: the applied document (as JSON) by name,
 * with the Service it targets. Prefix: st_scaledobject_. The store owns the
 * table; src/keda parses the documents.
 *
 * Loop thread only, like the rest of the registry (store.h). Each call is
 * its own transaction (or joins the caller's st_begin), durable when it
 * returns ST_OK.
 */
#ifndef WASMFN_STORE_SCALED_H
#define WASMFN_STORE_SCALED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/docs.h"
#include "store/store.h"

/* Saves (or replaces) ScaledObject name. *created (may be NULL) says
 * whether it is new; *changed whether the document differs from the one
 * stored (true when new). ST_OK or ST_ERR. */
int st_scaledobject_put(st_store_t *s, const char *name, const char *target, const char *doc,
                        int64_t now, bool *created, bool *changed, char *err, size_t errlen);
/* ST_OK or ST_NOT_FOUND (or ST_ERR). */
int st_scaledobject_delete(st_store_t *s, const char *name, char *err, size_t errlen);
/* Calls fn for every ScaledObject, by name (d->target set; strings valid
 * during the call). ST_OK or ST_ERR. */
int st_scaledobject_each(st_store_t *s, st_doc_fn fn, void *ud, char *err, size_t errlen);
/* The count ScaledObject name holds while paused "where it is"
 * (autoscaling.keda.sh/paused: "true"): put saves it (replicas -1 forgets
 * it; deleting the ScaledObject does too), get reads it (ST_OK,
 * ST_NOT_FOUND or ST_ERR). */
int st_scaledobject_paused_put(st_store_t *s, const char *name, int32_t replicas, char *err,
                               size_t errlen);
int st_scaledobject_paused_get(st_store_t *s, const char *name, int32_t *replicas, char *err,
                               size_t errlen);

#endif
