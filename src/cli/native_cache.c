/*
 * native_cache.c — native code for `wasmfn run` and `wasmfn compile`: the
 * per-user cache, compiling in a child process, and modules that carry
 * their own native code (cli.h, "native code").
 *
 * The cache is a directory ($WASMFN_CACHE_DIR, else $XDG_CACHE_HOME/wasmfn,
 * else ~/.cache/wasmfn) holding native.key (runtime/native_key.c) and one
 * sealed artefact per module and target, HEX-TARGET.native: HEX is the
 * module's SHA-256, TARGET the first 16 hex digits of the target key's
 * (this build of wasmfn, LLVM, the CPU). A file that does not open (damaged,
 * stale, foreign) is deleted and the module compiled again; writing an
 * entry deletes the module's entries for other targets, so upgrades do not
 * pile up dead code. Deleting the directory is always safe.
 *
 * A compile runs `wasmfn compile --raw` as a child (runtime/compiler.c), so
 * an LLVM crash or a runaway compile costs the native code, not the run.
 *
 * A compiled module file (`wasmfn compile -o OUT`) is the module with one
 * more custom section at its end, "wasmfn.native", holding the artefact
 * sealed for the module without that section: any runtime still runs it,
 * and wasmfn finds the code there before looking in its cache.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "runtime/runtime.h"

#define SECTION_NAME "wasmfn.native"

void cli_sha256(const uint8_t *bytes, size_t len, uint8_t out[32])
{
    EVP_Digest(bytes, len, out, NULL, EVP_sha256(), NULL);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* mkdir -p, each new level with mode 0700. */
static int mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int cli_cache_open(cli_cache_t *c, const char *override, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *env = getenv("WASMFN_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    int n;
    if (override && *override) n = snprintf(c->dir, sizeof c->dir, "%s", override);
    else if (env && *env) n = snprintf(c->dir, sizeof c->dir, "%s", env);
    else if (xdg && *xdg) n = snprintf(c->dir, sizeof c->dir, "%s/wasmfn", xdg);
    else if (home && *home) n = snprintf(c->dir, sizeof c->dir, "%s/.cache/wasmfn", home);
    else {
        snprintf(err, errlen, "no cache directory: set WASMFN_CACHE_DIR or HOME");
        return -1;
    }
    if (n < 0 || (size_t)n >= sizeof c->dir - 64) {
        snprintf(err, errlen, "cache directory path too long");
        return -1;
    }
    if (mkdirs(c->dir) != 0) {
        snprintf(err, errlen, "%s: %s", c->dir, strerror(errno));
        return -1;
    }
    if (rt_native_key_load(c->dir, c->key, err, errlen) != 0) return -1;
    uint8_t t[32];
    eng_native_target_digest(t);
    hex(t, 8, c->target);
    c->ok = true;
    return 0;
}

void cli_cache_entry_path(const cli_cache_t *c, const uint8_t digest[32], char *out, size_t n)
{
    char h[65];
    hex(digest, 32, h);
    snprintf(out, n, "%s/%s-%s.native", c->dir, h, c->target);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (buf = malloc((size_t)st.st_size))) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
        *len = got;
    }
    close(fd);
    return buf;
}

int cli_cache_attach(const cli_cache_t *c, const uint8_t digest[32], eng_module_t *m)
{
    if (!c->ok) return 0;
    char path[4200];
    cli_cache_entry_path(c, digest, path, sizeof path);
    size_t len = 0;
    uint8_t *art = read_all(path, &len);
    if (!art) return 0;
    const uint8_t *obj;
    size_t objlen;
    char e[ENG_ERR_MAX];
    bool ok = eng_native_open(art, len, digest, c->key, &obj, &objlen, e, sizeof e) &&
              eng_module_attach_native(m, obj, objlen, e, sizeof e);
    free(art);
    if (!ok) unlink(path); /* damaged or foreign: compiled again */
    return ok ? 1 : -1;
}

