/*
 * native.c — native code for a container's module: the node's cache of
 * compiled modules, and compiling into it.
 *
 * The cache is a directory (cache_dir of the shim's configuration,
 * /var/lib/wasmfn-shim/cache by default; config.c) laid out as `wasmfn
 * run`'s (cli/native_cache.c): native.key, and one sealed artefact per
 * module and target, HEX-TARGET.native, keyed by the module's SHA-256 and
 * the target key (this build, LLVM, the CPU and its features), sealed with
 * HMAC so that a damaged, stale or foreign file is refused, deleted and
 * compiled again. The shim runs as root, so the directory and key are
 * root's; deleting the directory is always safe.
 *
 * A start never waits for LLVM (seconds per module): a pod's start is
 * what Knative's cold start and a Deployment's rollout wait for.
 *
 *   - A WASI command whose code is cached runs natively. One whose code is
 *     not runs in the interpreter, and a detached `containerd-shim-wasmfn-v1
 *     compile --cache-dir DIR -` (nice 19, the module on its stdin) fills
 *     the cache for the next start. A lock file per module
 *     (HEX-TARGET.lock, held by that compiler) makes containers that start
 *     meanwhile skip compiling it again, so the number of compilers is
 *     bounded by the number of distinct modules, not of starts.
 *   - An HTTP function's data plane gets the cache as its store of native
 *     code and a compiler (runtime/compiler.c, one job, nice 19), as
 *     `wasmfn serve` has: code in the cache is attached at load; otherwise
 *     requests are served interpreted until the background compile
 *     finishes, then natively (wasmfn_revision_tier on /metrics says
 *     which), and the code is stored for the next start.
 *
 * Compiles run `compile --raw` as a child of the shim binary itself (the
 * same engine build that loads the code), under rt_compiler's 4 GiB
 * address-space cap and 10-minute timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "runtime/runtime.h"
#include "shim/guest.h"

/* The largest artefact read back: native code is a few times the size of
 * the module, which is at most 512 MiB (guest.c). */
#define NATIVE_MAX_ARTEFACT_BYTES (2ull << 30)

static cli_cache_t g_cache; /* opened once per guest process */
static char g_exe[4096];    /* this binary: the compiler */

static int exe_path(void)
{
    ssize_t n = readlink("/proc/self/exe", g_exe, sizeof g_exe - 1);
    if (n <= 0) return -1;
    g_exe[n] = 0;
    return 0;
}

/* Opens the cache; -1 and note says why (then everything is interpreted). */
static int cache_open(const shim_config_t *cfg, char *note, size_t notelen)
{
    char err[512];
    if (!cfg->native) {
        snprintf(note, notelen, "interpreted (tier \"interp\" in the shim's configuration)");
        return -1;
    }
    if (!eng_native_can_compile()) {
        snprintf(note, notelen, "interpreted (this build has no native tier for this machine)");
        return -1;
    }
    if (cli_cache_open(&g_cache, cfg->cache_dir, err, sizeof err) != 0 || exe_path() != 0) {
        snprintf(note, notelen, "interpreted (native code cache: %s)",
                 g_cache.ok ? "cannot find the shim's binary" : err);
        g_cache.ok = false;
        return -1;
    }
    return 0;
}

/* Starts the detached compiler: stdin = module_fd, fd 3 = the module's
 * lock (held until it exits), nothing else of this process. */
static int compile_detached(int module_fd, int lock_fd)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid > 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
    }
    /* The child forks again and exits, so the compiler is nobody's child
     * and outlives the container. Only async-signal-safe calls below. */
    setsid();
    if (fork() != 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(module_fd, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
        dup2(lock_fd, 3) < 0)
        _exit(127);
    /* Not the gate, the readiness pipe, the shim's log or the container's
     * FIFOs: holding one would keep Create or `ctr run` waiting. */
    close_range(4, ~0u, 0);
    setpriority(PRIO_PROCESS, 0, 19);
    execl(g_exe, g_exe, "compile", "--cache-dir", g_cache.dir, "--quiet", "-", (char *)NULL);
    _exit(127);
}

