/*
 * compiler.c — native code compiled in child processes (runtime.h,
 * rt_compiler_*).
 *
 * LLVM takes seconds to minutes on a large module and hundreds of
 * megabytes while it works, and a bug in it ends the process it runs in.
 * So a compile runs as `wasmfn compile --raw - -o -` in a child: the .wasm
 * goes to its stdin, the object comes back on its stdout and a one-line
 * error on its stderr. The child lowers its own priority (nice) and caps
 * its address space (RLIMIT_AS) before it starts, and a timer kills it when
 * it takes too long, so the daemon's requests always come first, a hostile
 * module cannot make the compiler eat the machine's memory, and a crash
 * costs one native compile, not the daemon.
 *
 * Jobs queue in submission order; at most max_jobs children run at once.
 * Everything here runs on the loop thread.
 */
#include "common/buf.h"
#include "runtime/runtime.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MEMORY_BYTES (4ull << 30)
#define DEFAULT_TIMEOUT_MS (10u * 60 * 1000)
#define MAX_STDERR 512

typedef struct job {
    rt_compiler_t *c;
    struct job *next;
    uint8_t *wasm;
    size_t len;
    rt_compile_done_fn done;
    void *ud;

    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t write;
    int open_handles;       /* the job is freed when the last one has closed */
    bool in_closed, exited, out_eof, err_eof, finished, reported;
    int64_t status;
    int signal;
    cm_buf_t obj;           /* the object file the compiler writes */
    size_t obj_max;
    char errtext[MAX_STDERR];
    size_t errlen;
    uint64_t started_ns;
    char fail[160];         /* our own reason (timeout, output too large) */
} job_t;

struct rt_compiler {
    uv_loop_t *loop;
    rt_compiler_config_t cfg;
    char limit_arg[32], nice_arg[16], parent_arg[16];
    job_t *queue_head, *queue_tail;
    job_t *running;         /* list through next */
    uint32_t nrunning;
    bool closing;
};

rt_compiler_t *rt_compiler_new(uv_loop_t *loop, const rt_compiler_config_t *cfg, char *err,
                               size_t errlen)
{
    rt_compiler_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->cfg = *cfg;
    if (!c->cfg.max_jobs) c->cfg.max_jobs = 1;
    if (!c->cfg.memory_limit_bytes) c->cfg.memory_limit_bytes = DEFAULT_MEMORY_BYTES;
    if (!c->cfg.timeout_ms) c->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!c->cfg.exe || !*c->cfg.exe) {
        snprintf(err, errlen, "the native compiler needs the path of the wasmfn binary");
        free(c);
        return NULL;
    }
    snprintf(c->limit_arg, sizeof c->limit_arg, "%llu",
             (unsigned long long)(c->cfg.memory_limit_bytes >> 20));
    snprintf(c->nice_arg, sizeof c->nice_arg, "%d", c->cfg.nice);
    /* The child dies with this process (compile --raw): it checks that its
     * parent is still this one once it has asked for that. */
    snprintf(c->parent_arg, sizeof c->parent_arg, "%d", (int)getpid());
    return c;
}

static void start_next(rt_compiler_t *c);

static void job_free(job_t *j)
{
    free(j->wasm);
    cm_buf_free(&j->obj);
    free(j);
}

static void on_handle_closed(uv_handle_t *h)
{
    job_t *j = h->data;
    if (--j->open_handles == 0) job_free(j);
}

static void close_in(job_t *j)
{
    if (j->in_closed) return;
    j->in_closed = true;
    uv_close((uv_handle_t *)&j->in, on_handle_closed);
}

/* Reports the job's outcome once the child has exited and both its output
 * pipes are drained, then closes its handles. */
