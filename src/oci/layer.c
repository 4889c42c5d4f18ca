/*
 * layer.c — reading blobs as they stream in: every byte is hashed and
 * counted against its descriptor (a registry, a proxy or a disk may hand
 * us anything), and the bytes flow on to the module sink, either as they
 * are (a Wasm artifact's layer) or through gunzip and a tar reader that
 * picks out one file (a plain image's layer). Nothing is buffered beyond
 * one 64 KiB inflate window and one tar header, whatever the layer's size.
 *
 * The tar reader understands what image builders write: ustar names with
 * their prefix, GNU long names ('L'), PAX path records ('x'), and OCI
 * whiteouts (".wh.NAME" in an upper layer deletes NAME below).
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "oci/internal.h"

#define MAX_META (64u << 10) /* a long name or PAX header */

enum entry_kind { ENTRY_SKIP, ENTRY_MODULE, ENTRY_META_NAME, ENTRY_META_PAX };

typedef struct stream {
    oci_sess_t *s;
    oci_blob_job_t *job;
    oci_status_t st;
    EVP_MD_CTX *blob_md, *mod_md;
    uint64_t blob_bytes;
    /* gzip */
    bool decided, gzip, z_ready, z_end;
    z_stream z;
    /* tar */
    uint8_t hdr[512];
    size_t hdr_len;
    uint64_t entry_left, pad_left;
    enum entry_kind kind;
    cm_buf_t meta;
    char next_name[1024];
    int zero_blocks;
    bool tar_done;
} stream_t;

static int stop(stream_t *x, oci_status_t st)
{
    x->st = st;
    return -1;
}

/* ---- the module's bytes ---- */

static int module_feed(stream_t *x, const uint8_t *p, size_t n)
{
    oci_blob_job_t *j = x->job;
    j->module_bytes += n;
    if (j->module_bytes > j->max_module)
        return stop(x, oci_sess_fail(x->s, OCI_ERR_TOO_LARGE,
                                     "the module in blob %s is over the module size limit of %llu bytes",
                                     j->digest, (unsigned long long)j->max_module));
    EVP_DigestUpdate(x->mod_md, p, n);
    if (n && j->sink && j->sink(j->ctx, p, n) != 0)
        return stop(x, oci_sess_fail(x->s, OCI_ERR_IO, "writing the module failed"));
    return 0;
}

/* ---- tar ---- */

static void normalize(char *name)
{
    char *p = name;
    for (;;) {
        if (p[0] == '/')
            p++;
        else if (p[0] == '.' && p[1] == '/')
            p += 2;
        else
            break;
    }
    memmove(name, p, strlen(p) + 1);
}

static uint64_t tar_number(const uint8_t *f, size_t n)
{
    uint64_t v = 0;
    if (f[0] & 0x80) { /* GNU base-256 for sizes over 8 GiB */
        for (size_t i = 1; i < n; i++) v = (v << 8) | f[i];
        return v;
    }
    size_t i = 0;
    while (i < n && (f[i] == ' ' || f[i] == 0)) i++;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) v = (v << 3) | (uint64_t)(f[i] - '0');
    return v;
}

static bool tar_checksum_ok(const uint8_t *h)
{
    uint64_t want = tar_number(h + 148, 8), sum = 0;
    for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == want;
}

/* Whether name is the whiteout of want: DIR/.wh.BASE for want DIR/BASE. */
static bool is_whiteout_of(const char *name, const char *want)
{
    const char *wb = strrchr(want, '/'), *nb = strrchr(name, '/');
    size_t wdir = wb ? (size_t)(wb - want) : 0, ndir = nb ? (size_t)(nb - name) : 0;
    const char *base = wb ? wb + 1 : want, *nbase = nb ? nb + 1 : name;
    return wdir == ndir && strncmp(want, name, wdir) == 0 && strncmp(nbase, ".wh.", 4) == 0 &&
           strcmp(nbase + 4, base) == 0;
}

