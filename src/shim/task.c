/*
 * task.c — the task service (containerd.task.v2.Task) for the one
 * container a shim owns: its state machine and the guest process.
 *
 *   Create   mounts the rootfs containerd prepared onto BUNDLE/rootfs and
 *            starts the container's process (`_guest BUNDLE`, guest.c)
 *            with its stdio on containerd's FIFOs. The process loads and
 *            instantiates the module, says whether that worked, and waits
 *            at a gate; so a module that cannot run fails Create with a
 *            message naming the fault, as a runc container whose binary is
 *            missing does, and Start costs nothing but a write.
 *   Start    opens the gate.
 *   Wait     blocks until the process exits; its exit status is the
 *            guest's (128 + N when signal N ended it).
 *   Kill     sends the signal to the process; SIGTERM and SIGINT interrupt
 *            a running guest within milliseconds (guest.c), SIGKILL ends it
 *            at once.
 *   Delete   unmounts the rootfs and forgets the exit; Shutdown then ends
 *            the shim.
 *   Stats    the process's CPU time, memory and threads as cgroups v2
 *            Metrics (stats.c).
 *   State, Pids, Connect as containerd expects; Exec, Pause,
 *   Resume, Checkpoint, ResizePty and Update answer UNIMPLEMENTED, and a
 *   terminal (tty) is refused: a Wasm guest has none.
 *
 * One lock guards the task; Wait sleeps on its condition variable. A
 * reaper thread per process turns its exit into state and a TaskExit event.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "shim/shim.h"

#define TASK_SERVICE "containerd.task.v2.Task"
/* How long Create waits for the guest process to load its module. */
#define TASK_READY_TIMEOUT_MS 120000

typedef enum { ST_NONE, ST_CREATED, ST_RUNNING, ST_STOPPED, ST_DELETED } task_state_t;

static struct {
    pthread_mutex_t mu; /* guards every field below */
    pthread_cond_t cv;  /* signalled when state changes */
    task_state_t state;
    char *id, *bundle, *stdin_path, *stdout_path, *stderr_path;
    char rootfs[PATH_MAX];
    bool rootfs_mounted;
    pid_t pid;
    int gate_fd; /* write end of the start gate, -1 once used */
    uint32_t exit_status;
    struct timespec exited_at;
    struct rusage rusage;        /* the process's, once reaped */
    uint64_t memory_limit_bytes; /* the spec's, for Stats */
    const shim_opts_t *opts;
    const char *socket_path;
    char guest_cache[4096]; /* the guest's cache argument: a directory, or "-" */
    bool exiting;
} task = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .gate_fd = -1};

/* ---- helpers ---------------------------------------------------------------- */

static int pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *out = malloc(*len ? *len : 1);
    if (!*out) return SHIM_INTERNAL;
    protobuf_c_message_pack(m, *out);
    return SHIM_OK;
}

static void publish(const char *topic, const char *type, const ProtobufCMessage *m)
{
    uint8_t *buf;
    size_t len;
    if (pack(m, &buf, &len) != SHIM_OK) return;
    shim_event_publish(topic, type, buf, len);
    free(buf);
}

static Google__Protobuf__Timestamp timestamp(struct timespec t)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = t.tv_sec;
    ts.nanos = (int32_t)t.tv_nsec;
    return ts;
}

static int check_id(const char *id, const char *exec_id, char *msg, size_t msglen)
{
    if (exec_id && exec_id[0]) {
        snprintf(msg, msglen, "exec process %s: not found (this shim runs no exec processes)",
                 exec_id);
        return SHIM_NOT_FOUND;
    }
    if (!task.id || !id || strcmp(id, task.id) != 0) {
        snprintf(msg, msglen, "task %s: not found", id ? id : "");
        return SHIM_NOT_FOUND;
    }
    return SHIM_OK;
}

