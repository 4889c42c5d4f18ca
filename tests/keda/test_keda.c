/*
 * test_keda.c — KEDA's ScaledObject (src/keda/) without servers: the
 * manifest's checks and defaults, the decision rules on injected readings
 * and times, and the pieces of the triggers that need no server
 * (Prometheus's answer, cron windows, cpu utilization, quantities).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/quantity.h"
#include "keda/internal.h"
#include "keda/keda.h"

#define S(x) ((uint64_t)(x) * 1000000000ull)

/* JSON written with single quotes, for readability. */
static cJSON *doc_of(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    return j;
}

/* A ScaledObject around spec_extra (",..." spec members) and triggers. */
static cJSON *so_doc(const char *spec_extra, const char *triggers)
{
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{'apiVersion':'keda.sh/v1alpha1','kind':'ScaledObject','metadata':{'name':'s'},"
             "'spec':{'scaleTargetRef':{'name':'hello'}%s,'triggers':[%s]}}",
             spec_extra, triggers);
    return doc_of(buf);
}

#define PROM "{'type':'prometheus','metadata':{'serverAddress':'http://p:9090','query':'q','threshold':'5'}}"

static void parse_ok(cJSON *d, kd_scaledobject_t *so)
{
    char err[512];
    if (kd_scaledobject_parse(d, NULL, so, err, sizeof err) != 0) fail_msg("unexpected error: %s", err);
    cJSON_Delete(d);
}

static void expect_error(cJSON *d, const char *want)
{
    kd_scaledobject_t so;
    char err[512];
    int rc = kd_scaledobject_parse(d, NULL, &so, err, sizeof err);
    kd_scaledobject_free(&so);
    cJSON_Delete(d);
    if (rc == 0) fail_msg("expected an error containing '%s', got success", want);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
}

static bool has_warning(const kd_scaledobject_t *so, const char *prefix)
{
    for (uint32_t i = 0; i < so->nwarnings; i++)
        if (strncmp(so->warnings[i], prefix, strlen(prefix)) == 0) return true;
    return false;
}

/* ---- the manifest ------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    parse_ok(so_doc("", PROM), &so);
    assert_string_equal(so.name, "s");
    assert_string_equal(so.target, "hello");
    assert_int_equal(so.min_replicas, 0);
    assert_int_equal(so.max_replicas, 100);
    assert_int_equal(so.idle_replicas, -1);
    assert_int_equal(so.polling_s, 30);
    assert_int_equal(so.cooldown_s, 300);
    assert_int_equal(so.down.window_s, 300);
    assert_int_equal(so.up.window_s, 0);
    /* The HPA's default policies. */
    assert_int_equal(so.up.select, KD_SELECT_MAX);
    assert_int_equal(so.up.npolicies, 2);
    assert_true(so.up.policies[0].percent && so.up.policies[0].value == 100 &&
                so.up.policies[0].period_s == 15);
    assert_true(!so.up.policies[1].percent && so.up.policies[1].value == 4 &&
                so.up.policies[1].period_s == 15);
    assert_int_equal(so.down.npolicies, 1);
    assert_true(so.down.policies[0].percent && so.down.policies[0].value == 100);
    assert_int_equal(so.ntriggers, 1);
    const kd_trigger_t *t = &so.triggers[0];
    assert_int_equal(t->type, KD_PROMETHEUS);
    assert_string_equal(t->name, "s0-prometheus");
    assert_int_equal(t->metric_type, KD_AVERAGE_VALUE);
    assert_true(t->target == 5);
    assert_true(t->activation == 0);
    assert_true(t->ignore_null);
    assert_int_equal(so.nwarnings, 0);
    kd_scaledobject_free(&so);
}

static void test_every_field(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    parse_ok(so_doc(",'pollingInterval':5,'cooldownPeriod':60,'minReplicaCount':2,"
                    "'maxReplicaCount':7,'idleReplicaCount':0,'initialCooldownPeriod':10,"
                    "'fallback':{'failureThreshold':3,'replicas':4},"
                    "'advanced':{'restoreToOriginalReplicaCount':true,'horizontalPodAutoscalerConfig':"
                    "{'behavior':{'scaleUp':{'stabilizationWindowSeconds':30,'policies':[{'type':'Pods','value':1,'periodSeconds':15}]},"
                    "'scaleDown':{'stabilizationWindowSeconds':0,'selectPolicy':'Disabled'}}}},"
                    "'extraThing':1",
                    "{'type':'prometheus','name':'rps','metadata':{'serverAddress':'https://p','query':'q',"
                    "'threshold':2.5,'activationThreshold':'1','ignoreNullValues':'false',"
                    "'authModes':'bearer','bearerToken':'tok'},'authenticationRef':{'name':'x'}},"
                    "{'type':'redis-streams','metadata':{'host':'r','port':6380,'stream':'s','consumerGroup':'g','lagCount':'10'}},"
                    "{'type':'nats-jetstream','metadata':{'natsServerMonitoringEndpoint':'nats.ns.svc:8222','stream':'st','consumer':'c'}},"
                    "{'type':'rabbitmq','metadata':{'host':'amqp://u:p@h:5672/v','queueName':'q','value':'20'}},"
                    "{'type':'cron','metadata':{'timezone':'Europe/Paris','start':'0 8 * * *','end':'0 18 * * *','desiredReplicas':'3'}}"),
             &so);
    assert_int_equal(so.polling_s, 5);
    assert_int_equal(so.cooldown_s, 60);
    assert_int_equal(so.min_replicas, 2);
    assert_int_equal(so.max_replicas, 7);
    assert_int_equal(so.idle_replicas, 0);
    assert_int_equal(so.initial_cooldown_s, 10);
    assert_true(so.fallback);
    assert_int_equal(so.fallback_failures, 3);
    assert_int_equal(so.fallback_replicas, 4);
    assert_int_equal(so.up.window_s, 30);
    assert_int_equal(so.down.window_s, 0);
    assert_int_equal(so.down.select, KD_SELECT_DISABLED);
    assert_int_equal(so.up.select, KD_SELECT_MAX);
    assert_int_equal(so.up.npolicies, 1);
    assert_true(!so.up.policies[0].percent && so.up.policies[0].value == 1 &&
                so.up.policies[0].period_s == 15);
    assert_int_equal(so.ntriggers, 5);
    assert_string_equal(so.triggers[0].name, "rps");
    assert_true(so.triggers[0].target == 2.5);
    assert_true(so.triggers[0].activation == 1);
    assert_false(so.triggers[0].ignore_null);
    assert_string_equal(so.triggers[0].bearer, "tok");
    assert_string_equal(so.triggers[1].url, "r:6380");
    assert_int_equal(so.triggers[1].redis_mode, KD_REDIS_LAG);
    assert_true(so.triggers[1].target == 10);
    assert_string_equal(so.triggers[2].url, "nats://nats.ns.svc:4222");
    assert_true(so.triggers[2].target == 10); /* lagThreshold's default */
    assert_false(so.triggers[3].rate);
    assert_int_equal(so.triggers[4].desired_replicas, 3);
    assert_true(has_warning(&so, "spec.extraThing: not supported"));
    /* No resolver here: the trigger keeps its name and fails each read. */
    assert_string_equal(so.triggers[0].auth_ref, "x");
    assert_non_null(so.triggers[0].auth_err);
    assert_false(has_warning(&so, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies"));
    assert_false(has_warning(&so, "spec.advanced.restoreToOriginalReplicaCount"));
    kd_scaledobject_free(&so);
}

/* KEDA's redis trigger (a list's length): its defaults, and host and port
 * instead of address. */
static void test_redis_lists(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'redis','metadata':{'address':'r:6379','listName':'jobs'}},"
                        "{'type':'redis','metadata':{'host':'cache','port':'6380','listName':'l2',"
                        "'listLength':'20','activationListLength':'3','databaseIndex':'2',"
                        "'unsafeSsl':'false'}}"),
             &so);
    assert_int_equal(so.ntriggers, 2);
    const kd_trigger_t *t = &so.triggers[0];
    assert_int_equal(t->type, KD_REDIS_LISTS);
    assert_string_equal(t->name, "s0-redis");
    assert_string_equal(t->url, "r:6379");
    assert_string_equal(t->stream, "jobs");
    assert_true(t->target == 5);      /* listLength's default */
    assert_true(t->activation == 0);
    assert_int_equal(t->redis_db, 0);
    t = &so.triggers[1];
    assert_string_equal(t->url, "cache:6380");
    assert_string_equal(t->stream, "l2");
    assert_true(t->target == 20);
    assert_true(t->activation == 3);
    assert_int_equal(t->redis_db, 2);
    assert_true(has_warning(&so, "spec.triggers[1].metadata.unsafeSsl: not supported"));
    kd_scaledobject_free(&so);
}

/* redis-cluster and redis-sentinel (and their -streams forms): the nodes
 * or Sentinels as addresses, or hosts and ports; a Sentinel's master and
 * credentials; what each refuses. */
static void test_redis_cluster_sentinel(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'redis-cluster','metadata':{'addresses':'n1:7000, n2:7001 ,n3:7002',"
                        "'listName':'jobs','listLength':'4','username':'app'}},"
                        "{'type':'redis-cluster-streams','metadata':{'hosts':'n1,n2','ports':'7000, 7001',"
                        "'stream':'s','consumerGroup':'g','lagCount':'3','databaseIndex':'1'}},"
                        "{'type':'redis-sentinel','metadata':{'addresses':'s1:26379','listName':'l',"
                        "'sentinelMaster':'mymaster','sentinelPassword':'spw','password':'pw',"
                        "'databaseIndex':'2'}},"
                        "{'type':'redis-sentinel-streams','metadata':{'addresses':'[::1]:26379',"
                        "'sentinelMaster':'m','stream':'s','streamLength':'10'}}"),
             &so);
    assert_int_equal(so.ntriggers, 4);
    const kd_trigger_t *t = &so.triggers[0];
    assert_int_equal(t->type, KD_REDIS_CLUSTER_LISTS);
    assert_string_equal(t->name, "s0-redis-cluster");
    assert_string_equal(t->url, "n1:7000,n2:7001,n3:7002"); /* spaces gone */
    assert_string_equal(t->stream, "jobs");
    assert_string_equal(t->username, "app");
    assert_true(t->target == 4);
    assert_true(kd_type_redis_list(t->type) && kd_type_redis_cluster(t->type));
    t = &so.triggers[1];
    assert_int_equal(t->type, KD_REDIS_CLUSTER_STREAMS);
    assert_string_equal(t->url, "n1:7000,n2:7001");
    assert_int_equal(t->redis_mode, KD_REDIS_LAG);
    assert_int_equal(t->redis_db, 0); /* a Cluster has only database 0 */
    assert_true(has_warning(&so, "spec.triggers[1].metadata.databaseIndex: not supported"));
    t = &so.triggers[2];
    assert_int_equal(t->type, KD_REDIS_SENTINEL_LISTS);
    assert_string_equal(t->name, "s2-redis-sentinel");
    assert_string_equal(t->sentinel_master, "mymaster");
    assert_string_equal(t->sentinel_password, "spw");
    assert_string_equal(t->password, "pw");
    assert_int_equal(t->redis_db, 2);
    assert_true(has_warning(&so, "spec.triggers[2].metadata.sentinelPassword: stored in clear"));
    t = &so.triggers[3];
    assert_int_equal(t->type, KD_REDIS_SENTINEL_STREAMS);
    assert_string_equal(t->url, "[::1]:26379");
    assert_int_equal(t->redis_mode, KD_REDIS_LENGTH);
    assert_false(kd_type_redis_list(t->type));
    kd_scaledobject_free(&so);

    /* An address of a single server's trigger is not a Cluster's. */
    parse_ok(so_doc("", "{'type':'redis','metadata':{'addresses':'a:1','address':'r:6379','listName':'l'}}"),
             &so);
    assert_true(has_warning(&so, "spec.triggers[0].metadata.addresses: not supported"));
    kd_scaledobject_free(&so);

    expect_error(so_doc("", "{'type':'redis-cluster','metadata':{'listName':'l'}}"),
                 "spec.triggers[0].metadata.addresses: required (or hosts and ports)");
    expect_error(so_doc("", "{'type':'redis-cluster','metadata':{'addresses':'n1:7000,n2','listName':'l'}}"),
                 "spec.triggers[0].metadata.addresses: \"n2:\" is not host:port");
    expect_error(so_doc("", "{'type':'redis-cluster','metadata':{'addresses':'n1:70000','listName':'l'}}"),
                 "\"n1:70000\" is not host:port");
    expect_error(so_doc("", "{'type':'redis-cluster','metadata':{'addresses':'n1:1,,n2:2','listName':'l'}}"),
                 "\":\" is not host:port");
    expect_error(so_doc("", "{'type':'redis-cluster','metadata':{'hosts':'a,b','ports':'1','listName':'l'}}"),
                 "spec.triggers[0].metadata.hosts and ports: not the same number of entries");
    expect_error(so_doc("", "{'type':'redis-cluster','metadata':{'hosts':'a','listName':'l'}}"),
                 "spec.triggers[0].metadata.ports: required with hosts");
    expect_error(so_doc("", "{'type':'redis-sentinel','metadata':{'addresses':'s:26379','listName':'l'}}"),
                 "spec.triggers[0].metadata.sentinelMaster: required");
    expect_error(so_doc("", "{'type':'redis-sentinel-streams','metadata':{'addresses':'s:26379',"
                            "'sentinelMaster':'m','stream':'s','enableTLS':'true'}}"),
                 "spec.triggers[0].metadata.enableTLS: TLS to Redis is not supported");
    char many[400] = "";
    for (int i = 0; i < 17; i++) sprintf(many + strlen(many), "%sh%d:1", i ? "," : "", i);
    char doc[600];
    snprintf(doc, sizeof doc, "{'type':'redis-cluster','metadata':{'addresses':'%s','listName':'l'}}",
             many);
    expect_error(so_doc("", doc), "spec.triggers[0].metadata.addresses: more than 16 servers");
}

