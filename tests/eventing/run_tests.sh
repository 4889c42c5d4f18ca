#!/usr/bin/env bash
# run_tests.sh — eventing integration tests. Starts a real redis-server on a
# random loopback port, the HTTP sink tests/eventing/sink.js, and the real
# daemon (`wasmfn serve`: the product's wiring, src/daemon/), applies
# objects through the admin API and posts events to the data plane's
# broker ingress, then checks what reaches the sink, Redis and the metrics.
# Sinks the test observes are `uri:` sinks pointing at sink.js; a Service
# ref names a real Service (here one that does not exist). It checks:
#   manifest errors, broker ingress answers, PingSource timing and restart,
#   a Redis stream of thousands of entries with a failing fraction (acks,
#   dead-letters, attempts, parallelism by lag), SIGKILL mid-stream with
#   restart (own pending entries, and XAUTOCLAIM by another consumer),
#   broker -> trigger filtering and reply events (Redis and memory brokers),
#   and draining on SIGTERM.
# Ends with "eventing: N passed, M failed"; exits non-zero on a failure.
#
#   WASMFN=build/wasmfn bash tests/eventing/run_tests.sh
set -u
WASMFN=${WASMFN:-build/wasmfn}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$HERE/../lib/daemon.sh"
TMP=$(mktemp -d -t wasmfn-eventing.XXXXXX)
pass=0
fail=0
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1${2:+ ($2)}"; }
# check NAME COMMAND...: passes when the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
eq() { [[ "$1" == "$2" ]] || { echo "     got '$1', want '$2'" >&2; return 1; }; }
ge() { (($1 >= $2)) || { echo "     got $1, want >= $2" >&2; return 1; }; }
# wait_until SECONDS COMMAND...: polls every 0.2 s.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    while ((SECONDS < deadline)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
now_ms() { date +%s%3N; }

for tool in redis-server redis-cli node curl; do
    command -v $tool >/dev/null || { echo "eventing: $tool is missing (make deps)"; echo "eventing: 0 passed, 1 failed"; exit 1; }
done
[[ -x $WASMFN ]] || { echo "eventing: $WASMFN not built"; echo "eventing: 0 passed, 1 failed"; exit 1; }

# ---- servers ----

RP=
for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no >"$TMP/redis.log" 2>&1 &
    pid=$!
    if wait_until 5 bash -c "redis-cli -p $port ping 2>/dev/null | grep -q PONG || ! kill -0 $pid"; then
        if kill -0 $pid 2>/dev/null; then RP=$port; PIDS+=($pid); break; fi
    fi
    kill -9 $pid 2>/dev/null
done
[[ -n $RP ]] || { echo "eventing: cannot start redis-server"; echo "eventing: 0 passed, 1 failed"; exit 1; }
rcli() { redis-cli -p "$RP" "$@"; }

node "$HERE/sink.js" "$TMP/sink.port" >"$TMP/sink.log" 2>&1 &
PIDS+=($!)
wait_until 10 test -s "$TMP/sink.port" || { echo "eventing: sink did not start"; exit 1; }
SP=$(cat "$TMP/sink.port")
SINK=http://127.0.0.1:$SP

