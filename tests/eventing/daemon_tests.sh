#!/usr/bin/env bash
# tests/eventing/daemon_tests.sh — eventing through the real daemon
# (`wasmfn serve --redis`), configured only with `wasmfn apply` and driven
# over HTTP and a real redis-server on a random loopback port:
#   - a PingSource with a seconds schedule delivers to a function;
#   - a RedisStreamSource delivers every entry; entries the function fails
#     on land in the dead-letter stream after retries; nothing stays pending;
#   - POST /events/BROKER on the data plane, a Trigger's exact-match filter,
#     and a reply event going back to the broker;
#   - bad CloudEvents are refused at ingress with 400;
#   - wasmfn_events_total in /metrics; SIGTERM drains and exits 0;
#   - deliveries to a Service of the daemon open no connection to its data
#     plane (in-process calls, issue 15), and a Service dead-letter sink.
# Ends with "eventing-daemon: N passed, M failed".
#
# Env: WASMFN (binary), EVSINK (built tests/eventing/fns/evsink.wasm), SLOW
# (tests/serving/fns/slow.wasm, for the max-scale cap).
set -u
WASMFN=${WASMFN:-build/wasmfn}
EVSINK=${EVSINK:-build/eventing-fns/evsink.wasm}
# shellcheck source=tests/lib/daemon.sh
. "$(dirname "$0")/../lib/daemon.sh"
passed=0
failed=0
tmp=$(mktemp -d)
pid=
rpid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "$rpid" ] && kill -9 "$rpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; failed=$((failed + 1)); }
finish() {
    echo "eventing-daemon: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

# until SECONDS CMD...: retries CMD every 0.2 s until it succeeds or time runs out.
until_ok() {
    local end=$((SECONDS + $1))
    shift
    while ! "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.2
    done
}

# A real redis-server on a free loopback port.
for _ in 1 2 3 4 5; do
    rport=$((20000 + RANDOM % 20000))
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no >"$tmp/redis.log" 2>&1 &
    rpid=$!
    until_ok 5 redis-cli -p "$rport" ping >/dev/null 2>&1 && break
    kill -9 "$rpid" 2>/dev/null
    rpid=
done
[ -n "$rpid" ] || { bad "redis-server starts" "$(cat "$tmp/redis.log")"; finish; }
R() { redis-cli -p "$rport" "$@"; }

daemon_start "$tmp/log" "$tmp/data" --redis "redis://127.0.0.1:$rport" ||
    { pid=$daemon_pid; bad "daemon starts" "$(cat "$tmp/log")"; finish; }
pid=$daemon_pid D=$daemon_url
"$WASMFN" deploy evsink "$EVSINK" -q >/dev/null || { bad "deploy evsink"; finish; }

logs() { "$WASMFN" logs evsink 2>/dev/null; }
count() { logs | grep -c -- "$1"; }

# ---- PingSource: every second --------------------------------------------
cat >"$tmp/ping.yaml" <<EOF
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: { name: ticker }
spec:
  schedule: "* * * * * *"
  data: '{"tick":true}'
  sink: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: evsink } }
EOF
if "$WASMFN" apply -f "$tmp/ping.yaml" >"$tmp/out" 2>&1; then
    if until_ok 8 sh -c "[ \$(\"$WASMFN\" logs evsink | grep -c 'event dev.knative.sources.ping') -ge 3 ]"; then
        ok "PingSource with a seconds schedule delivers to the function (3 ticks)"
    else
        bad "PingSource delivers" "$(logs | tail -5)"
    fi
else
    bad "apply PingSource" "$(cat "$tmp/out")"
fi
curl -s -X DELETE -H "Authorization: Bearer $WASMFN_TOKEN" \
    "$WASMFN_API/v1/eventing/PingSource/ticker" | grep -q '"deleted"' &&
    ok "DELETE /v1/eventing/PingSource/ticker" || bad "delete the PingSource"

# ---- RedisStreamSource: 60 entries, every 10th fails -> dead letters ------
for i in $(seq 1 60); do
    if [ $((i % 10)) = 0 ]; then R XADD orders '*' n "$i" note fail >/dev/null
    else R XADD orders '*' n "$i" >/dev/null; fi
done
cat >"$tmp/stream.yaml" <<EOF
apiVersion: sources.knative.dev/v1alpha1
kind: RedisStreamSource
metadata: { name: orders }
spec:
  address: redis://127.0.0.1:$rport
  stream: orders
  group: wasmfn
  sink: { ref: { kind: Service, name: evsink } }
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.05S
    deadLetterSink: { uri: "redis://127.0.0.1:$rport/orders-dlq" }
