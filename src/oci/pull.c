/*
 * pull.c — from a reference to a module: the manifest (through an index
 * when the tag names one), then the layer that holds the module.
 *
 * Manifests are small and read whole (at most 4 MiB, as containerd
 * bounds them), hashed, and checked against the digest we asked for or
 * the one the registry announced; the digest of the image manifest we end
 * at is what a tag resolves to, and what a revision should record.
 *
 * Which layer: a layer of a Wasm media type is the module (the Wasm OCI
 * artifact; the first one if several). Otherwise the image is a plain
 * container image: its config's Entrypoint (else Cmd) names a .wasm file,
 * and the layers are searched from the top one down for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "oci/internal.h"

#define MAX_MANIFEST (4u << 20)
#define MAX_CONFIG (1u << 20)

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_WASM_CONFIG "application/vnd.wasm.config.v0+json"

static const char ACCEPT[] = "Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST
                             ", " MT_DOCKER_LIST;

/* The layer types that are a module as is: the Wasm OCI artifact's, and
 * the older "module" spelling of the crun/WasmEdge compat layout. */
static bool is_wasm_layer(const char *mt)
{
    return strcmp(mt, "application/vnd.wasm.content.layer.v1+wasm") == 0 ||
           strcmp(mt, "application/vnd.module.wasm.content.layer.v1+wasm") == 0 ||
           strcmp(mt, "application/wasm") == 0;
}

static bool is_tar_layer(const char *mt)
{
    return strcmp(mt, "application/vnd.oci.image.layer.v1.tar") == 0 ||
           strcmp(mt, "application/vnd.oci.image.layer.v1.tar+gzip") == 0 ||
           strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar.gzip") == 0 ||
           strcmp(mt, "application/vnd.oci.image.layer.nondistributable.v1.tar") == 0 ||
           strcmp(mt, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") == 0;
}

typedef struct desc {
    const char *media_type; /* "" when absent */
    const char *digest;
    uint64_t size;
} desc_t;

static bool valid_digest(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71) return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

static oci_status_t parse_desc(oci_sess_t *s, const cJSON *j, const char *where, desc_t *d)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "mediaType");
    const cJSON *dg = cJSON_GetObjectItemCaseSensitive(j, "digest");
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(j, "size");
    d->media_type = cJSON_IsString(mt) ? mt->valuestring : "";
    if (!cJSON_IsString(dg) || !cJSON_IsNumber(sz) || sz->valuedouble < 0 ||
        sz->valuedouble > 9007199254740992.0)
        return oci_sess_fail(s, OCI_ERR_PROTOCOL, "the manifest's %s has no digest or size", where);
    if (!valid_digest(dg->valuestring))
        return oci_sess_fail(s, OCI_ERR_PROTOCOL,
                             "the manifest's %s has digest '%s': only sha256 is supported", where,
                             dg->valuestring);
    d->digest = dg->valuestring;
    d->size = (uint64_t)sz->valuedouble;
    return OCI_OK;
}

/* GETs manifests/REFERENCE (a tag or digest) into body, with its media
 * type and the digest of its bytes. */
