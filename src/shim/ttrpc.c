/*
 * ttrpc.c — the server side of containerd's ttrpc ("GRPC for low-memory
 * environments"): the protocol containerd speaks to its shims over a unix
 * socket.
 *
 * Wire format (github.com/containerd/ttrpc PROTOCOL.md): every message is a
 * 10-byte header — payload length (uint32, big endian), stream id (uint32),
 * type (1 request, 2 response), flags — then a protobuf payload: a
 * ttrpc.Request (service, method, payload = the method's own message) or a
 * ttrpc.Response (status, payload). A response carries its request's
 * stream id. Messages are at most 4 MiB.
 *
 * Threads: one per connection reads frames; each request runs on a thread
 * of its own, because containerd multiplexes calls on one connection and
 * some block by design (Wait returns when the guest exits, which may be
 * never). Replies are written whole under the connection's write lock.
 * The number of calls in flight per connection is bounded: beyond it a
 * call fails at once with RESOURCE_EXHAUSTED rather than growing threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim/shim.h"
#include "ttrpc.pb-c.h"

#define TTRPC_HEADER_BYTES 10
#define TTRPC_MAX_MESSAGE_BYTES (4u << 20)
#define TTRPC_TYPE_REQUEST 1
#define TTRPC_TYPE_RESPONSE 2
/* containerd has a handful of calls in flight per task (Wait, plus one
 * at a time of the others); 64 leaves room and bounds threads. */
#define TTRPC_MAX_INFLIGHT 64

typedef struct conn {
    int fd;
    shim_method_fn fn;
    pthread_mutex_t mu; /* guards writes to fd, inflight and closed */
    int inflight;       /* calls running; the reader counts as one */
} conn_t;

typedef struct call {
    conn_t *c;
    uint32_t stream;
    Ttrpc__Request *req;
} call_t;

/* Drops one reference (the reader's or a call's); the last frees. */
static void conn_unref(conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    int left = --c->inflight;
    pthread_mutex_unlock(&c->mu);
    if (left == 0) {
        close(c->fd);
        pthread_mutex_destroy(&c->mu);
        free(c);
    }
}

static int read_full(int fd, uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Sends one response; a failure means the peer went away, and the reader
 * sees that too. */
static void reply(conn_t *c, uint32_t stream, int code, const char *msg, const uint8_t *payload,
                  size_t len)
{
    Ttrpc__Status st = TTRPC__STATUS__INIT;
    Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
    st.code = code;
    st.message = (char *)msg;
    resp.status = &st;
    resp.payload.data = (uint8_t *)payload;
    resp.payload.len = len;
    size_t n = ttrpc__response__get_packed_size(&resp);
    if (n > TTRPC_MAX_MESSAGE_BYTES) {
        reply(c, stream, SHIM_RESOURCE_EXHAUSTED, "response too large", NULL, 0);
        return;
    }
    uint8_t *buf = malloc(TTRPC_HEADER_BYTES + n);
    if (!buf) return;
    put_be32(buf, (uint32_t)n);
    put_be32(buf + 4, stream);
    buf[8] = TTRPC_TYPE_RESPONSE;
    buf[9] = 0;
    ttrpc__response__pack(&resp, buf + TTRPC_HEADER_BYTES);
    pthread_mutex_lock(&c->mu);
    write_full(c->fd, buf, TTRPC_HEADER_BYTES + n);
    pthread_mutex_unlock(&c->mu);
    free(buf);
}

static void *call_run(void *arg)
{
    call_t *k = arg;
    uint8_t *out = NULL;
    size_t out_len = 0;
    char msg[1024] = "";
    int code = k->c->fn(k->req->service ? k->req->service : "", k->req->method ? k->req->method : "",
                        k->req->payload.data, k->req->payload.len, &out, &out_len, msg,
                        sizeof msg);
    reply(k->c, k->stream, code, code == SHIM_OK ? "" : msg, out, out_len);
    if (shim_task_exiting()) _exit(0); /* Shutdown, answered */
    free(out);
    ttrpc__request__free_unpacked(k->req, NULL);
    conn_unref(k->c);
    free(k);
    return NULL;
}

static void *conn_read(void *arg)
{
    conn_t *c = arg;
    uint8_t hdr[TTRPC_HEADER_BYTES];
    uint8_t *buf = NULL;
    while (read_full(c->fd, hdr, sizeof hdr) == 0) {
        uint32_t len = get_be32(hdr), stream = get_be32(hdr + 4);
        /* A length beyond the protocol's bound leaves the stream
         * unparseable: drop the connection, as ttrpc's own server does. */
        if (len > TTRPC_MAX_MESSAGE_BYTES) {
            fprintf(stderr, "shim: ttrpc: a %u-byte message exceeds %u: closing the connection\n",
                    len, TTRPC_MAX_MESSAGE_BYTES);
            break;
        }
        free(buf);
        buf = malloc(len ? len : 1);
        if (!buf || read_full(c->fd, buf, len) != 0) break;
        if (hdr[8] != TTRPC_TYPE_REQUEST) continue; /* nothing else is ours to answer */
        Ttrpc__Request *req = ttrpc__request__unpack(NULL, len, buf);
        if (!req) {
            reply(c, stream, SHIM_INVALID_ARGUMENT, "ttrpc: malformed request", NULL, 0);
            continue;
        }
        pthread_mutex_lock(&c->mu);
        bool room = c->inflight <= TTRPC_MAX_INFLIGHT;
        if (room) c->inflight++;
        pthread_mutex_unlock(&c->mu);
        call_t *k = room ? malloc(sizeof *k) : NULL;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (k) *k = (call_t){.c = c, .stream = stream, .req = req};
        if (!k || pthread_create(&t, &attr, call_run, k) != 0) {
            ttrpc__request__free_unpacked(req, NULL);
            free(k);
            if (room) conn_unref(c);
            reply(c, stream, SHIM_RESOURCE_EXHAUSTED, "ttrpc: too many calls in flight", NULL, 0);
        }
        pthread_attr_destroy(&attr);
    }
    free(buf);
    /* Wake the calls still running (their replies fail) and let the last
     * one close the descriptor. */
    shutdown(c->fd, SHUT_RDWR);
    conn_unref(c);
    return NULL;
}

void shim_ttrpc_serve(int listen_fd, shim_method_fn fn)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED) {
                fprintf(stderr, "shim: accept: %s\n", strerror(errno));
                sleep(1); /* out of descriptors: do not spin */
            }
            continue;
        }
        conn_t *c = calloc(1, sizeof *c);
        pthread_t t;
        if (c) {
            c->fd = fd;
            c->fn = fn;
            c->inflight = 1;
            pthread_mutex_init(&c->mu, NULL);
        }
        if (!c || pthread_create(&t, NULL, conn_read, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
}
