/*
 * manager.c — the ScaledObjects the daemon runs (keda.h: kd_new, kd_apply,
 * kd_delete, kd_status_json) and the poller threads that read their
 * triggers.
 *
 * Reading a trigger means asking a server (Prometheus, Redis, NATS,
 * RabbitMQ, a database, any metrics API) that may be slow or gone, so it never happens on the loop
 * thread: a small fixed set of poller threads (KD_POLL_THREADS) take the
 * object whose poll is due soonest, read its triggers one after another
 * (each bounded by KD_TRIGGER_TIMEOUT_MS), decide (rules.c) and, when the
 * replicas change, wake the loop with a uv_async; the loop hands the count
 * to the data plane (kd_config_t.set_replicas). An object is polled by one
 * thread at a time, so a slow server delays only the objects that use it
 * (and, with more of them than threads, the queue behind them). A paused
 * ScaledObject (KEDA's annotations) is never polled: kd_apply decides its
 * count once.
 *
 * The one lock `mu` guards the object list and every field of an object
 * except what the thread polling it uses while unlocked: its parsed spec
 * (immutable once applied) and its usage marks (touched only while
 * `polling`). An object deleted or replaced while being polled is
 * unlinked at once and freed by the poller when it comes back (refs).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cond.h"
#include "common/rfc3339.h"
#include "keda/internal.h"

#define NO_PENDING (-2)

typedef struct kd_obj {
    kd_scaledobject_t so;     /* immutable while linked */
    kd_state_t st;
    kd_usage_mark_t *marks;   /* per trigger; the poller's */
    kd_sample_t *last;        /* per trigger: the last reading */
    uint32_t refs;
    bool polling, deleted;
    uint64_t next_poll_ns;
    int64_t last_poll_ms;     /* Unix ms; 0 = never */
    int64_t last_active_ms;
    int32_t pending;          /* a decision for the loop, or NO_PENDING */
    int32_t applied;          /* what the loop gave the data plane; -1 = nothing yet */
    struct kd_obj *next;
} kd_obj_t;

