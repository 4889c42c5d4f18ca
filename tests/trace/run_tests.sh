#!/usr/bin/env bash
# run_tests.sh — traces, Server-Timing and JSON logs through the real daemon
# (docs/observability.md). A receiver of our own (receiver.py: OTLP/HTTP
# JSON on /v1/traces, and an event sink that fails twice per event) runs on
# loopback; `wasmfn serve --otlp-endpoint` exports to it. Checks the spans
# of a cold request, a warm one, events delivered with retries and events
# into a function; the guest's HTTP_TRACEPARENT; a guest's outbound
# request (its CLIENT span and the traceparent the upstream receives); Server-Timing against the
# time curl measured; `wasmfn logs -o json`; and, with the receiver's port
# closed and a queue of 4 spans, that requests are still served and the
# drops are counted. Prints one line per test and "trace: N passed, M
# failed"; exits non-zero on failure.
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples bash tests/trace/run_tests.sh
set -u

SUITE=trace
WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
FNS_DIR=$(realpath "${FNS_DIR:-build/host-fns}")
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d -t wasmfn-trace.XXXXXX)
# shellcheck source=../serving/lib.sh
source "$HERE/../serving/lib.sh"
t_start=$(date +%s.%N)

RECV="$TMP/recv"
mkdir -p "$RECV"
python3 "$HERE/receiver.py" "$RECV" 2 &
BG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do [[ -f $RECV/port ]] && break; sleep 0.05; done
RPORT=$(cat "$RECV/port" 2>/dev/null)
[[ -n $RPORT ]] || { echo "trace: the receiver did not start"; exit 1; }
SPANS="$RECV/spans.jsonl"

# --tier interp: what is traced does not depend on the tier, and a native
# compile finishing mid-test replaces hello's warm instances, which made the
# "warm request" below a cold start now and then.
start_daemon --workers 2 --tier interp --otlp-endpoint "http://127.0.0.1:$RPORT/" || exit 1

metric() { # metric NAME_WITH_LABELS: its value, or empty
    curl -s "$ADMIN_URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
# spans CHECK ARGS...: spans.py on the received spans, polled until it
# passes (exports come at least every second) or 6 s have gone by.
spans() {
    local out i
    for ((i = 0; i < 60; i++)); do
        if out=$(python3 "$HERE/spans.py" "$SPANS" "$@" 2>&1); then
            echo "$out"
            return 0
        fi
        sleep 0.1
    done
    echo "$out"
    return 1
}
tp() { echo "00-$1-$2-01"; } # tp TRACE SPAN: a sampled traceparent

cat >"$TMP/fns.yaml" <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: cold }
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
    spec:
      containers: [ { image: $EXAMPLES_DIR/hello.wasm } ]
EOF
"$WASMFN" apply -f "$TMP/fns.yaml" >/dev/null &&
    "$WASMFN" deploy hello "$EXAMPLES_DIR/hello.wasm" >/dev/null &&
    "$WASMFN" deploy echo "$EXAMPLES_DIR/echo.wasm" >/dev/null &&
    "$WASMFN" deploy fail "$EXAMPLES_DIR/fail.wasm" >/dev/null ||
    { echo "trace: cannot deploy the examples"; exit 1; }
# hello serves warm once its initial instance is up.
for ((i = 0; i < 100; i++)); do
    [[ $(metric 'wasmfn_instances{function="hello",revision="hello-00001",state="warm"}') =~ ^[1-9] ]] && break
    sleep 0.05
done

