/*
 * route.c — which function, and which of its revisions, a request goes to
 * (serving/internal.h): Knative's host names (NAME.default.DOMAIN), the
 * /fn/NAME/ path prefix, and percent traffic splits between revisions.
 *
 * Splits use smooth weighted round-robin rather than a random draw: over
 * every 100 requests each revision gets exactly its percent, so a 50/50
 * split alternates and a 90/10 split sends one request in ten to the
 * canary, evenly spaced — deterministic enough to test.
 */
#include "serving/internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

bool srv_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63 || !(name[0] >= 'a' && name[0] <= 'z') || name[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    return true;
}

int srv_route_host(const char *host, const char *domain, char *name, size_t namelen)
{
    if (!host || !domain || !*domain) return -1;
    size_t hl = strlen(host);
    /* Drop ":PORT"; an IPv6 literal never names a function. */
    if (host[0] == '[') return -1;
    const char *colon = memchr(host, ':', hl);
    if (colon) hl = (size_t)(colon - host);
    /* And a trailing dot of a fully qualified name. */
    if (hl && host[hl - 1] == '.') hl--;
    static const char mid[] = ".default.";
    size_t ml = sizeof mid - 1, dl = strlen(domain);
    if (hl <= ml + dl) return -1;
    if (strncasecmp(host + hl - dl, domain, dl) != 0) return -1;
    if (strncasecmp(host + hl - dl - ml, mid, ml) != 0) return -1;
    size_t nl = hl - dl - ml;
    if (nl + 1 > namelen) return -1;
    for (size_t i = 0; i < nl; i++) {
        if (host[i] == '.') return -1;
        name[i] = (char)tolower((unsigned char)host[i]);
    }
    name[nl] = 0;
    return 0;
}

int srv_route_path(const char *path, char *name, size_t namelen, const char **rest)
{
    if (strncmp(path, "/fn/", 4) != 0) return -1;
    const char *s = path + 4;
    const char *slash = strchr(s, '/');
    size_t nl = slash ? (size_t)(slash - s) : strlen(s);
    if (nl == 0 || nl + 1 > namelen) return -1;
    memcpy(name, s, nl);
    name[nl] = 0;
    *rest = slash ? slash : "";
    return 0;
}

uint32_t srv_split_pick(int32_t *current, const uint32_t *percent, uint32_t n)
{
    uint32_t best = 0;
    int32_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        current[i] += (int32_t)percent[i];
        total += (int32_t)percent[i];
        if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    return best;
}
