/*
 * scaledobject.c — validates a KEDA ScaledObject document (keda.sh/v1alpha1,
 * as JSON) into a kd_scaledobject_t, with KEDA's defaults.
 *
 * As for Knative Services (api/manifest.c), YAML written for KEDA must
 * apply unchanged: what wasmfn honours is checked strictly, with errors
 * naming the field (`spec.triggers[0].metadata.threshold: ...`); fields
 * KEDA has and wasmfn does not use are warnings. Trigger metadata values
 * are strings in KEDA; numbers and booleans written unquoted are taken as
 * their text.
 *
 * This file reads the document: metadata, annotations, the spec, each
 * trigger's type, name, metricType and authenticationRef. What a trigger's
 * metadata means, type by type, is metadata.c; the helpers both use are
 * parse.c (parse.h).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/k8sname.h"
#include "keda/parse.h"

bool kd_handles_kind(const char *api_version, const char *kind)
{
    return api_version && kind && strncmp(api_version, "keda.sh/", 8) == 0 &&
           strcmp(kind, "ScaledObject") == 0;
}

/* An optional whole number in [lo, hi]; 1 when present, 0 when absent. */
static int uint_field(kd_parse_t *c, const cJSON *o, const char *k, const char *path, uint32_t lo,
                      uint32_t hi, uint32_t *out)
{
    const cJSON *v = kd_parse_member(o, k);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = NAN;
    if (cJSON_IsNumber(v)) d = v->valuedouble;
    else if (cJSON_IsString(v) && *v->valuestring) {
        char *end;
        d = strtod(v->valuestring, &end);
        if (*end) d = NAN;
    }
    if (!(d >= lo && d <= hi) || d != floor(d))
        return kd_parse_fail(c, "%s.%s: must be a whole number from %u to %u", path, k, lo, hi);
    *out = (uint32_t)d;
    return 1;
}

void kd_auth_params_free(kd_auth_param_t *params, uint32_t n)
{
    for (uint32_t i = 0; params && i < n; i++) {
        if (params[i].value) explicit_bzero(params[i].value, strlen(params[i].value));
        free(params[i].value);
        free(params[i].parameter);
    }
    free(params);
}

/* A trigger's authenticationRef: resolves it (into *params, which the
 * caller frees once the metadata is read) and sets up c to read the
 * credentials from there. A reference that does not resolve is the
 * trigger's auth_err, not an error: KEDA too accepts a ScaledObject whose
 * TriggerAuthentication comes later, and the Secret may change. */
static int parse_auth_ref(kd_parse_t *c, const cJSON *ref, const char *path, kd_trigger_t *t,
                          kd_auth_param_t **params, uint32_t *nparams)
{
    if (!ref) return 0;
    const cJSON *name = kd_parse_member(ref, "name"), *kind = kd_parse_member(ref, "kind");
    if (!cJSON_IsString(name) || !*name->valuestring)
        return kd_parse_fail(c, "%s.authenticationRef.name: required (a TriggerAuthentication)",
                             path);
    if (kind && (!cJSON_IsString(kind) ||
                 (strcmp(kind->valuestring, kd_auth_kind_name(false)) != 0 &&
                  strcmp(kind->valuestring, kd_auth_kind_name(true)) != 0)))
        return kd_parse_fail(c,
                             "%s.authenticationRef.kind: TriggerAuthentication (the default) or "
                             "ClusterTriggerAuthentication",
                             path);
    t->auth_cluster = kind && strcmp(kind->valuestring, kd_auth_kind_name(true)) == 0;
    static const char *const known[] = {"name", "kind", NULL};
    char p[96];
    snprintf(p, sizeof p, "%s.authenticationRef", path);
    kd_parse_unknown(c, ref, p, known, NULL);
    if (strlen(name->valuestring) > 253)
        return kd_parse_fail(c, "%s.authenticationRef.name: longer than 253 characters", path);
    if (!(t->auth_ref = strdup(name->valuestring))) return kd_parse_fail(c, "out of memory");
    char e[300] = "";
    int rc = -1;
    if (c->rs && c->rs->auth)
        rc = c->rs->auth(c->rs->ud, t->auth_ref, t->auth_cluster, c->so->target, params, nparams,
                         e, sizeof e);
    else snprintf(e, sizeof e, "%s is not available here", kd_auth_kind_name(t->auth_cluster));
    if (rc != 0) {
        *params = NULL;
        *nparams = 0;
        c->auth_failed = true;
        if (!(t->auth_err = strdup(e))) return kd_parse_fail(c, "out of memory");
        return 0;
    }
    for (uint32_t i = 0; i < *nparams; i++) {
        if (kd_auth_param_is(t->type, (*params)[i].parameter)) continue;
        char list[128] = "";
        for (const char *const *a = kd_auth_params_of(t->type); *a; a++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "",
                     *a);
        kd_parse_warn(
            c,
            "%s.authenticationRef: %s %s gives %.64s, which a %s trigger does not take from "
            "it (%s); ignored",
            path, kd_auth_kind_name(t->auth_cluster), t->auth_ref, (*params)[i].parameter,
            kd_type_name(t->type), *list ? list : "none");
    }
    c->auth = *params;
    c->nauth = *nparams;
    return 0;
}

