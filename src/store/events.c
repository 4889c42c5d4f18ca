/*
 * events.c — eventing's tables (events.h). The schema is the one eventing
 * created when it opened DATA/eventing.db itself, so an existing database
 * opens with its objects; only the durability changes, to the daemon's one
 * policy (synchronous=FULL instead of NORMAL: an applied object is on disk
 * when the apply is answered).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "store/db.h"
#include "store/events.h"

struct st_events {
    sqlite3 *db;
};

#define WHAT "eventing database"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS objects(kind TEXT NOT NULL, name TEXT NOT NULL, "
    "doc TEXT NOT NULL, PRIMARY KEY(kind, name));"
    "CREATE TABLE IF NOT EXISTS ping_state(name TEXT PRIMARY KEY, "
    "last_fire_ms INTEGER NOT NULL);";

st_events_t *st_events_open(const char *data_dir, char *err, size_t errlen)
{
    st_events_t *e = calloc(1, sizeof *e);
    char *path = NULL;
    if (!e || asprintf(&path, "%s/eventing.db", data_dir) < 0) {
        free(e);
        st_seterr(err, errlen, WHAT ": out of memory");
        return NULL;
    }
    if (st_sqlite_open(path, WHAT, &e->db, err, errlen) != 0 ||
        st_sqlite_exec(e->db, WHAT, SCHEMA, NULL, 0) != 0) {
        if (e->db) st_seterr(err, errlen, "%s: cannot create eventing's tables", path);
        st_events_close(e);
        free(path);
        return NULL;
    }
    free(path);
    return e;
}

void st_events_close(st_events_t *e)
{
    if (!e) return;
    if (e->db) sqlite3_close(e->db);
    free(e);
}

int st_events_put(st_events_t *e, const char *kind, const char *name, const char *doc, char *err,
                  size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(e->db, "INSERT OR REPLACE INTO objects(kind,name,doc) VALUES(?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        st_seterr(err, errlen, "%s", sqlite3_errmsg(e->db));
        return -1;
    }
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, doc, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        st_seterr(err, errlen, "%s", sqlite3_errmsg(e->db));
        return -1;
    }
    return 0;
}

static void delete_by(st_events_t *e, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(e->db, sql, -1, &st, NULL) != SQLITE_OK) return;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b) sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

void st_events_delete(st_events_t *e, const char *kind, const char *name)
{
    delete_by(e, "DELETE FROM objects WHERE kind=? AND name=?", kind, name);
}

void st_events_forget_fire(st_events_t *e, const char *name)
{
    delete_by(e, "DELETE FROM ping_state WHERE name=?", name, NULL);
}

void st_events_each(st_events_t *e,
                    void (*fn)(void *ud, const char *kind, const char *name, const char *doc),
                    void *ud)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(e->db, "SELECT kind, name, doc FROM objects ORDER BY kind, name", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *doc = (const char *)sqlite3_column_text(st, 2);
        fn(ud, kind ? kind : "", name ? name : "", doc);
    }
    sqlite3_finalize(st);
}

int64_t st_events_last_fire(st_events_t *e, const char *name)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (sqlite3_prepare_v2(e->db, "SELECT last_fire_ms FROM ping_state WHERE name=?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

void st_events_set_last_fire(st_events_t *e, const char *name, int64_t ms)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(e->db,
                           "INSERT OR REPLACE INTO ping_state(name,last_fire_ms) VALUES(?,?)", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ms);
    sqlite3_step(st);
    sqlite3_finalize(st);
}
