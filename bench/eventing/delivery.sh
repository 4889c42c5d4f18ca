#!/usr/bin/env bash
# bench/eventing/delivery.sh — event delivery to a function of the same
# daemon: a Redis stream of N entries, a RedisStreamSource whose sink is a
# Service running a trivial guest (examples/hello.c), timed from the apply
# until the consumer group has read and acknowledged every entry.
#
#   bash bench/eventing/delivery.sh [RUNS] [N]     (default 3 runs of 20,000 events)
#
# Prints, per run and as the median of the runs: events/s, the daemon's CPU
# time per event (user + system from /proc, steadier than events/s on a
# 2-CPU machine shared with the load generator), and the most TCP
# connections to the data plane's port seen during the run (sampled every
# 50 ms with ss): 0 when deliveries to a local function make no socket
# round trip. Not part of `make test`.
#
# Env: WASMFN (default build/wasmfn), HELLO (default
# build/examples/hello.wasm), TARGET (the source's backlog per delivery,
# default 10: with the Service's max-scale unset the parallelism cap is 10).
set -eu
BENCH_NAME=delivery
. "$(dirname "$0")/../lib.sh"
RUNS=${1:-3}
N=${2:-20000}
WASMFN=${WASMFN:-build/wasmfn}
HELLO=${HELLO:-build/examples/hello.wasm}
TARGET=${TARGET:-10}
for tool in redis-server redis-cli ss curl; do
    command -v $tool >/dev/null || die "$tool is missing (make deps)"
done
[ -x "$WASMFN" ] || die "$WASMFN not built"
[ -f "$HELLO" ] || die "$HELLO not built (make examples)"
tmp=$(mktemp -d)
trap 'stop_all; rm -rf "$tmp"' EXIT

rport=
for _ in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 20000))
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        >"$tmp/redis.log" 2>&1 &
    rpid=$!
    for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    if redis-cli -p "$p" ping >/dev/null 2>&1; then rport=$p; PIDS+=($rpid); break; fi
    kill -9 "$rpid" 2>/dev/null || true
done
[ -n "$rport" ] || die "cannot start redis-server"
R() { redis-cli -p "$rport" "$@"; }

# run I: a fresh daemon and stream; appends "EVENTS_PER_S CPU_US_PER_EVENT
# MAX_CONNS" to $tmp/results (not in a subshell, so that stop_all sees the
# daemon's pid however the run ends).
run() {
    local i=$1 data="$tmp/data-$1" stream="s$1"
    "$WASMFN" serve --data "$data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --tier interp \
        >"$tmp/log-$i" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    for _ in $(seq 100); do grep -q 'admin API on' "$tmp/log-$i" && break; sleep 0.05; done
    local d api token
    d=$(grep -o 'data plane on [^,]*' "$tmp/log-$i" | awk '{print $4}')
    api=$(grep -o 'admin API on .*' "$tmp/log-$i" | awk '{print $4}')
    token=$(cat "$data/admin.token")
    WASMFN_API=$api WASMFN_TOKEN=$token "$WASMFN" deploy hello "$HELLO" -q >/dev/null
    curl -fs -o /dev/null "$d/fn/hello/" || die "hello does not answer"
    seq 1 "$N" | awk -v s="$stream" '{ print "XADD " s " * n " $1 }' | R >/dev/null
    local doc='{"apiVersion":"sources.knative.dev/v1alpha1","kind":"RedisStreamSource","metadata":{"name":"bench","annotations":{"autoscaling.knative.dev/target":"'$TARGET'"}},"spec":{"address":"redis://127.0.0.1:'$rport'","stream":"'$stream'","group":"g","sink":{"ref":{"kind":"Service","name":"hello"}}}}'
    local dport=${d##*:} conns=0 c
    local cpu0 t0 t1 cpu1
    cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    t0=$(date +%s%N)
    curl -fs -o /dev/null -XPOST -H "Authorization: Bearer $token" "$api/v1/apply" -d "$doc"
    while :; do
        c=$(ss -Htn state established "( dport = :$dport )" | wc -l)
        ((c > conns)) && conns=$c
        local lag pend
        lag=$(R XINFO GROUPS "$stream" | awk 'f { print; exit } /^lag$/ { f = 1 }')
        pend=$(R XPENDING "$stream" g | head -1)
        [ "$lag" = 0 ] && [ "$pend" = 0 ] && break
        (( $(date +%s%N) - t0 > 300000000000 )) && die "run $i: not drained after 300 s (lag $lag, pending $pend)"
        sleep 0.05
    done
    t1=$(date +%s%N)
    cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    local delivered
    delivered=$(curl -s "$api/metrics" |
        awk '/^wasmfn_events_total\{source="bench".*outcome="delivered"/ { print $2 }')
    [ "${delivered%.*}" = "$N" ] || die "run $i: $delivered of $N delivered"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local tck
    tck=$(getconf CLK_TCK)
    local r
    r=$(awk -v n="$N" -v ns=$((t1 - t0)) -v cpu=$((cpu1 - cpu0)) -v tck="$tck" -v c="$conns" \
        'BEGIN { printf "%.0f %.1f %d\n", n / (ns / 1e9), cpu / tck / n * 1e6, c }')
    echo "$r" >>"$tmp/results"
    say "run $i: $(echo "$r" | awk '{ printf "%s events/s, %s us CPU per event, %s connections to the data plane", $1, $2, $3 }')"
}

say "$RUNS runs of $N events, $WASMFN, redis on $rport"
for i in $(seq 1 "$RUNS"); do run "$i"; done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
eps=$(awk '{ print $1 }' "$tmp/results" | median)
cpu=$(awk '{ print $2 }' "$tmp/results" | median)
conns=$(awk '{ print $3 }' "$tmp/results" | sort -n | tail -1)
echo "delivery: $N events to a local function, median of $RUNS: $eps events/s, $cpu us daemon CPU per event, at most $conns connections to the data plane"
