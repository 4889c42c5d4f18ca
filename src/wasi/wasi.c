/*
 * wasi.c — the WASI context and everything of wasi_snapshot_preview1 that is
 * not the filesystem: args, environ, clocks, random, poll_oneoff, proc_*,
 * sched_yield, sock_*; and linking a module's imports to host functions
 * (the descriptor table and host-errno translation are in fd.c, the
 * filesystem calls in fs.c).
 *
 * Every host function goes through one trampoline: the function's env is
 * a binding {context, implementation}, the trampoline fetches the caller's
 * memory 0 (base and size, fresh on every call since memory.grow may move
 * it) and stores the implementation's errno in the i32 result. Every guest
 * pointer is bounds-checked with wasi_mem_ok before it is touched; a bad one
 * is EFAULT for the guest, never a host crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wasi/internal.h"

/* ---- the context -------------------------------------------------------- */

typedef uint16_t (*wasi_impl_t)(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a);

/* What a host function's env points at. */
typedef struct wasi_binding {
    wasi_ctx_t *w;
    wasi_impl_t fn;
} wasi_binding_t;

static void stdio_reset(wasi_fd_t *f, int host)
{
    struct stat st;
    wasi_fd_release(f);
    f->kind = WFD_HOST;
    f->host = host;
    f->owned = false;
    f->filetype = fstat(host, &st) == 0 ? wasi_filetype_from_mode(st.st_mode) : WFT_UNKNOWN;
    f->rights_base = f->filetype == WFT_REG ? WR_FILE : WR_STREAM;
    f->rights_inheriting = 0;
}

static long discard_output(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)data;
    return (long)len;
}

static wasi_ctx_t *ctx_new(bool inherit_stdio);

wasi_ctx_t *wasi_ctx_new(void) { return ctx_new(true); }

wasi_ctx_t *wasi_ctx_new_detached(void) { return ctx_new(false); }

static wasi_ctx_t *ctx_new(bool inherit_stdio)
{
    wasi_ctx_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->max_fds = 1024;
    w->nfds = 8;
    w->fds = calloc(w->nfds, sizeof *w->fds);
    if (!w->fds) {
        free(w);
        return NULL;
    }
    for (uint32_t i = 0; i < w->nfds; i++) w->fds[i].host = -1;
    if (inherit_stdio) {
        for (int i = 0; i < 3; i++) stdio_reset(&w->fds[i], i);
    } else {
        wasi_ctx_set_stdin_bytes(w, (const uint8_t *)"", 0);
        wasi_ctx_set_output(w, 1, discard_output, NULL);
        wasi_ctx_set_output(w, 2, discard_output, NULL);
    }
    return w;
}

static void strv_free(char **v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void wasi_ctx_free(wasi_ctx_t *w)
{
    if (!w) return;
    for (uint32_t i = 0; i < w->nfds; i++) wasi_fd_release(&w->fds[i]);
    free(w->fds);
    strv_free(w->argv, w->argc);
    strv_free(w->env_blocks, w->nenv_blocks);
    free(w->env);
    free(w->bindings);
    free(w);
}

int wasi_ctx_set_args(wasi_ctx_t *w, int argc, const char *const *argv)
{
    char **v = calloc((size_t)(argc > 0 ? argc : 1), sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < argc; i++) {
        if (!(v[i] = strdup(argv[i]))) {
            strv_free(v, (uint32_t)i);
            return -1;
        }
    }
    strv_free(w->argv, w->argc);
    w->argv = v;
    w->argc = (uint32_t)argc;
    return 0;
}

int wasi_ctx_add_env(wasi_ctx_t *w, const char *kv) { return wasi_ctx_add_envs(w, &kv, 1); }

/* Every request adds its whole CGI environment (about twenty entries), so
 * an add costs three allocations whatever n is: the strings in one block,
 * and the two arrays grown once. */
int wasi_ctx_add_envs(wasi_ctx_t *w, const char *const *kv, uint32_t n)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!strchr(kv[i], '=') || kv[i][0] == '=') return -1;
        bytes += strlen(kv[i]) + 1;
    }
    if (n == 0) return 0;
    if (w->envc + (uint64_t)n > UINT32_MAX / sizeof(char *)) return -1;
    char **v = realloc(w->env, (w->envc + n) * sizeof *v);
    if (!v) return -1;
    w->env = v;
    char **blocks = realloc(w->env_blocks, (w->nenv_blocks + 1) * sizeof *blocks);
    if (!blocks) return -1;
    w->env_blocks = blocks;
    char *p = malloc(bytes);
    if (!p) return -1;
    blocks[w->nenv_blocks++] = p;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(kv[i]) + 1;
        memcpy(p, kv[i], len);
        v[w->envc++] = p;
        p += len;
    }
    return 0;
}

