/*
 * link.c — a module's imports resolved against WASI and the host APIs
 * (link.h). Each host API answers "not mine" for a module name it does
 * not own, so adding one is one more resolver in the chain below.
 */
#include "runtime/link.h"

#include <stdio.h>

static const char *kind_name(eng_extern_kind_t k)
{
    switch (k) {
    case ENG_EXTERN_FUNC: return "func";
    case ENG_EXTERN_TABLE: return "table";
    case ENG_EXTERN_MEMORY: return "memory";
    default: return "global";
    }
}

int rt_link_imports(wasi_ctx_t *w, const kv_grant_t *kv, eng_store_t *s, const eng_module_t *m,
                    eng_extern_t *imports, char *err, size_t errlen)
{
    uint32_t n = eng_module_import_count(m);
    for (uint32_t i = 0; i < n; i++) {
        eng_extern_desc_t d;
        eng_module_import(m, i, &d);
        wasi_resolve_t r = wasi_import_resolve(w, s, &d, &imports[i], err, errlen);
        if (r == WASI_RESOLVE_OK) continue;
        if (r == WASI_RESOLVE_ERROR) return -1;
        kv_resolve_t k = kv_import_resolve(kv, s, &d, &imports[i], err, errlen);
        if (k == KV_RESOLVE_OK) continue;
        if (k == KV_RESOLVE_ERROR) return -1;
        snprintf(err, errlen, "unknown import %s.%s (%s%s%s)", d.module, d.name, kind_name(d.kind),
                 d.type && d.type[0] ? " " : "", d.type ? d.type : "");
        return -1;
    }
    return 0;
}
