/*
 * http_allow.c — which destinations a revision's guests may call
 * (http_out.h, ho_policy_t): the `wasmfn.dev/allowed-hosts` entries, and
 * which addresses count as public.
 *
 * An entry is an origin: scheme (http or https), host, port (the scheme's
 * default when left out). A request matches an entry when all three are
 * equal (hosts compared without regard to case), and a path in an entry is
 * refused rather than silently widened to the whole origin. The one
 * wildcard is a whole first label, as in Spin: the host `*.example.com`
 * of an entry matches any name under example.com (not example.com itself, never an IP
 * literal); the suffix needs two labels at least (`*.com` is refused), and
 * a name it matches counts as a name, so it must resolve to a public
 * address. URLs and entries are both parsed by libcurl's URL parser,
 * the same one that then makes the request, so what is checked is what is
 * called (it also normalises numeric hosts: 127.1 and 2130706433 are
 * 127.0.0.1 for both).
 *
 * Addresses. When the matched entry names an IP address, the connection
 * goes to that address, which the operator listed on purpose, whatever
 * its class. When it names a host, the name may resolve anywhere (DNS is
 * not under the operator's control: rebinding attacks point public names
 * at 127.0.0.1 or a cloud metadata address), so only public addresses are
 * accepted (ho_addr_is_public), checked on the address libcurl is about
 * to connect to (http_client.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "host/http_internal.h"

typedef struct allow_entry {
    bool https;
    char *host;      /* as libcurl gives it: IPv6 in brackets; wild: the suffix after "*." */
    long port;
    bool is_ip;
    bool wild;       /* "*.host": any name ending in ".host" */
} allow_entry_t;

/* The placeholder a wildcard label is parsed as (a valid label no real
 * entry would use by accident is not needed: it is stripped again). */
#define WILD_LABEL "wildcard-label"

/* entry with a leading "*." label written as WILD_LABEL ".", into out:
 * 1 when it had one, 0 when it has no '*' at all, -1 when a '*' is
 * anywhere else. */
static int wild_rewrite(const char *entry, char *out, size_t n)
{
    const char *star = strchr(entry, '*');
    if (!star) return 0;
    const char *sep = strstr(entry, "://");
    if (!sep || star != sep + 3 || star[1] != '.' || strchr(star + 1, '*')) return -1;
    int w = snprintf(out, n, "%.*s" WILD_LABEL "%s", (int)(star - entry), entry, star + 1);
    return w < 0 || (size_t)w >= n ? -1 : 1;
}

struct ho_policy {
    atomic_int refs;
    allow_entry_t *entries;
    uint32_t n;
};

/* Whether a host as libcurl writes it ("10.0.0.1", "[::1]") is an IP
 * literal. */
static bool host_is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buf) == 1) return true;
    size_t n = strlen(host);
    if (n < 3 || host[0] != '[' || host[n - 1] != ']') return false;
    char v6[64];
    if (n - 2 >= sizeof v6) return false;
    memcpy(v6, host + 1, n - 2);
    v6[n - 2] = 0;
    char *zone = strchr(v6, '%');
    if (zone) *zone = 0;
    return inet_pton(AF_INET6, v6, buf) == 1;
}

/* Parses a URL's origin: 0, or HO_INVALID_URL. host is libcurl's (free
 * with curl_free). */
static int origin_get(CURLU *u, bool *https, char **host, long *port)
{
    char *scheme = NULL, *portstr = NULL;
    *host = NULL;
    int rc = HO_INVALID_URL;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &portstr, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "https") == 0) *https = true;
    else if (strcasecmp(scheme, "http") == 0) *https = false;
    else goto out;
    char *end;
    *port = strtol(portstr, &end, 10);
    if (*end || *port < 1 || *port > 65535 || !(*host)[0]) goto out;
    rc = HO_OK;
out:
    curl_free(scheme);
    curl_free(portstr);
    if (rc != HO_OK) {
        curl_free(*host);
        *host = NULL;
    }
    return rc;
}

int ho_allowed_host_check(const char *entry, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    bool https;
    char *host = NULL, *path = NULL, *part = NULL;
    long port;
    char parsed[1100];
    int wild = wild_rewrite(entry, parsed, sizeof parsed);
    if (wild < 0) {
        snprintf(err, errlen, "\"%s\": a wildcard may only be the whole first label of the host "
                 "(https://*.example.com)", entry);
        goto out;
    }
    /* No scheme guessing: "api.example.com" alone is an error, since
     * whether http or https is meant matters. */
    if (curl_url_set(u, CURLUPART_URL, wild ? parsed : entry, 0) != CURLUE_OK ||
        origin_get(u, &https, &host, &port) != HO_OK) {
        snprintf(err, errlen, "\"%s\" is not an origin such as https://api.example.com or "
                 "http://10.0.0.5:8080", entry);
        goto out;
    }
    if (wild && (host_is_ip(host) || !strchr(host + strlen(WILD_LABEL "."), '.'))) {
        snprintf(err, errlen, "\"%s\": a wildcard needs a domain of two labels at least under it "
                 "(https://*.example.com)", entry);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && strcmp(path, "/") != 0) {
        snprintf(err, errlen, "\"%s\": a path is not allowed (an entry is scheme://host[:port])",
                 entry);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
        snprintf(err, errlen, "\"%s\": only scheme://host[:port] is allowed", entry);
        goto out;
    }
    rc = 0;
out:
    curl_free(host);
    curl_free(path);
    curl_free(part);
    curl_url_cleanup(u);
    return rc;
}