/* Splits mount options into flags and the data string. */
static unsigned long mount_flags(char **options, size_t n, char *data, size_t datalen)
{
    static const struct { const char *name; unsigned long flag; } known[] = {
        {"ro", MS_RDONLY}, {"rbind", MS_BIND | MS_REC}, {"bind", MS_BIND}, {"nosuid", MS_NOSUID},
        {"nodev", MS_NODEV}, {"noexec", MS_NOEXEC}, {"rw", 0},
    };
    unsigned long flags = 0;
    data[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        for (k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strcmp(options[i], known[k].name) == 0) break;
        if (k < sizeof known / sizeof known[0]) {
            flags |= known[k].flag;
            continue;
        }
        size_t used = strlen(data);
        snprintf(data + used, datalen - used, "%s%s", used ? "," : "", options[i]);
    }
    return flags;
}

/* Mounts containerd's rootfs (a bind of a snapshot, or an overlay) on
 * BUNDLE/rootfs, as runc's shim does. No mounts = the bundle has it. */
static int rootfs_mount(Containerd__Task__V2__CreateTaskRequest *r, char *msg, size_t msglen)
{
    snprintf(task.rootfs, sizeof task.rootfs, "%s/rootfs", r->bundle);
    if (r->n_rootfs == 0) return SHIM_OK;
    if (mkdir(task.rootfs, 0711) != 0 && errno != EEXIST) {
        snprintf(msg, msglen, "%s: %s", task.rootfs, strerror(errno));
        return SHIM_INTERNAL;
    }
    for (size_t i = 0; i < r->n_rootfs; i++) {
        Containerd__Types__Mount *m = r->rootfs[i];
        char data[4096];
        unsigned long flags = mount_flags(m->options, m->n_options, data, sizeof data);
        if (mount(m->source, task.rootfs, m->type, flags, data[0] ? data : NULL) != 0) {
            snprintf(msg, msglen, "mounting the rootfs (%s %s): %s", m->type, m->source,
                     strerror(errno));
            return SHIM_INTERNAL;
        }
        task.rootfs_mounted = true;
    }
    return SHIM_OK;
}

static void rootfs_unmount(void)
{
    if (task.rootfs_mounted && umount2(task.rootfs, MNT_DETACH) == 0) task.rootfs_mounted = false;
}

/* Opens a FIFO containerd made for the container's output. Its reader is
 * normally open already; when it is not (a client that went away), O_RDWR
 * opens without waiting for one, so the container is never stuck at
 * open. */
static int open_output(const char *path)
{
    if (!path || !path[0]) return open("/dev/null", O_WRONLY | O_CLOEXEC);
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENXIO) fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static int open_input(const char *path)
{
    if (!path || !path[0]) return open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* In the forked child, before exec: only async-signal-safe calls. */
static void child_fail(int ready_fd, const char *what)
{
    (void)!write(ready_fd, what, strlen(what));
    _exit(125);
}

static void child_exec(int gate_fd, int ready_fd, const char *netns)
{
    int in = open_input(task.stdin_path);
    if (in < 0) child_fail(ready_fd, "cannot open the container's stdin FIFO");
    int out = open_output(task.stdout_path);
    if (out < 0) child_fail(ready_fd, "cannot open the container's stdout FIFO");
    int err = open_output(task.stderr_path);
    if (err < 0) child_fail(ready_fd, "cannot open the container's stderr FIFO");
    if (netns) {
        int nfd = open(netns, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, CLONE_NEWNET) != 0)
            child_fail(ready_fd, "cannot join the container's network namespace");
    }
    /* The shim's log (its stderr) becomes the guest's fd 5. */
    int log = fcntl(2, F_DUPFD_CLOEXEC, 10);
    if (log < 0) log = open("/dev/null", O_WRONLY | O_CLOEXEC);
    /* gate_fd, ready_fd and log are >= 10 (task_spawn), so these never
     * clobber each other; dup2 leaves the copies without O_CLOEXEC. */
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || dup2(gate_fd, 3) < 0 ||
        dup2(ready_fd, 4) < 0 || dup2(log, 5) < 0)
        child_fail(ready_fd, "dup2 failed");
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execl("/proc/self/exe", "containerd-shim-wasmfn-v1", "_guest", task.bundle, task.id,
          task.guest_cache, (char *)NULL);
    child_fail(4, "cannot execute the shim's guest process");
}