/* Writes bytes to path through a temporary file and a rename. */
static int write_atomic(const char *path, const uint8_t *bytes, size_t len)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, bytes + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (close(fd) != 0 || done != len || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cli_cache_put(const cli_cache_t *c, const uint8_t digest[32], const uint8_t *obj, size_t len,
                  char *err, size_t errlen)
{
    if (!c->ok) return 0;
    uint8_t *art;
    size_t alen;
    if (!eng_native_seal(obj, len, digest, c->key, &art, &alen, err, errlen)) return -1;
    char path[4200];
    cli_cache_entry_path(c, digest, path, sizeof path);
    int r = write_atomic(path, art, alen);
    free(art);
    if (r != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* The module's code for other targets is dead weight now. */
    char h[65];
    hex(digest, 32, h);
    DIR *d = opendir(c->dir);
    if (d) {
        struct dirent *de;
        size_t keep = strlen(path) - strlen(c->dir) - 1;
        while ((de = readdir(d))) {
            if (strncmp(de->d_name, h, 64) == 0 && de->d_name[64] == '-' &&
                strlen(de->d_name) == keep && strcmp(path + strlen(c->dir) + 1, de->d_name) != 0 &&
                strstr(de->d_name, ".native"))
                unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
    }
    return 0;
}

/* ---- compiling in a child ---- */

typedef struct compile_result {
    bool done;
    uint8_t *obj;
    size_t len;
    char err[ENG_ERR_MAX];
} compile_result_t;

static void on_compiled(void *ud, uint8_t *obj, size_t len, const char *err, uint64_t ns)
{
    (void)ns;
    compile_result_t *r = ud;
    r->done = true;
    r->obj = obj;
    r->len = len;
    if (err) snprintf(r->err, sizeof r->err, "%s", err);
}

int cli_native_compile(const uint8_t *wasm, size_t len, uint8_t **obj, size_t *objlen, char *err,
                       size_t errlen)
{
    char exe[4096];
    size_t exelen = sizeof exe;
    if (uv_exepath(exe, &exelen) != 0) {
        snprintf(err, errlen, "cannot find the wasmfn binary to compile with");
        return -1;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint8_t *copy = malloc(len ? len : 1);
    rt_compiler_config_t cfg = {.exe = exe, .max_jobs = 1, .nice = 0};
    rt_compiler_t *c = copy ? rt_compiler_new(&loop, &cfg, err, errlen) : NULL;
    compile_result_t r = {0};
    int rc = -1;
    if (!copy) snprintf(err, errlen, "out of memory");
    if (c) {
        memcpy(copy, wasm, len);
        int sub = rt_compiler_submit(c, copy, len, on_compiled, &r);
        copy = NULL; /* the compiler owns it, even when submit failed */
        if (sub == 0) {
            while (!r.done && uv_run(&loop, UV_RUN_ONCE)) {
            }
        }
        rt_compiler_stop(c);
        while (rt_compiler_busy(c) && uv_run(&loop, UV_RUN_ONCE)) {
        }
        rt_compiler_free(c);
        uv_run(&loop, UV_RUN_DEFAULT); /* the job's close callbacks */
        if (r.obj) {
            *obj = r.obj;
            *objlen = r.len;
            rc = 0;
        } else {
            snprintf(err, errlen, "%s", r.done ? r.err : "the compiler did not run");
        }
    }
    free(copy);
    uv_loop_close(&loop);
    return rc;
}

/* ---- modules that carry their native code ---- */

/* Reads a LEB128 u32 at *p (< end); -1 when malformed. */
static int64_t leb(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 35 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v > UINT32_MAX ? -1 : (int64_t)v;
    }
    return -1;
}

bool cli_native_section(const uint8_t *bytes, size_t len, size_t *module_len,
                        const uint8_t **payload, size_t *payload_len)
{
    if (len < 8) return false;
    const uint8_t *p = bytes + 8, *end = bytes + len;
    while (p < end) {
        const uint8_t *start = p;
        uint8_t id = *p++;
        int64_t size = leb(&p, end);
        if (size < 0 || (uint64_t)size > (uint64_t)(end - p)) return false;
        const uint8_t *body = p, *next = p + size;
        if (id == 0 && next == end) {
            int64_t nlen = leb(&body, next);
            if (nlen == (int64_t)strlen(SECTION_NAME) && (uint64_t)nlen <= (uint64_t)(next - body) &&
                memcmp(body, SECTION_NAME, (size_t)nlen) == 0) {
                *module_len = (size_t)(start - bytes);
                *payload = body + nlen;
                *payload_len = (size_t)(next - body - nlen);
                return true;
            }
        }
        p = next;
    }
    return false;
}

static size_t put_leb(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

uint8_t *cli_native_with_section(const uint8_t *module, size_t len, const uint8_t *art,
                                 size_t artlen, size_t *outlen)
{
    size_t name = strlen(SECTION_NAME);
    uint8_t lebs[16];
    size_t nl = put_leb(lebs, name);
    size_t body = nl + name + artlen;
    uint8_t sizeleb[16];
    size_t sl = put_leb(sizeleb, body);
    size_t total = len + 1 + sl + body;
    uint8_t *out = malloc(total);
    if (!out) return NULL;
    uint8_t *p = out;
    memcpy(p, module, len);
    p += len;
    *p++ = 0;
    memcpy(p, sizeleb, sl);
    p += sl;
    memcpy(p, lebs, nl);
    p += nl;
    memcpy(p, SECTION_NAME, name);
    p += name;
    memcpy(p, art, artlen);
    *outlen = total;
    return out;
}