static void pax_path(stream_t *x)
{
    /* records "LEN key=value\n" */
    const char *p = x->meta.data, *end = p + x->meta.len;
    while (p < end) {
        char *sp;
        unsigned long len = strtoul(p, &sp, 10);
        if (len == 0 || sp >= end || *sp != ' ' || len > (unsigned long)(end - p)) return;
        const char *kv = sp + 1, *rec_end = p + len;
        if (rec_end - kv > 5 && strncmp(kv, "path=", 5) == 0) {
            size_t vl = (size_t)(rec_end - kv - 5 - 1);
            if (vl < sizeof x->next_name) {
                memcpy(x->next_name, kv + 5, vl);
                x->next_name[vl] = 0;
            }
        }
        p = rec_end;
    }
}

static void entry_done(stream_t *x)
{
    if (x->kind == ENTRY_META_NAME) {
        size_t n = strnlen(x->meta.data ? x->meta.data : "", x->meta.len);
        if (n < sizeof x->next_name) {
            memcpy(x->next_name, x->meta.data, n);
            x->next_name[n] = 0;
        }
    } else if (x->kind == ENTRY_META_PAX) {
        pax_path(x);
    }
    cm_buf_free(&x->meta);
    x->kind = ENTRY_SKIP;
}

static int tar_header(stream_t *x)
{
    const uint8_t *h = x->hdr;
    oci_blob_job_t *j = x->job;
    bool zero = true;
    for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
    if (zero) {
        if (++x->zero_blocks == 2) x->tar_done = true;
        return 0;
    }
    x->zero_blocks = 0;
    if (!tar_checksum_ok(h))
        return stop(x, oci_sess_fail(x->s, OCI_ERR_PROTOCOL,
                                     "layer %s is not a tar archive (bad header checksum)",
                                     j->digest));
    char name[1024];
    if (x->next_name[0]) {
        snprintf(name, sizeof name, "%s", x->next_name);
        x->next_name[0] = 0;
    } else if (memcmp(h + 257, "ustar", 5) == 0 && h[345]) {
        snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
    } else {
        snprintf(name, sizeof name, "%.100s", (const char *)h);
    }
    normalize(name);
    uint64_t size = tar_number(h + 124, 12);
    char type = (char)h[156];
    x->entry_left = size;
    x->pad_left = (512 - size % 512) % 512;
    x->kind = ENTRY_SKIP;
    if (type == 'L' || type == 'x') {
        if (size > MAX_META)
            return stop(x, oci_sess_fail(x->s, OCI_ERR_PROTOCOL,
                                         "layer %s: a tar name record of %llu bytes", j->digest,
                                         (unsigned long long)size));
        x->kind = type == 'L' ? ENTRY_META_NAME : ENTRY_META_PAX;
    } else if (strcmp(name, j->want_path) == 0) {
        if (type == '1' || type == '2')
            return stop(x, oci_sess_fail(x->s, OCI_ERR_NO_WASM,
                                         "/%s in layer %s is a link; the entrypoint must be a regular file",
                                         j->want_path, j->digest));
        if ((type == '0' || type == 0 || type == '7') && !j->found) {
            if (size > j->max_module)
                return stop(x, oci_sess_fail(x->s, OCI_ERR_TOO_LARGE,
                                             "/%s in layer %s is %llu bytes, over the module size limit of %llu bytes",
                                             j->want_path, j->digest, (unsigned long long)size,
                                             (unsigned long long)j->max_module));
            j->found = true;
            x->kind = ENTRY_MODULE;
        }
    } else if (!j->found && is_whiteout_of(name, j->want_path)) {
        j->whiteout = true;
    }
    if (size == 0) entry_done(x);
    return 0;
}