int wasi_ctx_add_envs_borrowed(wasi_ctx_t *w, const char *const *kv, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strchr(kv[i], '=') || kv[i][0] == '=') return -1;
    if (n == 0) return 0;
    if (w->envc + (uint64_t)n > UINT32_MAX / sizeof(char *)) return -1;
    char **v = realloc(w->env, (w->envc + n) * sizeof *v);
    if (!v) return -1;
    w->env = v;
    for (uint32_t i = 0; i < n; i++) v[w->envc++] = (char *)kv[i]; /* never written or freed */
    return 0;
}

int wasi_ctx_preopen(wasi_ctx_t *w, const char *host_dir, const char *guest_path, char *err,
                     size_t errlen)
{
    int fd = open(host_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open directory %s: %s", host_dir, strerror(errno));
        return -1;
    }
    char *name = strdup(guest_path ? guest_path : host_dir);
    uint32_t i;
    if (!name || wasi_fd_install(w, fd, WFT_DIR, 0, 0, &i) != WE_SUCCESS) {
        free(name);
        snprintf(err, errlen, "cannot preopen %s: out of descriptors or memory", host_dir);
        return -1;
    }
    wasi_fd_t *f = &w->fds[i];
    f->preopen_name = name;
    f->rights_base = WR_DIR;
    f->rights_inheriting = WR_DIR | WR_FILE;
    return 0;
}

void wasi_ctx_set_stdio_fd(wasi_ctx_t *w, int wasi_fd, int host_fd)
{
    if (wasi_fd < 0 || wasi_fd > 2) return;
    stdio_reset(&w->fds[wasi_fd], host_fd);
}

void wasi_ctx_set_stdin_bytes(wasi_ctx_t *w, const uint8_t *data, size_t len)
{
    wasi_fd_t *f = &w->fds[0];
    wasi_fd_release(f);
    f->kind = WFD_MEMIN;
    f->filetype = WFT_UNKNOWN;
    f->in_data = data;
    f->in_len = len;
    f->in_pos = 0;
    f->rights_base = WR_FD_READ | WR_FD_FILESTAT_GET | WR_POLL_FD_READWRITE;
}

void wasi_ctx_set_output(wasi_ctx_t *w, int wasi_fd, wasi_write_fn fn, void *userdata)
{
    if (wasi_fd != 1 && wasi_fd != 2) return;
    wasi_fd_t *f = &w->fds[wasi_fd];
    wasi_fd_release(f);
    f->kind = WFD_SINK;
    f->filetype = WFT_UNKNOWN;
    f->sink = fn;
    f->sink_ud = userdata;
    f->rights_base = WR_FD_WRITE | WR_FD_FILESTAT_GET | WR_POLL_FD_READWRITE;
}

void wasi_ctx_set_deadline(wasi_ctx_t *w, uint64_t deadline_ns) { w->deadline_ns = deadline_ns; }

void wasi_ctx_set_sleep(wasi_ctx_t *w, wasi_sleep_fn fn, void *ud)
{
    w->sleep = fn;
    w->sleep_ud = ud;
}