# timing_ok HEADERS_FILE CURL_MS WANT_COLD: the Server-Timing header has
# queue, cold and run, their sum is within what curl measured, and cold is
# > 0 exactly when WANT_COLD is 1.
timing_ok() {
    local st
    st=$(tr -d '\r' <"$1" | awk -F': ' 'tolower($1) == "server-timing" { print $2 }')
    echo "Server-Timing: $st; curl ${2} ms"
    awk -v st="$st" -v total="$2" -v cold="$3" 'BEGIN {
        n = split(st, parts, ", ")
        if (n != 3) exit 1
        split("queue cold run", want, " ")
        for (k = 1; k <= 3; k++) {
            if (index(parts[k], want[k] ";dur=") != 1) exit 1
            v[k] = substr(parts[k], length(want[k]) + 6) + 0
            if (v[k] < 0) exit 1
            sum += v[k]
        }
        if (sum > total || (cold == 1) != (v[2] > 0)) exit 1
    }'
}

# ---- a cold request, a warm one -------------------------------------------

T1=$(printf '%032x' 0xc01d)
ms=$(curl -s -D "$TMP/h1" -o "$TMP/b1" -w '%{time_total}' -H "traceparent: $(tp "$T1" 00000000000000a1)" \
    "$DATA_URL/fn/cold/" | awk '{ printf "%.3f", $1 * 1000 }')
detail=$(timing_ok "$TMP/h1" "$ms" 1)
check "Server-Timing of a cold request: queue, cold > 0 and run add up to within the request time" \
    "$detail" "$?"
out=$(spans server "$T1" 00000000000000a1 cold true http)
check "cold request: SERVER span under the client's traceparent, faas.coldstart true, queue/instantiate/run children" \
    "$out" "$?"

T2=$(printf '%032x' 0xa2a2)
ms=$(curl -s -D "$TMP/h2" -o /dev/null -w '%{time_total}' -H "traceparent: $(tp "$T2" 00000000000000a2)" \
    "$DATA_URL/fn/hello/" | awk '{ printf "%.3f", $1 * 1000 }')
detail=$(timing_ok "$TMP/h2" "$ms" 0)
check "Server-Timing of a warm request: cold 0, the sum within the request time" "$detail" "$?"
out=$(spans server "$T2" 00000000000000a2 hello false http)
check "warm request: faas.coldstart false, no instantiate span" "$out" "$?"

