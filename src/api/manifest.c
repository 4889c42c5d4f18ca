/*
 * manifest.c — validates a Knative serving.knative.dev/v1 Service document
 * (as JSON) into what a revision runs with (an st_spec_t, every default
 * resolved) and its traffic routes.
 *
 * The aim is that existing Knative YAML works: every field Knative defines
 * that we cannot honour is accepted and reported as a warning rather than
 * failing the apply, while anything we do honour is checked strictly, and
 * each error names the field's path (`spec.template.spec.timeoutSeconds:
 * must be a positive integer`), as kubectl's validation does.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/manifest.h"
#include "common/duration.h"
#include "common/k8sname.h"
#include "host/http_out.h"
#include "host/kv.h"
#include "common/quantity.h"
#include "common/strlist.h"
#include "common/utf8.h"
#include "oci/oci.h"
#include "store/secrets.h"

#define MIN_MEMORY_BYTES (64ull << 10)   /* one WebAssembly page */
#define MAX_MEMORY_BYTES (4ull << 30)    /* the whole wasm32 address space */
#define MIN_WINDOW_SECONDS 6u            /* Knative's bounds for the window */
#define MAX_WINDOW_SECONDS 3600u

#define AS_PREFIX "autoscaling.knative.dev/"
#define ANN_PATH "spec.template.metadata.annotations"

typedef struct parse_ctx {
    api_service_t *svc;
    char *err;
    size_t errlen;
    bool oom;
} parse_ctx_t;

static int fail(parse_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void warn(parse_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cm_strlist_addv(&c->svc->warnings, &c->svc->nwarnings, fmt, ap) != 0) c->oom = true;
    va_end(ap);
}

/* Warns about every member of obj not in known (NULL-terminated). */
static void warn_unknown(parse_ctx_t *c, const cJSON *obj, const char *path,
                         const char *const *known)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(it->string, *k) == 0;
        if (!ok) warn(c, "%s%s%s: unknown field; ignored", path, *path ? "." : "", it->string);
    }
}

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* A member that must be an object if present. NULL when absent. */
static int object_member(parse_ctx_t *c, const cJSON *obj, const char *name, const char *path,
                         const cJSON **out)
{
    *out = member(obj, name);
    if (*out && !cJSON_IsObject(*out) && !cJSON_IsNull(*out))
        return fail(c, "%s%s%s: must be an object", path, *path ? "." : "", name);
    if (*out && cJSON_IsNull(*out)) *out = NULL;
    return 0;
}

/* ---- Value syntaxes ------------------------------------------------------- */

/* The offset of a NUL in the JSON text — a raw byte, or a \u0000 escape
 * inside a string — or len. */
static size_t json_nul_offset(const char *s, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0') return i;
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = false;
        } else if (s[i] == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0) return i;
            i++; /* the escaped character: \\ or \" do not end anything */
        }
    }
    return len;
}

cJSON *api_json_parse(const void *body, size_t len, char *err, size_t errlen)
{
    const char *s = body;
    size_t off = cm_utf8_bad_offset(body, len);
    if (off < len) {
        snprintf(err, errlen, "body: not valid UTF-8 at byte %zu; a manifest is UTF-8 text", off);
        return NULL;
    }
    if ((off = json_nul_offset(s, len)) < len) {
        snprintf(err, errlen, "body: a NUL character (\\u0000) at byte %zu; names and values "
                              "cannot contain it", off);
        return NULL;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(s, len, &end, false);
    if (!doc) {
        off = end && end >= s ? (size_t)(end - s) : 0;
        snprintf(err, errlen, "body: not a JSON document (at byte %zu); send the manifest as JSON",
                 off);
        return NULL;
    }
    off = end && end >= s ? (size_t)(end - s) : len;
    while (off < len && (s[off] == ' ' || s[off] == '\t' || s[off] == '\n' || s[off] == '\r'))
        off++;
    if (off < len) {
        cJSON_Delete(doc);
        snprintf(err, errlen, "body: unexpected data after the JSON document at byte %zu; "
                              "send one document per request", off);
        return NULL;
    }
    return doc;
}

int api_quantity_parse(const char *s, uint64_t *bytes)
{
    long double v;
    if (cm_quantity_parse(s, &v) != 0) return -1;
    long double up = ceill(v - 1e-9L); /* round up to whole bytes, as Kubernetes does */
    if (up < 0) up = 0;
    *bytes = (uint64_t)up;
    return 0;
}

int api_duration_parse(const char *s, uint64_t *ns)
{
    int64_t v;
    if (cm_duration_parse(s, 0, &v, NULL, 0) != 0) return -1;
    *ns = (uint64_t)v;
    return 0;
}

/* ---- Fields --------------------------------------------------------------- */

/* An annotation value as text: Kubernetes wants strings, but unquoted YAML
 * numbers arrive here as JSON numbers, so both are accepted. */
static int annotation_text(parse_ctx_t *c, const cJSON *v, const char *key, char *buf,
                           size_t buflen, const char **out)
{
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        snprintf(buf, buflen, "%.17g", v->valuedouble);
        *out = buf;
        return 0;
    }
    return fail(c, ANN_PATH "[%s]: must be a string", key);
}

