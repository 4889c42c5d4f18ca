#!/usr/bin/env bash
# tests/serving/sched_tests.sh — guests share workers fairly: on a daemon with
# ONE worker thread, a guest sleeping in poll_oneoff (fibers park it) and a
# CPU-bound guest (time-sliced at the engine's budget checks) must not stop a
# hello-world request from being answered while they are still running.
# The assertions are about order (hello answers before the long request
# ends), not about speed. Ends with "sched: N passed, M failed".
#
# Env: WASMFN, EXAMPLES_DIR, FNS_DIR.
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
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; failed=$((failed + 1)); }

daemon_start "$tmp/log" "$tmp/data" --workers 1
pid=$daemon_pid D=$daemon_url
"$WASMFN" deploy hello "$EXAMPLES_DIR/hello.wasm" -q >/dev/null &&
    "$WASMFN" deploy slow "$FNS_DIR/slow.wasm" -q >/dev/null &&
    "$WASMFN" deploy spin "$FNS_DIR/spin.wasm" --timeout 4 -q >/dev/null ||
    { bad "deploy" "$(cat "$tmp/log")"; echo "sched: $passed passed, $((failed)) failed"; exit 1; }

# long_then_hello NAME URL: starts the long request, then asks hello; passes
# when hello's 200 comes back while the long request is still running.
long_then_hello() {
    rm -f "$tmp/long.done"
    (curl -s -o /dev/null "$2"; touch "$tmp/long.done") &
    local bg=$!
    sleep 0.5
    local st
    st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$D/fn/hello/")
    local still=yes
    [ -e "$tmp/long.done" ] && still=no
    wait "$bg"
    [ "$st" = 200 ] && [ "$still" = yes ]
}

long_then_hello slow "$D/fn/slow/?ms=3000" &&
    ok "one worker: hello is answered while another guest sleeps 3 s" ||
    bad "a sleeping guest blocks the only worker"
long_then_hello spin "$D/fn/spin/" &&
    ok "one worker: hello is answered while a CPU-bound guest spins (until its 4 s timeout)" ||
    bad "a CPU-bound guest starves hello on the only worker"

kill -TERM "$pid"
wait "$pid" 2>/dev/null
pid=
echo "sched: $passed passed, $failed failed"
[ "$failed" = 0 ]