/* The trigger's ...FromEnv parameters (KEDA reads them from the scale
 * target's container): each read from the target Service's env into
 * c->env, where they come after the metadata's own values. One that does
 * not resolve is the trigger's env_err (the first such), not an error: the
 * Service or its variable may come later. */
static int parse_from_env(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t)
{
    const cJSON *it;
    uint32_t n = 0;
    cJSON_ArrayForEach(it, md) n += kd_from_env_stem(it->string) != 0;
    if (!n) return 0;
    if (n > KD_MAX_FROM_ENV)
        return kd_parse_fail(c, "%s.metadata: more than %u ...FromEnv parameters", path,
                             KD_MAX_FROM_ENV);
    if (!(c->env = calloc(n, sizeof *c->env))) return kd_parse_fail(c, "out of memory");
    cJSON_ArrayForEach(it, md)
    {
        size_t stem = kd_from_env_stem(it->string);
        if (!stem) continue;
        if (!cJSON_IsString(it) || !kd_env_name_ok(it->valuestring))
            return kd_parse_fail(c,
                                 "%s.metadata.%s: must be the name of an environment variable "
                                 "of Service %s (letters, digits, '_', '-', '.'; at most %u)",
                                 path, it->string, c->so->target, KD_MAX_ENV_NAME);
        kd_auth_param_t *e = &c->env[c->nenv++];
        if (!(e->parameter = strndup(it->string, stem))) return kd_parse_fail(c, "out of memory");
        char why[300] = "";
        int rc = -1;
        if (c->rs && c->rs->env)
            rc = c->rs->env(c->rs->ud, c->so->target, it->valuestring, &e->value, why, sizeof why);
        else snprintf(why, sizeof why, "no Service environment is available here");
        if (rc == 0) continue;
        e->value = NULL;
        if (!t->env_err && asprintf(&t->env_err, "metadata.%s: %s", it->string, why) < 0) {
            t->env_err = NULL;
            return kd_parse_fail(c, "out of memory");
        }
    }
    return 0;
}

/* s with every copy of value replaced by what (malloc'd), or NULL when
 * out of memory. A message cut to its buffer may end in part of a copy:
 * that part (4 bytes or more) goes too. */
static char *redacted(const char *s, const char *value, const char *what)
{
    size_t vl = strlen(value), wl = strlen(what), n = 0;
    for (const char *p = s; (p = strstr(p, value)); p += vl) n++;
    char *out = malloc(strlen(s) + (n + 1) * wl + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = s, *q; ; p = q + vl) {
        q = strstr(p, value);
        size_t k = q ? (size_t)(q - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!q) break;
        memcpy(o, what, wl);
        o += wl;
    }
    size_t ol = (size_t)(o - out);
    for (size_t k = vl - 1 < ol ? vl - 1 : ol; k >= 4; k--)
        if (memcmp(o - k, value, k) == 0) {
            memcpy(o - k, what, wl);
            o = o - k + wl;
            break;
        }
    *o = '\0';
    return out;
}

/* Replaces v in the trigger's refusal and in the warnings it added (from
 * first on) by what. */
