/*
 * doctable.c — a table of named documents, written once for every kind
 * the daemon keeps as "the document as applied, by name" (ScaledObjects in
 * scaled.c, TriggerAuthentications in triggerauths.c). Each table is made
 * at every open with IF NOT EXISTS (so it needs no schema version):
 *
 *   name TEXT PRIMARY KEY, [EXTRA TEXT NOT NULL,] doc TEXT NOT NULL,
 *   created INTEGER NOT NULL
 *
 * The descriptor (st_doctable_t, internal.h) names the table, the one
 * optional column beside the document, and the words of its messages.
 * Table and column names come only from those constant descriptors, never
 * from a request, so they are formatted into the SQL.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static int db_fail(st_store_t *s, const char *verb, const char *what, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s/wasmfn.db: %s %s: %s", s->dir, verb, what, sqlite3_errmsg(s->db));
    return ST_ERR;
}

/* The optional column in a SELECT list: its name, or NULL (read as a NULL
 * pointer by sqlite3_column_text). */
static const char *extra_or_null(const st_doctable_t *t)
{
    return t->extra ? t->extra : "NULL";
}

/* Prepares sql (already formatted: n is snprintf's result). NULL when it
 * did not fit or does not prepare. */
static sqlite3_stmt *prep(st_store_t *s, const char *sql, int n, size_t cap)
{
    sqlite3_stmt *st;
    if (n < 0 || (size_t)n >= cap || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

int st_doctable_schema(st_store_t *s, const st_doctable_t *t, char *err, size_t errlen)
{
    char sql[512], extra[96] = "";
    if (t->extra) snprintf(extra, sizeof extra, "  %s TEXT NOT NULL,", t->extra);
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS %s ("
             "  name TEXT PRIMARY KEY,%s"
             "  doc TEXT NOT NULL,"
             "  created INTEGER NOT NULL"
             ");",
             t->table, extra);
    return st_sqlite_exec(s->db, "registry database", sql, err, errlen) == 0 ? ST_OK : ST_ERR;
}

int st_doctable_put(st_store_t *s, const st_doctable_t *t, const char *name, const char *extra,
                    const char *doc, int64_t now, bool *created, bool *changed, char *err,
                    size_t errlen)
{
    char sql[512];
    int n = snprintf(sql, sizeof sql, "SELECT doc, %s FROM %s WHERE name = ?", extra_or_null(t),
                     t->table);
    sqlite3_stmt *st = prep(s, sql, n, sizeof sql);
    if (!st) return db_fail(s, "reading", t->many, err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    bool exists = rc == SQLITE_ROW;
    bool same = exists && strcmp((const char *)sqlite3_column_text(st, 0), doc) == 0 &&
                (!t->extra || strcmp((const char *)sqlite3_column_text(st, 1), extra) == 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(s, "reading", t->many, err, errlen);
    if (created) *created = !exists;
    if (changed) *changed = !same;
    if (same) return ST_OK;
    /* The row keeps its first created time when it is replaced. */
    if (t->extra)
        n = snprintf(sql, sizeof sql,
                     "INSERT INTO %s (name, doc, created, %s) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, %s = excluded.%s",
                     t->table, t->extra, t->extra, t->extra);
    else
        n = snprintf(sql, sizeof sql,
                     "INSERT INTO %s (name, doc, created) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                     t->table);
    st = prep(s, sql, n, sizeof sql);
    if (!st) return db_fail(s, "saving", t->one, err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, doc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if (t->extra) sqlite3_bind_text(st, 4, extra, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "saving", t->one, err, errlen);
    return ST_OK;
}

int st_doctable_get(st_store_t *s, const st_doctable_t *t, const char *name, char **doc,
                    char *err, size_t errlen)
{
    *doc = NULL;
    char sql[256];
    int n = snprintf(sql, sizeof sql, "SELECT doc FROM %s WHERE name = ?", t->table);
    sqlite3_stmt *st = prep(s, sql, n, sizeof sql);
    if (!st) return db_fail(s, "reading", t->many, err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *doc = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        st_seterr(err, errlen, "%s %s not found", t->kind, name);
        return ST_NOT_FOUND;
    }
    if (rc != SQLITE_ROW) return db_fail(s, "reading", t->many, err, errlen);
    if (!*doc) {
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    return ST_OK;
}

int st_doctable_delete(st_store_t *s, const st_doctable_t *t, const char *name, char *err,
                       size_t errlen)
{
    char sql[256];
    int n = snprintf(sql, sizeof sql, "DELETE FROM %s WHERE name = ?", t->table);
    sqlite3_stmt *st = prep(s, sql, n, sizeof sql);
    if (!st) return db_fail(s, "deleting", t->one, err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "deleting", t->one, err, errlen);
    if (sqlite3_changes(s->db) == 0) {
        st_seterr(err, errlen, "%s %s not found", t->kind, name);
        return ST_NOT_FOUND;
    }
    return ST_OK;
}

int st_doctable_each(st_store_t *s, const st_doctable_t *t, st_doc_fn fn, void *ud, char *err,
                     size_t errlen)
{
    char sql[256];
    int n = snprintf(sql, sizeof sql, "SELECT name, created, doc, %s FROM %s ORDER BY name",
                     extra_or_null(t), t->table);
    sqlite3_stmt *st = prep(s, sql, n, sizeof sql);
    if (!st) return db_fail(s, "reading", t->many, err, errlen);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        st_doc_t d = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .created = sqlite3_column_int64(st, 1),
            .doc = (const char *)sqlite3_column_text(st, 2),
            .target = (const char *)sqlite3_column_text(st, 3), /* NULL without the column */
        };
        fn(ud, &d);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "reading", t->many, err, errlen);
    return ST_OK;
}
