#!/usr/bin/env bash
# density.sh — how many instances one node keeps alive at once, and what
# each costs: starts `wasmfn serve` (default workers) on free loopback
# ports with a temporary data dir, deploys slow.wasm (a C guest that
# nanosleeps ?ms=..., i.e. poll_oneoff) with a 120 s timeout, submits N
# asynchronous invocations sleeping SLEEP_MS each (density_client: few
# keep-alive connections, 202 + id), samples the daemon's RSS and the
# wasmfn_instances{state="busy"} gauge every 0.5 s, then polls every
# invocation until it is completed and checks status 200 and the body.
#
# Reports: the peak number of live (busy) instances, the daemon's peak RSS
# (VmHWM) and its RSS before the load, and (peak - before) / peak live,
# i.e. the memory per live instance, everything included (fiber stack,
# exec, linear memory pages written, store, WASI context, the call and its
# CGI environment, the invocation record).
#
# The autoscaler target is set to 1000 so that, at 30,000 concurrent
# calls, it keeps ~30 instances warm rather than another 30,000 (serving
# keeps `desired` warm instances besides the busy ones).
#
# System limits, changed here only (documented in docs/benchmarks.md):
#   - vm.max_map_count: each live instance has ~5 mappings (memory slot:
#     copy-on-write image + rest + PROT_NONE tail; fiber stack + guard),
#     more than the default 65,530 allows at 30,000. Raised with sysctl
#     when lower than N * 8 + 65536 (needs root; otherwise a warning).
#   - the open-file limit: raised to the hard limit (few fds are needed:
#     that is the point of async invocation).
#
#   bash bench/density/density.sh build/wasmfn build/serving-fns/slow.wasm \
#        build/bench/density_client [N] [SLEEP_MS]
set -euo pipefail

WASMFN=$(realpath "$1")
SLOW=$(realpath "$2")
CLIENT=$(realpath "$3")
N=${4:-30000}
SLEEP_MS=${5:-20000}
CONNS=${DENSITY_CONNS:-16}
TMP=$(mktemp -d -t wasmfn-density.XXXXXX)
PID=
SAMPLER=
cleanup() {
    [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null || true
    if [[ -n $PID ]]; then kill -KILL "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh" # wait_native; its EXIT trap gives way to ours
trap cleanup EXIT

need_maps=$((N * 8 + 65536))
have_maps=$(cat /proc/sys/vm/max_map_count)
if ((have_maps < need_maps)); then
    if sysctl -q -w vm.max_map_count="$need_maps" 2>/dev/null; then
        echo "density: vm.max_map_count $have_maps -> $need_maps"
    else
        echo "density: warning: vm.max_map_count is $have_maps (< $need_maps) and cannot be raised" >&2
    fi
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# shellcheck disable=SC2086 # WASMFN_ARGS: extra serve flags, word-split
"$WASMFN" serve --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data "$TMP/data" ${WASMFN_ARGS:-} \
    >"$TMP/serve.log" 2>&1 &
PID=$!
line=
for ((i = 0; i < 200; i++)); do
    line=$(grep -m1 -o 'data plane on http://[^,]*, admin API on http://[^ ]*' "$TMP/serve.log" || true)
    [[ -n $line ]] && break
    sleep 0.1
done
[[ -n $line ]] || { echo "density: the daemon did not start" >&2; cat "$TMP/serve.log" >&2; exit 1; }
DATA_URL=${line#data plane on }
DATA_URL=${DATA_URL%%,*}
export WASMFN_API=${line##* }
export WASMFN_TOKEN=$(cat "$TMP/data/admin.token")
hostport() { local u=${1#http://}; echo "${u%%/*}"; }
DATA_HP=$(hostport "$DATA_URL")
ADMIN_HP=$(hostport "$WASMFN_API")

cp "$SLOW" "$TMP/slow.wasm"
cat >"$TMP/fn.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: sleeper }
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "1000"
    spec:
      timeoutSeconds: 120
      containers:
        - image: ./slow.wasm
YAML
"$WASMFN" apply -f "$TMP/fn.yaml" >/dev/null
# The tier the guests run: the daemon compiles native code in the
# background (unless --tier interp); measure what it serves for good.
wait_native sleeper || { echo "density: native code was not ready in 10 minutes" >&2; exit 1; }
tier=$("$WASMFN" get sleeper -o json | sed -n 's/.*"tier": *"\([a-z]*\)".*/\1/p' | head -1)
# One call first, so that the module, the image and a fiber exist.
curl -s -o /dev/null "$DATA_URL/fn/sleeper/?ms=1"
sleep 1

status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
busy() {
    curl -s -m 5 "$WASMFN_API/metrics" |
        awk 'index($0, "wasmfn_instances{") == 1 && index($0, "state=\"busy\"") {s += $NF} END {print s + 0}'
}
rss0=$(status_kb VmRSS)
pte0=$(status_kb VmPTE)
(
    while kill -0 "$PID" 2>/dev/null; do
        echo "$(date +%s.%N) $(status_kb VmRSS) $(busy) $(wc -l <"/proc/$PID/maps") $(status_kb VmPTE)"
        sleep 0.5
    done
) >"$TMP/samples" 2>/dev/null &
SAMPLER=$!

echo "density: $N async calls of $SLEEP_MS ms over $CONNS connections, $(nproc) CPUs, default workers, tier ${tier:-?}"
set +e
"$CLIENT" "${DATA_HP%:*}" "${DATA_HP#*:}" "/fn/sleeper/?ms=$SLEEP_MS" "$N" "$CONNS" \
    "${ADMIN_HP%:*}" "${ADMIN_HP#*:}" "$WASMFN_TOKEN" 300 "slept $SLEEP_MS ms" \
    "$(awk -v ms="$SLEEP_MS" 'BEGIN {print ms / 1000}')"
rc=$?
set -e
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=
hwm=$(status_kb VmHWM)
[[ -n ${DENSITY_SAMPLES:-} ]] && cp "$TMP/samples" "$DENSITY_SAMPLES"
awk -v rss0="$rss0" -v hwm="$hwm" -v pte0="$pte0" '
    { if ($3 > peak) peak = $3; if ($4 > maps) maps = $4; if ($5 > pte) pte = $5 }
    END {
        printf "peak live (busy) instances: %d   peak mappings: %d\n", peak, maps
        printf "daemon RSS before: %.1f MiB   peak RSS (VmHWM): %.1f MiB\n", rss0 / 1024, hwm / 1024
        if (peak > 0) printf "peak memory per live instance: %.1f KiB ((VmHWM - before) / peak live)\n", (hwm - rss0) / peak
        printf "page tables (VmPTE, kernel memory outside the RSS): %.1f MiB before, %.1f MiB at peak", pte0 / 1024, pte / 1024
        if (peak > 0) printf ", %.1f KiB per live instance", (pte - pte0) / peak
        printf "\n"
    }' "$TMP/samples"
exit $rc