static void *reaper(void *arg)
{
    pid_t pid = (pid_t)(intptr_t)arg;
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {}
    pthread_mutex_lock(&task.mu);
    task.rusage = ru;
    task.exit_status = WIFEXITED(st) ? (uint32_t)WEXITSTATUS(st)
                                     : WIFSIGNALED(st) ? 128u + (uint32_t)WTERMSIG(st) : 255u;
    clock_gettime(CLOCK_REALTIME, &task.exited_at);
    bool created = task.state != ST_NONE; /* else Create failed: no task to report */
    if (task.state == ST_CREATED || task.state == ST_RUNNING) task.state = ST_STOPPED;
    Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
    Google__Protobuf__Timestamp ts = timestamp(task.exited_at);
    ev.container_id = task.id;
    ev.id = task.id;
    ev.pid = (uint32_t)pid;
    ev.exit_status = task.exit_status;
    ev.exited_at = &ts;
    if (created) publish("/tasks/exit", "containerd.events.TaskExit", &ev.base);
    pthread_cond_broadcast(&task.cv);
    pthread_mutex_unlock(&task.mu);
    return NULL;
}

/* Starts the guest process and waits until it has loaded its module.
 * Called with task.mu held. */
static int task_spawn(const char *netns, char *msg, size_t msglen)
{
    int gate[2], ready[2];
    if (pipe2(gate, O_CLOEXEC) != 0) goto sys;
    if (pipe2(ready, O_CLOEXEC) != 0) {
        close(gate[0]);
        close(gate[1]);
        goto sys;
    }
    /* Out of the way of 0..4, which the child rearranges. */
    int g = fcntl(gate[0], F_DUPFD_CLOEXEC, 10), w = fcntl(ready[1], F_DUPFD_CLOEXEC, 10);
    close(gate[0]);
    close(ready[1]);
    if (g < 0 || w < 0) {
        if (g >= 0) close(g);
        if (w >= 0) close(w);
        close(gate[1]);
        close(ready[0]);
        goto sys;
    }
    pid_t pid = fork();
    if (pid == 0) child_exec(g, w, netns);
    close(g);
    close(w);
    if (pid < 0) {
        close(gate[1]);
        close(ready[0]);
        goto sys;
    }
    task.pid = pid;
    task.gate_fd = gate[1];
    pthread_t t;
    if (pthread_create(&t, NULL, reaper, (void *)(intptr_t)pid) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(ready[0]);
        snprintf(msg, msglen, "cannot start a thread");
        return SHIM_INTERNAL;
    }
    pthread_detach(t);

    /* The child closes its end empty when ready, or writes one line of
     * error and exits. */
    char buf[1024];
    size_t n = 0;
    struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
    for (;;) {
        int pr = poll(&pfd, 1, TASK_READY_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            snprintf(buf, sizeof buf, "the module did not load within %d s",
                     TASK_READY_TIMEOUT_MS / 1000);
            n = strlen(buf);
            break;
        }
        ssize_t r = read(ready[0], buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sizeof buf - 1) break;
    }
    close(ready[0]);
    buf[n] = 0;
    while (n > 0 && buf[n - 1] == '\n') buf[--n] = 0;
    if (n > 0) {
        kill(pid, SIGKILL);
        snprintf(msg, msglen, "%s", buf);
        return SHIM_FAILED_PRECONDITION;
    }
    return SHIM_OK;
sys:
    snprintf(msg, msglen, "starting the container's process: %s", strerror(errno));
    return SHIM_INTERNAL;
}

/* ---- methods ---------------------------------------------------------------- */