void ho_policy_ref(ho_policy_t *p)
{
    if (p) atomic_fetch_add(&p->refs, 1);
}

void ho_policy_unref(ho_policy_t *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    for (uint32_t i = 0; i < p->n; i++) free(p->entries[i].host);
    free(p->entries);
    free(p);
}

ho_policy_t *ho_policy_new(const char *const *entries, uint32_t n, char *err, size_t errlen)
{
    if (n > HO_MAX_ALLOWED_HOSTS) {
        snprintf(err, errlen, "%u allowed hosts; at most %u", n, HO_MAX_ALLOWED_HOSTS);
        return NULL;
    }
    ho_policy_t *p = calloc(1, sizeof *p);
    if (!p || (n && !(p->entries = calloc(n, sizeof *p->entries)))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    for (uint32_t i = 0; i < n; i++) {
        if (ho_allowed_host_check(entries[i], err, errlen) != 0) goto fail;
        CURLU *u = curl_url();
        char *host = NULL, parsed[1100];
        allow_entry_t *e = &p->entries[i];
        e->wild = wild_rewrite(entries[i], parsed, sizeof parsed) == 1;
        if (!u || curl_url_set(u, CURLUPART_URL, e->wild ? parsed : entries[i], 0) != CURLUE_OK ||
            origin_get(u, &e->https, &host, &e->port) != HO_OK ||
            !(e->host = strdup(e->wild ? host + strlen(WILD_LABEL ".") : host))) {
            curl_free(host);
            curl_url_cleanup(u);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        curl_free(host);
        curl_url_cleanup(u);
        e->is_ip = !e->wild && host_is_ip(e->host);
        p->n = i + 1;
    }
    return p;
fail:
    ho_policy_unref(p);
    return NULL;
}

/* Whether host is a name under suffix ("a.b.example.com" under
 * "example.com"), never an IP literal. */
static bool wild_match(const char *suffix, const char *host)
{
    size_t hl = strlen(host), sl = strlen(suffix);
    return hl > sl + 1 && host[hl - sl - 1] == '.' && strcasecmp(host + hl - sl, suffix) == 0 &&
           !host_is_ip(host);
}

int ho_policy_check(const ho_policy_t *p, CURLU *u, bool *explicit_ip)
{
    bool https;
    char *host;
    long port;
    *explicit_ip = false;
    if (origin_get(u, &https, &host, &port) != HO_OK) return HO_INVALID_URL;
    int rc = HO_DESTINATION_NOT_ALLOWED;
    for (uint32_t i = 0; p && i < p->n; i++) {
        const allow_entry_t *e = &p->entries[i];
        if (e->https == https && e->port == port &&
            (e->wild ? wild_match(e->host, host) : strcasecmp(e->host, host) == 0)) {
            *explicit_ip = e->is_ip;
            rc = HO_OK;
            break;
        }
    }
    curl_free(host);
    return rc;
}

int ho_policy_allows(const ho_policy_t *p, const char *url, bool *explicit_ip)
{
    CURLU *u = curl_url();
    if (!u) return HO_RUNTIME_ERROR;
    int rc = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK ? ho_policy_check(p, u, explicit_ip)
                                                                 : HO_INVALID_URL;
    curl_url_cleanup(u);
    return rc;
}

/* ---- address classes ---------------------------------------------------- */

static bool v4_is_public(uint32_t a) /* host byte order */
{
    uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16), b2 = (uint8_t)(a >> 8);
    if (b0 == 0 || b0 == 10 || b0 == 127) return false;      /* this net, private, loopback */
    if (b0 == 100 && (b1 & 0xc0) == 64) return false;        /* 100.64/10 shared (CGNAT) */
    if (b0 == 169 && b1 == 254) return false;                /* link-local, cloud metadata */
    if (b0 == 172 && (b1 & 0xf0) == 16) return false;        /* 172.16/12 private */
    if (b0 == 192 && b1 == 168) return false;                /* 192.168/16 private */
    if (b0 == 192 && b1 == 0 && b2 == 0) return false;       /* 192.0.0/24 protocol assignments */
    if (b0 == 198 && (b1 & 0xfe) == 18) return false;        /* 198.18/15 benchmarking */
    if (b0 >= 224) return false;                             /* multicast, reserved, broadcast */
    return true;
}

bool ho_addr_is_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return v4_is_public(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family != AF_INET6) return false;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    /* IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d)
     * reaches the IPv4 address: judge that one. */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_is_public((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                            b[15]);
    static const uint8_t zero[15] = {0};
    if (memcmp(b, zero, 15) == 0) return false;              /* :: and ::1 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false; /* fe80::/10 link-local */
    if ((b[0] & 0xfe) == 0xfc) return false;                 /* fc00::/7 unique local */
    if (b[0] == 0xff) return false;                          /* multicast */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false; /* docs */
    return true;
}
