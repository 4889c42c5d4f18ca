/*
 * autoscale.c — Knative's Pod Autoscaler (KPA) decision rule for one
 * revision, as pure arithmetic over injected timestamps.
 *
 * The serving layer records the observed concurrency (in flight + queued)
 * whenever it changes and at least once a second, and asks for a decision
 * on its own tick. Nothing here reads a clock, takes a lock or allocates
 * after creation (except when a config change resizes the history), so the
 * rule is unit-tested on synthetic traffic (tests/autoscale/).
 *
 * History is a ring of one-second buckets, one slot per second of the
 * stable window. A bucket keeps the sum and count of the samples recorded
 * in its second, so its value is their average; a slot whose stamp is not
 * the second asked for is a second without samples and counts as zero.
 * Averages divide by the window length in seconds — or by the seconds since
 * creation when the scaler is younger than the window, so a revision one
 * second old with one request in flight is not averaged down by 59 seconds
 * it never lived (Knative's metric windows start at the first sample too).
 *
 * Panic follows Knative: the panic window's desired count, divided by the
 * ready count (at least 1), at or above panic_threshold enters or extends
 * panic; panic ends once a whole stable window has gone by since that last
 * held. While panicking the decision never goes down (it is the largest
 * count wanted since panic began). Knative's scale-up/scale-down rate limits
 * (max-scale-up-rate, max-scale-down-rate) are not modelled.
 */
#include "autoscale/autoscale.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000ull
#define STABLE_WINDOW_MIN_NS (6 * NS_PER_S)
#define STABLE_WINDOW_MAX_NS (3600 * NS_PER_S)

typedef struct as_bucket {
    uint64_t sec;  /* which second this slot holds; valid only when n > 0 */
    double sum;    /* sum of samples recorded in that second */
    uint32_t n;    /* how many */
} as_bucket_t;

struct as_scaler {
    as_config_t cfg;
    uint64_t created_ns;
    as_bucket_t *ring; /* cap slots, slot = sec % cap */
    size_t cap;        /* stable window in seconds */
    bool have_samples;
    uint64_t newest_sec;      /* newest second recorded */
    bool any_traffic;
    uint64_t last_traffic_ns; /* last sample with concurrency > 0 */
    bool panicking;
    uint64_t panic_last_ns;   /* last decision over the panic threshold */
    uint32_t max_panic;       /* highest count wanted since panic began */
};

void as_config_default(as_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->target = 1.0;
    c->stable_window_ns = 60 * NS_PER_S;
    c->panic_window_pct = 10.0;
    c->panic_threshold = 2.0;
    c->min_scale = 0;
    c->max_scale = 0;
    c->initial_scale = 1;
    c->scale_to_zero_grace_ns = 0;
}

/* Ranges are Knative's (config-autoscaler validation), so a manifest that
 * Knative accepts is accepted here and one it refuses is refused. */
const char *as_config_check(const as_config_t *c)
{
    if (!(c->target >= 0.01) || !isfinite(c->target))
        return "autoscaling.knative.dev/target must be a number >= 0.01";
    if (c->stable_window_ns < STABLE_WINDOW_MIN_NS || c->stable_window_ns > STABLE_WINDOW_MAX_NS)
        return "autoscaling.knative.dev/window must be between 6s and 1h";
    if (c->stable_window_ns % NS_PER_S != 0)
        return "autoscaling.knative.dev/window must be a whole number of seconds";
    if (!(c->panic_window_pct >= 1.0 && c->panic_window_pct <= 100.0))
        return "autoscaling.knative.dev/panic-window-percentage must be between 1 and 100";
    if (!(c->panic_threshold >= 1.1 && c->panic_threshold <= 10.0))
        return "autoscaling.knative.dev/panic-threshold-percentage must be between 110 and 1000";
    if (c->max_scale != 0 && c->min_scale > c->max_scale)
        return "autoscaling.knative.dev/min-scale must not exceed max-scale";
    return NULL;
}

static size_t window_secs(const as_config_t *c)
{
    uint64_t s = c->stable_window_ns / NS_PER_S;
    if (s < 1)
        s = 1;
    if (s > STABLE_WINDOW_MAX_NS / NS_PER_S)
        s = STABLE_WINDOW_MAX_NS / NS_PER_S;
    return (size_t)s;
}

static size_t panic_secs(const as_config_t *c)
{
    double p = (double)window_secs(c) * c->panic_window_pct / 100.0;
    if (!(p >= 1.0))
        return 1;
    size_t s = (size_t)llround(p);
    return s > window_secs(c) ? window_secs(c) : s;
}

as_scaler_t *as_scaler_new(const as_config_t *c, uint64_t now_ns)
{
    as_scaler_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *c;
    s->created_ns = now_ns;
    s->cap = window_secs(c);
    s->ring = calloc(s->cap, sizeof *s->ring);
    if (!s->ring) {
        free(s);
        return NULL;
    }
    return s;
}

void as_scaler_free(as_scaler_t *s)
{
    if (!s)
        return;
    free(s->ring);
    free(s);
}

/* A new window length means a new ring size; the buckets still inside the
 * new window move over, so a revision's settings can change without it
 * forgetting its traffic. If the allocation fails the old ring (and its
 * size) stays, which only makes the window's history shorter or longer than
 * asked until memory is available again — never wrong indexing. */