/* postgresql: a connection string or the server's parts; what is refused. */
static void test_postgresql(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'postgresql','metadata':{'host':'db','port':'5433','userName':'keda',"
                        "'password':'pw','dbName':'jobs','sslmode':'require',"
                        "'query':'SELECT count(*) FROM t','targetQueryValue':'2.5',"
                        "'activationTargetQueryValue':'1','connectionFromEnv':'PG'}},"
                        "{'type':'postgresql','metadata':{'connection':'postgresql://u:p@db/x',"
                        "'query':'SELECT 1','targetQueryValue':'1'}}"),
             &so);
    const kd_trigger_t *t = &so.triggers[0];
    assert_int_equal(t->type, KD_POSTGRESQL);
    assert_string_equal(t->name, "s0-postgresql");
    assert_string_equal(t->url, "db");
    assert_string_equal(t->db_port, "5433");
    assert_string_equal(t->username, "keda");
    assert_string_equal(t->password, "pw");
    assert_string_equal(t->db_name, "jobs");
    assert_string_equal(t->db_sslmode, "require");
    assert_string_equal(t->query, "SELECT count(*) FROM t");
    assert_true(t->target == 2.5 && t->activation == 1);
    assert_null(t->db_connection);
    assert_true(has_warning(&so, "spec.triggers[0].metadata.password: stored in clear"));
    /* connectionFromEnv is known; with no Service to read it from, the
     * trigger fails each read saying so. */
    assert_false(has_warning(&so, "connectionFromEnv"));
    assert_string_equal(t->env_err,
                        "metadata.connectionFromEnv: no Service environment is available here");
    t = &so.triggers[1];
    assert_string_equal(t->db_connection, "postgresql://u:p@db/x");
    assert_null(t->url);
    assert_true(has_warning(&so, "spec.triggers[1].metadata.connection: stored in clear"));
    kd_scaledobject_free(&so);

    expect_error(so_doc("", "{'type':'postgresql','metadata':{'query':'SELECT 1','targetQueryValue':'1'}}"),
                 "spec.triggers[0].metadata.host: required (or connection");
    expect_error(so_doc("", "{'type':'postgresql','metadata':{'host':'db','targetQueryValue':'1'}}"),
                 "spec.triggers[0].metadata.query: required");
    expect_error(so_doc("", "{'type':'postgresql','metadata':{'host':'db','query':'SELECT 1'}}"),
                 "spec.triggers[0].metadata.targetQueryValue: required");
    expect_error(so_doc("", "{'type':'postgresql','metadata':{'host':'db','port':'70000',"
                            "'query':'SELECT 1','targetQueryValue':'1'}}"),
                 "spec.triggers[0].metadata.port: \"70000\" is not a port");
    expect_error(so_doc("", "{'type':'postgresql','metadata':{'host':'db','sslmode':'sometimes',"
                            "'query':'SELECT 1','targetQueryValue':'1'}}"),
                 "spec.triggers[0].metadata.sslmode: \"sometimes\" is not one of disable");
}

/* KEDA's pause annotations. */
static void test_pause_annotations(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    char err[512], buf[1024];
    const char *cases[][2] = {
        {"", "0 -1"},
        {"'autoscaling.keda.sh/paused-replicas':'2'", "1 2"},
        {"'autoscaling.keda.sh/paused-replicas':0,'team':'x'", "1 0"},
        {"'autoscaling.keda.sh/paused':'true'", "1 -1"},
        {"'autoscaling.keda.sh/paused':'False'", "0 -1"},
        {"'autoscaling.keda.sh/paused':'false','autoscaling.keda.sh/paused-replicas':'5'", "1 5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf,
                 "{'apiVersion':'keda.sh/v1alpha1','kind':'ScaledObject','metadata':{'name':'s',"
                 "'annotations':{%s}},'spec':{'scaleTargetRef':{'name':'h'},'triggers':[" PROM "]}}",
                 cases[i][0]);
        cJSON *d = doc_of(buf);
        if (kd_scaledobject_parse(d, NULL, &so, err, sizeof err) != 0) fail_msg("%s: %s", cases[i][0], err);
        cJSON_Delete(d);
        char got[32];
        snprintf(got, sizeof got, "%d %d", so.paused, so.paused_replicas);
        if (strcmp(got, cases[i][1]) != 0) fail_msg("%s: got %s, want %s", cases[i][0], got, cases[i][1]);
        assert_int_equal(so.nwarnings, 0);
        kd_scaledobject_free(&so);
    }
    const char *bad[][2] = {
        {"'autoscaling.keda.sh/paused-replicas':'-1'", "\"-1\" is not a whole number from 0 to 100000"},
        {"'autoscaling.keda.sh/paused-replicas':'100001'", "is not a whole number"},
        {"'autoscaling.keda.sh/paused-replicas':'1.5'", "is not a whole number"},
        {"'autoscaling.keda.sh/paused':'yes'", "metadata.annotations[autoscaling.keda.sh/paused]: \"yes\" is not true or false"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf,
                 "{'apiVersion':'keda.sh/v1alpha1','kind':'ScaledObject','metadata':{'name':'s',"
                 "'annotations':{%s}},'spec':{'scaleTargetRef':{'name':'h'},'triggers':[" PROM "]}}",
                 bad[i][0]);
        expect_error(doc_of(buf), bad[i][1]);
    }
}

