/*
 * events.h — what eventing keeps across restarts, in DATA/eventing.db:
 * the applied documents of its objects (by kind and name) and each
 * PingSource's last fire time. Prefix: st_events_. The store owns the
 * tables and their durability (db.h); eventing parses the documents.
 *
 * Used from the loop thread only.
 */
#ifndef WASMFN_STORE_EVENTS_H
#define WASMFN_STORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_events st_events_t;

/* Opens DIR/eventing.db (creating its tables). NULL with err; the caller
 * frees it with st_events_close. */
st_events_t *st_events_open(const char *data_dir, char *err, size_t errlen);
void st_events_close(st_events_t *e);

/* Saves (or replaces) an object's document. 0, or -1 with err. */
int st_events_put(st_events_t *e, const char *kind, const char *name, const char *doc, char *err,
                  size_t errlen);
/* Forgets an object. */
void st_events_delete(st_events_t *e, const char *kind, const char *name);
/* Calls fn for every saved object, ordered by kind then name (strings valid
 * during the call). */
void st_events_each(st_events_t *e,
                    void (*fn)(void *ud, const char *kind, const char *name, const char *doc),
                    void *ud);

/* A PingSource's last fire time (ms since the epoch), 0 if none. */
int64_t st_events_last_fire(st_events_t *e, const char *name);
void st_events_set_last_fire(st_events_t *e, const char *name, int64_t ms);
/* Forgets a PingSource's fire time (it was deleted). */
void st_events_forget_fire(st_events_t *e, const char *name);

#endif
