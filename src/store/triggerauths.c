/*
 * triggerauths.c — the trigger_auths table (triggerauths.h). Made at every
 * open with IF NOT EXISTS, as scaled_objects is: one row per
 * TriggerAuthentication with the document as applied.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "store/triggerauths.h"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS trigger_auths ("
    "  name TEXT PRIMARY KEY,"
    "  doc TEXT NOT NULL,"
    "  created INTEGER NOT NULL"
    ");";

static int db_fail(st_store_t *s, const char *what, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s/wasmfn.db: %s: %s", s->dir, what, sqlite3_errmsg(s->db));
    return ST_ERR;
}

int st_triggerauth_schema(st_store_t *s, char *err, size_t errlen)
{
    return st_sqlite_exec(s->db, "registry database", SCHEMA, err, errlen) == 0 ? ST_OK : ST_ERR;
}

int st_triggerauth_put(st_store_t *s, const char *name, const char *doc, int64_t now,
                       bool *created, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM trigger_auths WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, "reading trigger authentications", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(s, "reading trigger authentications", err, errlen);
    if (created) *created = rc == SQLITE_DONE;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO trigger_auths (name, doc, created) VALUES (?, ?, ?)"
                           " ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "saving trigger authentication", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, doc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "saving trigger authentication", err, errlen);
    return ST_OK;
}

int st_triggerauth_get(st_store_t *s, const char *name, char **doc, char *err, size_t errlen)
{
    *doc = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT doc FROM trigger_auths WHERE name = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, "reading trigger authentications", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *doc = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        st_seterr(err, errlen, "triggerauthentication %s not found", name);
        return ST_NOT_FOUND;
    }
    if (rc != SQLITE_ROW) return db_fail(s, "reading trigger authentications", err, errlen);
    if (!*doc) {
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    return ST_OK;
}

int st_triggerauth_delete(st_store_t *s, const char *name, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM trigger_auths WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, "deleting trigger authentication", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "deleting trigger authentication", err, errlen);
    if (sqlite3_changes(s->db) == 0) {
        st_seterr(err, errlen, "triggerauthentication %s not found", name);
        return ST_NOT_FOUND;
    }
    return ST_OK;
}

int st_triggerauth_each(st_store_t *s,
                        void (*fn)(void *ud, const char *name, int64_t created, const char *doc),
                        void *ud, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT name, created, doc FROM trigger_auths ORDER BY name", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s, "reading trigger authentications", err, errlen);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "reading trigger authentications", err, errlen);
    return ST_OK;
}
