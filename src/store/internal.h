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


#endif
