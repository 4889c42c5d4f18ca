/*
 * metrics.c — labelled counters, gauges and histograms rendered as
 * Prometheus text exposition format 0.0.4 (what /metrics serves).
 *
 * Concurrency: each registry has one read-write lock. Updates take it for
 * reading — many threads at once — find their series in the family's hash
 * table and change it with atomics (the first update of a new series takes
 * it for writing, to insert it) (a double is kept as its bit pattern in
 * an atomic uint64 and added to with a compare-and-swap loop). Creating a
 * series, removing a function's series, adding a family and rendering take
 * it for writing or reading as they need. Why not a plain mutex for lookups
 * and atomics after: a series removed between the unlock and the atomic
 * update would be freed under the updater's feet; holding the read lock
 * across the update closes that without serialising the workers. A handle
 * (mx_series) skips both the lookup and the lock: its holder promises
 * the series is not removed while it uses it.
 *
 * Series render in creation order (a list beside the hash table), so the
 * output is stable and testable. Numbers are written as Prometheus reads
 * them: whole values without exponent or fraction, others in the shortest
 * %.{15,16,17}g form that reads back to the same double, and "+Inf",
 * "-Inf", "NaN".
 */
#include "common/buf.h"
#include "common/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mx_series {
    mx_family_t *family;
    struct mx_series *next_hash;          /* chain in the family's table */
    struct mx_series *prev, *next;        /* creation order */
    uint64_t hash;
    char *key;      /* label values, each followed by '\0' */
    size_t key_len;
    char **values;  /* pointers into key, one per label */
    _Atomic uint64_t value_bits;          /* counter/gauge value; histogram sum */
    _Atomic uint64_t count;               /* histogram only */
    _Atomic uint64_t *bucket_counts;      /* histogram only, per bucket (not cumulative) */
};

struct mx_family {
    mx_registry_t *reg;
    struct mx_family *next;
    char *name, *help;
    mx_type_t type;
    char **label_names;
    size_t nlabels;
    double *buckets;
    size_t nbuckets;
    mx_series_t **table; /* hash chains; size a power of two */
    size_t table_size, nseries;
    mx_series_t *first, *last;
};

struct mx_registry {
    pthread_rwlock_t lock;
    mx_family_t *first, *last;
};

