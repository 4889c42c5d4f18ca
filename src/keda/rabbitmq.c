/*
 * rabbitmq.c — the rabbitmq trigger. With an amqp:// host (Debian's
 * librabbitmq) the queue length is the message count of a passive queue
 * declare: messages ready for delivery (unacknowledged ones are not
 * counted by AMQP). With an http(s):// host, RabbitMQ's management API
 * (GET /api/queues/VHOST/QUEUE) gives `messages` (ready and
 * unacknowledged, what KEDA's QueueLength counts) and, for MessageRate,
 * message_stats.publish_details.rate. Either way one connection per poll,
 * bounded by KD_TRIGGER_TIMEOUT_MS.
 */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "keda/internal.h"

static const char *amqp_err(amqp_rpc_reply_t r, char *buf, size_t n)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return "ok";
    case AMQP_RESPONSE_NONE: return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, n, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
            return buf;
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, n, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
            return buf;
        }
        return "server error";
    }
    return "?";
}

static int read_amqp(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    char *url = strdup(t->url);
    struct amqp_connection_info ci;
    char msg[256];
    if (!url || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
        free(url);
        snprintf(err, errlen, "the host is not an amqp:// URL");
        return -1;
    }
    const char *vhost = t->vhost ? t->vhost : ci.vhost && *ci.vhost ? ci.vhost : "/";
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = c ? amqp_tcp_socket_new(c) : NULL;
    struct timeval tv = {KD_TRIGGER_TIMEOUT_MS / 1000, (KD_TRIGGER_TIMEOUT_MS % 1000) * 1000};
    int rc = -1;
    if (!sock) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "connect: %s", amqp_error_string2(st));
        goto out;
    }
    amqp_set_rpc_timeout(c, &tv);
    amqp_rpc_reply_t r = amqp_login(c, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user,
                                    ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(err, errlen, "login: %s", amqp_err(r, msg, sizeof msg));
        goto close;
    }
    amqp_channel_open(c, 1);
    r = amqp_get_rpc_reply(c);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(err, errlen, "channel: %s", amqp_err(r, msg, sizeof msg));
        goto close;
    }
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(t->queue), 1, 0, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(c);
    if (!ok || r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(err, errlen, "queue %s: %s", t->queue, amqp_err(r, msg, sizeof msg));
        goto close;
    }
    *value = (double)ok->message_count;
    rc = 0;
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
close:
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
out:
    if (c) amqp_destroy_connection(c);
    free(url);
    return rc;
}

static int read_http(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    /* KEDA's form: http://USER:PASS@HOST:15672[/VHOST]; vhostName wins. */
    const char *p = strstr(t->url, "://") + 3;
    const char *slash = strchr(p, '/');
    size_t base = slash ? (size_t)(slash - t->url) : strlen(t->url);
    const char *vh = t->vhost ? t->vhost : slash && slash[1] ? slash + 1 : "/";
    char *ev = kd_url_escape(vh), *eq = kd_url_escape(t->queue), *url = NULL;
    if (!ev || !eq || asprintf(&url, "%.*s/api/queues/%s/%s", (int)base, t->url, ev, eq) < 0) {
        free(ev);
        free(eq);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(ev);
    free(eq);
    char *body = NULL;
    long status = 0;
    kd_http_req_t rq = {.url = url, .unsafe = t->unsafe_ssl};
    int rc = kd_http_get(&rq, &body, &status, err, errlen);
    free(url);
    if (rc != 0) return -1;
    rc = -1;
    cJSON *j = cJSON_Parse(body);
    if (status != 200) {
        snprintf(err, errlen, "management API: HTTP %ld for queue %s", status, t->queue);
    } else if (t->rate) {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "message_stats");
        const cJSON *pd = cJSON_GetObjectItemCaseSensitive(ms, "publish_details");
        const cJSON *rate = cJSON_GetObjectItemCaseSensitive(pd, "rate");
        *value = cJSON_IsNumber(rate) ? rate->valuedouble : 0; /* nothing published yet */
        rc = 0;
    } else {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "messages");
        if (cJSON_IsNumber(m)) {
            *value = m->valuedouble;
            rc = 0;
        } else {
            snprintf(err, errlen, "management API: no message count for queue %s", t->queue);
        }
    }
    cJSON_Delete(j);
    free(body);
    return rc;
}

int kd_read_rabbitmq(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    char e[300], host[256];
    int rc = strncmp(t->url, "amqp://", 7) == 0 ? read_amqp(t, value, e, sizeof e)
                                                : read_http(t, value, e, sizeof e);
    if (rc != 0) {
        kd_url_redact(t->url, host, sizeof host);
        snprintf(err, errlen, "rabbitmq %s: %s", host, e);
    }
    return rc;
}
