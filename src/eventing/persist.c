/*
 * persist.c — what eventing keeps across restarts: the applied documents
 * and each PingSource's last fire time.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "common/rfc3339.h"
#include "eventing/core.h"

/* ---- persistence ---- */

int ev_db_exec(ev_t *ev, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(ev->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "eventing: sqlite: %s\n", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int ev_db_put(ev_t *ev, const obj_t *o)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ev->db, "INSERT OR REPLACE INTO objects(kind,name,doc) VALUES(?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, ev_kinds[o->kind].kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o->doc, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

void ev_db_del(ev_t *ev, int kind, const char *name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ev->db, "DELETE FROM objects WHERE kind=? AND name=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, ev_kinds[kind].kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (kind == OBJ_PING &&
        sqlite3_prepare_v2(ev->db, "DELETE FROM ping_state WHERE name=?", -1, &st, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

int64_t ev_db_last_fire(ev_t *ev, const char *name)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (sqlite3_prepare_v2(ev->db, "SELECT last_fire_ms FROM ping_state WHERE name=?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

void ev_db_set_last_fire(ev_t *ev, const char *name, int64_t ms)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ev->db,
                           "INSERT OR REPLACE INTO ping_state(name,last_fire_ms) VALUES(?,?)", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ms);
    sqlite3_step(st);
    sqlite3_finalize(st);
}
