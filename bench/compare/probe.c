/*
 * probe.c — latency and memory probes for `make bench` (bench/compare/run.sh).
 *
 *   probe get PORT PATH N [FIRST]
 *       N sequential GET requests to 127.0.0.1:PORT, each on a new connection
 *       (Connection: close); "%d" in PATH is replaced by the request's number
 *       (FIRST, FIRST+1, ...; FIRST defaults to 1),
 *       so each request can go to a different function. Prints one latency
 *       per line in microseconds: connect to the last byte of the response.
 *   probe start PORT PATH N -- COMMAND [ARG...]
 *       N times: start COMMAND, then connect to 127.0.0.1:PORT every 200 us
 *       until it accepts, GET PATH and read the response; prints the time
 *       from fork to the response's last byte in microseconds, then kills
 *       COMMAND (SIGKILL) and waits for it. A process's cold start.
 *   probe rss -- COMMAND [ARG...]
 *       Runs COMMAND once (stdin and stdout /dev/null) and prints its peak
 *       resident set in KiB (getrusage ru_maxrss).
 *
 * Every response must be "HTTP/1.x 200"; anything else is an error (exit 1)
 * so a broken system cannot pass for a fast one. Loops are bounded: a
 * request gives up after 10 s, a start after 20 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double probe_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One request on a new connection. Returns 0 on a 200, 1 when the connection
 * was refused (nothing listening yet), -1 on any other failure. */
static int probe_request(int port, const char *path, double deadline_us)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int refused = errno == ECONNREFUSED;
        close(fd);
        return refused ? 1 : -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path,
                     port);
    if (n <= 0 || n >= (int)sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[65536];
    size_t got = 0;
    for (;;) {
        int left_ms = (int)((deadline_us - probe_now_us()) / 1000);
        if (left_ms <= 0) break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, left_ms) <= 0) break;
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == ECONNRESET && got == 0) {
            close(fd);
            return 1; /* accepted by the kernel, closed before serving */
        }
        if (r <= 0) {
            close(fd);
            buf[got] = 0;
            if (got == 0) return 1;
            return strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0 ? 0 : -1;
        }
        got += (size_t)r;
        if (got >= sizeof buf - 1) got = 16; /* keep the status line, drop the rest */
    }
    close(fd);
    return -1;
}

static int probe_get(int port, const char *fmt, int count, int first)
{
    for (int i = 0; i < count; i++) {
        char path[512];
        snprintf(path, sizeof path, fmt, first + i);
        double t0 = probe_now_us();
        int rc = probe_request(port, path, t0 + 10e6);
        double t1 = probe_now_us();
        if (rc != 0) {
            fprintf(stderr, "probe: GET %s on port %d failed (%s)\n", path, port,
                    rc == 1 ? "refused" : "not a 200 or no answer in 10 s");
            return 1;
        }
        printf("%.1f\n", t1 - t0);
    }
    return 0;
}

static pid_t probe_spawn(char **argv, int quiet)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        if (quiet) dup2(devnull, 2);
    }
    setpgid(0, 0);
    execvp(argv[0], argv);
    _exit(127);
}

static int probe_start(int port, const char *path, int count, char **argv)
{
    for (int i = 0; i < count; i++) {
        double t0 = probe_now_us();
        pid_t pid = probe_spawn(argv, 1);
        if (pid < 0) return 1;
        int rc;
        for (;;) {
            rc = probe_request(port, path, probe_now_us() + 10e6);
            if (rc != 1) break;
            if (probe_now_us() - t0 > 20e6 || waitpid(pid, NULL, WNOHANG) == pid) {
                rc = -1;
                break;
            }
            usleep(200);
        }
        double t1 = probe_now_us();
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (rc != 0) {
            fprintf(stderr, "probe: %s did not answer GET %s on port %d with a 200\n", argv[0],
                    path, port);
            return 1;
        }
        printf("%.1f\n", t1 - t0);
        /* the port must be free before the next start */
        for (int k = 0; k < 1000 && probe_request(port, path, probe_now_us() + 1e5) != 1; k++)
            usleep(1000);
    }
    return 0;
}

static int probe_rss(char **argv)
{
    pid_t pid = probe_spawn(argv, 0);
    if (pid < 0) return 1;
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) return 1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "probe: %s failed\n", argv[0]);
        return 1;
    }
    printf("%ld\n", ru.ru_maxrss);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: probe get PORT PATH N [FIRST]\n"
                    "       probe start PORT PATH N -- COMMAND [ARG...]\n"
                    "       probe rss -- COMMAND [ARG...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "get") == 0)
        return probe_get(atoi(argv[2]), argv[3], atoi(argv[4]), argc == 6 ? atoi(argv[5]) : 1);
    if (argc >= 7 && strcmp(argv[1], "start") == 0 && strcmp(argv[5], "--") == 0)
        return probe_start(atoi(argv[2]), argv[3], atoi(argv[4]), argv + 6);
    if (argc >= 4 && strcmp(argv[1], "rss") == 0 && strcmp(argv[2], "--") == 0)
        return probe_rss(argv + 3);
    return usage();
}
