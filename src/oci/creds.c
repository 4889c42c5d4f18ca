/*
 * creds.c — registry credentials in Docker's config.json, the file `docker
 * login`, podman, skopeo and oras all read: {"auths": {"HOST": {"auth":
 * base64("user:password")}}}. We read it (explicit credentials win) and
 * write it for `wasmfn registry login`, keeping every other key. A host
 * with a credential helper (credHelpers.HOST, else credsStore) has its
 * credentials read from and stored to that helper (credhelper.c); one the
 * helper does not know falls back to auths.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "oci/internal.h"

#define MAX_CONFIG_BYTES (1u << 20)

void oci_base64(const void *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int oci_creds_default_path(char *out, size_t n)
{
    const char *d = getenv("DOCKER_CONFIG");
    int w;
    if (d && *d)
        w = snprintf(out, n, "%s/config.json", d);
    else if ((d = getenv("HOME")) && *d)
        w = snprintf(out, n, "%s/.docker/config.json", d);
    else
        return -1;
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* Docker Hub has had several names; its credentials are stored under
 * "https://index.docker.io/v1/" by docker login. */
static bool is_hub(const char *h)
{
    return strcmp(h, OCI_DOCKER_HUB) == 0 || strcmp(h, "docker.io") == 0 ||
           strcmp(h, "index.docker.io") == 0;
}

/* The host part of an auths key: "https://h:5000/v1/" -> "h:5000". */
static void key_host(const char *key, char *out, size_t n)
{
    if (strncmp(key, "https://", 8) == 0)
        key += 8;
    else if (strncmp(key, "http://", 7) == 0)
        key += 7;
    size_t len = strcspn(key, "/");
    if (len >= n) len = n - 1;
    memcpy(out, key, len);
    out[len] = 0;
}

static bool host_matches(const char *key, const char *host)
{
    char kh[256];
    key_host(key, kh, sizeof kh);
    return strcmp(kh, host) == 0 || (is_hub(kh) && is_hub(host));
}

/* What a credential helper is asked for: the host, or Docker Hub's URL. */
static const char *server_name(const char *host)
{
    return is_hub(host) ? "https://index.docker.io/v1/" : host;
}

/* The helper for host in a parsed config.json: credHelpers' entry for it,
 * else credsStore, else NULL. A name that is not a plain program suffix is
 * ignored (it must not reach a path). */
static const char *helper_for(const cJSON *cfg, const char *host)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cfg, "credHelpers"))
    {
        if (e->string && host_matches(e->string, host) && cJSON_IsString(e) &&
            oci_credhelper_name_ok(e->valuestring))
            return e->valuestring;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(cfg, "credsStore");
    return cJSON_IsString(st) && oci_credhelper_name_ok(st->valuestring) ? st->valuestring : NULL;
}

static int read_config(const char *path, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    cm_buf_t b = {0};
    char chunk[8192];
    size_t r;
    int rc = 0;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + r > MAX_CONFIG_BYTES || cm_buf_append(&b, chunk, r) != 0) {
            snprintf(err, errlen, "%s: larger than 1 MiB", path);
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0 && b.len) {
        *out = cJSON_ParseWithLength(b.data, b.len);
        if (!*out || !cJSON_IsObject(*out)) {
            snprintf(err, errlen, "%s: not a JSON object (a Docker config.json is expected)", path);
            cJSON_Delete(*out);
            *out = NULL;
            rc = -1;
        }
    }
    cm_buf_free(&b);
    return rc;
}

static bool decode_auth(const char *b64, oci_creds_t *c)
{
    size_t n = strlen(b64);
    if (n == 0 || n % 4 != 0 || n > 4 * 400) return false;
    unsigned char dec[1300];
    int len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
    if (len < 0) return false;
    /* EVP_DecodeBlock counts the bytes '=' padding stands for */
    if (n >= 1 && b64[n - 1] == '=') len--;
    if (n >= 2 && b64[n - 2] == '=') len--;
    dec[len] = 0;
    char *colon = memchr(dec, ':', (size_t)len);
    if (!colon) return false;
    *colon = 0;
    if (strlen((char *)dec) >= sizeof c->user || strlen(colon + 1) >= sizeof c->password)
        return false;
    strcpy(c->user, (char *)dec);
    strcpy(c->password, colon + 1);
    return true;
}