static int parse_count(parse_ctx_t *c, const cJSON *v, const char *key, uint32_t *out)
{
    char buf[64];
    const char *t = "";
    if (annotation_text(c, v, key, buf, sizeof buf, &t) != 0) return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(t, &end, 10);
    if (!isdigit((unsigned char)*t) || *end || errno || n > 100000)
        return fail(c, ANN_PATH "[%s]: \"%s\" is not a whole number from 0 to 100000", key, t);
    *out = (uint32_t)n;
    return 0;
}

/* The autoscaling annotations; each has a kebab-case and an older
 * camel-case spelling, and giving both is an error (which one would win?). */
static int parse_annotations(parse_ctx_t *c, const cJSON *ann, st_spec_t *spec)
{
    static const struct {
        const char *name, *alias;
    } known[] = {
        {"min-scale", "minScale"},
        {"max-scale", "maxScale"},
        {"initial-scale", "initialScale"},
        {"target", NULL},
        {"window", NULL},
    };
    const cJSON *val[5] = {0};
    const char *key[5] = {0};
    const cJSON *it;
    cJSON_ArrayForEach(it, ann)
    {
        if (strncmp(it->string, AS_PREFIX, strlen(AS_PREFIX)) != 0) continue; /* not ours */
        const char *k = it->string + strlen(AS_PREFIX);
        bool matched = false;
        for (int i = 0; i < 5; i++) {
            if (strcmp(k, known[i].name) == 0 || (known[i].alias && strcmp(k, known[i].alias) == 0)) {
                if (val[i])
                    return fail(c, ANN_PATH "[%s]: given twice (also as %s)", it->string, key[i]);
                val[i] = it;
                key[i] = it->string;
                matched = true;
            }
        }
        if (matched) continue;
        /* Settings that describe what we do anyway are fine; others are not. */
        const char *sv = cJSON_IsString(it) ? it->valuestring : "";
        if (strcmp(k, "class") == 0 && strcmp(sv, "kpa.autoscaling.knative.dev") == 0) continue;
        if (strcmp(k, "metric") == 0 && strcmp(sv, "concurrency") == 0) continue;
        warn(c, ANN_PATH "[%s]: not supported; ignored", it->string);
    }
    if (val[0] && parse_count(c, val[0], key[0], &spec->min_scale) != 0) return -1;
    if (val[1] && parse_count(c, val[1], key[1], &spec->max_scale) != 0) return -1;
    if (val[2] && parse_count(c, val[2], key[2], &spec->initial_scale) != 0) return -1;
    if (val[3]) {
        char buf[64];
        const char *t = "";
        if (annotation_text(c, val[3], key[3], buf, sizeof buf, &t) != 0) return -1;
        char *end;
        errno = 0;
        double d = strtod(t, &end);
        if (end == t || *end || errno || !(d >= 0.01) || d > 1e6)
            return fail(c, ANN_PATH "[%s]: \"%s\" is not a number from 0.01 to 1000000", key[3], t);
        spec->target = d;
    }
    if (val[4]) {
        char buf[64];
        const char *t = "";
        if (annotation_text(c, val[4], key[4], buf, sizeof buf, &t) != 0) return -1;
        uint64_t ns;
        if (api_duration_parse(t, &ns) != 0)
            return fail(c, ANN_PATH "[%s]: \"%s\" is not a duration such as 60s or 2m", key[4], t);
        if (ns % 1000000000ull != 0)
            return fail(c, ANN_PATH "[%s]: \"%s\" is not a whole number of seconds", key[4], t);
        uint64_t secs = ns / 1000000000ull;
        if (secs < MIN_WINDOW_SECONDS || secs > MAX_WINDOW_SECONDS)
            return fail(c, ANN_PATH "[%s]: %s is outside 6s..1h", key[4], t);
        spec->window_seconds = (uint32_t)secs;
    }
    if (spec->max_scale && spec->min_scale > spec->max_scale)
        return fail(c, ANN_PATH "[%s]: %u is above max-scale %u", key[0], spec->min_scale,
                    spec->max_scale);
    if (spec->max_scale && spec->initial_scale > spec->max_scale) {
        if (val[2])
            return fail(c, ANN_PATH "[%s]: %u is above max-scale %u", key[2], spec->initial_scale,
                        spec->max_scale);
        spec->initial_scale = spec->max_scale; /* the default, clamped */
    }
    return 0;
}