static void job_maybe_finish(job_t *j)
{
    if (j->finished || !j->exited || !j->out_eof || !j->err_eof) return;
    j->finished = true;
    rt_compiler_t *c = j->c;
    if (c) {
        for (job_t **p = &c->running; *p; p = &(*p)->next) {
            if (*p == j) {
                *p = j->next;
                break;
            }
        }
        c->nrunning--;
    }
    uint64_t ns = uv_hrtime() - j->started_ns;
    if (!j->reported) {
        j->reported = true;
        char msg[sizeof j->errtext + 64];
        if (j->fail[0]) {
            snprintf(msg, sizeof msg, "%s", j->fail);
        } else if (j->status != 0 || j->signal != 0 || j->obj.len == 0) {
            while (j->errlen && (j->errtext[j->errlen - 1] == '\n' || j->errtext[j->errlen - 1] == ' '))
                j->errtext[--j->errlen] = '\0';
            const char *e = j->errtext;
            if (strncmp(e, "wasmfn: ", 8) == 0) e += 8;
            if (j->signal)
                snprintf(msg, sizeof msg, "the compiler died of signal %d%s%s", j->signal,
                         *e ? ": " : "", e);
            else
                snprintf(msg, sizeof msg, "%s", *e ? e : "the compiler failed without a message");
        } else {
            msg[0] = '\0';
        }
        if (msg[0]) {
            j->done(j->ud, NULL, 0, msg, ns);
        } else {
            size_t len = j->obj.len;
            uint8_t *obj = (uint8_t *)cm_buf_take(&j->obj);
            j->done(j->ud, obj, len, NULL, ns);
        }
    }
    uv_timer_stop(&j->timer);
    close_in(j);
    uv_close((uv_handle_t *)&j->proc, on_handle_closed);
    uv_close((uv_handle_t *)&j->out, on_handle_closed);
    uv_close((uv_handle_t *)&j->err, on_handle_closed);
    uv_close((uv_handle_t *)&j->timer, on_handle_closed);
    if (c && !c->closing) start_next(c);
}