/* mysql: the Go driver's connection strings KEDA takes, and the parts. */
static void test_mysql(void **state)
{
    (void)state;
    kd_dsn_t d;
    char err[256];
    assert_int_equal(kd_mysql_dsn_parse("keda:p@ss:w@rd@tcp(db.local:3307)/stats", &d, err, sizeof err), 0);
    assert_string_equal(d.user, "keda");
    assert_string_equal(d.password, "p@ss:w@rd"); /* the last '@' ends it */
    assert_true(d.has_password);
    assert_string_equal(d.host, "db.local");
    assert_int_equal(d.port, 3307);
    assert_string_equal(d.db, "stats");
    assert_int_equal(kd_mysql_dsn_parse("u@tcp([::1]:3306)/x", &d, err, sizeof err), 0);
    assert_string_equal(d.host, "::1");
    assert_false(d.has_password);
    assert_int_equal(kd_mysql_dsn_parse("u:pw@/x", &d, err, sizeof err), 0);
    assert_string_equal(d.host, "127.0.0.1"); /* the driver's default */
    assert_int_equal(d.port, 3306);
    assert_int_equal(kd_mysql_dsn_parse("tcp(h)/x", &d, err, sizeof err), 0);
    assert_string_equal(d.host, "h");
    assert_int_equal(d.port, 3306);
    const char *bad[][2] = {
        {"u:secret@tcp(h:3306)", "no /dbname"},
        {"u:secret@unix(/run/mysqld.sock)/x", "only tcp(host:port)"},
        {"u:secret@tcp(h:99999)/x", "the port is not a number"},
        {"u:secret@tcp(:3306)/x", "the host is empty"},
        {"u:secret@tcp(h:3306)/x?tls=true", "parameters after '?' are not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kd_mysql_dsn_parse(bad[i][0], &d, err, sizeof err) == 0) fail_msg("%s: accepted", bad[i][0]);
        if (!strstr(err, bad[i][1])) fail_msg("%s: '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        assert_null(strstr(err, "secret")); /* never quoted */
    }

    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'mysql','metadata':{'host':'db','port':'3307','username':'keda',"
                        "'dbName':'stats','query':'SELECT COUNT(*) FROM t','queryValue':'4.4',"
                        "'activationQueryValue':'1'}},"
                        "{'type':'mysql','metadata':{'connectionString':'u:pw@tcp(db:3306)/x',"
                        "'query':'SELECT 1','queryValue':'1'}}"),
             &so);
    assert_int_equal(so.triggers[0].type, KD_MYSQL);
    assert_string_equal(so.triggers[0].name, "s0-mysql");
    assert_string_equal(so.triggers[0].url, "db");
    assert_string_equal(so.triggers[0].db_port, "3307");
    assert_string_equal(so.triggers[0].db_name, "stats");
    assert_true(so.triggers[0].target == 4.4 && so.triggers[0].activation == 1);
    assert_string_equal(so.triggers[1].db_connection, "u:pw@tcp(db:3306)/x");
    assert_true(has_warning(&so, "spec.triggers[1].metadata.connectionString: stored in clear"));
    kd_scaledobject_free(&so);
    expect_error(so_doc("", "{'type':'mysql','metadata':{'connectionString':'u:secret@tcp(h)',"
                            "'query':'SELECT 1','queryValue':'1'}}"),
                 "spec.triggers[0].metadata.connectionString: no /dbname");
    expect_error(so_doc("", "{'type':'mysql','metadata':{'query':'SELECT 1','queryValue':'1'}}"),
                 "spec.triggers[0].metadata.host: required (or connectionString");
    expect_error(so_doc("", "{'type':'mysql','metadata':{'host':'h','query':'SELECT 1'}}"),
                 "spec.triggers[0].metadata.queryValue: required");
}

/* metrics-api: the number at a GJSON path in any JSON answer. */
static void test_metrics_api_paths(void **state)
{
    (void)state;
    const char *body = "{\"components\":{\"worker\":{\"tasks\":12.5,\"name\":\"w\"}},"
                       "\"queues\":[{\"depth\":3},{\"depth\":\"7\"}],\"a.b\":{\"c\":4},"
                       "\"mem\":\"250m\",\"on\":true,\"items\":[1,2,3]}";
    double v = -1;
    char err[256];
    assert_int_equal(kd_json_path_value(body, "components.worker.tasks", &v, err, sizeof err), 0);
    assert_true(v == 12.5);
    assert_int_equal(kd_json_path_value(body, "queues.1.depth", &v, err, sizeof err), 0);
    assert_true(v == 7); /* a number in a string */
    assert_int_equal(kd_json_path_value(body, "queues.#", &v, err, sizeof err), 0);
    assert_true(v == 2);
    assert_int_equal(kd_json_path_value(body, "items.#", &v, err, sizeof err), 0);
    assert_true(v == 3);
    assert_int_equal(kd_json_path_value(body, "a\\.b.c", &v, err, sizeof err), 0);
    assert_true(v == 4); /* an escaped dot is part of the key */
    assert_int_equal(kd_json_path_value(body, "mem", &v, err, sizeof err), 0);
    assert_true(fabs(v - 0.25) < 1e-12); /* a Kubernetes quantity */
    assert_int_equal(kd_json_path_value(body, "components.worker.missing", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation components.worker.missing: no missing in the answer");
    assert_int_equal(kd_json_path_value(body, "queues.2.depth", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation queues.2.depth: no 2 in the answer");
    assert_int_equal(kd_json_path_value(body, "components.worker.name", &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "is \"w\", not a number or quantity"));
    assert_int_equal(kd_json_path_value(body, "on", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation on is not a number");
    assert_int_equal(kd_json_path_value("<html>", "a", &v, err, sizeof err), -1);
    assert_string_equal(err, "the answer is not JSON");

    /* A password in a URL never reaches a message (status, lastError). */
    char shown[128];
    kd_url_redact("http://u:s3cret@h:1/p?q=a@b", shown, sizeof shown);
    assert_string_equal(shown, "http://***@h:1/p?q=a@b");
    kd_url_redact("http://h/p?q=a@b", shown, sizeof shown);
    assert_string_equal(shown, "http://h/p?q=a@b");
    kd_trigger_t rt = {.type = KD_METRICS_API, .url = "http://u:s3cret@127.0.0.1:1/stats",
                       .location = "a"};
    assert_int_equal(kd_read_metrics_api(&rt, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "metrics-api http://***@127.0.0.1:1/stats: "));
    assert_null(strstr(err, "s3cret"));
    rt.type = KD_PROMETHEUS;
    rt.query = "up";
    assert_int_equal(kd_read_prometheus(&rt, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "prometheus http://***@127.0.0.1:1/stats: "));
    assert_null(strstr(err, "s3cret"));

    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://api:3232/stats',"
                        "'valueLocation':'components.worker.tasks','targetValue':'8.8',"
                        "'activationTargetValue':'3.8'}},"
                        "{'type':'metrics-api','metadata':{'url':'https://api/s','valueLocation':'n',"
                        "'targetValue':'1','authMode':'apiKey','method':'query','apiKey':'k'}},"
                        "{'type':'metrics-api','metadata':{'url':'https://api/s','valueLocation':'n',"
                        "'targetValue':'1','authMode':'apiKey','apiKey':'k'}},"
                        "{'type':'metrics-api','metadata':{'url':'https://api/s','valueLocation':'n',"
                        "'targetValue':'1','authMode':'bearer','token':'t'}}"),
             &so);
    assert_int_equal(so.triggers[0].type, KD_METRICS_API);
    assert_string_equal(so.triggers[0].name, "s0-metrics-api");
    assert_string_equal(so.triggers[0].location, "components.worker.tasks");
    assert_true(so.triggers[0].target == 8.8 && so.triggers[0].activation == 3.8);
    assert_null(so.triggers[0].api_key);
    assert_true(so.triggers[1].key_in_query);
    assert_string_equal(so.triggers[1].key_param, "api_key"); /* KEDA's defaults */
    assert_false(so.triggers[2].key_in_query);
    assert_string_equal(so.triggers[2].key_param, "X-API-KEY");
    assert_string_equal(so.triggers[3].bearer, "t");
    assert_true(has_warning(&so, "spec.triggers[1].metadata.apiKey: stored in clear"));
    assert_true(has_warning(&so, "spec.triggers[3].metadata.token: stored in clear"));
    kd_scaledobject_free(&so);
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'items.#(depth>2).depth','targetValue':'1'}}"),
                 "spec.triggers[0].metadata.valueLocation: \"items.#(depth>2).depth\": wasmfn "
                 "reads a path of keys");
    char longloc[400], doc[600];
    memset(longloc, 'k', 256);
    longloc[256] = '\0';
    snprintf(doc, sizeof doc, "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                              "'%s','targetValue':'1'}}", longloc);
    expect_error(so_doc("", doc), "spec.triggers[0].metadata.valueLocation: longer than 255 "
                                  "characters");
    longloc[255] = '\0'; /* 255: accepted */
    snprintf(doc, sizeof doc, "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                              "'%s','targetValue':'1'}}", longloc);
    parse_ok(so_doc("", doc), &so);
    assert_int_equal(strlen(so.triggers[0].location), 255);
    kd_scaledobject_free(&so);
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'a.#.b','targetValue':'1'}}"),
                 "spec.triggers[0].metadata.valueLocation:");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'a..b','targetValue':'1'}}"),
                 "spec.triggers[0].metadata.valueLocation:");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'ftp://a','valueLocation':"
                            "'a','targetValue':'1'}}"),
                 "spec.triggers[0].metadata.url: \"ftp://a\" is not an http:// or https:// URL");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'a','targetValue':'1','format':'xml'}}"),
                 "spec.triggers[0].metadata.format: \"xml\" is not supported (json, yaml, prometheus)");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'a','targetValue':'1','authMode':'digest'}}"),
                 "spec.triggers[0].metadata.authMode: \"digest\" is not supported (apiKey, basic, bearer, tls)");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'a','targetValue':'1','authMode':'apiKey'}}"),
                 "spec.triggers[0].metadata.apiKey: required");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'a','targetValue':'1','authMode':'apiKey','apiKey':'k',"
                            "'keyParamName':'X: y'}}"),
                 "spec.triggers[0].metadata.keyParamName: \"X: y\" is not a header name");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':'a'}}"),
                 "spec.triggers[0].metadata.targetValue: required");
}

/* metrics-api's other formats: YAML by the same path, Prometheus's text
 * format by a series selector; and authMode tls. */