/* wasmfn.dev/allowed-hosts: the destinations of the revision's outbound
 * HTTP (docs/host-http.md), comma-separated origins, each checked here so
 * a typo fails the apply instead of every request. Repeats are dropped. */
#define ALLOWED_HOSTS_ANN "wasmfn.dev/allowed-hosts"

static int parse_allowed_hosts(parse_ctx_t *c, const cJSON *ann, st_spec_t *spec)
{
    const cJSON *v = member(ann, ALLOWED_HOSTS_ANN);
    if (!v) return 0;
    if (!cJSON_IsString(v)) return fail(c, ANN_PATH "[" ALLOWED_HOSTS_ANN "]: must be a string");
    char *list = strdup(v->valuestring), *save = NULL;
    if (!list) return fail(c, "out of memory");
    int rc = 0;
    for (char *e = strtok_r(list, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        while (*e == ' ' || *e == '\t') e++;
        size_t n = strlen(e);
        while (n && (e[n - 1] == ' ' || e[n - 1] == '\t')) e[--n] = 0;
        if (!n) continue;
        char why[256];
        if (ho_allowed_host_check(e, why, sizeof why) != 0) {
            rc = fail(c, ANN_PATH "[" ALLOWED_HOSTS_ANN "]: %s", why);
            break;
        }
        bool seen = false;
        for (uint32_t i = 0; i < spec->nallowed_hosts; i++)
            seen = seen || strcmp(spec->allowed_hosts[i], e) == 0;
        if (seen) continue;
        if (spec->nallowed_hosts == HO_MAX_ALLOWED_HOSTS) {
            rc = fail(c, ANN_PATH "[" ALLOWED_HOSTS_ANN "]: more than %u entries",
                      HO_MAX_ALLOWED_HOSTS);
            break;
        }
        char **na = realloc(spec->allowed_hosts, (spec->nallowed_hosts + 1) * sizeof *na);
        char *dup = strdup(e);
        if (!na || !dup) {
            if (na) spec->allowed_hosts = na;
            free(dup);
            rc = fail(c, "out of memory");
            break;
        }
        spec->allowed_hosts = na;
        spec->allowed_hosts[spec->nallowed_hosts++] = dup;
    }
    free(list);
    return rc;
}

/* wasmfn.dev/kv-stores: "counters,sessions", the wasmfn_kv stores the
 * revision may open (docs/host-kv.md). Kept in the order written, without
 * blanks; a name given twice is an error. */
#define KV_STORES_ANN "wasmfn.dev/kv-stores"
static int parse_kv_stores(parse_ctx_t *c, const cJSON *ann, st_spec_t *spec)
{
    const cJSON *v = member(ann, KV_STORES_ANN);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return fail(c, ANN_PATH "[" KV_STORES_ANN "]: must be a string");
    const char *p = v->valuestring;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        size_t n = strcspn(p, ", ");
        if (!n) break;
        if (!kv_store_name_ok(p, n))
            return fail(c, ANN_PATH "[" KV_STORES_ANN "]: \"%.*s\" is not a store name (1-%u of "
                           "a-z, 0-9, '-', '_', '.')", (int)(n > 80 ? 80 : n), p, KV_STORE_NAME_MAX);
        for (uint32_t i = 0; i < spec->nkv_stores; i++)
            if (strlen(spec->kv_stores[i]) == n && strncmp(spec->kv_stores[i], p, n) == 0)
                return fail(c, ANN_PATH "[" KV_STORES_ANN "]: %.*s is given twice", (int)n, p);
        if (spec->nkv_stores == KV_MAX_GRANTS)
            return fail(c, ANN_PATH "[" KV_STORES_ANN "]: more than %u stores", KV_MAX_GRANTS);
        char **ns = realloc(spec->kv_stores, (spec->nkv_stores + 1) * sizeof *ns);
        if (!ns || !(ns[spec->nkv_stores] = strndup(p, n))) {
            if (ns) spec->kv_stores = ns;
            c->oom = true;
            return fail(c, "out of memory");
        }
        spec->kv_stores = ns;
        spec->nkv_stores++;
        p += n;
    }
    return 0;
}