/* ---- doubles in atomics ---- */

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double double_of(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, bits_of(double_of(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- registry and families ---- */

mx_registry_t *mx_registry_new(void)
{
    mx_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_rwlock_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void series_free(mx_series_t *s)
{
    if (!s)
        return;
    free(s->key);
    free(s->values);
    free((void *)s->bucket_counts);
    free(s);
}

static void family_free(mx_family_t *f)
{
    for (mx_series_t *s = f->first, *n; s; s = n) {
        n = s->next;
        series_free(s);
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f->buckets);
    free(f->table);
    free(f->name);
    free(f->help);
    free(f);
}

void mx_registry_free(mx_registry_t *r)
{
    if (!r)
        return;
    for (mx_family_t *f = r->first, *n; f; f = n) {
        n = f->next;
        family_free(f);
    }
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The lookup key of a set of label values: each value and a '\0'. A NULL
 * value (a caller's slip) is taken as "". Returns false when out of memory
 * for a key longer than the stack buffer. */
typedef struct mx_key {
    char stack[256];
    char *p;
    size_t len;
} mx_key_t;

static bool key_build(mx_key_t *k, const mx_family_t *f, const char *const *values)
{
    size_t len = 0;
    for (size_t i = 0; i < f->nlabels; i++)
        len += strlen(values && values[i] ? values[i] : "") + 1;
    k->p = len <= sizeof k->stack ? k->stack : malloc(len ? len : 1);
    if (!k->p)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t n = strlen(v) + 1;
        memcpy(k->p + o, v, n);
        o += n;
    }
    k->len = len;
    return true;
}

static void key_done(mx_key_t *k)
{
    if (k->p != k->stack)
        free(k->p);
}

static mx_series_t *series_find(const mx_family_t *f, const mx_key_t *k, uint64_t h)
{
    if (!f->table)
        return NULL;
    for (mx_series_t *s = f->table[h & (f->table_size - 1)]; s; s = s->next_hash)
        if (s->hash == h && s->key_len == k->len && memcmp(s->key, k->p, k->len) == 0)
            return s;
    return NULL;
}

static bool table_grow(mx_family_t *f)
{
    size_t size = f->table_size ? f->table_size * 2 : 16;
    mx_series_t **t = calloc(size, sizeof *t);
    if (!t)
        return false;
    for (mx_series_t *s = f->first; s; s = s->next) {
        size_t i = s->hash & (size - 1);
        s->next_hash = t[i];
        t[i] = s;
    }
    free(f->table);
    f->table = t;
    f->table_size = size;
    return true;
}

/* Called with the write lock held. */
static mx_series_t *series_add(mx_family_t *f, const mx_key_t *k, uint64_t h)
{
    if ((f->nseries + 1) * 4 > f->table_size * 3 && !table_grow(f) && !f->table)
        return NULL;
    mx_series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->family = f;
    s->key = malloc(k->len ? k->len : 1);
    s->values = calloc(f->nlabels ? f->nlabels : 1, sizeof *s->values);
    if (f->type == MX_HISTOGRAM)
        s->bucket_counts = calloc(f->nbuckets ? f->nbuckets : 1, sizeof *s->bucket_counts);
    if (!s->key || !s->values || (f->type == MX_HISTOGRAM && !s->bucket_counts)) {
        series_free(s);
        return NULL;
    }
    memcpy(s->key, k->p, k->len);
    s->key_len = k->len;
    size_t o = 0;
    for (size_t i = 0; i < f->nlabels; i++) {
        s->values[i] = s->key + o;
        o += strlen(s->key + o) + 1;
    }
    s->hash = h;
    size_t i = h & (f->table_size - 1);
    s->next_hash = f->table[i];
    f->table[i] = s;
    s->prev = f->last;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    f->nseries++;
    return s;
}

/* Finds or creates the series and returns with the registry lock held —
 * for reading when it existed, for writing when it was just made — so the
 * caller updates it and then unlocks. NULL with no lock held when out of
 * memory: the update is then lost, which beats failing a request. */
static mx_series_t *series_get(mx_family_t *f, const char *const *values)
{
    mx_registry_t *r = f->reg;
    mx_key_t k;
    if (!key_build(&k, f, values))
        return NULL;
    uint64_t h = hash_bytes(k.p, k.len);
    pthread_rwlock_rdlock(&r->lock);
    mx_series_t *s = series_find(f, &k, h);
    if (!s) {
        pthread_rwlock_unlock(&r->lock);
        pthread_rwlock_wrlock(&r->lock);
        s = series_find(f, &k, h); /* another thread may have made it meanwhile */
        if (!s)
            s = series_add(f, &k, h);
        if (!s)
            pthread_rwlock_unlock(&r->lock);
    }
    key_done(&k);
    return s;
}

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

mx_family_t *mx_family_new(mx_registry_t *r, const char *name, const char *help, mx_type_t type,
                           const char *const *label_names, const double *buckets, size_t nbuckets)
{
    mx_family_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->reg = r;
    f->type = type;
    f->name = dup_str(name);
    f->help = dup_str(help);
    size_t n = 0;
    while (label_names && label_names[n])
        n++;
    f->label_names = calloc(n ? n : 1, sizeof *f->label_names);
    if (!f->name || !f->help || !f->label_names)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (!(f->label_names[i] = dup_str(label_names[i])))
            goto oom;
        f->nlabels++;
    }
    if (type == MX_HISTOGRAM && nbuckets) {
        f->buckets = malloc(nbuckets * sizeof *f->buckets);
        if (!f->buckets)
            goto oom;
        memcpy(f->buckets, buckets, nbuckets * sizeof *f->buckets);
        f->nbuckets = nbuckets;
    }
    pthread_rwlock_wrlock(&r->lock);
    if (r->last)
        r->last->next = f;
    else
        r->first = f;
    r->last = f;
    /* A family without labels has exactly one series: make it now, so it
     * renders as 0 from the start instead of appearing on first use. */
    if (f->nlabels == 0) {
        mx_key_t k;
        k.p = k.stack;
        k.len = 0;
        series_add(f, &k, hash_bytes(k.p, 0));
    }
    pthread_rwlock_unlock(&r->lock);
    return f;
oom:
    family_free(f);
    return NULL;
}

/* ---- updates ---- */

/* The updates themselves: atomics, under the registry lock (the lookups
 * below) or a handle's guarantee that the series stays (mx_series). */
static void series_add_value(mx_series_t *s, double v)
{
    if (s->family->type == MX_COUNTER && !(v >= 0.0))
        return; /* counters only go up; NaN is refused too */
    atomic_add_double(&s->value_bits, v);
}

static void series_set_value(mx_series_t *s, double v)
{
    atomic_store_explicit(&s->value_bits, bits_of(v), memory_order_relaxed);
}

static void series_observe(mx_series_t *s, double v)
{
    const mx_family_t *f = s->family;
    if (f->type != MX_HISTOGRAM || isnan(v))
        return;
    /* Buckets are few (a dozen); a linear scan beats a binary search. */
    for (size_t i = 0; i < f->nbuckets; i++) {
        if (v <= f->buckets[i]) {
            atomic_fetch_add_explicit(&s->bucket_counts[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_add_double(&s->value_bits, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

void mx_counter_add(mx_family_t *f, const char *const *label_values, double v)
{
    if (!f || !(v >= 0.0))
        return;
    mx_series_t *s = series_get(f, label_values);
    if (!s)
        return;
    series_add_value(s, v);
    pthread_rwlock_unlock(&f->reg->lock);
}

void mx_gauge_set(mx_family_t *f, const char *const *label_values, double v)
{
    if (!f)
        return;
    mx_series_t *s = series_get(f, label_values);
    if (!s)
        return;
    series_set_value(s, v);
    pthread_rwlock_unlock(&f->reg->lock);
}

void mx_gauge_add(mx_family_t *f, const char *const *label_values, double v)
{
    if (!f)
        return;
    mx_series_t *s = series_get(f, label_values);
    if (!s)
        return;
    series_add_value(s, v);
    pthread_rwlock_unlock(&f->reg->lock);
}

void mx_histogram_observe(mx_family_t *f, const char *const *label_values, double v)
{
    if (!f || f->type != MX_HISTOGRAM || isnan(v))
        return;
    mx_series_t *s = series_get(f, label_values);
    if (!s)
        return;
    series_observe(s, v);
    pthread_rwlock_unlock(&f->reg->lock);
}

mx_series_t *mx_series(mx_family_t *f, const char *const *label_values)
{
    if (!f)
        return NULL;
    mx_series_t *s = series_get(f, label_values);
    if (s)
        pthread_rwlock_unlock(&f->reg->lock);
    return s;
}

void mx_series_add(mx_series_t *s, double v)
{
    if (s)
        series_add_value(s, v);
}

void mx_series_set(mx_series_t *s, double v)
{
    if (s)
        series_set_value(s, v);
}

void mx_series_observe(mx_series_t *s, double v)
{
    if (s)
        series_observe(s, v);
}

void mx_family_remove_first_label(mx_family_t *f, const char *value)
{
    if (!f || f->nlabels == 0 || !value)
        return;
    pthread_rwlock_wrlock(&f->reg->lock);
    for (mx_series_t *s = f->first, *n; s; s = n) {
        n = s->next;
        if (strcmp(s->values[0], value) != 0)
            continue;
        mx_series_t **pp = &f->table[s->hash & (f->table_size - 1)];
        while (*pp != s)
            pp = &(*pp)->next_hash;
        *pp = s->next_hash;
        if (s->prev)
            s->prev->next = s->next;
        else
            f->first = s->next;
        if (s->next)
            s->next->prev = s->prev;
        else
            f->last = s->prev;
        f->nseries--;
        series_free(s);
    }
    pthread_rwlock_unlock(&f->reg->lock);
}

/* ---- rendering ---- */

/* Escapes for HELP text (backslash, newline) or label values (also '"'). */
static void buf_escaped(cm_buf_t *b, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            cm_buf_append(b, "\\\\", 2);
        else if (*p == '\n')
            cm_buf_append(b, "\\n", 2);
        else if (*p == '"' && quote)
            cm_buf_append(b, "\\\"", 2);
        else
            cm_buf_append(b, p, 1);
    }
}

/* A double as Prometheus parses it (Go's strconv.ParseFloat): whole values
 * up to 2^53 as plain integers, the rest in the shortest %g form that
 * reads back exactly, infinities and NaN spelled as the format wants. */
static void format_double(char out[32], double v)
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0.0) {
        strcpy(out, "0"); /* also -0 */
        return;
    }
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        snprintf(out, 32, "%.0f", v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            return;
    }
}

static void buf_double(cm_buf_t *b, double v)
{
    char tmp[32];
    format_double(tmp, v);
    cm_buf_str(b, tmp);
}

/* NAME{labels[,le="x"]} — braces omitted when there is nothing inside. */
static void put_series_name(cm_buf_t *b, const mx_family_t *f, const mx_series_t *s,
                            const char *suffix, const char *le)
{
    cm_buf_str(b, f->name);
    cm_buf_str(b, suffix);
    if (f->nlabels == 0 && !le)
        return;
    cm_buf_append(b, "{", 1);
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i)
            cm_buf_append(b, ",", 1);
        cm_buf_str(b, f->label_names[i]);
        cm_buf_append(b, "=\"", 2);
        buf_escaped(b, s->values[i], true);
        cm_buf_append(b, "\"", 1);
    }
    if (le) {
        if (f->nlabels)
            cm_buf_append(b, ",", 1);
        cm_buf_str(b, "le=\"");
        cm_buf_str(b, le);
        cm_buf_append(b, "\"", 1);
    }
    cm_buf_append(b, "}", 1);
}

static void render_family(cm_buf_t *b, const mx_family_t *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    cm_buf_str(b, "# HELP ");
    cm_buf_str(b, f->name);
    cm_buf_append(b, " ", 1);
    buf_escaped(b, f->help, false);
    cm_buf_str(b, "\n# TYPE ");
    cm_buf_str(b, f->name);
    cm_buf_append(b, " ", 1);
    cm_buf_str(b, type_names[f->type]);
    cm_buf_append(b, "\n", 1);
    for (const mx_series_t *s = f->first; s; s = s->next) {
        double v = double_of(atomic_load_explicit(&s->value_bits, memory_order_relaxed));
        if (f->type != MX_HISTOGRAM) {
            put_series_name(b, f, s, "", NULL);
            cm_buf_append(b, " ", 1);
            buf_double(b, v);
            cm_buf_append(b, "\n", 1);
            continue;
        }
        /* Read the total first: observations racing with the render may
         * land in a bucket after we read it, so the +Inf bucket is the
         * larger of the count and the cumulative sum, keeping the buckets
         * monotonic as Prometheus requires. */
        uint64_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
        uint64_t cum = 0;
        for (size_t i = 0; i < f->nbuckets; i++) {
            cum += atomic_load_explicit(&s->bucket_counts[i], memory_order_relaxed);
            char le[32];
            format_double(le, f->buckets[i]);
            put_series_name(b, f, s, "_bucket", le);
            cm_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
        if (count < cum)
            count = cum;
        put_series_name(b, f, s, "_bucket", "+Inf");
        cm_buf_printf(b, " %llu\n", (unsigned long long)count);
        put_series_name(b, f, s, "_sum", NULL);
        cm_buf_append(b, " ", 1);
        buf_double(b, v);
        cm_buf_append(b, "\n", 1);
        put_series_name(b, f, s, "_count", NULL);
        cm_buf_printf(b, " %llu\n", (unsigned long long)count);
    }
}

char *mx_registry_render(mx_registry_t *r, size_t *len)
{
    cm_buf_t b = {0};
    cm_buf_reserve(&b, 4096);
    pthread_rwlock_rdlock(&r->lock);
    for (const mx_family_t *f = r->first; f; f = f->next)
        render_family(&b, f);
    pthread_rwlock_unlock(&r->lock);
    if (len)
        *len = b.len;
    return cm_buf_take(&b);
}