void wasi_ctx_set_max_fds(wasi_ctx_t *w, uint32_t max_fds)
{
    if (max_fds < 3) max_fds = 3;
    if (max_fds > 65536) max_fds = 65536;
    w->max_fds = max_fds < w->nfds ? w->nfds : max_fds;
}

/* ---- args and environ --------------------------------------------------- */

static uint16_t strv_sizes(wasi_mem_t *m, char **v, uint32_t n, uint32_t count_ptr,
                           uint32_t size_ptr)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) total += strlen(v[i]) + 1;
    if (total > UINT32_MAX) return WE_2BIG;
    uint16_t e = wasi_put32(m, count_ptr, n);
    return e ? e : wasi_put32(m, size_ptr, (uint32_t)total);
}

/* One pass over the strings (each is measured once): a fault found
 * half-way leaves the part already written, which only the faulting
 * guest can see. */
static uint16_t strv_get(wasi_mem_t *m, char **v, uint32_t n, uint32_t ptrs, uint32_t buf)
{
    if (!wasi_mem_ok(m, ptrs, (uint64_t)n * 4)) return WE_FAULT;
    uint64_t at = buf;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        if (!wasi_mem_ok(m, at, len)) return WE_FAULT;
        memcpy(m->base + at, v[i], len);
        wasi_st32(m->base + ptrs + 4 * i, (uint32_t)at);
        at += len;
    }
    return WE_SUCCESS;
}

static uint16_t fn_args_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return strv_get(m, w->argv, w->argc, a[0].i32, a[1].i32);
}
static uint16_t fn_args_sizes_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return strv_sizes(m, w->argv, w->argc, a[0].i32, a[1].i32);
}
static uint16_t fn_environ_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return strv_get(m, w->env, w->envc, a[0].i32, a[1].i32);
}
static uint16_t fn_environ_sizes_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return strv_sizes(m, w->env, w->envc, a[0].i32, a[1].i32);
}

/* ---- clocks and random -------------------------------------------------- */

static bool clock_host_id(uint32_t id, clockid_t *out)
{
    switch (id) {
    case WCLOCK_REALTIME: *out = CLOCK_REALTIME; return true;
    case WCLOCK_MONOTONIC: *out = CLOCK_MONOTONIC; return true;
    case WCLOCK_PROCESS_CPU: *out = CLOCK_PROCESS_CPUTIME_ID; return true;
    case WCLOCK_THREAD_CPU: *out = CLOCK_THREAD_CPUTIME_ID; return true;
    default: return false;
    }
}

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static bool clock_now(uint32_t id, uint64_t *out)
{
    clockid_t c;
    struct timespec ts;
    if (!clock_host_id(id, &c) || clock_gettime(c, &ts) != 0) return false;
    *out = ts_ns(&ts);
    return true;
}

static uint16_t fn_clock_res_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)w;
    clockid_t c;
    struct timespec ts;
    if (!clock_host_id(a[0].i32, &c)) return WE_INVAL;
    if (clock_getres(c, &ts) != 0) return wasi_errno_from_host(errno);
    return wasi_put64(m, a[1].i32, ts_ns(&ts));
}

static uint16_t fn_clock_time_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)w;
    uint64_t now;
    if (!clock_now(a[0].i32, &now)) return WE_INVAL;
    return wasi_put64(m, a[2].i32, now);
}

static uint16_t fn_random_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)w;
    uint32_t ptr = a[0].i32, len = a[1].i32;
    if (!wasi_mem_ok(m, ptr, len)) return WE_FAULT;
    uint32_t done = 0;
    while (done < len) {
        ssize_t r = getrandom(m->base + ptr + done, len - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return wasi_errno_from_host(errno);
        }
        done += (uint32_t)r;
    }
    return WE_SUCCESS;
}

/* ---- poll_oneoff -------------------------------------------------------- */