static int add_env(parse_ctx_t *c, st_spec_t *spec, const char *name, const char *value)
{
    char *e;
    if (asprintf(&e, "%s=%s", name, value) < 0) {
        c->oom = true;
        return fail(c, "out of memory");
    }
    spec->env[spec->nenv++] = e;
    return 0;
}

/* env[i].valueFrom: a secretKeyRef or configMapKeyRef (Kubernetes'
 * EnvVarSource), kept as a reference; the API fills in the object's
 * version when it applies the revision (docs/secrets.md). */
static int parse_value_from(parse_ctx_t *c, const cJSON *vf, const char *ipath, const char *name,
                            st_spec_t *spec)
{
    if (!cJSON_IsObject(vf)) return fail(c, "%s.valueFrom: must be an object", ipath);
    const cJSON *sk = member(vf, "secretKeyRef"), *ck = member(vf, "configMapKeyRef");
    const cJSON *ref = sk ? sk : ck;
    const char *field = sk ? "secretKeyRef" : "configMapKeyRef";
    if (!ref && vf->child)
        return fail(c, "%s.valueFrom.%s: not supported (secretKeyRef and configMapKeyRef are)",
                    ipath, vf->child->string);
    if (!ref || (sk && ck))
        return fail(c, "%s.valueFrom: needs exactly one of secretKeyRef and configMapKeyRef", ipath);
    if (!cJSON_IsObject(ref)) return fail(c, "%s.valueFrom.%s: must be an object", ipath, field);
    const cJSON *on = member(ref, "name"), *key = member(ref, "key"), *opt = member(ref, "optional");
    if (!cJSON_IsString(on) || !cm_k8s_label_ok(on->valuestring, 253))
        return fail(c, "%s.valueFrom.%s.name: required, a lowercase name (a-z, 0-9, '-')", ipath,
                    field);
    if (!cJSON_IsString(key) || !st_secret_key_ok(key->valuestring))
        return fail(c, "%s.valueFrom.%s.key: required, 1-253 of a-z, A-Z, 0-9, '-', '_', '.'",
                    ipath, field);
    if (opt && !cJSON_IsBool(opt))
        return fail(c, "%s.valueFrom.%s.optional: must be true or false", ipath, field);
    char rpath[300];
    snprintf(rpath, sizeof rpath, "%s.valueFrom.%s", ipath, field);
    static const char *const known[] = {"name", "key", "optional", NULL};
    warn_unknown(c, ref, rpath, known);
    st_env_ref_t *n = realloc(spec->env_refs, (spec->nenv_refs + 1) * sizeof *n);
    if (!n) {
        c->oom = true;
        return fail(c, "out of memory");
    }
    spec->env_refs = n;
    st_env_ref_t *r = &n[spec->nenv_refs];
    memset(r, 0, sizeof *r);
    r->secret = sk != NULL;
    r->optional = cJSON_IsTrue(opt);
    r->name = strdup(name);
    r->object = strdup(on->valuestring);
    r->key = strdup(key->valuestring);
    spec->nenv_refs++;
    if (!r->name || !r->object || !r->key) {
        c->oom = true;
        return fail(c, "out of memory");
    }
    return 0;
}

/* Whether env variable name (nl bytes) is already given, as a value or a
 * reference. */
static bool env_given(const st_spec_t *spec, const char *name, size_t nl)
{
    for (uint32_t j = 0; j < spec->nenv; j++)
        if (strncmp(spec->env[j], name, nl) == 0 && spec->env[j][nl] == '=') return true;
    for (uint32_t j = 0; j < spec->nenv_refs; j++)
        if (strcmp(spec->env_refs[j].name, name) == 0) return true;
    return false;
}

