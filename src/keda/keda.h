/*
 * keda.h — KEDA's ScaledObject (keda.sh/v1alpha1): event-driven scaling of
 * a Service's instances by the metrics of its triggers (Prometheus
 * queries, CPU and memory utilization, cron windows, Redis stream
 * backlogs and list lengths, NATS JetStream consumers, RabbitMQ queues,
 * numbers in any HTTP API's JSON). Prefix: kd_.
 *
 * Three layers, one file each:
 *   scaledobject.c  the manifest into a typed kd_scaledobject_t (pure; the
 *                   credentials of a trigger's authenticationRef come from
 *                   a resolver the caller gives, triggerauth.c checks the
 *                   (Cluster)TriggerAuthentications themselves, and
 *                   formula.c parses scalingModifiers.formula);
 *   rules.c         KEDA's and the HPA's arithmetic: trigger values into a
 *                   replica count (pure, no clock: tests drive it);
 *   manager.c       the objects the daemon runs: poller threads that read
 *                   the triggers (prometheus.c, redis.c, nats.c,
 *                   rabbitmq.c, metricsapi.c, and cron/cpu/memory in
 *                   triggers.c) and hand each decision to the loop thread,
 *                   which applies it to the data plane through
 *                   kd_config_t.set_replicas.
 *
 * Replicas are the target Service's instances (docs/scaling.md): while a
 * ScaledObject holds a Service its triggers decide how many instances its
 * routed revisions keep warm and may run at once, and the Knative
 * autoscaler steps aside; deleting the ScaledObject hands scaling back.
 */
#ifndef WASMFN_KEDA_H
#define WASMFN_KEDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "common/metrics.h"

/* KEDA's defaults and wasmfn's bounds. */
#define KD_DEFAULT_POLLING_S 30u
#define KD_DEFAULT_COOLDOWN_S 300u
#define KD_DEFAULT_MAX_REPLICAS 100u
#define KD_MAX_REPLICAS 100000u        /* as the max-scale annotation */
#define KD_MAX_TRIGGERS 16u
#define KD_DEFAULT_DOWN_WINDOW_S 300u  /* the HPA's scale-down stabilization */
#define KD_MAX_WINDOW_S 3600u
#define KD_TRIGGER_TIMEOUT_MS 3000u    /* per trigger read: KEDA's HTTP default */
#define KD_POLL_THREADS 4u
#define KD_MAX_POLICIES 8u             /* per direction */
#define KD_MAX_LOCATION 255u          /* metrics-api valueLocation, in bytes */
#define KD_MAX_REDIS_NODES 16u        /* a Redis trigger's addresses */
#define KD_MAX_FROM_ENV 16u           /* ...FromEnv parameters per trigger */
#define KD_MAX_ENV_NAME 255u          /* an environment variable's name, in bytes */
#define KD_MAX_POLICY_PERIOD_S 1800u   /* the HPA's bound on periodSeconds */

/* ---- the manifest (scaledobject.c) -------------------------------------- */

typedef enum kd_type {
    KD_PROMETHEUS,
    KD_CPU,
    KD_MEMORY,
    KD_CRON,
    KD_REDIS_STREAMS,
    KD_NATS_JETSTREAM,
    KD_RABBITMQ,
    KD_REDIS_LISTS, /* KEDA's "redis": a list's length */
    KD_METRICS_API, /* a number in any HTTP API's JSON answer */
    /* The same two Redis readings from a Redis Cluster (any node's address
     * will do: the reader follows MOVED and ASK) or from the master a
     * Redis Sentinel names. */
    KD_REDIS_CLUSTER_LISTS,    /* "redis-cluster" */
    KD_REDIS_CLUSTER_STREAMS,  /* "redis-cluster-streams" */
    KD_REDIS_SENTINEL_LISTS,   /* "redis-sentinel" */
    KD_REDIS_SENTINEL_STREAMS, /* "redis-sentinel-streams" */
    KD_POSTGRESQL,             /* a query's number */
    KD_MYSQL,                  /* the same from MySQL or MariaDB */
} kd_type_t;

/* The Redis triggers: every one of them; those that read a list's
 * length; those behind a Sentinel; those of a Cluster. */
