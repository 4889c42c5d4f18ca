/*
 * feed.c — a consumer reading its Redis feed: the consumer group, its own
 * pending entries first, stale ones reclaimed (XAUTOCLAIM), entries turned
 * into events, and the backlog (lag + pending) that drives parallelism.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rfc3339.h"
#include "eventing/consumer.h"

/* ---- reading the feed ---- */

/* Builds the event of a stream entry (fields: flat array f, v, f, v). */
static ev_event_t *entry_event(ev_consumer_t *c, const char *id, redisReply *fields, char *err,
                               size_t len)
{
    if (!fields || fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) {
        snprintf(err, len, "entry %s was deleted from the stream", id);
        return NULL;
    }
    size_t max = c->ctx->max_event_bytes;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, "event") == 0 &&
            v->type == REDIS_REPLY_STRING)
            return ev_event_from_json(v->str, v->len, max, err, len);
    }
    if (!c->raw) {
        snprintf(err, len, "entry %s has no \"event\" field", id);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    size_t total = 0;
    for (size_t i = 0; o && i + 1 < fields->elements; i += 2) {
        redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strlen(f->str) != f->len || strlen(v->str) != v->len) {
            snprintf(err, len, "entry %s: field %zu is not text", id, i / 2);
            cJSON_Delete(o);
            return NULL;
        }
        total += f->len + v->len;
        cJSON_DeleteItemFromObjectCaseSensitive(o, f->str);
        cJSON_AddStringToObject(o, f->str, v->str);
    }
    if (max && total > max) {
        snprintf(err, len, "entry %s of %zu bytes is larger than the limit of %zu", id, total, max);
        cJSON_Delete(o);
        return NULL;
    }
    char *data = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    ev_event_t *e = ev_event_new();
    if (!data || !e) {
        free(data);
        ev_event_free(e);
        snprintf(err, len, "out of memory");
        return NULL;
    }
    char tm[32];
    cm_rfc3339_format(((int64_t)strtoll(id, NULL, 10)) * 1000000, CM_RFC3339_MILLIS, tm, sizeof tm);
    ev_event_set(e, "specversion", "1.0");
    ev_event_set(e, "id", id);
    ev_event_set(e, "source", c->source_attr);
    ev_event_set(e, "type", "dev.knative.sources.redisstream");
    ev_event_set(e, "time", tm);
    ev_event_set(e, "datacontenttype", "application/json");
    ev_event_set_data(e, data, strlen(data));
    free(data);
    return e;
}

/* Takes entries ([id, fields] pairs) from a read or a claim. */
static int take_entries(ev_consumer_t *c, redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return 0;
    int n = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        redisReply *en = entries->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements < 1 ||
            en->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *id = en->element[0]->str;
        if (ev_cons_item_is_live(c, id))
            continue; /* already ours (e.g. waiting for a retry) */
        item_t *it = ev_cons_item_new(c, id);
        if (!it)
            break;
        n++;
        if (en->elements < 2 || en->element[1]->type == REDIS_REPLY_NIL) {
            /* Deleted from the stream while pending: nothing to deliver. */
            ev_cons_ack(c, it);
            ev_cons_metric(c, "dropped");
            ev_cons_item_free(it);
            continue;
        }
        char err[256];
        it->event = entry_event(c, id, en->elements > 1 ? en->element[1] : NULL, err, sizeof err);
        if (!it->event) {
            /* A bad entry: dead-letter it at once, never retry it. */
            it->to_dlq = true;
            snprintf(it->error, sizeof it->error, "bad entry: %.230s", err);
            ev_cons_attempt(c, it);
            continue;
        }
        if (c->filter.n && !ev_filter_match(&c->filter, it->event)) {
            ev_cons_ack(c, it);
            ev_cons_item_free(it);
            continue;
        }
        ev_cons_attempt(c, it);
    }
    return n;
}

