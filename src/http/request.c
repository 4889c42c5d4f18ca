/*
 * request.c — what a handler reads from a request: its headers (by name,
 * any case) and its query parameters (percent-decoded).
 */
#define _GNU_SOURCE
#include <string.h>
#include <strings.h>

#include "common/percent.h"
#include "http/internal.h"

const char *hs_req_header(const hs_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

int hs_query_param(const char *query, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg >= kl && strncmp(p, key, kl) == 0 && (seg == kl || p[kl] == '=')) {
            if (seg == kl) {
                if (outlen == 0) return -1;
                out[0] = 0;
                return 1;
            }
            size_t vl = seg - kl - 1;
            if (vl >= outlen) return -1; /* decoded is at most vl bytes */
            return cm_pct_decode(p + kl + 1, vl, out, 0) < 0 ? -1 : 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

void hs_req_remove_header(hs_req_t *r, const char *name)
{
    /* r->headers is the connection's own array (c->hdrs), rebuilt for every
     * request, so compacting it in place is safe. */
    hs_header_t *h = (hs_header_t *)r->headers;
    size_t k = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(h[i].name, name) != 0)
            h[k++] = h[i];
    r->nheaders = k;
}
