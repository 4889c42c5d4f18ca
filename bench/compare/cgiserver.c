/*
 * cgiserver.c — the process-per-request baseline of `make bench`: a minimal
 * HTTP/1.1 server that answers every request by fork/exec of one command,
 * CGI style (RFC 3875): the request as environment variables, the body on
 * stdin, a CGI response (headers, blank line, body) read from stdout.
 *
 *   cgiserver PORT COMMAND [ARG...]
 *
 * It listens on 127.0.0.1:PORT, serves each connection on its own thread
 * (keep-alive, one request at a time) and runs COMMAND once per request.
 * The request path's first segment names the function: "{}" in COMMAND and
 * its ARGs is replaced by it (letters, digits, '-' and '_' only; anything
 * else is a 404), and PATH_INFO is the rest of the path. So
 * `cgiserver 9000 native/{}` runs native/hello for /hello/x, and
 * `cgiserver 9001 /usr/bin/node node_wasi.mjs wasm/{}.wasm` runs it in Node. Benchmark tool, not a web server: bodies up to
 * 1 MiB, no chunked requests, and the body is written to the child before its
 * output is read (our functions read all of stdin first).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_HEAD 16384
#define MAX_BODY (1 << 20)

static char **cmd_argv;
static int listen_port;

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static int buf_put(buf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Runs the command with `env` and `body`; its stdout goes to `out`.
 * Returns 0 when the child ran and exited (any status), -1 otherwise. */
