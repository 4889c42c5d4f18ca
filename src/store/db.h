/*
 * db.h — how every SQLite database of the daemon is opened: the one
 * durability policy. Private to src/store/ (the only folder that includes
 * sqlite3.h); other subsystems call the typed functions of store.h,
 * usage.h and events.h.
 */
#ifndef WASMFN_STORE_DB_H
#define WASMFN_STORE_DB_H

#include <sqlite3.h>
#include <stddef.h>

/* Opens (creating) the database at path with the daemon's one policy: WAL
 * journal (checked: readers never block the writer), synchronous=FULL (a
 * COMMIT returns once the WAL is fsync'd, so what was acknowledged
 * survives SIGKILL and power loss), foreign keys on, a 5 s busy timeout
 * (two connections may share a file), serialized threading mode. what
 * names the database in messages ("metering database"). Returns 0, or -1
 * with a message in err and *db NULL. */
int st_sqlite_open(const char *path, const char *what, sqlite3 **db, char *err, size_t errlen);

/* Runs sql (one or more statements). Returns 0, or -1 with
 * "WHAT: message" in err. */
int st_sqlite_exec(sqlite3 *db, const char *what, const char *sql, char *err, size_t errlen);

/* Formats a one-line message into err (if err is given). */
void st_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
