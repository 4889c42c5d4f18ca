/*
 * shim.h — containerd-shim-wasmfn-v1, containerd's runtime v2 shim for
 * WebAssembly (runtime type io.containerd.wasmfn.v1). Prefix: shim_.
 *
 * One binary, five roles chosen by its last argument (the last two by
 * their first):
 *
 *   start    containerd runs it in the bundle directory: it binds the
 *            task socket, spawns the long-running shim ("serve", below) in
 *            its own session, prints the socket's address and exits.
 *   delete   containerd runs it to clean up after a shim that died: kills
 *            the guest it left, unmounts the rootfs, prints a
 *            DeleteResponse (protobuf) on stdout.
 *   serve    the shim proper: the task service (task.c) over ttrpc
 *            (ttrpc.c) on the socket it inherited as fd 3.
 *   _guest   one container's process, started by the task service: runs
 *            the bundle's .wasm (guest.c), as a WASI command or, for an
 *            HTTP function, as a server (http.c).
 *   compile  the native compiler (`wasmfn compile`'s code), which the
 *            container's process starts to fill the node's cache of native
 *            code (native.c).
 *
 * A container is a child process (not a thread of the shim) so that its
 * pid is real for containerd and Kubernetes, a crash or OOM of one guest
 * never takes the task service down, and signals have a process to reach.
 */
#ifndef WASMFN_SHIM_SHIM_H
#define WASMFN_SHIM_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define SHIM_VERSION "wasmfn-shim 1"
#define SHIM_RUNTIME_TYPE "io.containerd.wasmfn.v1"

/* The annotation (on the image config's labels or the container's OCI
 * spec) that makes a container serve its module over HTTP (WAGI). */
#define SHIM_HTTP_ANNOTATION "wasmfn.dev/http"

/* The command line containerd gives every action. Strings are argv's. */
typedef struct shim_opts {
    const char *ns;             /* -namespace */
    const char *id;             /* -id: the container */
    const char *address;        /* -address: containerd's gRPC socket */
    const char *publish_binary; /* -publish-binary: `containerd` itself */
    const char *bundle;         /* -bundle, else the working directory */
    bool debug;
} shim_opts_t;

/* ---- the container's OCI spec (spec.c) ----------------------------------- */

typedef struct shim_mount {
    char *source;      /* host directory */
    char *destination; /* where the guest sees it */
} shim_mount_t;

typedef struct shim_spec {
    char **args;   /* process.args; args[0] names the module in the rootfs */
    int nargs;
    char **env;    /* process.env, "K=V" */
    int nenv;
    char *cwd;     /* process.cwd, "/" when absent */
    char *rootfs;  /* root.path made absolute against the bundle */
    uint64_t memory_limit_bytes; /* linux.resources.memory.limit; 0 = none */
    shim_mount_t *mounts; /* bind mounts (volumes), preopened; others skipped */
    int nmounts;
    bool http;     /* SHIM_HTTP_ANNOTATION is "true" */
    bool sandbox;  /* a Kubernetes pod's sandbox ("pause") container */
    char *netns_path; /* linux.namespaces' network path to join, or NULL */
} shim_spec_t;

/* Reads BUNDLE/config.json. Returns 0, or -1 with a one-line message naming
 * the field at fault. shim_spec_free frees what it filled (also after a
 * failure). */
int shim_spec_load(const char *bundle, shim_spec_t *s, char *err, size_t errlen);
void shim_spec_free(shim_spec_t *s);

/* Reads a regular file of at most max bytes, NUL-terminated (malloc'd),
 * or NULL with a message naming the file. */
char *shim_file_read_small(const char *path, size_t max, char *err, size_t errlen);

/* Opens the file at path (absolute or not: either way it is resolved as if
 * root were "/", symbolic links and ".." included, so an image cannot name
 * a file outside its rootfs). Returns an fd (O_RDONLY|O_CLOEXEC) or -1 with
 * errno set. */
int shim_open_in_root(const char *root, const char *path);

/* ---- the shim's configuration (config.c) ---------------------------------- */