# start_daemon NAME DATA [SERVE FLAGS]: `wasmfn serve` on random loopback
# ports; sets DP (data plane URL), AP (admin API URL), TOKEN and HPID.
start_daemon() {
    local name=$1 data=$2
    shift 2
    mkdir -p "$data"
    : >"$TMP/$name.log"
    daemon_start "$TMP/$name.log" "$data" --tier interp "$@"
    local rc=$?
    HPID=$daemon_pid
    PIDS+=($HPID)
    ((rc == 0)) || { echo "daemon $name did not start:"; cat "$TMP/$name.log"; return 1; }
    DP=$daemon_url AP=$WASMFN_API TOKEN=$WASMFN_TOKEN
}
apply() { curl -s -o "$TMP/out" -w '%{http_code}' -XPOST -H "Authorization: Bearer $TOKEN" "$AP/v1/apply" -d "$1"; }
delete() { curl -s -o /dev/null -XDELETE -H "Authorization: Bearer $TOKEN" "$AP/v1/eventing/$1"; }
metric() { # metric NAME_AND_LABELS -> value or 0
    curl -s "$AP/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
sinklog() { curl -s "$SINK/log?svc=$1"; }
# js 'EXPR' reads JSON on stdin as `d` and prints EXPR.
js() { node -e "const d = JSON.parse(require('fs').readFileSync(0, 'utf8')); console.log($1)"; }
sinkcount() { sinklog "$1" | js 'd.length'; }

start_daemon main "$TMP/data-main" --redis "redis://127.0.0.1:$RP" || exit 1

# ---- manifests ----

code=$(apply '{"apiVersion":"sources.knative.dev/v1","kind":"PingSource","metadata":{"name":"p0"},"spec":{"sink":{"uri":"http://127.0.0.1:9/"}}}')
check "PingSource without schedule is rejected naming spec.schedule" \
    bash -c "[[ $code == 400 ]] && grep -q 'spec.schedule' '$TMP/out'"
code=$(apply '{"apiVersion":"sources.knative.dev/v1","kind":"PingSource","metadata":{"name":"p0"},"spec":{"schedule":"0 0 * * *","timezone":"Mars/Base","sink":{"uri":"http://127.0.0.1:9/"}}}')
check "unknown time zone is rejected naming spec.timezone" \
    bash -c "[[ $code == 400 ]] && grep -q 'spec.timezone' '$TMP/out'"
code=$(apply '{"apiVersion":"sources.knative.dev/v1","kind":"PingSource","metadata":{"name":"p0"},"spec":{"schedule":"61 * * * *","sink":{"uri":"http://127.0.0.1:9/"}}}')
check "bad cron field is rejected naming the field" \
    bash -c "[[ $code == 400 ]] && grep -q 'spec.schedule: minutes' '$TMP/out'"
code=$(apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"t0"},"spec":{"broker":"b","subscriber":{"uri":"http://127.0.0.1:9/"},"delivery":{"backoffDelay":"5 seconds"}}}')
check "bad backoffDelay is rejected naming spec.delivery.backoffDelay" \
    bash -c "[[ $code == 400 ]] && grep -q 'spec.delivery.backoffDelay' '$TMP/out'"
code=$(apply '{"apiVersion":"sources.knative.dev/v1alpha1","kind":"RedisStreamSource","metadata":{"name":"r0"},"spec":{"stream":"x","sink":{"uri":"http://127.0.0.1:9/"}}}')
check "RedisStreamSource without address is rejected naming spec.address" \
    bash -c "[[ $code == 400 ]] && grep -q 'spec.address' '$TMP/out'"
code=$(apply '{"apiVersion":"sources.knative.dev/v1","kind":"CronJob","metadata":{"name":"x"}}')
check "unsupported kind is rejected" bash -c "[[ $code == 400 ]] && grep -q 'kind' '$TMP/out'"
B1='{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"b1"},"spec":{"delivery":{"retry":1,"backoffDelay":"PT0.01S"},"color":"blue"}}'
code=$(apply "$B1")
check "Broker applies, with a warning for an unknown field" \
    bash -c "[[ $code == 200 ]] && grep -q '\"created\":true' '$TMP/out' && grep -q 'spec.color: unknown field' '$TMP/out'"
code=$(apply "$B1")
check "re-applying an unchanged object reports created:false" \
    bash -c "[[ $code == 200 ]] && grep -q '\"created\":false' '$TMP/out'"

# ---- broker ingress answers ----

post_event() { # post_event BROKER CURL_ARGS... -> status
    local b=$1
    shift
    curl -s -o "$TMP/ingress" -w '%{http_code}' -XPOST "$DP/events/$b" "$@"
}
code=$(post_event nope -H 'ce-specversion: 1.0' -H 'ce-id: 1' -H 'ce-source: s' -H 'ce-type: t')
check "ingress: unknown broker is 404" eq "$code" 404
code=$(post_event b1 -H 'Content-Type: application/json' -d '{"a":1}')
check "ingress: not a CloudEvent is 400 with a reason" \
    bash -c "[[ $code == 400 ]] && grep -q 'not a CloudEvent' '$TMP/ingress'"