struct kd {
    kd_config_t cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kd_obj_t *objs;
    bool stopping;
    pthread_t *threads;
    uint32_t nthreads;
    uv_async_t async;
    char owner[128];          /* kd_target_owner's answer */
    mx_family_t *m_value, *m_active, *m_errors, *m_replicas, *m_paused;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void obj_free(kd_obj_t *o)
{
    kd_scaledobject_free(&o->so);
    kd_state_free(&o->st);
    free(o->marks);
    free(o->last);
    free(o);
}

/* mu held. */
static void obj_release(kd_obj_t *o)
{
    if (--o->refs == 0) obj_free(o);
}

static void obj_unlink(kd_t *k, kd_obj_t *o)
{
    for (kd_obj_t **pp = &k->objs; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    o->next = NULL;
    o->deleted = true;
}

static kd_obj_t *obj_find(kd_t *k, const char *name)
{
    for (kd_obj_t *o = k->objs; o; o = o->next)
        if (strcmp(o->so.name, name) == 0) return o;
    return NULL;
}

/* ---- polling (poller threads) ---------------------------------------------- */

/* Reads trigger i of o (unlocked; o is held by refs and `polling`). */
static void read_trigger(kd_t *k, kd_obj_t *o, uint32_t i, uint64_t now_ns, kd_sample_t *s)
{
    const kd_trigger_t *t = &o->so.triggers[i];
    int rc = -1;
    s->err[0] = '\0';
    if (t->auth_err) {
        /* Its credentials did not resolve: reading without them would
         * only fail at the server, or worse succeed as someone else. */
        snprintf(s->err, sizeof s->err, "authenticationRef %s: %s", t->auth_ref, t->auth_err);
        s->ok = false;
        return;
    }
    if (t->env_err) { /* the same for a value from the Service's env */
        snprintf(s->err, sizeof s->err, "%s", t->env_err);
        s->ok = false;
        return;
    }
    switch (t->type) {
    case KD_PROMETHEUS: rc = kd_read_prometheus(t, &s->value, s->err, sizeof s->err); break;
    case KD_REDIS_STREAMS:
    case KD_REDIS_LISTS:
    case KD_REDIS_CLUSTER_LISTS:
    case KD_REDIS_CLUSTER_STREAMS:
    case KD_REDIS_SENTINEL_LISTS:
    case KD_REDIS_SENTINEL_STREAMS: rc = kd_read_redis(t, &s->value, s->err, sizeof s->err); break;
    case KD_NATS_JETSTREAM: rc = kd_read_nats(t, &s->value, s->err, sizeof s->err); break;
    case KD_RABBITMQ: rc = kd_read_rabbitmq(t, &s->value, s->err, sizeof s->err); break;
    case KD_METRICS_API: rc = kd_read_metrics_api(t, &s->value, s->err, sizeof s->err); break;
    case KD_POSTGRESQL: rc = kd_read_postgresql(t, &s->value, s->err, sizeof s->err); break;
    case KD_MYSQL: rc = kd_read_mysql(t, &s->value, s->err, sizeof s->err); break;
    case KD_CRON: rc = kd_read_cron(t, unix_ms(), &s->value, s->err, sizeof s->err); break;
    case KD_CPU:
    case KD_MEMORY: {
        kd_usage_t u;
        if (!k->cfg.usage || k->cfg.usage(k->cfg.ud, o->so.target, &u) != 0) {
            snprintf(s->err, sizeof s->err, "service %s is not deployed", o->so.target);
            break;
        }
        rc = kd_read_usage(t, &u, now_ns, &o->marks[i], &s->value, s->err, sizeof s->err);
        break;
    }
    }
    s->ok = rc == 0;
}

/* Records a poll's outcome: status, metrics, and the decision for the
 * loop. mu held. */
static void poll_record(kd_t *k, kd_obj_t *o, const kd_sample_t *s, uint32_t replicas)
{
    o->last_poll_ms = unix_ms();
    if (o->st.active) o->last_active_ms = o->last_poll_ms;
    for (uint32_t i = 0; i < o->so.ntriggers; i++) {
        o->last[i] = s[i];
        const char *lv[] = {o->so.name, o->so.triggers[i].name};
        if (s[i].ok && k->m_value) mx_gauge_set(k->m_value, lv, s[i].value);
        if (k->m_active) mx_gauge_set(k->m_active, lv, o->st.trig_active[i]);
        if (!s[i].ok && k->m_errors) mx_counter_add(k->m_errors, lv, 1);
    }
    const char *ln[] = {o->so.name};
    if (k->m_replicas) mx_gauge_set(k->m_replicas, ln, replicas);
    if ((int32_t)replicas != o->applied) {
        o->pending = (int32_t)replicas;
        uv_async_send(&k->async);
    }
}

static void *poller_main(void *arg)
{
    kd_t *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stopping) {
        kd_obj_t *due = NULL;
        for (kd_obj_t *o = k->objs; o; o = o->next)
            if (!o->polling && !o->so.paused && (!due || o->next_poll_ns < due->next_poll_ns))
                due = o;
        uint64_t now = mono_ns();
        if (!due) {
            pthread_cond_wait(&k->cv, &k->mu);
            continue;
        }
        if (due->next_poll_ns > now) {
            cm_cond_wait_until_ns(&k->cv, &k->mu, due->next_poll_ns);
            continue;
        }
        kd_obj_t *o = due;
        o->polling = true;
        o->refs++;
        uint32_t n = o->so.ntriggers;
        pthread_mutex_unlock(&k->mu);

        kd_sample_t *s = calloc(n, sizeof *s);
        for (uint32_t i = 0; s && i < n; i++) read_trigger(k, o, i, now, &s[i]);

        pthread_mutex_lock(&k->mu);
        o->polling = false;
        if (!o->deleted) {
            uint64_t done = mono_ns();
            /* Out of memory: try again at the next interval. */
            if (s) poll_record(k, o, s, kd_decide(&o->so, &o->st, s, done));
            o->next_poll_ns = done + (uint64_t)o->so.polling_s * 1000000000ull;
        }
        free(s);
        obj_release(o);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* ---- the loop side --------------------------------------------------------- */

typedef struct change {
    char target[128];
    int32_t replicas;
} change_t;

/* Hands the decisions made since the last wake-up to the data plane. */
static void on_async(uv_async_t *a)
{
    kd_t *k = a->data;
    change_t *ch = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&k->mu);
    for (kd_obj_t *o = k->objs; o; o = o->next) {
        if (o->pending == NO_PENDING) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            change_t *g = realloc(ch, nc * sizeof *g);
            if (!g) break; /* the rest stay pending until the next wake-up */
            ch = g;
            cap = nc;
        }
        snprintf(ch[n].target, sizeof ch[n].target, "%s", o->so.target);
        ch[n++].replicas = o->pending;
        o->applied = o->pending;
        o->pending = NO_PENDING;
    }
    pthread_mutex_unlock(&k->mu);
    for (size_t i = 0; i < n; i++)
        if (k->cfg.set_replicas) k->cfg.set_replicas(k->cfg.ud, ch[i].target, ch[i].replicas);
    free(ch);
}

kd_t *kd_new(const kd_config_t *c, char *err, size_t errlen)
{
    kd_t *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->cfg = *c;
    pthread_mutex_init(&k->mu, NULL);
    cm_cond_init_monotonic(&k->cv);
    if (uv_async_init(c->loop, &k->async, on_async) != 0) {
        snprintf(err, errlen, "cannot create the async handle");
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        free(k);
        return NULL;
    }
    k->async.data = k;
    uv_unref((uv_handle_t *)&k->async); /* scaling alone does not keep the daemon up */
    if (c->metrics) {
        static const char *const l2[] = {"scaledobject", "trigger", NULL};
        static const char *const l1[] = {"scaledobject", NULL};
        k->m_value = mx_family_new(c->metrics, "wasmfn_scaler_metric_value",
                                   "The last value a ScaledObject's trigger read.", MX_GAUGE, l2,
                                   NULL, 0);
        k->m_active = mx_family_new(c->metrics, "wasmfn_scaler_active",
                                    "1 while a ScaledObject's trigger is above its activation "
                                    "threshold.",
                                    MX_GAUGE, l2, NULL, 0);
        k->m_errors = mx_family_new(c->metrics, "wasmfn_scaler_errors_total",
                                    "Failed reads of a ScaledObject's trigger.", MX_COUNTER, l2,
                                    NULL, 0);
        k->m_replicas = mx_family_new(c->metrics, "wasmfn_scaler_desired_replicas",
                                      "The instances a ScaledObject asks of its Service.",
                                      MX_GAUGE, l1, NULL, 0);
        k->m_paused = mx_family_new(c->metrics, "wasmfn_scaler_paused",
                                    "1 while a ScaledObject is paused by its annotations.",
                                    MX_GAUGE, l1, NULL, 0);
    }
    uint32_t n = c->poll_threads ? c->poll_threads : KD_POLL_THREADS;
    k->threads = calloc(n, sizeof *k->threads);
    for (uint32_t i = 0; k->threads && i < n; i++) {
        if (pthread_create(&k->threads[i], NULL, poller_main, k) != 0) break;
        k->nthreads++;
    }
    if (k->nthreads == 0) {
        snprintf(err, errlen, "cannot start the scaler threads");
        kd_free(k);
        return NULL;
    }
    return k;
}

static void on_closed(uv_handle_t *h)
{
    kd_t *k = h->data;
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
}

void kd_free(kd_t *k)
{
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    k->stopping = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    for (uint32_t i = 0; i < k->nthreads; i++) pthread_join(k->threads[i], NULL);
    free(k->threads);
    while (k->objs) {
        kd_obj_t *o = k->objs;
        k->objs = o->next;
        obj_free(o);
    }
    uv_close((uv_handle_t *)&k->async, on_closed);
}

const char *kd_target_owner(kd_t *k, const char *target, const char *name)
{
    const char *found = NULL;
    pthread_mutex_lock(&k->mu);
    for (kd_obj_t *o = k->objs; o && !found; o = o->next)
        if (strcmp(o->so.target, target) == 0 && strcmp(o->so.name, name) != 0) {
            snprintf(k->owner, sizeof k->owner, "%s", o->so.name);
            found = k->owner;
        }
    pthread_mutex_unlock(&k->mu);
    return found;
}

bool kd_decided(kd_t *k, const char *name, const char *target, uint32_t *replicas)
{
    bool decided = false;
    pthread_mutex_lock(&k->mu);
    kd_obj_t *o = obj_find(k, name);
    if (o && strcmp(o->so.target, target) == 0 && o->st.decided) {
        *replicas = o->st.replicas;
        decided = true;
    }
    pthread_mutex_unlock(&k->mu);
    return decided;
}

static void metrics_forget(kd_t *k, const char *name)
{
    mx_family_t *f[] = {k->m_value, k->m_active, k->m_errors, k->m_replicas, k->m_paused};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i]) mx_family_remove_first_label(f[i], name);
}