# An asynchronous call: its span carries the invocation's id.
T9=$(printf '%032x' 0xa9a9)
loc=$(curl -s -D - -o /dev/null -H 'Prefer: respond-async' -H "traceparent: $(tp "$T9" 00000000000000a9)" \
    "$DATA_URL/fn/hello/" | tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
out=$(spans server "$T9" 00000000000000a9 hello any http)
[[ $? == 0 && -n $loc && ${out#* } == "${loc##*/}" ]]
check "an asynchronous call: its SERVER span's faas.invocation_id is the one in Location" \
    "Location '$loc'; $out" "$?"

# ---- the guest's HTTP_TRACEPARENT ----------------------------------------

T3=$(printf '%032x' 0xe3e3)
body=$(curl -s -H "traceparent: $(tp "$T3" 00000000000000a3)" -H 'tracestate: vendor=x' "$DATA_URL/fn/echo/")
guest_tp=$(grep -o '^HTTP_TRACEPARENT=.*' <<<"$body" | cut -d= -f2)
out=$(spans server "$T3" 00000000000000a3 echo any http)
rc=$?
sid=${out%% *}
[[ $rc == 0 && $guest_tp == "00-$T3-$sid-01" ]] && grep -q '^HTTP_TRACESTATE=vendor=x$' <<<"$body"
check "the guest's HTTP_TRACEPARENT is its SERVER span (same trace), tracestate passed on" \
    "guest saw '$guest_tp', server span $out" "$?"

# A malformed traceparent (upper-case hex) starts a new trace; its
# tracestate is not passed on.
body=$(curl -s -H "traceparent: 00-$(printf '%032X' 0xABCDEF)-00000000000000A4-01" -H 'tracestate: a=b' \
    "$DATA_URL/fn/echo/")
guest_tp=$(grep -o '^HTTP_TRACEPARENT=.*' <<<"$body" | cut -d= -f2)
newtrace=$(cut -d- -f2 <<<"$guest_tp")
out=$(spans server "$newtrace" root echo any http)
rc=$?
[[ $rc == 0 && $newtrace =~ ^[0-9a-f]{32}$ && $newtrace != "$(printf '%032x' 0xabcdef)" ]] &&
    ! grep -q '^HTTP_TRACESTATE=' <<<"$body"
check "a malformed traceparent starts a new trace (a root span), its tracestate dropped" \
    "guest saw '$guest_tp'; $out" "$?"

# Not sampled upstream: nothing recorded, the flag passed on.
T5=$(printf '%032x' 0x5050)
body=$(curl -s -H "traceparent: 00-$T5-00000000000000a5-00" "$DATA_URL/fn/echo/")
guest_tp=$(grep -o '^HTTP_TRACEPARENT=.*' <<<"$body" | cut -d= -f2)
sleep 1.2 # one export interval: a recorded span would have arrived by now
n=$(python3 "$HERE/spans.py" "$SPANS" count "$T5")
[[ $n == 0 && $guest_tp == 00-$T5-*-00 ]]
check "an unsampled traceparent is honoured: no spans, the guest's flag is 00" \
    "$n spans, guest saw '$guest_tp'" "$?"

# ---- a guest's outbound request ---------------------------------------------

UP="http://127.0.0.1:$RPORT/upstream"
"$WASMFN" deploy out "$FNS_DIR/outbound.wasm" --allow-host "http://127.0.0.1:$RPORT" >/dev/null ||
    not_ok "deploy the outbound guest" "failed"
# upstream_tp: the traceparent the upstream saw last.
upstream_tp() { tail -1 "$RECV/upstream.jsonl" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["traceparent"])' 2>&1; }

T10=$(printf '%032x' 0x1010)
body=$(curl -s -H "traceparent: $(tp "$T10" 00000000000000b1)" -H "X-Url: $UP" "$DATA_URL/fn/out/fetch")
srv=$(spans server "$T10" 00000000000000b1 out any http)
rc=$?
cl=$(spans client "$T10" "${srv%% *}" GET "$UP" 200)
rc2=$?
sent=$(upstream_tp)
[[ $rc == 0 && $rc2 == 0 && $body == *status=200* && $sent == "00-$T10-$cl-01" ]]
rc=$?
check "an outbound request: a CLIENT span (method, url.full, status 200) under the call's SERVER span, sent as the upstream's traceparent" \
    "guest: $(tr '\n' ' ' <<<"$body" | cut -c1-80); server: $srv; client: $cl; upstream saw '$sent'" "$rc"

# The guest sets a traceparent of its own: the upstream gets the guest's,
# and the call still records the request (here answered 503: an error).
T11=$(printf '%032x' 0x1111)
own="00-$(printf '%032x' 0x0e0e)-00000000000000e1-01"
body=$(curl -s -H "traceparent: $(tp "$T11" 00000000000000b2)" -H "X-Url: $UP?status=503" \
    -H "X-Traceparent: $own" "$DATA_URL/fn/out/fetch")
srv=$(spans server "$T11" 00000000000000b2 out any http)
rc=$?
cl=$(spans client "$T11" "${srv%% *}" GET "$UP?status=503" 503)
rc2=$?
sent=$(upstream_tp)
[[ $rc == 0 && $rc2 == 0 && $body == *status=503* && $sent == "$own" ]]
check "a guest's own traceparent is kept; its 503 is a CLIENT span in error" \
    "server: $srv; client: $cl; upstream saw '$sent'" "$?"

# ---- events: retries, and events into a function ---------------------------

cat >"$TMP/events.yaml" <<EOF
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: default }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: flaky }
spec:
  broker: default
  filter: { attributes: { type: test.flaky } }
  subscriber: { uri: "http://127.0.0.1:$RPORT/sink" }
  delivery: { retry: 3, backoffPolicy: linear, backoffDelay: PT0.05S }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: tofn }
spec:
  broker: default
  filter: { attributes: { type: test.fn } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: hello } }
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: { name: tick }
spec:
  schedule: "@every 1s"
  data: '{}'
  sink: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: echo } }