static void test_metrics_api_formats(void **state)
{
    (void)state;
    double v = -1;
    char err[256];
    const char *yml = "components:\n  worker: { tasks: 12.5, name: w }\n"
                      "queues:\n  - depth: 3\n  - depth: \"250m\"\n"
                      "base: &b { n: 4 }\nalias: *b\n";
    size_t yl = strlen(yml);
    assert_int_equal(kd_yaml_path_value(yml, yl, "components.worker.tasks", &v, err, sizeof err), 0);
    assert_true(v == 12.5);
    assert_int_equal(kd_yaml_path_value(yml, yl, "queues.1.depth", &v, err, sizeof err), 0);
    assert_true(fabs(v - 0.25) < 1e-12); /* a quantity */
    assert_int_equal(kd_yaml_path_value(yml, yl, "queues.#", &v, err, sizeof err), 0);
    assert_true(v == 2);
    assert_int_equal(kd_yaml_path_value(yml, yl, "alias.n", &v, err, sizeof err), 0);
    assert_true(v == 4); /* an alias is followed */
    assert_int_equal(kd_yaml_path_value(yml, yl, "queues.2.depth", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation queues.2.depth: no 2 in the answer");
    assert_int_equal(kd_yaml_path_value(yml, yl, "components.worker.name", &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "is \"w\", not a number or quantity"));
    assert_int_equal(kd_yaml_path_value(yml, yl, "components.worker", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation components.worker is not a number");
    /* A long scalar is read whole: 70 digits and an x is not a number. */
    char longnum[128] = "n: ";
    for (int i = 0; i < 70; i++) strcat(longnum, "7");
    strcat(longnum, "x\n");
    assert_int_equal(kd_yaml_path_value(longnum, strlen(longnum), "n", &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a number or quantity"));
    longnum[strlen(longnum) - 2] = '\n'; /* 70 digits: a number */
    assert_int_equal(kd_yaml_path_value(longnum, strlen(longnum) - 1, "n", &v, err, sizeof err), 0);
    assert_true(v > 7.7e69 && v < 7.8e69);
    assert_int_equal(kd_yaml_path_value("n: \"12\\0x\"\n", 11, "n", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation n is not a number"); /* "12", a NUL, "x" */
    assert_int_equal(kd_yaml_path_value("a: [1,", 6, "a", &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "the answer is not YAML"));
    assert_int_equal(kd_yaml_path_value("", 0, "a", &v, err, sizeof err), -1);
    assert_string_equal(err, "the answer is empty");

    const char *prom = "# HELP jobs_queued Jobs.\n# TYPE jobs_queued gauge\n"
                       "jobs_queued{queue=\"a\",zone=\"eu\"} 7\n"
                       "jobs_queued{queue=\"b\\\"q\",zone=\"eu\"} 9 1712345678000\n"
                       "jobs_queued 11\n"
                       "broken{queue=\"a\" 5\n"
                       "nan_gauge NaN\n"
                       "jobs_done_total 1.5e3";
    size_t pl = strlen(prom);
    assert_int_equal(kd_exposition_value(prom, pl, "jobs_queued{queue=\"a\"}", &v, err, sizeof err), 0);
    assert_true(v == 7); /* more labels on the line are fine */
    assert_int_equal(kd_exposition_value(prom, pl, "jobs_queued{queue=\"b\\\"q\"}", &v, err, sizeof err), 0);
    assert_true(v == 9); /* an escaped quote; the timestamp ignored */
    assert_int_equal(kd_exposition_value(prom, pl, " jobs_queued { zone = \"eu\" , queue=\"b\\\"q\", } ", &v, err, sizeof err), 0);
    assert_true(v == 9);
    assert_int_equal(kd_exposition_value(prom, pl, "jobs_queued", &v, err, sizeof err), 0);
    assert_true(v == 7); /* the first sample of the name */
    assert_int_equal(kd_exposition_value(prom, pl, "jobs_done_total", &v, err, sizeof err), 0);
    assert_true(v == 1500); /* the last line needs no newline */
    assert_int_equal(kd_exposition_value(prom, pl, "jobs_queued{queue=\"c\"}", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation jobs_queued{queue=\"c\"}: no such sample in the answer");
    assert_int_equal(kd_exposition_value(prom, pl, "broken", &v, err, sizeof err), -1);
    assert_int_equal(kd_exposition_value(prom, pl, "nan_gauge", &v, err, sizeof err), -1);
    assert_string_equal(err, "valueLocation nan_gauge is NaN, not a number to scale on");
    assert_int_equal(kd_series_check("up{job=~\"x\"}", err, sizeof err), -1);
    assert_string_equal(err, "label job: only = matchers (a label equal to a value)");
    assert_int_equal(kd_series_check("up{job!=\"x\"}", err, sizeof err), -1);
    assert_int_equal(kd_series_check("up{job=x}", err, sizeof err), -1);
    assert_string_equal(err, "label job: a quoted value expected");
    assert_int_equal(kd_series_check("1up", err, sizeof err), -1);
    assert_int_equal(kd_series_check("up extra", err, sizeof err), -1);
    assert_int_equal(kd_series_check("up{a=\"1\"}", err, sizeof err), 0);

    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'metrics-api','metadata':{'url':'https://api/m','format':'prometheus',"
                        "'valueLocation':'jobs_queued{queue=\\\"a\\\"}','targetValue':'5','authMode':'tls',"
                        "'cert':'CERT','key':'KEY','ca':'CA'}},"
                        "{'type':'metrics-api','metadata':{'url':'https://api/s','format':'yaml',"
                        "'valueLocation':'queues.0.depth','targetValue':'5','ca':'CA2'}}"),
             &so);
    assert_int_equal(so.triggers[0].format, KD_FORMAT_PROMETHEUS);
    assert_string_equal(so.triggers[0].tls_cert, "CERT");
    assert_string_equal(so.triggers[0].tls_key, "KEY");
    assert_string_equal(so.triggers[0].tls_ca, "CA");
    assert_true(has_warning(&so, "spec.triggers[0].metadata.key: stored in clear"));
    assert_int_equal(so.triggers[1].format, KD_FORMAT_YAML);
    assert_string_equal(so.triggers[1].tls_ca, "CA2"); /* a CA with any authMode */
    assert_null(so.triggers[1].tls_cert);
    kd_scaledobject_free(&so);
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','format':'prometheus',"
                            "'valueLocation':'up{job=~\\\"x\\\"}','targetValue':'1'}}"),
                 "spec.triggers[0].metadata.valueLocation: \"up{job=~\"x\"}\": label job: only = matchers");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','format':'yaml',"
                            "'valueLocation':'a.*','targetValue':'1'}}"),
                 "spec.triggers[0].metadata.valueLocation: \"a.*\"");
    expect_error(so_doc("", "{'type':'metrics-api','metadata':{'url':'http://a','valueLocation':"
                            "'a','targetValue':'1','authMode':'tls'}}"),
                 "spec.triggers[0].metadata.cert: required");
}

static void test_errors_name_the_field(void **state)
{
    (void)state;
    expect_error(so_doc("", "{'type':'kafka','metadata':{}}"),
                 "spec.triggers[0].type: \"kafka\" is not supported; supported: prometheus, cpu, "
                 "memory, cron, redis, redis-streams, nats-jetstream, rabbitmq, metrics-api");
    expect_error(so_doc("", "{'metadata':{}}"), "spec.triggers[0].type: required");
    expect_error(so_doc("", ""), "spec.triggers: required");
    expect_error(so_doc("", "{'type':'prometheus','metadata':{'serverAddress':'http://p','query':'q'}}"),
                 "spec.triggers[0].metadata.threshold: required");
    expect_error(so_doc("", "{'type':'prometheus','metadata':{'serverAddress':'http://p','query':'q','threshold':'0'}}"),
                 "spec.triggers[0].metadata.threshold: \"0\" is not a number above 0");
    expect_error(so_doc("", "{'type':'prometheus','metadata':{'serverAddress':'file:///etc','query':'q','threshold':'1'}}"),
                 "spec.triggers[0].metadata.serverAddress: \"file:///etc\" is not an http");
    expect_error(so_doc("", "{'type':'prometheus','metadata':{'serverAddress':'http://p','query':'q','threshold':'1','authModes':'tls'}}"),
                 "spec.triggers[0].metadata.authModes: \"tls\" is not supported");
    expect_error(so_doc("", "{'type':'prometheus','metadata':{'serverAddress':'http://p','query':'q','threshold':'1','authModes':'basic'}}"),
                 "spec.triggers[0].metadata.username: required");
    expect_error(so_doc(",'minReplicaCount':5,'maxReplicaCount':2", PROM),
                 "spec.minReplicaCount: 5 is above maxReplicaCount (2)");
    expect_error(so_doc(",'minReplicaCount':1,'idleReplicaCount':1", PROM),
                 "spec.idleReplicaCount: must be below minReplicaCount");
    expect_error(so_doc(",'pollingInterval':0", PROM), "spec.pollingInterval: must be a whole number");
    expect_error(so_doc(",'fallback':{'replicas':2}", PROM), "spec.fallback.failureThreshold: required");
    expect_error(so_doc(",'fallback':{'failureThreshold':2,'replicas':2}",
                        "{'type':'cpu','metadata':{'value':'50'}}"),
                 "spec.fallback: needs every trigger's metricType to be AverageValue");
    expect_error(so_doc("", "{'type':'cpu','metricType':'Value','metadata':{'value':'50'}}"),
                 "spec.triggers[0].metricType: Value is not allowed for cpu");
    expect_error(so_doc("", "{'type':'cron','metadata':{'timezone':'Mars/Olympus','start':'0 8 * * *','end':'0 9 * * *','desiredReplicas':'1'}}"),
                 "spec.triggers[0].metadata.start:");
    expect_error(so_doc("", "{'type':'cron','metadata':{'timezone':'UTC','start':'0 8 * *','end':'0 9 * * *','desiredReplicas':'1'}}"),
                 "spec.triggers[0].metadata.start:");
    expect_error(so_doc("", "{'type':'redis-streams','metadata':{'address':'r:1','stream':'s'}}"),
                 "spec.triggers[0].metadata.consumerGroup: required");
    expect_error(so_doc("", "{'type':'redis','metadata':{'address':'r:1','listLength':'3'}}"),
                 "spec.triggers[0].metadata.listName: required");
    expect_error(so_doc("", "{'type':'redis','metadata':{'listName':'l'}}"),
                 "spec.triggers[0].metadata.address: required (or host and port)");
    expect_error(so_doc("", "{'type':'redis','metadata':{'address':'r:1','listName':'l','enableTLS':'true'}}"),
                 "spec.triggers[0].metadata.enableTLS: TLS to Redis is not supported");
    expect_error(so_doc("", "{'type':'redis','metadata':{'address':'r:1','listName':'l','listLength':'0'}}"),
                 "spec.triggers[0].metadata.listLength: \"0\" is not a number above 0");
    expect_error(so_doc("", "{'type':'rabbitmq','metadata':{'host':'amqp://h','queueName':'q','mode':'MessageRate','value':'1'}}"),
                 "spec.triggers[0].metadata.mode: MessageRate needs the management API");
    expect_error(so_doc("", "{'type':'cron','name':'a','metadata':{'timezone':'UTC','start':'0 8 * * *','end':'0 9 * * *','desiredReplicas':'1'}},"
                            "{'type':'cpu','name':'a','metadata':{'value':'50'}}"),
                 "spec.triggers[1].name: \"a\" is used twice");
    expect_error(doc_of("{'apiVersion':'keda.sh/v1alpha1','kind':'ScaledObject','metadata':{'name':'s'},"
                        "'spec':{'triggers':[" PROM "]}}"),
                 "spec.scaleTargetRef.name: required");
    expect_error(doc_of("{'apiVersion':'keda.sh/v1alpha1','kind':'ScaledObject','metadata':{'name':'Bad_Name'},"
                        "'spec':{'scaleTargetRef':{'name':'x'},'triggers':[" PROM "]}}"),
                 "metadata.name: \"Bad_Name\"");
}

/* ---- the rules -------------------------------------------------------------- */

typedef struct sim {
    kd_scaledobject_t so;
    kd_state_t st;
} sim_t;

static void sim_init(sim_t *m, const char *spec_extra, const char *triggers)
{
    parse_ok(so_doc(spec_extra, triggers), &m->so);
    assert_int_equal(kd_state_init(&m->st, &m->so, S(1000)), 0);
}

static void sim_free(sim_t *m)
{
    kd_state_free(&m->st);
    kd_scaledobject_free(&m->so);
}

/* A poll at second t (from 1000) with one value per trigger; NAN = a
 * failed read. */
static uint32_t poll_at(sim_t *m, uint64_t t, double v0, double v1)
{
    kd_sample_t s[2] = {{.ok = !isnan(v0), .value = v0}, {.ok = !isnan(v1), .value = v1}};
    return kd_decide(&m->so, &m->st, s, S(1000 + t));
}

#define PROM_T(th, act)                                                                           \
    "{'type':'prometheus','metadata':{'serverAddress':'http://p','query':'q','threshold':'" th    \
    "','activationThreshold':'" act "'}}"

static void test_activation_and_cooldown(void **state)
{
    (void)state;
    sim_t m;
    sim_init(&m, ",'cooldownPeriod':30,'pollingInterval':10", PROM_T("5", "0"));
    assert_int_equal(poll_at(&m, 0, 0, 0), 0);      /* inactive from the start: 0 */
    assert_int_equal(poll_at(&m, 10, 12, 0), 3);    /* ceil(12/5) */
    assert_int_equal(poll_at(&m, 20, 26, 0), 6);    /* up at once (no scale-up window) */
    assert_int_equal(poll_at(&m, 30, 0, 0), 6);     /* inactive, within the cooldown and the
                                                     * 300 s scale-down window: held */
    assert_int_equal(poll_at(&m, 49, 0, 0), 6);
    assert_int_equal(poll_at(&m, 50, 0, 0), 0);     /* 30 s after the last active poll */
    assert_int_equal(poll_at(&m, 60, 0.5, 0), 1);   /* above activation 0: 1 */
    sim_free(&m);

    sim_init(&m, ",'cooldownPeriod':0", PROM_T("5", "10"));
    assert_int_equal(poll_at(&m, 0, 8, 0), 0);      /* 8 is below the activation threshold */
    assert_int_equal(poll_at(&m, 10, 11, 0), 3);
    assert_int_equal(poll_at(&m, 20, 9, 0), 0);     /* no cooldown */
    sim_free(&m);
}

static void test_largest_trigger_and_bounds(void **state)
{
    (void)state;
    sim_t m;
    sim_init(&m, ",'maxReplicaCount':5,'minReplicaCount':0",
             PROM_T("5", "0") ",{'type':'prometheus','name':'b','metadata':{'serverAddress':'http://p','query':'q','threshold':'2'}}");
    assert_int_equal(poll_at(&m, 0, 5, 6), 3);      /* max(1, 3) */
    assert_int_equal(poll_at(&m, 10, 100, 0), 5);   /* capped by maxReplicaCount */
    sim_free(&m);

    sim_init(&m, ",'minReplicaCount':2", PROM_T("5", "0"));
    assert_int_equal(poll_at(&m, 0, 0, 0), 2);      /* min 2, no idle: never below */
    assert_int_equal(poll_at(&m, 10, 1, 0), 2);
    sim_free(&m);

    sim_init(&m, ",'minReplicaCount':2,'idleReplicaCount':0,'cooldownPeriod':0", PROM_T("5", "0"));
    assert_int_equal(poll_at(&m, 0, 0, 0), 0);      /* idle */
    assert_int_equal(poll_at(&m, 10, 1, 0), 2);     /* active: at least min */
    assert_int_equal(poll_at(&m, 20, 0, 0), 0);
    sim_free(&m);
}

/* scalingModifiers.formula: expr's arithmetic, comparisons, logic,
 * ternary and functions over the triggers' names. */
static void test_formula(void **state)
{
    (void)state;
    kd_trigger_t t[2];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "trig_one");
    snprintf(t[1].name, sizeof t[1].name, "trig_two");
    double v[2] = {6, 2};
    static const struct {
        const char *text;
        double want;
    } ok[] = {
        {"(trig_one + trig_two)/2", 4},
        {"trig_one > 2 ? trig_one + trig_two : 1", 8},
        {"trig_one < 2 ? trig_one + trig_two : 1", 1},
        {"1 + 2 * 3 - 4 / 2", 5},
        {"-trig_two ** 2", -4},
        {"2 ** 3 ** 2", 512},
        {"2 ^ 3", 8},
        {"trig_one % 4", 2},
        {"min(trig_one, trig_two, 5) + max(trig_one, 7)", 9},
        {"abs(trig_two - trig_one) + ceil(1.2) + floor(1.8) + round(2.5)", 10},
        {"trig_one >= 6 && trig_two != 2 ? 1 : 0", 0},
        {"trig_one >= 6 and not (trig_two != 2) ? 1 : 0", 1},
        {"trig_one == 1 || trig_two <= 2 ? 3 : 4", 3},
        {"!false ? .5 : 1", 0.5},
        {"trig_one ?? 3", 6},
        {"  trig_one/0  ", INFINITY},
    };
    char err[300];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        kd_formula_t *f = kd_formula_parse(ok[i].text, t, 2, err, sizeof err);
        if (!f) fail_msg("%s: %s", ok[i].text, err);
        double got = kd_formula_eval(f, v);
        if (!(got == ok[i].want || fabs(got - ok[i].want) < 1e-12))
            fail_msg("%s: %g, want %g", ok[i].text, got, ok[i].want);
        kd_formula_free(f);
    }
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"trig_three + 1", "at 1: trig_three is not the name of a trigger"},
        {"trig_one +", "at 11: the formula ends where a number or a trigger's name was expected"},
        {"count([trig_one], {# > 1})", "at 1: function count is not supported"},
        {"trig_one in [1, 2]", "at 10: 'in [1, 2]' is not understood here"},
        {"\"a\" + 1", "at 1: '\"' is not supported here"},
        {"(trig_one", "expected ')'"},
        {"trig_one ? 1", "expected ':'"},
        {"abs(1, 2)", "abs takes one number"},
        {"min()", "min takes one or more numbers"},
        {"", "the formula ends where"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kd_formula_t *f = kd_formula_parse(bad[i].text, t, 2, err, sizeof err);
        if (f) fail_msg("%s: accepted", bad[i].text);
        if (!strstr(err, bad[i].want)) fail_msg("%s: error '%s' lacks '%s'", bad[i].text, err, bad[i].want);
    }
    char deep[400] = "";
    for (int i = 0; i < 100; i++) strcat(deep, "(");
    strcat(deep, "1");
    for (int i = 0; i < 100; i++) strcat(deep, ")");
    assert_null(kd_formula_parse(deep, t, 2, err, sizeof err));
    assert_non_null(strstr(err, "nested more than"));
    /* A long flat formula is bounded too: 128 additions of two terms
     * pass, 129 (more than 256 terms) are refused. */
    char flat[1200] = "1";
    for (int i = 0; i < 127; i++) strcat(flat, "+1");
    kd_formula_t *f = kd_formula_parse(flat, t, 2, err, sizeof err);
    assert_non_null(f);
    assert_true(kd_formula_eval(f, (double[]){0, 0}) == 128.0);
    kd_formula_free(f);
    strcat(flat, "+1+1");
    assert_null(kd_formula_parse(flat, t, 2, err, sizeof err));
    assert_non_null(strstr(err, "more than 256 terms"));
}

/* With scalingModifiers the composite value alone decides activity and
 * replicas. */
static void test_scaling_modifiers(void **state)
{
    (void)state;
    sim_t m;
    sim_init(&m, ",'cooldownPeriod':0,'advanced':{'scalingModifiers':{'formula':"
                 "'(a + b) / 2','target':'2','activationTarget':'3'}}",
             "{'type':'prometheus','name':'a','metadata':{'serverAddress':'http://p','query':'q','threshold':'100'}},"
             "{'type':'prometheus','name':'b','metadata':{'serverAddress':'http://p','query':'q','threshold':'100'}}");
    assert_non_null(m.so.formula);
    assert_int_equal(poll_at(&m, 0, 10, 2), 3);      /* (10 + 2) / 2 = 6 against 2 */
    assert_true(m.st.composite == 6);
    assert_int_equal(poll_at(&m, 10, 4, 0), 0);      /* 2: not above activationTarget 3 */
    assert_false(m.st.active);
    assert_int_equal(poll_at(&m, 20, 10, 2), 3);     /* 6 again */
    /* a's read fails: no formula can be computed, so the count stays
     * (b's 16 would make it (10 + 16) / 2 = 13 against 2, 7 instances),
     * and so does the composite value. */
    assert_int_equal(poll_at(&m, 30, NAN, 16), 3);
    assert_true(m.st.composite == 6 && m.st.active);
    assert_int_equal(poll_at(&m, 40, 10, 16), 7);    /* both read: 13 against 2 */
    sim_free(&m);

    sim_init(&m, ",'advanced':{'scalingModifiers':{'formula':'a','target':'10','metricType':'Value'}}",
             "{'type':'prometheus','name':'a','metadata':{'serverAddress':'http://p','query':'q','threshold':'1'}}");
    assert_int_equal(poll_at(&m, 0, 20, 0), 2);      /* Value: ceil(1 * 20 / 10) */
    sim_free(&m);

    expect_error(so_doc(",'advanced':{'scalingModifiers':{'formula':'x + 1','target':'2'}}", PROM),
                 "spec.advanced.scalingModifiers.formula: at 1: x is not the name of a trigger");
    expect_error(so_doc(",'advanced':{'scalingModifiers':{'formula':'s0_prometheus'}}", PROM),
                 "spec.advanced.scalingModifiers.formula: at 1: s0_prometheus is not the name");
    expect_error(so_doc(",'advanced':{'scalingModifiers':{'target':'2'}}", PROM),
                 "spec.advanced.scalingModifiers.formula: required");
    expect_error(so_doc(",'advanced':{'scalingModifiers':{'formula':'1'}}", PROM),
                 "spec.advanced.scalingModifiers.target: required");
    expect_error(so_doc(",'advanced':{'scalingModifiers':{'formula':'1','target':'0'}}", PROM),
                 "spec.advanced.scalingModifiers.target: \"0\" is not a number above 0");
    expect_error(so_doc(",'advanced':{'scalingModifiers':{'formula':'1','target':'1',"
                        "'metricType':'Utilization'}}", PROM),
                 "spec.advanced.scalingModifiers.metricType: AverageValue (the default) or Value");
}

static void test_value_metric_type(void **state)
{
    (void)state;
    sim_t m;
    sim_init(&m, "",
             "{'type':'prometheus','metricType':'Value','metadata':{'serverAddress':'http://p','query':'q','threshold':'10'}}");
    assert_int_equal(poll_at(&m, 0, 20, 0), 2);     /* ceil(max(0,1) * 20 / 10) */
    assert_int_equal(poll_at(&m, 10, 20, 0), 4);    /* ceil(2 * 20 / 10): a total target */
    sim_free(&m);
}

/* Applied again (its Service redeployed, its FromEnv re-read, or the same
 * YAML applied), a ScaledObject keeps its stabilization window: a scale
 * down held before is still held after. */
static void test_reapply_keeps_windows(void **state)
{
    (void)state;
    const char *spec = ",'cooldownPeriod':1000,'advanced':{'horizontalPodAutoscalerConfig':{'behavior':"
                       "{'scaleDown':{'stabilizationWindowSeconds':60}}}}";
    sim_t m, again;
    sim_init(&m, spec, PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 4, 0), 4);
    assert_int_equal(poll_at(&m, 10, 1, 0), 4);     /* down held by the 60 s window */
    sim_init(&again, spec, PROM_T("1", "0"));
    kd_state_carry(&again.st, &m.st);
    assert_int_equal(poll_at(&again, 20, 1, 0), 4); /* still held */
    assert_int_equal(poll_at(&again, 61, 1, 0), 1); /* 60 s after the 4 */
    sim_free(&again);
    sim_free(&m);
}

static void test_stabilization_windows(void **state)
{
    (void)state;
    sim_t m;
    sim_init(&m, ",'cooldownPeriod':1000,'advanced':{'horizontalPodAutoscalerConfig':{'behavior':"
                 "{'scaleDown':{'stabilizationWindowSeconds':60},'scaleUp':{'stabilizationWindowSeconds':20}}}}",
             PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 4, 0), 4);      /* from zero: straight there */
    assert_int_equal(poll_at(&m, 10, 1, 0), 4);     /* down held by the 60 s window */
    assert_int_equal(poll_at(&m, 20, 9, 0), 4);     /* up no higher than the 20 s window's lowest (1): stays */
    /* The 1 at 10 s is out of the 20 s window: up to 9, but the default
     * policies allow max(4 + 100%, 4 + 4) = 8 per 15 s. */
    assert_int_equal(poll_at(&m, 35, 9, 0), 8);
    assert_int_equal(poll_at(&m, 70, 1, 0), 8);
    assert_int_equal(poll_at(&m, 130, 1, 0), 1);    /* 60 s without a higher recommendation */
    sim_free(&m);

    sim_init(&m, ",'advanced':{'horizontalPodAutoscalerConfig':{'behavior':{'scaleDown':"
                 "{'stabilizationWindowSeconds':0,'selectPolicy':'Disabled'}}}}",
             PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 5, 0), 5);
    assert_int_equal(poll_at(&m, 10, 2, 0), 5);     /* scaling down is disabled */
    assert_int_equal(poll_at(&m, 20, 7, 0), 7);
    sim_free(&m);
}