static int tar_feed(stream_t *x, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (x->entry_left > 0) {
            size_t take = n < x->entry_left ? n : (size_t)x->entry_left;
            if (x->kind == ENTRY_MODULE) {
                if (module_feed(x, p, take) != 0) return -1;
            } else if (x->kind == ENTRY_META_NAME || x->kind == ENTRY_META_PAX) {
                if (cm_buf_append(&x->meta, p, take) != 0)
                    return stop(x, oci_sess_fail(x->s, OCI_ERR_IO, "out of memory"));
            }
            x->entry_left -= take;
            p += take;
            n -= take;
            if (x->entry_left == 0) entry_done(x);
            continue;
        }
        if (x->pad_left > 0) {
            size_t take = n < x->pad_left ? n : (size_t)x->pad_left;
            x->pad_left -= take;
            p += take;
            n -= take;
            continue;
        }
        if (x->tar_done) return 0; /* trailing blocks: still hashed, not read */
        size_t take = 512 - x->hdr_len;
        if (take > n) take = n;
        memcpy(x->hdr + x->hdr_len, p, take);
        x->hdr_len += take;
        p += take;
        n -= take;
        if (x->hdr_len == 512) {
            x->hdr_len = 0;
            if (tar_header(x) != 0) return -1;
        }
    }
    return 0;
}

/* ---- gzip ---- */

static int gunzip_feed(stream_t *x, const uint8_t *p, size_t n)
{
    uint8_t out[65536];
    x->z.next_in = (Bytef *)p;
    x->z.avail_in = (uInt)n;
    while (x->z.avail_in > 0) {
        if (x->z_end) {
            /* another gzip member follows (concatenated gzip is valid) */
            if (inflateReset(&x->z) != Z_OK) break;
            x->z_end = false;
        }
        x->z.next_out = out;
        x->z.avail_out = sizeof out;
        int zr = inflate(&x->z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            return stop(x, oci_sess_fail(x->s, OCI_ERR_PROTOCOL, "layer %s is not valid gzip (%s)",
                                         x->job->digest, x->z.msg ? x->z.msg : "inflate failed"));
        if (tar_feed(x, out, sizeof out - x->z.avail_out) != 0) return -1;
        if (zr == Z_STREAM_END) x->z_end = true;
        if (zr == Z_BUF_ERROR) break;
    }
    return 0;
}

/* ---- the blob ---- */

static int on_body(void *ctx, const char *data, size_t n)
{
    stream_t *x = ctx;
    oci_blob_job_t *j = x->job;
    const uint8_t *p = (const uint8_t *)data;
    x->blob_bytes += n;
    if (x->blob_bytes > j->size)
        return stop(x, oci_sess_fail(x->s, OCI_ERR_DIGEST,
                                     "blob %s is longer than the %llu bytes its descriptor says",
                                     j->digest, (unsigned long long)j->size));
    EVP_DigestUpdate(x->blob_md, p, n);
    if (j->kind == OCI_BLOB_RAW) return module_feed(x, p, n);
    if (!x->decided) {
        x->decided = true;
        x->gzip = n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
        if (x->gzip) {
            /* 15 + 16: gzip framing only */
            if (inflateInit2(&x->z, 15 + 16) != Z_OK)
                return stop(x, oci_sess_fail(x->s, OCI_ERR_IO, "out of memory"));
            x->z_ready = true;
        }
    }
    return x->gzip ? gunzip_feed(x, p, n) : tar_feed(x, p, n);
}

oci_status_t oci_blob_fetch(oci_sess_t *s, oci_blob_job_t *j)
{
    if (j->size > j->max_size)
        return oci_sess_fail(s, OCI_ERR_TOO_LARGE,
                             "%s %s is %llu bytes, over the %s size limit of %llu bytes",
                             j->kind == OCI_BLOB_RAW ? "the module layer" : "layer", j->digest,
                             (unsigned long long)j->size,
                             j->kind == OCI_BLOB_RAW ? "module" : "layer",
                             (unsigned long long)j->max_size);
    stream_t x = {.s = s, .job = j};
    j->found = j->whiteout = false;
    j->module_bytes = 0;
    x.blob_md = EVP_MD_CTX_new();
    x.mod_md = EVP_MD_CTX_new();
    if (!x.blob_md || !x.mod_md) {
        EVP_MD_CTX_free(x.blob_md);
        EVP_MD_CTX_free(x.mod_md);
        return oci_sess_fail(s, OCI_ERR_IO, "out of memory");
    }
    EVP_DigestInit_ex(x.blob_md, EVP_sha256(), NULL);
    EVP_DigestInit_ex(x.mod_md, EVP_sha256(), NULL);

    char url[600];
    snprintf(url, sizeof url, "/v2/%s/blobs/%s", s->repo, j->digest);
    oci_http_req_t req = {.method = "GET", .url = url, .on_body = on_body, .ctx = &x};
    oci_http_resp_t resp = {0};
    oci_status_t st = oci_sess_do(s, &req, &resp);
    if (st == OCI_ERR_IO && resp.aborted) st = x.st;
    if (st == OCI_OK && resp.status != 200) {
        char what[200];
        snprintf(what, sizeof what, "blob %s", j->digest);
        st = oci_sess_http_error(s, what, &resp);
    }
    if (st == OCI_OK && x.blob_bytes != j->size)
        st = oci_sess_fail(s, OCI_ERR_DIGEST, "blob %s is %llu bytes, its descriptor says %llu",
                           j->digest, (unsigned long long)x.blob_bytes,
                           (unsigned long long)j->size);
    if (st == OCI_OK) {
        char got[72];
        oci_digest_final(x.blob_md, got);
        if (strcmp(got, j->digest) != 0)
            st = oci_sess_fail(s, OCI_ERR_DIGEST,
                               "digest mismatch: blob %s hashes to %s (corrupted or tampered "
                               "with; nothing was kept)",
                               j->digest, got);
    }
    if (st == OCI_OK && j->kind == OCI_BLOB_TAR && x.gzip && !x.z_end)
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "layer %s: the gzip stream is truncated", j->digest);
    if (st == OCI_OK && j->kind == OCI_BLOB_TAR && x.entry_left > 0)
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "layer %s: the tar archive is truncated", j->digest);
    if (st == OCI_OK) oci_digest_final(x.mod_md, j->module_digest);
    if (x.z_ready) inflateEnd(&x.z);
    cm_buf_free(&x.meta);
    oci_http_resp_free(&resp);
    EVP_MD_CTX_free(x.blob_md);
    EVP_MD_CTX_free(x.mod_md);
    return st;
}

