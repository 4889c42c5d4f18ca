/*
 * internal.h — the store's private structure, shared by store.c (the data
 * directory, token and blobs) and registry.c (the SQLite database).
 */
#ifndef WASMFN_STORE_INTERNAL_H
#define WASMFN_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/db.h"
#include "store/docs.h"

#include "store/store.h"

struct st_store {
    char *dir;         /* the data directory, as given */
    char *blob_dir;    /* DIR/blobs/sha256 */
    char *artifact_dir; /* DIR/artifacts */
    char token[65];    /* 64 hex digits */
    int lock_fd;       /* DIR/wasmfn.lock, flock'd while open */
    sqlite3 *db;       /* used from one thread only */
};

/* registry.c: opens DIR/wasmfn.db in WAL mode and creates the schema. */
int st_db_open(st_store_t *s, char *err, size_t errlen);
void st_db_close(st_store_t *s);
/* doctable.c: a table of named documents (name, doc, created, and one
 * optional text column), the one implementation behind scaled.c and
 * triggerauths.c. Loop thread only, as the registry. */
typedef struct st_doctable {
    const char *table; /* "scaled_objects" (a constant, formatted into SQL) */
    const char *extra; /* a text column kept beside the document ("target"), or NULL */
    const char *kind;  /* "scaledobject": "scaledobject NAME not found" */
    const char *one;   /* "scaled object": "saving scaled object" */
    const char *many;  /* "scaled objects": "reading scaled objects" */
} st_doctable_t;

/* Creates the table (IF NOT EXISTS). ST_OK or ST_ERR. */
int st_doctable_schema(st_store_t *s, const st_doctable_t *t, char *err, size_t errlen);
/* Saves (or replaces) name with doc and extra (ignored without the
 * column); a replaced row keeps its created time. *created and *changed
 * (either may be NULL): new; different from the stored row (true when
 * new). ST_OK or ST_ERR. */
int st_doctable_put(st_store_t *s, const st_doctable_t *t, const char *name, const char *extra,
                    const char *doc, int64_t now, bool *created, bool *changed, char *err,
                    size_t errlen);
/* name's document in *doc (malloc'd): ST_OK, ST_NOT_FOUND or ST_ERR. */
int st_doctable_get(st_store_t *s, const st_doctable_t *t, const char *name, char **doc,
                    char *err, size_t errlen);
/* ST_OK, ST_NOT_FOUND or ST_ERR. */
int st_doctable_delete(st_store_t *s, const st_doctable_t *t, const char *name, char *err,
                       size_t errlen);
/* Calls fn for every row, by name. ST_OK or ST_ERR. */
int st_doctable_each(st_store_t *s, const st_doctable_t *t, st_doc_fn fn, void *ud, char *err,
                     size_t errlen);
/* scaled.c, triggerauths.c: their tables. */
extern const st_doctable_t st_scaled_table, st_triggerauth_table, st_clustertriggerauth_table;
/* scaled.c: the scaled_objects table and, beside it, scaled_paused. */
int st_scaled_schema(st_store_t *s, char *err, size_t errlen);

/* allowed_hosts.c: revisions' outbound HTTP destinations (table
 * revision_allowed_hosts): made at open, read into r->spec, written for a
 * new revision (inside its savepoint). */
int st_allowed_hosts_init(st_store_t *s, char *err, size_t errlen);
int st_allowed_hosts_load(st_store_t *s, st_revision_t *r, char *err, size_t errlen);
int st_allowed_hosts_save(st_store_t *s, const char *revision, const st_spec_t *spec, char *err,
                          size_t errlen);
/* spec_host.c: the host-API parts of a revision's spec (kv stores, env
 * references), in tables of their own next to revision_env, created with
 * IF NOT EXISTS at every open (no schema version needed: an older
 * database simply gets them). */
int st_spec_host_schema(st_store_t *s, char *err, size_t errlen);
bool st_spec_host_equal(const st_spec_t *a, const st_spec_t *b);
int st_spec_host_copy(st_spec_t *dst, const st_spec_t *src); /* dst's fields zeroed first */
void st_spec_host_free(st_spec_t *s);
int st_spec_host_load(st_store_t *s, const char *revision, st_spec_t *spec, char *err,
                      size_t errlen);
int st_spec_host_add(st_store_t *s, const char *revision, const st_spec_t *spec, char *err,
                     size_t errlen);


#endif