static int cgiserver_child_run(char **argv, char **env, const char *body, size_t body_len,
                               buf_t *out)
{
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC) != 0) return -1;
    if (pipe2(outp, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(outp[0]), close(outp[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        execve(argv[0], argv, env);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    int rc = write_all(in[1], body, body_len);
    close(in[1]);
    char tmp[65536];
    for (;;) {
        ssize_t r = read(outp[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (buf_put(out, tmp, (size_t)r) != 0) rc = -1;
    }
    close(outp[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) rc = -1;
    return rc;
}

/* Turns a CGI response into an HTTP/1.1 response on `fd`. */
/* `fail` (502, 404) answers that status without looking at `cgi`. */
static int cgiserver_respond(int fd, const buf_t *cgi, int ok, int fail, int keep)
{
    buf_t head = {0};
    const char *body = "";
    size_t body_len = 0;
    int status = 200;
    char line[512];
    buf_t hdrs = {0};
    char *end = ok && cgi->p ? strstr(cgi->p, "\n\n") : NULL;
    char *crlf = ok && cgi->p ? strstr(cgi->p, "\r\n\r\n") : NULL;
    size_t sep = 2;
    if (crlf && (!end || crlf < end)) end = crlf, sep = 4;
    if (!end || fail) {
        status = fail ? fail : 502;
        body = status == 404 ? "not found\n" : "bad gateway\n";
        body_len = strlen(body);
    } else {
        body = end + sep;
        body_len = cgi->len - (size_t)(body - cgi->p);
        char *p = cgi->p;
        while (p < end) {
            char *nl = memchr(p, '\n', (size_t)(end - p) + 1);
            if (!nl) nl = end;
            size_t n = (size_t)(nl - p);
            if (n && p[n - 1] == '\r') n--;
            if (n >= sizeof line) n = sizeof line - 1;
            memcpy(line, p, n);
            line[n] = 0;
            if (strncasecmp(line, "Status:", 7) == 0)
                status = atoi(line + 7);
            else if (n) {
                buf_put(&hdrs, line, n);
                buf_put(&hdrs, "\r\n", 2);
            }
            p = nl + 1;
        }
    }
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Other";
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s", status,
                     reason, body_len, keep ? "" : "Connection: close\r\n");
    buf_put(&head, line, (size_t)n);
    if (hdrs.len) buf_put(&head, hdrs.p, hdrs.len);
    buf_put(&head, "\r\n", 2);
    int rc = write_all(fd, head.p, head.len);
    if (rc == 0) rc = write_all(fd, body, body_len);
    free(head.p);
    free(hdrs.p);
    return rc;
}

static const char *header_value(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ') v++;
            return v;
        }
    }
    return NULL;
}

static char *env_of(const char *name, const char *value, size_t n)
{
    char *s;
    if (asprintf(&s, "%s=%.*s", name, (int)n, value) < 0) return NULL;
    return s;
}

static void *cgiserver_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    buf_t in = {0};
    char tmp[16384];
    for (;;) {
        char *hend;
        while (!(hend = in.p ? strstr(in.p, "\r\n\r\n") : NULL)) {
            if (in.len > MAX_HEAD) goto done;
            ssize_t r = read(fd, tmp, sizeof tmp);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) goto done;
            buf_put(&in, tmp, (size_t)r);
        }
        size_t head_len = (size_t)(hend - in.p) + 4;
        hend[2] = 0; /* the head, as a string ending in its last \r\n */
        const char *cl = header_value(in.p, "Content-Length");
        size_t body_len = cl ? strtoul(cl, NULL, 10) : 0;
        if (body_len > MAX_BODY) goto done;
        while (in.len < head_len + body_len) {
            ssize_t r = read(fd, tmp, sizeof tmp);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) goto done;
            buf_put(&in, tmp, (size_t)r);
        }
        /* request line: METHOD SP TARGET SP VERSION */
        char *sp1 = strchr(in.p, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (!sp1 || !sp2) goto done;
        const char *target = sp1 + 1;
        size_t target_len = (size_t)(sp2 - target);
        const char *q = memchr(target, '?', target_len);
        size_t path_len = q ? (size_t)(q - target) : target_len;
        /* the function: the first path segment */
        size_t name_len = 0;
        if (path_len > 1 && target[0] == '/')
            name_len = strspn(target + 1, "abcdefghijklmnopqrstuvwxyz"
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
        if (name_len == 0 || name_len > 64 ||
            (1 + name_len < path_len && target[1 + name_len] != '/')) {
            buf_t none = {0};
            cgiserver_respond(fd, &none, 0, 404, 0);
            goto done;
        }
        char name[65];
        memcpy(name, target + 1, name_len);
        name[name_len] = 0;
        char *argv[64];
        int argc = 0;
        for (; cmd_argv[argc] && argc < 63; argc++) {
            const char *a = cmd_argv[argc], *ph = strstr(a, "{}");
            argv[argc] = ph ? NULL : strdup(a);
            if (ph && asprintf(&argv[argc], "%.*s%s%s", (int)(ph - a), a, name, ph + 2) < 0)
                argv[argc] = NULL;
            if (!argv[argc]) goto done;
        }
        argv[argc] = NULL;
        const char *path = target + 1 + name_len;
        path_len -= 1 + name_len;
        const char *ct = header_value(in.p, "Content-Type");
        const char *conn = header_value(in.p, "Connection");
        int keep = !(conn && strncasecmp(conn, "close", 5) == 0) &&
                   strncmp(sp2 + 1, "HTTP/1.0", 8) != 0;
        char port[16], clen[24];
        snprintf(port, sizeof port, "%d", listen_port);
        snprintf(clen, sizeof clen, "%zu", body_len);
        char *env[] = {
            env_of("REQUEST_METHOD", in.p, (size_t)(sp1 - in.p)),
            env_of("PATH_INFO", path, path_len),
            env_of("QUERY_STRING", q ? q + 1 : "", q ? target_len - path_len - 1 : 0),
            env_of("REQUEST_URI", target, target_len),
            env_of("CONTENT_TYPE", ct ? ct : "", ct ? strcspn(ct, "\r") : 0),
            env_of("CONTENT_LENGTH", clen, strlen(clen)),
            env_of("SERVER_PORT", port, strlen(port)),
            env_of("SERVER_NAME", "127.0.0.1", 9),
            env_of("SERVER_PROTOCOL", "HTTP/1.1", 8),
            env_of("GATEWAY_INTERFACE", "CGI/1.1", 7),
            env_of("SCRIPT_NAME", "", 0),
            NULL,
        };
        buf_t out = {0};
        int ok = cgiserver_child_run(argv, env, in.p + head_len, body_len, &out) == 0;
        for (char **e = env; *e; e++) free(*e);
        for (char **a = argv; *a; a++) free(*a);
        int rc = cgiserver_respond(fd, &out, ok, ok ? 0 : 502, keep);
        free(out.p);
        if (rc != 0 || !keep) goto done;
        memmove(in.p, in.p + head_len + body_len, in.len - head_len - body_len);
        in.len -= head_len + body_len;
        in.p[in.len] = 0;
    }
done:
    free(in.p);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cgiserver PORT COMMAND [ARG...]\n");
        return 2;
    }
    listen_port = atoi(argv[1]);
    cmd_argv = argv + 2;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 512) != 0) {
        fprintf(stderr, "cgiserver: cannot listen on 127.0.0.1:%d: %s\n", listen_port,
                strerror(errno));
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
            fprintf(stderr, "cgiserver: accept: %s\n", strerror(errno));
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &attr, cgiserver_conn, (void *)(intptr_t)fd) != 0) close(fd);
    }
}