oci_status_t oci_blob_get_small(oci_sess_t *s, const char *digest, uint64_t size, size_t max,
                                cm_buf_t *out)
{
    if (size > max)
        return oci_sess_fail(s, OCI_ERR_TOO_LARGE, "blob %s is %llu bytes, over %zu", digest,
                             (unsigned long long)size, max);
    char url[600];
    snprintf(url, sizeof url, "/v2/%s/blobs/%s", s->repo, digest);
    oci_http_req_t req = {.method = "GET", .url = url, .max_body = max};
    oci_http_resp_t resp = {0};
    oci_status_t st = oci_sess_do(s, &req, &resp);
    if (st == OCI_OK && resp.status != 200) {
        char what[200];
        snprintf(what, sizeof what, "blob %s", digest);
        st = oci_sess_http_error(s, what, &resp);
    }
    if (st == OCI_OK) {
        char got[72];
        oci_digest_bytes(resp.body.data ? resp.body.data : "", resp.body.len, got);
        if (strcmp(got, digest) != 0 || resp.body.len != size)
            st = oci_sess_fail(s, OCI_ERR_DIGEST,
                               "digest mismatch: blob %s hashes to %s (corrupted or tampered "
                               "with; nothing was kept)",
                               digest, got);
    }
    if (st == OCI_OK) {
        *out = resp.body;
        memset(&resp.body, 0, sizeof resp.body);
        if (!out->data) cm_buf_append(out, "", 0);
    }
    oci_http_resp_free(&resp);
    return st;
}