code=$(post_event b1 -H 'ce-specversion: 1.0' -H 'ce-id: 1' -H 'ce-source: s')
check "ingress: missing ce-type is 400 naming it" \
    bash -c "[[ $code == 400 ]] && grep -q 'type' '$TMP/ingress'"
head -c 1100000 /dev/zero | tr '\0' 'a' >"$TMP/big" # past the daemon's 1 MiB
code=$(post_event b1 -H 'ce-specversion: 1.0' -H 'ce-id: 1' -H 'ce-source: s' -H 'ce-type: t' --data-binary @"$TMP/big")
check "ingress: oversized event is 400" \
    bash -c "[[ $code == 400 ]] && grep -q 'larger than the limit' '$TMP/ingress'"
code=$(post_event b1 -H 'Content-Type: application/cloudevents+json' -d '{"specversion":"1.0","id":"x"}')
check "ingress: structured event without source is 400" eq "$code" 400

# ---- broker -> trigger filtering and reply events (Redis broker) ----

apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"t-orders"},"spec":{"broker":"b1","filter":{"attributes":{"type":"order.created"}},"subscriber":{"uri":"'"$SINK"'/replier"}}}' >/dev/null
apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"t-replies"},"spec":{"broker":"b1","filter":{"attributes":{"type":"reply.order.created","source":"/replier"}},"subscriber":{"uri":"'"$SINK"'/replies"}}}' >/dev/null
apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"t-all"},"spec":{"broker":"b1","subscriber":{"uri":"'"$SINK"'/all"}}}' >/dev/null
codes=""
for i in 1 2 3 4 5; do
    codes+=$(post_event b1 -H 'ce-specversion: 1.0' -H "ce-id: o$i" -H 'ce-source: /shop' \
        -H 'ce-type: order.created' -H 'Content-Type: application/json' -d "{\"order\":$i}")
    codes+=$(post_event b1 -H 'Content-Type: application/cloudevents+json' \
        -d "{\"specversion\":\"1.0\",\"id\":\"x$i\",\"source\":\"/other\",\"type\":\"other.thing\",\"data\":{\"k\":$i}}")
done
check "ingress: 10 good events are 202" eq "$codes" "$(printf '202%.0s' $(seq 1 10))"
wait_until 15 bash -c "[[ \$(curl -s '$SINK/log?svc=all' | node -e 'console.log(JSON.parse(require(\"fs\").readFileSync(0)).length)') -ge 15 ]]"
sleep 0.5
check "trigger filter: the replier got exactly the 5 order.created events" \
    eq "$(sinklog replier | js 'd.map(r => r.type + ":" + r.id).sort().join(",")')" \
    "order.created:o1,order.created:o2,order.created:o3,order.created:o4,order.created:o5"
check "reply events went back to the broker and reached the reply trigger" \
    eq "$(sinklog replies | js 'd.map(r => r.id + "/" + r.source + "/" + r.type).sort().join(",")')" \
    "reply-o1//replier/reply.order.created,reply-o2//replier/reply.order.created,reply-o3//replier/reply.order.created,reply-o4//replier/reply.order.created,reply-o5//replier/reply.order.created"
check "an unfiltered trigger got all 15 events once each" \
    eq "$(sinklog all | js 'new Set(d.map(r => r.id)).size + "/" + d.length')" "15/15"
check "a structured event is delivered in binary mode" \
    eq "$(sinklog all | js 'd.filter(r => r.id === "x3").map(r => r.specversion + " " + r.contentType + " " + r.body).join()')" \
    '1.0 application/json {"k":3}'
check "a reply's data is delivered as its body" \
    eq "$(sinklog replies | js 'd.filter(r => r.id === "reply-o2").map(r => r.body).join()')" '{"replyTo":"o2"}'
check "broker ingress metric counts accepted events (replies do not pass the ingress)" \
    eq "$(metric 'wasmfn_broker_events_total{broker="b1",outcome="accepted"}')" 10
check "trigger metric counts deliveries" \
    eq "$(metric 'wasmfn_events_total{source="",trigger="t-all",outcome="delivered"}')" 15

delete Trigger/t-all
check "deleting a trigger drops its consumer group" \
    wait_until 5 bash -c "! redis-cli -p $RP XINFO GROUPS wasmfn:broker:b1 | grep -q wasmfn-trigger-t-all"
