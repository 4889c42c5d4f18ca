/*
 * internal.h — what the files of src/keda share: the trigger readers the
 * poller threads call (one file per kind of server) and the HTTP GET they
 * share. Private to src/keda/.
 *
 * Every reader runs on a poller thread, blocks at most about
 * KD_TRIGGER_TIMEOUT_MS (connect and answer), and returns 0 with the
 * trigger's value, or -1 with a one-line reason naming the server
 * ("prometheus http://...: HTTP 400: parse error at char 3").
 */
#ifndef WASMFN_KEDA_INTERNAL_H
#define WASMFN_KEDA_INTERNAL_H

#include "keda/keda.h"

/* triggerauth.c: an environment variable's name as Kubernetes takes it
 * (letters, digits, '_', '-' and '.', not starting with a digit; at most
 * KD_MAX_ENV_NAME bytes), for ...FromEnv and a TriggerAuthentication's
 * env. */
bool kd_env_name_ok(const char *s);

/* The largest answer read from a server (a Prometheus result, a RabbitMQ
 * queue's JSON); beyond it the read fails. */
#define KD_MAX_BODY_BYTES (1u << 20)

/* What a cpu or memory trigger remembers between polls: its last reading
 * of the Service's cumulative usage. */
typedef struct kd_usage_mark {
    bool have;
    uint64_t at_ns, cpu_ns, memory_kib_ms;
} kd_usage_mark_t;

/* http.c: one GET. Every field but url may be NULL (false): the
 * credentials (bearer; user and pass for basic), customHeaders ("K=V,K2=V2"),
 * one more header taken as it is (header_name and header_value, both or
 * neither), TLS verification off (unsafe), and TLS material as PEM text: a
 * CA to trust instead of the system's, a client certificate and its key. */
typedef struct kd_http_req {
    const char *url;
    const char *bearer, *user, *pass;
    const char *headers;
    const char *header_name, *header_value;
    bool unsafe;
    const char *ca, *cert, *key;
} kd_http_req_t;
/* 0 with the body (malloc'd, NUL-terminated) and the status, or -1 with
 * err. */
int kd_http_get(const kd_http_req_t *rq, char **body, long *status, char *err, size_t errlen);
/* url for a message: any user:password@ before the host as ***@. */
void kd_url_redact(const char *url, char *out, size_t n);
/* A copy of s with every byte outside [A-Za-z0-9-._~] percent-encoded. */
char *kd_url_escape(const char *s);

/* prometheus.c */
int kd_read_prometheus(const kd_trigger_t *t, double *value, char *err, size_t errlen);
/* Parses a /api/v1/query answer (exposed for tests): 0 with the value, 1
 * when the result is empty or not a number and ignore_null is set (the
 * value is then 0), -1 with err. */
int kd_prometheus_value(const char *body, bool ignore_null, double *value, char *err,
                        size_t errlen);
/* metricsapi.c */
int kd_read_metrics_api(const kd_trigger_t *t, double *value, char *err, size_t errlen);
/* The number at GJSON path `path` in the JSON text body (exposed for
 * tests): keys separated by '.', '\.' for a dot inside a key, an array's
 * element by its index, and '#' last for an array's length. The value is a
 * JSON number, or a string holding a number or a Kubernetes quantity
 * ("250m"). 0, or -1 with err. */
int kd_json_path_value(const char *body, const char *path, double *value, char *err,
                       size_t errlen);
/* The same for an answer in YAML (the first document): mapping keys and
 * sequence indexes, '#' last for a sequence's length (exposed for tests). */
int kd_yaml_path_value(const char *body, size_t len, const char *path, double *value, char *err,
                       size_t errlen);
/* exposition.c: whether selector is a series selector wasmfn reads
 * (`name` or `name{label="value",...}`; 0, or -1 with why); and the value of
 * the first sample it selects in a text exposition body (0, or -1 with
 * err). */
int kd_series_check(const char *selector, char *err, size_t errlen);
int kd_exposition_value(const char *body, size_t len, const char *selector, double *value,
                        char *err, size_t errlen);
/* postgresql.c, mysql.c, redis.c, nats.c, rabbitmq.c */
int kd_read_postgresql(const kd_trigger_t *t, double *value, char *err, size_t errlen);
int kd_read_mysql(const kd_trigger_t *t, double *value, char *err, size_t errlen);
/* A MySQL connection string in the Go driver's form KEDA takes:
 * [user[:password]@][tcp(host[:port])]/dbname, no ?parameters (exposed for
 * tests and for checking it when applied). 0, or -1 with an err that
 * never quotes the string. */
typedef struct kd_dsn {
    char user[128], password[256], host[256], db[128];
    bool has_password;
    unsigned port;
} kd_dsn_t;
int kd_mysql_dsn_parse(const char *dsn, kd_dsn_t *d, char *err, size_t errlen);
int kd_read_redis(const kd_trigger_t *t, double *value, char *err, size_t errlen);
int kd_read_nats(const kd_trigger_t *t, double *value, char *err, size_t errlen);
int kd_read_rabbitmq(const kd_trigger_t *t, double *value, char *err, size_t errlen);
/* triggers.c: cron at now_ms (Unix ms); cpu and memory from the usage
 * now and the mark of the previous poll (updated). */
int kd_read_cron(const kd_trigger_t *t, int64_t now_ms, double *value, char *err, size_t errlen);
int kd_read_usage(const kd_trigger_t *t, const kd_usage_t *u, uint64_t now_ns,
                  kd_usage_mark_t *mark, double *value, char *err, size_t errlen);

#endif