static int task_create(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                       size_t msglen)
{
    Containerd__Task__V2__CreateTaskRequest *r =
        containerd__task__v2__create_task_request__unpack(NULL, len, in);
    if (!r) return snprintf(msg, msglen, "malformed CreateTaskRequest"), SHIM_INVALID_ARGUMENT;
    int code = SHIM_OK;
    shim_spec_t spec;
    memset(&spec, 0, sizeof spec);
    pthread_mutex_lock(&task.mu);
    if (task.state != ST_NONE) {
        snprintf(msg, msglen, "task %s: already exists", r->id);
        code = SHIM_ALREADY_EXISTS;
        goto out;
    }
    if (r->terminal) {
        snprintf(msg, msglen, "a terminal (tty) is not supported: a Wasm guest has none");
        code = SHIM_INVALID_ARGUMENT;
        goto out;
    }
    if (!(task.id = strdup(r->id)) || !(task.bundle = strdup(r->bundle)) ||
        !(task.stdin_path = strdup(r->stdin)) || !(task.stdout_path = strdup(r->stdout)) ||
        !(task.stderr_path = strdup(r->stderr))) {
        snprintf(msg, msglen, "out of memory");
        code = SHIM_INTERNAL;
        goto out;
    }
    /* Checked here so that a bad bundle fails Create with its reason
     * (the guest process reads the same file again). */
    if (shim_spec_load(r->bundle, &spec, msg, msglen) != 0) {
        code = SHIM_INVALID_ARGUMENT;
        goto out;
    }
    shim_config_t cfg;
    if (shim_config_load(r->options ? r->options->type_url : NULL,
                         r->options ? r->options->value.data : NULL,
                         r->options ? r->options->value.len : 0, &cfg, msg, msglen) != 0) {
        code = SHIM_INVALID_ARGUMENT;
        goto out;
    }
    snprintf(task.guest_cache, sizeof task.guest_cache, "%s", cfg.native ? cfg.cache_dir : "-");
    if ((code = rootfs_mount(r, msg, msglen)) != SHIM_OK) goto out;
    if ((code = task_spawn(spec.netns_path, msg, msglen)) != SHIM_OK) {
        if (task.gate_fd >= 0) close(task.gate_fd);
        task.gate_fd = -1;
        /* The reaper records the exit; wait for it so a retry finds the
         * shim clean. */
        while (task.pid && task.state == ST_NONE && task.exited_at.tv_sec == 0)
            pthread_cond_wait(&task.cv, &task.mu);
        rootfs_unmount();
        task.pid = 0;
        goto out;
    }
    task.state = ST_CREATED;
    task.memory_limit_bytes = spec.memory_limit_bytes;
    char pidfile[PATH_MAX];
    snprintf(pidfile, sizeof pidfile, "%s/wasmfn.pid", r->bundle);
    FILE *f = fopen(pidfile, "we");
    if (f) {
        fprintf(f, "%d\n", (int)task.pid);
        fclose(f);
    }

    Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
    io.stdin = r->stdin;
    io.stdout = r->stdout;
    io.stderr = r->stderr;
    Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
    ev.container_id = r->id;
    ev.bundle = r->bundle;
    ev.n_rootfs = r->n_rootfs;
    ev.rootfs = r->rootfs;
    ev.io = &io;
    ev.pid = (uint32_t)task.pid;
    publish("/tasks/create", "containerd.events.TaskCreate", &ev.base);

    Containerd__Task__V2__CreateTaskResponse resp = CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
    resp.pid = (uint32_t)task.pid;
    code = pack(&resp.base, out, out_len);
out:
    if (code != SHIM_OK && task.state == ST_NONE) {
        free(task.id);
        free(task.bundle);
        free(task.stdin_path);
        free(task.stdout_path);
        free(task.stderr_path);
        task.id = task.bundle = task.stdin_path = task.stdout_path = task.stderr_path = NULL;
        memset(&task.exited_at, 0, sizeof task.exited_at);
    }
    pthread_mutex_unlock(&task.mu);
    shim_spec_free(&spec);
    containerd__task__v2__create_task_request__free_unpacked(r, NULL);
    return code;
}

