/*
 * fuzz_keda.c — libFuzzer target over what KEDA's side of wasmfn reads from
 * outside: a ScaledObject document (what `wasmfn apply` sends, hostile or
 * broken), the answers of the servers its triggers poll (a metrics API's
 * JSON or YAML, an application's Prometheus text), and scalingModifiers
 * formulas. The first byte of an input picks which; for an answer, the
 * first line is the valueLocation and the rest the answer.
 *
 * Beyond the sanitizers it checks the readers' contract: 0 with a finite
 * value, or -1 with a message (internal.h). A ScaledObject's ...FromEnv
 * parameters resolve when the variable's name starts with X (its value is
 * the rest of the name), so values from the env reach every check.
 */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "keda/internal.h"

static void check(int rc, double v, const char *err)
{
    if (rc == 0 && !isfinite(v)) __builtin_trap(); /* a value to scale on is a number */
    if (rc != 0 && !err[0]) __builtin_trap();      /* a failure says why */
}

/* ...FromEnv: a variable whose name starts with X resolves (to its own
 * name, so values vary with the input); any other does not. */
static int env_any(void *ud, const char *service, const char *var, char **value, char *err,
                   size_t errlen)
{
    (void)ud;
    (void)service;
    if (var[0] != 'X') {
        snprintf(err, errlen, "no env %s", var);
        return -1;
    }
    return (*value = strdup(var + 1)) ? 0 : -1;
}

static void scaledobject(const char *s, size_t n)
{
    cJSON *d = cJSON_ParseWithLength(s, n);
    if (!d) return;
    kd_scaledobject_t so;
    char err[512] = "";
    kd_resolvers_t rs = {NULL, env_any, NULL};
    if (kd_scaledobject_parse(d, &rs, &so, err, sizeof err) != 0 && !err[0])
        __builtin_trap();
    kd_scaledobject_free(&so);
    (void)kd_scaledobject_uses_env(d);
    (void)kd_scaledobject_uses_auth(d, NULL, false);
    cJSON_Delete(d);
}

static void formula(const char *s)
{
    kd_trigger_t t[2] = {{.name = "a"}, {.name = "b"}};
    char err[300] = "";
    kd_formula_t *f = kd_formula_parse(s, t, 2, err, sizeof err);
    if (!f) {
        if (!err[0]) __builtin_trap();
        return;
    }
    (void)kd_formula_eval(f, (double[]){3, -2.5});
    kd_formula_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) return 0;
    unsigned mode = data[0] % 5;
    char *s = malloc(size);
    if (!s) return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    size_t n = size - 1;
    if (mode == 0) {
        scaledobject(s, n);
    } else if (mode == 4) {
        formula(s);
    } else {
        char *nl = memchr(s, '\n', n);
        const char *path = s, *body = nl ? nl + 1 : s + n;
        if (nl) *nl = '\0';
        size_t blen = (size_t)(s + n - body);
        double v = 0;
        char err[400] = "";
        if (strlen(path) <= KD_MAX_LOCATION) {
            if (mode == 1) check(kd_json_path_value(body, path, &v, err, sizeof err), v, err);
            if (mode == 2) check(kd_yaml_path_value(body, blen, path, &v, err, sizeof err), v, err);
            if (mode == 3 && kd_series_check(path, err, sizeof err) == 0)
                check(kd_exposition_value(body, blen, path, &v, err, sizeof err), v, err);
        }
    }
    free(s);
    return 0;
}