int ev_cons_read_group(ev_consumer_t *c, const char *from, int count, int block_ms)
{
    char cnt[16], blk[16];
    snprintf(cnt, sizeof cnt, "%d", count);
    snprintf(blk, sizeof blk, "%d", block_ms);
    const char *argv[12];
    int argc = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = c->group;
    argv[argc++] = c->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = cnt;
    if (block_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = blk;
    }
    argv[argc++] = "STREAMS";
    argv[argc++] = c->stream;
    argv[argc++] = from;
    redisReply *r = ev_cons_cmd_argv(c->rc, argc, argv, NULL);
    if (!ev_cons_reply_ok(r)) {
        if (r)
            fprintf(stderr, "eventing: XREADGROUP %s: %s\n", c->stream, r->str);
        freeReplyObject(r);
        ev_cons_conn_check(&c->rc);
        return -1;
    }
    int n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        redisReply *s = r->element[0];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2)
            n = take_entries(c, s->element[1]);
    }
    freeReplyObject(r);
    return n;
}

/* Own pending entries, left by an earlier run of this consumer. */
void ev_cons_recover_own(ev_consumer_t *c)
{
    /* "0" returns this consumer's pending entries; page by their ids. */
    char from[64] = "0";
    for (int rounds = 0; rounds < 1000 && c->rc; rounds++) {
        const char *argv[] = {"XREADGROUP", "GROUP", c->group, c->consumer, "COUNT", "500",
                              "STREAMS",    c->stream, from,   NULL};
        redisReply *r = ev_cons_cmdv(c->rc, argv);
        if (!ev_cons_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            ev_cons_conn_check(&c->rc);
            return;
        }
        redisReply *ents = r->element[0]->elements == 2 ? r->element[0]->element[1] : NULL;
        if (!ents || ents->type != REDIS_REPLY_ARRAY || ents->elements == 0) {
            freeReplyObject(r);
            return;
        }
        redisReply *last = ents->element[ents->elements - 1];
        snprintf(from, sizeof from, "%s", last->element[0]->str);
        take_entries(c, ents);
        freeReplyObject(r);
    }
}

/* Other consumers' entries pending longer than claim_min_idle_ms. */
void ev_cons_autoclaim(ev_consumer_t *c)
{
    char idle[32];
    snprintf(idle, sizeof idle, "%lld", (long long)c->claim_min_idle_ms);
    char start[64] = "0-0";
    for (int rounds = 0; rounds < 100 && c->rc; rounds++) {
        const char *argv[] = {"XAUTOCLAIM", c->stream, c->group, c->consumer, idle,
                              start,        "COUNT",   "200",    NULL};
        redisReply *r = ev_cons_cmdv(c->rc, argv);
        if (!ev_cons_reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
            freeReplyObject(r);
            ev_cons_conn_check(&c->rc);
            return;
        }
        snprintf(start, sizeof start, "%s", r->element[0]->str ? r->element[0]->str : "0-0");
        take_entries(c, r->element[1]);
        freeReplyObject(r);
        if (strcmp(start, "0-0") == 0)
            return;
    }
}

void ev_cons_ensure_group(ev_consumer_t *c)
{
    const char *argv[] = {"XGROUP", "CREATE", c->stream, c->group, c->start_id, "MKSTREAM", NULL};
    redisReply *r = ev_cons_cmdv(c->rc, argv);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        fprintf(stderr, "eventing: XGROUP CREATE %s %s: %s\n", c->stream, c->group, r->str);
    freeReplyObject(r);
    ev_cons_conn_check(&c->rc);
}

/* lag + pending of our group, or -1. */
long ev_cons_redis_backlog(ev_consumer_t *c)
{
    const char *argv[] = {"XINFO", "GROUPS", c->stream, NULL};
    redisReply *r = ev_cons_cmdv(c->rc, argv);
    if (!ev_cons_reply_ok(r) || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        ev_cons_conn_check(&c->rc);
        return -1;
    }
    long backlog = -1;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        bool ours = false;
        long pending = 0, lag = -1;
        for (size_t k = 0; k + 1 < g->elements; k += 2) {
            redisReply *f = g->element[k], *v = g->element[k + 1];
            if (f->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(f->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                ours = strcmp(v->str, c->group) == 0;
            else if (strcmp(f->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = (long)v->integer;
            else if (strcmp(f->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                lag = (long)v->integer;
        }
        if (!ours)
            continue;
        if (lag < 0) {
            /* Unknown after deletions: XLEN bounds it. */
            const char *a2[] = {"XLEN", c->stream, NULL};
            redisReply *x = ev_cons_cmdv(c->rc, a2);
            lag = x && x->type == REDIS_REPLY_INTEGER ? (long)x->integer : 0;
            freeReplyObject(x);
        }
        backlog = lag + pending;
    }
    freeReplyObject(r);
    return backlog;
}
