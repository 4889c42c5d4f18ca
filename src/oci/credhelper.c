/*
 * credhelper.c — Docker credential helpers: the programs named by
 * config.json's "credsStore" and "credHelpers" (docker-credential-NAME,
 * e.g. docker-credential-pass, -secretservice, -ecr-login), which keep
 * registry passwords out of the file. The protocol is the helper's
 * command-line interface: `docker-credential-NAME get` reads the server
 * on stdin and prints {"ServerURL", "Username", "Secret"}; `store` reads
 * that object. A missing entry is an exit status of 1 with "credentials
 * not found" on stdout.
 *
 * The helper runs with a deadline (it may prompt or hang on a locked
 * keyring) and its output is bounded; its stderr goes nowhere but the
 * error we report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "oci/internal.h"

#define HELPER_TIMEOUT_MS 10000
#define HELPER_MAX_OUTPUT (64u << 10)

extern char **environ;

bool oci_credhelper_name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 64) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return name[0] != '.';
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs docker-credential-NAME ACTION with input on its stdin; *out gets
 * its stdout (NUL-terminated) and *status its exit status. Returns -1
 * with err when it cannot be run, is killed or overruns its deadline. */
static int run_helper(const char *name, const char *action, const char *input, cm_buf_t *out,
                      int *status, char *err, size_t errlen)
{
    char prog[80];
    snprintf(prog, sizeof prog, "docker-credential-%s", name);
    int in[2] = {-1, -1}, op[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(op, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "%s: pipe: %s", prog, strerror(errno));
        goto fail;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {prog, (char *)action, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(op[1]);
    in[0] = op[1] = -1;
    if (rc != 0) {
        snprintf(err, errlen, "credential helper %s: %s", prog,
                 rc == ENOENT ? "not found on PATH" : strerror(rc));
        goto fail;
    }
    /* The input is small (a URL or a short JSON object): it fits the pipe's
     * buffer, so writing it all first cannot deadlock with our reading. */
    size_t n = strlen(input);
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old); /* a helper that exits early */
    ssize_t w = write(in[1], input, n);
    (void)w;
    close(in[1]);
    in[1] = -1;
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    int64_t deadline = mono_ms() + HELPER_TIMEOUT_MS;
    bool over = false, late = false;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            late = true;
            break;
        }
        struct pollfd p = {.fd = op[0], .events = POLLIN};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        char chunk[4096];
        ssize_t r = read(op[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (out->len + (size_t)r > HELPER_MAX_OUTPUT || cm_buf_append(out, chunk, (size_t)r) != 0) {
            over = true;
            break;
        }
    }
    close(op[0]);
    op[0] = -1;
    if (late || over) kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (late || over) {
        snprintf(err, errlen, "credential helper %s %s: %s", prog, action,
                 late ? "no answer within 10 s" : "more than 64 KiB of output");
        return -1;
    }
    if (!WIFEXITED(st)) {
        snprintf(err, errlen, "credential helper %s %s: killed by signal %d", prog, action,
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        return -1;
    }
    if (cm_buf_append(out, "", 1) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    out->len--;
    *status = WEXITSTATUS(st);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0) close(in[i]);
        if (op[i] >= 0) close(op[i]);
    }
    return -1;
}

/* The first line of a helper's message, for an error. */
static void first_line(const cm_buf_t *b, char *out, size_t n)
{
    size_t len = b->data ? strcspn(b->data, "\r\n") : 0;
    if (len >= n) len = n - 1;
    if (len) memcpy(out, b->data, len);
    out[len] = 0;
}

int oci_credhelper_get(const char *name, const char *server, oci_creds_t *c, char *err,
                       size_t errlen)
{
    cm_buf_t out = {0};
    int status = 0;
    if (run_helper(name, "get", server, &out, &status, err, errlen) != 0) {
        cm_buf_free(&out);
        return -1;
    }
    int rc = -1;
    char line[200];
    first_line(&out, line, sizeof line);
    if (status != 0) {
        if (strstr(line, "not found")) {
            rc = 0; /* no entry for this server */
        } else {
            snprintf(err, errlen, "credential helper docker-credential-%s get: exit status %d%s%s",
                     name, status, line[0] ? ": " : "", line);
        }
        cm_buf_free(&out);
        return rc;
    }
    cJSON *j = cJSON_ParseWithLength(out.data ? out.data : "", out.len);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "Username");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "Secret");
    if (!cJSON_IsString(u) || !cJSON_IsString(s)) {
        snprintf(err, errlen,
                 "credential helper docker-credential-%s get: not a {\"Username\", \"Secret\"} object",
                 name);
    } else if (strcmp(u->valuestring, "<token>") == 0) {
        snprintf(err, errlen,
                 "credential helper docker-credential-%s holds an identity token for %s: not "
                 "supported, only a user name and password",
                 name, server);
    } else if (strlen(u->valuestring) >= sizeof c->user || strlen(s->valuestring) >= sizeof c->password) {
        snprintf(err, errlen, "credential helper docker-credential-%s get: user or secret too long",
                 name);
    } else {
        snprintf(c->user, sizeof c->user, "%s", u->valuestring);
        snprintf(c->password, sizeof c->password, "%s", s->valuestring);
        snprintf(c->source, sizeof c->source, "credential helper docker-credential-%s", name);
        c->found = true;
        rc = 1;
    }
    cJSON_Delete(j);
    cm_buf_free(&out);
    return rc;
}

int oci_credhelper_store(const char *name, const char *server, const char *user,
                         const char *password, char *err, size_t errlen)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "ServerURL", server) ||
        !cJSON_AddStringToObject(j, "Username", user) ||
        !cJSON_AddStringToObject(j, "Secret", password)) {
        cJSON_Delete(j);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cm_buf_t out = {0};
    int status = 0;
    int rc = run_helper(name, "store", text, &out, &status, err, errlen);
    free(text);
    if (rc == 0 && status != 0) {
        char line[200];
        first_line(&out, line, sizeof line);
        snprintf(err, errlen, "credential helper docker-credential-%s store: exit status %d%s%s", name,
                 status, line[0] ? ": " : "", line);
        rc = -1;
    }
    cm_buf_free(&out);
    return rc;
}