EOF
"$WASMFN" apply -f "$TMP/events.yaml" >/dev/null || not_ok "apply the eventing objects" "failed"

T6=$(printf '%032x' 0xe6e6)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$DATA_URL/events/default" -H 'ce-id: ev-flaky' \
    -H 'ce-source: test' -H 'ce-type: test.flaky' -H 'ce-specversion: 1.0' \
    -H "traceparent: $(tp "$T6" 00000000000000a6)" -d '{}')
out=$(spans deliveries "$T6" 00000000000000a6 500,500,204)
rc=$?
# The sink saw each attempt's own span as its traceparent, and the event's
# traceparent extension as ce-traceparent.
sink=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if "ev-flaky" in l]
print(" ".join(r["traceparent"].split("-")[2] for r in rows), rows[0]["ce_traceparent"])
' "$RECV/sink.jsonl" 2>&1)
[[ $code == 202 && $rc == 0 && $sink == "$out 00-$T6-00000000000000a6-01" ]]
check "an event retried twice: one trace, three CLIENT attempt spans (500, 500, 204) under the client's span, each sent as traceparent" \
    "ingress $code; spans: $out; sink saw: $sink" "$?"

T7=$(printf '%032x' 0xe7e7)
curl -s -o /dev/null -X POST "$DATA_URL/events/default" -H 'ce-id: ev-fn' -H 'ce-source: test' \
    -H 'ce-type: test.fn' -H 'ce-specversion: 1.0' -H "traceparent: $(tp "$T7" 00000000000000a7)" -d '{}'
attempt=$(spans deliveries "$T7" 00000000000000a7 200)
out=$(spans server "$T7" "${attempt:-none}" hello any pubsub)
check "an event into a function: its SERVER span (faas.trigger pubsub) is the delivery attempt's child" \
    "attempt: $attempt; $out" "$?"

