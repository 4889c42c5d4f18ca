/*
 * events.c — task events (TaskCreate, TaskStart, TaskExit, TaskDelete) sent
 * to containerd the way runtime v2 describes for shims: run the binary
 * containerd named with -publish-binary (containerd itself) as
 *
 *   containerd --address ADDRESS publish --topic /tasks/exit --namespace NS
 *
 * with the event, a google.protobuf.Any whose type URL is the message's
 * name, on its stdin. containerd's CRI plugin learns of exits this way.
 *
 * One thread publishes, in the order events were queued (an exit must not
 * overtake its start). The queue is bounded; a publisher that cannot keep
 * up loses the oldest events rather than growing memory, and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "google/protobuf/any.pb-c.h"
#include "shim/shim.h"

#define EVENTS_MAX_QUEUED 256

typedef struct event {
    struct event *next;
    char *topic;
    uint8_t *any; /* packed google.protobuf.Any */
    size_t len;
} event_t;

static struct {
    pthread_mutex_t mu; /* guards the queue */
    pthread_cond_t cv;
    event_t *head, *tail;
    int n;
    bool busy; /* the publisher is running one */
    const shim_opts_t *opts;
} ev = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void event_free(event_t *e)
{
    free(e->topic);
    free(e->any);
    free(e);
}

/* Runs the publish binary with the event on its stdin, waits for it. */
static void publish_one(const event_t *e)
{
    const shim_opts_t *o = ev.opts;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[0], 0);
        execl(o->publish_binary, o->publish_binary, "--address", o->address, "publish", "--topic",
              e->topic, "--namespace", o->ns, (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        return;
    }
    size_t off = 0;
    while (off < e->len) {
        ssize_t w = write(p[1], e->any + off, e->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(p[1]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "shim: publishing %s failed (status %d)\n", e->topic, st);
}

static void *publisher(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&ev.mu);
        while (!ev.head) pthread_cond_wait(&ev.cv, &ev.mu);
        event_t *e = ev.head;
        ev.head = e->next;
        if (!ev.head) ev.tail = NULL;
        ev.n--;
        ev.busy = true;
        pthread_mutex_unlock(&ev.mu);
        publish_one(e);
        event_free(e);
        pthread_mutex_lock(&ev.mu);
        ev.busy = false;
        pthread_cond_broadcast(&ev.cv);
        pthread_mutex_unlock(&ev.mu);
    }
    return NULL;
}

void shim_events_init(const shim_opts_t *opts)
{
    ev.opts = opts;
    if (!opts->publish_binary || !opts->address || !opts->ns) return;
    pthread_t t;
    if (pthread_create(&t, NULL, publisher, NULL) == 0) pthread_detach(t);
}

void shim_event_publish(const char *topic, const char *type_name, const uint8_t *msg, size_t len)
{
    if (!ev.opts || !ev.opts->publish_binary || !ev.opts->address || !ev.opts->ns) return;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = (char *)type_name;
    any.value.data = (uint8_t *)msg;
    any.value.len = len;
    event_t *e = calloc(1, sizeof *e);
    if (!e) return;
    e->len = google__protobuf__any__get_packed_size(&any);
    e->any = malloc(e->len ? e->len : 1);
    e->topic = strdup(topic);
    if (!e->any || !e->topic) {
        event_free(e);
        return;
    }
    google__protobuf__any__pack(&any, e->any);
    pthread_mutex_lock(&ev.mu);
    if (ev.n >= EVENTS_MAX_QUEUED) {
        event_t *old = ev.head;
        ev.head = old->next;
        if (!ev.head) ev.tail = NULL;
        ev.n--;
        fprintf(stderr, "shim: event queue full: dropped a %s event\n", old->topic);
        event_free(old);
    }
    if (ev.tail) ev.tail->next = e;
    else ev.head = e;
    ev.tail = e;
    ev.n++;
    pthread_cond_broadcast(&ev.cv);
    pthread_mutex_unlock(&ev.mu);
}

void shim_events_flush(uint32_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ev.mu);
    while ((ev.head || ev.busy) && pthread_cond_timedwait(&ev.cv, &ev.mu, &until) == 0) {}
    pthread_mutex_unlock(&ev.mu);
}
