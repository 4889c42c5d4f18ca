#!/usr/bin/env bash
# cpu_per_request.sh — A/B of wasmfn builds on the hello-world load of
# run.sh: for each binary, the requests/s and the daemon's own CPU time per
# request (user + system, /proc/PID/stat fields 14 and 15, over the timed
# run, divided by the requests wrk reports). On 2 CPUs shared with wrk,
# requests/s varies ±15% from run to run; CPU per request is steadier, so
# this is how small changes on the request path were judged
# (docs/benchmarks.md, "Throughput").
#
#   bash bench/throughput/cpu_per_request.sh OLD_BINARY NEW_BINARY [...]
#   bash bench/throughput/cpu_per_request.sh "build/wasmfn::--loop-slice 0" build/wasmfn
#
# A binary may be followed by `::` and flags for its `wasmfn serve` (split
# at spaces), to compare settings of one build. WITH_NGINX=1 also runs nginx
# (a static 200) under the same wrk command in every round, for the ratio.
#
# Each round runs every binary once, in the order given; ROUNDS rounds
# (default 3). Per run: a fresh daemon and data dir, the function deployed
# (FN: hello, the default, or hellof, bench/compare/fns/), 1 s of wrk to
# warm up, then `wrk -t2 -c16 -d${DUR}s` (DUR default 4). Ports:
# BENCH_PORT (default 18450) and the next one.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DUR=${DUR:-4}
FN=${FN:-hello}
PORT=${BENCH_PORT:-18450}
OUT=build/bench-throughput
BENCH_NAME=cpu-per-request
# shellcheck source=bench/lib.sh
source bench/lib.sh

(($# >= 1)) || die "usage: $0 WASMFN_BINARY[::SERVE_FLAGS]..."
for b in "$@"; do [[ -x ${b%%::*} ]] || die "${b%%::*} is not an executable"; done
mkdir -p "$OUT"
[[ -f bench/compare/fns/$FN.c ]] || die "FN=$FN: no bench/compare/fns/$FN.c"
clang --target=wasm32-wasi -O2 -Wl,--strip-debug -o "$OUT/$FN.wasm" "bench/compare/fns/$FN.c"
URL=http://127.0.0.1:$PORT/fn/$FN/

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

if [[ ${WITH_NGINX:-0} == 1 ]]; then
    nginx_start "$OUT/nginx-ab" $((PORT + 2))
    wait_http "http://127.0.0.1:$((PORT + 2))/" || die "nginx did not start"
    NGINX_PIDS=("${PIDS[@]}")
    PIDS=()
fi

for ((round = 1; round <= ROUNDS; round++)); do
    if [[ ${WITH_NGINX:-0} == 1 ]]; then
        wrk -t2 -c16 -d1s "http://127.0.0.1:$((PORT + 2))/" >/dev/null
        rps=$(wrk -t2 -c16 -d"${DUR}"s "http://127.0.0.1:$((PORT + 2))/" | awk '/Requests\/sec/ {print $2}')
        echo "round $round: nginx: $rps req/s"
    fi
    for arg in "$@"; do
        b=${arg%%::*}
        flags=()
        [[ $arg == *::* ]] && read -r -a flags <<<"${arg#*::}"
        rm -rf "$OUT/ab-data"
        "$b" serve "${flags[@]}" --listen 127.0.0.1:$PORT --admin 127.0.0.1:$((PORT + 1)) --data "$OUT/ab-data" \
            >"$OUT/ab.log" 2>&1 &
        pid=$!
        PIDS+=($pid)
        wait_http "http://127.0.0.1:$((PORT + 1))/readyz" || die "$b did not start ($OUT/ab.log)"
        export WASMFN_API=127.0.0.1:$((PORT + 1)) WASMFN_TOKEN
        WASMFN_TOKEN=$(cat "$OUT/ab-data/admin.token")
        "$b" deploy -q "$FN" "$OUT/$FN.wasm" >/dev/null
        WASMFN=$b wait_native "$FN" || die "$b: native code for $FN was not ready in time"
        wrk -t2 -c16 -d1s "$URL" >/dev/null
        t0=$(cpu_ticks $pid)
        out=$(wrk -t2 -c16 -d"${DUR}"s "$URL")
        t1=$(cpu_ticks $pid)
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        hz=$(getconf CLK_TCK)
        us=$(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
        echo "round $round: $arg: $rps req/s, daemon CPU $us us/request"
        stop_all
    done
done
if [[ ${WITH_NGINX:-0} == 1 ]]; then PIDS=("${NGINX_PIDS[@]}"); stop_all; fi