static oci_status_t get_manifest(oci_sess_t *s, const char *reference, bool is_digest,
                                 cm_buf_t *body, char *media_type, size_t mtlen, char digest[72])
{
    char url[600];
    snprintf(url, sizeof url, "/v2/%s/manifests/%s", s->repo, reference);
    const char *hdrs[] = {ACCEPT};
    oci_http_req_t req = {.method = "GET", .url = url, .headers = hdrs, .nheaders = 1,
                          .max_body = MAX_MANIFEST};
    oci_http_resp_t resp = {0};
    oci_status_t st = oci_sess_do(s, &req, &resp);
    if (st == OCI_ERR_TOO_LARGE)
        st = oci_sess_fail(s, st, "manifest %s is over the 4 MiB limit", reference);
    if (st != OCI_OK) goto out;
    if (resp.status == 404) {
        bool repo_unknown = resp.body.data && strstr(resp.body.data, "NAME_UNKNOWN");
        st = oci_sess_fail(s, OCI_ERR_NOT_FOUND, "manifest unknown: %s",
                           repo_unknown ? "no such repository"
                           : is_digest  ? "no such digest"
                                        : "no such tag");
        goto out;
    }
    if (resp.status != 200) {
        st = oci_sess_http_error(s, "manifest", &resp);
        goto out;
    }
    oci_digest_bytes(resp.body.data ? resp.body.data : "", resp.body.len, digest);
    const char *want = is_digest ? reference : resp.docker_digest[0] ? resp.docker_digest : NULL;
    if (want && strcmp(want, digest) != 0) {
        st = oci_sess_fail(s, OCI_ERR_DIGEST, "digest mismatch: manifest %s hashes to %s", want,
                           digest);
        goto out;
    }
    snprintf(media_type, mtlen, "%.*s", (int)strcspn(resp.content_type, ";"), resp.content_type);
    *body = resp.body;
    memset(&resp.body, 0, sizeof resp.body);
out:
    oci_http_resp_free(&resp);
    return st;
}

/* The manifest an index lists for wasi/wasm, else linux/amd64. */
static oci_status_t pick_from_index(oci_sess_t *s, const cJSON *idx, desc_t *out)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(idx, "manifests"), *m;
    const cJSON *best = NULL;
    int best_rank = 0;
    char seen[512] = "";
    size_t seen_len = 0;
    cJSON_ArrayForEach(m, list)
    {
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(m, "platform");
        const cJSON *os = cJSON_GetObjectItemCaseSensitive(pl, "os");
        const cJSON *arch = cJSON_GetObjectItemCaseSensitive(pl, "architecture");
        const char *o = cJSON_IsString(os) ? os->valuestring : "?";
        const char *a = cJSON_IsString(arch) ? arch->valuestring : "?";
        int rank = 0;
        if ((strcmp(o, "wasi") == 0 || strncmp(o, "wasip", 5) == 0) &&
            (strcmp(a, "wasm") == 0 || strcmp(a, "wasm32") == 0))
            rank = 2;
        else if (strcmp(o, "linux") == 0 && strcmp(a, "amd64") == 0)
            rank = 1;
        if (rank > best_rank) best = m, best_rank = rank;
        int w = snprintf(seen + seen_len, sizeof seen - seen_len, "%s%s/%s", seen_len ? ", " : "",
                         o, a);
        if (w > 0 && (size_t)w < sizeof seen - seen_len) seen_len += (size_t)w;
    }
    if (!best)
        return oci_sess_fail(s, OCI_ERR_NO_WASM,
                             "the index lists no wasi/wasm or linux/amd64 image (it has: %s)",
                             seen_len ? seen : "nothing");
    return parse_desc(s, best, "index entry", out);
}

/* The .wasm path a plain image's config names: Entrypoint[0], else Cmd[0]. */
static oci_status_t entrypoint(oci_sess_t *s, const cm_buf_t *cfg_text, char *path, size_t n)
{
    cJSON *cfg = cJSON_ParseWithLength(cfg_text->data, cfg_text->len);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cfg, "config");
    const cJSON *ep = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "Entrypoint"), 0);
    if (!cJSON_IsString(ep)) ep = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "Cmd"), 0);
    oci_status_t st = OCI_OK;
    if (!cfg)
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "the image config is not JSON");
    else if (!cJSON_IsString(ep))
        st = oci_sess_fail(s, OCI_ERR_NO_WASM,
                           "the image has no Wasm layer and its config names no entrypoint");
    else {
        const char *e = ep->valuestring;
        size_t len = strlen(e);
        if (len < 6 || strcmp(e + len - 5, ".wasm") != 0 || len >= n)
            st = oci_sess_fail(s, OCI_ERR_NO_WASM,
                               "the image has no Wasm layer and its entrypoint '%s' is not a "
                               ".wasm file",
                               e);
        else {
            strcpy(path, e);
            char *p = path;
            while (*p == '/' || (p[0] == '.' && p[1] == '/')) p += *p == '/' ? 1 : 2;
            memmove(path, p, strlen(p) + 1);
        }
    }
    cJSON_Delete(cfg);
    return st;
}