void as_scaler_configure(as_scaler_t *s, const as_config_t *c)
{
    size_t cap = window_secs(c);
    if (cap != s->cap) {
        as_bucket_t *ring = calloc(cap, sizeof *ring);
        if (ring) {
            for (size_t i = 0; i < s->cap; i++) {
                const as_bucket_t *b = &s->ring[i];
                if (b->n == 0 || b->sec + cap <= s->newest_sec)
                    continue;
                ring[b->sec % cap] = *b;
            }
            free(s->ring);
            s->ring = ring;
            s->cap = cap;
        }
    }
    s->cfg = *c;
}

void as_scaler_record(as_scaler_t *s, uint64_t now_ns, double concurrency)
{
    if (!(concurrency > 0.0) || !isfinite(concurrency))
        concurrency = 0.0; /* NaN or negative from a caller bug reads as idle */
    uint64_t sec = now_ns / NS_PER_S;
    if (s->have_samples && sec + s->cap <= s->newest_sec)
        return; /* older than anything the window can still see */
    as_bucket_t *b = &s->ring[sec % s->cap];
    if (b->n == 0 || b->sec != sec) {
        if (b->n != 0 && b->sec > sec)
            return; /* the slot already holds a newer second */
        b->sec = sec;
        b->sum = 0.0;
        b->n = 0;
    }
    b->sum += concurrency;
    b->n++;
    if (!s->have_samples || sec > s->newest_sec)
        s->newest_sec = sec;
    s->have_samples = true;
    if (concurrency > 0.0) {
        if (!s->any_traffic || now_ns > s->last_traffic_ns)
            s->last_traffic_ns = now_ns;
        s->any_traffic = true;
    }
}

/* Mean over the `secs` seconds ending with the second of now_ns (that
 * second included), seconds without samples counting as zero. */
static double window_avg(const as_scaler_t *s, uint64_t now_ns, size_t secs)
{
    uint64_t cur = now_ns / NS_PER_S;
    uint64_t born = s->created_ns / NS_PER_S;
    uint64_t lived = cur >= born ? cur - born + 1 : 1;
    if (secs > s->cap)
        secs = s->cap;
    if ((uint64_t)secs > lived)
        secs = (size_t)lived;
    double sum = 0.0;
    for (size_t i = 0; i < secs && i <= cur; i++) {
        uint64_t sec = cur - i;
        const as_bucket_t *b = &s->ring[sec % s->cap];
        if (b->n != 0 && b->sec == sec)
            sum += b->sum / b->n;
    }
    return sum / (double)secs;
}

/* ceil(avg / target), forgiving the last bits of float error so that an
 * average of exactly 2 targets does not round up to 3. */
static uint32_t pods_for(double avg, double target)
{
    double x = avg / target;
    if (!(x > 0.0))
        return 0;
    double c = ceil(x - 1e-9);
    if (c < 1.0)
        c = 1.0; /* any traffic at all wants an instance */
    if (c > (double)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)c;
}

as_decision_t as_scaler_decide(as_scaler_t *s, uint64_t now_ns, uint32_t ready)
{
    const as_config_t *c = &s->cfg;
    as_decision_t d = {0};
    d.stable_avg = window_avg(s, now_ns, window_secs(c));
    d.panic_avg = window_avg(s, now_ns, panic_secs(c));
    uint32_t want_stable = pods_for(d.stable_avg, c->target);
    uint32_t want_panic = pods_for(d.panic_avg, c->target);

    double ready_f = ready > 0 ? (double)ready : 1.0;
    bool over = want_panic > 0 && (double)want_panic / ready_f >= c->panic_threshold;
    if (over) {
        if (!s->panicking) {
            s->panicking = true;
            s->max_panic = 0;
        }
        s->panic_last_ns = now_ns;
    } else if (s->panicking && now_ns >= s->panic_last_ns &&
               now_ns - s->panic_last_ns >= c->stable_window_ns) {
        s->panicking = false;
        s->max_panic = 0;
    }

    uint32_t want = want_stable;
    if (s->panicking) {
        /* Provision for whichever window asks more, and never go down
         * while the burst may still be arriving. */
        uint32_t p = want_panic > want_stable ? want_panic : want_stable;
        if (p > s->max_panic)
            s->max_panic = p;
        want = s->max_panic;
    }

    /* Zero only after a whole stable window of zero samples (want_stable is
     * 0 exactly then) and, for a revision that still has instances, the
     * grace period since its last request. */
    if (want == 0 && ready > 0 && s->any_traffic && c->scale_to_zero_grace_ns > 0 &&
        (now_ns < s->last_traffic_ns || now_ns - s->last_traffic_ns < c->scale_to_zero_grace_ns))
        want = 1;

    /* initial-scale holds for the first stable window; traffic may ask more. */
    bool young = now_ns < s->created_ns || now_ns - s->created_ns < c->stable_window_ns;
    if (young && want < c->initial_scale)
        want = c->initial_scale;

    if (want < c->min_scale)
        want = c->min_scale;
    if (c->max_scale != 0 && want > c->max_scale)
        want = c->max_scale;

    d.desired = want;
    d.panic = s->panicking;
    return d;
}
