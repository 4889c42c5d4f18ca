/*
 * types.c — the trigger types wasmfn reads: their names as KEDA spells
 * them, and which of them are Redis (one server, a Cluster, a Sentinel;
 * lists or streams).
 */
#include <string.h>

#include "keda/parse.h"

const char kd_types_supported[] =
    "prometheus, cpu, memory, cron, redis, redis-streams, nats-jetstream, rabbitmq, "
    "metrics-api, redis-cluster, redis-cluster-streams, redis-sentinel, redis-sentinel-streams, "
    "postgresql, mysql";

static const char *const type_names[] = {
    [KD_PROMETHEUS] = "prometheus",         [KD_CPU] = "cpu",
    [KD_MEMORY] = "memory",                 [KD_CRON] = "cron",
    [KD_REDIS_STREAMS] = "redis-streams",   [KD_NATS_JETSTREAM] = "nats-jetstream",
    [KD_RABBITMQ] = "rabbitmq",             [KD_REDIS_LISTS] = "redis",
    [KD_METRICS_API] = "metrics-api",
    [KD_REDIS_CLUSTER_LISTS] = "redis-cluster",
    [KD_REDIS_CLUSTER_STREAMS] = "redis-cluster-streams",
    [KD_REDIS_SENTINEL_LISTS] = "redis-sentinel",
    [KD_REDIS_SENTINEL_STREAMS] = "redis-sentinel-streams",
    [KD_POSTGRESQL] = "postgresql",
    [KD_MYSQL] = "mysql",
};

const char *kd_type_name(kd_type_t t) { return type_names[t]; }

bool kd_type_redis_list(kd_type_t t)
{
    return t == KD_REDIS_LISTS || t == KD_REDIS_CLUSTER_LISTS || t == KD_REDIS_SENTINEL_LISTS;
}

bool kd_type_redis_cluster(kd_type_t t)
{
    return t == KD_REDIS_CLUSTER_LISTS || t == KD_REDIS_CLUSTER_STREAMS;
}

bool kd_type_redis_sentinel(kd_type_t t)
{
    return t == KD_REDIS_SENTINEL_LISTS || t == KD_REDIS_SENTINEL_STREAMS;
}

bool kd_type_redis(kd_type_t t)
{
    return t == KD_REDIS_STREAMS || kd_type_redis_list(t) || kd_type_redis_cluster(t) ||
           kd_type_redis_sentinel(t);
}

bool kd_type_parse(const char *name, kd_type_t *out)
{
    for (size_t k = 0; k < sizeof type_names / sizeof type_names[0]; k++)
        if (strcmp(name, type_names[k]) == 0) {
            *out = (kd_type_t)k;
            return true;
        }
    return false;
}
