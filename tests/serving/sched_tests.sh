#!/usr/bin/env bash
# tests/serving/sched_tests.sh — guests share workers fairly: on a daemon with
# ONE worker thread, a guest sleeping in poll_oneoff (fibers park it) and a
# CPU-bound guest (time-sliced at the engine's budget checks) must not stop a
# hello-world request from being answered while they are still running.
# The assertions are about order (hello answers before the long request
# ends), not about speed. That daemon runs every guest on its worker
# (--loop-slice 0); a second one checks runs on the event loop: short
# guests run there, and one that outruns the slice is handed to the worker
# with nothing of its first start seen (one answer, one log line), after
# which its revision stays off the loop for a while. A bad --loop-slice is
# refused with a one-line error. Ends with "sched: N passed, M failed".
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

# metric NAME LABEL...: the sum of NAME's samples whose labels contain every
# LABEL; 0 when there are none.
metric() {
    local name=$1
    shift
    curl -s -m 10 "$WASMFN_API/metrics" | awk -v name="$name" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        index($0, name "{") == 1 {
            for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) next
            sum += $NF
        }
        END { printf "%d\n", sum + 0 }'
}

daemon_start "$tmp/log" "$tmp/data" --workers 1 --loop-slice 0
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

n=$(metric wasmfn_loop_runs_total 'function="hello"')
[ "$n" = 0 ] && ok "--loop-slice 0: no guest runs on the event loop" ||
    bad "--loop-slice 0 still ran $n guests on the loop"

kill -TERM "$pid"
wait "$pid" 2>/dev/null
pid=

# ---- runs on the event loop ----
daemon_start "$tmp/log2" "$tmp/data2" --workers 1 --loop-slice 1ms
pid=$daemon_pid D=$daemon_url
"$WASMFN" deploy hello "$EXAMPLES_DIR/hello.wasm" -q >/dev/null &&
    "$WASMFN" deploy busy "$FNS_DIR/busy.wasm" -q >/dev/null ||
    { bad "deploy" "$(cat "$tmp/log2")"; echo "sched: $passed passed, $((failed)) failed"; exit 1; }
codes=
for i in $(seq 20); do codes="$codes $(curl -s -o /dev/null -w '%{http_code}' "$D/fn/hello/")"; done
ran=$(metric wasmfn_loop_runs_total 'function="hello"' 'outcome="ran"')
[ "$codes" = "$(printf ' 200%.0s' $(seq 20))" ] && [ "$ran" -ge 10 ] &&
    ok "short guests run on the event loop ($ran of 20 hello requests)" ||
    bad "hello on the event loop" "codes:$codes; ran on the loop: $ran"

body=$(curl -s --max-time 30 "$D/fn/busy/?ms=30")
off=$(metric wasmfn_loop_runs_total 'function="busy"' 'outcome="handed_off"')
starts=$("$WASMFN" logs busy 2>&1 | grep -c 'busy start')
[ "$body" = "busy 30" ] && [ "$off" = 1 ] && [ "$starts" = 1 ] &&
    ok "a guest past the loop's slice is handed to a worker: one answer, one log line" ||
    bad "a guest past the loop's slice" "body '$body', handed off $off, 'busy start' logged $starts times"

body=$(curl -s --max-time 30 "$D/fn/busy/?ms=0")
off=$(metric wasmfn_loop_runs_total 'function="busy"' 'outcome="handed_off"')
ran=$(metric wasmfn_loop_runs_total 'function="busy"' 'outcome="ran"')
[ "$body" = "busy 0" ] && [ "$off" = 1 ] && [ "$ran" = 0 ] &&
    ok "right after, its revision runs on the worker without a try on the loop" ||
    bad "the revision after a hand-off" "body '$body', handed off $off, ran on the loop $ran"
sleep 1.2
body=$(curl -s --max-time 30 "$D/fn/busy/?ms=0")
ran=$(metric wasmfn_loop_runs_total 'function="busy"' 'outcome="ran"')
[ "$body" = "busy 0" ] && [ "$ran" = 1 ] &&
    ok "after its backoff (1 s) the revision is tried on the loop again" ||
    bad "the revision after its backoff" "body '$body', ran on the loop $ran"

# The loop's share: guests get at most half of each millisecond of the
# loop (SRV_LOOP_SHARE_NS), the rest go to the worker. 64 calls of a 100 µs
# guest, 16 at a time, arrive faster than the loop may run them: all
# answered, some on the loop, not all. The count means something only if no
# trial was given up (a given-up one keeps its revision off the loop for a
# second), and a trial can outrun even the 1 ms slice when the machine
# takes the loop's CPU away (seen under ASan): up to three tries, each
# with a function of its own, until one has none given up.
share_try() { # share_try N: sets bodies, ran, off
    "$WASMFN" deploy "share$1" "$FNS_DIR/busy.wasm" -q >/dev/null
    local urls=() i
    for i in $(seq 64); do urls+=("$D/fn/share$1/?us=100"); done
    bodies=$(curl -s --no-progress-meter --max-time 60 --parallel --parallel-immediate --parallel-max 16 \
        "${urls[@]}" 2>/dev/null | grep -c '^busy 100$')
    ran=$(metric wasmfn_loop_runs_total "function=\"share$1\"" 'outcome="ran"')
    off=$(metric wasmfn_loop_runs_total "function=\"share$1\"" 'outcome="handed_off"')
}
for try in 1 2 3; do
    share_try $try
    [ "${off:-0}" = 0 ] && break
done
[ "$bodies" = 64 ] && [ "${ran:-0}" -ge 1 ] && [ "${ran:-0}" -lt 64 ] && [ "${off:-0}" = 0 ] &&
    ok "guests get at most half of the loop's time: $ran of 64 busy calls ran on it, the rest on the worker (try $try)" ||
    bad "the loop's share" "try $try: answers $bodies of 64, ran on the loop ${ran:-0}, handed off ${off:-0}"

kill -TERM "$pid"
wait "$pid" 2>/dev/null
pid=

err=$("$WASMFN" serve --data "$tmp/data3" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --loop-slice 5s 2>&1)
rc=$?
[ "$rc" != 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ $err == *"--loop-slice: '5s'"* ]] &&
    ok "--loop-slice 5s is refused with a one-line error" ||
    bad "--loop-slice 5s" "rc $rc: $err"

echo "sched: $passed passed, $failed failed"
[ "$failed" = 0 ]
