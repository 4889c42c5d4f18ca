/*
 * mysql.c — the mysql trigger (Debian's MariaDB Connector/C, which speaks to
 * MySQL and MariaDB): the number in the first column of the first row of
 * the trigger's query, as KEDA's MySQL scaler reads it. The server is
 * named by a connection string in the Go driver's form KEDA takes
 * (`user:password@tcp(host:port)/dbname`), or by host, port, username,
 * password and dbName.
 *
 * Each poll connects anew, 3 s to connect and 3 s for each read or write
 * (the connector's timeouts), in a read-only session (SET SESSION
 * TRANSACTION READ ONLY when it connects). The answer is read unbuffered
 * and only its first row is taken: then the socket is shut down, so that a
 * query of many rows is not drained to close the connection. Messages
 * name the host, port and database, never the password or the connection
 * string.
 */
#define _GNU_SOURCE
#include <math.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "keda/internal.h"

/* Copies n bytes of s into out (size cap); false when they do not fit. */
static bool take(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap) return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

int kd_mysql_dsn_parse(const char *dsn, kd_dsn_t *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    snprintf(d->host, sizeof d->host, "127.0.0.1");
    d->port = 3306;
    /* [user[:password]@][net[(addr)]]/dbname[?params] */
    const char *slash = strrchr(dsn, '/');
    if (!slash) {
        snprintf(err, errlen, "no /dbname (the form is user:password@tcp(host:port)/dbname)");
        return -1;
    }
    const char *q = strchr(slash, '?');
    if (!take(d->db, sizeof d->db, slash + 1, q ? (size_t)(q - slash - 1) : strlen(slash + 1))) {
        snprintf(err, errlen, "the database name is too long");
        return -1;
    }
    if (q && q[1]) {
        snprintf(err, errlen, "parameters after '?' are not supported");
        return -1;
    }
    const char *at = NULL;
    for (const char *p = dsn; p < slash; p++)
        if (*p == '@') at = p;
    if (at) {
        const char *colon = memchr(dsn, ':', (size_t)(at - dsn));
        size_t ulen = colon ? (size_t)(colon - dsn) : (size_t)(at - dsn);
        if (!take(d->user, sizeof d->user, dsn, ulen) ||
            (colon && !take(d->password, sizeof d->password, colon + 1, (size_t)(at - colon - 1)))) {
            snprintf(err, errlen, "the user or the password is too long");
            return -1;
        }
        d->has_password = colon != NULL;
    }
    const char *net = at ? at + 1 : dsn;
    size_t nlen = (size_t)(slash - net);
    if (nlen == 0) return 0; /* tcp(127.0.0.1:3306) */
    if (nlen < 5 || strncmp(net, "tcp(", 4) != 0 || net[nlen - 1] != ')') {
        snprintf(err, errlen, "only tcp(host:port) is supported before /dbname");
        return -1;
    }
    const char *addr = net + 4;
    size_t alen = nlen - 5;
    const char *colon = NULL;
    for (size_t i = 0; i < alen; i++)
        if (addr[i] == ':') colon = addr + i;
    if (addr[0] == '[') { /* [v6]:port */
        const char *close = memchr(addr, ']', alen);
        if (!close || !take(d->host, sizeof d->host, addr + 1, (size_t)(close - addr - 1))) {
            snprintf(err, errlen, "the host is malformed");
            return -1;
        }
        colon = close + 1 < addr + alen && close[1] == ':' ? close + 1 : NULL;
    } else if (!take(d->host, sizeof d->host, addr, colon ? (size_t)(colon - addr) : alen) ||
               !d->host[0]) {
        snprintf(err, errlen, "the host is empty or too long");
        return -1;
    }
    if (colon) {
        char port[8];
        size_t plen = (size_t)(addr + alen - colon - 1);
        if (!take(port, sizeof port, colon + 1, plen) || !plen ||
            strspn(port, "0123456789") != plen || atoi(port) < 1 || atoi(port) > 65535) {
            snprintf(err, errlen, "the port is not a number from 1 to 65535");
            return -1;
        }
        d->port = (unsigned)atoi(port);
    }
    return 0;
}

int kd_read_mysql(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    kd_dsn_t d;
    char e[300] = "";
    if (t->db_connection) {
        if (kd_mysql_dsn_parse(t->db_connection, &d, e, sizeof e) < 0) {
            snprintf(err, errlen, "mysql: connection string: %s", e);
            return -1;
        }
    } else {
        memset(&d, 0, sizeof d);
        snprintf(d.host, sizeof d.host, "%s", t->url);
        d.port = t->db_port ? (unsigned)atoi(t->db_port) : 3306;
        snprintf(d.user, sizeof d.user, "%s", t->username ? t->username : "");
        snprintf(d.password, sizeof d.password, "%s", t->password ? t->password : "");
        d.has_password = t->password != NULL;
        snprintf(d.db, sizeof d.db, "%s", t->db_name ? t->db_name : "");
    }
    char at[200];
    snprintf(at, sizeof at, "%.100s:%u/%.60s", d.host, d.port, d.db);
    MYSQL *c = mysql_init(NULL);
    int rc = -1;
    if (!c) {
        snprintf(err, errlen, "mysql %s: out of memory", at);
        explicit_bzero(d.password, sizeof d.password);
        return -1;
    }
    unsigned int secs = (KD_TRIGGER_TIMEOUT_MS + 999) / 1000;
    unsigned int tcp = MYSQL_PROTOCOL_TCP;
    mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    mysql_options(c, MYSQL_OPT_READ_TIMEOUT, &secs);
    mysql_options(c, MYSQL_OPT_WRITE_TIMEOUT, &secs);
    mysql_options(c, MYSQL_OPT_PROTOCOL, &tcp); /* "localhost" is a host, not the socket */
    mysql_options(c, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION READ ONLY");
    MYSQL_RES *res = NULL;
    if (!mysql_real_connect(c, d.host, d.user[0] ? d.user : NULL,
                            d.has_password ? d.password : NULL, d.db[0] ? d.db : NULL, d.port,
                            NULL, 0)) {
        snprintf(e, sizeof e, "%s", mysql_error(c));
        goto out;
    }
    if (mysql_query(c, t->query) != 0) {
        snprintf(e, sizeof e, "%s", mysql_error(c));
        goto out;
    }
    if (!(res = mysql_use_result(c))) {
        snprintf(e, sizeof e, "%s", mysql_field_count(c) ? mysql_error(c) : "the query returned no rows");
        goto out;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    if (!row) {
        snprintf(e, sizeof e, "%s", mysql_errno(c) ? mysql_error(c) : "the query returned no row");
        goto out;
    }
    if (!row[0]) {
        snprintf(e, sizeof e, "the query returned NULL (COALESCE(..., 0) gives 0 instead)");
        goto out;
    }
    char *end;
    double v = strtod(row[0], &end);
    if (!row[0][0] || *end || !isfinite(v)) {
        snprintf(e, sizeof e, "the query returned \"%.40s\", not a number", row[0]);
        goto out;
    }
    *value = v;
    rc = 0;
out:
    if (res) {
        /* The rows after the first are not wanted: freeing the result
         * would read them all first. */
        int fd = (int)mysql_get_socket(c);
        if (fd >= 0) shutdown(fd, SHUT_RDWR);
        mysql_free_result(res);
    }
    mysql_close(c);
    explicit_bzero(d.password, sizeof d.password);
    if (rc != 0) snprintf(err, errlen, "mysql %s: %s", at, e);
    return rc;
}