bool kd_type_redis(kd_type_t t);
bool kd_type_redis_list(kd_type_t t);
bool kd_type_redis_sentinel(kd_type_t t);
bool kd_type_redis_cluster(kd_type_t t);

/* How a trigger's value becomes replicas (the HPA's metric target types). */
typedef enum kd_metric_type {
    KD_AVERAGE_VALUE, /* ceil(value / target): target per replica (the default) */
    KD_VALUE,         /* ceil(replicas * value / target): target for the total */
    KD_UTILIZATION,   /* cpu, memory: value is usage as a percent of one
                       * instance's request, target a percent */
} kd_metric_type_t;

enum { KD_REDIS_PENDING, KD_REDIS_LAG, KD_REDIS_LENGTH };

/* metrics-api's format: how the answer is read at valueLocation. */
enum { KD_FORMAT_JSON, KD_FORMAT_YAML, KD_FORMAT_PROMETHEUS };

typedef struct kd_trigger {
    kd_type_t type;
    char name[64];          /* its `name`, else "s<index>-<type>" as KEDA names metrics */
    kd_metric_type_t metric_type;
    double target;          /* threshold, value, lagCount, ... (> 0) */
    double activation;      /* activationThreshold and kin: active when value > it */
    /* What to read, by type (NULL when unused); every string malloc'd. */
    char *url;     /* prometheus serverAddress; rabbitmq host; nats server URL; redis
                    * host:port; Redis Cluster nodes or Sentinels: host:port,host:port */
    char *query;   /* prometheus; postgresql, mysql */
    char *stream;  /* redis-streams, nats-jetstream; redis: the listName */
    char *group;   /* redis consumerGroup; nats consumer */
    char *queue;   /* rabbitmq queueName */
    char *vhost;   /* rabbitmq vhostName (overrides the one in host) */
    char *account; /* nats-jetstream */
    char *bearer, *username, *password; /* prometheus authModes; redis username, password */
    char *sentinel_master;  /* redis-sentinel*: the master's name, */
    char *sentinel_username, *sentinel_password; /* and the Sentinels' credentials */
    char *headers; /* prometheus customHeaders: "K=V,K2=V2" */
    char *location;  /* metrics-api valueLocation: a GJSON path (at most KD_MAX_LOCATION) */
    char *api_key;   /* metrics-api authMode apiKey: the key, */
    char *key_param; /* the header or query parameter that carries it */
    bool key_in_query;
    int format;      /* metrics-api: KD_FORMAT_* */
    char *tls_ca, *tls_cert, *tls_key; /* metrics-api: PEM text (authMode tls; ca with any) */
    /* postgresql, mysql: a connection string, or the parts beside url (the
     * host), username and password (sslmode: postgresql's). */
    char *db_connection, *db_port, *db_name, *db_sslmode;
    char *tz, *start, *end; /* cron */
    char *auth_ref;         /* authenticationRef.name: a TriggerAuthentication */
    bool auth_cluster;      /* ... or, with kind ClusterTriggerAuthentication, one of those */
    char *auth_err;         /* why auth_ref did not resolve (no value in it); the
                             * trigger's every read fails with it */
    char *env_err;          /* why a ...FromEnv parameter did not resolve (no value
                             * in it); the same */
    uint32_t desired_replicas; /* cron */
    int redis_mode;         /* KD_REDIS_* */
    uint32_t redis_db;
    bool ignore_null;       /* prometheus ignoreNullValues (default true) */
    bool unsafe_ssl;
    bool rate;              /* rabbitmq mode MessageRate */
} kd_trigger_t;

/* One of the HPA's scaling policies: in any periodSeconds, change by at
 * most value instances (Pods) or value percent of the count at the
 * period's start (Percent). */
typedef struct kd_policy {
    bool percent;
    uint32_t value;
    uint32_t period_s;
} kd_policy_t;

typedef enum kd_select { KD_SELECT_MAX, KD_SELECT_MIN, KD_SELECT_DISABLED } kd_select_t;

/* behavior.scaleUp or .scaleDown, with the HPA's defaults filled in. */
typedef struct kd_rules {
    uint32_t window_s;       /* stabilizationWindowSeconds */
    kd_select_t select;      /* selectPolicy: the policy allowing the most
                              * change (Max), the least (Min), or none */
    kd_policy_t policies[KD_MAX_POLICIES];
    uint32_t npolicies;
} kd_rules_t;