check "the other triggers' groups stay" \
    bash -c "redis-cli -p $RP XINFO GROUPS wasmfn:broker:b1 | grep -q wasmfn-trigger-t-orders"

# ---- PingSource with a seconds schedule ----

t0=$(now_ms)
apply '{"apiVersion":"sources.knative.dev/v1","kind":"PingSource","metadata":{"name":"ping1"},"spec":{"schedule":"*/2 * * * * *","contentType":"application/json","data":"{\"hello\":\"world\"}","sink":{"uri":"'"$SINK"'/ping"}}}' >/dev/null
sleep 5.5
delete PingSource/ping1
n_ping=$(sinkcount ping)
check "PingSource fired every 2 s (>= 2 ticks in 5.5 s)" ge "$n_ping" 2
check "ping events: type, even-second time, on time (< 500 ms late), data" \
    eq "$(sinklog ping | js "JSON.stringify(d.filter(r => { const t = Date.parse(r.time); return !(r.type === 'dev.knative.sources.ping' && t % 2000 === 0 && r.recv - t >= 0 && r.recv - t < 500 && t >= $t0 && r.body === '{\"hello\":\"world\"}'); }).map(r => ({time: r.time, recv: r.recv, type: r.type})))")" "[]"
sleep 2.5
check "a deleted PingSource stops firing" eq "$(sinkcount ping)" "$n_ping"

# ---- Redis stream source: thousands of entries, 10% failing ----

N=3000
seq 1 $N | awk '{ print "XADD big * n " $1 }' | rcli >/dev/null
check "stream filled" eq "$(rcli XLEN big)" $N
apply '{"apiVersion":"sources.knative.dev/v1alpha1","kind":"RedisStreamSource","metadata":{"name":"big","annotations":{"autoscaling.knative.dev/target":"100","autoscaling.knative.dev/max-scale":"8"}},"spec":{"address":"redis://127.0.0.1:'"$RP"'","stream":"big","group":"g","sink":{"uri":"'"$SINK"'/slow-big"},"delivery":{"retry":2,"backoffPolicy":"linear","backoffDelay":"PT0.01S","deadLetterSink":{"uri":"redis://127.0.0.1:'"$RP"'/dlq-big"}}}}' >/dev/null
maxpar=0
drained_big() { [[ $(rcli XLEN dlq-big) == 300 && $(rcli XPENDING big g | head -1) == 0 ]]; }
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    p=$(metric 'wasmfn_source_parallelism{source="big"}')
    ((p > maxpar)) && maxpar=$p
    drained_big && break
    sleep 0.1
done
sleep 1
check "all 300 failing entries are in the dead-letter stream" eq "$(rcli XLEN dlq-big)" 300
check "nothing is left pending in the group" eq "$(rcli XPENDING big g | head -1)" 0
check "the group has no lag" eq "$(rcli XINFO GROUPS big | awk 'p { print; exit } /^lag$/ { p = 1 }')" 0
check "every good entry was delivered with a 2xx" \
    eq "$(sinklog slow-big | js 'new Set(d.filter(r => r.status === 200).map(r => r.n)).size')" 2700
check "every failing entry was tried exactly 3 times (retry: 2)" \
    eq "$(sinklog slow-big | js 'Object.values(d.filter(r => r.status !== 200).reduce((m, r) => (m[r.n] = (m[r.n] || 0) + 1, m), {})).join("").replace(/3/g, "").length + "/" + new Set(d.filter(r => r.status !== 200).map(r => r.n)).size')" "0/300"
dlq_fields() { # dlq_fields STREAM -> one "origin attempts n reason" line per entry
    # redis-cli prints one element a line: id, event, JSON, reason, R,
    # attempts, A, origin, O (the JSON is compact, so one line).
    rcli XRANGE "$1" - + | node -e '
      const v = require("fs").readFileSync(0, "utf8").split("\n");
      const out = [];
      for (let i = 0; i + 7 < v.length; i++) if (v[i] === "event" && v[i + 6] === "origin") {
        const ev = JSON.parse(v[i + 1]);
        out.push([v[i + 7], ev.deadletterattempts, ev.data && ev.data.n,
                  /HTTP 500/.test(ev.deadletterreason) ? "reason" : "other"].join(" "));
        i += 7;
      }
      console.log(out.join("\n"));'
}
dlq_fields dlq-big >"$TMP/dlq-big"
check "dead-lettered events carry deadletterattempts=3 and the HTTP failure reason" \
    eq "$(awk '$2 == 3 && $4 == "reason"' "$TMP/dlq-big" | wc -l)" 300