EOF
if "$WASMFN" apply -f "$tmp/stream.yaml" >"$tmp/out" 2>&1; then
    until_ok 30 sh -c "[ \"\$(redis-cli -p $rport XLEN orders-dlq)\" = 6 ] && \
        [ \"\$(redis-cli -p $rport XPENDING orders wasmfn | head -1)\" = 0 ]"
    dlq=$(R XLEN orders-dlq)
    pend=$(R XPENDING orders wasmfn | head -1)
    good=$(logs | grep 'event dev.knative.sources.redisstream' | grep -vc fail)
    failing=$(logs | grep 'event dev.knative.sources.redisstream' | grep -c fail)
    [ "$dlq" = 6 ] && ok "the 6 failing entries are in the dead-letter stream" ||
        bad "dead-letter stream holds the 6 failing entries" "XLEN orders-dlq = $dlq"
    [ "$pend" = 0 ] && ok "nothing left pending in the consumer group" ||
        bad "nothing pending" "XPENDING = $pend"
    [ "$good" -ge 54 ] && ok "all 54 good entries reached the function ($good deliveries)" ||
        bad "54 good entries delivered" "got $good"
    [ "$failing" = 18 ] && ok "each failing entry was tried exactly 1 + retry(2) = 3 times" ||
        bad "3 attempts per failing entry" "got $failing attempts for 6 entries"
    R XRANGE orders-dlq - + | grep -q deadletterattempts &&
        ok "dead-lettered events carry the attempt count" ||
        bad "dead-lettered events carry deadletterattempts" "$(R XRANGE orders-dlq - + COUNT 1)"
    # Issue 15: events for a function of this daemon are calls of the data
    # plane in-process, not HTTP requests to its own port: after the
    # deliveries above no connection to the data plane is open (before, the
    # delivery thread kept its loopback connections alive).
    dport=${D##*:}
    conns=$(ss -Htn state established "( dport = :$dport or sport = :$dport )" | wc -l)
    [ "$conns" = 0 ] && ok "deliveries to a local function open no connection to the data plane" ||
        bad "no loopback connection for local deliveries" "$conns connections to port $dport: $(ss -Htn "( dport = :$dport )" | head -3)"
else
    bad "apply RedisStreamSource" "$(cat "$tmp/out")"
fi

# ---- Broker, Trigger, ingress on the data plane, reply events -------------
cat >"$tmp/broker.yaml" <<EOF
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: default }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: created }
spec:
  broker: default
  filter: { attributes: { type: order.created } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: evsink } }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: asks }
spec:
  broker: default
  filter: { attributes: { type: ask } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: evsink } }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: answers }
spec:
  broker: default
  filter: { attributes: { type: answer } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: evsink } }
EOF
if "$WASMFN" apply -f "$tmp/broker.yaml" >"$tmp/out" 2>&1; then
    ce() { # ce TYPE ID DATA -> HTTP status of a binary-mode POST to the broker
        curl -s -o /dev/null -w '%{http_code}' -X POST "$D/events/default" \
            -H 'ce-specversion: 1.0' -H "ce-type: $1" -H "ce-id: $2" -H 'ce-source: /test' \
            -H 'Content-Type: application/json' -d "$3"
    }
    st1=$(ce order.created o-1 '{"order":1}')
    st2=$(ce order.deleted o-2 '{"order":2}')
    [ "$st1" = 202 ] && [ "$st2" = 202 ] && ok "POST /events/default accepts binary CloudEvents (202)" ||
        bad "broker ingress answers 202" "got $st1, $st2"
    until_ok 10 sh -c "\"$WASMFN\" logs evsink | grep -q 'event order.created o-1'" &&
        ok "the trigger's filter passes type order.created" || bad "order.created delivered" "$(logs | tail -3)"
    sleep 1
    logs | grep -q 'event order.deleted' && bad "order.deleted filtered out" "it was delivered" ||
        ok "an event no trigger matches is not delivered"
    ce ask q-7 '{"q":7}' >/dev/null
    until_ok 10 sh -c "\"$WASMFN\" logs evsink | grep -q 'event answer reply-q-7'" &&
        ok "a reply event (ce-* headers in the response) goes back to the broker" ||
        bad "reply event delivered" "$(logs | tail -3)"
    st=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$D/events/default" \
        -H 'Content-Type: application/json' -d '{"no":"attributes"}')
    [ "$st" = 400 ] && ok "a request that is not a CloudEvent is refused with 400 ($(head -c 80 "$tmp/body"))" ||
        bad "bad CloudEvent -> 400" "got $st"
    st=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$D/events/nosuch" \
        -H 'ce-specversion: 1.0' -H 'ce-type: t' -H 'ce-id: 1' -H 'ce-source: /s' -d '{}')
    [ "$st" = 404 ] && ok "an unknown broker is 404" || bad "unknown broker -> 404" "got $st"
