/*
 * guest.h — the pieces of a container's process (guest.c) that the HTTP
 * mode (http.c) shares. Internal to src/shim.
 */
#ifndef WASMFN_SHIM_GUEST_H
#define WASMFN_SHIM_GUEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "engine/engine.h"
#include "serving/serving.h"
#include "shim/shim.h"
#include "wasi/wasi.h"

/* fd 5 of the container's process: the shim's log (containerd's log),
 * non-blocking; the container's own stderr is fd 2. */
#define SHIM_GUEST_LOG_FD 5

/* Reads the module process.args[0] names, from inside the rootfs; checks
 * the Wasm magic. Returns 0 with a malloc'd buffer, or -1 and a message. */
int shim_guest_module_read(const shim_spec_t *spec, uint8_t **bytes, size_t *len, char *err,
                           size_t errlen);
/* Gives w the spec's args, env and preopens. Returns 0 or -1. */
int shim_guest_wasi_setup(const shim_spec_t *spec, wasi_ctx_t *w, char *err, size_t errlen);
/* signals.c: SIGTERM/SIGINT handlers that interrupt the running guest
 * (the exec last set, or none); the signal received so far, or 0. */
void shim_guest_signals(void);
int shim_guest_signal(void);
void shim_guest_exec_set(eng_exec_t *x);
/* One line to the shim's log, prefixed with the container's id (set once;
 * kept by reference). */
void shim_guest_id_set(const char *id);
void shim_guest_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Native code (native.c). For a WASI command: attaches the cached code of
 * the module (bytes, len) to m, or starts a background compile for the
 * next start. For an HTTP function: gives the data plane the cache and a
 * compiler. Either way note says, in one line, what the container runs. */
void shim_native_command(const shim_config_t *cfg, const shim_spec_t *spec, const uint8_t *bytes,
                         size_t len, eng_module_t *m, char *note, size_t notelen);
void shim_native_serving(const shim_config_t *cfg, const uint8_t digest[32], uv_loop_t *loop,
                         srv_config_t *sc, char *note, size_t notelen);

/* Serves the module over HTTP (WAGI, fresh instance per request) on
 * 0.0.0.0:$PORT (default 8080) with /metrics, until SIGTERM or SIGINT.
 * gate() reports readiness and waits for Start (0 = go, else an exit
 * status). Returns the exit status, or -1 when it cannot start (err
 * says why). */
int shim_http_serve(const shim_spec_t *spec, const shim_config_t *cfg, const uint8_t *bytes,
                    size_t len, int (*gate)(void), char *err, size_t errlen);

#endif
