/*
 * main.c — containerd-shim-wasmfn-v1's command line: containerd's runtime
 * v2 actions `start` and `delete`, and the internal roles `serve` (the
 * shim daemon) and `_guest` (a container's process). See shim.h.
 *
 * containerd runs `containerd-shim-wasmfn-v1 -namespace NS -address
 * CONTAINERD_SOCK -publish-binary CONTAINERD [-debug] -id ID start` in the
 * bundle directory, reads the task service's address from its stdout, and
 * connects. Flags are Go-style (-flag value, -flag=value, --flag value),
 * as containerd writes them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "shim/shim.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: containerd-shim-wasmfn-v1 -namespace NS -address ADDR -publish-binary BIN\n"
            "           -id ID [-bundle DIR] [-debug] start|delete\n"
            "\n"
            "containerd's runtime v2 shim for WebAssembly (runtime type %s).\n"
            "containerd runs it; see docs/kubernetes.md. -v prints the version.\n",
            SHIM_RUNTIME_TYPE);
}

/* Parses Go-style flags; returns the action (the first non-flag) or NULL. */
static const char *parse_flags(int argc, char **argv, shim_opts_t *o, const char **socket_path)
{
    const char *action = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (!action) action = a;
            continue;
        }
        a += a[1] == '-' ? 2 : 1;
        char name[64];
        const char *eq = strchr(a, '='), *val = NULL;
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        if (n >= sizeof name) return NULL;
        memcpy(name, a, n);
        name[n] = 0;
        if (strcmp(name, "debug") == 0) {
            o->debug = true;
            continue;
        }
        if (strcmp(name, "v") == 0 || strcmp(name, "version") == 0) return "version";
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) return "help";
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else return NULL;
        if (strcmp(name, "namespace") == 0) o->ns = val;
        else if (strcmp(name, "id") == 0) o->id = val;
        else if (strcmp(name, "address") == 0) o->address = val;
        else if (strcmp(name, "publish-binary") == 0) o->publish_binary = val;
        else if (strcmp(name, "bundle") == 0) o->bundle = val;
        else if (strcmp(name, "socket") == 0) *socket_path = val;
        /* unknown flags of newer containerd releases are ignored */
    }
    return action;
}

/* The task socket: BASE/s/HEX, BASE the directory of containerd's own
 * socket (its state directory, /run/containerd by default, as runc's shim
 * uses), HEX a hash of the socket, namespace and id, so that two
 * containerds on one machine never share a path. */
static int socket_path_make(const shim_opts_t *o, char *out, size_t outlen)
{
    const char *addr = o->address;
    if (strncmp(addr, "unix://", 7) == 0) addr += 7;
    const char *slash = strrchr(addr, '/');
    char dir[PATH_MAX];
    int dl = slash ? (int)(slash - addr) : 0;
    if (snprintf(dir, sizeof dir, "%.*s/s", dl, slash ? addr : ".") >= (int)sizeof dir) return -1;
    mkdir(dir, 0711); /* an existing one is fine; bind says otherwise */
    char key[PATH_MAX * 2];
    snprintf(key, sizeof key, "%s/%s/%s", o->address, o->ns, o->id);
    uint8_t d[32];
    cli_sha256((const uint8_t *)key, strlen(key), d);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    struct sockaddr_un sa;
    if ((size_t)snprintf(out, outlen, "%s/%s", dir, hex) >= outlen ||
        strlen(out) >= sizeof sa.sun_path)
        return -1;
    return 0;
}