static oci_status_t pull_in(oci_sess_t *s, const oci_ref_t *ref, const oci_options_t *opts,
                            oci_sink_fn sink, void *ctx, oci_pull_result_t *res)
{
    uint64_t max_module = opts->max_module_bytes ? opts->max_module_bytes : OCI_DEFAULT_MAX_MODULE;
    cm_buf_t body = {0};
    char mt[256], digest[72];
    cJSON *man = NULL;
    const char *first = ref->digest[0] ? ref->digest : ref->tag;
    oci_status_t st = get_manifest(s, first, ref->digest[0] != 0, &body, mt, sizeof mt, digest);
    if (st != OCI_OK) return st;
    man = cJSON_ParseWithLength(body.data, body.len);
    if (!cJSON_IsObject(man)) {
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "the manifest is not a JSON object");
        goto out;
    }
    const cJSON *jmt = cJSON_GetObjectItemCaseSensitive(man, "mediaType");
    if (cJSON_IsString(jmt)) snprintf(mt, sizeof mt, "%s", jmt->valuestring);
    if (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0 ||
        (!mt[0] && cJSON_GetObjectItemCaseSensitive(man, "manifests"))) {
        desc_t d;
        if ((st = pick_from_index(s, man, &d)) != OCI_OK) goto out;
        strcpy(res->index_digest, digest);
        char chosen[72];
        snprintf(chosen, sizeof chosen, "%s", d.digest);
        cJSON_Delete(man);
        cm_buf_free(&body);
        man = NULL;
        if ((st = get_manifest(s, chosen, true, &body, mt, sizeof mt, digest)) != OCI_OK) goto out;
        man = cJSON_ParseWithLength(body.data, body.len);
        jmt = cJSON_GetObjectItemCaseSensitive(man, "mediaType");
        if (cJSON_IsString(jmt)) snprintf(mt, sizeof mt, "%s", jmt->valuestring);
        if (!cJSON_IsObject(man) || cJSON_GetObjectItemCaseSensitive(man, "manifests")) {
            st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "manifest %s is not an image manifest", chosen);
            goto out;
        }
    }
    if (mt[0] && strcmp(mt, MT_OCI_MANIFEST) != 0 && strcmp(mt, MT_DOCKER_MANIFEST) != 0) {
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "unsupported manifest type %s", mt);
        goto out;
    }
    strcpy(res->manifest_digest, digest);

    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(man, "layers"), *l;
    desc_t cfg;
    if ((st = parse_desc(s, cJSON_GetObjectItemCaseSensitive(man, "config"), "config", &cfg)) !=
        OCI_OK)
        goto out;
    int nlayers = cJSON_GetArraySize(layers), i = 0;
    char types[512] = "";
    size_t tlen = 0;
    cJSON_ArrayForEach(l, layers)
    {
        desc_t d;
        char where[32];
        snprintf(where, sizeof where, "layer %d", i++);
        if ((st = parse_desc(s, l, where, &d)) != OCI_OK) goto out;
        int w = snprintf(types + tlen, sizeof types - tlen, "%s%s", tlen ? ", " : "", d.media_type);
        if (w > 0 && (size_t)w < sizeof types - tlen) tlen += (size_t)w;
        if (!is_wasm_layer(d.media_type)) continue;
        /* The cache by digest: a module already held costs no transfer.
         * (One over the size limit is refused below as it would be.) */
        if (opts->have_module && d.size <= max_module &&
            opts->have_module(opts->have_module_ctx, d.digest, d.size)) {
            strcpy(res->module_digest, d.digest);
            res->module_bytes = d.size;
            res->cached = true;
            goto out;
        }
        oci_blob_job_t job = {.digest = d.digest, .size = d.size, .max_size = max_module,
                              .kind = OCI_BLOB_RAW, .max_module = max_module, .sink = sink,
                              .ctx = ctx};
        if ((st = oci_blob_fetch(s, &job)) != OCI_OK) goto out;
        strcpy(res->module_digest, job.module_digest);
        res->module_bytes = job.module_bytes;
        goto out;
    }

    /* No Wasm layer: a plain image with the module in a tar layer? */
    if (strcmp(cfg.media_type, MT_WASM_CONFIG) == 0 || nlayers == 0) {
        st = oci_sess_fail(s, OCI_ERR_NO_WASM, "the manifest has no Wasm layer (layers: %s)",
                           tlen ? types : "none");
        goto out;
    }
    /* The same manifest pulled before: its layers, so its module, are the
     * same (the caller keeps that module). */
    if (opts->have_image && opts->have_image(opts->have_module_ctx, res->manifest_digest, res)) {
        res->cached = res->from_tar = true;
        goto out;
    }
    cm_buf_t cfg_text = {0};
    if ((st = oci_blob_get_small(s, cfg.digest, cfg.size, MAX_CONFIG, &cfg_text)) != OCI_OK) goto out;
    char path[256];
    st = entrypoint(s, &cfg_text, path, sizeof path);
    cm_buf_free(&cfg_text);
    if (st != OCI_OK) goto out;
    for (int k = nlayers - 1; k >= 0; k--) {
        desc_t d;
        parse_desc(s, cJSON_GetArrayItem(layers, k), "layer", &d);
        if (!is_tar_layer(d.media_type))
            continue;
        /* A tar holds more than the module; allow some room, still bounded. */
        uint64_t max_layer = max_module > UINT64_MAX / 4 ? UINT64_MAX : max_module * 4;
        oci_blob_job_t job = {.digest = d.digest, .size = d.size, .max_size = max_layer,
                              .kind = OCI_BLOB_TAR, .want_path = path, .max_module = max_module,
                              .sink = sink, .ctx = ctx};
        if ((st = oci_blob_fetch(s, &job)) != OCI_OK) goto out;
        if (job.found) {
            strcpy(res->module_digest, job.module_digest);
            res->module_bytes = job.module_bytes;
            res->from_tar = true;
            snprintf(res->module_path, sizeof res->module_path, "/%s", path);
            goto out;
        }
        if (job.whiteout) break;
    }
    st = oci_sess_fail(s, OCI_ERR_NO_WASM,
                       "the image has no Wasm layer and no layer holds /%s (its entrypoint)", path);