/* Per subscription: what it waits for and, once known, its event. */
typedef struct poll_sub {
    uint64_t userdata;
    uint8_t type;        /* WEV_* */
    bool done;           /* the event is ready */
    uint16_t error;
    uint64_t wake_ns;    /* clocks: CLOCK_MONOTONIC time it fires */
    int pidx;            /* fds: index into the pollfd array, or -1 */
    uint64_t nbytes;
    uint16_t flags;
} poll_sub_t;

static uint64_t sat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

/* Turns a clock subscription into a monotonic wake-up time. */
static uint16_t poll_clock(const uint8_t *s, uint64_t now, uint64_t *wake)
{
    uint32_t id = wasi_ld32(s + 16);
    uint64_t timeout = wasi_ld64(s + 24);
    bool abs = wasi_ld16(s + 40) & WSUBCLOCK_ABSTIME;
    if (!abs) {
        if (id > WCLOCK_THREAD_CPU) return WE_INVAL;
        *wake = sat_add(now, timeout);
        return WE_SUCCESS;
    }
    if (id == WCLOCK_MONOTONIC) {
        *wake = timeout;
        return WE_SUCCESS;
    }
    /* Other clocks: wait for the distance between now and the target on that
     * clock (CPU clocks barely move while we sleep, which is fine: sleeping
     * until a CPU time is reached is not something a caller can expect). */
    uint64_t cnow;
    if (!clock_now(id, &cnow)) return WE_INVAL;
    *wake = timeout > cnow ? sat_add(now, timeout - cnow) : now;
    return WE_SUCCESS;
}