static void job_kill(job_t *j, const char *why)
{
    if (!j->fail[0]) snprintf(j->fail, sizeof j->fail, "%s", why);
    if (!j->exited) uv_process_kill(&j->proc, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    job_t *j = p->data;
    j->exited = true;
    j->status = status;
    j->signal = sig;
    job_maybe_finish(j);
}

static void on_timeout(uv_timer_t *t)
{
    job_t *j = t->data;
    char why[96];
    snprintf(why, sizeof why, "the compiler ran longer than %llu s",
             j->c ? (unsigned long long)(j->c->cfg.timeout_ms / 1000) : 0ull);
    job_kill(j, why);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    job_t *j = h->data;
    (void)suggested;
    if ((uv_pipe_t *)h == &j->err) {
        static char sink[256];
        size_t room = sizeof j->errtext - 1 - j->errlen;
        *buf = room ? uv_buf_init(j->errtext + j->errlen, (unsigned)room) : uv_buf_init(sink, sizeof sink);
        return;
    }
    if (cm_buf_reserve(&j->obj, 65536) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(j->obj.data + j->obj.len, (unsigned)(j->obj.cap - j->obj.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    job_t *j = s->data;
    bool is_err = (uv_pipe_t *)s == &j->err;
    if (n > 0) {
        if (is_err) {
            if (buf->base == j->errtext + j->errlen) {
                j->errlen += (size_t)n;
                j->errtext[j->errlen] = '\0';
            }
        } else {
            j->obj.len += (size_t)n;
            if (j->obj.len > j->obj_max) job_kill(j, "the compiler's output is too large");
        }
        return;
    }
    if (n == 0) return;
    if (n == UV_ENOBUFS) job_kill(j, "out of memory reading the compiler's output");
    uv_read_stop(s);
    if (is_err) j->err_eof = true;
    else j->out_eof = true;
    job_maybe_finish(j);
}

static void on_written(uv_write_t *w, int status)
{
    job_t *j = w->data;
    (void)status; /* a child that died early is reported by its exit */
    close_in(j); /* EOF: the child has the whole module */
}

static void job_start(rt_compiler_t *c, job_t *j)
{
    j->started_ns = uv_hrtime();
    uv_pipe_init(c->loop, &j->in, 0);
    uv_pipe_init(c->loop, &j->out, 0);
    uv_pipe_init(c->loop, &j->err, 0);
    uv_timer_init(c->loop, &j->timer);
    j->in.data = j->out.data = j->err.data = j->timer.data = j->proc.data = j->write.data = j;
    j->open_handles = 5;
    char *args[] = {(char *)c->cfg.exe, "compile", "--raw", "--memory-limit", c->limit_arg,
                    "--nice", c->nice_arg, "--parent-pid", c->parent_arg, "-o", "-", "-", NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&j->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->err},
    };
    uv_process_options_t o = {
        .exit_cb = on_exit_cb,
        .file = c->cfg.exe,
        .args = args,
        .stdio_count = 3,
        .stdio = stdio,
    };
    j->next = c->running;
    c->running = j;
    c->nrunning++;
    int r = uv_spawn(c->loop, &j->proc, &o);
    if (r != 0) {
        snprintf(j->fail, sizeof j->fail, "cannot start %s: %s", c->cfg.exe, uv_strerror(r));
        j->exited = j->out_eof = j->err_eof = true;
        /* uv_spawn failing leaves proc initialised, to be closed. */
        job_maybe_finish(j);
        return;
    }
    uv_timer_start(&j->timer, on_timeout, c->cfg.timeout_ms, 0);
    uv_read_start((uv_stream_t *)&j->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&j->err, on_alloc, on_read);
    uv_buf_t b = uv_buf_init((char *)j->wasm, (unsigned)j->len);
    if (uv_write(&j->write, (uv_stream_t *)&j->in, &b, 1, on_written) != 0) {
        close_in(j);
        job_kill(j, "cannot write the module to the compiler");
    }
}

static void start_next(rt_compiler_t *c)
{
    while (c->queue_head && c->nrunning < c->cfg.max_jobs) {
        job_t *j = c->queue_head;
        c->queue_head = j->next;
        if (!c->queue_head) c->queue_tail = NULL;
        j->next = NULL;
        job_start(c, j);
    }
}

int rt_compiler_submit(rt_compiler_t *c, uint8_t *wasm, size_t len, rt_compile_done_fn done,
                       void *ud)
{
    if (len > UINT32_MAX) {
        free(wasm);
        return -1;
    }
    job_t *j = calloc(1, sizeof *j);
    if (!j) {
        free(wasm);
        return -1;
    }
    j->c = c;
    j->wasm = wasm;
    j->len = len;
    j->done = done;
    j->ud = ud;
    /* Native code is a few times the size of the wasm; anything far
     * beyond is a runaway compiler. */
    j->obj_max = 64 * len + (64u << 20);
    if (c->queue_tail) c->queue_tail->next = j;
    else c->queue_head = j;
    c->queue_tail = j;
    start_next(c);
    return 0;
}

uint32_t rt_compiler_running(const rt_compiler_t *c) { return c->nrunning; }

uint32_t rt_compiler_queued(const rt_compiler_t *c)
{
    uint32_t n = 0;
    for (job_t *j = c->queue_head; j; j = j->next) n++;
    return n;
}

void rt_compiler_stop(rt_compiler_t *c)
{
    if (!c || c->closing) return;
    c->closing = true;
    while (c->queue_head) {
        job_t *j = c->queue_head;
        c->queue_head = j->next;
        j->done(j->ud, NULL, 0, "stopped", 0);
        job_free(j);
    }
    c->queue_tail = NULL;
    for (job_t *j = c->running; j; j = j->next) {
        job_kill(j, "stopped");
        j->reported = true;
        j->done(j->ud, NULL, 0, "stopped", uv_hrtime() - j->started_ns);
    }
}

bool rt_compiler_busy(const rt_compiler_t *c) { return c && c->running; }

void rt_compiler_free(rt_compiler_t *c)
{
    if (!c) return;
    rt_compiler_stop(c);
    /* A job still running (the caller did not wait) is left to finish on
     * its own: it no longer needs c. */
    for (job_t *j = c->running; j; j = j->next) j->c = NULL;
    free(c);
}