else
    bad "apply Broker and Triggers" "$(cat "$tmp/out")"
fi

# ---- metrics (before the crash below restarts the daemon and its counters) --
m=$(curl -s "$WASMFN_API/metrics")
echo "$m" | grep -q '^wasmfn_events_total{.*outcome="delivered"' &&
    echo "$m" | grep -q '^wasmfn_events_total{.*outcome="dead_lettered"' &&
    ok "wasmfn_events_total counts delivered and dead-lettered events" ||
    bad "wasmfn_events_total in /metrics" "$(echo "$m" | grep wasmfn_events | head -5)"

# ---- SIGKILL mid-stream: nothing lost, nothing dead-lettered twice --------
# 6000 entries, every 25th failing; the daemon is killed while delivering and
# restarted on the same data dir; the source resumes from the consumer group.
# In-process delivery runs thousands of events a second, so the kill waits
# for the first 200 with a short poll, and the check that it came midway is
# part of the test (a kill after the last entry would prove nothing).
CRASH_N=6000
entries_read() { R XINFO GROUPS crash | awk 'f {print; exit} /^entries-read$/ {f=1}'; }
group_lag() { R XINFO GROUPS crash | awk 'f {print; exit} /^lag$/ {f=1}'; }
for i in $(seq 1 $CRASH_N); do
    if [ $((i % 25)) = 0 ]; then echo "XADD crash * n $i note fail"; else echo "XADD crash * n $i"; fi
done | R >/dev/null
cat >"$tmp/crash.yaml" <<EOF
apiVersion: sources.knative.dev/v1alpha1
kind: RedisStreamSource
metadata: { name: crash }
spec:
  address: redis://127.0.0.1:$rport
  stream: crash
  group: wasmfn
  claimMinIdle: PT1S
  sink: { ref: { kind: Service, name: evsink } }
  delivery: { retry: 1, backoffDelay: PT0.01S, deadLetterSink: { uri: "redis://127.0.0.1:$rport/crash-dlq" } }
EOF
"$WASMFN" apply -f "$tmp/crash.yaml" >/dev/null
read_some() { n=$(entries_read); [ -n "$n" ] && [ "$n" != "(nil)" ] && [ "$n" -ge 200 ]; }
end=$((SECONDS + 20))
until read_some || [ "$SECONDS" -ge "$end" ]; do sleep 0.02; done
kill -9 "$pid"
wait "$pid" 2>/dev/null
read_before=$(entries_read)
# daemon_start reads only what the new daemon appends to the log.
daemon_start "$tmp/log" "$tmp/data" --redis "redis://127.0.0.1:$rport" ||
    { pid=$daemon_pid; bad "daemon restarts" "$(cat -v "$tmp/log" | tail -5)"; finish; }
pid=$daemon_pid D=$daemon_url
settled() { [ "$(group_lag)" = 0 ] && [ "$(R XPENDING crash wasmfn | head -1)" = 0 ]; }
until_ok 60 settled
dl=$(R XLEN crash-dlq)
uniq_dl=$(R XRANGE crash-dlq - + | grep -o '\\"n\\":\\"[0-9]*\\"\|"n":"[0-9]*"' | sort -u | wc -l)
pend=$(R XPENDING crash wasmfn | head -1)
echo "     (killed after $read_before of $CRASH_N entries were read)"
[ -n "$read_before" ] && [ "$read_before" != "(nil)" ] && [ "$read_before" -lt "$CRASH_N" ] &&
    ok "the kill -9 came mid-stream ($read_before of $CRASH_N read)" ||
    bad "kill -9 mid-stream" "$read_before of $CRASH_N entries were read before the kill"
[ "$pend" = 0 ] && [ "$(group_lag)" = 0 ] &&
    ok "after kill -9 mid-stream and a restart every entry is read and none is pending" ||
    bad "nothing lost or pending after kill -9" "XPENDING = $pend, lag = $(group_lag)"
