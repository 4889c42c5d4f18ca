/*
 * wasi.h — WASI preview1 ("wasi_snapshot_preview1") host functions over the
 * engine: the whole public API of src/wasi/.
 *
 * Prefix: wasi_. A wasi_ctx_t is one guest's view of the world: its argv,
 * its environment, the directories it was handed (preopens), its three
 * standard streams and its table of open file descriptors. It is the
 * capability sandbox: a guest can name nothing that is not reachable from
 * a descriptor in that table, and every path resolves beneath the
 * preopened directory it starts from (no escape through "..", absolute
 * paths or symlinks). See docs/wasi.md for the rules and the exact list of
 * functions.
 *
 * Typical use (what `wasmfn run` does):
 *
 *   wasi_ctx_t *w = wasi_ctx_new();
 *   wasi_ctx_set_args(w, argc, argv);
 *   wasi_ctx_add_env(w, "GREETING=hi");
 *   wasi_ctx_preopen(w, "./data", "/data", err, sizeof err);
 *   eng_extern_t *imports = calloc(eng_module_import_count(m), sizeof *imports);
 *   if (wasi_ctx_link(w, store, m, imports, err, sizeof err) != 0) fail(err);
 *   inst = eng_instance_new(store, m, imports, n, exec, err, sizeof err);
 *   eng_call(exec, eng_instance_func(inst, "_start"), NULL, NULL);
 *   wasi_ctx_free(w);   // after the store's instances stop running
 *
 * Lifetime and threads: a context serves one instance at a time and is used
 * only by the thread running that instance. The host functions that
 * wasi_ctx_link makes live in the store and point at the context, so the
 * context must outlive every call into that store's instances.
 */
#ifndef WASMFN_WASI_H
#define WASMFN_WASI_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define WASI_MODULE_NAME "wasi_snapshot_preview1"

typedef struct wasi_ctx wasi_ctx_t;

/* Where a guest's stdout/stderr bytes go when they are not a host fd.
 * Returns the number of bytes taken (0..len), or -1 for an I/O error that
 * the guest sees as EIO. Called on the guest's thread, during fd_write. */
typedef long (*wasi_write_fn)(void *userdata, const uint8_t *data, size_t len);

/* Makes an empty context: no args, no env, no preopens, and the guest's fds
 * 0, 1, 2 mapped to the host's 0, 1, 2 (not owned: never closed by us).
 * Returns NULL when out of memory. Free with wasi_ctx_free. */
wasi_ctx_t *wasi_ctx_new(void);
/* The same, but fds 0, 1, 2 are the context's own: stdin reads as empty,
 * stdout and stderr are discarded, until the wasi_ctx_set_* functions
 * below say otherwise. For embedders that replace all three anyway: it
 * costs no system call (wasi_ctx_new asks the host for the types of its
 * 0, 1, 2, three fstat calls per context). */
wasi_ctx_t *wasi_ctx_new_detached(void);
/* Closes every descriptor the context owns and frees it. */
void wasi_ctx_free(wasi_ctx_t *w);

/* Sets argv (copied). argv[0] is what the guest sees as its program name.
 * Returns 0, or -1 when out of memory. */
int wasi_ctx_set_args(wasi_ctx_t *w, int argc, const char *const *argv);
/* Adds one "KEY=VALUE" environment entry (copied). Returns 0, or -1 when it
 * has no '=' or memory runs out. */
int wasi_ctx_add_env(wasi_ctx_t *w, const char *key_eq_value);
/* Adds n entries at once (copied), or none: -1 when one has no '=' (or
 * starts with it) or memory runs out. */
int wasi_ctx_add_envs(wasi_ctx_t *w, const char *const *kv, uint32_t n);
/* The same without copying the strings, which the caller keeps unchanged
 * while the guest may run (a request's environment, for the one run of a
 * fresh instance): no copy of twenty-odd strings per request. */
int wasi_ctx_add_envs_borrowed(wasi_ctx_t *w, const char *const *kv, uint32_t n);

