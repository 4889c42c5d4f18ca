/*
 * broker.c — brokers: publishing an event into a broker (memory queues of
 * its triggers, or a Redis stream), and HTTP ingress, with --redis through
 * a publisher thread so the loop never waits on Redis.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/rfc3339.h"
#include "eventing/core.h"

/* ---- brokers ---- */

int ev_broker_publish(ev_t *ev, const char *broker, const ev_event_t *e, redisContext *redis,
                      char *err, size_t errlen)
{
    pthread_rwlock_rdlock(&ev->objs_lock);
    bool exists = false;
    for (obj_t *o = ev->objs; o; o = o->next)
        if (o->kind == OBJ_BROKER && strcmp(o->name, broker) == 0)
            exists = true;
    if (!exists) {
        pthread_rwlock_unlock(&ev->objs_lock);
        snprintf(err, errlen, "no broker %.100s", broker);
        return -1;
    }
    if (!ev->redis_port) {
        /* Every matching trigger gets a copy. Check them all first, so that
         * an event refused for lack of room reaches none of them (a client
         * retrying it then makes no duplicates). Consumers only ever free
         * room meanwhile; two publishers at once may both pass the check,
         * and then the push itself refuses. */
        size_t bytes = ev_event_bytes(e), n = 0;
        const char *full = NULL;
        for (obj_t *o = ev->objs; o; o = o->next)
            if (o->kind == OBJ_TRIGGER && o->consumer && strcmp(o->broker, broker) == 0 &&
                ev_filter_match(&o->filter, e)) {
                n++;
                if (!full && !ev_consumer_has_room(o->consumer, bytes))
                    full = o->name;
            }
        if (full) {
            pthread_rwlock_unlock(&ev->objs_lock);
            snprintf(err, errlen,
                     "broker %.100s: trigger %.100s holds its bound of %zu queued bytes; "
                     "retry later", broker, full, ev->queue_max_bytes_per_trigger);
            return EV_PUBLISH_FULL;
        }
        size_t used = __atomic_load_n(&ev->queue_bytes, __ATOMIC_RELAXED);
        if (n && (used > ev->queue_max_bytes || bytes * n > ev->queue_max_bytes - used)) {
            pthread_rwlock_unlock(&ev->objs_lock);
            snprintf(err, errlen,
                     "broker %.100s: memory brokers hold their bound of %zu queued bytes; "
                     "retry later", broker, ev->queue_max_bytes);
            return EV_PUBLISH_FULL;
        }
        int rc = 0;
        for (obj_t *o = ev->objs; o; o = o->next)
            if (o->kind == OBJ_TRIGGER && o->consumer && strcmp(o->broker, broker) == 0 &&
                ev_filter_match(&o->filter, e) && ev_consumer_push(o->consumer, e, err, errlen))
                rc = EV_PUBLISH_FULL;
        pthread_rwlock_unlock(&ev->objs_lock);
        return rc;
    }
    pthread_rwlock_unlock(&ev->objs_lock);
    if (!redis) {
        snprintf(err, errlen, "broker %.100s: no redis connection", broker);
        return -1;
    }
    char *json = ev_event_to_json(e);
    if (!json) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char stream[200];
    snprintf(stream, sizeof stream, "wasmfn:broker:%s", broker);
    const char *argv[] = {"XADD", stream, "MAXLEN", "~", "1000000", "*", "event", json};
    redisReply *r = redisCommandArgv(redis, 8, argv, NULL);
    free(json);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "XADD %s: %.150s", stream, r ? r->str : redis->errstr);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

void *ev_publisher_main(void *arg)
{
    ev_t *ev = arg;
    redisContext *rc = NULL;
    for (;;) {
        pthread_mutex_lock(&ev->pub_mu);
        while (!ev->pub_queue && !ev->pub_stop)
            pthread_cond_wait(&ev->pub_cv, &ev->pub_mu);
        ingress_job_t *j = ev->pub_queue;
        if (!j) {
            pthread_mutex_unlock(&ev->pub_mu);
            break;
        }
        ev->pub_queue = j->next;
        pthread_mutex_unlock(&ev->pub_mu);
        if (!rc)
            rc = ev_redis_connect(ev->redis_host, ev->redis_port, j->error, sizeof j->error);
        if (rc && ev_broker_publish(ev, j->broker, j->event, rc, j->error, sizeof j->error) == 0)
            j->status = 202;
        else
            j->status = 503;
        if (rc && rc->err) {
            redisFree(rc);
            rc = NULL;
        }
        pthread_mutex_lock(&ev->pub_mu);
        j->next = ev->pub_done;
        ev->pub_done = j;
        pthread_mutex_unlock(&ev->pub_mu);
        uv_async_send(ev->pub_async);
    }
    if (rc)
        redisFree(rc);
    return NULL;
}

