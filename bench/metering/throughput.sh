#!/usr/bin/env bash
# bench/metering/throughput.sh — what metering costs the data plane: hello-world
# requests/s with metering on and off, from the same build in the same run.
# Runs are interleaved (on, off, on, off, ...) and each figure is the median
# of RUNS runs; the ratio is taken between those medians.
#
#   bash bench/metering/throughput.sh [RUNS] [SECONDS]     (default 3 runs of 10 s)
#
# Env: WASMFN (default build/wasmfn), HELLO (default build/examples/hello.wasm),
# WRK_THREADS (2), WRK_CONNS (32).
set -eu
RUNS=${1:-3}
SECS=${2:-10}
WASMFN=${WASMFN:-build/wasmfn}
HELLO=${HELLO:-build/examples/hello.wasm}
T=${WRK_THREADS:-2}
C=${WRK_CONNS:-32}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT

# run MODE: starts a daemon (MODE "on" or "off"), deploys hello, prints req/s.
run() {
    local flags=()
    [ "$1" = off ] && flags=(--no-metering)
    rm -rf "$tmp/data"
    "$WASMFN" serve --data "$tmp/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 "${flags[@]}" \
        >"$tmp/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q 'admin API on' "$tmp/log" && break; sleep 0.05; done
    local d=$(grep -o 'data plane on [^,]*' "$tmp/log" | awk '{print $4}')
    WASMFN_API=$(grep -o 'admin API on .*' "$tmp/log" | awk '{print $4}') \
        WASMFN_TOKEN=$(cat "$tmp/data/admin.token") "$WASMFN" deploy hello "$HELLO" -q >/dev/null
    wrk -t"$T" -c"$C" -d1s "$d/fn/hello/" >/dev/null 2>&1   # warm-up
    wrk -t"$T" -c"$C" -d"${SECS}s" "$d/fn/hello/" | awk '/Requests\/sec/ {print $2}'
    kill -TERM $pid
    wait $pid 2>/dev/null || true
    pid=
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

on=()
off=()
for i in $(seq "$RUNS"); do
    on+=("$(run on)")
    off+=("$(run off)")
done
mon=$(printf '%s\n' "${on[@]}" | median)
moff=$(printf '%s\n' "${off[@]}" | median)
echo "metering on:  ${on[*]} req/s (median $mon)"
echo "metering off: ${off[*]} req/s (median $moff)"
awk -v a="$mon" -v b="$moff" 'BEGIN {printf "on/off = %.3f (metering costs %.1f%% of throughput)\n", a/b, (1-a/b)*100}'