static int task_start(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                      size_t msglen)
{
    Containerd__Task__V2__StartRequest *r = containerd__task__v2__start_request__unpack(NULL, len, in);
    if (!r) return snprintf(msg, msglen, "malformed StartRequest"), SHIM_INVALID_ARGUMENT;
    pthread_mutex_lock(&task.mu);
    int code = check_id(r->id, r->exec_id, msg, msglen);
    if (code == SHIM_OK && task.gate_fd < 0) {
        snprintf(msg, msglen, "task %s: already started", r->id);
        code = SHIM_FAILED_PRECONDITION;
    }
    if (code == SHIM_OK) {
        char go = 1;
        (void)!write(task.gate_fd, &go, 1);
        close(task.gate_fd);
        task.gate_fd = -1;
        if (task.state == ST_CREATED) task.state = ST_RUNNING;
        Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
        ev.container_id = task.id;
        ev.pid = (uint32_t)task.pid;
        publish("/tasks/start", "containerd.events.TaskStart", &ev.base);
        Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
        resp.pid = (uint32_t)task.pid;
        code = pack(&resp.base, out, out_len);
    }
    pthread_mutex_unlock(&task.mu);
    containerd__task__v2__start_request__free_unpacked(r, NULL);
    return code;
}

static int task_wait(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                     size_t msglen)
{
    Containerd__Task__V2__WaitRequest *r = containerd__task__v2__wait_request__unpack(NULL, len, in);
    if (!r) return snprintf(msg, msglen, "malformed WaitRequest"), SHIM_INVALID_ARGUMENT;
    pthread_mutex_lock(&task.mu);
    int code = check_id(r->id, r->exec_id, msg, msglen);
    if (code == SHIM_OK) {
        while (task.state == ST_CREATED || task.state == ST_RUNNING)
            pthread_cond_wait(&task.cv, &task.mu);
        Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
        Google__Protobuf__Timestamp ts = timestamp(task.exited_at);
        resp.exit_status = task.exit_status;
        resp.exited_at = &ts;
        code = pack(&resp.base, out, out_len);
    }
    pthread_mutex_unlock(&task.mu);
    containerd__task__v2__wait_request__free_unpacked(r, NULL);
    return code;
}

static int task_kill(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                     size_t msglen)
{
    (void)out;
    (void)out_len;
    Containerd__Task__V2__KillRequest *r = containerd__task__v2__kill_request__unpack(NULL, len, in);
    if (!r) return snprintf(msg, msglen, "malformed KillRequest"), SHIM_INVALID_ARGUMENT;
    pthread_mutex_lock(&task.mu);
    int code = check_id(r->id, r->exec_id, msg, msglen);
    if (code == SHIM_OK) {
        if (r->signal > 64) {
            snprintf(msg, msglen, "signal %u: no such signal", r->signal);
            code = SHIM_INVALID_ARGUMENT;
        } else if (task.state != ST_CREATED && task.state != ST_RUNNING) {
            /* containerd's errdefs: NotFound = "process already finished". */
            snprintf(msg, msglen, "process already finished");
            code = SHIM_NOT_FOUND;
        } else if (kill(task.pid, (int)r->signal) != 0) {
            snprintf(msg, msglen, "kill: %s", strerror(errno));
            code = SHIM_INTERNAL;
        }
    }
    pthread_mutex_unlock(&task.mu);
    containerd__task__v2__kill_request__free_unpacked(r, NULL);
    return code;
}