static void test_failures_and_fallback(void **state)
{
    (void)state;
    sim_t m;
    sim_init(&m, ",'fallback':{'failureThreshold':2,'replicas':6}", PROM_T("5", "0"));
    assert_int_equal(poll_at(&m, 0, 12, 0), 3);
    assert_int_equal(poll_at(&m, 10, NAN, 0), 3);   /* one failure: keeps its last reading */
    assert_int_equal(m.st.failures[0], 1);
    assert_true(m.st.active);
    assert_int_equal(poll_at(&m, 20, NAN, 0), 6);   /* two in a row: the fallback */
    assert_true(m.st.fallback_on);
    assert_int_equal(poll_at(&m, 30, 1, 0), 6);     /* recovered: held by the down window */
    assert_false(m.st.fallback_on);
    assert_int_equal(m.st.failures[0], 0);
    sim_free(&m);

    /* fallback.behavior: from 3 (12 against 5), fallback.replicas 6 or 2. */
    static const struct {
        const char *behavior;
        unsigned replicas, want;
    } fb[] = {
        {"static", 2, 2},
        {"currentReplicas", 6, 3},
        {"currentReplicasIfHigher", 6, 6},
        {"currentReplicasIfHigher", 2, 3},
        {"currentReplicasIfLower", 6, 3},
        {"currentReplicasIfLower", 2, 2},
    };
    for (size_t i = 0; i < sizeof fb / sizeof fb[0]; i++) {
        char extra[160];
        snprintf(extra, sizeof extra,
                 ",'fallback':{'failureThreshold':1,'replicas':%u,'behavior':'%s'}",
                 fb[i].replicas, fb[i].behavior);
        sim_init(&m, extra, PROM_T("5", "0"));
        assert_int_equal(poll_at(&m, 0, 12, 0), 3);
        unsigned got = poll_at(&m, 10, NAN, 0);
        if (got != fb[i].want || !m.st.fallback_on)
            fail_msg("%s with replicas %u: %u, want %u", fb[i].behavior, fb[i].replicas, got,
                     fb[i].want);
        assert_int_equal(poll_at(&m, 20, NAN, 0), fb[i].want); /* stays */
        sim_free(&m);
    }
    expect_error(so_doc(",'fallback':{'failureThreshold':1,'replicas':2,'behavior':'sometimes'}",
                        PROM),
                 "spec.fallback.behavior: \"sometimes\" is not static, currentReplicas, "
                 "currentReplicasIfHigher or currentReplicasIfLower");

    sim_init(&m, ",'cooldownPeriod':0", PROM_T("5", "0"));
    assert_int_equal(poll_at(&m, 0, NAN, 0), 0);    /* never read, no fallback: inactive */
    assert_int_equal(poll_at(&m, 10, 7, 0), 2);
    for (int i = 2; i < 10; i++) assert_int_equal(poll_at(&m, 10u * i, NAN, 0), 2); /* kept */
    sim_free(&m);
}

