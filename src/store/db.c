/*
 * db.c — opening SQLite databases with the daemon's one durability policy
 * (db.h). wasmfn.db (the registry), the usage table and eventing.db all
 * open here, so they cannot drift apart: eventing once ran with
 * synchronous=NORMAL while the rest used FULL.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/db.h"

void st_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int st_sqlite_exec(sqlite3 *db, const char *what, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        st_seterr(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int st_sqlite_open(const char *path, const char *what, sqlite3 **dbp, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        st_seterr(err, errlen, "%s %s: %s", what, path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    /* journal_mode answers with the mode in force: make sure it is WAL. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        st_seterr(err, errlen, "%s %s: cannot set WAL mode: %s", what, path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    bool wal = mode && strcmp(mode, "wal") == 0;
    if (!wal)
        st_seterr(err, errlen, "%s %s: cannot use WAL mode (got %s)", what, path, mode ? mode : "?");
    sqlite3_finalize(st);
    if (!wal) goto fail;
    char w[1200];
    snprintf(w, sizeof w, "%s %s", what, path);
    if (st_sqlite_exec(db, w, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err, errlen) != 0)
        goto fail;
    *dbp = db;
    return 0;
fail:
    if (db) sqlite3_close(db);
    *dbp = NULL;
    return -1;
}
