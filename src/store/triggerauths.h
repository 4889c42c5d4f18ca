/*
 * triggerauths.h — KEDA TriggerAuthentications and
 * ClusterTriggerAuthentications kept across restarts, in DATA/wasmfn.db:
 * the applied document (as JSON) by kind (cluster: false for the first,
 * true for the second; each kind has names of its own) and name. Prefix:
 * st_triggerauth_. The documents hold references to Secrets and
 * ConfigMaps, never a value (src/keda/triggerauth.c checks them), so they
 * are stored as they are; the values stay sealed in store/secrets.c.
 *
 * Loop thread only, like the rest of the registry (store.h). Each call is
 * its own transaction (or joins the caller's st_begin), durable when it
 * returns ST_OK.
 */
#ifndef WASMFN_STORE_TRIGGERAUTHS_H
#define WASMFN_STORE_TRIGGERAUTHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/docs.h"
#include "store/store.h"

/* Saves (or replaces) the object of that kind and name. *created (may be
 * NULL) says whether it is new. ST_OK or ST_ERR. */
int st_triggerauth_put(st_store_t *s, bool cluster, const char *name, const char *doc,
                       int64_t now, bool *created, char *err, size_t errlen);
/* Its document in *doc (malloc'd): ST_OK, ST_NOT_FOUND or ST_ERR. */
int st_triggerauth_get(st_store_t *s, bool cluster, const char *name, char **doc, char *err,
                       size_t errlen);
/* ST_OK or ST_NOT_FOUND (or ST_ERR). */
int st_triggerauth_delete(st_store_t *s, bool cluster, const char *name, char *err,
                          size_t errlen);
/* Calls fn for every object of the kind, by name (d->target NULL; strings
 * valid during the call). ST_OK or ST_ERR. */
int st_triggerauth_each(st_store_t *s, bool cluster, st_doc_fn fn, void *ud, char *err,
                        size_t errlen);

#endif