#define BEHAVIOR(up, down)                                                                        \
    ",'cooldownPeriod':1000,'advanced':{'horizontalPodAutoscalerConfig':{'behavior':{"           \
    "'scaleUp':{" up "},'scaleDown':{" down "}}}}"

static void test_policies(void **state)
{
    (void)state;
    sim_t m;
    /* Pods: at most 2 up per 60 s, 1 down per 30 s, counted from the
     * count at the start of each period (changes both ways within it). */
    sim_init(&m,
             BEHAVIOR("'policies':[{'type':'Pods','value':2,'periodSeconds':60}]",
                      "'stabilizationWindowSeconds':0,'policies':[{'type':'Pods','value':1,'periodSeconds':30}]"),
             PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 2, 0), 2);      /* from zero: straight there */
    assert_int_equal(poll_at(&m, 10, 10, 0), 4);    /* 2 + 2 */
    assert_int_equal(poll_at(&m, 20, 10, 0), 4);    /* the period began at 2 */
    assert_int_equal(poll_at(&m, 71, 10, 0), 6);    /* a new period from 4 */
    assert_int_equal(poll_at(&m, 80, 1, 0), 3);     /* 30 s ago it was 4: 4 - 1 */
    assert_int_equal(poll_at(&m, 90, 1, 0), 3);     /* still 4 at the period's start */
    assert_int_equal(poll_at(&m, 111, 1, 0), 2);    /* a new period from 3 */
    sim_free(&m);

    /* Percent with selectPolicy Min: the policy allowing the least. */
    sim_init(&m,
             BEHAVIOR("'selectPolicy':'Min','policies':[{'type':'Percent','value':50,'periodSeconds':60},"
                      "{'type':'Pods','value':5,'periodSeconds':60}]",
                      "'stabilizationWindowSeconds':0,'policies':[{'type':'Percent','value':50,'periodSeconds':60}]"),
             PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 4, 0), 4);
    assert_int_equal(poll_at(&m, 10, 20, 0), 6);    /* min(ceil(4 * 1.5), 4 + 5) */
    assert_int_equal(poll_at(&m, 80, 1, 0), 3);     /* floor(6 * 0.5) */
    sim_free(&m);

    /* Max: the policy allowing the most. */
    sim_init(&m,
             BEHAVIOR("'policies':[{'type':'Percent','value':50,'periodSeconds':60},"
                      "{'type':'Pods','value':5,'periodSeconds':60}]", "'stabilizationWindowSeconds':0"),
             PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 4, 0), 4);
    assert_int_equal(poll_at(&m, 10, 20, 0), 9);    /* max(6, 4 + 5) */
    assert_int_equal(poll_at(&m, 20, 1, 0), 1);     /* default down: 100% per 15 s */
    sim_free(&m);

    /* A percent of a small count rounds up, so it still grows. */
    sim_init(&m, BEHAVIOR("'policies':[{'type':'Percent','value':10,'periodSeconds':15}]", ""),
             PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 1, 0), 1);
    assert_int_equal(poll_at(&m, 10, 50, 0), 2);    /* ceil(1 * 1.1) */
    assert_int_equal(poll_at(&m, 30, 50, 0), 3);    /* ceil(2 * 1.1) */
    sim_free(&m);

    /* Disabled: no scaling up at all (down still works). */
    sim_init(&m, BEHAVIOR("'selectPolicy':'Disabled'", "'stabilizationWindowSeconds':0"),
             PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 3, 0), 3);
    assert_int_equal(poll_at(&m, 10, 30, 0), 3);
    assert_int_equal(poll_at(&m, 20, 1, 0), 1);
    sim_free(&m);

    /* The defaults: up by max(100%, 4) per 15 s. */
    sim_init(&m, ",'minReplicaCount':1", PROM_T("1", "0"));
    assert_int_equal(poll_at(&m, 0, 1, 0), 1);
    assert_int_equal(poll_at(&m, 10, 100, 0), 5);   /* max(2, 1 + 4) */
    assert_int_equal(poll_at(&m, 20, 100, 0), 5);   /* the period began at 1 */
    assert_int_equal(poll_at(&m, 26, 100, 0), 10);  /* max(10, 9) */
    sim_free(&m);

#define UP "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp"
    expect_error(so_doc(BEHAVIOR("'policies':[{'type':'Replicas','value':1,'periodSeconds':15}]", ""),
                        PROM),
                 UP ".policies[0].type: must be Pods or Percent");
    expect_error(so_doc(BEHAVIOR("'policies':[{'type':'Pods','value':1}]", ""), PROM),
                 UP ".policies[0].periodSeconds: required");
    expect_error(so_doc(BEHAVIOR("'policies':[{'type':'Pods','value':1,'periodSeconds':1801}]", ""),
                        PROM),
                 UP ".policies[0].periodSeconds: must be a whole number from 1 to 1800");
    expect_error(so_doc(BEHAVIOR("'policies':[{'type':'Pods','value':0,'periodSeconds':15}]", ""),
                        PROM),
                 UP ".policies[0].value: must be a whole number from 1");
    expect_error(so_doc(BEHAVIOR("'policies':[]", ""), PROM), UP ".policies: a list of at least one");
    expect_error(so_doc(BEHAVIOR("'selectPolicy':'Most'", ""), PROM),
                 UP ".selectPolicy: must be Max, Min or Disabled");
#undef UP
}

/* ---- the triggers' pieces ---------------------------------------------------- */

static void test_prometheus_answers(void **state)
{
    (void)state;
    double v = -1;
    char err[256];
    assert_int_equal(kd_prometheus_value("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                                         "\"result\":[{\"metric\":{},\"value\":[1.5,\"12.5\"]}]}}",
                                         true, &v, err, sizeof err), 0);
    assert_true(v == 12.5);
    assert_int_equal(kd_prometheus_value("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
                                         "\"result\":[1.5,\"3\"]}}", true, &v, err, sizeof err), 0);
    assert_true(v == 3);
    const char *empty = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}";
    assert_int_equal(kd_prometheus_value(empty, true, &v, err, sizeof err), 1);
    assert_true(v == 0);
    assert_int_equal(kd_prometheus_value(empty, false, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty"));
    const char *nan = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                      "[{\"value\":[1,\"NaN\"]}]}}";
    assert_int_equal(kd_prometheus_value(nan, false, &v, err, sizeof err), -1);
    assert_int_equal(kd_prometheus_value("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                                         "\"result\":[{\"value\":[1,\"1\"]},{\"value\":[1,\"2\"]}]}}",
                                         true, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "2 series"));
    assert_int_equal(kd_prometheus_value("{\"status\":\"error\",\"error\":\"parse error at char 3\"}",
                                         true, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "parse error at char 3"));
    assert_int_equal(kd_prometheus_value("<html>", true, &v, err, sizeof err), -1);
}

static void test_cron_window(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'cron','metadata':{'timezone':'UTC','start':'0 8 * * *',"
                        "'end':'0 18 * * *','desiredReplicas':'4'}}"),
             &so);
    double v = -1;
    char err[256];
    struct tm tm = {.tm_year = 2024 - 1900, .tm_mon = 0, .tm_mday = 15, .tm_hour = 9};
    int64_t nine = (int64_t)timegm(&tm) * 1000;
    assert_int_equal(kd_read_cron(&so.triggers[0], nine, &v, err, sizeof err), 0);
    assert_true(v == 4);                            /* 09:00 is inside 08:00-18:00 */
    assert_int_equal(kd_read_cron(&so.triggers[0], nine + 10 * 3600000LL, &v, err, sizeof err), 0);
    assert_true(v == 0);                            /* 19:00 is not */
    kd_scaledobject_free(&so);
}

static void test_cpu_utilization(void **state)
{
    (void)state;
    kd_scaledobject_t so;
    parse_ok(so_doc("", "{'type':'cpu','metadata':{'value':'50'}},"
                        "{'type':'memory','metricType':'AverageValue','metadata':{'value':'64Mi'}}"),
             &so);
    assert_int_equal(so.triggers[0].metric_type, KD_UTILIZATION);
    assert_true(so.triggers[1].target == 64.0 * 1024 * 1024);
    kd_usage_mark_t mark = {0};
    kd_usage_t u = {.cpu_ns = S(10), .cpu_request_millis = 250, .memory_request_bytes = 1};
    double v = -1;
    char err[256];
    assert_int_equal(kd_read_usage(&so.triggers[0], &u, S(100), &mark, &v, err, sizeof err), 0);
    assert_true(v == 0); /* the first poll has nothing to compare with */
    u.cpu_ns = S(10) + S(3) / 2; /* 1.5 s of CPU in 2 s: 0.75 cores = 300% of 250m */
    assert_int_equal(kd_read_usage(&so.triggers[0], &u, S(102), &mark, &v, err, sizeof err), 0);
    assert_true(fabs(v - 300) < 1e-6);
    /* 50% of each instance's request: ceil(300 / 50) = 6 instances. */
    u.cpu_request_millis = 0;
    assert_int_equal(kd_read_usage(&so.triggers[0], &u, S(104), &mark, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "requests.cpu"));
    kd_scaledobject_free(&so);
}

static void test_quantities(void **state)
{
    (void)state;
    uint32_t m;
    assert_int_equal(cm_quantity_cpu_millis("500m", 1000000, &m), 0);
    assert_int_equal(m, 500);
    assert_int_equal(cm_quantity_cpu_millis("0.25", 1000000, &m), 0);
    assert_int_equal(m, 250);
    assert_int_equal(cm_quantity_cpu_millis("2", 1000000, &m), 0);
    assert_int_equal(m, 2000);
    assert_int_equal(cm_quantity_cpu_millis("0.0001", 1000000, &m), 0);
    assert_int_equal(m, 1);
    assert_int_equal(cm_quantity_cpu_millis("0", 1000000, &m), -1);
    assert_int_equal(cm_quantity_cpu_millis("2000", 1000000, &m), -1);
    assert_int_equal(cm_quantity_cpu_millis("1x", 1000000, &m), -1);
    long double v;
    assert_int_equal(cm_quantity_parse("64Mi", &v), 0);
    assert_true(v == 64.0L * 1024 * 1024);
    assert_int_equal(cm_quantity_parse("1e3", &v), 0);
    assert_true(v == 1000);
    assert_int_equal(cm_quantity_parse("", &v), -1);
}

/* ---- TriggerAuthentication ----------------------------------------------------- */

