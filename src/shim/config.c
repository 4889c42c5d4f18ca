/*
 * config.c — the shim's own configuration, a node's operator's choice (not
 * a pod's): where native code is cached and whether it is used.
 *
 * containerd hands a runtime's options to the shim with each Create. For a
 * runtime that is not runc, both CRI (the `options` table of the runtime in
 * containerd's config.toml) and `ctr run --runtime-config-path` send
 * runtimeoptions.v1.Options, whose config_path names a file; ours is a
 * small TOML file of `key = "value"` lines:
 *
 *   tier = "auto"                          # or "interp"
 *   cache_dir = "/var/lib/wasmfn-shim/cache"
 *
 * No options (or no file named) means the defaults: tier auto, the cache in
 * SHIM_DEFAULT_CACHE_DIR. A file that cannot be read or holds anything else
 * fails Create with FILE:LINE and the fault, as a bad runc option does.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "github.com/containerd/containerd/pkg/runtimeoptions/v1/api.pb-c.h"
#include "shim/shim.h"

/* A configuration file of a few lines; anything bigger is not ours. */
#define CONFIG_MAX_BYTES (64u << 10)
#define OPTIONS_TYPE "runtimeoptions.v1.Options"

void shim_config_default(shim_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->cache_dir, sizeof c->cache_dir, "%s", SHIM_DEFAULT_CACHE_DIR);
    c->native = true;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* Parses `key = "value"` lines into c. */
static int config_parse(const char *path, char *text, shim_config_t *c, char *err, size_t errlen)
{
    int line = 0;
    for (char *l = text, *next; l; l = next) {
        next = strchr(l, '\n');
        if (next) *next++ = 0;
        line++;
        char *s = trim(l);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: want key = \"value\"", path, line);
            return -1;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        char *close = val[0] == '"' ? strchr(val + 1, '"') : NULL;
        if (!close || (*trim(close + 1) && *trim(close + 1) != '#')) {
            snprintf(err, errlen, "%s:%d: %s: the value must be a quoted string", path, line, key);
            return -1;
        }
        *close = 0;
        val++;
        if (strcmp(key, "tier") == 0) {
            if (strcmp(val, "auto") == 0) c->native = true;
            else if (strcmp(val, "interp") == 0) c->native = false;
            else {
                snprintf(err, errlen, "%s:%d: tier \"%s\": want \"auto\" or \"interp\"", path, line,
                         val);
                return -1;
            }
        } else if (strcmp(key, "cache_dir") == 0) {
            if (val[0] != '/' || strlen(val) >= sizeof c->cache_dir - 128) {
                snprintf(err, errlen, "%s:%d: cache_dir must be an absolute path of at most %zu bytes",
                         path, line, sizeof c->cache_dir - 128);
                return -1;
            }
            snprintf(c->cache_dir, sizeof c->cache_dir, "%s", val);
        } else {
            snprintf(err, errlen, "%s:%d: unknown key '%s' (known: tier, cache_dir)", path, line, key);
            return -1;
        }
    }
    return 0;
}

int shim_config_load(const char *type_url, const uint8_t *value, size_t len, shim_config_t *c,
                     char *err, size_t errlen)
{
    shim_config_default(c);
    if (!type_url || !type_url[0]) return 0;
    size_t tl = strlen(type_url), ol = strlen(OPTIONS_TYPE);
    if (tl < ol || strcmp(type_url + tl - ol, OPTIONS_TYPE) != 0) {
        snprintf(err, errlen, "runtime options of type %s: this runtime takes %s (a config_path)",
                 type_url, OPTIONS_TYPE);
        return -1;
    }
    Runtimeoptions__V1__Options *o = runtimeoptions__v1__options__unpack(NULL, len, value);
    if (!o) {
        snprintf(err, errlen, "malformed runtime options (%s)", OPTIONS_TYPE);
        return -1;
    }
    int rc = 0;
    if (o->config_path && o->config_path[0]) {
        char *text = shim_file_read_small(o->config_path, CONFIG_MAX_BYTES, err, errlen);
        rc = text ? config_parse(o->config_path, text, c, err, errlen) : -1;
        free(text);
    }
    runtimeoptions__v1__options__free_unpacked(o, NULL);
    return rc;
}
