/*
 * rules.c — a ScaledObject's decision at each poll (keda.h, kd_decide):
 * KEDA's activation and cooldown around the Horizontal Pod Autoscaler's
 * arithmetic, on instances instead of pods. Pure: the caller gives the
 * time and the trigger readings, so tests drive every case.
 *
 * KEDA splits the work in two, and so does this file:
 *   - activation (KEDA itself): the target is active while any trigger's
 *     value is above its activation threshold; an inactive target goes to
 *     idleReplicaCount (or 0) once cooldownPeriod has passed since the
 *     last active poll (initialCooldownPeriod after creation, if it never
 *     was), and an active one at 0 starts;
 *   - replicas (the HPA): each trigger asks for ceil(value / target)
 *     (AverageValue and Utilization) or ceil(replicas * value / target)
 *     (Value); the largest wins, within [max(min, 1), max], then the
 *     behavior's stabilization windows: scaling up goes no higher than the
 *     lowest recommendation of the scale-up window, scaling down no lower
 *     than the highest of the scale-down window (300 s by default, as the
 *     HPA has it); then the behavior's policies limit how far one poll
 *     may go from the count at the start of each policy's period (the
 *     HPA's rate limits: by default up by 100% or 4, whichever is more,
 *     per 15 s).
 * A failed read keeps that trigger's last activity and value (KEDA keeps
 * the replicas it has on errors); after fallback.failureThreshold failures
 * in a row of any trigger the target gets fallback.replicas (or, by
 * fallback.behavior, the count it has, or the larger or smaller of the two).
 * With advanced.scalingModifiers, the formula over the triggers' values
 * makes one composite value, which takes the place of the triggers for
 * activity and replicas (its own target and metric type); a poll in which
 * a trigger fails leaves count and activity as they are (no formula can be
 * computed), until fallback's threshold.
 * The HPA's 10% tolerance band is not applied: a value of 31 against a
 * target of 10 asks for 4 even from 3.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keda/keda.h"

#define NS 1000000000ull
#define MAX_RECS 4096u

static uint32_t longest_period_s(const kd_scaledobject_t *so)
{
    uint32_t p = 0;
    for (uint32_t i = 0; i < so->up.npolicies; i++)
        if (so->up.policies[i].period_s > p) p = so->up.policies[i].period_s;
    for (uint32_t i = 0; i < so->down.npolicies; i++)
        if (so->down.policies[i].period_s > p) p = so->down.policies[i].period_s;
    return p;
}

int kd_state_init(kd_state_t *st, const kd_scaledobject_t *so, uint64_t now_ns)
{
    memset(st, 0, sizeof *st);
    st->created_ns = now_ns;
    st->ntriggers = so->ntriggers;
    uint32_t n = so->ntriggers ? so->ntriggers : 1;
    uint32_t window = so->up.window_s > so->down.window_s ? so->up.window_s : so->down.window_s;
    uint32_t polling = so->polling_s ? so->polling_s : 1;
    uint64_t cap = (uint64_t)window / polling + 2;
    st->recs_cap = cap > MAX_RECS ? MAX_RECS : (uint32_t)cap;
    /* At most one change per poll within the longest period. */
    cap = (uint64_t)longest_period_s(so) / polling + 2;
    st->changes_cap = cap > MAX_RECS ? MAX_RECS : (uint32_t)cap;
    st->failures = calloc(n, sizeof *st->failures);
    st->trig_active = calloc(n, sizeof *st->trig_active);
    st->trig_value = calloc(n, sizeof *st->trig_value);
    st->trig_want = calloc(n, sizeof *st->trig_want);
    st->recs = calloc(st->recs_cap, sizeof *st->recs);
    st->changes = calloc(st->changes_cap, sizeof *st->changes);
    if (!st->failures || !st->trig_active || !st->trig_value || !st->trig_want || !st->recs ||
        !st->changes) {
        kd_state_free(st);
        return -1;
    }
    return 0;
}