# The PingSource's events start traces of their own: a CONSUMER root, an
# attempt under it, the function's span (faas.trigger timer) under that.
# (polled: the first tick comes a second after the apply, its spans up to
# a second later)
cat >"$TMP/ping.py" <<'EOF'
import json, sys
spans = []
for line in open(sys.argv[1]):
    for rs in json.loads(line)["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            spans += ss["spans"]
by_id = {s["spanId"]: s for s in spans}
for s in spans:
    attrs = {a["key"]: next(iter(a["value"].values())) for a in s["attributes"]}
    if s["kind"] == 2 and attrs.get("faas.trigger") == "timer" and attrs.get("faas.name") == "echo":
        attempt = by_id.get(s.get("parentSpanId"))
        root = attempt and by_id.get(attempt.get("parentSpanId"))
        if attempt and attempt["kind"] == 3 and root and root["kind"] == 5 and root["name"] == "tick" \
                and "parentSpanId" not in root and root["traceId"] == s["traceId"]:
            print("ok", s["traceId"])
            break
else:
    print("no timer-triggered echo span with an attempt and a root above it")
    sys.exit(1)
EOF
for ((i = 0; i < 60; i++)); do
    ping=$(python3 "$TMP/ping.py" "$SPANS" 2>&1) && break
    sleep 0.1
done
[[ $ping == ok* ]]
check "PingSource events: root CONSUMER span, attempt, the function's SERVER span with faas.trigger timer" \
    "$ping" "$?"

# ---- logs as JSON ----------------------------------------------------------

T8=$(printf '%032x' 0xf8f8)
curl -s -o /dev/null -H "traceparent: $(tp "$T8" 00000000000000a8)" "$DATA_URL/fn/fail/"
# The invocation id of its span (polled until the span arrives).
for ((i = 0; i < 60; i++)); do
    inv=$(python3 -c '
import json, sys
for l in open(sys.argv[1]):
    for rs in json.loads(l)["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                if s["traceId"] == sys.argv[2] and s["kind"] == 2:
                    print([a["value"]["stringValue"] for a in s["attributes"] if a["key"] == "faas.invocation_id"][0])
' "$SPANS" "$T8" 2>/dev/null)
    [[ -n $inv ]] && break
    sleep 0.1
done
"$WASMFN" logs fail -o json >"$TMP/logs.json" 2>&1
out=$(python3 - "$TMP/logs.json" "$T8" "$inv" <<'EOF'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mine = [l for l in lines if l["trace_id"] == sys.argv[2]]
streams = sorted(l["stream"] for l in mine)
ok = (streams == ["stderr", "wasmfn"]
      and all(l["invocation_id"] == sys.argv[3] and l["function"] == "fail"
              and l["revision"] == "fail-00001"
              and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", l["time"]) for l in mine)
      and any("about to fail" in l["line"] for l in mine))
print(f"{len(mine)} lines of the trace, streams {streams}: {mine[:1]}")
sys.exit(0 if ok else 1)
EOF
)
check "wasmfn logs -o json: time, function, revision, invocation and trace ids (the span's), stream, line" \
    "$out" "$?"
text=$("$WASMFN" logs fail | tail -1)
[[ $text =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\ fail-00001:\ wasmfn:\ trap ]]
check "wasmfn logs (text) is unchanged" "$text" "$?"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $WASMFN_TOKEN" \
    "$ADMIN_URL/v1/functions/fail/logs?format=xml")
check "logs?format=xml is a 400" "status $code" "$([[ $code == 400 ]]; echo $?)"

n=$(metric wasmfn_trace_spans_exported_total)
check "wasmfn_trace_spans_exported_total counts the spans the collector took" "value '$n'" \
    "$([[ $n =~ ^[0-9]+$ && $n -gt 10 ]]; echo $?)"

# ---- a collector that is down, a small queue, no Server-Timing --------------

kill -TERM "$DAEMON_PID" 2>/dev/null
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
DATA="$TMP/data2"
start_daemon --workers 2 --otlp-endpoint "http://127.0.0.1:1" --trace-queue-spans 4 --no-server-timing ||
    exit 1
"$WASMFN" deploy hello "$EXAMPLES_DIR/hello.wasm" >/dev/null
good=0
for ((i = 0; i < 20; i++)); do
    c=$(curl -s -D "$TMP/h3" -o /dev/null -w '%{http_code}' "$DATA_URL/fn/hello/")
    [[ $c == 200 ]] && ! grep -qi '^server-timing:' "$TMP/h3" && good=$((good + 1))
done
dropped=$(metric 'wasmfn_trace_spans_dropped_total{reason="queue_full"}')
[[ $good == 20 && $dropped =~ ^[0-9]+$ && $dropped -gt 0 ]]
check "collector down, queue of 4: all 20 requests served (no Server-Timing with --no-server-timing), drops counted" \
    "$good/20 good, dropped{queue_full} '$dropped'" "$?"

# ---- bad flags ---------------------------------------------------------------

err=$("$WASMFN" serve --data "$TMP/d3" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    --otlp-endpoint http://127.0.0.1:1 --trace-sample-ratio 1.5 2>&1)
rc=$?
err2=$("$WASMFN" serve --data "$TMP/d3" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    --otlp-endpoint ftp://x 2>&1)
rc2=$?
[[ $rc != 0 && $err == *--trace-sample-ratio* && $rc2 != 0 && $err2 == *--otlp-endpoint* ]]
check "bad --trace-sample-ratio and --otlp-endpoint: refused, naming the flag" "$err / $err2" "$?"

echo "trace: $pass passed, $failed failed ($(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
[[ $failed == 0 ]]