/* Sent with a 503 when a memory broker's queues are full for now. */
static const hs_header_t RETRY_AFTER = {"Retry-After", "1"};

static void ingress_metric(ev_t *ev, const char *broker, const char *outcome)
{
    if (!ev->m_ingress)
        return;
    const char *v[] = {broker, outcome};
    mx_counter_add(ev->m_ingress, v, 1);
}

void ev_pub_async_cb(uv_async_t *a)
{
    ev_t *ev = a->data;
    pthread_mutex_lock(&ev->pub_mu);
    ingress_job_t *j = ev->pub_done;
    ev->pub_done = NULL;
    pthread_mutex_unlock(&ev->pub_mu);
    while (j) {
        ingress_job_t *next = j->next;
        if (j->status == 202) {
            ingress_metric(ev, j->broker, "accepted");
            hs_respond(j->req, 202, NULL, 0, NULL, 0);
        } else {
            ingress_metric(ev, j->broker, "failed");
            hs_respond_error(j->req, 503, NULL, 0, j->error);
        }
        ev->pub_pending--;
        ev_event_free(j->event);
        free(j);
        j = next;
    }
    ev_maybe_drained(ev);
}

void ev_broker_ingress(ev_t *ev, const char *broker, hs_req_t *req)
{
    if (strcmp(req->method, "POST") != 0) {
        hs_header_t allow = {"Allow", "POST"};
        hs_respond(req, 405, &allow, 1, NULL, 0);
        return;
    }
    if (ev->draining) {
        hs_respond_error(req, 503, NULL, 0, "shutting down");
        return;
    }
    if (!broker || !ev_obj_find(ev, OBJ_BROKER, broker)) {
        hs_respond_error(req, 404, NULL, 0, "no such broker");
        return;
    }
    ev_header_t *h = calloc(req->nheaders + 1, sizeof *h);
    if (!h) {
        hs_respond_error(req, 503, NULL, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        h[i].name = req->headers[i].name;
        h[i].value = req->headers[i].value;
    }
    char err[256];
    ev_event_t *e = ev_event_from_http(h, req->nheaders, req->body, req->body_len,
                                       ev->max_event_bytes, err, sizeof err);
    free(h);
    if (!e) {
        ingress_metric(ev, broker, "rejected");
        hs_respond_error(req, 400, NULL, 0, err);
        return;
    }
    ev_trace_ingress(ev->cctx.tracer, e, req);
    if (!ev->redis_port) {
        int r = ev_broker_publish(ev, broker, e, NULL, err, sizeof err);
        ev_event_free(e);
        if (r == EV_PUBLISH_FULL) {
            ingress_metric(ev, broker, "full");
            hs_respond_error(req, 503, &RETRY_AFTER, 1, err);
            return;
        }
        if (r) {
            ingress_metric(ev, broker, "failed");
            hs_respond_error(req, 503, NULL, 0, err);
            return;
        }
        ingress_metric(ev, broker, "accepted");
        hs_respond(req, 202, NULL, 0, NULL, 0);
        return;
    }
    ingress_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        ev_event_free(e);
        hs_respond_error(req, 503, NULL, 0, "out of memory");
        return;
    }
    j->req = req;
    j->event = e;
    snprintf(j->broker, sizeof j->broker, "%s", broker);
    ev->pub_pending++;
    pthread_mutex_lock(&ev->pub_mu);
    ingress_job_t **pp = &ev->pub_queue;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
    pthread_cond_signal(&ev->pub_cv);
    pthread_mutex_unlock(&ev->pub_mu);
}