/* spec.fallback.behavior: what the fallback gives, from fallback.replicas
 * and the count the target has. */
typedef enum kd_fallback_behavior {
    KD_FALLBACK_STATIC,            /* fallback.replicas (the default) */
    KD_FALLBACK_CURRENT,           /* the count it has */
    KD_FALLBACK_CURRENT_IF_HIGHER, /* the larger of the two */
    KD_FALLBACK_CURRENT_IF_LOWER,  /* the smaller of the two */
} kd_fallback_behavior_t;

/* advanced.scalingModifiers.formula, parsed (formula.c). */
typedef struct kd_formula kd_formula_t;

typedef struct kd_scaledobject {
    char *name;
    char *target;            /* spec.scaleTargetRef.name: a Service */
    uint32_t min_replicas, max_replicas;
    int32_t idle_replicas;   /* -1: not set */
    /* KEDA's pause annotations: autoscaling.keda.sh/paused-replicas holds
     * the target at paused_replicas (>= 0; -1: not set), .../paused: "true"
     * where it is; either way no trigger is read. */
    bool paused;
    int32_t paused_replicas;
    /* Not from the document: the count paused "where it is" held before a
     * restart (the caller sets it from the store; -1: none). */
    int32_t held_replicas;
    uint32_t polling_s, cooldown_s, initial_cooldown_s;
    bool fallback;
    uint32_t fallback_failures, fallback_replicas;
    kd_fallback_behavior_t fallback_behavior;
    /* advanced.horizontalPodAutoscalerConfig.behavior */
    kd_rules_t up, down;
    kd_trigger_t *triggers;
    uint32_t ntriggers;
    /* advanced.scalingModifiers: with a formula, the triggers' values make
     * one composite value, which alone decides activity (above
     * mod_activation) and replicas (against mod_target, by mod_metric). */
    kd_formula_t *formula;
    double mod_target, mod_activation;
    kd_metric_type_t mod_metric;
    char **warnings;         /* "FIELD: what was ignored" */
    uint32_t nwarnings;
} kd_scaledobject_t;

/* One credential a TriggerAuthentication gives a trigger: the metadata
 * parameter it stands for and its value, in clear (both malloc'd). */
typedef struct kd_auth_param {
    char *parameter;
    char *value;
} kd_auth_param_t;

/* Resolves TriggerAuthentication `name` (with cluster, the
 * ClusterTriggerAuthentication of that name) into its parameters (*params,
 * *n: malloc'd, freed by the caller with kd_auth_params_free), or returns
 * -1 with a reason in err that names objects and keys, never a value.
 * service is the Service the ScaledObject scales: where its env sources
 * are read. */
typedef int (*kd_auth_resolve_fn)(void *ud, const char *name, bool cluster, const char *service,
                                  kd_auth_param_t **params, uint32_t *n, char *err, size_t errlen);
/* Wipes and frees params. */
void kd_auth_params_free(kd_auth_param_t *params, uint32_t n);

/* Resolves environment variable var of Service service (its latest
 * revision's env, values from Secrets and ConfigMaps included) for a
 * trigger's ...FromEnv parameter: 0 with *value (malloc'd; the caller
 * wipes and frees it), or -1 with a reason in err that names the Service
 * and the variable, never a value. */
typedef int (*kd_env_resolve_fn)(void *ud, const char *service, const char *var, char **value,
                                 char *err, size_t errlen);

/* What a ScaledObject's references are resolved with: authenticationRefs
 * and ...FromEnv parameters. Either may be NULL: the triggers that need it
 * then fail each read, saying so. */
typedef struct kd_resolvers {
    kd_auth_resolve_fn auth;
    kd_env_resolve_fn env;
    void *ud;
} kd_resolvers_t;

/* True for apiVersion keda.sh/v1alpha1 (any keda.sh version), kind
 * ScaledObject. */
