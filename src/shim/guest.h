/*
 * guest.h — the pieces of a container's process (guest.c) that the HTTP
 * mode (http.c) shares. Internal to src/shim.
 */
#ifndef WASMFN_SHIM_GUEST_H
#define WASMFN_SHIM_GUEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "shim/shim.h"
#include "wasi/wasi.h"

/* Reads the module process.args[0] names, from inside the rootfs; checks
 * the Wasm magic. Returns 0 with a malloc'd buffer, or -1 and a message. */
int shim_guest_module_read(const shim_spec_t *spec, uint8_t **bytes, size_t *len, char *err,
                           size_t errlen);
/* Gives w the spec's args, env and preopens. Returns 0 or -1. */
int shim_guest_wasi_setup(const shim_spec_t *spec, wasi_ctx_t *w, char *err, size_t errlen);
/* SIGTERM/SIGINT handlers that interrupt the running guest; the signal
 * received so far, or 0. */
void shim_guest_signals(void);

/* Serves the module over HTTP (WAGI, fresh instance per request) on
 * 0.0.0.0:$PORT (default 8080) with /metrics, until SIGTERM or SIGINT.
 * gate() reports readiness and waits for Start (0 = go, else an exit
 * status); *signalled is the signal that arrived before Start, if any
 * (guest.c's handlers set it). Returns the exit status, or -1 when it
 * cannot start (err says why). */
int shim_http_serve(const shim_spec_t *spec, const uint8_t *bytes, size_t len, int (*gate)(void),
                    const volatile sig_atomic_t *signalled, char *err, size_t errlen);

#endif