static int parse_env(parse_ctx_t *c, const cJSON *env, const char *path, st_spec_t *spec)
{
    if (!cJSON_IsArray(env)) return fail(c, "%s: must be a list", path);
    int n = cJSON_GetArraySize(env);
    if (n == 0) return 0;
    spec->env = calloc((size_t)n, sizeof *spec->env);
    if (!spec->env) {
        c->oom = true;
        return fail(c, "out of memory");
    }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, env)
    {
        if (!cJSON_IsObject(it)) return fail(c, "%s[%d]: must be an object", path, i);
        const cJSON *name = member(it, "name"), *value = member(it, "value");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return fail(c, "%s[%d].name: required, a non-empty string", path, i);
        if (strchr(name->valuestring, '='))
            return fail(c, "%s[%d].name: \"%s\" must not contain '='", path, i, name->valuestring);
        size_t nl = strlen(name->valuestring);
        if (env_given(spec, name->valuestring, nl))
            return fail(c, "%s[%d].name: %s is given twice", path, i, name->valuestring);
        const cJSON *vf = member(it, "valueFrom");
        if (vf) {
            char ipath[256];
            snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
            if (value && !cJSON_IsNull(value))
                return fail(c, "%s: value and valueFrom exclude each other", ipath);
            static const char *const known_vf[] = {"name", "valueFrom", NULL};
            warn_unknown(c, it, ipath, known_vf);
            if (parse_value_from(c, vf, ipath, name->valuestring, spec) != 0) return -1;
            i++;
            continue;
        }
        const char *v = "";
        char num[64];
        if (cJSON_IsString(value)) {
            v = value->valuestring;
        } else if (cJSON_IsNumber(value) || cJSON_IsBool(value)) {
            /* Unquoted YAML scalars: take them as their text. */
            if (cJSON_IsBool(value)) v = cJSON_IsTrue(value) ? "true" : "false";
            else snprintf(num, sizeof num, "%.17g", value->valuedouble), v = num;
        } else if (value && !cJSON_IsNull(value)) {
            return fail(c, "%s[%d].value: must be a string", path, i);
        }
        static const char *const known[] = {"name", "value", NULL};
        char ipath[256];
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        warn_unknown(c, it, ipath, known);
        if (add_env(c, spec, name->valuestring, v) != 0) return -1;
        i++;
    }
    return 0;
}

/* A CPU quantity ("500m", "0.5", 2) at path into *millis. */
static int parse_cpu(parse_ctx_t *c, const cJSON *v, const char *path, uint32_t *millis)
{
    char num[64];
    const char *text = NULL;
    if (cJSON_IsString(v)) {
        text = v->valuestring;
    } else if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof num, "%.17g", v->valuedouble);
        text = num;
    }
    if (!text || cm_quantity_cpu_millis(text, API_MAX_CPU_MILLIS, millis) != 0)
        return fail(c, "%s: must be a CPU quantity above 0 and at most %u (such as 500m, 0.5 or 2)",
                    path, API_MAX_CPU_MILLIS / 1000u);
    return 0;
}

/* A memory quantity ("64Mi") at path into *bytes, within one Wasm page and
 * the 4 GiB a wasm32 module can address. */
static int parse_memory(parse_ctx_t *c, const cJSON *mem, const char *path, uint64_t *out)
{
    uint64_t bytes;
    if (cJSON_IsNumber(mem)) {
        if (!(mem->valuedouble >= 0) || mem->valuedouble >= 18446744073709551616.0)
            return fail(c, "%s: not a quantity such as 64Mi", path);
        bytes = (uint64_t)ceil(mem->valuedouble);
    } else if (cJSON_IsString(mem)) {
        if (api_quantity_parse(mem->valuestring, &bytes) != 0)
            return fail(c, "%s: \"%s\" is not a quantity such as 64Mi, 1Gi or 128M", path,
                        mem->valuestring);
    } else {
        return fail(c, "%s: must be a quantity such as 64Mi", path);
    }
    if (bytes < MIN_MEMORY_BYTES)
        return fail(c, "%s: %llu bytes is below one 64Ki page", path, (unsigned long long)bytes);
    if (bytes > MAX_MEMORY_BYTES)
        return fail(c, "%s: %llu bytes is above 4Gi, all a wasm32 module can address", path,
                    (unsigned long long)bytes);
    *out = bytes;
    return 0;
}

/* limits.memory bounds each instance's linear memory; limits.cpu is the
 * share of a CPU each instance may use (enforced by the worker pool's
 * scheduler, docs/serving.md); requests.cpu and requests.memory are what
 * KEDA's cpu and memory triggers measure utilization against. */