int kd_apply(kd_t *k, kd_scaledobject_t *so)
{
    kd_obj_t *o = calloc(1, sizeof *o);
    uint32_t n = so->ntriggers ? so->ntriggers : 1;
    uint64_t now = mono_ns();
    if (!o || !(o->marks = calloc(n, sizeof *o->marks)) || !(o->last = calloc(n, sizeof *o->last)) ||
        kd_state_init(&o->st, so, now) != 0) {
        if (o) {
            free(o->marks);
            free(o->last);
        }
        free(o);
        return -1;
    }
    o->so = *so;
    memset(so, 0, sizeof *so);
    o->refs = 1;
    o->pending = NO_PENDING;
    o->applied = -1;
    o->next_poll_ns = now; /* the first poll is now */
    char handback[128] = "";
    pthread_mutex_lock(&k->mu);
    kd_obj_t *old = obj_find(k, o->so.name);
    if (old) {
        if (strcmp(old->so.target, o->so.target) == 0) {
            /* The same Service: go on from where the old one was, rather
             * than from zero (a changed spec is not a restart). */
            o->applied = old->applied;
            kd_state_carry(&o->st, &old->st);
        } else {
            snprintf(handback, sizeof handback, "%s", old->so.target);
        }
        obj_unlink(k, old);
        obj_release(old);
    }
    metrics_forget(k, o->so.name);
    if (o->so.paused) {
        /* No poll: the count it holds is decided here, once: the one
         * asked for, else where it is (after a restart, the count held
         * before it). */
        int32_t hold = o->so.paused_replicas;
        if (hold < 0 && !o->st.decided) hold = o->so.held_replicas;
        if (hold >= 0) {
            o->st.replicas = (uint32_t)hold;
            o->st.decided = true;
            if (o->applied != hold) {
                o->pending = hold;
                uv_async_send(&k->async);
            }
        }
        const char *ln[] = {o->so.name};
        if (k->m_replicas && o->st.decided) mx_gauge_set(k->m_replicas, ln, o->st.replicas);
    }
    if (k->m_paused) {
        const char *ln[] = {o->so.name};
        mx_gauge_set(k->m_paused, ln, o->so.paused);
    }
    o->next = k->objs;
    k->objs = o;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    if (handback[0] && k->cfg.set_replicas) k->cfg.set_replicas(k->cfg.ud, handback, -1);
    return 0;
}