out:
    cJSON_Delete(man);
    cm_buf_free(&body);
    return st;
}

oci_status_t oci_pull(const oci_ref_t *ref, const oci_options_t *opts, oci_sink_fn sink,
                      void *ctx, oci_pull_result_t *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    char msg[1024] = "";
    oci_sess_t s;
    oci_status_t st = oci_sess_open(&s, opts, ref->registry, ref->repository, "pull", msg,
                                    sizeof msg);
    if (st == OCI_OK) st = pull_in(&s, ref, opts, sink, ctx, res);
    oci_sess_close(&s);
    if (st != OCI_OK) {
        char name[700];
        oci_ref_format(ref, name, sizeof name);
        snprintf(err, errlen, "%s: %s", name, msg);
    }
    return st;
}

/* ---- into a file ---- */

typedef struct file_sink {
    int fd;
} file_sink_t;

static int write_all(void *ctx, const uint8_t *p, size_t n)
{
    file_sink_t *f = ctx;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

oci_status_t oci_pull_file(const oci_ref_t *ref, const oci_options_t *opts, const char *path,
                           oci_pull_result_t *res, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    file_sink_t f = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return OCI_ERR_IO;
    }
    oci_status_t st = oci_pull(ref, opts, write_all, &f, res, err, errlen);
    if (close(f.fd) != 0 && st == OCI_OK) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        st = OCI_ERR_IO;
    }
    if (st == OCI_OK && rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        st = OCI_ERR_IO;
    }
    if (st != OCI_OK) unlink(tmp);
    return st;
}
