/*
 * core.h — the ev_t object and the eventing objects it holds, shared by
 * eventing's files (eventing.c, objects.c, apply.c, ping.c, broker.c,
 * drain.c). Private to src/eventing/; consumers do not see it (they get
 * an ev_consumer_ctx_t).
 */
#ifndef WASMFN_EVENTING_CORE_H
#define WASMFN_EVENTING_CORE_H

#include <hiredis/hiredis.h>

#include "eventing/internal.h"
#include "store/events.h"

enum { OBJ_PING, OBJ_REDIS, OBJ_BROKER, OBJ_TRIGGER,
       OBJ_NATS, OBJ_MQTT, OBJ_RABBIT, /* external feeds (sources.h) */
       OBJ_NKINDS };

/* apiVersion and kind of each object kind (objects.c). */
typedef struct ev_kind_name {
    const char *api, *kind;
} ev_kind_name_t;
extern const ev_kind_name_t ev_kinds[OBJ_NKINDS];

typedef struct obj {
    struct obj *next;
    int kind;
    char name[128];
    char *doc;              /* the applied document, compact JSON */
    ev_consumer_t *consumer;
    /* PingSource */
    ev_cron_t cron;
    uv_timer_t *timer;
    int64_t next_fire_ms, last_fire_ms;
    ev_event_t *tmpl;       /* data, datacontenttype, extensions */
    /* Trigger */
    char broker[128];
    ev_filter_t filter;
    bool has_delivery;
    /* Broker */
    ev_delivery_t delivery;
    cJSON *delivery_json;
    struct ev *ev;
} obj_t;

typedef struct ingress_job {
    struct ingress_job *next;
    hs_req_t *req;
    char broker[128];
    ev_event_t *event;
    int status;
    char error[256];
} ingress_job_t;

struct ev {
    uv_loop_t *loop;
    char data_dir[1024];
    char redis_host[256];
    int redis_port; /* 0: no --redis */
    int (*sink_max_scale)(void *, const char *);
    void *sink_ud;
    size_t max_event_bytes;
    size_t queue_max_bytes_per_trigger, queue_max_bytes;
    size_t queue_bytes; /* held by every memory feed; atomic (any thread) */
    char consumer_name[128];

    st_events_t *store;     /* DATA/eventing.db (store/events.h) */
    ev_deliverer_t *deliverer;
    ev_local_t *local;      /* Service sinks in this process (local.c), or NULL */

    ev_consumer_ctx_t cctx; /* what every consumer gets (filled by ev_new) */

    pthread_rwlock_t objs_lock; /* writes: loop thread; reads: consumers */
    obj_t *objs;

    /* metrics (NULL without a registry) */
    mx_family_t *m_events, *m_src_backlog, *m_src_par, *m_trg_backlog, *m_trg_par, *m_ingress;

    /* consumer threads alive (drain waits for 0) */
    pthread_mutex_t live_mu;
    pthread_cond_t live_cv;
    int live;

    /* broker ingress with --redis */
    pthread_t pub_thread;
    bool pub_started;
    pthread_mutex_t pub_mu; /* guards the two queues and pub_stop */
    pthread_cond_t pub_cv;
    ingress_job_t *pub_queue, *pub_done;
    bool pub_stop;
    int pub_pending; /* loop thread: jobs not answered yet */
    uv_async_t *pub_async;
    uv_timer_t *drain_timer;

    bool draining, drained;
    void (*drain_done)(void *);
    void *drain_ud;
    int open_handles;
    bool freed;
};

/* Writes the message into err (errlen) and jumps to the function's fail:
 * label (object parsing and applying). */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

/* ---- shared between ev_t's files ---- */

/* objects.c */
obj_t *ev_obj_find(ev_t *ev, int kind, const char *name);
void ev_obj_free(obj_t *o, bool deleted);
const char *ev_str_field(const cJSON *o, const char *name);
int ev_annotation_int(const cJSON *doc, const char *key, const char *alt, int dflt, char *err,
                          size_t errlen);
bool ev_name_ok(const char *n);
int ev_obj_parse(ev_t *ev, obj_t *o, const cJSON *doc, cJSON *warnings, char *err,
                     size_t errlen);

/* ping.c */
void ev_ping_arm(obj_t *o);


/* apply.c */
int ev_apply_doc(ev_t *ev, const cJSON *doc, bool persist, bool *created, cJSON *warnings,
                 char *err, size_t errlen);

/* broker.c */
void *ev_publisher_main(void *arg);
void ev_pub_async_cb(uv_async_t *a);

/* objects.c: closes the handle of a timer or async (frees it). */
void ev_timer_closed(uv_handle_t *h);

/* apply.c: the consumers' context callbacks (ev_consumer_ctx_t). */
int ev_ctx_publish(void *ud, const char *broker, const ev_event_t *e, redisContext *redis,
                   char *err, size_t errlen);
void ev_ctx_exited(void *ud);

/* drain.c: stops and frees every object (their consumers stop on their
 * own); ev_maybe_drained runs ev_drain's callback once nothing is left. */
void ev_stop_objects(ev_t *ev);
void ev_maybe_drained(ev_t *ev);

#endif
