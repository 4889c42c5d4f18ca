/*
 * density_client.c — the load generator of bench/density: submits N
 * asynchronous invocations (`Prefer: respond-async`, 202 + id) over a few
 * keep-alive connections, as fast as the daemon answers, then polls
 * `GET /v1/invocations/ID` on the admin API until every one is completed
 * and checks that each ended with status 200 and the expected body.
 * Few connections on purpose: the point of async invocation is that
 * 30,000 calls in flight do not need 30,000 sockets (the process fd limit
 * here is 20,000).
 *
 *   density_client DATA_HOST DATA_PORT PATH N CONNS ADMIN_HOST ADMIN_PORT
 *                  TOKEN WAIT_S EXPECT_BODY FIRST_POLL_S
 *
 * Prints "submitted N in S s", then, once all are done, "completed N of N
 * (status 200 and body ok: K)". Exit status 0 only if all N are completed
 * with status 200 and the body. Polling starts FIRST_POLL_S after the
 * first submission (when the first calls can be done, so that polls do
 * not load the daemon while it is filling up); WAIT_S bounds it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ID_LEN 32

static const char *data_host, *path, *admin_host, *token, *expect_body;
static int data_port, admin_port, nconns;
static long total;
static char (*ids)[ID_LEN + 1];
static unsigned char *state; /* 0 pending/unknown, 1 ok, 2 completed but wrong */
static long next_index;      /* atomic */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Sends req, reads one response into buf (headers + Content-Length body).
 * Returns the status code, or -1 on a connection error. */
static int exchange(int fd, const char *req, char *buf, size_t cap, char **body)
{
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    size_t got = 0;
    char *hend = NULL;
    long clen = 0;
    for (;;) {
        if (got + 1 >= cap) return -1;
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0) return -1;
        got += (size_t)r;
        buf[got] = '\0';
        if (!hend && (hend = strstr(buf, "\r\n\r\n"))) {
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            clen = cl && cl < hend ? atol(cl + 17) : 0;
        }
        if (hend && got >= (size_t)(hend + 4 - buf) + (size_t)clen) break;
    }
    *body = hend + 4;
    return atoi(buf + 9);
}

static void *submitter(void *arg)
{
    (void)arg;
    static char reqfmt[] = "POST %s HTTP/1.1\r\nHost: %s\r\nPrefer: respond-async\r\n"
                           "Content-Length: 0\r\n\r\n";
    char req[512], buf[8192], *body;
    snprintf(req, sizeof req, reqfmt, path, data_host);
    int fd = dial(data_host, data_port);
    for (;;) {
        long i = __atomic_fetch_add(&next_index, 1, __ATOMIC_RELAXED);
        if (i >= total) break;
        int st = fd >= 0 ? exchange(fd, req, buf, sizeof buf, &body) : -1;
        if (st < 0) { /* reconnect once */
            if (fd >= 0) close(fd);
            fd = dial(data_host, data_port);
            st = fd >= 0 ? exchange(fd, req, buf, sizeof buf, &body) : -1;
        }
        char *id = st == 202 ? strstr(body, "\"id\":\"") : NULL;
        if (id && strlen(id + 6) >= ID_LEN) memcpy(ids[i], id + 6, ID_LEN);
        else fprintf(stderr, "density_client: submission %ld answered %d\n", i, st);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void *poller(void *arg)
{
    (void)arg;
    char req[512], buf[1 << 16], *body;
    int fd = dial(admin_host, admin_port);
    for (;;) {
        long i = __atomic_fetch_add(&next_index, 1, __ATOMIC_RELAXED);
        if (i >= total) break;
        if (state[i] || !ids[i][0]) continue;
        snprintf(req, sizeof req,
                 "GET /v1/invocations/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
                 ids[i], admin_host, token);
        int st = fd >= 0 ? exchange(fd, req, buf, sizeof buf, &body) : -1;
        if (st < 0) {
            if (fd >= 0) close(fd);
            fd = dial(admin_host, admin_port);
            continue;
        }
        if (st != 200 || !strstr(body, "\"completed\"")) continue;
        char *s = strstr(body, "\"status\"");
        int status = 0;
        if (s && (s = strchr(s, ':'))) status = atoi(s + 1);
        state[i] = status == 200 && strstr(body, expect_body) ? 1 : 2;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void run_threads(void *(*fn)(void *))
{
    pthread_t *t = calloc((size_t)nconns, sizeof *t);
    __atomic_store_n(&next_index, 0, __ATOMIC_RELAXED);
    for (int k = 0; k < nconns; k++) pthread_create(&t[k], NULL, fn, NULL);
    for (int k = 0; k < nconns; k++) pthread_join(t[k], NULL);
    free(t);
}

int main(int argc, char **argv)
{
    if (argc != 12) {
        fprintf(stderr, "usage: density_client DATA_HOST DATA_PORT PATH N CONNS ADMIN_HOST "
                        "ADMIN_PORT TOKEN WAIT_S EXPECT_BODY FIRST_POLL_S\n");
        return 2;
    }
    data_host = argv[1];
    data_port = atoi(argv[2]);
    path = argv[3];
    total = atol(argv[4]);
    nconns = atoi(argv[5]);
    admin_host = argv[6];
    admin_port = atoi(argv[7]);
    token = argv[8];
    double wait_s = atof(argv[9]);
    expect_body = argv[10];
    double first_poll_s = atof(argv[11]);
    ids = calloc((size_t)total, sizeof *ids);
    state = calloc((size_t)total, 1);
    if (!ids || !state || nconns < 1) return 2;

    double t0 = now_s();
    run_threads(submitter);
    double t1 = now_s();
    long accepted = 0;
    for (long i = 0; i < total; i++) accepted += ids[i][0] != 0;
    printf("submitted %ld (202: %ld) in %.2f s over %d connections\n", total, accepted, t1 - t0,
           nconns);
    fflush(stdout);

    long ok = 0, wrong = 0;
    while (now_s() - t0 < first_poll_s) usleep(100000);
    while (now_s() - t1 < wait_s) {
        sleep(1);
        run_threads(poller);
        ok = wrong = 0;
        for (long i = 0; i < total; i++) {
            ok += state[i] == 1;
            wrong += state[i] == 2;
        }
        if (ok + wrong >= accepted) break;
    }
    printf("completed %ld of %ld in %.2f s after the first submission (status 200 and body ok: %ld, "
           "wrong: %ld)\n", ok + wrong, total, now_s() - t0, ok, wrong);
    return ok == total ? 0 : 1;
}
