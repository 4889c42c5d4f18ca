/*
 * push.c — a module as a Wasm OCI artifact (the layout of the CNCF
 * Wasm OCI artifact spec, which runwasi, oras and wasm-to-oci users pull):
 *
 *   manifest  application/vnd.oci.image.manifest.v1+json
 *   config    application/vnd.wasm.config.v0+json
 *             {"architecture":"wasm","os":"wasip1","layerDigests":[D]}
 *   layer     application/vnd.wasm.content.layer.v1+wasm, the module (D)
 *
 * Each blob is checked with HEAD first (a registry that has it already is
 * not sent it again), then uploaded the distribution spec's simplest way:
 * POST an upload session, PUT the whole blob to its Location with
 * ?digest=. The manifest goes last, so a tag never names missing blobs.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "oci/internal.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_WASM_CONFIG "application/vnd.wasm.config.v0+json"
#define MT_WASM_LAYER "application/vnd.wasm.content.layer.v1+wasm"

static oci_status_t put_blob(oci_sess_t *s, const void *data, size_t len, const char *digest)
{
    char url[600], what[200];
    snprintf(what, sizeof what, "uploading blob %s", digest);
    snprintf(url, sizeof url, "/v2/%s/blobs/%s", s->repo, digest);
    oci_http_req_t head = {.method = "HEAD", .url = url, .max_body = 1 << 16};
    oci_http_resp_t resp = {0};
    oci_status_t st = oci_sess_do(s, &head, &resp);
    if (st != OCI_OK || resp.status == 200) goto out;

    snprintf(url, sizeof url, "/v2/%s/blobs/uploads/", s->repo);
    oci_http_req_t post = {.method = "POST", .url = url, .max_body = 1 << 16};
    if ((st = oci_sess_do(s, &post, &resp)) != OCI_OK) goto out;
    if (resp.status != 202 || !resp.location[0]) {
        st = resp.status == 202
                 ? oci_sess_fail(s, OCI_ERR_PROTOCOL, "%s: the upload has no Location", what)
                 : oci_sess_http_error(s, what, &resp);
        goto out;
    }
    char put_url[2600];
    snprintf(put_url, sizeof put_url, "%s%sdigest=%s", resp.location,
             strchr(resp.location, '?') ? "&" : "?", digest);
    const char *hdrs[] = {"Content-Type: application/octet-stream"};
    oci_http_req_t put = {.method = "PUT", .url = put_url, .headers = hdrs, .nheaders = 1,
                          .body = data, .body_len = len, .max_body = 1 << 16};
    if ((st = oci_sess_do(s, &put, &resp)) != OCI_OK) goto out;
    if (resp.status != 201) st = oci_sess_http_error(s, what, &resp);
out:
    oci_http_resp_free(&resp);
    return st;
}

static cJSON *descriptor(const char *mt, const char *digest, size_t size)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "mediaType", mt);
    cJSON_AddStringToObject(d, "digest", digest);
    cJSON_AddNumberToObject(d, "size", (double)size);
    return d;
}

static oci_status_t push_in(oci_sess_t *s, const oci_ref_t *ref, const uint8_t *module,
                            size_t len, const char *title, oci_push_result_t *res)
{
    oci_status_t st;
    char *config = NULL, *manifest = NULL;
    cJSON *cfg = NULL, *man = NULL;
    oci_digest_bytes(module, len, res->module_digest);

    cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "architecture", "wasm");
    cJSON_AddStringToObject(cfg, "os", "wasip1");
    cJSON *ld = cJSON_AddArrayToObject(cfg, "layerDigests");
    cJSON_AddItemToArray(ld, cJSON_CreateString(res->module_digest));
    config = cJSON_PrintUnformatted(cfg);
    if (!config) {
        st = oci_sess_fail(s, OCI_ERR_IO, "out of memory");
        goto out;
    }
    char config_digest[72];
    oci_digest_bytes(config, strlen(config), config_digest);

    if ((st = put_blob(s, module, len, res->module_digest)) != OCI_OK) goto out;
    if ((st = put_blob(s, config, strlen(config), config_digest)) != OCI_OK) goto out;

    man = cJSON_CreateObject();
    cJSON_AddNumberToObject(man, "schemaVersion", 2);
    cJSON_AddStringToObject(man, "mediaType", MT_OCI_MANIFEST);
    cJSON_AddItemToObject(man, "config", descriptor(MT_WASM_CONFIG, config_digest, strlen(config)));
    cJSON *layers = cJSON_AddArrayToObject(man, "layers");
    cJSON *layer = descriptor(MT_WASM_LAYER, res->module_digest, len);
    if (title && *title) {
        cJSON *ann = cJSON_AddObjectToObject(layer, "annotations");
        cJSON_AddStringToObject(ann, "org.opencontainers.image.title", title);
    }
    cJSON_AddItemToArray(layers, layer);
    manifest = cJSON_PrintUnformatted(man);
    if (!manifest) {
        st = oci_sess_fail(s, OCI_ERR_IO, "out of memory");
        goto out;
    }
    oci_digest_bytes(manifest, strlen(manifest), res->manifest_digest);

    char url[600];
    snprintf(url, sizeof url, "/v2/%s/manifests/%s", s->repo,
             ref->tag[0] ? ref->tag : res->manifest_digest);
    const char *hdrs[] = {"Content-Type: " MT_OCI_MANIFEST};
    oci_http_req_t put = {.method = "PUT", .url = url, .headers = hdrs, .nheaders = 1,
                          .body = manifest, .body_len = strlen(manifest), .max_body = 1 << 16};
    oci_http_resp_t resp = {0};
    st = oci_sess_do(s, &put, &resp);
    if (st == OCI_OK && resp.status != 201) st = oci_sess_http_error(s, "uploading the manifest", &resp);
    if (st == OCI_OK && resp.docker_digest[0] && strcmp(resp.docker_digest, res->manifest_digest) != 0)
        st = oci_sess_fail(s, OCI_ERR_DIGEST, "the registry stored the manifest as %s, not %s",
                           resp.docker_digest, res->manifest_digest);
    oci_http_resp_free(&resp);
out:
    free(config);
    free(manifest);
    cJSON_Delete(cfg);
    cJSON_Delete(man);
    return st;
}

oci_status_t oci_push(const oci_ref_t *ref, const oci_options_t *opts, const uint8_t *module,
                      size_t len, const char *title, oci_push_result_t *res, char *err,
                      size_t errlen)
{
    memset(res, 0, sizeof *res);
    char name[700];
    oci_ref_format(ref, name, sizeof name);
    if (len < 8 || memcmp(module, "\0asm", 4) != 0) {
        snprintf(err, errlen, "%s: the file is not a WebAssembly module (no \\0asm header)", name);
        return OCI_ERR_ARGS;
    }
    if (ref->digest[0]) {
        snprintf(err, errlen, "%s: push to a tag, not a digest (the digest is computed)", name);
        return OCI_ERR_ARGS;
    }
    char msg[1024] = "";
    oci_sess_t s;
    oci_status_t st = oci_sess_open(&s, opts, ref->registry, ref->repository, "pull,push", msg,
                                    sizeof msg);
    if (st == OCI_OK) st = push_in(&s, ref, module, len, title, res);
    oci_sess_close(&s);
    if (st != OCI_OK) snprintf(err, errlen, "%s: %s", name, msg);
    return st;
}

oci_status_t oci_login_check(const char *host, const char *user, const char *password,
                             const oci_options_t *opts, char *err, size_t errlen)
{
    oci_options_t o = *opts;
    o.username = user;
    o.password = password;
    char msg[1024] = "";
    oci_sess_t s;
    oci_status_t st = oci_sess_open(&s, &o, host, "", NULL, msg, sizeof msg);
    oci_sess_close(&s);
    if (st != OCI_OK) snprintf(err, errlen, "%s: %s", host, msg);
    return st;
}