int oci_creds_lookup(const oci_options_t *opts, const char *host, oci_creds_t *c, char *err,
                     size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (opts->username && opts->password) {
        snprintf(c->user, sizeof c->user, "%s", opts->username);
        snprintf(c->password, sizeof c->password, "%s", opts->password);
        snprintf(c->source, sizeof c->source, "the command line");
        c->found = true;
        return 0;
    }
    char path[1024];
    if (opts->config_path)
        snprintf(path, sizeof path, "%s", opts->config_path);
    else if (oci_creds_default_path(path, sizeof path) != 0)
        return 0;
    snprintf(c->source, sizeof c->source, "%s", path);
    cJSON *cfg;
    if (read_config(path, &cfg, err, errlen) != 0) return -1;
    if (!cfg) return 0;
    const char *helper = helper_for(cfg, host);
    if (helper) {
        int r = oci_credhelper_get(helper, server_name(host), c, err, errlen);
        if (r != 0) {
            cJSON_Delete(cfg);
            return r < 0 ? -1 : 0;
        }
    }
    const cJSON *auths = cJSON_GetObjectItemCaseSensitive(cfg, "auths"), *e;
    cJSON_ArrayForEach(e, auths)
    {
        if (!e->string || !host_matches(e->string, host)) continue;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "auth");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "username");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "password");
        if (cJSON_IsString(a) && a->valuestring[0]) {
            if (!decode_auth(a->valuestring, c)) {
                snprintf(err, errlen, "%s: auths.\"%s\".auth is not base64 of USER:PASSWORD",
                         path, e->string);
                cJSON_Delete(cfg);
                return -1;
            }
            c->found = true;
        } else if (cJSON_IsString(u) && cJSON_IsString(p)) {
            snprintf(c->user, sizeof c->user, "%s", u->valuestring);
            snprintf(c->password, sizeof c->password, "%s", p->valuestring);
            c->found = true;
        }
        if (c->found) break;
    }
    cJSON_Delete(cfg);
    return 0;
}

int oci_creds_store(const char *path_in, const char *host, const char *user, const char *password,
                    char *where, size_t wherelen, char *err, size_t errlen)
{
    char path[1024];
    if (path_in)
        snprintf(path, sizeof path, "%s", path_in);
    else if (oci_creds_default_path(path, sizeof path) != 0) {
        snprintf(err, errlen, "no config file: set HOME or DOCKER_CONFIG, or give --registry-config");
        return -1;
    }
    snprintf(where, wherelen, "%s", path);
    cJSON *cfg;
    if (read_config(path, &cfg, err, errlen) != 0) return -1;
    const char *helper = cfg ? helper_for(cfg, host) : NULL;
    if (helper) {
        /* The password goes to the helper, never into the file. */
        snprintf(where, wherelen, "credential helper docker-credential-%s", helper);
        int r = oci_credhelper_store(helper, server_name(host), user, password, err, errlen);
        cJSON_Delete(cfg);
        return r;
    }
    if (!cfg) cfg = cJSON_CreateObject();
    cJSON *auths = cJSON_GetObjectItemCaseSensitive(cfg, "auths");
    if (!cJSON_IsObject(auths)) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "auths");
        auths = cJSON_AddObjectToObject(cfg, "auths");
    }
    /* Replace any spelling of this host (docker login may have stored
     * "https://HOST"), so a lookup cannot find a stale entry first. */
    for (cJSON *e = auths->child, *next; e; e = next) {
        next = e->next;
        if (e->string && host_matches(e->string, host)) cJSON_Delete(cJSON_DetachItemViaPointer(auths, e));
    }
    size_t ulen = strlen(user), plen = strlen(password);
    char *pair = malloc(ulen + plen + 2), *b64 = malloc(4 * ((ulen + plen + 3) / 3) + 4);
    int rc = -1;
    if (!pair || !b64) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    sprintf(pair, "%s:%s", user, password);
    oci_base64(pair, ulen + plen + 1, b64);
    cJSON *entry = cJSON_AddObjectToObject(auths, is_hub(host) ? "https://index.docker.io/v1/" : host);
    cJSON_AddStringToObject(entry, "auth", b64);
    char *text = cJSON_Print(cfg);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    /* The directory and the file hold a password: nobody else reads them.
     * Written beside and renamed, so a crash never leaves half a file. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            free(text);
            goto out;
        }
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t tlen = strlen(text);
    if (fd < 0 || write(fd, text, tlen) != (ssize_t)tlen || write(fd, "\n", 1) != 1 ||
        fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
        free(text);
        goto out;
    }
    close(fd);
    free(text);
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(pair);
    free(b64);
    cJSON_Delete(cfg);
    return rc;
}
