#!/usr/bin/env bash
# bench/metering/throughput.sh — what metering costs the data plane: hello-world
# requests/s with metering on and off, from the same build in the same run.
# Runs are interleaved (on, off, off, on, ...) and each figure is the median
# of RUNS runs; the ratio is taken between those medians.
#
#   bash bench/metering/throughput.sh [RUNS] [SECONDS]     (default 3 runs of 10 s)
#
# Env: WASMFN (default build/wasmfn), HELLO (default build/examples/hello.wasm),
# WRK_THREADS (2), WRK_CONNS (16, as in bench/compare), PIN=1 to pin the daemon
# to CPU 1 (one worker) and wrk to CPU 0 with taskset, which removes most of
# the run-to-run noise of a 2-CPU machine where both compete for the cores.
set -eu
RUNS=${1:-3}
SECS=${2:-10}
WASMFN=${WASMFN:-build/wasmfn}
HELLO=${HELLO:-build/examples/hello.wasm}
T=${WRK_THREADS:-2}
C=${WRK_CONNS:-16}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT

# run MODE: starts a daemon (MODE "on" or "off"), deploys hello, prints req/s.
run() {
    local flags=()
    [ "$1" = off ] && flags=(--no-metering)
    rm -rf "$tmp/data"
    local pin_d=() pin_w=()
    if [ "${PIN:-0}" = 1 ]; then
        pin_d=(taskset -c 1)
        pin_w=(taskset -c 0)
        flags+=(--workers 1)
    fi
    "${pin_d[@]}" "$WASMFN" serve --data "$tmp/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        "${flags[@]}" >"$tmp/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q 'admin API on' "$tmp/log" && break; sleep 0.05; done
    local d=$(grep -o 'data plane on [^,]*' "$tmp/log" | awk '{print $4}')
    WASMFN_API=$(grep -o 'admin API on .*' "$tmp/log" | awk '{print $4}') \
        WASMFN_TOKEN=$(cat "$tmp/data/admin.token") "$WASMFN" deploy hello "$HELLO" -q >/dev/null
    "${pin_w[@]}" wrk -t"$T" -c"$C" -d1s "$d/fn/hello/" >/dev/null 2>&1   # warm-up
    # The daemon's CPU time (user + system, in clock ticks) around the run,
    # divided by the requests served: steadier than req/s on a 2-CPU machine
    # where wrk competes for the same cores.
    local t0 t1 out
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    out=$("${pin_w[@]}" wrk -t"$T" -c"$C" -d"${SECS}s" "$d/fn/hello/")
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    local rps reqs
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$rps $(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}')"
    kill -TERM $pid
    wait $pid 2>/dev/null || true
    pid=
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

on=()
off=()
con=()
coff=()
# The order alternates (on/off, then off/on) so that a drift over the run
# or an advantage of going first or second does not land on one side.
for i in $(seq "$RUNS"); do
    for mode in $( [ $((i % 2)) = 1 ] && echo "on off" || echo "off on"); do
        read -r r c <<<"$(run $mode)"
        if [ "$mode" = on ]; then on+=("$r"); con+=("$c"); else off+=("$r"); coff+=("$c"); fi
    done
done
mon=$(printf '%s\n' "${on[@]}" | median)
moff=$(printf '%s\n' "${off[@]}" | median)
mcon=$(printf '%s\n' "${con[@]}" | median)
mcoff=$(printf '%s\n' "${coff[@]}" | median)
echo "metering on:  ${on[*]} req/s (median $mon); daemon CPU ${con[*]} us/request (median $mcon)"
echo "metering off: ${off[*]} req/s (median $moff); daemon CPU ${coff[*]} us/request (median $mcoff)"
awk -v a="$mon" -v b="$moff" -v c="$mcon" -v d="$mcoff" 'BEGIN {
    printf "throughput on/off = %.3f; daemon CPU per request on/off = %.3f (metering adds %.1f%%)\n",
        a / b, c / d, (c / d - 1) * 100 }'
