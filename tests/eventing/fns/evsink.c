/*
 * evsink.c — a test function for eventing through the daemon. For every
 * CloudEvent (binary mode: HTTP_CE_* variables, data on stdin) it writes
 * "event TYPE ID DATA" to stderr, so the test reads what arrived from
 * `wasmfn logs`. It answers 500 when the data contains "fail", and answers
 * an event of type "ask" with a reply event of type "answer" (ce-* headers
 * in its CGI response), which goes back to the broker it came from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    static char data[65536];
    size_t n = fread(data, 1, sizeof data - 1, stdin);
    data[n] = '\0';
    const char *type = getenv("HTTP_CE_TYPE");
    const char *id = getenv("HTTP_CE_ID");
    fprintf(stderr, "event %s %s %s\n", type ? type : "-", id ? id : "-", data);
    if (strstr(data, "fail")) {
        printf("Status: 500 Internal Server Error\nContent-Type: text/plain\n\nfailed on purpose\n");
        return 0;
    }
    if (type && strcmp(type, "ask") == 0) {
        printf("Content-Type: application/json\n"
               "ce-specversion: 1.0\nce-type: answer\nce-source: /evsink\nce-id: reply-%s\n\n"
               "{\"reply\":\"to %s\"}\n", id ? id : "-", id ? id : "-");
        return 0;
    }
    printf("Content-Type: text/plain\n\nok\n");
    return 0;
}