static void redact_value(kd_parse_t *c, uint32_t first, const char *v, const char *what)
{
    char *e = c->errlen && c->err[0] ? redacted(c->err, v, what) : NULL;
    if (e) snprintf(c->err, c->errlen, "%s", e);
    else if (c->errlen && c->err[0]) snprintf(c->err, c->errlen, "out of memory");
    free(e);
    for (uint32_t w = first; w < c->so->nwarnings; w++) {
        char *r = redacted(c->so->warnings[w], v, what);
        if (!r) { /* out of memory: the whole warning goes */
            memset(c->so->warnings[w], '*', strlen(c->so->warnings[w]));
            continue;
        }
        free(c->so->warnings[w]);
        c->so->warnings[w] = r;
    }
}

/* The values a TriggerAuthentication or the Service's env gave may come
 * from Secrets: no message about this trigger (its refusal, the warnings
 * it added from first on) may hold one. The checks that quote what they
 * refuse would quote it, so each copy becomes "(the value of VAR)" or
 * "(the value of TriggerAuthentication parameter P)". Values shorter than
 * 4 bytes are left: they would match too much of a message to hide
 * anything. */
static void redact_given(kd_parse_t *c, const cJSON *md, uint32_t first)
{
    char what[128];
    for (uint32_t i = 0; i < c->nauth; i++) {
        const char *v = c->auth[i].value;
        if (!v || strlen(v) < 4) continue;
        snprintf(what, sizeof what, "(the value of TriggerAuthentication parameter %.64s)",
                 c->auth[i].parameter);
        redact_value(c, first, v, what);
    }
    for (uint32_t i = 0; i < c->nenv; i++) {
        const char *v = c->env[i].value;
        if (!v || strlen(v) < 4) continue;
        char key[80];
        snprintf(key, sizeof key, "%sFromEnv", c->env[i].parameter);
        const cJSON *var = kd_parse_member(md, key);
        snprintf(what, sizeof what, "(the value of %.64s)",
                 cJSON_IsString(var) ? var->valuestring : key);
        redact_value(c, first, v, what);
    }
}

static int parse_trigger(kd_parse_t *c, const cJSON *tj, uint32_t i, kd_trigger_t *t)
{
    char path[64];
    snprintf(path, sizeof path, "spec.triggers[%u]", i);
    if (!cJSON_IsObject(tj)) return kd_parse_fail(c, "%s: must be an object", path);
    static const char *const known[] = {"type", "metadata", "name", "metricType",
                                        "authenticationRef", NULL};
    static const char *const quiet[] = {"useCachedMetrics", NULL};
    kd_parse_unknown(c, tj, path, known, quiet);
    const cJSON *type = kd_parse_member(tj, "type");
    if (!cJSON_IsString(type))
        return kd_parse_fail(c, "%s.type: required (one of: %s)", path, kd_types_supported);
    if (!kd_type_parse(type->valuestring, &t->type))
        return kd_parse_fail(c, "%s.type: \"%s\" is not supported; supported: %s", path,
                             type->valuestring, kd_types_supported);
    const cJSON *name = kd_parse_member(tj, "name");
    if (name && !cJSON_IsString(name)) return kd_parse_fail(c, "%s.name: must be a string", path);
    if (name && (!*name->valuestring || strlen(name->valuestring) >= sizeof t->name))
        return kd_parse_fail(c, "%s.name: must be 1 to %zu characters", path, sizeof t->name - 1);
    if (name) snprintf(t->name, sizeof t->name, "%s", name->valuestring);
    else snprintf(t->name, sizeof t->name, "s%u-%s", i, kd_type_name(t->type));
    const cJSON *mt = kd_parse_member(tj, "metricType");
    t->metric_type = t->type == KD_CPU || t->type == KD_MEMORY ? KD_UTILIZATION : KD_AVERAGE_VALUE;
    if (mt) {
        if (!cJSON_IsString(mt)) return kd_parse_fail(c, "%s.metricType: must be a string", path);
        if (strcmp(mt->valuestring, "AverageValue") == 0) t->metric_type = KD_AVERAGE_VALUE;
        else if (strcmp(mt->valuestring, "Value") == 0) t->metric_type = KD_VALUE;
        else if (strcmp(mt->valuestring, "Utilization") == 0) t->metric_type = KD_UTILIZATION;
        else
            return kd_parse_fail(c,
                                 "%s.metricType: \"%s\" is not AverageValue, Value or Utilization",
                                 path, mt->valuestring);
        if (t->metric_type == KD_UTILIZATION && t->type != KD_CPU && t->type != KD_MEMORY)
            return kd_parse_fail(c, "%s.metricType: Utilization is only for cpu and memory", path);
    }
    const cJSON *md = kd_parse_member(tj, "metadata");
    if (!cJSON_IsObject(md)) return kd_parse_fail(c, "%s.metadata: required, an object", path);
    c->type = t->type;
    kd_auth_param_t *params = NULL;
    uint32_t nparams = 0;
    if (parse_auth_ref(c, kd_parse_member(tj, "authenticationRef"), path, t, &params, &nparams) < 0)
        return -1;
    uint32_t warned = c->so->nwarnings;
    int rc = parse_from_env(c, md, path, t);
    if (rc == 0) rc = kd_metadata_parse(c, md, path, t);
    redact_given(c, md, warned);
    kd_auth_params_free(params, nparams);
    kd_auth_params_free(c->env, c->nenv);
    c->auth = NULL;
    c->nauth = 0;
    c->auth_failed = false;
    c->env = NULL;
    c->nenv = 0;
    return rc;
}

