#!/usr/bin/env bash
# http_zero.sh — the HTTP request to a function scaled to zero: starts
# `wasmfn serve` on free loopback ports with a temporary data dir, deploys
# N (default 100) distinct functions running hello.wasm with
# autoscaling.knative.dev/initial-scale "0" (module compiled and imaged at
# deploy, no instance), checks that no instance is warm, then sends one
# request to each function with curl (a new connection each) and reports
# p50/p99/max of curl's time_total, i.e. connect + request + response on
# loopback. Checks that every answer is 200 and that every request was a
# cold start (wasmfn_cold_starts_total grows by N).
#
#   bash bench/coldstart/http_zero.sh build/wasmfn build/examples/hello.wasm [N]
set -euo pipefail

WASMFN=$(realpath "$1")
HELLO=$(realpath "$2")
N=${3:-100}
TMP=$(mktemp -d -t wasmfn-coldstart.XXXXXX)
PID=
cleanup() {
    if [[ -n $PID ]]; then kill -KILL "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh" # wait_native; its EXIT trap gives way to ours
trap cleanup EXIT

# shellcheck disable=SC2086 # WASMFN_ARGS: extra serve flags, word-split
"$WASMFN" serve --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$TMP/data" ${WASMFN_ARGS:-} \
    >"$TMP/serve.log" 2>&1 &
PID=$!
for ((i = 0; i < 200; i++)); do
    line=$(grep -m1 -o 'data plane on http://[^,]*, admin API on http://[^ ]*' "$TMP/serve.log" || true)
    [[ -n $line ]] && break
    sleep 0.1
done
[[ -n $line ]] || { echo "http_zero: the daemon did not start" >&2; cat "$TMP/serve.log" >&2; exit 1; }
DATA_URL=${line#data plane on }
DATA_URL=${DATA_URL%%,*}
export WASMFN_API=${line##* }
export WASMFN_TOKEN=$(cat "$TMP/data/admin.token")

cp "$HELLO" "$TMP/hello.wasm"
for ((i = 0; i < N; i++)); do
    cat <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: zero-$i }
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
        autoscaling.knative.dev/min-scale: "0"
    spec:
      containers:
        - image: ./hello.wasm
---
YAML
done >"$TMP/fns.yaml"
"$WASMFN" apply -f "$TMP/fns.yaml" >/dev/null
# The functions share one module, which the daemon compiles to native code
# in the background (unless WASMFN_ARGS says --tier interp): measure the
# tier they run for good.
wait_native zero-0 || { echo "http_zero: native code was not ready in 10 minutes" >&2; exit 1; }
tier=$("$WASMFN" get zero-0 -o json | sed -n 's/.*"tier": *"\([a-z]*\)".*/\1/p' | head -1)

metric_sum() { # NAME [LABEL-FILTER]: the sum of a metric's samples
    curl -s "$WASMFN_API/metrics" |
        awk -v m="$1{" -v f="${2:-}" 'index($0, m) == 1 && index($0, f) {s += $NF} END {print s + 0}'
}
warm=$(metric_sum wasmfn_instances 'state="warm"')
[[ $warm == 0 ]] || { echo "http_zero: $warm warm instances before the requests" >&2; exit 1; }
cold0=$(metric_sum wasmfn_cold_starts_total)

: >"$TMP/times"
for ((i = 0; i < N; i++)); do
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "$DATA_URL/fn/zero-$i/")
    [[ ${out%% *} == 200 ]] || { echo "http_zero: zero-$i answered ${out%% *}" >&2; exit 1; }
    echo "${out##* }" >>"$TMP/times"
done
cold1=$(metric_sum wasmfn_cold_starts_total)
(( cold1 - cold0 == N )) || { echo "http_zero: $((cold1 - cold0)) cold starts for $N requests" >&2; exit 1; }

sort -g "$TMP/times" | awk -v n="$N" -v tier="${tier:-?}" '
    { t[NR] = $1 * 1e6 }
    END {
        p50 = t[int(n * 0.50) + 1]; p99 = t[int(n * 0.99) + (n * 0.99 == int(n * 0.99) ? 0 : 1)];
        printf "HTTP to a function scaled to zero (%d functions, tier %s, 1 cold request each): p50 %.0f us  p99 %.0f us  max %.0f us\n", n, tier, p50, p99, t[n]
    }'
echo "cold starts counted: $((cold1 - cold0)) of $N"
