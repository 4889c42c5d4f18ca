/*
 * scaled.c — the scaled_objects table (scaled.h). Made at every open with
 * IF NOT EXISTS, so it needed no schema version; one row per ScaledObject
 * holding the document as applied (src/keda parses it again at start, so
 * a newer wasmfn that understands more of it sees everything the user
 * wrote).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "store/scaled.h"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS scaled_objects ("
    "  name TEXT PRIMARY KEY,"
    "  target TEXT NOT NULL,"
    "  doc TEXT NOT NULL,"
    "  created INTEGER NOT NULL"
    ");";

static int db_fail(st_store_t *s, const char *what, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s/wasmfn.db: %s: %s", s->dir, what, sqlite3_errmsg(s->db));
    return ST_ERR;
}

int st_scaled_schema(st_store_t *s, char *err, size_t errlen)
{
    return st_sqlite_exec(s->db, "registry database", SCHEMA, err, errlen) == 0 ? ST_OK : ST_ERR;
}

int st_scaledobject_put(st_store_t *s, const char *name, const char *target, const char *doc,
                        int64_t now, bool *created, bool *changed, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT doc, target FROM scaled_objects WHERE name = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s, "reading scaled objects", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    bool exists = rc == SQLITE_ROW;
    bool same = exists && strcmp((const char *)sqlite3_column_text(st, 0), doc) == 0 &&
                strcmp((const char *)sqlite3_column_text(st, 1), target) == 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(s, "reading scaled objects", err, errlen);
    if (created) *created = !exists;
    if (changed) *changed = !same;
    if (same) return ST_OK;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO scaled_objects (name, target, doc, created)"
                           " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE"
                           " SET target = excluded.target, doc = excluded.doc",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "saving scaled object", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, doc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "saving scaled object", err, errlen);
    return ST_OK;
}

int st_scaledobject_delete(st_store_t *s, const char *name, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM scaled_objects WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, "deleting scaled object", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "deleting scaled object", err, errlen);
    if (sqlite3_changes(s->db) == 0) {
        st_seterr(err, errlen, "scaledobject %s not found", name);
        return ST_NOT_FOUND;
    }
    return ST_OK;
}

int st_scaledobject_each(st_store_t *s,
                         void (*fn)(void *ud, const char *name, const char *target,
                                    const char *doc),
                         void *ud, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT name, target, doc FROM scaled_objects ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "reading scaled objects", err, errlen);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "reading scaled objects", err, errlen);
    return ST_OK;
}
