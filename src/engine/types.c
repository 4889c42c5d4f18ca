/*
 * types.c — function types compared for equality.
 *
 * The decoder builds function types, while instances (import matching), the
 * interpreter and the native runtime (call_indirect checks) compare them.
 * The comparison lives here so those users need not depend on decode.c.
 */
#include "engine/internal.h"

#include <string.h>

bool eng_functype_equal(const eng_functype_t *a, const eng_functype_t *b)
{
    if (a == b)
        return true;
    if (a->nparams != b->nparams || a->nresults != b->nresults)
        return false;
    size_t n = (size_t)a->nparams + a->nresults;
    return n == 0 || memcmp(a->types, b->types, n) == 0;
}