void kd_state_free(kd_state_t *st)
{
    free(st->failures);
    free(st->trig_active);
    free(st->trig_value);
    free(st->trig_want);
    free(st->recs);
    free(st->changes);
    memset(st, 0, sizeof *st);
}

void kd_state_carry(kd_state_t *to, const kd_state_t *from)
{
    to->replicas = from->replicas;
    to->decided = from->decided;
    to->last_active_ns = from->last_active_ns;
    to->created_ns = from->created_ns;
    /* The newest of each history, as many as the new object keeps (its
     * windows and periods may be shorter; the next decision drops what
     * falls outside them). */
    uint32_t n = from->nrecs < to->recs_cap ? from->nrecs : to->recs_cap;
    memcpy(to->recs, from->recs + (from->nrecs - n), n * sizeof *to->recs);
    to->nrecs = n;
    n = from->nchanges < to->changes_cap ? from->nchanges : to->changes_cap;
    memcpy(to->changes, from->changes + (from->nchanges - n), n * sizeof *to->changes);
    to->nchanges = n;
}

/* ceil(x), where x a hair above a whole number from floating-point error
 * (0.1 * 3 / 0.1) still counts as that number. Capped at the most
 * replicas there can be. */
static uint32_t ceil_replicas(double x)
{
    if (!(x > 0)) return 0;
    if (x >= KD_MAX_REPLICAS) return KD_MAX_REPLICAS;
    return (uint32_t)ceil(x - 1e-9);
}

