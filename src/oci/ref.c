/*
 * ref.c — image references: which strings are registry references, and
 * how one splits into registry, repository, tag and digest. The grammar is
 * the distribution project's (reference/reference.go's documentation), with
 * Docker's defaults: no registry means Docker Hub, a one-part Docker Hub
 * name lives under library/, no tag means "latest".
 */
#include <stdio.h>
#include <string.h>

#include "oci/oci.h"

static bool starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool ends_with(const char *s, const char *p)
{
    size_t n = strlen(s), m = strlen(p);
    return n >= m && strcmp(s + n - m, p) == 0;
}

/* Whether the n bytes at s look like a registry host: "localhost", or a
 * name with a '.' (a domain) or a ':' (a port), as Docker decides. */
static bool is_host(const char *s, size_t n)
{
    if (n == 9 && strncmp(s, "localhost", 9) == 0) return true;
    return memchr(s, '.', n) || memchr(s, ':', n);
}

bool oci_ref_is_registry(const char *s)
{
    /* Anything a user could mean as a file stays a file: manifests name
     * modules by relative path, and "./x" must never go to the network. */
    if (!s || !*s || s[0] == '/' || starts_with(s, "./") || starts_with(s, "../") ||
        starts_with(s, "sha256:") || ends_with(s, ".wasm"))
        return false;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s) return false;
    return is_host(s, (size_t)(slash - s));
}

static bool valid_host(const char *s)
{
    if (!*s) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            return false;
    return true;
}

/* path-component ::= [a-z0-9]+ (separator [a-z0-9]+)*, separator ::= [_.] | __ | -+ ;
 * components joined by '/'. Checked loosely: lower-case alphanumerics with
 * single separators between them. */
static bool valid_repo(const char *s)
{
    bool prev_alnum = false;
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
        if (alnum) {
            prev_alnum = true;
            continue;
        }
        if (*p != '/' && *p != '.' && *p != '_' && *p != '-') return false;
        /* a separator needs an alphanumeric on its left, "__" and "--" aside */
        if (!prev_alnum && !(p > s && (*p == '_' || *p == '-') && p[-1] == *p)) return false;
        prev_alnum = false;
    }
    return prev_alnum;
}

static bool valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (const char *p = s; *p; p++) {
        bool w = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '_';
        if (!w && (p == s || (*p != '.' && *p != '-'))) return false;
    }
    return true;
}

static bool valid_digest(const char *s)
{
    if (!starts_with(s, "sha256:") || strlen(s) != 7 + 64) return false;
    for (const char *p = s + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

static int fail(char *err, size_t errlen, const char *s, const char *why)
{
    snprintf(err, errlen, "bad image reference '%s': %s", s, why);
    return -1;
}

int oci_ref_parse(const char *s, oci_ref_t *ref, char *err, size_t errlen)
{
    char buf[1024];
    memset(ref, 0, sizeof *ref);
    if (!s || !*s) return fail(err, errlen, "", "empty");
    if (strlen(s) >= sizeof buf) return fail(err, errlen, "...", "too long");
    strcpy(buf, s);

    char *at = strchr(buf, '@');
    if (at) {
        *at = 0;
        if (!valid_digest(at + 1))
            return fail(err, errlen, s, "the digest must be sha256: and 64 lower-case hex digits");
        strcpy(ref->digest, at + 1);
    }

    /* The registry is the first component when it looks like a host. */
    char *name = buf, *slash = strchr(buf, '/');
    if (slash && is_host(buf, (size_t)(slash - buf))) {
        *slash = 0;
        if (!valid_host(buf)) return fail(err, errlen, s, "bad registry host");
        if (strlen(buf) >= sizeof ref->registry) return fail(err, errlen, s, "host too long");
        strcpy(ref->registry, buf);
        name = slash + 1;
    } else {
        strcpy(ref->registry, "docker.io");
    }
    /* Docker Hub is called docker.io but served by registry-1.docker.io. */
    bool hub = strcmp(ref->registry, "docker.io") == 0 ||
               strcmp(ref->registry, "index.docker.io") == 0 ||
               strcmp(ref->registry, OCI_DOCKER_HUB) == 0;
    if (hub) strcpy(ref->registry, OCI_DOCKER_HUB);

    /* A ':' after the last '/' starts the tag. */
    char *last = strrchr(name, '/');
    char *colon = strchr(last ? last : name, ':');
    if (colon) {
        *colon = 0;
        if (!valid_tag(colon + 1))
            return fail(err, errlen, s, "a tag is up to 128 letters, digits, '_', '.' and '-'");
        strcpy(ref->tag, colon + 1);
    }
    if (!valid_repo(name))
        return fail(err, errlen, s,
                    "the repository must be lower-case letters and digits separated by '/', '.', "
                    "'_' or '-'");
    int w = snprintf(ref->repository, sizeof ref->repository, "%s%s",
                     hub && !strchr(name, '/') ? "library/" : "", name);
    if (w < 0 || (size_t)w >= sizeof ref->repository)
        return fail(err, errlen, s, "repository too long");
    if (!ref->tag[0] && !ref->digest[0]) strcpy(ref->tag, "latest");
    return 0;
}

void oci_ref_format(const oci_ref_t *ref, char *out, size_t n)
{
    snprintf(out, n, "%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag[0] ? ":" : "",
             ref->tag, ref->digest[0] ? "@" : "", ref->digest);
}

const char *oci_status_name(oci_status_t s)
{
    static const char *const names[] = {
        [OCI_OK] = "ok",           [OCI_ERR_ARGS] = "args",         [OCI_ERR_NETWORK] = "network",
        [OCI_ERR_AUTH] = "auth",   [OCI_ERR_NOT_FOUND] = "not-found", [OCI_ERR_NO_WASM] = "no-wasm",
        [OCI_ERR_TOO_LARGE] = "too-large", [OCI_ERR_DIGEST] = "digest",
        [OCI_ERR_PROTOCOL] = "protocol",   [OCI_ERR_IO] = "io",
        [OCI_ERR_TIMEOUT] = "timeout",     [OCI_ERR_CANCELLED] = "cancelled",
    };
    return (unsigned)s < sizeof names / sizeof names[0] && names[s] ? names[s] : "unknown";
}