static int task_delete(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                       size_t msglen)
{
    Containerd__Task__V2__DeleteRequest *r =
        containerd__task__v2__delete_request__unpack(NULL, len, in);
    if (!r) return snprintf(msg, msglen, "malformed DeleteRequest"), SHIM_INVALID_ARGUMENT;
    pthread_mutex_lock(&task.mu);
    int code = check_id(r->id, r->exec_id, msg, msglen);
    if (code == SHIM_OK && task.state == ST_RUNNING) {
        snprintf(msg, msglen, "task %s is running: kill it first", r->id);
        code = SHIM_FAILED_PRECONDITION;
    }
    if (code == SHIM_OK && task.state == ST_DELETED) {
        snprintf(msg, msglen, "task %s: not found (deleted)", r->id);
        code = SHIM_NOT_FOUND;
    }
    if (code == SHIM_OK) {
        if (task.state == ST_CREATED) {
            /* Never started: closing the gate ends the process. */
            close(task.gate_fd);
            task.gate_fd = -1;
            while (task.state == ST_CREATED) pthread_cond_wait(&task.cv, &task.mu);
        }
        rootfs_unmount();
        task.state = ST_DELETED;
        Google__Protobuf__Timestamp ts = timestamp(task.exited_at);
        Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
        ev.container_id = task.id;
        ev.pid = (uint32_t)task.pid;
        ev.exit_status = task.exit_status;
        ev.exited_at = &ts;
        publish("/tasks/delete", "containerd.events.TaskDelete", &ev.base);
        Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
        resp.pid = (uint32_t)task.pid;
        resp.exit_status = task.exit_status;
        resp.exited_at = &ts;
        code = pack(&resp.base, out, out_len);
    }
    pthread_mutex_unlock(&task.mu);
    containerd__task__v2__delete_request__free_unpacked(r, NULL);
    return code;
}

static int task_state_get(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                          size_t msglen)
{
    Containerd__Task__V2__StateRequest *r = containerd__task__v2__state_request__unpack(NULL, len, in);
    if (!r) return snprintf(msg, msglen, "malformed StateRequest"), SHIM_INVALID_ARGUMENT;
    pthread_mutex_lock(&task.mu);
    int code = check_id(r->id, r->exec_id, msg, msglen);
    if (code == SHIM_OK) {
        static const int status[] = {
            [ST_NONE] = CONTAINERD__V1__TYPES__STATUS__UNKNOWN,
            [ST_CREATED] = CONTAINERD__V1__TYPES__STATUS__CREATED,
            [ST_RUNNING] = CONTAINERD__V1__TYPES__STATUS__RUNNING,
            [ST_STOPPED] = CONTAINERD__V1__TYPES__STATUS__STOPPED,
            [ST_DELETED] = CONTAINERD__V1__TYPES__STATUS__STOPPED,
        };
        Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
        Google__Protobuf__Timestamp ts = timestamp(task.exited_at);
        resp.id = task.id;
        resp.bundle = task.bundle;
        resp.pid = (uint32_t)task.pid;
        resp.status = status[task.state];
        resp.stdin = task.stdin_path;
        resp.stdout = task.stdout_path;
        resp.stderr = task.stderr_path;
        resp.exit_status = task.exit_status;
        resp.exited_at = &ts;
        code = pack(&resp.base, out, out_len);
    }
    pthread_mutex_unlock(&task.mu);
    containerd__task__v2__state_request__free_unpacked(r, NULL);
    return code;
}

static int task_pids(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                     size_t msglen)
{
    (void)in;
    (void)len;
    (void)msg;
    (void)msglen;
    pthread_mutex_lock(&task.mu);
    Containerd__V1__Types__ProcessInfo pi = CONTAINERD__V1__TYPES__PROCESS_INFO__INIT;
    Containerd__V1__Types__ProcessInfo *list[1] = {&pi};
    Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
    if (task.pid && (task.state == ST_CREATED || task.state == ST_RUNNING)) {
        pi.pid = (uint32_t)task.pid;
        resp.n_processes = 1;
        resp.processes = list;
    }
    int code = pack(&resp.base, out, out_len);
    pthread_mutex_unlock(&task.mu);
    return code;
}

