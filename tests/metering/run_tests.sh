#!/usr/bin/env bash
# tests/metering/run_tests.sh — metering through the real daemon: functions
# of known duration (tests/serving/fns/slow.c sleeps ?ms=N) and known memory
# limits, billed at two granularities; errors and cold starts counted; usage
# surviving SIGKILL (after a flush) and a restart. Prints one line per test
# and ends with "metering: N passed, M failed".
#
# Env: WASMFN (binary), EXAMPLES_DIR, FNS_DIR (built test functions).
set -u
WASMFN=${WASMFN:-build/wasmfn}
EXAMPLES_DIR=${EXAMPLES_DIR:-build/examples}
FNS_DIR=${FNS_DIR:-build/serving-fns}
# shellcheck source=tests/lib/daemon.sh
. "$(dirname "$0")/../lib/daemon.sh"
passed=0
failed=0
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; failed=$((failed + 1)); }

# start DATA [serve options...]: starts the daemon, sets pid, D (data plane
# URL) and WASMFN_API / WASMFN_TOKEN for the CLI.
start() {
    local data=$1
    shift
    : >"$tmp/log"
    daemon_start "$tmp/log" "$data" "$@"
    local rc=$?
    pid=$daemon_pid D=$daemon_url
    return $rc
}

# field JSON FUNCTION KEY: a number from `wasmfn usage -o json`.
field() {
    node -e '
        const a = JSON.parse(process.argv[1]);
        const f = a.find(x => x.function === process.argv[2]);
        console.log(f ? f[process.argv[3]] : "none");' "$1" "$2" "$3"
}

# ---- 1 s granularity: four ~200 ms calls bill 4 x 1000 ms ----------------
data1=$tmp/data1
if ! start "$data1" --billing-granularity 1s; then
    bad "daemon starts" "$(cat "$tmp/log")"
    echo "metering: $passed passed, $((failed)) failed"
    exit 1
fi
"$WASMFN" deploy slow "$FNS_DIR/slow.wasm" --memory 64 -q >/dev/null
for _ in 1 2 3 4; do curl -s "$D/fn/slow/?ms=200" >/dev/null; done
u=$("$WASMFN" usage slow -o json)
req=$(field "$u" slow requests)
billed=$(field "$u" slow billed_ms)
gbs=$(field "$u" slow gb_seconds)
[ "$req" = 4 ] && ok "4 requests counted" || bad "4 requests counted" "got $req: $u"
[ "$billed" = 4000 ] && ok "1 s granularity: 4 calls of ~200 ms bill 4000 ms" ||
    bad "1 s granularity: 4 calls of ~200 ms bill 4000 ms" "got $billed: $u"
# 64 MiB = 1/16 GiB, x 4 s billed = 0.25 GB-s
node -e 'process.exit(Math.abs(process.argv[1] - 0.25) < 1e-9 ? 0 : 1)' "$gbs" &&
    ok "GB-seconds = 64 MiB / 1 GiB x 4 s = 0.25" || bad "GB-seconds = 0.25" "got $gbs"

# errors: the failing example traps -> 502, counted as errors
"$WASMFN" deploy fail "$EXAMPLES_DIR/fail.wasm" -q >/dev/null
for _ in 1 2 3; do curl -s "$D/fn/fail/" >/dev/null; done
u=$("$WASMFN" usage fail -o json)
[ "$(field "$u" fail errors)" = 3 ] && [ "$(field "$u" fail requests)" = 3 ] &&
    ok "3 trapping requests: 3 requests, 3 errors" || bad "3 trapping requests: 3 errors" "$u"

# cold starts: initial-scale 0 means the first request instantiates inline
cat >"$tmp/cold.yaml" <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: cold }
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
        autoscaling.knative.dev/min-scale: "0"
    spec:
      containers:
        - image: $(cd "$EXAMPLES_DIR" && pwd)/hello.wasm
EOF
"$WASMFN" apply -f "$tmp/cold.yaml" >/dev/null
curl -s "$D/fn/cold/" >/dev/null
u=$("$WASMFN" usage cold -o json)
c=$(field "$u" cold cold_starts)
[ "$c" -ge 1 ] 2>/dev/null && ok "a request to a function at zero counts a cold start" ||
    bad "cold start counted" "$u"

# SIGKILL after a flush (<= 1 s): nothing of the above is lost
sleep 1.5
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=
if start "$data1" --billing-granularity 1s; then
    u=$("$WASMFN" usage -o json)
    [ "$(field "$u" slow billed_ms)" = 4000 ] && [ "$(field "$u" fail errors)" = 3 ] &&
        ok "usage survives SIGKILL after a flush and a restart" ||
        bad "usage survives SIGKILL" "$u"
    # and keeps adding up after the restart
    curl -s "$D/fn/slow/?ms=100" >/dev/null
    u=$("$WASMFN" usage slow -o json)
    [ "$(field "$u" slow requests)" = 5 ] && [ "$(field "$u" slow billed_ms)" = 5000 ] &&
        ok "after the restart new usage adds to the old" || bad "usage adds up after restart" "$u"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    pid=
else
    bad "daemon restarts on the same data dir" "$(cat "$tmp/log")"
fi

# ---- 1 ms granularity (the default): billed is the duration rounded up --
data2=$tmp/data2
if start "$data2"; then
    "$WASMFN" deploy slow "$FNS_DIR/slow.wasm" --memory 128 -q >/dev/null
    for ms in 30 45 60; do curl -s "$D/fn/slow/?ms=$ms" >/dev/null; done
    u=$("$WASMFN" usage slow -o json)
    node -e '
        const f = JSON.parse(process.argv[1]).find(x => x.function === "slow");
        const ok = f.requests === 3 && Number.isInteger(f.billed_ms) &&
            f.billed_ms >= f.duration_ms && f.billed_ms <= f.duration_ms + 3 &&
            f.billed_ms >= 135 && Math.abs(f.gb_seconds - 0.125 * f.billed_ms / 1000) < 1e-9;
        process.exit(ok ? 0 : 1);' "$u" &&
        ok "1 ms granularity: billed = duration rounded up per call, GB-s = 1/8 GiB x billed" ||
        bad "1 ms granularity rounding" "$u"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    pid=
else
    bad "daemon starts with the default granularity" "$(cat "$tmp/log")"
fi

echo "metering: $passed passed, $failed failed"
[ "$failed" = 0 ]
