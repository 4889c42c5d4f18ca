/*
 * msgqueue.c — a source's durable message queue (msgqueue.h): one table,
 * rows appended in batches and removed once settled, under the daemon's
 * one durability policy (db.h: WAL, synchronous=FULL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/db.h"
#include "store/msgqueue.h"

struct st_mq {
    sqlite3 *db;
    sqlite3_stmt *ins, *sel, *del, *att, *cnt;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS msgs("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " topic TEXT NOT NULL, headers TEXT, bad TEXT,"
    " body BLOB, time_ms INTEGER NOT NULL)";

st_mq_t *st_mq_open(const char *path, char *err, size_t errlen)
{
    /* The folder: DATA/sources. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        if (mkdir(dir, 0700) && errno != EEXIST) {
            st_seterr(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            return NULL;
        }
    }
    st_mq_t *q = calloc(1, sizeof *q);
    if (!q) {
        st_seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (st_sqlite_open(path, "source queue", &q->db, err, errlen) ||
        st_sqlite_exec(q->db, "source queue", SCHEMA, err, errlen))
        goto fail;
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO msgs(topic,headers,bad,body,time_ms) VALUES(?,?,?,?,?)",
                           -1, &q->ins, NULL) ||
        sqlite3_prepare_v2(q->db,
                           "SELECT seq,attempts,topic,headers,bad,body,time_ms FROM msgs "
                           "WHERE seq>? ORDER BY seq LIMIT ?",
                           -1, &q->sel, NULL) ||
        sqlite3_prepare_v2(q->db, "DELETE FROM msgs WHERE seq=?", -1, &q->del, NULL) ||
        sqlite3_prepare_v2(q->db, "UPDATE msgs SET attempts=? WHERE seq=?", -1, &q->att, NULL) ||
        sqlite3_prepare_v2(q->db, "SELECT count(*) FROM msgs", -1, &q->cnt, NULL)) {
        st_seterr(err, errlen, "source queue %s: %s", path, sqlite3_errmsg(q->db));
        goto fail;
    }
    return q;
fail:
    st_mq_close(q);
    return NULL;
}

void st_mq_close(st_mq_t *q)
{
    if (!q)
        return;
    sqlite3_finalize(q->ins);
    sqlite3_finalize(q->sel);
    sqlite3_finalize(q->del);
    sqlite3_finalize(q->att);
    sqlite3_finalize(q->cnt);
    if (q->db)
        sqlite3_close(q->db);
    free(q);
}

int st_mq_append(st_mq_t *q, st_mq_msg_t *m, size_t n, char *err, size_t errlen)
{
    if (st_sqlite_exec(q->db, "source queue", "BEGIN IMMEDIATE", err, errlen))
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(q->ins);
        sqlite3_bind_text(q->ins, 1, m[i].topic, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->ins, 2, m[i].headers, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->ins, 3, m[i].bad, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q->ins, 4, m[i].body, (int)m[i].len, SQLITE_STATIC);
        sqlite3_bind_int64(q->ins, 5, m[i].time_ms);
        if (sqlite3_step(q->ins) != SQLITE_DONE) {
            st_seterr(err, errlen, "source queue: %s", sqlite3_errmsg(q->db));
            sqlite3_reset(q->ins);
            st_sqlite_exec(q->db, "source queue", "ROLLBACK", NULL, 0);
            return -1;
        }
        m[i].seq = (uint64_t)sqlite3_last_insert_rowid(q->db);
    }
    sqlite3_reset(q->ins);
    if (st_sqlite_exec(q->db, "source queue", "COMMIT", err, errlen)) {
        st_sqlite_exec(q->db, "source queue", "ROLLBACK", NULL, 0);
        return -1;
    }
    return 0;
}

int st_mq_each_after(st_mq_t *q, uint64_t after, int max,
                     void (*fn)(void *ud, const st_mq_msg_t *m), void *ud)
{
    sqlite3_reset(q->sel);
    sqlite3_bind_int64(q->sel, 1, (sqlite3_int64)after);
    sqlite3_bind_int(q->sel, 2, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(q->sel)) == SQLITE_ROW) {
        st_mq_msg_t m = {
            .seq = (uint64_t)sqlite3_column_int64(q->sel, 0),
            .attempts = sqlite3_column_int(q->sel, 1),
            .topic = (const char *)sqlite3_column_text(q->sel, 2),
            .headers = (const char *)sqlite3_column_text(q->sel, 3),
            .bad = (const char *)sqlite3_column_text(q->sel, 4),
            .body = sqlite3_column_blob(q->sel, 5),
            .len = (size_t)sqlite3_column_bytes(q->sel, 5),
            .time_ms = sqlite3_column_int64(q->sel, 6),
        };
        if (!m.topic)
            m.topic = "";
        fn(ud, &m);
        n++;
    }
    sqlite3_reset(q->sel);
    return rc == SQLITE_DONE ? n : -1;
}

int st_mq_remove(st_mq_t *q, const uint64_t *seqs, size_t n)
{
    if (n == 0)
        return 0;
    if (st_sqlite_exec(q->db, "source queue", "BEGIN IMMEDIATE", NULL, 0))
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(q->del);
        sqlite3_bind_int64(q->del, 1, (sqlite3_int64)seqs[i]);
        sqlite3_step(q->del);
    }
    sqlite3_reset(q->del);
    if (st_sqlite_exec(q->db, "source queue", "COMMIT", NULL, 0)) {
        st_sqlite_exec(q->db, "source queue", "ROLLBACK", NULL, 0);
        return -1;
    }
    return 0;
}

int st_mq_set_attempts(st_mq_t *q, uint64_t seq, int attempts)
{
    sqlite3_reset(q->att);
    sqlite3_bind_int(q->att, 1, attempts);
    sqlite3_bind_int64(q->att, 2, (sqlite3_int64)seq);
    int rc = sqlite3_step(q->att);
    sqlite3_reset(q->att);
    return rc == SQLITE_DONE ? 0 : -1;
}

long st_mq_count(st_mq_t *q)
{
    sqlite3_reset(q->cnt);
    long n = sqlite3_step(q->cnt) == SQLITE_ROW ? (long)sqlite3_column_int64(q->cnt, 0) : -1;
    sqlite3_reset(q->cnt);
    return n;
}