check "dead-lettered entries are exactly the failing ones, once each" \
    eq "$(awk '{ print $3 }' "$TMP/dlq-big" | sort -u | awk '$1 % 10 == 3' | wc -l)/$(awk '{ print $1 }' "$TMP/dlq-big" | sort -u | wc -l)" "300/300"
check "attempt counters are cleaned up" eq "$(rcli EXISTS wasmfn:attempts:big:g)" 0
check "metrics: delivered 2700, retried 600, dead_lettered 300" \
    eq "$(metric 'wasmfn_events_total{source="big",trigger="",outcome="delivered"}') $(metric 'wasmfn_events_total{source="big",trigger="",outcome="retried"}') $(metric 'wasmfn_events_total{source="big",trigger="",outcome="dead_lettered"}')" "2700 600 300"
check "delivery parallelism rose with the lag (max seen $maxpar, cap 8)" \
    bash -c "(( $maxpar >= 4 && $maxpar <= 8 ))"
check "the sink saw concurrent deliveries" \
    bash -c "(( \$(curl -s '$SINK/stats' | node -e 'console.log(JSON.parse(require(\"fs\").readFileSync(0))[\"slow-big\"].maxConcurrent)') > 1 ))"
sleep 0.5
check "parallelism and backlog fall to zero when idle" \
    eq "$(metric 'wasmfn_source_parallelism{source="big"}') $(metric 'wasmfn_source_backlog{source="big"}')" "0 0"
# A new entry after idling: scale from zero.
rcli XADD big '*' n 100001 >/dev/null
check "an idle source delivers a new entry (scale from zero)" \
    wait_until 5 bash -c "curl -s '$SINK/log?svc=slow-big' | grep -q '\"n\":100001'"

# ---- a bad entry is dead-lettered at once, never retried ----

rcli XADD big '*' event 'not json' >/dev/null
check "a bad entry goes to the dead-letter stream without an attempt" \
    wait_until 5 bash -c "[[ \$(redis-cli -p $RP XLEN dlq-big) == 301 ]]"
check "the bad entry's dead-letter reason names it" \
    bash -c "redis-cli -p $RP XREVRANGE dlq-big + - COUNT 1 | grep -q 'bad entry'"

# ---- SIGKILL mid-stream, restart: own pending entries ----

# check_stream STREAM GROUP DLQ SVC LABEL: the invariants after a crash.
check_stream() {
    local s=$1 g=$2 dlq=$3 svc=$4 label=$5
    # 30 s: well below the default claimMinIdle (60 s), so a restarted
    # consumer must find its own pending entries rather than wait to
    # reclaim them.
    wait_until 30 bash -c "[[ \$(redis-cli -p $RP XPENDING $s $g | head -1) == 0 && \$(redis-cli -p $RP XLEN $dlq) -ge 300 ]]"
    sleep 1.5
    check "$label: nothing pending" eq "$(rcli XPENDING "$s" "$g" | head -1)" 0
    check "$label: no lag" eq "$(rcli XINFO GROUPS "$s" | awk 'p { print; exit } /^lag$/ { p = 1 }')" 0
    check "$label: nothing lost (all 2700 good entries delivered with a 2xx)" \
        eq "$(sinklog "$svc" | js 'new Set(d.filter(r => r.status === 200).map(r => r.n)).size')" 2700
    dlq_fields "$dlq" >"$TMP/$dlq"
    check "$label: each failing entry dead-lettered exactly once (300 entries, 300 origins)" \
        eq "$(wc -l <"$TMP/$dlq")/$(awk '{ print $1 }' "$TMP/$dlq" | sort -u | wc -l)/$(awk '$3 % 10 == 3 { print $3 }' "$TMP/$dlq" | sort -u | wc -l)" "300/300/300"
    check "$label: dead-lettered after exactly 3 attempts in total" \
        eq "$(awk '$2 == 3' "$TMP/$dlq" | wc -l)" 300
    check "$label: no failing entry was attempted more than 3 times" \
        eq "$(sinklog "$svc" | js 'Object.values(d.filter(r => r.status !== 200).reduce((m, r) => (m[r.n] = (m[r.n] || 0) + 1, m), {})).filter(c => c > 3).length')" 0
}

