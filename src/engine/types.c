/*
 * types.c — function types compared for equality.
 *
 * The decoder builds function types, while instances (import matching), the
 * interpreter and the native runtime (call_indirect checks) compare them.
 * The comparison lives here so those users need not depend on decode.c;
 * so does the key native code compares as a number.
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

/* A value type's 3-bit code, never 0. */
static uint64_t key_code(uint8_t t)
{
    switch (t) {
    case ENG_I32: return 1;
    case ENG_I64: return 2;
    case ENG_F32: return 3;
    case ENG_F64: return 4;
    case ENG_V128: return 5;
    case ENG_FUNCREF: return 6;
    default: return 7; /* externref: validated types have no other */
    }
}

/* Bit 63 marks a key; bits 54..58 hold nparams; bits 0..53 the types'
 * codes, 3 bits each in order, params first. Codes are never 0, so the
 * number of codes gives the number of results: the key determines the
 * type. */
uint64_t eng_functype_key(const eng_functype_t *t)
{
    uint32_t n = t->nparams + t->nresults;
    if (n > ENG_FUNCTYPE_KEY_MAX || t->nparams > n)
        return 0;
    uint64_t k = 1ull << 63 | (uint64_t)t->nparams << 54;
    for (uint32_t i = 0; i < n; i++)
        k |= key_code(t->types[i]) << (3 * i);
    return k;
}
