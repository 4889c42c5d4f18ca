/*
 * msgqueue.h — a durable queue of one event source's messages, in its own
 * SQLite file (DATA/sources/KIND-NAME.db), for brokers that consider a
 * message ours once the client has it (MQTT acks QoS 1 on receipt): the
 * source appends what it received, commits (fsync), and only then lets the
 * broker's ack go out; a message leaves the queue when its event was
 * delivered or dead-lettered. Prefix: st_mq_.
 *
 * One thread uses a queue (the source's consumer thread).
 */
#ifndef WASMFN_STORE_MSGQUEUE_H
#define WASMFN_STORE_MSGQUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_mq st_mq_t;

/* One queued message. Strings and body point into the store's row and are
 * valid during the callback only. */
typedef struct st_mq_msg {
    uint64_t seq;          /* increasing, never reused */
    int attempts;          /* failed attempts recorded so far */
    const char *topic;
    const char *headers;   /* JSON object of string headers, or NULL */
    const char *bad;       /* why it cannot become an event, or NULL */
    const void *body;
    size_t len;
    int64_t time_ms;       /* when it was received */
} st_mq_msg_t;

/* Opens (creating the file and its folder) path. NULL with err; free with
 * st_mq_close. */
st_mq_t *st_mq_open(const char *path, char *err, size_t errlen);
void st_mq_close(st_mq_t *q);

/* Appends n messages in one transaction (one fsync); seq is ignored and
 * filled in. 0, or -1 with err (nothing appended). */
int st_mq_append(st_mq_t *q, st_mq_msg_t *m, size_t n, char *err, size_t errlen);
/* Calls fn for at most max messages with seq > after, oldest first.
 * Returns how many, or -1. */
int st_mq_each_after(st_mq_t *q, uint64_t after, int max,
                     void (*fn)(void *ud, const st_mq_msg_t *m), void *ud);
/* Removes messages (one transaction). 0 or -1. */
int st_mq_remove(st_mq_t *q, const uint64_t *seqs, size_t n);
/* Records a message's failed attempts. 0 or -1. */
int st_mq_set_attempts(st_mq_t *q, uint64_t seq, int attempts);
/* Messages queued, or -1. */
long st_mq_count(st_mq_t *q);

#endif