static uint16_t fn_poll_oneoff(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    uint32_t in = a[0].i32, out = a[1].i32, n = a[2].i32, nevents_ptr = a[3].i32;
    if (n == 0) return WE_INVAL;
    if (!wasi_mem_ok(m, in, (uint64_t)n * 48) || !wasi_mem_ok(m, out, (uint64_t)n * 32) ||
        !wasi_mem_ok(m, nevents_ptr, 4))
        return WE_FAULT;
    poll_sub_t *subs = calloc(n, sizeof *subs);
    struct pollfd *pfds = calloc(n, sizeof *pfds);
    if (!subs || !pfds) {
        free(subs);
        free(pfds);
        return WE_NOMEM;
    }
    uint16_t result = WE_SUCCESS;
    uint64_t now = eng_now_ns(), wake = UINT64_MAX;
    nfds_t npfd = 0;
    uint32_t ready = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *s = m->base + in + (uint64_t)i * 48;
        poll_sub_t *p = &subs[i];
        p->userdata = wasi_ld64(s);
        p->type = s[8];
        p->pidx = -1;
        if (p->type == WEV_CLOCK) {
            p->error = poll_clock(s, now, &p->wake_ns);
            if (p->error) p->done = true;
            else if (p->wake_ns < wake) wake = p->wake_ns;
        } else if (p->type == WEV_FD_READ || p->type == WEV_FD_WRITE) {
            bool rd = p->type == WEV_FD_READ;
            wasi_fd_t *f;
            p->error = wasi_fd_get(w, wasi_ld32(s + 16), WR_POLL_FD_READWRITE, &f);
            if (p->error) {
                p->done = true;
            } else if (f->kind == WFD_MEMIN || f->kind == WFD_SINK) {
                p->done = true;
                if ((f->kind == WFD_MEMIN) != rd) p->error = WE_BADF;
                else if (rd) p->nbytes = f->in_len - f->in_pos;
                if (rd && f->in_pos >= f->in_len) p->flags = WEVRW_HANGUP;
            } else {
                p->pidx = (int)npfd;
                pfds[npfd].fd = f->host;
                pfds[npfd].events = rd ? POLLIN : POLLOUT;
                npfd++;
            }
        } else {
            result = WE_INVAL;
            goto out;
        }
        if (p->done) ready++;
    }
    for (;;) {
        /* Wait until the earliest clock, the guest's deadline, or an fd. */
        uint64_t until = wake;
        if (w->deadline_ns && w->deadline_ns < until) until = w->deadline_ns;
        struct timespec ts, *tsp = NULL;
        int r;
        if (!ready && npfd == 0 && w->sleep) {
            /* Clocks only: let the scheduler park the guest. */
            if (w->sleep(w->sleep_ud, until) != 0) {
                w->pending_trap = ENG_TRAP_DEADLINE;
                result = WE_INTR;
                goto out;
            }
            r = 0;
            goto woke;
        }
        if (ready) {
            ts.tv_sec = 0;
            ts.tv_nsec = 0;
            tsp = &ts;
        } else if (until != UINT64_MAX) {
            uint64_t d = until > now ? until - now : 0;
            ts.tv_sec = (time_t)(d / 1000000000ull);
            ts.tv_nsec = (long)(d % 1000000000ull);
            tsp = &ts;
        }
        r = ppoll(pfds, npfd, tsp, NULL);
        if (r < 0 && errno != EINTR) {
            result = wasi_errno_from_host(errno);
            goto out;
        }
    woke:
        now = eng_now_ns();
        for (uint32_t i = 0; i < n; i++) {
            poll_sub_t *p = &subs[i];
            if (p->done) continue;
            if (p->type == WEV_CLOCK) {
                if (p->wake_ns <= now) p->done = true;
            } else if (r > 0 && p->pidx >= 0 && pfds[p->pidx].revents) {
                short re = pfds[p->pidx].revents;
                p->done = true;
                if (re & POLLNVAL) p->error = WE_BADF;
                if (re & POLLHUP) p->flags = WEVRW_HANGUP;
                if (p->type == WEV_FD_READ) {
                    int avail = 0;
                    if (ioctl(pfds[p->pidx].fd, FIONREAD, &avail) == 0 && avail > 0)
                        p->nbytes = (uint64_t)avail;
                }
            }
            if (p->done) ready++;
        }
        if (ready) break;
        if (w->deadline_ns && now >= w->deadline_ns) {
            /* The guest's time ran out while it slept: stop it here, with
             * the same trap the interpreter raises at a loop back-edge. */
            w->pending_trap = ENG_TRAP_DEADLINE;
            result = WE_INTR;
            goto out;
        }
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        poll_sub_t *p = &subs[i];
        if (!p->done) continue;
        uint8_t *e = m->base + out + (uint64_t)k++ * 32;
        memset(e, 0, 32);
        wasi_st64(e, p->userdata);
        wasi_st16(e + 8, p->error);
        e[10] = p->type;
        if (p->type != WEV_CLOCK) {
            wasi_st64(e + 16, p->nbytes);
            wasi_st16(e + 24, p->flags);
        }
    }
    wasi_st32(m->base + nevents_ptr, k);
out:
    free(subs);
    free(pfds);
    return result;
}

/* ---- process, scheduling, sockets --------------------------------------- */

static uint16_t fn_proc_raise(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)w, (void)m, (void)a;
    return WE_NOTSUP;
}

static uint16_t fn_sched_yield(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)w, (void)m, (void)a;
    sched_yield();
    return WE_SUCCESS;
}

/* No socket is ever handed to a guest yet, so every sock_* call names a
 * descriptor that is either not open (EBADF) or not a socket (ENOTSOCK). */
static uint16_t sock_common(wasi_ctx_t *w, uint32_t fd)
{
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, fd, 0, &f);
    return e ? e : WE_NOTSOCK;
}
static uint16_t fn_sock_accept(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    return sock_common(w, a[0].i32);
}
static uint16_t fn_sock_recv(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    return sock_common(w, a[0].i32);
}
static uint16_t fn_sock_send(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    return sock_common(w, a[0].i32);
}
static uint16_t fn_sock_shutdown(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    return sock_common(w, a[0].i32);
}

/* ---- the import table and linking --------------------------------------- */

