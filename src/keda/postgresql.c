/*
 * postgresql.c — the postgresql trigger (libpq): the number in the first
 * column of the first row of the trigger's query, as KEDA's PostgreSQL
 * scaler reads it. The server is named by a connection string
 * (`connection`, a libpq URI or key=value string) or by host, port,
 * userName, password, dbName and sslmode.
 *
 * Each poll opens a connection (3 s to connect, libpq's connect_timeout;
 * TCP's user timeout the same), sends the query, and waits for its answer
 * at most KD_TRIGGER_TIMEOUT_MS in all, on the socket (a server that stops
 * answering cannot hold a poller thread); statement_timeout asks the
 * server to stop the query at the same time. Rows come one at a time
 * (single-row mode) and only the first is read. The query runs in a read-only
 * transaction (default_transaction_read_only): a scaler reads, and a query
 * that would write fails with PostgreSQL's own message. Messages name the
 * host, port and database, never the password or the connection string.
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keda/internal.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "host:port/db" for messages, from the connection made (or tried). */
static void where(PGconn *c, const kd_trigger_t *t, char *out, size_t n)
{
    const char *h = c ? PQhost(c) : NULL, *p = c ? PQport(c) : NULL, *d = c ? PQdb(c) : NULL;
    if (!h || !*h) h = t->url ? t->url : "?";
    snprintf(out, n, "%.100s:%.10s/%.60s", h, p && *p ? p : "5432", d && *d ? d : "");
}

/* The answer's one value: the first row's first column, a number. */
static int result_value(PGresult *r, double *value, char *err, size_t errlen)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
        const char *m = PQresultErrorMessage(r);
        snprintf(err, errlen, "%.*s", (int)strcspn(m && *m ? m : PQresStatus(st), "\n"),
                 m && *m ? m : PQresStatus(st));
        return -1;
    }
    if (PQntuples(r) < 1 || PQnfields(r) < 1) {
        snprintf(err, errlen, "the query returned no row");
        return -1;
    }
    if (PQgetisnull(r, 0, 0)) {
        snprintf(err, errlen, "the query returned NULL (COALESCE(..., 0) gives 0 instead)");
        return -1;
    }
    const char *s = PQgetvalue(r, 0, 0);
    char *end;
    double d = strtod(s, &end);
    if (!*s || *end || !isfinite(d)) {
        snprintf(err, errlen, "the query returned \"%.40s\", not a number", s);
        return -1;
    }
    *value = d;
    return 0;
}

/* Adds keyword k with value v (none when v is NULL). */
static void kv(const char **keys, const char **vals, int *n, const char *k, const char *v)
{
    if (!v) return;
    keys[*n] = k;
    vals[(*n)++] = v;
}

int kd_read_postgresql(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    char timeout_s[16], options[96], tcp_ms[16];
    snprintf(timeout_s, sizeof timeout_s, "%u", (KD_TRIGGER_TIMEOUT_MS + 999) / 1000);
    snprintf(tcp_ms, sizeof tcp_ms, "%u", KD_TRIGGER_TIMEOUT_MS);
    snprintf(options, sizeof options, "-c statement_timeout=%u -c default_transaction_read_only=on",
             KD_TRIGGER_TIMEOUT_MS);
    /* With a connection string, it comes first (expand_dbname) and the
     * bounds after it win over anything it says. */
    const char *keys[16], *vals[16];
    int n = 0;
    if (t->db_connection) {
        kv(keys, vals, &n, "dbname", t->db_connection);
    } else {
        kv(keys, vals, &n, "host", t->url);
        kv(keys, vals, &n, "port", t->db_port);
        kv(keys, vals, &n, "user", t->username);
        kv(keys, vals, &n, "password", t->password);
        kv(keys, vals, &n, "dbname", t->db_name);
        kv(keys, vals, &n, "sslmode", t->db_sslmode);
    }
    kv(keys, vals, &n, "connect_timeout", timeout_s);
    kv(keys, vals, &n, "tcp_user_timeout", tcp_ms);
    kv(keys, vals, &n, "options", options);
    kv(keys, vals, &n, "application_name", "wasmfn-keda");
    keys[n] = vals[n] = NULL;
    long long deadline = now_ms() + KD_TRIGGER_TIMEOUT_MS;
    PGconn *c = PQconnectdbParams(keys, vals, t->db_connection != NULL);
    char at[200];
    where(c, t, at, sizeof at);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        const char *m = c ? PQerrorMessage(c) : "out of memory";
        snprintf(err, errlen, "postgresql %s: %.*s", at, (int)strcspn(m, "\n"), m);
        PQfinish(c);
        return -1;
    }
    int rc = -1;
    char e[300] = "";
    /* Row by row: only the first is read, so a query that returns many
     * rows does not hold them all in memory. */
    if (!PQsendQuery(c, t->query) || !PQsetSingleRowMode(c)) {
        snprintf(e, sizeof e, "%.*s", (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
        goto out;
    }
    /* Wait for the first row (or the end), on the socket, until the deadline. */
    while (PQisBusy(c)) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(e, sizeof e, "no answer within %u ms", KD_TRIGGER_TIMEOUT_MS);
            goto out;
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (pfd.fd < 0 || (poll(&pfd, 1, (int)left) > 0 && !PQconsumeInput(c))) {
            snprintf(e, sizeof e, "%.*s", (int)strcspn(PQerrorMessage(c), "\n"),
                     PQerrorMessage(c));
            goto out;
        }
    }
    PGresult *r = PQgetResult(c);
    rc = result_value(r, value, e, sizeof e);
    PQclear(r); /* the rows after it, or other statements: PQfinish drops them */
out:
    if (rc != 0) snprintf(err, errlen, "postgresql %s: %s", at, e);
    PQfinish(c);
    return rc;
}
