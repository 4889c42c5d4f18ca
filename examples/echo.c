/*
 * echo.c — shows what a function receives: the CGI environment (request
 * method, path, query, one HTTP_* variable per request header, the
 * function's own env) and then the request body, echoed back unchanged.
 *
 *   curl -d 'hi' 'http://127.0.0.1:8080/fn/echo/a/b?x=1' -H 'X-Demo: 1'
 *
 * The query `?status=NNN` makes it answer with that status (to try how
 * statuses travel through CGI's Status header).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    const char *st = q ? strstr(q, "status=") : NULL;
    int status = st ? atoi(st + 7) : 200;
    if (status < 100 || status > 599) status = 200;

    size_t n = 0;
    while (environ[n]) n++;
    char **env = malloc((n + 1) * sizeof *env);
    if (!env) return 1;
    memcpy(env, environ, (n + 1) * sizeof *env);
    qsort(env, n, sizeof *env, cmp);

    printf("Status: %d\n", status);
    printf("Content-Type: text/plain\n");
    printf("X-Echo-Env-Count: %zu\n\n", n);
    for (size_t i = 0; i < n; i++) printf("%s\n", env[i]);
    printf("\n");

    /* The body: stdin, echoed as is. */
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, r, stdout);
    free(env);
    return 0;
}