/* ---- spec ------------------------------------------------------------------ */

static int parse_policies(kd_parse_t *c, const cJSON *pol, const char *path, kd_rules_t *out)
{
    if (!cJSON_IsArray(pol) || cJSON_GetArraySize(pol) == 0)
        return kd_parse_fail(c,
                             "%s.policies: a list of at least one policy (leave it out for the "
                             "default)",
                             path);
    if (cJSON_GetArraySize(pol) > (int)KD_MAX_POLICIES)
        return kd_parse_fail(c, "%s.policies: at most %u policies", path, KD_MAX_POLICIES);
    out->npolicies = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pol)
    {
        char pp[200];
        snprintf(pp, sizeof pp, "%s.policies[%u]", path, out->npolicies);
        if (!cJSON_IsObject(p)) return kd_parse_fail(c, "%s: must be an object", pp);
        static const char *const known[] = {"type", "value", "periodSeconds", NULL};
        kd_parse_unknown(c, p, pp, known, NULL);
        kd_policy_t *k = &out->policies[out->npolicies++];
        const cJSON *type = kd_parse_member(p, "type");
        if (!cJSON_IsString(type) || (strcmp(type->valuestring, "Pods") != 0 &&
                                      strcmp(type->valuestring, "Percent") != 0))
            return kd_parse_fail(c, "%s.type: must be Pods or Percent", pp);
        k->percent = strcmp(type->valuestring, "Percent") == 0;
        if (uint_field(c, p, "value", pp, 1, 1000000, &k->value) != 1)
            return c->err[0] ? -1 : kd_parse_fail(c, "%s.value: required", pp);
        if (uint_field(c, p, "periodSeconds", pp, 1, KD_MAX_POLICY_PERIOD_S, &k->period_s) != 1)
            return c->err[0] ? -1 : kd_parse_fail(c, "%s.periodSeconds: required", pp);
    }
    return 0;
}

static int parse_rules(kd_parse_t *c, const cJSON *r, const char *path, kd_rules_t *out)
{
    if (!r) return 0;
    if (!cJSON_IsObject(r)) return kd_parse_fail(c, "%s: must be an object", path);
    static const char *const known[] = {"stabilizationWindowSeconds", "selectPolicy", "policies",
                                        NULL};
    static const char *const quiet[] = {"tolerance", NULL};
    kd_parse_unknown(c, r, path, known, quiet);
    if (uint_field(c, r, "stabilizationWindowSeconds", path, 0, KD_MAX_WINDOW_S,
                   &out->window_s) < 0)
        return -1;
    const cJSON *sp = kd_parse_member(r, "selectPolicy");
    if (sp) {
        if (!cJSON_IsString(sp) || (strcmp(sp->valuestring, "Max") != 0 &&
                                    strcmp(sp->valuestring, "Min") != 0 &&
                                    strcmp(sp->valuestring, "Disabled") != 0))
            return kd_parse_fail(c, "%s.selectPolicy: must be Max, Min or Disabled", path);
        out->select = strcmp(sp->valuestring, "Max") == 0   ? KD_SELECT_MAX
                      : strcmp(sp->valuestring, "Min") == 0 ? KD_SELECT_MIN
                                                            : KD_SELECT_DISABLED;
    }
    const cJSON *pol = kd_parse_member(r, "policies");
    if (pol && parse_policies(c, pol, path, out) < 0) return -1;
    return 0;
}