/* Hands the guest the host directory host_dir under the name guest_path
 * (e.g. "/data" or "."). Preopens get fds 3, 4, ... in the order they are
 * added. Returns 0, or -1 with a message naming the directory. */
int wasi_ctx_preopen(wasi_ctx_t *w, const char *host_dir, const char *guest_path,
                     char *err, size_t errlen);

/* Standard streams. wasi_fd is 0, 1 or 2. A host fd is used as is and never
 * closed by the context. Bytes given to set_stdin_bytes are not copied and
 * must outlive the guest's run; the guest reads them, then end of file. */
void wasi_ctx_set_stdio_fd(wasi_ctx_t *w, int wasi_fd, int host_fd);
void wasi_ctx_set_stdin_bytes(wasi_ctx_t *w, const uint8_t *data, size_t len);
void wasi_ctx_set_output(wasi_ctx_t *w, int wasi_fd, wasi_write_fn fn, void *userdata);

/* The CLOCK_MONOTONIC deadline (ns, as eng_now_ns) the guest runs under, or
 * 0 for none. Give the same value as eng_exec_set_deadline: poll_oneoff
 * never sleeps past it, and when it passes mid-sleep the host function
 * returns ENG_TRAP_DEADLINE, so the guest stops exactly as it would at a
 * loop back-edge. */
void wasi_ctx_set_deadline(wasi_ctx_t *w, uint64_t deadline_ns);

/* How a poll_oneoff that waits only on clocks waits, when set: instead
 * of sleeping the thread (ppoll), it calls fn(ud, until_ns) with the
 * CLOCK_MONOTONIC time to wake at (already capped by the deadline;
 * UINT64_MAX = no clock and no deadline). fn returns 0 once that time has
 * come (early returns are fine: poll_oneoff re-checks and calls again),
 * or -1 when the guest must stop at once (interrupted): poll_oneoff then
 * ends the guest with ENG_TRAP_DEADLINE. The runtime's scheduler uses it
 * to suspend the guest's fiber without holding its worker thread. Waits
 * that include a host fd still use ppoll. fn NULL = the default. */
typedef int (*wasi_sleep_fn)(void *ud, uint64_t until_ns);
void wasi_ctx_set_sleep(wasi_ctx_t *w, wasi_sleep_fn fn, void *ud);

/* Caps the number of open descriptors (default 1024, at most 65536). */
void wasi_ctx_set_max_fds(wasi_ctx_t *w, uint32_t max_fds);

/* Result of wasi_import_resolve. */
typedef enum wasi_resolve {
    WASI_RESOLVE_OK = 0,       /* *out is filled */
    WASI_RESOLVE_NOT_WASI = 1, /* the import's module is not wasi_snapshot_preview1 */
    WASI_RESOLVE_ERROR = -1,   /* a WASI import we cannot satisfy; see err */
} wasi_resolve_t;

/* Resolves one import of a module against WASI: makes the host function in
 * store s. Errors name the import and the expected type, e.g.
 * "import wasi_snapshot_preview1.fd_write has type (ii)i, expected (iiii)i". */
wasi_resolve_t wasi_import_resolve(wasi_ctx_t *w, eng_store_t *s, const eng_extern_desc_t *imp,
                                   eng_extern_t *out, char *err, size_t errlen);

/* The same in two steps, for a module instantiated many times: the index
 * of imp among WASI's functions when it is one, of the right type (else
 * -1: wasi_import_resolve tells why), found once per module; then per
 * instance, its host function for w in store s, with no lookup. */
int wasi_import_index(const eng_extern_desc_t *imp);
wasi_resolve_t wasi_import_bind(wasi_ctx_t *w, eng_store_t *s, int index, eng_extern_t *out,
                                char *err, size_t errlen);

/* Resolves every import of m (imports must hold eng_module_import_count(m)
 * entries). Any import that is not a WASI function is an error naming
 * module, name and the type the module expects. Returns 0 or -1. */
int wasi_ctx_link(wasi_ctx_t *w, eng_store_t *s, const eng_module_t *m, eng_extern_t *imports,
                  char *err, size_t errlen);

#endif