bool kd_handles_kind(const char *api_version, const char *kind);
/* Validates a ScaledObject document (the YAML's shape, as JSON) into out.
 * Returns 0, or -1 with "FIELD.PATH: what is wrong" in err; an unknown
 * trigger type names the supported ones. Unknown fields are warnings.
 * A trigger's authenticationRef is resolved with rs->auth, its ...FromEnv
 * parameters with rs->env (rs may be NULL: such a trigger then fails each
 * read, saying so). The credentials a TriggerAuthentication gives win over
 * the metadata's, which win over the environment's; a reference that does
 * not resolve is not an error here but the trigger's auth_err or env_err.
 * No message from here holds a credential. Free with kd_scaledobject_free
 * (also after a failure): it wipes the credentials. */
int kd_scaledobject_parse(const cJSON *doc, const kd_resolvers_t *rs, kd_scaledobject_t *out,
                          char *err, size_t errlen);
void kd_scaledobject_free(kd_scaledobject_t *so);
/* The authenticationRefs of doc's triggers (a ScaledObject as JSON), for
 * finding who uses a TriggerAuthentication (with cluster, a
 * ClusterTriggerAuthentication): true when one names it (any reference of
 * either kind, when name is NULL). */
bool kd_scaledobject_uses_auth(const cJSON *doc, const char *name, bool cluster);
/* True when a trigger of doc (a ScaledObject as JSON) has a ...FromEnv
 * parameter: its values follow the target Service's env. */
bool kd_scaledobject_uses_env(const cJSON *doc);

/* ---- TriggerAuthentication (triggerauth.c) ------------------------------- */

/* Where one parameter's value comes from: key `key` of v1 Secret (or, with
 * configmap, ConfigMap) `object`. */
typedef struct kd_auth_ref {
    char *parameter;
    char *object;   /* the Secret or ConfigMap; with env, the variable's name */
    char *key;      /* NULL with env */
    bool configmap;
    bool env;       /* spec.env: a variable of the ScaledObject's target Service */
} kd_auth_ref_t;

typedef struct kd_triggerauth {
    char *name;
    bool cluster;             /* a ClusterTriggerAuthentication */
    kd_auth_ref_t *refs;
    uint32_t nrefs;
    char **warnings;
    uint32_t nwarnings;
} kd_triggerauth_t;

#define KD_MAX_AUTH_REFS 32u

/* True for apiVersion keda.sh/..., kind TriggerAuthentication or
 * ClusterTriggerAuthentication. */
bool kd_handles_auth_kind(const char *api_version, const char *kind);
/* "TriggerAuthentication", or with cluster "ClusterTriggerAuthentication". */
const char *kd_auth_kind_name(bool cluster);
/* Validates a TriggerAuthentication or a ClusterTriggerAuthentication (the
 * same spec; wasmfn has one namespace, so the two kinds differ only in
 * that each has names of its own, and a trigger says which kind it
 * means; out->cluster says which it is): spec.secretTargetRef[] and
 * spec.configMapTargetRef[] ({parameter, name, key}); the other ways KEDA
 * has to find credentials (env, hashiCorpVault, podIdentity, ...) are
 * warnings. 0, or -1 with "FIELD: what is wrong" in err. Free with
 * kd_triggerauth_free (also after a failure). */
int kd_triggerauth_parse(const cJSON *doc, kd_triggerauth_t *out, char *err, size_t errlen);
void kd_triggerauth_free(kd_triggerauth_t *ta);
/* "prometheus", "cpu", ... */
const char *kd_type_name(kd_type_t t);

/* ---- scalingModifiers.formula (formula.c) -------------------------------- */

/* Parses text over the names of triggers[0..n): NULL with "at N: what" in
 * err when it is not a formula this understands. */
kd_formula_t *kd_formula_parse(const char *text, const kd_trigger_t *triggers, uint32_t n,
                               char *err, size_t errlen);
/* Its value for the triggers' values (values[i] for triggers[i]). */
double kd_formula_eval(const kd_formula_t *f, const double *values);
void kd_formula_free(kd_formula_t *f);

/* ---- the rules (rules.c) ------------------------------------------------ */

/* One trigger's reading at a poll. */
typedef struct kd_sample {
    bool ok;          /* false: the read failed (err says why) */
    double value;
    char err[256];
} kd_sample_t;