# Broker events accepted before a crash survive it: a trigger whose
# subscriber does not resolve yet keeps them pending across the SIGKILL.
# TSURV SUBSCRIBER: a subscriber object ("missing" is a Service ref that
# does not resolve: no such Service in the daemon).
TSURV() { echo '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"t-surv"},"spec":{"broker":"b1","filter":{"attributes":{"type":"survive"}},"subscriber":'"$1"',"delivery":{"retry":50,"backoffPolicy":"linear","backoffDelay":"PT0.1S"}}}'; }
apply "$(TSURV '{"ref":{"kind":"Service","name":"missing"}}')" >/dev/null
codes=""
for i in 1 2 3 4 5; do
    codes+=$(post_event b1 -H 'ce-specversion: 1.0' -H "ce-id: s$i" -H 'ce-source: /s' -H 'ce-type: survive')
done
check "events for a not-yet-resolvable subscriber are accepted" eq "$codes" 202202202202202

seq 1 $N | awk '{ print "XADD k1 * n " $1 }' | rcli >/dev/null
K1='{"apiVersion":"sources.knative.dev/v1alpha1","kind":"RedisStreamSource","metadata":{"name":"k1","annotations":{"autoscaling.knative.dev/target":"50"}},"spec":{"address":"redis://127.0.0.1:'"$RP"'","stream":"k1","group":"g","consumer":"c1","sink":{"uri":"'"$SINK"'/slow-k1"},"delivery":{"retry":2,"backoffPolicy":"exponential","backoffDelay":"PT0.02S","deadLetterSink":{"uri":"redis://127.0.0.1:'"$RP"'/dlq-k1"}}}}'
apply "$K1" >/dev/null
wait_until 30 bash -c "[[ \$(curl -s '$SINK/log?svc=slow-k1' | node -e 'console.log(JSON.parse(require(\"fs\").readFileSync(0)).length)') -ge 1000 ]]"
kill -9 "$HPID"
wait "$HPID" 2>/dev/null
check "SIGKILL left work pending mid-stream" \
    bash -c "(( \$(redis-cli -p $RP XPENDING k1 g | head -1) > 0 || \$(redis-cli -p $RP XLEN dlq-k1) < 300 ))"
start_daemon main "$TMP/data-main" --redis "redis://127.0.0.1:$RP" || exit 1
apply "$(TSURV '{"uri":"'"$SINK"'/survivors"}')" >/dev/null
check_stream k1 g dlq-k1 slow-k1 "SIGKILL + restart"
check "broker events accepted before the SIGKILL are delivered after the restart" \
    eq "$(sinklog survivors | js '[...new Set(d.map(r => r.id))].sort().join()')" "s1,s2,s3,s4,s5"

# ---- SIGKILL, then another consumer reclaims with XAUTOCLAIM ----

seq 1 $N | awk '{ print "XADD k2 * n " $1 }' | rcli >/dev/null
K2() { echo '{"apiVersion":"sources.knative.dev/v1alpha1","kind":"RedisStreamSource","metadata":{"name":"k2","annotations":{"autoscaling.knative.dev/target":"50"}},"spec":{"address":"redis://127.0.0.1:'"$RP"'","stream":"k2","group":"g","consumer":"'"$1"'","claimMinIdle":"PT1S","sink":{"uri":"'"$SINK"'/slow-k2"},"delivery":{"retry":2,"backoffPolicy":"linear","backoffDelay":"PT0.05S","deadLetterSink":{"uri":"redis://127.0.0.1:'"$RP"'/dlq-k2"}}}}'; }
start_daemon node1 "$TMP/data-node1" --redis "redis://127.0.0.1:$RP" || exit 1
apply "$(K2 first)" >/dev/null
wait_until 30 bash -c "[[ \$(curl -s '$SINK/log?svc=slow-k2' | node -e 'console.log(JSON.parse(require(\"fs\").readFileSync(0)).length)') -ge 1200 ]]"
kill -9 "$HPID"
wait "$HPID" 2>/dev/null
check "entries are pending for the killed consumer" \
    bash -c "(( \$(redis-cli -p $RP XPENDING k2 g - + 100000 first | grep -c .) > 0 ))"