static int parse_resources(parse_ctx_t *c, const cJSON *res, const char *path, st_spec_t *spec)
{
    const cJSON *limits, *requests;
    if (object_member(c, res, "limits", path, &limits) != 0) return -1;
    if (object_member(c, res, "requests", path, &requests) != 0) return -1;
    static const char *const known[] = {"limits", "requests", NULL};
    warn_unknown(c, res, path, known);
    char p[256];
    const cJSON *it;
    cJSON_ArrayForEach(it, requests)
    {
        snprintf(p, sizeof p, "%s.requests.%s", path, it->string);
        if (strcmp(it->string, "cpu") == 0) {
            if (parse_cpu(c, it, p, &spec->cpu_request_millis) != 0) return -1;
        } else if (strcmp(it->string, "memory") == 0) {
            if (parse_memory(c, it, p, &spec->memory_request_bytes) != 0) return -1;
        } else {
            warn(c, "%s: not supported; ignored", p);
        }
    }
    cJSON_ArrayForEach(it, limits)
    {
        snprintf(p, sizeof p, "%s.limits.%s", path, it->string);
        if (strcmp(it->string, "cpu") == 0) {
            if (parse_cpu(c, it, p, &spec->cpu_limit_millis) != 0) return -1;
        } else if (strcmp(it->string, "memory") == 0) {
            if (parse_memory(c, it, p, &spec->memory_limit_bytes) != 0) return -1;
        } else {
            warn(c, "%s: not supported; ignored", p);
        }
    }
    if (spec->cpu_limit_millis && spec->cpu_request_millis > spec->cpu_limit_millis)
        return fail(c, "%s.requests.cpu: %um is above limits.cpu (%um)", path,
                    spec->cpu_request_millis, spec->cpu_limit_millis);
    return 0;
}

static int parse_container(parse_ctx_t *c, const cJSON *ctr, st_spec_t *spec)
{
    const char *path = "spec.template.spec.containers[0]";
    if (!cJSON_IsObject(ctr)) return fail(c, "%s: must be an object", path);
    const cJSON *image = member(ctr, "image");
    if (!image) return fail(c, "%s.image: required", path);
    if (!cJSON_IsString(image)) return fail(c, "%s.image: must be a string", path);
    if (oci_ref_is_registry(image->valuestring)) {
        /* A registry reference: checked here, resolved to a module by the
         * caller (api.c pulls it) before api_service_apply. */
        oci_ref_t ref;
        char e[256];
        if (oci_ref_parse(image->valuestring, &ref, e, sizeof e) != 0)
            return fail(c, "%s.image: %s", path, e);
        if (!(spec->image_ref = strdup(image->valuestring))) {
            c->oom = true;
            return fail(c, "out of memory");
        }
    } else if (st_digest_check(image->valuestring) != 0) {
        if (strncmp(image->valuestring, "sha256:", 7) == 0)
            return fail(c, "%s.image: \"%s\" is not sha256: followed by 64 lowercase hex digits",
                        path, image->valuestring);
        return fail(c,
                    "%s.image: \"%s\" is neither a sha256:HEX digest (upload the module with "
                    "POST /v1/blobs first; `wasmfn apply` does this for local paths) nor a "
                    "registry reference (HOST[:PORT]/REPOSITORY[:TAG])",
                    path, image->valuestring);
    } else if (!(spec->image = strdup(image->valuestring))) {
        c->oom = true;
        return fail(c, "out of memory");
    }
    const cJSON *env = member(ctr, "env");
    if (env && !cJSON_IsNull(env)) {
        char epath[64];
        snprintf(epath, sizeof epath, "%s.env", path);
        if (parse_env(c, env, epath, spec) != 0) return -1;
    }
    const cJSON *res;
    if (object_member(c, ctr, "resources", path, &res) != 0) return -1;
    if (res) {
        char rpath[64];
        snprintf(rpath, sizeof rpath, "%s.resources", path);
        if (parse_resources(c, res, rpath, spec) != 0) return -1;
    }
    static const char *const known[] = {"image", "env", "resources", "name", NULL};
    warn_unknown(c, ctr, path, known);
    return 0;
}

