#!/usr/bin/env bash
# run.sh — hello-world throughput with a fresh instance per request, against
# nginx answering a static 200 on the same machine in the same run (the
# target of DESIGN.md §8: at least half of nginx). `make bench-throughput`
# runs it; bench/compare/run.sh measures the same pair among more systems.
#
#   bash bench/throughput/run.sh               3 interleaved runs of 8 s each
#   RUNS=1 DUR=3 bash bench/throughput/run.sh  a quick look
#   PERF=1 bash bench/throughput/run.sh        also `perf record -g` wasmfn
#                                              during one extra run
#
# Both servers listen on 127.0.0.1 and are driven by the same wrk command
# (threads and connections below). nginx runs `worker_processes auto`;
# wasmfn runs with its defaults. Results: build/bench-throughput/ (the wrk
# outputs and results.tsv), and a summary line per run on stderr; the
# medians and the ratio are printed last.
#
# Environment: WASMFN (default build/wasmfn), BENCH_PORT (default 18440; it
# uses 3 ports from there), RUNS, DUR, THREADS, CONNS, PERF, WASMFN_ARGS
# (extra flags for `wasmfn serve`).
set -euo pipefail

WASMFN=${WASMFN:-build/wasmfn}
RUNS=${RUNS:-3}
DUR=${DUR:-8}
THREADS=${THREADS:-2}
CONNS=${CONNS:-16}
PERF=${PERF:-0}
PORT=${BENCH_PORT:-18440}
OUT=build/bench-throughput
P_NGINX=$PORT P_WF=$((PORT + 1)) P_WFA=$((PORT + 2))

BENCH_NAME=throughput
# shellcheck source=bench/lib.sh
source bench/lib.sh

[[ -x $WASMFN ]] || die "$WASMFN is missing (run make first)"
command -v wrk >/dev/null || die "wrk is not installed (make deps)"
mkdir -p "$OUT"
rm -f "$OUT"/wrk.* "$OUT/results.tsv"
clang --target=wasm32-wasi -O2 -Wl,--strip-debug -o "$OUT/hello.wasm" bench/compare/fns/hello.c

nginx_start "$OUT/nginx" "$P_NGINX"

rm -rf "$OUT/data"
# shellcheck disable=SC2086
"$WASMFN" serve --listen 127.0.0.1:$P_WF --admin 127.0.0.1:$P_WFA --data "$OUT/data" ${WASMFN_ARGS:-} \
    >"$OUT/wasmfn.log" 2>&1 &
WF_PID=$!
PIDS+=($WF_PID)
wait_http "http://127.0.0.1:$P_NGINX/" || die "nginx did not start ($OUT/nginx/logs/error.log)"
wait_http "http://127.0.0.1:$P_WFA/readyz" || die "wasmfn did not start ($OUT/wasmfn.log)"
export WASMFN_API=127.0.0.1:$P_WFA WASMFN_TOKEN
WASMFN_TOKEN=$(cat "$OUT/data/admin.token")
"$WASMFN" deploy -q hello "$OUT/hello.wasm" >/dev/null
wait_native hello || die "wasmfn: native code for hello was not ready in time"
got=$(curl -fsS --max-time 5 "http://127.0.0.1:$P_WF/fn/hello/") || die "wasmfn: hello failed"
[[ $got == hello ]] || die "wasmfn: hello answered '$got'"

URL_nginx=http://127.0.0.1:$P_NGINX/
URL_wasmfn=http://127.0.0.1:$P_WF/fn/hello/
WRK="wrk -t$THREADS -c$CONNS -d${DUR}s --timeout 10s --latency"
say "commands: $WRK $URL_nginx ; $WRK $URL_wasmfn"
echo "$WRK $URL_nginx" >"$OUT/commands.txt"
echo "$WRK $URL_wasmfn" >>"$OUT/commands.txt"

# one second of each first, then RUNS interleaved runs
wrk -t$THREADS -c$CONNS -d1s "$URL_nginx" >/dev/null
wrk -t$THREADS -c$CONNS -d1s "$URL_wasmfn" >/dev/null
for ((run = 1; run <= RUNS; run++)); do
    for sys in nginx wasmfn; do
        url_var=URL_$sys
        out=$OUT/wrk.$run.$sys
        $WRK "${!url_var}" >"$out" 2>&1 || die "wrk failed: $(tail -2 "$out")"
        rps=$(sed -n 's/^Requests\/sec:[[:space:]]*//p' "$out")
        bad=$(sed -n 's/.*Non-2xx or 3xx responses:[[:space:]]*//p' "$out")
        printf '%s\t%s\t%s\t%s\n' "$run" "$sys" "$rps" "${bad:-0}" >>"$OUT/results.tsv"
        say "run $run: $sys $rps req/s (non-2xx: ${bad:-0})"
    done
done
if [[ $PERF == 1 ]]; then
    say "perf record of wasmfn during one more run ($OUT/perf.data)"
    perf record -g -o "$OUT/perf.data" -p "$WF_PID" -- sleep "$DUR" >/dev/null 2>&1 &
    perf_pid=$!
    $WRK "$URL_wasmfn" >"$OUT/wrk.perf" 2>&1
    wait $perf_pid || true
fi
ng=$(awk '$2 == "nginx" {print $3}' "$OUT/results.tsv" | median)
wf=$(awk '$2 == "wasmfn" {print $3}' "$OUT/results.tsv" | median)
ratio=$(awk -v a="$wf" -v b="$ng" 'BEGIN {printf "%.2f", a / b}')
say "medians of $RUNS: nginx $ng req/s, wasmfn $wf req/s; wasmfn/nginx $ratio"
echo "nginx $ng wasmfn $wf ratio $ratio"