start_daemon node2 "$TMP/data-node2" --redis "redis://127.0.0.1:$RP" || exit 1
apply "$(K2 second)" >/dev/null
check_stream k2 g dlq-k2 slow-k2 "XAUTOCLAIM by another consumer"
check "the other consumer's entries were claimed" eq "$(rcli XPENDING k2 g - + 100000 first | grep -c .)" 0
kill -TERM "$HPID"
wait "$HPID" 2>/dev/null

# ---- memory brokers (no --redis): filtering and replies ----

# Small bounds on queued bytes: 160,000 per trigger, 230,000 in all.
start_daemon mem "$TMP/data-mem" --broker-queue-bytes-per-trigger 160000 --broker-queue-bytes 230000 || exit 1
apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"mb"}}' >/dev/null
apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"m1"},"spec":{"broker":"mb","filter":{"attributes":{"type":"order.created"}},"subscriber":{"uri":"'"$SINK"'/replier"}}}' >/dev/null
apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"m2"},"spec":{"broker":"mb","filter":{"attributes":{"type":"reply.order.created"}},"subscriber":{"uri":"'"$SINK"'/mem-replies"}}}' >/dev/null
curl -s -XPOST "$SINK/reset" >/dev/null
codes=""
for i in 1 2 3; do
    codes+=$(post_event mb -H 'ce-specversion: 1.0' -H "ce-id: m$i" -H 'ce-source: /s' -H 'ce-type: order.created')
    codes+=$(post_event mb -H 'ce-specversion: 1.0' -H "ce-id: n$i" -H 'ce-source: /s' -H 'ce-type: something.else')
done
check "memory broker: 6 events accepted" eq "$codes" "202202202202202202"
wait_until 10 bash -c "[[ \$(curl -s '$SINK/log?svc=mem-replies' | node -e 'console.log(JSON.parse(require(\"fs\").readFileSync(0)).length)') -ge 3 ]]"
sleep 0.3
check "memory broker: filter passes only order.created" \
    eq "$(sinklog replier | js 'd.map(r => r.id).sort().join()')" "m1,m2,m3"
check "memory broker: replies reach the reply trigger" \
    eq "$(sinklog mem-replies | js 'd.map(r => r.id).sort().join()')" "reply-m1,reply-m2,reply-m3"

# ---- memory brokers: queued bytes are bounded ----
# Triggers whose subscriber never resolves keep their events (waiting for a
# retry), so the bytes stay held: 50,000-byte events fill trigger q1's
# 160,000 after three, and q1 + q2 fill the 230,000 of all triggers after
# four. Beyond: 503 with Retry-After, counted, nothing else harmed.
for b in mq mq2; do
    apply "{\"apiVersion\":\"eventing.knative.dev/v1\",\"kind\":\"Broker\",\"metadata\":{\"name\":\"$b\"}}" >/dev/null
done
apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"q1"},"spec":{"broker":"mq","subscriber":{"ref":{"kind":"Service","name":"missing"}},"delivery":{"retry":3,"backoffDelay":"PT30S"}}}' >/dev/null
apply '{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{"name":"q2"},"spec":{"broker":"mq2","subscriber":{"ref":{"kind":"Service","name":"missing"}},"delivery":{"retry":3,"backoffDelay":"PT30S"}}}' >/dev/null
head -c 50000 /dev/zero | tr '\0' 'a' >"$TMP/50k"
big_event() { # big_event BROKER ID -> status; headers in $TMP/ingress.h
    post_event "$1" -D "$TMP/ingress.h" -H 'ce-specversion: 1.0' -H "ce-id: $2" -H 'ce-source: /s' \
        -H 'ce-type: big' --data-binary @"$TMP/50k"
}
retry_after() { tr -d '\r' <"$TMP/ingress.h" | grep -qi '^retry-after: [0-9]'; }
codes=$(big_event mq a1)$(big_event mq a2)$(big_event mq a3)
code=$(big_event mq a4)
check "memory broker: 3 events of 50 KB fit a trigger's 160,000 bytes ($codes)" eq "$codes" 202202202
check "memory broker: the 4th gets 503 with Retry-After naming the trigger" \
    bash -c "[[ $code == 503 ]] && grep -q 'trigger q1' '$TMP/ingress' && $(declare -f retry_after); TMP='$TMP' retry_after"