void shim_native_command(const shim_config_t *cfg, const shim_spec_t *spec, const uint8_t *bytes,
                         size_t len, eng_module_t *m, char *note, size_t notelen)
{
    if (cache_open(cfg, note, notelen) != 0) return;
    uint8_t digest[32];
    cli_sha256(bytes, len, digest);
    int r = cli_cache_attach(&g_cache, digest, m);
    if (r > 0) {
        snprintf(note, notelen, "native code (from the cache %s)", g_cache.dir);
        return;
    }
    const char *why = r < 0 ? "its cached code was refused and is compiled again" : "not cached";
    char lock[4300];
    cli_cache_entry_path(&g_cache, digest, lock, sizeof lock);
    size_t n = strlen(lock);
    if (n > 7) snprintf(lock + n - 7, sizeof lock - (n - 7), ".lock"); /* ".native" */
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        close(lfd);
        snprintf(note, notelen, "interpreted (%s; another container is compiling it)", why);
        return;
    }
    int mfd = shim_open_in_root(spec->rootfs, spec->args[0]);
    bool started = lfd >= 0 && mfd >= 0 && compile_detached(mfd, lfd) == 0;
    if (mfd >= 0) close(mfd);
    if (lfd >= 0) close(lfd);
    snprintf(note, notelen, "interpreted (%s; %s)", why,
             started ? "compiling it in the background for the next start"
                     : "could not start a compiler");
}

/* ---- the data plane's store of native code ---- */

static int digest_parse(const char *digest, uint8_t out[32])
{
    if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 7 + 64) return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(digest + 7 + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int native_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                      size_t errlen)
{
    (void)ud;
    uint8_t d[32];
    char path[4300];
    if (digest_parse(digest, d) != 0) return 1;
    cli_cache_entry_path(&g_cache, d, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 1 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
    struct stat st;
    *bytes = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size <= NATIVE_MAX_ARTEFACT_BYTES)
        *bytes = malloc((size_t)st.st_size);
    size_t got = 0;
    while (*bytes && got < (size_t)st.st_size) {
        ssize_t r = read(fd, *bytes + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!*bytes || got != (size_t)st.st_size) {
        free(*bytes);
        unlink(path); /* unreadable: compiled again */
        snprintf(err, errlen, "%s: cannot read it", path);
        return -1;
    }
    *len = got;
    return 0;
}

/* Written to a temporary file and renamed, so a reader never sees half. */
static int native_put(void *ud, const char *digest, const uint8_t *bytes, size_t len, char *err,
                      size_t errlen)
{
    (void)ud;
    uint8_t d[32];
    char path[4300], tmp[4400];
    if (digest_parse(digest, d) != 0) return -1;
    cli_cache_entry_path(&g_cache, d, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", g_cache.dir, strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, bytes + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (close(fd) != 0 || done != len || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void shim_native_serving(const shim_config_t *cfg, const uint8_t digest[32], uv_loop_t *loop,
                         srv_config_t *sc, char *note, size_t notelen)
{
    if (cache_open(cfg, note, notelen) != 0) return;
    char err[512];
    rt_compiler_config_t cc = {.exe = g_exe, .max_jobs = 1, .nice = 19};
    rt_compiler_t *compiler = rt_compiler_new(loop, &cc, err, sizeof err);
    if (!compiler) {
        snprintf(note, notelen, "interpreted (native compiler: %s)", err);
        return;
    }
    sc->native_get = native_get;
    sc->native_put = native_put;
    sc->native_key = g_cache.key;
    sc->compiler = compiler;
    /* The data plane opens the artefact itself (and compiles again if it
     * is refused); its presence is what the log line can tell. */
    char path[4300];
    cli_cache_entry_path(&g_cache, digest, path, sizeof path);
    if (access(path, R_OK) == 0) snprintf(note, notelen, "native code (from the cache %s)", g_cache.dir);
    else
        snprintf(note, notelen, "interpreted until its background compile into %s is done",
                 g_cache.dir);
}