int kd_delete(kd_t *k, const char *name)
{
    char target[128];
    pthread_mutex_lock(&k->mu);
    kd_obj_t *o = obj_find(k, name);
    if (!o) {
        pthread_mutex_unlock(&k->mu);
        return -1;
    }
    snprintf(target, sizeof target, "%s", o->so.target);
    obj_unlink(k, o);
    obj_release(o);
    metrics_forget(k, name);
    pthread_mutex_unlock(&k->mu);
    if (k->cfg.set_replicas) k->cfg.set_replicas(k->cfg.ud, target, -1);
    return 0;
}

/* ---- status ---------------------------------------------------------------- */

static const char *metric_type_name(kd_metric_type_t m)
{
    return m == KD_VALUE ? "Value" : m == KD_UTILIZATION ? "Utilization" : "AverageValue";
}

static void add_time(cJSON *o, const char *key, int64_t ms)
{
    char t[40];
    if (ms <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    cm_rfc3339_format(ms * 1000000, CM_RFC3339_SECONDS, t, sizeof t);
    cJSON_AddStringToObject(o, key, t);
}

/* mu held. */
static cJSON *obj_json(const kd_obj_t *o)
{
    const kd_scaledobject_t *so = &o->so;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "ScaledObject");
    cJSON_AddStringToObject(j, "name", so->name);
    cJSON_AddStringToObject(j, "scaleTargetRef", so->target);
    cJSON_AddNumberToObject(j, "minReplicaCount", so->min_replicas);
    cJSON_AddNumberToObject(j, "maxReplicaCount", so->max_replicas);
    if (so->idle_replicas >= 0) cJSON_AddNumberToObject(j, "idleReplicaCount", so->idle_replicas);
    cJSON_AddNumberToObject(j, "pollingInterval", so->polling_s);
    cJSON_AddNumberToObject(j, "cooldownPeriod", so->cooldown_s);
    cJSON *st = cJSON_AddObjectToObject(j, "status");
    if (o->st.decided) cJSON_AddNumberToObject(st, "desiredReplicas", o->st.replicas);
    else cJSON_AddNullToObject(st, "desiredReplicas");
    cJSON_AddBoolToObject(st, "active", o->st.active);
    cJSON_AddBoolToObject(st, "fallback", o->st.fallback_on);
    cJSON_AddBoolToObject(st, "paused", so->paused);
    if (so->paused_replicas >= 0) cJSON_AddNumberToObject(st, "pausedReplicas", so->paused_replicas);
    if (so->formula && o->st.decided && isfinite(o->st.composite))
        cJSON_AddNumberToObject(st, "compositeValue", o->st.composite);
    else if (so->formula)
        cJSON_AddNullToObject(st, "compositeValue");
    add_time(st, "lastPollTime", o->last_poll_ms);
    add_time(st, "lastActiveTime", o->last_active_ms);
    const char *last_error = NULL;
    cJSON *ts = cJSON_AddArrayToObject(st, "triggers");
    for (uint32_t i = 0; i < so->ntriggers; i++) {
        const kd_trigger_t *t = &so->triggers[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "type", kd_type_name(t->type));
        cJSON_AddStringToObject(e, "metricType", metric_type_name(t->metric_type));
        cJSON_AddNumberToObject(e, "target", t->target);
        cJSON_AddNumberToObject(e, "activationTarget", t->activation);
        if (t->auth_ref) {
            cJSON_AddStringToObject(e, "authenticationRef", t->auth_ref);
            cJSON_AddStringToObject(e, "authenticationRefKind", kd_auth_kind_name(t->auth_cluster));
        }
        cJSON_AddBoolToObject(e, "active", o->st.trig_active[i]);
        if (o->last_poll_ms && o->last[i].ok) cJSON_AddNumberToObject(e, "value", o->last[i].value);
        else if (o->last_poll_ms && o->st.failures[i] == 0) cJSON_AddNumberToObject(e, "value", 0);
        else cJSON_AddNullToObject(e, "value");
        cJSON_AddNumberToObject(e, "failures", o->st.failures[i]);
        if (o->last_poll_ms && !o->last[i].ok) {
            cJSON_AddStringToObject(e, "error", o->last[i].err);
            if (!last_error) last_error = o->last[i].err;
        }
        cJSON_AddItemToArray(ts, e);
    }
    if (last_error) cJSON_AddStringToObject(st, "lastError", last_error);
    else cJSON_AddNullToObject(st, "lastError");
    return j;
}

char *kd_status_json(kd_t *k, const char *name)
{
    cJSON *out = NULL;
    pthread_mutex_lock(&k->mu);
    if (name) {
        kd_obj_t *o = obj_find(k, name);
        if (o) out = obj_json(o);
    } else {
        out = cJSON_CreateArray();
        /* By name, as the store lists them. */
        for (;;) {
            const kd_obj_t *next = NULL;
            const cJSON *last = cJSON_GetArrayItem(out, cJSON_GetArraySize(out) - 1);
            const char *after = last ? cJSON_GetObjectItemCaseSensitive(last, "name")->valuestring : NULL;
            for (kd_obj_t *o = k->objs; o; o = o->next)
                if ((!after || strcmp(o->so.name, after) > 0) &&
                    (!next || strcmp(o->so.name, next->so.name) < 0))
                    next = o;
            if (!next) break;
            cJSON_AddItemToArray(out, obj_json(next));
        }
    }
    pthread_mutex_unlock(&k->mu);
    char *s = out ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    return s;
}