c1=$(big_event mq2 b1)
c2=$(big_event mq2 b2)
check "memory brokers: past 230,000 bytes in all, 503 with Retry-After ($c1 $c2)" \
    bash -c "[[ $c1 == 202 && $c2 == 503 ]] && grep -q 'memory brokers' '$TMP/ingress' && $(declare -f retry_after); TMP='$TMP' retry_after"
check "memory brokers: refusals counted as outcome=full" \
    eq "$(metric 'wasmfn_broker_events_total{broker="mq",outcome="full"}') $(metric 'wasmfn_broker_events_total{broker="mq2",outcome="full"}')" "1 1"
code=$(post_event mb -H 'ce-specversion: 1.0' -H 'ce-id: small1' -H 'ce-source: /s' -H 'ce-type: order.created')
wait_until 10 bash -c "curl -s '$SINK/log?svc=replier' | grep -q small1"
check "memory broker: a small event to another broker still goes through ($code)" \
    bash -c "[[ $code == 202 ]] && curl -s '$SINK/log?svc=replier' | grep -q small1"
delete Trigger/q1
code=000
wait_until 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -XPOST '$DP/events/mq2' -H 'ce-specversion: 1.0' -H 'ce-id: b3' -H 'ce-source: /s' -H 'ce-type: big' --data-binary @'$TMP/50k') == 202 ]]" && code=202
check "memory brokers: deleting trigger q1 gives its bytes back (mq2 accepts again: $code)" eq "$code" 202

# ---- PingSource: no burst of missed ticks after a restart ----

apply '{"apiVersion":"sources.knative.dev/v1","kind":"PingSource","metadata":{"name":"tick"},"spec":{"schedule":"* * * * * *","sink":{"uri":"'"$SINK"'/tick"}}}' >/dev/null
sleep 2.5
kill -9 "$HPID"
wait "$HPID" 2>/dev/null
down_from=$(now_ms)
sleep 3
down_to=$(now_ms)
start_daemon mem "$TMP/data-mem" || exit 1
sleep 2.5
check "ticks before the crash arrived" \
    bash -c "(( \$(curl -s '$SINK/log?svc=tick' | node -e 'console.log(JSON.parse(require(\"fs\").readFileSync(0)).filter(r => Date.parse(r.time) < $down_from).length)') >= 2 ))"
check "the restored PingSource fires again" \
    bash -c "(( \$(curl -s '$SINK/log?svc=tick' | node -e 'console.log(JSON.parse(require(\"fs\").readFileSync(0)).filter(r => Date.parse(r.time) >= $down_to).length)') >= 1 ))"
check "no tick missed while down was replayed" \
    eq "$(sinklog tick | js "d.filter(r => { const t = Date.parse(r.time); return t > $down_from + 200 && t < $down_to - 200; }).length")" 0
check "no burst after the restart (each tick a second apart)" \
    eq "$(sinklog tick | js "d.filter(r => Date.parse(r.time) >= $down_to).map(r => Date.parse(r.time)).sort().every((t, i, a) => i === 0 || t - a[i - 1] >= 1000)")" true

# ---- drain ----

kill -TERM "$HPID"
rc=0
wait_until 10 bash -c "! kill -0 $HPID 2>/dev/null" || rc=1
wait "$HPID" 2>/dev/null
st=$?
check "SIGTERM drains and exits 0 (status $st)" \
    bash -c "(( $rc == 0 && $st == 0 )) && grep -q draining '$TMP/mem.log'"
if ((st != 0)); then tail -30 "$TMP/mem.log"; fi

echo "eventing: $pass passed, $fail failed"
((fail == 0))