static void ta_expect_error(const char *text, const char *want)
{
    cJSON *d = doc_of(text);
    kd_triggerauth_t ta;
    char err[512];
    int rc = kd_triggerauth_parse(d, &ta, err, sizeof err);
    kd_triggerauth_free(&ta);
    cJSON_Delete(d);
    if (rc == 0) fail_msg("expected an error containing '%s', got success", want);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
}

#define TA_HEAD "{'apiVersion':'keda.sh/v1alpha1','kind':'TriggerAuthentication','metadata':{'name':'prom-auth'},"

static void test_triggerauth_parse(void **state)
{
    (void)state;
    cJSON *d = doc_of(TA_HEAD "'spec':{'secretTargetRef':[{'parameter':'bearerToken','name':'prom',"
                      "'key':'token'}],'configMapTargetRef':[{'parameter':'username','name':'cfg',"
                      "'key':'user'}],'env':[{'parameter':'password','name':'DB_PASS',"
                      "'containerName':'app'}],'podIdentity':{}}}");
    kd_triggerauth_t ta;
    char err[512];
    assert_int_equal(kd_triggerauth_parse(d, &ta, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_string_equal(ta.name, "prom-auth");
    assert_int_equal(ta.nrefs, 3);
    assert_string_equal(ta.refs[0].parameter, "bearerToken");
    assert_string_equal(ta.refs[0].object, "prom");
    assert_string_equal(ta.refs[0].key, "token");
    assert_false(ta.refs[0].configmap);
    assert_true(ta.refs[1].configmap);
    /* env: a variable of the env of the Service each ScaledObject scales
     * (containerName has nothing to choose: accepted quietly). */
    assert_true(ta.refs[2].env);
    assert_string_equal(ta.refs[2].parameter, "password");
    assert_string_equal(ta.refs[2].object, "DB_PASS");
    assert_null(ta.refs[2].key);
    assert_int_equal(ta.nwarnings, 1);
    assert_non_null(strstr(ta.warnings[0], "spec.podIdentity: not supported"));
    assert_false(ta.cluster);
    kd_triggerauth_free(&ta);
    assert_true(kd_handles_auth_kind("keda.sh/v1alpha1", "TriggerAuthentication"));
    assert_true(kd_handles_auth_kind("keda.sh/v1alpha1", "ClusterTriggerAuthentication"));
    assert_false(kd_handles_auth_kind("keda.sh/v1alpha1", "ScaledObject"));
    assert_false(kd_handles_auth_kind("v1", "ClusterTriggerAuthentication"));

    /* The cluster kind: the same spec; a namespace is a warning (it has
     * none), and it says which kind it is. */
    d = doc_of("{'apiVersion':'keda.sh/v1alpha1','kind':'ClusterTriggerAuthentication',"
               "'metadata':{'name':'shared','namespace':'keda'},'spec':{'secretTargetRef':"
               "[{'parameter':'password','name':'redis','key':'pw'}]}}");
    assert_int_equal(kd_triggerauth_parse(d, &ta, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_true(ta.cluster);
    assert_string_equal(ta.name, "shared");
    assert_int_equal(ta.nrefs, 1);
    assert_int_equal(ta.nwarnings, 1);
    assert_non_null(strstr(ta.warnings[0], "metadata.namespace: a ClusterTriggerAuthentication has none"));
    kd_triggerauth_free(&ta);
    ta_expect_error("{'apiVersion':'keda.sh/v1alpha1','kind':'ClusterTriggerAuthentications',"
                    "'metadata':{'name':'x'},'spec':{}}",
                    "kind: want keda.sh/v1alpha1 TriggerAuthentication or ClusterTriggerAuthentication");

    ta_expect_error(TA_HEAD "'spec':{'hashiCorpVault':{}}}", "spec: no secretTargetRef");
    ta_expect_error(TA_HEAD "'spec':{'secretTargetRef':[{'name':'p','key':'k'}]}}",
                    "spec.secretTargetRef[0].parameter: required");
    ta_expect_error(TA_HEAD "'spec':{'secretTargetRef':[{'parameter':'a','name':'P_Q','key':'k'}]}}",
                    "spec.secretTargetRef[0].name: required, the name of a Secret");
    ta_expect_error(TA_HEAD "'spec':{'secretTargetRef':[{'parameter':'a','name':'p','key':'a/b'}]}}",
                    "spec.secretTargetRef[0].key:");
    ta_expect_error(TA_HEAD "'spec':{'secretTargetRef':[{'parameter':'a','name':'p','key':'k'},"
                            "{'parameter':'a','name':'q','key':'k'}]}}",
                    "spec.secretTargetRef[1].parameter: a is given twice");
    ta_expect_error(TA_HEAD "'spec':{'secretTargetRef':{'parameter':'a'}}}",
                    "spec.secretTargetRef: must be a list");
    ta_expect_error(TA_HEAD "'spec':{'env':[{'parameter':'a','name':'9X'}]}}",
                    "spec.env[0].name: required, the name of an environment variable");
    ta_expect_error(TA_HEAD "'spec':{'env':[{'name':'X'}]}}", "spec.env[0].parameter: required");
    ta_expect_error(TA_HEAD "'spec':{'secretTargetRef':[{'parameter':'a','name':'p','key':'k'}],"
                            "'env':[{'parameter':'a','name':'A'}]}}",
                    "spec.env[0].parameter: a is given twice");
    ta_expect_error("{'apiVersion':'keda.sh/v1alpha1','kind':'TriggerAuthentication','metadata':{},"
                    "'spec':{}}",
                    "metadata.name: required");
}

/* A resolver standing in for the store: TriggerAuthentication prom-auth
 * gives a bearer token and a rabbitmq host, and so does
 * ClusterTriggerAuthentication shared; anything else does not exist. */
static int resolve_test(void *ud, const char *name, bool cluster, const char *service,
                        kd_auth_param_t **params, uint32_t *n, char *err, size_t errlen)
{
    (*(int *)ud)++;
    assert_string_equal(service, "hello"); /* the ScaledObject's target */
    if (!cluster && strcmp(name, "pg-auth") == 0) { /* a port that is not one */
        *params = calloc(1, sizeof **params);
        (*params)[0].parameter = strdup("port");
        (*params)[0].value = strdup("s3cret-port");
        *n = 1;
        return 0;
    }
    if (strcmp(name, cluster ? "shared" : "prom-auth") != 0) {
        snprintf(err, errlen, "%s %s does not exist", kd_auth_kind_name(cluster), name);
        return -1;
    }
    *params = calloc(2, sizeof **params);
    (*params)[0].parameter = strdup("bearerToken");
    (*params)[0].value = strdup("s3cret-token");
    (*params)[1].parameter = strdup("host");
    (*params)[1].value = strdup("amqp://u:s3cret@h:5672/v");
    *n = 2;
    return 0;
}

static void test_authentication_ref(void **state)
{
    (void)state;
    int calls = 0;
    char err[512];
    kd_scaledobject_t so;
    /* The credentials come from the TriggerAuthentication; a parameter
     * the trigger does not take from one is a warning. */
    cJSON *d = so_doc("", "{'type':'prometheus','authenticationRef':{'name':'prom-auth'},"
                          "'metadata':{'serverAddress':'http://p','query':'q','threshold':'1',"
                          "'authModes':'bearer'}}");
    assert_int_equal(kd_scaledobject_parse(d, &(kd_resolvers_t){resolve_test, NULL, &calls}, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_int_equal(calls, 1);
    assert_string_equal(so.triggers[0].bearer, "s3cret-token");
    assert_string_equal(so.triggers[0].auth_ref, "prom-auth");
    assert_null(so.triggers[0].auth_err);
    assert_true(has_warning(&so, "spec.triggers[0].authenticationRef: TriggerAuthentication "
                                 "prom-auth gives host, which a prometheus trigger does not take"));
    for (uint32_t i = 0; i < so.nwarnings; i++)
        assert_null(strstr(so.warnings[i], "s3cret"));
    kd_scaledobject_free(&so);

    /* rabbitmq's host from it. */
    d = so_doc("", "{'type':'rabbitmq','authenticationRef':{'name':'prom-auth'},"
                   "'metadata':{'queueName':'q','value':'5'}}");
    assert_int_equal(kd_scaledobject_parse(d, &(kd_resolvers_t){resolve_test, NULL, &calls}, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_string_equal(so.triggers[0].url, "amqp://u:s3cret@h:5672/v");
    assert_false(has_warning(&so, "spec.triggers[0].metadata.host"));
    kd_scaledobject_free(&so);

    /* One that does not resolve: applied, and the trigger's error says
     * why (its required credential is not asked for again). */
    d = so_doc("", "{'type':'prometheus','authenticationRef':{'name':'nope'},"
                   "'metadata':{'serverAddress':'http://p','query':'q','threshold':'1',"
                   "'authModes':'bearer'}}");
    assert_int_equal(kd_scaledobject_parse(d, &(kd_resolvers_t){resolve_test, NULL, &calls}, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_string_equal(so.triggers[0].auth_err, "TriggerAuthentication nope does not exist");
    assert_null(so.triggers[0].bearer);
    kd_scaledobject_free(&so);

    /* Credentials in metadata still work, with a warning that they are
     * kept in clear. */
    d = so_doc("", "{'type':'prometheus','metadata':{'serverAddress':'http://p','query':'q',"
                   "'threshold':'1','authModes':'basic','username':'u','password':'pw'}},"
                   "{'type':'rabbitmq','metadata':{'host':'amqp://u:pw@h','queueName':'q','value':'5'}}");
    assert_int_equal(kd_scaledobject_parse(d, NULL, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_string_equal(so.triggers[0].password, "pw");
    assert_true(has_warning(&so, "spec.triggers[0].metadata.password: stored in clear"));
    assert_true(has_warning(&so, "spec.triggers[1].metadata.host: stored in clear"));
    kd_scaledobject_free(&so);

    /* kind ClusterTriggerAuthentication resolves that kind's name: the
     * TriggerAuthentication of the same name is another object. */
    d = so_doc("", "{'type':'prometheus','authenticationRef':{'name':'shared','kind':"
                   "'ClusterTriggerAuthentication'},'metadata':{'serverAddress':'http://p',"
                   "'query':'q','threshold':'1','authModes':'bearer'}},"
                   "{'type':'prometheus','authenticationRef':{'name':'shared'},'metadata':{"
                   "'serverAddress':'http://p','query':'q','threshold':'1','authModes':'bearer'}}");
    assert_int_equal(kd_scaledobject_parse(d, &(kd_resolvers_t){resolve_test, NULL, &calls}, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_true(so.triggers[0].auth_cluster);
    assert_string_equal(so.triggers[0].bearer, "s3cret-token");
    assert_null(so.triggers[0].auth_err);
    assert_true(has_warning(&so, "spec.triggers[0].authenticationRef: ClusterTriggerAuthentication "
                                 "shared gives host"));
    assert_false(so.triggers[1].auth_cluster);
    assert_string_equal(so.triggers[1].auth_err, "TriggerAuthentication shared does not exist");
    kd_scaledobject_free(&so);
    d = so_doc("", "{'type':'prometheus','authenticationRef':{'name':'prom-auth','kind':"
                   "'ClusterTriggerAuthentication'},'metadata':{'serverAddress':'http://p',"
                   "'query':'q','threshold':'1'}}");
    assert_int_equal(kd_scaledobject_parse(d, &(kd_resolvers_t){resolve_test, NULL, &calls}, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_string_equal(so.triggers[0].auth_err,
                        "ClusterTriggerAuthentication prom-auth does not exist");
    kd_scaledobject_free(&so);

    expect_error(so_doc("", "{'type':'prometheus','authenticationRef':{'name':'a','kind':"
                            "'Secret'},'metadata':{'serverAddress':'http://p',"
                            "'query':'q','threshold':'1'}}"),
                 "spec.triggers[0].authenticationRef.kind: TriggerAuthentication (the default) "
                 "or ClusterTriggerAuthentication");
    expect_error(so_doc("", "{'type':'prometheus','authenticationRef':{},'metadata':{"
                            "'serverAddress':'http://p','query':'q','threshold':'1'}}"),
                 "spec.triggers[0].authenticationRef.name: required");

    d = so_doc("", "{'type':'cpu','metadata':{'value':'5'}},{'type':'prometheus',"
                   "'authenticationRef':{'name':'prom-auth'},'metadata':{}}");
    assert_true(kd_scaledobject_uses_auth(d, "prom-auth", false));
    assert_false(kd_scaledobject_uses_auth(d, "prom-auth", true));
    assert_true(kd_scaledobject_uses_auth(d, NULL, false));
    assert_false(kd_scaledobject_uses_auth(d, "other", false));
    cJSON_Delete(d);
    d = so_doc("", "{'type':'prometheus','authenticationRef':{'name':'shared','kind':"
                   "'ClusterTriggerAuthentication'},'metadata':{}}");
    assert_true(kd_scaledobject_uses_auth(d, "shared", true));
    assert_false(kd_scaledobject_uses_auth(d, "shared", false));
    assert_true(kd_scaledobject_uses_auth(d, NULL, false));
    cJSON_Delete(d);
}

/* An env resolver standing in for the store: Service hello has
 * REDIS_ADDR, REDIS_PASS and PG; anything else is missing. */
static int env_test(void *ud, const char *service, const char *var, char **value, char *err,
                    size_t errlen)
{
    (*(int *)ud)++;
    static const char *const env[][2] = {{"REDIS_ADDR", "10.0.0.7:6379"},
                                         {"REDIS_PASS", "env-s3cret"},
                                         {"PG", "postgresql://u:p@db/x"},
                                         {"LONG", "s3cret-" /* 300 bytes: past a message's end */
                                                  "0123456789012345678901234567890123456789012345678901234567890123456789"
                                                  "0123456789012345678901234567890123456789012345678901234567890123456789"
                                                  "0123456789012345678901234567890123456789012345678901234567890123456789"
                                                  "0123456789012345678901234567890123456789012345678901234567890123456789"
                                                  "01234567890123456789012"}};
    for (size_t i = 0; strcmp(service, "hello") == 0 && i < sizeof env / sizeof env[0]; i++)
        if (strcmp(var, env[i][0]) == 0) return (*value = strdup(env[i][1])) ? 0 : -1;
    snprintf(err, errlen, "Service %s has no env %s", service, var);
    return -1;
}

/* ...FromEnv: read from the target Service's env, below the metadata's own
 * value and a TriggerAuthentication's; one that does not resolve is the
 * trigger's env_err, and the checks that required it are moot. */
static void test_from_env(void **state)
{
    (void)state;
    int calls = 0;
    char err[512];
    kd_scaledobject_t so;
    kd_resolvers_t rs = {resolve_test, env_test, &calls};
    cJSON *d = so_doc("", "{'type':'redis','metadata':{'addressFromEnv':'REDIS_ADDR',"
                          "'passwordFromEnv':'REDIS_PASS','listName':'jobs'}},"
                          "{'type':'redis','metadata':{'address':'r:6379','addressFromEnv':"
                          "'REDIS_ADDR','listName':'jobs'}},"
                          "{'type':'postgresql','metadata':{'connectionFromEnv':'PG',"
                          "'query':'SELECT 1','targetQueryValue':'1'}},"
                          "{'type':'prometheus','authenticationRef':{'name':'prom-auth'},"
                          "'metadata':{'serverAddress':'http://p','query':'q','threshold':'1',"
                          "'authModes':'bearer','bearerTokenFromEnv':'REDIS_PASS'}}");
    assert_int_equal(kd_scaledobject_parse(d, &rs, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_int_equal(calls, 6); /* five variables and one TriggerAuthentication */
    assert_string_equal(so.triggers[0].url, "10.0.0.7:6379");
    assert_string_equal(so.triggers[0].password, "env-s3cret");
    assert_null(so.triggers[0].env_err);
    assert_string_equal(so.triggers[1].url, "r:6379"); /* the metadata's own value wins */
    assert_string_equal(so.triggers[2].db_connection, "postgresql://u:p@db/x");
    assert_string_equal(so.triggers[3].bearer, "s3cret-token"); /* the TriggerAuthentication's */
    for (uint32_t i = 0; i < so.nwarnings; i++) {
        assert_null(strstr(so.warnings[i], "FromEnv"));   /* known parameters */
        assert_null(strstr(so.warnings[i], "stored in clear")); /* nothing in the document */
    }
    kd_scaledobject_free(&so);

    /* Unresolved, each trigger type's server from the env: applied, each
     * trigger's error names the first one, and nothing else is refused. */
    d = so_doc("", "{'type':'redis','metadata':{'addressFromEnv':'NOPE','listName':'l'}},"
                   "{'type':'redis-cluster','metadata':{'addressesFromEnv':'NOPE','listName':'l'}},"
                   "{'type':'postgresql','metadata':{'connectionFromEnv':'NOPE','query':'q',"
                   "'targetQueryValue':'1'}},"
                   "{'type':'mysql','metadata':{'connectionStringFromEnv':'NOPE','query':'q',"
                   "'queryValue':'1'}},"
                   "{'type':'rabbitmq','metadata':{'hostFromEnv':'NOPE','queueName':'q',"
                   "'value':'1'}},"
                   "{'type':'prometheus','metadata':{'serverAddressFromEnv':'NOPE','query':'q',"
                   "'threshold':'1'}},"
                   "{'type':'metrics-api','metadata':{'urlFromEnv':'NOPE','valueLocation':'a',"
                   "'targetValue':'1'}},"
                   "{'type':'nats-jetstream','metadata':{'natsServerUrlFromEnv':'NOPE',"
                   "'stream':'s','consumer':'c'}},"
                   "{'type':'cpu','metadata':{'valueFromEnv':'NOPE'}}");
    assert_int_equal(kd_scaledobject_parse(d, &rs, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_int_equal(so.ntriggers, 9);
    assert_string_equal(so.triggers[0].env_err,
                        "metadata.addressFromEnv: Service hello has no env NOPE");
    for (uint32_t i = 1; i < so.ntriggers; i++) assert_non_null(so.triggers[i].env_err);
    kd_scaledobject_free(&so);

    /* Without a resolver (kd_scaledobject_parse's callers that have no
     * Services) the trigger says so. */
    d = so_doc("", "{'type':'redis','metadata':{'addressFromEnv':'REDIS_ADDR','listName':'l'}}");
    assert_int_equal(kd_scaledobject_parse(d, NULL, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_string_equal(so.triggers[0].env_err,
                        "metadata.addressFromEnv: no Service environment is available here");
    kd_scaledobject_free(&so);
    d = so_doc("", "{'type':'redis','metadata':{'address':'r:1','listName':'l'}}");
    assert_false(kd_scaledobject_uses_env(d));
    cJSON_Delete(d);
    d = so_doc("", "{'type':'redis','metadata':{'addressFromEnv':'A','listName':'l'}}");
    assert_true(kd_scaledobject_uses_env(d));
    cJSON_Delete(d);
    d = so_doc("", "{'type':'redis','metadata':['addressFromEnv']},{'type':'cpu','metadata':7}");
    assert_false(kd_scaledobject_uses_env(d)); /* not objects: nothing to read, no crash */
    cJSON_Delete(d);

    expect_error(so_doc("", "{'type':'redis','metadata':{'addressFromEnv':'1BAD','listName':'l'}}"),
                 "spec.triggers[0].metadata.addressFromEnv: must be the name of an environment "
                 "variable of Service hello");
    expect_error(so_doc("", "{'type':'redis','metadata':{'addressFromEnv':5,'listName':'l'}}"),
                 "spec.triggers[0].metadata.addressFromEnv: must be the name");
    char many[2048] = "{'type':'redis','metadata':{'listName':'l'";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), ",'p%dFromEnv':'V'", i);
    strcat(many, "}}");
    expect_error(so_doc("", many), "spec.triggers[0].metadata: more than 16 ...FromEnv parameters");
    /* A value from the env (it may come from a Secret) is never quoted by
     * a refusal: the check that quotes what it refuses names the variable
     * instead, also when the message is cut in the middle of the value. */
    d = so_doc("", "{'type':'prometheus','metadata':{'serverAddressFromEnv':'REDIS_PASS',"
                   "'query':'q','threshold':'1'}}");
    assert_int_equal(kd_scaledobject_parse(d, &rs, &so, err, sizeof err), -1);
    cJSON_Delete(d);
    assert_string_equal(err, "spec.triggers[0].metadata.serverAddress: \"(the value of REDIS_PASS)\" "
                             "is not an http:// or https:// URL");
    kd_scaledobject_free(&so);
    d = so_doc("", "{'type':'prometheus','metadata':{'serverAddressFromEnv':'LONG',"
                   "'query':'q','threshold':'1'}}");
    char small[120];
    assert_int_equal(kd_scaledobject_parse(d, &rs, &so, small, sizeof small), -1);
    cJSON_Delete(d);
    assert_null(strstr(small, "s3cret"));
    assert_non_null(strstr(small, "(the value of LONG)"));
    kd_scaledobject_free(&so);

    /* The same for a TriggerAuthentication's value. */
    d = so_doc("", "{'type':'postgresql','authenticationRef':{'name':'pg-auth'},'metadata':{"
                   "'host':'db','query':'q','targetQueryValue':'1'}}");
    assert_int_equal(kd_scaledobject_parse(d, &rs, &so, err, sizeof err), -1);
    cJSON_Delete(d);
    assert_string_equal(err, "spec.triggers[0].metadata.port: \"(the value of TriggerAuthentication "
                             "parameter port)\" is not a port");
    kd_scaledobject_free(&so);

    /* One for a parameter the trigger does not have is a warning. */
    d = so_doc("", "{'type':'redis','metadata':{'address':'r:1','listName':'l',"
                   "'fooFromEnv':'REDIS_ADDR'}}");
    assert_int_equal(kd_scaledobject_parse(d, &rs, &so, err, sizeof err), 0);
    cJSON_Delete(d);
    assert_true(has_warning(&so, "spec.triggers[0].metadata.fooFromEnv: not supported"));
    kd_scaledobject_free(&so);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_redis_lists),
        cmocka_unit_test(test_redis_cluster_sentinel),
        cmocka_unit_test(test_postgresql),
        cmocka_unit_test(test_mysql),
        cmocka_unit_test(test_pause_annotations),
        cmocka_unit_test(test_metrics_api_paths),
        cmocka_unit_test(test_metrics_api_formats),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_activation_and_cooldown),
        cmocka_unit_test(test_largest_trigger_and_bounds),
        cmocka_unit_test(test_formula),
        cmocka_unit_test(test_scaling_modifiers),
        cmocka_unit_test(test_value_metric_type),
        cmocka_unit_test(test_stabilization_windows),
        cmocka_unit_test(test_reapply_keeps_windows),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_failures_and_fallback),
        cmocka_unit_test(test_prometheus_answers),
        cmocka_unit_test(test_cron_window),
        cmocka_unit_test(test_cpu_utilization),
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_triggerauth_parse),
        cmocka_unit_test(test_authentication_ref),
        cmocka_unit_test(test_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