static int parse_advanced(kd_parse_t *c, const cJSON *adv, kd_scaledobject_t *so)
{
    if (!adv) return 0;
    if (!cJSON_IsObject(adv)) return kd_parse_fail(c, "spec.advanced: must be an object");
    static const char *const known[] = {"horizontalPodAutoscalerConfig", "scalingModifiers", NULL};
    static const char *const quiet[] = {"restoreToOriginalReplicaCount", NULL};
    kd_parse_unknown(c, adv, "spec.advanced", known, quiet);
    const cJSON *hpa = kd_parse_member(adv, "horizontalPodAutoscalerConfig");
    if (!hpa) return 0;
    if (!cJSON_IsObject(hpa))
        return kd_parse_fail(c, "spec.advanced.horizontalPodAutoscalerConfig: must be an object");
    static const char *const hknown[] = {"behavior", NULL};
    static const char *const hquiet[] = {"name", NULL};
    kd_parse_unknown(c, hpa, "spec.advanced.horizontalPodAutoscalerConfig", hknown, hquiet);
    const cJSON *b = kd_parse_member(hpa, "behavior");
    if (!b) return 0;
    if (!cJSON_IsObject(b))
        return kd_parse_fail(
            c, "spec.advanced.horizontalPodAutoscalerConfig.behavior: must be an object");
    static const char *const bknown[] = {"scaleUp", "scaleDown", NULL};
    kd_parse_unknown(c, b, "spec.advanced.horizontalPodAutoscalerConfig.behavior", bknown, NULL);
    if (parse_rules(c, kd_parse_member(b, "scaleUp"),
                    "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp", &so->up) < 0 ||
        parse_rules(c, kd_parse_member(b, "scaleDown"),
                    "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown",
                    &so->down) < 0)
        return -1;
    return 0;
}

/* KEDA's pause annotations (keda.h, kd_scaledobject_t.paused). Other
 * annotations are the user's own and pass without a word. */