static int action_start(const shim_opts_t *o, char **argv)
{
    char path[PATH_MAX];
    if (socket_path_make(o, path, sizeof path) != 0) {
        fprintf(stderr, "containerd-shim-wasmfn-v1: the task socket's path under %s is too long\n",
                o->address);
        return 1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) return perror("socket"), 1;
    /* A socket left by a shim that died is stale: replace it. One that
     * answers belongs to a live shim for this very task. */
    if (connect(lfd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        fprintf(stderr, "containerd-shim-wasmfn-v1: task %s: a shim already serves %s\n", o->id,
                path);
        return 1;
    }
    close(lfd);
    unlink(path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0077);
    int b = lfd < 0 ? -1 : bind(lfd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (b != 0 || listen(lfd, 64) != 0) {
        fprintf(stderr, "containerd-shim-wasmfn-v1: %s: %s\n", path, strerror(errno));
        return 1;
    }

    pid_t pid = fork();
    if (pid < 0) return perror("fork"), 1;
    if (pid == 0) {
        /* The shim outlives this process and must not die with
         * containerd's process group. */
        setsid();
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (lfd == 3) fcntl(3, F_SETFD, 0); /* keep it across exec */
        else dup2(lfd, 3);
        const char *args[20];
        int n = 0;
        args[n++] = argv[0];
        args[n++] = "-namespace", args[n++] = o->ns;
        args[n++] = "-id", args[n++] = o->id;
        args[n++] = "-address", args[n++] = o->address;
        args[n++] = "-publish-binary", args[n++] = o->publish_binary ? o->publish_binary : "";
        args[n++] = "-bundle", args[n++] = o->bundle;
        args[n++] = "-socket", args[n++] = path;
        if (o->debug) args[n++] = "-debug";
        args[n++] = "serve";
        args[n] = NULL;
        execv("/proc/self/exe", (char **)args);
        _exit(127);
    }
    char addr[PATH_MAX + 8];
    snprintf(addr, sizeof addr, "unix://%s", path);
    /* containerd reads the file back to reconnect after it restarts. */
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/address", o->bundle);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        (void)!write(fd, addr, strlen(addr));
        close(fd);
    }
    printf("%s", addr);
    return 0;
}

static int action_serve(shim_opts_t *o, const char *socket_path)
{
    fcntl(3, F_SETFD, FD_CLOEXEC);
    /* containerd copies what the shim writes to the bundle's "log" FIFO
     * into its own log. Non-blocking: a log nobody reads drops lines
     * instead of stopping the shim. */
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/log", o->bundle);
    int fd = open(log, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
    signal(SIGPIPE, SIG_IGN);
    shim_events_init(o);
    shim_ttrpc_serve(3, shim_task_service(o, socket_path));
    return 0;
}

/* Cleans up after a shim that died: its guest and rootfs mount. */
static int action_delete(const shim_opts_t *o)
{
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/wasmfn.pid", o->bundle);
    FILE *f = fopen(file, "re");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1) pid = 0;
        fclose(f);
    }
    if (pid > 1) {
        /* Only our guest: a pid may have been reused since. */
        char cmd[256] = "", proc[64];
        snprintf(proc, sizeof proc, "/proc/%d/cmdline", pid);
        int cfd = open(proc, O_RDONLY | O_CLOEXEC);
        ssize_t n = cfd >= 0 ? read(cfd, cmd, sizeof cmd - 1) : -1;
        if (cfd >= 0) close(cfd);
        if (n > 0 && memmem(cmd, (size_t)n, "_guest", 7)) kill(pid, SIGKILL);
    }
    snprintf(file, sizeof file, "%s/rootfs", o->bundle);
    umount2(file, MNT_DETACH);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = now.tv_sec;
    ts.nanos = (int32_t)now.tv_nsec;
    Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
    resp.pid = (uint32_t)(pid > 0 ? pid : 0);
    resp.exit_status = 128 + SIGKILL;
    resp.exited_at = &ts;
    uint8_t buf[128];
    size_t len = containerd__task__v2__delete_response__pack(&resp, buf);
    fwrite(buf, 1, len, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "_guest") == 0) return shim_guest_main(argc, argv);
    /* The native compiler (native.c, runtime/compiler.c): the same code as
     * `wasmfn compile`, so that the engine build that loads native code is
     * the one that made it. */
    if (argc >= 2 && strcmp(argv[1], "compile") == 0) return cli_compile_main(argc - 1, argv + 1);
    shim_opts_t o = {0};
    const char *socket_path = NULL;
    const char *action = parse_flags(argc, argv, &o, &socket_path);
    if (!action || strcmp(action, "help") == 0) {
        usage(action ? stdout : stderr);
        return action ? 0 : 2;
    }
    if (strcmp(action, "version") == 0) {
        printf("containerd-shim-wasmfn-v1 (%s, runtime %s)\n", SHIM_VERSION, SHIM_RUNTIME_TYPE);
        return 0;
    }
    static char cwd[PATH_MAX];
    if (!o.bundle) o.bundle = getcwd(cwd, sizeof cwd) ? cwd : ".";
    if (!o.id || !o.ns || !o.address) {
        fprintf(stderr, "containerd-shim-wasmfn-v1: -id, -namespace and -address are required\n");
        return 2;
    }
    if (strcmp(action, "start") == 0) return action_start(&o, argv);
    if (strcmp(action, "delete") == 0) return action_delete(&o);
    if (strcmp(action, "serve") == 0 && socket_path) return action_serve(&o, socket_path);
    fprintf(stderr, "containerd-shim-wasmfn-v1: unknown action '%s'\n", action);
    usage(stderr);
    return 2;
}
