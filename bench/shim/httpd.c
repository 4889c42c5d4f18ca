/*
 * httpd.c — the native side of bench/shim/start_latency.sh's HTTP rows: a
 * static x86-64 server that answers every request on 0.0.0.0:$PORT (8080 by
 * default) with 200 and "hello\n", one connection at a time, as small as a
 * native HTTP container gets. Not a server for anything else: it reads one
 * buffer of the request and does not parse it.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_term(int sig)
{
    (void)sig;
    _exit(0); /* pid 1 in its namespace: no default action for SIGTERM */
}

int main(void)
{
    signal(SIGTERM, on_term);
    const char *port = getenv("PORT");
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port ? atoi(port) : 8080)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) return 1;
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n";
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        char buf[4096];
        if (read(c, buf, sizeof buf) > 0) (void)!write(c, answer, sizeof answer - 1);
        close(c);
    }
}