static int parse_template(parse_ctx_t *c, const cJSON *tmpl, st_spec_t *spec)
{
    const cJSON *meta, *tspec;
    if (object_member(c, tmpl, "metadata", "spec.template", &meta) != 0) return -1;
    if (object_member(c, tmpl, "spec", "spec.template", &tspec) != 0) return -1;
    static const char *const known_t[] = {"metadata", "spec", NULL};
    warn_unknown(c, tmpl, "spec.template", known_t);
    if (meta) {
        if (member(meta, "name"))
            warn(c, "spec.template.metadata.name: revision names are generated (NAME-00001, ...); "
                    "ignored");
        const cJSON *ann;
        if (object_member(c, meta, "annotations", "spec.template.metadata", &ann) != 0) return -1;
        if (ann && parse_annotations(c, ann, spec) != 0) return -1;
        if (ann && parse_allowed_hosts(c, ann, spec) != 0) return -1;
        if (ann && parse_kv_stores(c, ann, spec) != 0) return -1;
        static const char *const known_m[] = {"name", "annotations", "labels", NULL};
        warn_unknown(c, meta, "spec.template.metadata", known_m);
    }
    if (!tspec) return fail(c, "spec.template.spec: required");
    const cJSON *ctrs = member(tspec, "containers");
    if (!ctrs) return fail(c, "spec.template.spec.containers: required");
    if (!cJSON_IsArray(ctrs)) return fail(c, "spec.template.spec.containers: must be a list");
    int n = cJSON_GetArraySize(ctrs);
    if (n == 0) return fail(c, "spec.template.spec.containers: must hold one container");
    if (n > 1)
        return fail(c, "spec.template.spec.containers: %d containers given; one per revision is "
                       "supported", n);
    if (parse_container(c, cJSON_GetArrayItem(ctrs, 0), spec) != 0) return -1;

    const cJSON *to = member(tspec, "timeoutSeconds");
    if (to) {
        if (!cJSON_IsNumber(to) || to->valuedouble != floor(to->valuedouble) ||
            to->valuedouble < 1 || to->valuedouble > API_MAX_TIMEOUT_SECONDS)
            return fail(c, "spec.template.spec.timeoutSeconds: must be a positive integer of at "
                           "most %u", API_MAX_TIMEOUT_SECONDS);
        spec->timeout_seconds = (uint32_t)to->valuedouble;
    }
    const cJSON *rc = member(tspec, "runtimeClassName");
    if (rc && !cJSON_IsString(rc))
        return fail(c, "spec.template.spec.runtimeClassName: must be a string");
    static const char *const known_s[] = {"containers", "timeoutSeconds", "runtimeClassName", NULL};
    warn_unknown(c, tspec, "spec.template.spec", known_s);
    return 0;
}

static int parse_traffic(parse_ctx_t *c, const cJSON *tr)
{
    api_service_t *s = c->svc;
    if (!cJSON_IsArray(tr)) return fail(c, "spec.traffic: must be a list");
    int n = cJSON_GetArraySize(tr);
    if (n == 0) return 0;
    s->traffic = calloc((size_t)n, sizeof *s->traffic);
    if (!s->traffic) {
        c->oom = true;
        return fail(c, "out of memory");
    }
    uint32_t sum = 0;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, tr)
    {
        if (!cJSON_IsObject(it)) return fail(c, "spec.traffic[%d]: must be an object", i);
        const cJSON *rn = member(it, "revisionName"), *lr = member(it, "latestRevision"),
                    *pc = member(it, "percent");
        st_route_t *r = &s->traffic[s->ntraffic++];
        if (lr && !cJSON_IsBool(lr))
            return fail(c, "spec.traffic[%d].latestRevision: must be true or false", i);
        if (rn && !cJSON_IsString(rn))
            return fail(c, "spec.traffic[%d].revisionName: must be a string", i);
        r->latest = cJSON_IsTrue(lr);
        if (r->latest && rn)
            return fail(c, "spec.traffic[%d]: revisionName and latestRevision: true exclude each "
                           "other", i);
        if (!r->latest && !rn)
            return fail(c, "spec.traffic[%d]: needs revisionName or latestRevision: true", i);
        if (rn) {
            if (!cm_k8s_label_ok(rn->valuestring, ST_REVISION_NAME_MAX))
                return fail(c, "spec.traffic[%d].revisionName: \"%s\" is not a revision name", i,
                            rn->valuestring);
            if (!(r->revision = strdup(rn->valuestring))) {
                c->oom = true;
                return fail(c, "out of memory");
            }
        }
        if (pc) {
            if (!cJSON_IsNumber(pc) || pc->valuedouble != floor(pc->valuedouble) ||
                pc->valuedouble < 0 || pc->valuedouble > 100)
                return fail(c, "spec.traffic[%d].percent: must be an integer from 0 to 100", i);
            r->percent = (uint32_t)pc->valuedouble;
        }
        sum += r->percent;
        if (member(it, "tag"))
            warn(c, "spec.traffic[%d].tag: tags are not supported yet; ignored", i);
        static const char *const known[] = {"revisionName", "latestRevision", "percent", "tag",
                                            "url", NULL};
        char ipath[32];
        snprintf(ipath, sizeof ipath, "spec.traffic[%d]", i);
        warn_unknown(c, it, ipath, known);
        i++;
    }
    if (sum != 100) return fail(c, "spec.traffic: the percents add up to %u, not 100", sum);
    return 0;
}

