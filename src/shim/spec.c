/*
 * spec.c — what a container is: the parts of the bundle's OCI runtime spec
 * (config.json) that a Wasm guest has a use for, and opening files inside
 * its rootfs without escaping it.
 *
 * Read: process.args (args[0] is the .wasm in the rootfs), process.env,
 * process.cwd, root.path, linux.resources.memory.limit, bind mounts (they
 * become preopened directories), the network namespace to join, and the
 * annotations wasmfn.dev/http and io.kubernetes.cri.container-type.
 * Everything else (capabilities, seccomp, cgroups, namespaces but the
 * network's) describes a Linux process and has no meaning for a Wasm
 * guest, which can only reach what WASI hands it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "shim/shim.h"

/* config.json is written by containerd from the image and the client's
 * options; a bigger one is not a spec we should be parsing. */
#define SPEC_MAX_BYTES (4u << 20)

char *shim_file_read_small(const char *path, size_t max, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, max);
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf || n != (size_t)st.st_size) {
        snprintf(err, errlen, "%s: cannot read it", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* Copies a JSON array of strings; field names it in errors. */
static int strings_copy(const cJSON *arr, const char *field, char ***out, int *n, char *err,
                        size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "config.json: %s is not an array", field);
        return -1;
    }
    int count = cJSON_GetArraySize(arr);
    *out = calloc((size_t)count + 1, sizeof **out);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsString(e)) {
            snprintf(err, errlen, "config.json: %s[%d] is not a string", field, *n);
            return -1;
        }
        if (!((*out)[*n] = strdup(e->valuestring))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static bool has_option(const cJSON *options, const char *want)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, options) {
        if (cJSON_IsString(o) && strcmp(o->valuestring, want) == 0) return true;
    }
    return false;
}

static const char *annotation(const cJSON *root, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "annotations"), key);
    return cJSON_IsString(a) ? a->valuestring : NULL;
}

int shim_spec_load(const char *bundle, shim_spec_t *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", bundle) >= sizeof path) {
        snprintf(err, errlen, "bundle path too long");
        return -1;
    }
    char *text = shim_file_read_small(path, SPEC_MAX_BYTES, err, errlen);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "config.json: not a JSON object");
        goto out;
    }
    const cJSON *process = cJSON_GetObjectItemCaseSensitive(root, "process");
    if (strings_copy(cJSON_GetObjectItemCaseSensitive(process, "args"), "process.args", &s->args,
                     &s->nargs, err, errlen) != 0 ||
        strings_copy(cJSON_GetObjectItemCaseSensitive(process, "env"), "process.env", &s->env,
                     &s->nenv, err, errlen) != 0)
        goto out;
    if (s->nargs == 0 || !s->args[0][0]) {
        snprintf(err, errlen,
                 "config.json: process.args is empty: it must name the .wasm module "
                 "(the image's entrypoint or cmd)");
        goto out;
    }
    const cJSON *cwd = cJSON_GetObjectItemCaseSensitive(process, "cwd");
    s->cwd = strdup(cJSON_IsString(cwd) && cwd->valuestring[0] ? cwd->valuestring : "/");

    const cJSON *rpath =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "root"), "path");
    if (!cJSON_IsString(rpath) || !rpath->valuestring[0]) {
        snprintf(err, errlen, "config.json: root.path is missing");
        goto out;
    }
    if (rpath->valuestring[0] == '/') s->rootfs = strdup(rpath->valuestring);
    else if (asprintf(&s->rootfs, "%s/%s", bundle, rpath->valuestring) < 0) s->rootfs = NULL;
    if (!s->cwd || !s->rootfs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "linux"),
                                             "resources"),
            "memory"),
        "limit");
    if (limit) {
        if (!cJSON_IsNumber(limit)) {
            snprintf(err, errlen, "config.json: linux.resources.memory.limit is not a number");
            goto out;
        }
        /* -1 (and 0) mean no limit, as for runc. */
        if (limit->valuedouble >= 1) s->memory_limit_bytes = (uint64_t)limit->valuedouble;
    }

    const cJSON *mounts = cJSON_GetObjectItemCaseSensitive(root, "mounts"), *m;
    int nm = cJSON_GetArraySize(mounts);
    s->mounts = calloc((size_t)(nm > 0 ? nm : 1), sizeof *s->mounts);
    if (!s->mounts) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(m, mounts) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(m, "source");
        const cJSON *dst = cJSON_GetObjectItemCaseSensitive(m, "destination");
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(m, "options");
        bool bind = (cJSON_IsString(type) && strcmp(type->valuestring, "bind") == 0) ||
                    has_option(opts, "bind") || has_option(opts, "rbind");
        if (!bind || !cJSON_IsString(src) || !cJSON_IsString(dst)) continue;
        /* Volumes are directories; a bind-mounted file (Kubernetes mounts
         * /etc/hosts, /dev/termination-log) cannot be a preopen. */
        struct stat st;
        if (stat(src->valuestring, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        shim_mount_t *sm = &s->mounts[s->nmounts];
        sm->source = strdup(src->valuestring);
        sm->destination = strdup(dst->valuestring);
        s->nmounts++;
        if (!sm->source || !sm->destination) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }

    const char *http = annotation(root, SHIM_HTTP_ANNOTATION);
    s->http = http && strcmp(http, "true") == 0;
    const char *ctype = annotation(root, "io.kubernetes.cri.container-type");
    s->sandbox = ctype && strcmp(ctype, "sandbox") == 0;

    const cJSON *ns;
    cJSON_ArrayForEach(ns, cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(root, "linux"), "namespaces")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ns, "type");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(ns, "path");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "network") == 0 && cJSON_IsString(p) &&
            p->valuestring[0]) {
            if (!(s->netns_path = strdup(p->valuestring))) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

static void strings_free(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void shim_spec_free(shim_spec_t *s)
{
    strings_free(s->args, s->nargs);
    strings_free(s->env, s->nenv);
    for (int i = 0; i < s->nmounts; i++) {
        free(s->mounts[i].source);
        free(s->mounts[i].destination);
    }
    free(s->mounts);
    free(s->cwd);
    free(s->rootfs);
    free(s->netns_path);
    memset(s, 0, sizeof *s);
}

int shim_open_in_root(const char *root, const char *path)
{
    int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    /* RESOLVE_IN_ROOT treats dfd as "/" for absolute paths, "..", and
     * symbolic links alike: the kernel does what chroot would, per call. */
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, dfd, path, &how, sizeof how);
    int e = errno;
    close(dfd);
    errno = e;
    return fd;
}