/* Replicas a metric of this type and target asks for at value. */
static uint32_t metric_want(kd_metric_type_t type, double target, double value, uint32_t current)
{
    if (type == KD_VALUE) return ceil_replicas((double)(current ? current : 1) * value / target);
    return ceil_replicas(value / target);
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* What the fallback gives (spec.fallback.behavior) when the target has
 * cur, within [min, max]. */
static uint32_t fallback_replicas(const kd_scaledobject_t *so, uint32_t cur)
{
    uint32_t f = so->fallback_replicas, n = f;
    switch (so->fallback_behavior) {
    case KD_FALLBACK_STATIC: n = f; break;
    case KD_FALLBACK_CURRENT: n = cur; break;
    case KD_FALLBACK_CURRENT_IF_HIGHER: n = cur > f ? cur : f; break;
    case KD_FALLBACK_CURRENT_IF_LOWER: n = cur < f ? cur : f; break;
    }
    return clamp(n, so->min_replicas, so->max_replicas);
}

/* Forgets recommendations older than the longer window, then adds rec. */
static void recs_push(const kd_scaledobject_t *so, kd_state_t *st, uint64_t now, uint32_t rec)
{
    uint64_t window = (uint64_t)(so->up.window_s > so->down.window_s ? so->up.window_s
                                                                      : so->down.window_s) * NS;
    uint32_t drop = 0;
    while (drop < st->nrecs && now - st->recs[drop].at_ns > window) drop++;
    if (drop == 0 && st->nrecs == st->recs_cap) drop = 1; /* full: the oldest goes */
    if (drop) {
        memmove(st->recs, st->recs + drop, (st->nrecs - drop) * sizeof *st->recs);
        st->nrecs -= drop;
    }
    if (st->nrecs < st->recs_cap) st->recs[st->nrecs++] = (struct kd_rec){now, rec};
}

static uint32_t stabilize(const kd_scaledobject_t *so, const kd_state_t *st, uint64_t now,
                          uint32_t cur, uint32_t rec)
{
    uint32_t up = rec, down = rec;
    for (uint32_t i = 0; i < st->nrecs; i++) {
        uint64_t age = now - st->recs[i].at_ns;
        if (age < (uint64_t)so->up.window_s * NS && st->recs[i].n < up) up = st->recs[i].n;
        if (age < (uint64_t)so->down.window_s * NS && st->recs[i].n > down) down = st->recs[i].n;
    }
    uint32_t next = cur;
    if (next < up) next = up;
    if (next > down) next = down;
    return next;
}

/* ---- the policies: the HPA's rate limits ------------------------------------ */

/* Forgets changes older than the longest policy period, then records
 * one (delta != 0). */
static void changes_push(const kd_scaledobject_t *so, kd_state_t *st, uint64_t now, int32_t delta)
{
    uint64_t period = (uint64_t)longest_period_s(so) * NS;
    uint32_t drop = 0;
    while (drop < st->nchanges && now - st->changes[drop].at_ns >= period) drop++;
    if (drop == 0 && st->nchanges == st->changes_cap) drop = 1;
    if (drop) {
        memmove(st->changes, st->changes + drop, (st->nchanges - drop) * sizeof *st->changes);
        st->nchanges -= drop;
    }
    if (delta && st->nchanges < st->changes_cap)
        st->changes[st->nchanges++] = (struct kd_change){now, delta};
}

/* The count at the start of a policy's period: the current one less what
 * was added and plus what was removed within the last period_s. */
static int64_t period_start(const kd_state_t *st, uint64_t now, uint32_t period_s, uint32_t cur)
{
    int64_t n = cur;
    for (uint32_t i = 0; i < st->nchanges; i++)
        if (now - st->changes[i].at_ns < (uint64_t)period_s * NS) n -= st->changes[i].delta;
    return n < 0 ? 0 : n;
}

/* The most instances the scale-up policies allow now: each policy proposes
 * its period's start plus value (Pods) or times 1 + value% rounded up
 * (Percent, so that a small count still grows); Max takes the largest
 * proposal, Min the smallest, Disabled none. Never below cur: a scale-up
 * does not turn into a scale-down. */
static uint32_t up_limit(const kd_rules_t *r, const kd_state_t *st, uint64_t now, uint32_t cur)
{
    if (r->select == KD_SELECT_DISABLED || r->npolicies == 0) return cur;
    bool min = r->select == KD_SELECT_MIN;
    uint64_t limit = min ? UINT64_MAX : 0;
    for (uint32_t i = 0; i < r->npolicies; i++) {
        const kd_policy_t *p = &r->policies[i];
        uint64_t start = (uint64_t)period_start(st, now, p->period_s, cur);
        uint64_t proposed = p->percent ? (start * (100 + (uint64_t)p->value) + 99) / 100
                                       : start + p->value;
        limit = min ? (proposed < limit ? proposed : limit) : (proposed > limit ? proposed : limit);
    }
    if (limit < cur) limit = cur;
    return limit > KD_MAX_REPLICAS ? KD_MAX_REPLICAS : (uint32_t)limit;
}

/* The fewest instances the scale-down policies allow now: each proposes
 * its period's start less value (Pods) or times 1 - value% rounded down
 * (Percent); Max (the most change) takes the smallest, Min the largest.
 * Never above cur. */
static uint32_t down_limit(const kd_rules_t *r, const kd_state_t *st, uint64_t now, uint32_t cur)
{
    if (r->select == KD_SELECT_DISABLED || r->npolicies == 0) return cur;
    bool min = r->select == KD_SELECT_MIN;
    int64_t limit = min ? INT64_MIN : INT64_MAX;
    for (uint32_t i = 0; i < r->npolicies; i++) {
        const kd_policy_t *p = &r->policies[i];
        int64_t start = period_start(st, now, p->period_s, cur);
        int64_t proposed = p->percent ? start * (100 - (int64_t)p->value) / 100
                                      : start - (int64_t)p->value;
        limit = min ? (proposed > limit ? proposed : limit) : (proposed < limit ? proposed : limit);
    }
    if (limit > (int64_t)cur) limit = cur;
    return limit < 0 ? 0 : (uint32_t)limit;
}

/* The stabilized recommendation, within what the policies allow. */
static uint32_t rate_limit(const kd_scaledobject_t *so, const kd_state_t *st, uint64_t now,
                           uint32_t cur, uint32_t next)
{
    if (next > cur) {
        uint32_t lim = up_limit(&so->up, st, now, cur);
        if (next > lim) next = lim;
    } else if (next < cur) {
        uint32_t lim = down_limit(&so->down, st, now, cur);
        if (next < lim) next = lim;
    }
    return next;
}

uint32_t kd_decide(const kd_scaledobject_t *so, kd_state_t *st, const kd_sample_t *samples,
                   uint64_t now_ns)
{
    bool active = false, fallback = false, failed = false;
    uint32_t cur = st->replicas, want = 0;
    for (uint32_t i = 0; i < so->ntriggers && i < st->ntriggers; i++) {
        const kd_trigger_t *t = &so->triggers[i];
        failed |= !samples[i].ok;
        if (samples[i].ok) {
            st->failures[i] = 0;
            st->trig_value[i] = samples[i].value;
            st->trig_active[i] = samples[i].value > t->activation;
            st->trig_want[i] = metric_want(t->metric_type, t->target, samples[i].value, cur);
        } else {
            if (st->failures[i] < UINT32_MAX) st->failures[i]++;
            if (so->fallback && st->failures[i] >= so->fallback_failures) fallback = true;
        }
        active |= st->trig_active[i];
        if (st->trig_want[i] > want) want = st->trig_want[i];
    }
    if (so->formula && failed && !fallback && st->decided) {
        /* scalingModifiers with a trigger that did not read: KEDA cannot
         * compute the formula, the HPA gets no metric and keeps the count
         * it has; so does this, and the activity it had. */
        st->fallback_on = false;
        return cur;
    }
    if (so->formula && st->ntriggers == so->ntriggers) {
        /* scalingModifiers: the composite value alone decides (before the
         * first decision, a trigger that never read counts as 0). */
        double v = kd_formula_eval(so->formula, st->trig_value);
        st->composite = v;
        active = v > so->mod_activation;
        want = metric_want(so->mod_metric, so->mod_target, v, cur);
    }
    if (active) st->last_active_ns = now_ns;
    st->active = active || fallback;
    st->fallback_on = fallback;

    uint32_t lo = so->min_replicas ? so->min_replicas : 1;
    uint32_t next;
    bool may_idle = so->idle_replicas >= 0 || so->min_replicas == 0;
    uint32_t idle = so->idle_replicas >= 0 ? (uint32_t)so->idle_replicas : 0;
    uint64_t since = st->last_active_ns ? st->last_active_ns : st->created_ns;
    uint64_t cool = (uint64_t)(st->last_active_ns ? so->cooldown_s : so->initial_cooldown_s) * NS;
    bool cooled = now_ns - since >= cool;
    if (fallback) {
        /* KEDA feeds the HPA a metric that asks for exactly this, so it is
         * a recommendation like any other (the scale-down window keeps it
         * for a while once the trigger reads again). */
        next = fallback_replicas(so, cur);
        recs_push(so, st, now_ns, next);
        changes_push(so, st, now_ns, (int32_t)next - (int32_t)cur);
    } else if (!active && may_idle && (cooled || (st->decided && cur <= idle))) {
        next = idle;
        st->nrecs = 0; /* the HPA is not running while idle */
        st->nchanges = 0;
    } else {
        uint32_t rec = clamp(want, lo, so->max_replicas);
        if (!st->decided || (may_idle && cur <= idle)) {
            /* Starting from idle: straight to what the triggers ask (KEDA
             * activates, then the HPA would need a period or more to get
             * there; an instance starts in microseconds). The HPA's
             * history starts here. */
            next = rec;
            st->nchanges = 0;
        } else {
            next = rate_limit(so, st, now_ns, cur, stabilize(so, st, now_ns, cur, rec));
            changes_push(so, st, now_ns, (int32_t)next - (int32_t)cur);
        }
        recs_push(so, st, now_ns, rec);
    }
    st->replicas = next;
    st->decided = true;
    return next;
}