static const struct wasi_func {
    const char *name;
    const char *sig;
    wasi_impl_t fn; /* NULL: proc_exit, which has its own host function */
} wasi_funcs[] = {
    {"args_get", "(ii)i", fn_args_get},
    {"args_sizes_get", "(ii)i", fn_args_sizes_get},
    {"environ_get", "(ii)i", fn_environ_get},
    {"environ_sizes_get", "(ii)i", fn_environ_sizes_get},
    {"clock_res_get", "(ii)i", fn_clock_res_get},
    {"clock_time_get", "(iIi)i", fn_clock_time_get},
#define WASI_FN_ENTRY(name, sig) {#name, sig, wasi_fn_##name},
    WASI_FS_FUNCS(WASI_FN_ENTRY)
#undef WASI_FN_ENTRY
    {"poll_oneoff", "(iiii)i", fn_poll_oneoff},
    {"proc_exit", "(i)", NULL},
    {"proc_raise", "(i)i", fn_proc_raise},
    {"sched_yield", "()i", fn_sched_yield},
    {"random_get", "(ii)i", fn_random_get},
    {"sock_accept", "(iii)i", fn_sock_accept},
    {"sock_recv", "(iiiiii)i", fn_sock_recv},
    {"sock_send", "(iiiii)i", fn_sock_send},
    {"sock_shutdown", "(ii)i", fn_sock_shutdown},
};
#define WASI_NFUNCS (sizeof wasi_funcs / sizeof wasi_funcs[0])

static eng_trap_t wasi_trampoline(eng_host_call_t *call, eng_val_t *args)
{
    wasi_binding_t *b = call->env;
    wasi_mem_t m = {NULL, 0};
    eng_memory_t *mem = call->caller ? eng_instance_memory(call->caller) : NULL;
    if (mem) {
        m.base = eng_memory_data(mem);
        m.size = eng_memory_size(mem);
    }
    args[0].i32 = b->fn(b->w, &m, args);
    if (b->w->pending_trap != ENG_OK) {
        eng_trap_t t = b->w->pending_trap;
        b->w->pending_trap = ENG_OK;
        return t;
    }
    return ENG_OK;
}

static eng_trap_t wasi_proc_exit(eng_host_call_t *call, eng_val_t *args)
{
    return eng_exec_exit(call->exec, (int)args[0].i32);
}

static const char *kind_name(eng_extern_kind_t k)
{
    switch (k) {
    case ENG_EXTERN_FUNC: return "func";
    case ENG_EXTERN_TABLE: return "table";
    case ENG_EXTERN_MEMORY: return "memory";
    default: return "global";
    }
}

/* wasi_funcs by name: every instance links its imports, and a scan with
 * strcmp was 1% of the daemon's time serving a hello. Open addressing over
 * a power of two at least twice the table, filled once. */
#define NAME_SLOTS 128
static uint8_t name_slot[NAME_SLOTS]; /* wasi_funcs index + 1; 0 = empty */
/* Each function's type, parsed once for every instance of every module
 * (NULL where out of memory: that function parses its signature). */
static const eng_host_type_t *func_type[WASI_NFUNCS];
static pthread_once_t name_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void name_index_build(void)
{
    _Static_assert(WASI_NFUNCS * 2 <= NAME_SLOTS && WASI_NFUNCS < 255, "NAME_SLOTS too small");
    for (size_t i = 0; i < WASI_NFUNCS; i++) {
        uint32_t k = name_hash(wasi_funcs[i].name) & (NAME_SLOTS - 1);
        while (name_slot[k]) k = (k + 1) & (NAME_SLOTS - 1);
        name_slot[k] = (uint8_t)(i + 1);
        func_type[i] = eng_host_type_new(wasi_funcs[i].sig);
    }
}

/* The index of the WASI function called name, or -1. */
static int func_index(const char *name)
{
    pthread_once(&name_once, name_index_build);
    for (uint32_t k = name_hash(name) & (NAME_SLOTS - 1); name_slot[k]; k = (k + 1) & (NAME_SLOTS - 1))
        if (strcmp(wasi_funcs[name_slot[k] - 1].name, name) == 0) return name_slot[k] - 1;
    return -1;
}

