/*
 * signals.c — what the parts of a container's process (guest.c, http.c)
 * share: the signal it received, the running guest that signal interrupts,
 * and its lines in the shim's log.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shim/guest.h"

static eng_exec_t *volatile g_exec;
static volatile sig_atomic_t g_signal;
static const char *g_id = ""; /* the container's id, for the log */

static void on_signal(int sig)
{
    g_signal = sig;
    eng_exec_t *x = g_exec;
    if (x) eng_exec_interrupt(x);
}

void shim_guest_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int shim_guest_signal(void)
{
    return g_signal;
}

void shim_guest_exec_set(eng_exec_t *x)
{
    g_exec = x;
}

void shim_guest_id_set(const char *id)
{
    g_id = id;
}

void shim_guest_log(const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "shim: container %s: ", g_id);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    (void)!write(SHIM_GUEST_LOG_FD, line, (size_t)n);
}
