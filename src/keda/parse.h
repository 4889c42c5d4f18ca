/*
 * parse.h — what the two halves of the ScaledObject parser share:
 * scaledobject.c reads the document, metadata.c each trigger type's
 * metadata. Private to src/keda/.
 *
 * Every refusal names its field (`spec.triggers[0].metadata.threshold:
 * ...`) and fails the whole document; a warning is kept in the result's
 * list and applies it anyway.
 */
#ifndef WASMFN_KEDA_PARSE_H
#define WASMFN_KEDA_PARSE_H

#include "keda/internal.h"

/* The parse under way: the result, where a refusal goes, how
 * TriggerAuthentications are resolved. */
typedef struct kd_parse {
    kd_scaledobject_t *so;
    char *err;
    size_t errlen;
    const kd_resolvers_t *rs; /* NULL: none */
    /* The trigger being parsed: its type, and the credentials its
     * authenticationRef gave (NULL when none), which win over metadata. */
    kd_type_t type;
    const kd_auth_param_t *auth;
    uint32_t nauth;
    bool auth_failed;     /* it has an authenticationRef that did not resolve */
    /* Its ...FromEnv parameters: the parameter each stands for and the
     * value read from the target's env (NULL when it did not resolve). */
    kd_auth_param_t *env;
    uint32_t nenv;
} kd_parse_t;


/* Writes the refusal to c->err; returns -1. */
int kd_parse_fail(kd_parse_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds a warning (lost, silently, when out of memory). */
void kd_parse_warn(kd_parse_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* o's member k, or NULL (also when o is not an object). */
const cJSON *kd_parse_member(const cJSON *o, const char *k);
/* Warns about every member of o not in known (NULL-terminated) and not in
 * quiet (accepted without a word: they change nothing here). KFromEnv is
 * known when K is. */
void kd_parse_unknown(kd_parse_t *c, const cJSON *o, const char *path, const char *const *known,
                      const char *const *quiet);
/* Whether k, absent, was to come from a reference that did not resolve
 * (the trigger's TriggerAuthentication, or its KFromEnv): a check that
 * requires it is then moot, since the trigger never reads. */
bool kd_meta_unresolved(const kd_parse_t *c, const char *k);
/* For KFromEnv, the length of K; 0 for any other key. */
size_t kd_from_env_stem(const char *k);
/* A number > 0 (or >= 0 with allow_zero) at key k of obj, whose place in
 * the document is where; def when absent. 1 when present, 0 when absent,
 * -1 refused. */
int kd_parse_num(kd_parse_t *c, const cJSON *obj, const char *k, const char *where, bool required,
                 bool allow_zero, double def, double *out);

/* The metadata parameters a TriggerAuthentication may give a trigger of
 * type t (NULL-terminated), and whether k is one of them. */
const char *const *kd_auth_params_of(kd_type_t t);
bool kd_auth_param_is(kd_type_t t, const char *k);

/* Metadata values of the trigger being parsed (c->type, c->auth, c->env);
 * path names the trigger (`spec.triggers[0]`). kd_meta_text gives a value
 * as text (buf holds a number's), or NULL when absent: the
 * TriggerAuthentication's credential first, then the metadata's value,
 * then the one its KFromEnv read. The others return 1 when present, 0
 * when absent (*out untouched for a string, the default otherwise), -1
 * refused; a required value that is absent is refused, unless it was to
 * come from a reference that did not resolve (the trigger then fails each
 * read with auth_err or env_err). */
const char *kd_meta_text(const kd_parse_t *c, const cJSON *md, const char *k, char *buf, size_t n);
int kd_meta_str(kd_parse_t *c, const cJSON *md, const char *k, const char *path, bool required,
                char **out);
int kd_meta_num(kd_parse_t *c, const cJSON *md, const char *k, const char *path, bool required,
                bool allow_zero, double def, double *out);
int kd_meta_bool(kd_parse_t *c, const cJSON *md, const char *k, const char *path, bool def,
                 bool *out);

/* types.c: the type named name (KEDA's spelling), false when none is;
 * and every name, for messages ("prometheus, cpu, ..."). */
bool kd_type_parse(const char *name, kd_type_t *out);
extern const char kd_types_supported[];

/* metadata.c: t's metadata md by its type (t->type), into t. 0, or -1
 * refused. */
int kd_metadata_parse(kd_parse_t *c, const cJSON *md, const char *path, kd_trigger_t *t);

#endif