static int task_stats(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len, char *msg,
                      size_t msglen)
{
    Containerd__Task__V2__StatsRequest *r = containerd__task__v2__stats_request__unpack(NULL, len, in);
    if (!r) return snprintf(msg, msglen, "malformed StatsRequest"), SHIM_INVALID_ARGUMENT;
    pthread_mutex_lock(&task.mu);
    int code = check_id(r->id, NULL, msg, msglen);
    if (code == SHIM_OK) {
        /* While the state says it runs the pid is our child, unreaped or
         * reaped an instant ago (the reaper then waits for this lock to
         * say so): /proc/PID is its, or gone, never another process's in
         * that instant (the kernel does not reuse a pid that fast). */
        shim_stats_t st = {
            .pid = task.pid,
            .running = task.state == ST_CREATED || task.state == ST_RUNNING,
            .rusage = task.rusage,
            .memory_limit_bytes = task.memory_limit_bytes,
        };
        code = shim_stats_pack(&st, out, out_len);
    }
    pthread_mutex_unlock(&task.mu);
    containerd__task__v2__stats_request__free_unpacked(r, NULL);
    return code;
}

static int task_connect(uint8_t **out, size_t *out_len)
{
    pthread_mutex_lock(&task.mu);
    Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
    resp.shim_pid = (uint32_t)getpid();
    resp.task_pid = (uint32_t)task.pid;
    resp.version = SHIM_VERSION;
    int code = pack(&resp.base, out, out_len);
    pthread_mutex_unlock(&task.mu);
    return code;
}

static int task_shutdown(const uint8_t *in, size_t len)
{
    Containerd__Task__V2__ShutdownRequest *r =
        containerd__task__v2__shutdown_request__unpack(NULL, len, in);
    bool now = r && r->now;
    if (r) containerd__task__v2__shutdown_request__free_unpacked(r, NULL);
    pthread_mutex_lock(&task.mu);
    /* A live task keeps its shim unless containerd insists. */
    if (!now && (task.state == ST_CREATED || task.state == ST_RUNNING)) {
        pthread_mutex_unlock(&task.mu);
        return SHIM_OK;
    }
    if (task.pid && (task.state == ST_CREATED || task.state == ST_RUNNING)) kill(task.pid, SIGKILL);
    rootfs_unmount();
    task.exiting = true;
    pthread_mutex_unlock(&task.mu);
    shim_events_flush(2000);
    if (task.socket_path) unlink(task.socket_path);
    return SHIM_OK;
}

static int dispatch(const char *service, const char *method, const uint8_t *in, size_t len,
                    uint8_t **out, size_t *out_len, char *msg, size_t msglen)
{
    *out = NULL;
    *out_len = 0;
    if (strcmp(service, TASK_SERVICE) != 0) {
        snprintf(msg, msglen, "service %s: not implemented", service);
        return SHIM_UNIMPLEMENTED;
    }
    if (strcmp(method, "Create") == 0) return task_create(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "Start") == 0) return task_start(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "Wait") == 0) return task_wait(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "Kill") == 0) return task_kill(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "Delete") == 0) return task_delete(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "State") == 0) return task_state_get(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "Pids") == 0) return task_pids(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "Connect") == 0) return task_connect(out, out_len);
    if (strcmp(method, "Shutdown") == 0) return task_shutdown(in, len);
    if (strcmp(method, "Stats") == 0) return task_stats(in, len, out, out_len, msg, msglen);
    if (strcmp(method, "CloseIO") == 0) return SHIM_OK;
    snprintf(msg, msglen, "%s: not implemented by the wasmfn shim", method);
    return SHIM_UNIMPLEMENTED;
}

shim_method_fn shim_task_service(const shim_opts_t *opts, const char *socket_path)
{
    task.opts = opts;
    task.socket_path = socket_path;
    return dispatch;
}

bool shim_task_exiting(void)
{
    pthread_mutex_lock(&task.mu);
    bool e = task.exiting;
    pthread_mutex_unlock(&task.mu);
    return e;
}
