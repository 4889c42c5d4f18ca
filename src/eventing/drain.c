/*
 * drain.c — stopping eventing: every object's consumer asked to stop, then
 * the loop polls until the consumer threads and broker ingress answers
 * are done before ev_drain's callback runs.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "eventing/core.h"

void ev_stop_objects(ev_t *ev)
{
    ev->draining = true;
    pthread_rwlock_wrlock(&ev->objs_lock);
    obj_t *o = ev->objs;
    ev->objs = NULL;
    pthread_rwlock_unlock(&ev->objs_lock);
    while (o) {
        obj_t *next = o->next;
        ev_obj_free(o, false);
        o = next;
    }
}

void ev_maybe_drained(ev_t *ev)
{
    if (!ev->draining || ev->drained || !ev->drain_done)
        return;
    pthread_mutex_lock(&ev->live_mu);
    int live = ev->live;
    pthread_mutex_unlock(&ev->live_mu);
    if (live > 0 || ev->pub_pending > 0)
        return;
    ev->drained = true;
    if (ev->drain_timer) {
        uv_timer_stop(ev->drain_timer);
        ev->drain_timer->data = ev;
        uv_close((uv_handle_t *)ev->drain_timer, ev_timer_closed);
        ev->drain_timer = NULL;
    }
    if (ev->pub_async) {
        ev->pub_async->data = ev;
        uv_close((uv_handle_t *)ev->pub_async, ev_timer_closed);
        ev->pub_async = NULL;
    }
    ev->drain_done(ev->drain_ud);
}

static void drain_poll(uv_timer_t *t)
{
    ev_maybe_drained(t->data);
}

void ev_drain(ev_t *ev, void (*done)(void *), void *ud)
{
    ev->drain_done = done;
    ev->drain_ud = ud;
    ev_stop_objects(ev);
    /* Consumer threads end on their own; poll their count from the loop. */
    ev->drain_timer = malloc(sizeof *ev->drain_timer);
    if (ev->drain_timer) {
        uv_timer_init(ev->loop, ev->drain_timer);
        ev->drain_timer->data = ev;
        ev->open_handles++;
        uv_timer_start(ev->drain_timer, drain_poll, 0, 20);
    }
    ev_maybe_drained(ev);
}
