/*
 * link.h — resolving a module's imports for the runtime: WASI preview1
 * first, then the host APIs beyond it (src/host/). Private to
 * src/runtime/ (module.c checks and images modules with it, instance.c
 * makes instances with it).
 */
#ifndef WASMFN_RUNTIME_LINK_H
#define WASMFN_RUNTIME_LINK_H

#include <stddef.h>

#include "engine/engine.h"
#include "host/kv.h"
#include "wasi/wasi.h"

/* Fills imports (eng_module_import_count(m) entries) with host functions
 * in store s: WASI's over w, wasmfn_kv's over kv (NULL: nothing granted,
 * every open answers "no such store"). Any other import is an error
 * naming it. Returns 0, or -1 with a message. */
int rt_link_imports(wasi_ctx_t *w, const kv_grant_t *kv, eng_store_t *s, const eng_module_t *m,
                    eng_extern_t *imports, char *err, size_t errlen);

#endif