/* Where native code is cached when the runtime options name no file. */
#define SHIM_DEFAULT_CACHE_DIR "/var/lib/wasmfn-shim/cache"

typedef struct shim_config {
    bool native;          /* tier "auto": native code from the cache (native.c) */
    char cache_dir[4096]; /* absolute */
} shim_config_t;

void shim_config_default(shim_config_t *c);
/* Reads the runtime options containerd sent with Create (a
 * google.protobuf.Any: its type URL and value; none = the defaults) and
 * the file their config_path names. Returns 0, or -1 with a one-line
 * message (FILE:LINE for the file). */
int shim_config_load(const char *type_url, const uint8_t *value, size_t len, shim_config_t *c,
                     char *err, size_t errlen);

/* ---- ttrpc (ttrpc.c) ------------------------------------------------------ */

/* gRPC status codes, as containerd maps them to its errors (errdefs). */
enum {
    SHIM_OK = 0,
    SHIM_INVALID_ARGUMENT = 3,
    SHIM_NOT_FOUND = 5,
    SHIM_ALREADY_EXISTS = 6,
    SHIM_RESOURCE_EXHAUSTED = 8,
    SHIM_FAILED_PRECONDITION = 9,
    SHIM_UNIMPLEMENTED = 12,
    SHIM_INTERNAL = 13,
};

/* A method call. Runs on a thread of its own (so Wait may block). Fills
 * *out with a malloc'd serialized response message (or NULL, 0) and
 * returns SHIM_OK, or returns a code with msg filled. */
typedef int (*shim_method_fn)(const char *service, const char *method, const uint8_t *req,
                              size_t req_len, uint8_t **out, size_t *out_len, char *msg,
                              size_t msglen);

/* Accepts connections on listen_fd and serves them until the process
 * exits. Never returns. */
void shim_ttrpc_serve(int listen_fd, shim_method_fn fn);

/* ---- the task service (task.c) -------------------------------------------- */

/* Sets up the task service for opts (kept by reference) and returns its
 * dispatcher for shim_ttrpc_serve. socket_path is unlinked at Shutdown. */
shim_method_fn shim_task_service(const shim_opts_t *opts, const char *socket_path);
/* True once Shutdown has been accepted: the process exits after the reply. */
bool shim_task_exiting(void);

/* ---- resource use (stats.c) ----------------------------------------------- */

typedef struct shim_stats {
    pid_t pid;                   /* the container's process */
    bool running;                /* not reaped yet: read /proc/PID */
    struct rusage rusage;        /* what wait4 reported, once reaped */
    uint64_t memory_limit_bytes; /* the spec's; 0 = none */
} shim_stats_t;

/* A StatsResponse (serialized, malloc'd) holding cgroups v2 Metrics
 * (io.containerd.cgroups.v2.Metrics) for the process. SHIM_OK, or
 * SHIM_INTERNAL when out of memory. */
int shim_stats_pack(const shim_stats_t *in, uint8_t **out, size_t *out_len);

/* ---- events (events.c) ------------------------------------------------------ */

/* Starts the thread that publishes events in order. */
void shim_events_init(const shim_opts_t *opts);
/* Queues one event: topic ("/tasks/exit"), the message's type name
 * ("containerd.events.TaskExit") and the serialized message (copied).
 * Published with `PUBLISH_BINARY --address A publish --topic T --namespace
 * N`, the event (a google.protobuf.Any) on its stdin; best effort. */
void shim_event_publish(const char *topic, const char *type_name, const uint8_t *msg, size_t len);
/* Waits (at most timeout_ms) until every queued event is published. */
void shim_events_flush(uint32_t timeout_ms);

/* ---- the container's process (guest.c, http.c) ------------------------------ */

/* `_guest BUNDLE ID CACHE_DIR|-` ("-": tier interp): fd 3 is the start
 * gate (a byte = run, end of file = exit), fd 4 reports readiness (closed
 * empty = ready, else one line of error), fd 5 is the shim's log. Returns the process's exit status. */
int shim_guest_main(int argc, char **argv);

#endif