static int parse_pause(kd_parse_t *c, const cJSON *ann, kd_scaledobject_t *so)
{
    static const char *const PR = "autoscaling.keda.sh/paused-replicas";
    static const char *const P = "autoscaling.keda.sh/paused";
    if (ann && !cJSON_IsObject(ann)) return kd_parse_fail(c, "metadata.annotations: must be a map");
    const cJSON *r = kd_parse_member(ann, PR), *p = kd_parse_member(ann, P);
    if (r) {
        char buf[32];
        const char *s = cJSON_IsString(r) ? r->valuestring : NULL;
        if (!s && cJSON_IsNumber(r)) {
            snprintf(buf, sizeof buf, "%.17g", r->valuedouble);
            s = buf;
        }
        char *end = NULL;
        long v = s && *s && strspn(s, "0123456789") == strlen(s) && strlen(s) <= 6
                     ? strtol(s, &end, 10)
                     : -1;
        if (v < 0 || v > (long)KD_MAX_REPLICAS)
            return kd_parse_fail(
                c, "metadata.annotations[%s]: \"%.20s\" is not a whole number from 0 to %u", PR,
                s ? s : "", KD_MAX_REPLICAS);
        so->paused_replicas = (int32_t)v;
        so->paused = true;
    }
    if (p) {
        const char *s = cJSON_IsString(p) ? p->valuestring : cJSON_IsTrue(p) ? "true" : "false";
        if (cJSON_IsString(p) && strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
            return kd_parse_fail(c, "metadata.annotations[%s]: \"%.20s\" is not true or false", P,
                                 s);
        if (strcasecmp(s, "true") == 0) so->paused = true;
    }
    return 0;
}

/* advanced.scalingModifiers, once the triggers are parsed (the formula
 * names them). */
static int parse_modifiers(kd_parse_t *c, const cJSON *m, kd_scaledobject_t *so)
{
    static const char *const P = "spec.advanced.scalingModifiers";
    if (!m) return 0;
    if (!cJSON_IsObject(m)) return kd_parse_fail(c, "%s: must be an object", P);
    static const char *const known[] = {"formula", "target", "activationTarget", "metricType",
                                        NULL};
    kd_parse_unknown(c, m, P, known, NULL);
    const cJSON *f = kd_parse_member(m, "formula");
    if (!cJSON_IsString(f) || !*f->valuestring)
        return kd_parse_fail(c, "%s.formula: required (an expression over the triggers' names)", P);
    char e[300];
    if (!(so->formula = kd_formula_parse(f->valuestring, so->triggers, so->ntriggers, e, sizeof e)))
        return kd_parse_fail(c, "%s.formula: %s", P, e);
    if (kd_parse_num(c, m, "target", P, true, false, 0, &so->mod_target) < 0 ||
        kd_parse_num(c, m, "activationTarget", P, false, true, 0, &so->mod_activation) < 0)
        return -1;
    so->mod_metric = KD_AVERAGE_VALUE;
    const cJSON *mt = kd_parse_member(m, "metricType");
    if (mt && cJSON_IsString(mt) && strcmp(mt->valuestring, "Value") == 0)
        so->mod_metric = KD_VALUE;
    else if (mt && !(cJSON_IsString(mt) && strcmp(mt->valuestring, "AverageValue") == 0))
        return kd_parse_fail(c, "%s.metricType: AverageValue (the default) or Value", P);
    if (so->fallback && so->mod_metric != KD_AVERAGE_VALUE)
        return kd_parse_fail(c, "spec.fallback: needs %s.metricType to be AverageValue", P);
    return 0;
}

int kd_scaledobject_parse(const cJSON *doc, const kd_resolvers_t *rs, kd_scaledobject_t *so,
                          char *err, size_t errlen)
{
    memset(so, 0, sizeof *so);
    kd_parse_t c = {.so = so, .err = err, .errlen = errlen, .rs = rs};
    if (errlen) err[0] = '\0';
    so->max_replicas = KD_DEFAULT_MAX_REPLICAS;
    so->idle_replicas = -1;
    so->paused_replicas = -1;
    so->held_replicas = -1;
    so->polling_s = KD_DEFAULT_POLLING_S;
    so->cooldown_s = KD_DEFAULT_COOLDOWN_S;
    /* The HPA's default behavior: up by 100% or 4 instances (whichever
     * is more) per 15 s, no window; down by up to 100% per 15 s, after
     * the 300 s window. */
    so->up = (kd_rules_t){.window_s = 0, .select = KD_SELECT_MAX, .npolicies = 2,
                          .policies = {{true, 100, 15}, {false, 4, 15}}};
    so->down = (kd_rules_t){.window_s = KD_DEFAULT_DOWN_WINDOW_S, .select = KD_SELECT_MAX,
                            .npolicies = 1, .policies = {{true, 100, 15}}};
    if (!cJSON_IsObject(doc)) return kd_parse_fail(&c, "a ScaledObject must be an object");
    const cJSON *av = kd_parse_member(doc, "apiVersion"), *kind = kd_parse_member(doc, "kind");
    if (!cJSON_IsString(av) || !cJSON_IsString(kind) ||
        !kd_handles_kind(av->valuestring, kind->valuestring))
        return kd_parse_fail(&c, "kind: want keda.sh/v1alpha1 ScaledObject");
    static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const topq[] = {"status", NULL};
    kd_parse_unknown(&c, doc, "", top, topq);
    const cJSON *md = kd_parse_member(doc, "metadata");
    const cJSON *name = kd_parse_member(md, "name");
    if (!cJSON_IsString(name)) return kd_parse_fail(&c, "metadata.name: required");
    if (!cm_k8s_label_ok(name->valuestring, 63))
        return kd_parse_fail(&c,
                             "metadata.name: \"%s\" must be lower-case letters, digits and '-', "
                             "starting with a letter, at most 63",
                             name->valuestring);
    const cJSON *ns = kd_parse_member(md, "namespace");
    if (cJSON_IsString(ns) && strcmp(ns->valuestring, "default") != 0)
        kd_parse_warn(&c, "metadata.namespace: only the default namespace exists; ignored");
    if (!(so->name = strdup(name->valuestring))) return kd_parse_fail(&c, "out of memory");
    if (parse_pause(&c, kd_parse_member(md, "annotations"), so) < 0) return -1;

    const cJSON *spec = kd_parse_member(doc, "spec");
    if (!cJSON_IsObject(spec)) return kd_parse_fail(&c, "spec: required, an object");
    static const char *const sknown[] = {"scaleTargetRef", "pollingInterval", "cooldownPeriod",
                                         "initialCooldownPeriod", "idleReplicaCount",
                                         "minReplicaCount", "maxReplicaCount", "fallback",
                                         "advanced", "triggers", NULL};
    kd_parse_unknown(&c, spec, "spec", sknown, NULL);
    const cJSON *ref = kd_parse_member(spec, "scaleTargetRef");
    const cJSON *tn = kd_parse_member(ref, "name");
    if (!cJSON_IsString(tn))
        return kd_parse_fail(&c, "spec.scaleTargetRef.name: required (a Service)");
    if (!cm_k8s_label_ok(tn->valuestring, 63))
        return kd_parse_fail(&c, "spec.scaleTargetRef.name: \"%s\" is not a function name",
                             tn->valuestring);
    static const char *const rknown[] = {"name", NULL};
    static const char *const rquiet[] = {"kind", "apiVersion", "envSourceContainerName", NULL};
    kd_parse_unknown(&c, ref, "spec.scaleTargetRef", rknown, rquiet);
    if (!(so->target = strdup(tn->valuestring))) return kd_parse_fail(&c, "out of memory");

    uint32_t idle = 0;
    int has_idle;
    if (uint_field(&c, spec, "pollingInterval", "spec", 1, 86400, &so->polling_s) < 0 ||
        uint_field(&c, spec, "cooldownPeriod", "spec", 0, 86400 * 7, &so->cooldown_s) < 0 ||
        uint_field(&c, spec, "initialCooldownPeriod", "spec", 0, 86400 * 7,
                   &so->initial_cooldown_s) < 0 ||
        uint_field(&c, spec, "minReplicaCount", "spec", 0, KD_MAX_REPLICAS, &so->min_replicas) <
            0 ||
        uint_field(&c, spec, "maxReplicaCount", "spec", 1, KD_MAX_REPLICAS, &so->max_replicas) <
            0 ||
        (has_idle = uint_field(&c, spec, "idleReplicaCount", "spec", 0, KD_MAX_REPLICAS, &idle)) <
            0)
        return -1;
    if (so->min_replicas > so->max_replicas)
        return kd_parse_fail(&c, "spec.minReplicaCount: %u is above maxReplicaCount (%u)",
                             so->min_replicas, so->max_replicas);
    if (has_idle) {
        if (idle >= so->min_replicas && !(idle == 0 && so->min_replicas == 0))
            return kd_parse_fail(&c, "spec.idleReplicaCount: must be below minReplicaCount (%u)",
                                 so->min_replicas);
        so->idle_replicas = (int32_t)idle;
    }
    const cJSON *fb = kd_parse_member(spec, "fallback");
    if (fb) {
        if (!cJSON_IsObject(fb)) return kd_parse_fail(&c, "spec.fallback: must be an object");
        static const char *const fknown[] = {"failureThreshold", "replicas", "behavior", NULL};
        kd_parse_unknown(&c, fb, "spec.fallback", fknown, NULL);
        static const char *const behaviors[] = {
            [KD_FALLBACK_STATIC] = "static",
            [KD_FALLBACK_CURRENT] = "currentReplicas",
            [KD_FALLBACK_CURRENT_IF_HIGHER] = "currentReplicasIfHigher",
            [KD_FALLBACK_CURRENT_IF_LOWER] = "currentReplicasIfLower",
        };
        const cJSON *bh = kd_parse_member(fb, "behavior");
        if (bh) {
            bool found = false;
            for (size_t i = 0; cJSON_IsString(bh) && i < 4 && !found; i++)
                if (strcmp(bh->valuestring, behaviors[i]) == 0) {
                    so->fallback_behavior = (kd_fallback_behavior_t)i;
                    found = true;
                }
            if (!found)
                return kd_parse_fail(
                    &c,
                    "spec.fallback.behavior: \"%s\" is not static, currentReplicas, "
                    "currentReplicasIfHigher or currentReplicasIfLower",
                    cJSON_IsString(bh) ? bh->valuestring : "(not a string)");
        }
        if (uint_field(&c, fb, "failureThreshold", "spec.fallback", 1, 1000000,
                       &so->fallback_failures) != 1)
            return c.err[0] ? -1 : kd_parse_fail(&c, "spec.fallback.failureThreshold: required");
        if (uint_field(&c, fb, "replicas", "spec.fallback", 0, KD_MAX_REPLICAS,
                       &so->fallback_replicas) != 1)
            return c.err[0] ? -1 : kd_parse_fail(&c, "spec.fallback.replicas: required");
        so->fallback = true;
    }
    if (parse_advanced(&c, kd_parse_member(spec, "advanced"), so) < 0) return -1;

    const cJSON *tr = kd_parse_member(spec, "triggers");
    if (!cJSON_IsArray(tr) || cJSON_GetArraySize(tr) == 0)
        return kd_parse_fail(&c, "spec.triggers: required, a list of at least one trigger");
    int n = cJSON_GetArraySize(tr);
    if (n > (int)KD_MAX_TRIGGERS)
        return kd_parse_fail(&c, "spec.triggers: %d triggers; at most %u", n, KD_MAX_TRIGGERS);
    if (!(so->triggers = calloc((size_t)n, sizeof *so->triggers)))
        return kd_parse_fail(&c, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, tr)
    {
        kd_trigger_t *kt = &so->triggers[so->ntriggers];
        so->ntriggers++;
        if (parse_trigger(&c, t, so->ntriggers - 1, kt) < 0) return -1;
        for (uint32_t k = 0; k + 1 < so->ntriggers; k++)
            if (strcmp(so->triggers[k].name, kt->name) == 0)
                return kd_parse_fail(&c, "spec.triggers[%u].name: \"%s\" is used twice",
                                     so->ntriggers - 1, kt->name);
        if (so->fallback && kt->metric_type != KD_AVERAGE_VALUE)
            return kd_parse_fail(
                &c,
                "spec.fallback: needs every trigger's metricType to be AverageValue "
                "(spec.triggers[%u] is not)",
                so->ntriggers - 1);
    }
    return parse_modifiers(
        &c, kd_parse_member(kd_parse_member(spec, "advanced"), "scalingModifiers"), so);
}

static void trigger_free(kd_trigger_t *t)
{
    char **s[] = {&t->url,    &t->query,    &t->stream,   &t->group,    &t->queue,
                  &t->vhost,  &t->account,  &t->bearer,   &t->username, &t->password,
                  &t->headers, &t->tz,      &t->start,    &t->end,      &t->auth_ref,
                  &t->auth_err, &t->env_err, &t->location, &t->api_key, &t->key_param,
                  &t->sentinel_master, &t->sentinel_username, &t->sentinel_password,
                  &t->tls_ca, &t->tls_cert, &t->tls_key, &t->db_connection, &t->db_port,
                  &t->db_name, &t->db_sslmode};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        /* Any of them may hold a credential (a URL with a password). */
        if (*s[i]) explicit_bzero(*s[i], strlen(*s[i]));
        free(*s[i]);
        *s[i] = NULL;
    }
}

