/*
 * redis.c — small Redis helpers for consumer threads: connecting with a
 * timeout, commands from argv, and dropping a connection that failed.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rfc3339.h"
#include "eventing/consumer.h"

redisContext *ev_redis_connect(const char *host, int port, char *err, size_t errlen)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    if (!rc || rc->err) {
        snprintf(err, errlen, "redis %s:%d: %s", host, port, rc ? rc->errstr : "out of memory");
        if (rc)
            redisFree(rc);
        return NULL;
    }
    struct timeval cmd = {10, 0};
    redisSetTimeout(rc, cmd);
    return rc;
}

/* ---- small Redis helpers ---- */

redisReply *ev_cons_cmd_argv(redisContext *rc, int argc, const char **argv, const size_t *lens)
{
    return redisCommandArgv(rc, argc, argv, lens);
}

/* Runs a command given as strings; NULL-terminated varargs are awkward
 * with binary values, so callers build argv. */
redisReply *ev_cons_cmdv(redisContext *rc, const char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return ev_cons_cmd_argv(rc, argc, argv, NULL);
}

bool ev_cons_reply_ok(redisReply *r)
{
    return r && r->type != REDIS_REPLY_ERROR;
}

/* Drops a connection after an I/O error (the caller reconnects later). */
void ev_cons_conn_check(redisContext **rcp)
{
    if (*rcp && (*rcp)->err) {
        fprintf(stderr, "eventing: redis connection lost: %s\n", (*rcp)->errstr);
        redisFree(*rcp);
        *rcp = NULL;
    }
}