/* What the rules remember of one ScaledObject between polls. */
typedef struct kd_state {
    uint32_t replicas;        /* the current decision */
    bool decided;             /* replicas holds a decision */
    uint64_t created_ns;
    uint64_t last_active_ns;  /* 0: never active */
    bool active;              /* some trigger was active at the last poll */
    bool fallback_on;         /* the last decision was the fallback */
    double composite;         /* the formula's value at the last poll (scalingModifiers) */
    uint32_t ntriggers;
    uint32_t *failures;       /* consecutive failed reads, per trigger */
    bool *trig_active;        /* per trigger, kept through failed reads */
    double *trig_value;
    uint32_t *trig_want;
    /* HPA recommendations within the longer stabilization window. */
    struct kd_rec { uint64_t at_ns; uint32_t n; } *recs;
    uint32_t nrecs, recs_cap;
    /* The changes the HPA made within its longest policy period. */
    struct kd_change { uint64_t at_ns; int32_t delta; } *changes;
    uint32_t nchanges, changes_cap;
} kd_state_t;

/* Sizes st for so. -1 when out of memory. */
int kd_state_init(kd_state_t *st, const kd_scaledobject_t *so, uint64_t now_ns);
void kd_state_free(kd_state_t *st);
/* A ScaledObject applied again for the same target goes on from where the
 * old one was: its decision, activity and the HPA's histories (the
 * stabilization windows' recommendations, the policies' changes), so
 * applying it again, or its Service (whose env its ...FromEnv may read),
 * neither restarts it from zero nor lets it skip a window. to is fresh
 * from kd_state_init. */
void kd_state_carry(kd_state_t *to, const kd_state_t *from);
/* One poll's decision: samples[i] is trigger i's reading (so->ntriggers of
 * them). Returns the replicas the target should have and updates st
 * (docs/scaling.md states the rules). */
uint32_t kd_decide(const kd_scaledobject_t *so, kd_state_t *st, const kd_sample_t *samples,
                   uint64_t now_ns);

/* ---- the running objects (manager.c) ------------------------------------ */

typedef struct kd kd_t;

/* What a Service's instances used (cumulative), for cpu and memory. */
typedef struct kd_usage {
    uint64_t cpu_ns;
    uint64_t memory_kib_ms;
    uint32_t cpu_request_millis;   /* 0: none */
    uint64_t memory_request_bytes;
} kd_usage_t;

typedef struct kd_config {
    uv_loop_t *loop;
    mx_registry_t *metrics;  /* may be NULL */
    /* Loop thread: hold service at replicas (>= 0), or hand it back (-1). */
    int (*set_replicas)(void *ud, const char *service, int32_t replicas);
    /* Poller threads (thread-safe): 0, or -1 when there is no such Service. */
    int (*usage)(void *ud, const char *service, kd_usage_t *out);
    void *ud;
    uint32_t poll_threads;   /* 0 = KD_POLL_THREADS */
} kd_config_t;

/* Starts the poller threads. NULL with err on failure. */
kd_t *kd_new(const kd_config_t *c, char *err, size_t errlen);
/* Stops the threads (a read in flight finishes, bounded by its timeout)
 * and frees every object. Loop thread. Services are not handed back (the
 * daemon is stopping). */
void kd_free(kd_t *k);
/* The ScaledObject other than `name` that holds Service target, or NULL
 * (KEDA allows one per workload). The string lives until the next kd_
 * call. Loop thread. */
const char *kd_target_owner(kd_t *k, const char *target, const char *name);
/* The count ScaledObject name decides for Service target now: true with
 * *replicas once it has decided one. Loop thread. */
bool kd_decided(kd_t *k, const char *name, const char *target, uint32_t *replicas);
/* Starts (or replaces, by name) a ScaledObject; takes *so (emptied).
 * Its first poll is now. Paused "where it is", it holds what the object it
 * replaces decided, else so->held_replicas when set. Loop thread. -1 when
 * out of memory. */
int kd_apply(kd_t *k, kd_scaledobject_t *so);
/* Stops it and hands its Service back. -1 if there is none. Loop thread. */
int kd_delete(kd_t *k, const char *name);
/* The status of one (name) or all (NULL: an array) as JSON, malloc'd; NULL
 * when there is no such object. Loop thread. */
char *kd_status_json(kd_t *k, const char *name);

#endif