void kd_scaledobject_free(kd_scaledobject_t *so)
{
    if (!so) return;
    for (uint32_t i = 0; i < so->ntriggers; i++) trigger_free(&so->triggers[i]);
    free(so->triggers);
    for (uint32_t i = 0; i < so->nwarnings; i++) free(so->warnings[i]);
    free(so->warnings);
    free(so->name);
    free(so->target);
    kd_formula_free(so->formula);
    memset(so, 0, sizeof *so);
}

bool kd_scaledobject_uses_auth(const cJSON *doc, const char *name, bool cluster)
{
    const cJSON *t, *tr = kd_parse_member(kd_parse_member(doc, "spec"), "triggers");
    cJSON_ArrayForEach(t, tr)
    {
        const cJSON *ref = kd_parse_member(t, "authenticationRef");
        const cJSON *n = kd_parse_member(ref, "name"), *k = kd_parse_member(ref, "kind");
        if (!cJSON_IsString(n)) continue;
        if (!name) return true;
        bool is_cluster = cJSON_IsString(k) && strcmp(k->valuestring, kd_auth_kind_name(true)) == 0;
        if (is_cluster == cluster && strcmp(n->valuestring, name) == 0) return true;
    }
    return false;
}

bool kd_scaledobject_uses_env(const cJSON *doc)
{
    const cJSON *t, *tr = kd_parse_member(kd_parse_member(doc, "spec"), "triggers");
    cJSON_ArrayForEach(t, tr)
    {
        const cJSON *it;
        cJSON_ArrayForEach(it, kd_parse_member(t, "metadata"))
        {
            if (kd_from_env_stem(it->string)) return true;
        }
    }
    return false;
}