int api_service_parse(const cJSON *doc, api_service_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    parse_ctx_t c = {.svc = out, .err = err, .errlen = errlen};
    st_spec_t *spec = &out->spec;
    spec->memory_limit_bytes = API_DEFAULT_MEMORY_BYTES;
    spec->timeout_seconds = API_DEFAULT_TIMEOUT_SECONDS;
    spec->max_scale = API_DEFAULT_MAX_SCALE;
    spec->initial_scale = API_DEFAULT_INITIAL_SCALE;
    spec->target = API_DEFAULT_TARGET;
    spec->window_seconds = API_DEFAULT_WINDOW_SECONDS;

    if (!cJSON_IsObject(doc)) {
        fail(&c, "the document must be an object (a Knative Service)");
        goto bad;
    }
    const cJSON *av = member(doc, "apiVersion"), *kind = member(doc, "kind");
    if (!cJSON_IsString(kind)) {
        fail(&c, "kind: required, a string (wasmfn applies kind Service)");
        goto bad;
    }
    if (!cJSON_IsString(av)) {
        fail(&c, "apiVersion: required, a string (serving.knative.dev/v1)");
        goto bad;
    }
    if (strcmp(kind->valuestring, "Service") != 0 ||
        strncmp(av->valuestring, "serving.knative.dev/", 20) != 0) {
        fail(&c, "kind: %s (%s) is not supported; wasmfn applies serving.knative.dev/v1 Service",
             kind->valuestring, av->valuestring);
        goto bad;
    }
    if (strcmp(av->valuestring, "serving.knative.dev/v1") != 0) {
        fail(&c, "apiVersion: %s is not supported; use serving.knative.dev/v1", av->valuestring);
        goto bad;
    }

    const cJSON *meta, *spec_j;
    if (object_member(&c, doc, "metadata", "", &meta) != 0) goto bad;
    if (!meta) {
        fail(&c, "metadata.name: required");
        goto bad;
    }
    const cJSON *name = member(meta, "name");
    if (!name) {
        fail(&c, "metadata.name: required");
        goto bad;
    }
    if (!cJSON_IsString(name) || !cm_k8s_label_ok(name->valuestring, ST_NAME_MAX)) {
        fail(&c, "metadata.name: \"%s\" must be 1-%d lowercase letters, digits or '-', starting "
                 "with a letter and not ending with '-'",
             cJSON_IsString(name) ? name->valuestring : "", ST_NAME_MAX);
        goto bad;
    }
    if (!(out->name = strdup(name->valuestring))) goto oom;
    const cJSON *ns = member(meta, "namespace");
    if (ns && !(cJSON_IsString(ns) && strcmp(ns->valuestring, "default") == 0))
        warn(&c, "metadata.namespace: only the default namespace exists; ignored");
    static const char *const known_meta[] = {"name", "namespace", "labels", "annotations", NULL};
    warn_unknown(&c, meta, "metadata", known_meta);

    if (object_member(&c, doc, "spec", "", &spec_j) != 0) goto bad;
    if (!spec_j) {
        fail(&c, "spec: required");
        goto bad;
    }
    const cJSON *tmpl;
    if (object_member(&c, spec_j, "template", "spec", &tmpl) != 0) goto bad;
    if (!tmpl) {
        fail(&c, "spec.template: required");
        goto bad;
    }
    if (parse_template(&c, tmpl, spec) != 0) goto bad;
    const cJSON *tr = member(spec_j, "traffic");
    if (tr && !cJSON_IsNull(tr) && parse_traffic(&c, tr) != 0) goto bad;
    static const char *const known_spec[] = {"template", "traffic", NULL};
    warn_unknown(&c, spec_j, "spec", known_spec);
    static const char *const known_top[] = {"apiVersion", "kind", "metadata", "spec", "status",
                                            NULL};
    warn_unknown(&c, doc, "", known_top);
    if (c.oom) goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
bad:
    api_service_free(out);
    return -1;
}

void api_service_free(api_service_t *s)
{
    if (!s) return;
    free(s->name);
    st_spec_free(&s->spec);
    for (uint32_t i = 0; i < s->ntraffic; i++) free(s->traffic[i].revision);
    free(s->traffic);
    for (uint32_t i = 0; i < s->nwarnings; i++) free(s->warnings[i]);
    free(s->warnings);
    memset(s, 0, sizeof *s);
}