int wasi_import_index(const eng_extern_desc_t *imp)
{
    if (strcmp(imp->module, WASI_MODULE_NAME) != 0 || imp->kind != ENG_EXTERN_FUNC) return -1;
    int i = func_index(imp->name);
    if (i < 0 || strcmp(wasi_funcs[i].sig, imp->type) != 0) return -1;
    return i;
}

wasi_resolve_t wasi_import_bind(wasi_ctx_t *w, eng_store_t *s, int index, eng_extern_t *out,
                                char *err, size_t errlen)
{
    if (index < 0 || (size_t)index >= WASI_NFUNCS) {
        snprintf(err, errlen, "no WASI function %d", index);
        return WASI_RESOLVE_ERROR;
    }
    if (!w->bindings) {
        w->bindings = calloc(WASI_NFUNCS, sizeof(wasi_binding_t));
        if (!w->bindings) {
            snprintf(err, errlen, "out of memory");
            return WASI_RESOLVE_ERROR;
        }
    }
    pthread_once(&name_once, name_index_build); /* func_type */
    const struct wasi_func *f = &wasi_funcs[index];
    wasi_binding_t *b = &((wasi_binding_t *)w->bindings)[index];
    b->w = w;
    b->fn = f->fn;
    eng_host_fn_t host = f->fn ? wasi_trampoline : wasi_proc_exit;
    void *env = f->fn ? (void *)b : (void *)w;
    eng_func_t *fn = func_type[index] ? eng_func_new_host_typed(s, func_type[index], host, env)
                                      : eng_func_new_host(s, f->sig, host, env);
    if (!fn) {
        snprintf(err, errlen, "cannot make host function %s.%s", WASI_MODULE_NAME, f->name);
        return WASI_RESOLVE_ERROR;
    }
    out->kind = ENG_EXTERN_FUNC;
    out->u.func = fn;
    return WASI_RESOLVE_OK;
}

wasi_resolve_t wasi_import_resolve(wasi_ctx_t *w, eng_store_t *s, const eng_extern_desc_t *imp,
                                   eng_extern_t *out, char *err, size_t errlen)
{
    if (strcmp(imp->module, WASI_MODULE_NAME) != 0) return WASI_RESOLVE_NOT_WASI;
    if (imp->kind != ENG_EXTERN_FUNC) {
        snprintf(err, errlen, "import %s.%s is a %s; WASI provides only functions",
                 imp->module, imp->name, kind_name(imp->kind));
        return WASI_RESOLVE_ERROR;
    }
    int i = func_index(imp->name);
    if (i < 0) {
        snprintf(err, errlen, "unknown import %s.%s (func %s): not a WASI preview1 function",
                 imp->module, imp->name, imp->type);
        return WASI_RESOLVE_ERROR;
    }
    if (strcmp(wasi_funcs[i].sig, imp->type) != 0) {
        snprintf(err, errlen, "import %s.%s has type %s, expected %s", imp->module, imp->name,
                 imp->type, wasi_funcs[i].sig);
        return WASI_RESOLVE_ERROR;
    }
    return wasi_import_bind(w, s, i, out, err, errlen);
}

int wasi_ctx_link(wasi_ctx_t *w, eng_store_t *s, const eng_module_t *m, eng_extern_t *imports,
                  char *err, size_t errlen)
{
    uint32_t n = eng_module_import_count(m);
    for (uint32_t i = 0; i < n; i++) {
        eng_extern_desc_t d;
        eng_module_import(m, i, &d);
        wasi_resolve_t r = wasi_import_resolve(w, s, &d, &imports[i], err, errlen);
        if (r == WASI_RESOLVE_ERROR) return -1;
        if (r == WASI_RESOLVE_NOT_WASI) {
            snprintf(err, errlen, "unknown import %s.%s (%s%s%s)", d.module, d.name,
                     kind_name(d.kind), d.type && d.type[0] ? " " : "", d.type ? d.type : "");
            return -1;
        }
    }
    return 0;
}
