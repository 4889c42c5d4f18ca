/*
 * internal.h — the store's private structure, shared by store.c (the data
 * directory, token and blobs) and registry.c (the SQLite database).
 */
#ifndef WASMFN_STORE_INTERNAL_H
#define WASMFN_STORE_INTERNAL_H

#include "store/db.h"

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
/* scaled.c: creates the scaled_objects table (IF NOT EXISTS). */
int st_scaled_schema(st_store_t *s, char *err, size_t errlen);
/* triggerauths.c: creates the trigger_auths table (IF NOT EXISTS). */
int st_triggerauth_schema(st_store_t *s, char *err, size_t errlen);

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