nfail=$((CRASH_N / 25))
[ "$dl" = "$nfail" ] && [ "$uniq_dl" = "$nfail" ] &&
    ok "each of the $nfail failing entries is dead-lettered exactly once across the crash" ||
    bad "$nfail failing entries dead-lettered once" "XLEN crash-dlq = $dl, distinct = $uniq_dl"

# ---- a consumer's parallelism defaults to its sink Service's max-scale ------
# (docs/eventing.md). Issue 15: serve never wired the Service's max-scale
# into eventing, so the cap was always 10. A sink that sleeps 1 s per event
# with max-scale 2 and a backlog of 30: the source must never run more than
# 2 deliveries at once.
if [ -n "${SLOW:-}" ] && [ -f "$SLOW" ]; then
    "$WASMFN" deploy slowsink "$SLOW" --max-scale 2 -q >/dev/null
    for i in $(seq 1 30); do R XADD slowq '*' n "$i" >/dev/null; done
    cat >"$tmp/slowq.yaml" <<EOF
apiVersion: sources.knative.dev/v1alpha1
kind: RedisStreamSource
metadata: { name: slowq }
spec:
  address: redis://127.0.0.1:$rport
  stream: slowq
  group: wasmfn
  sink: { ref: { kind: Service, name: slowsink } }
EOF
    "$WASMFN" apply -f "$tmp/slowq.yaml" >/dev/null
    most=0
    for _ in $(seq 1 30); do
        p=$(curl -s -H "Authorization: Bearer $WASMFN_TOKEN" "$WASMFN_API/v1/eventing" |
            python3 -c 'import json, sys
print(next((o["status"]["parallelism"] for o in json.load(sys.stdin) if o["name"] == "slowq"), ""))')
        [ -n "$p" ] && [ "$p" -gt "$most" ] && most=$p
        sleep 0.1
    done
    [ "$most" -ge 1 ] && [ "$most" -le 2 ] &&
        ok "a source's parallelism is capped by its sink Service's max-scale (at most 2, saw $most)" ||
        bad "parallelism capped by the sink's max-scale 2" "highest parallelism seen: $most"
    curl -s -X DELETE -H "Authorization: Bearer $WASMFN_TOKEN" \
        "$WASMFN_API/v1/eventing/RedisStreamSource/slowq" >/dev/null

    # A dead-letter sink that is a Service: the dead letter is an
    # in-process call too (made synchronously by the consumer thread).
    served() { curl -s "$WASMFN_API/metrics" |
        awk '/^wasmfn_requests_total\{function="slowsink".*code="200"/ { n += $2 } END { print n + 0 }'; }
    before=$(served)
    for i in 1 2; do R XADD dlsvc '*' n "$i" note fail >/dev/null; done
    cat >"$tmp/dlsvc.yaml" <<EOF
apiVersion: sources.knative.dev/v1alpha1
kind: RedisStreamSource
metadata: { name: dlsvc }
spec:
  address: redis://127.0.0.1:$rport
  stream: dlsvc
  group: wasmfn
  sink: { ref: { kind: Service, name: evsink } }
  delivery: { retry: 0, deadLetterSink: { ref: { kind: Service, name: slowsink } } }
EOF
    "$WASMFN" apply -f "$tmp/dlsvc.yaml" >/dev/null
    dl_done() { [ "$(R XPENDING dlsvc wasmfn | head -1)" = 0 ] && [ "$(served)" -ge $((before + 2)) ]; }
    until_ok 15 dl_done &&
        ok "a Service dead-letter sink gets each failed event, and the entries are acked" ||
        bad "dead letters to a Service" "served $(served) (before $before), pending $(R XPENDING dlsvc wasmfn | head -1)"
else
    bad "SLOW (tests/serving/fns/slow.wasm) is needed for the max-scale test"
fi

# ---- listing, drain --------------------------------------------------------
curl -s -H "Authorization: Bearer $WASMFN_TOKEN" "$WASMFN_API/v1/eventing" | grep -q '"orders"' &&
    ok "GET /v1/eventing lists the applied objects" || bad "GET /v1/eventing lists objects"
kill -TERM "$pid"
if wait "$pid"; then ok "SIGTERM drains eventing and the daemon exits 0"; else bad "SIGTERM exit status" "$?"; fi
pid=
finish
