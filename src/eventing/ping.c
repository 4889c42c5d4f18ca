/*
 * ping.c — PingSource timers on the loop: each fire publishes the
 * source's event to its consumer and re-arms at the next cron time.
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


static void ping_fire(uv_timer_t *t)
{
    obj_t *o = t->data;
    ev_t *ev = o->ev;
    int64_t now = ev_now_ms();
    if (now < o->next_fire_ms) {
        /* Early: libuv's timer counts from the loop's cached time, which can
         * lag the wall clock by the length of the callbacks before us, and the
         * wall clock may move. An event stamped after it is sent reaches its
         * sink "before" its own time, so wait the rest. */
        ev_ping_arm(o);
        return;
    }
    int64_t fire = o->next_fire_ms;
    ev_event_t *e = ev_event_clone(o->tmpl);
    if (e) {
        char id[37], tm[32], src[256];
        ev_uuid(id);
        cm_rfc3339_format((fire) * 1000000, CM_RFC3339_MILLIS, tm, sizeof tm);
        snprintf(src, sizeof src, "/apis/v1/namespaces/default/pingsources/%s", o->name);
        ev_event_set(e, "specversion", "1.0");
        ev_event_set(e, "id", id);
        ev_event_set(e, "source", src);
        ev_event_set(e, "type", "dev.knative.sources.ping");
        ev_event_set(e, "time", tm);
        char err[256];
        if (o->consumer && ev_consumer_push(o->consumer, e, err, sizeof err))
            fprintf(stderr, "eventing: pingsource %s: tick dropped: %s\n", o->name, err);
        ev_event_free(e);
    }
    o->last_fire_ms = fire;
    st_events_set_last_fire(ev->store, o->name, fire);
    o->next_fire_ms = ev_cron_next(&o->cron, now > fire ? now : fire, fire);
    ev_ping_arm(o);
}

void ev_ping_arm(obj_t *o)
{
    if (o->next_fire_ms < 0 || o->ev->draining)
        return;
    int64_t delay = o->next_fire_ms - ev_now_ms();
    if (delay < 0)
        delay = 0;
    uv_update_time(o->ev->loop); /* the delay counts from now, not the iteration's start */
    uv_timer_start(o->timer, ping_fire, (uint64_t)delay, 0);
}
