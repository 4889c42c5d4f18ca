#!/usr/bin/env bash
# tests/ui/run_tests.sh — the dashboards (make test-ui, docs/dashboard.md):
#   1. the admin API's dashboard endpoints and /ui/'s files and headers, by curl;
#   2. deploy/grafana/wasmfn-dashboard.json: a Grafana dashboard model whose
#      every query a real Prometheus (Debian's) scraping this daemon accepts
#      and answers, and whose metric names the daemon exports (grafana.mjs);
#   3. the web dashboard in headless Chromium (dashboard.mjs): log in, the
#      functions listed, the ScaledObjects, a function's plots moving after
#      requests, the live log tail, the token never in a URL.
# One daemon for all of it, in the interpreter (no tier matters here).
# With SCREENSHOTS=DIR the browser saves dashboard-*.png there (make
# ui-screenshots); otherwise into the temporary directory.
#
# Env: WASMFN (binary), EXAMPLES_DIR (built examples), CHROMIUM (default
# chromium on PATH), PROMETHEUS (default prometheus on PATH).
set -u
SUITE=ui
WASMFN=${WASMFN:-build/wasmfn}
EXAMPLES_DIR=$(cd "${EXAMPLES_DIR:-build/examples}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d)
SHOTS=${SCREENSHOTS:-$TMP/shots}
[[ $SHOTS = /* ]] || SHOTS="$ROOT/$SHOTS"
source "$HERE/../serving/lib.sh"
SECONDS=0

SERVE_FLAGS=(--tier interp)
if ! start_daemon; then
    echo "$SUITE: 0 passed, 1 failed"
    exit 1
fi
AUTH=(-H "Authorization: Bearer $WASMFN_TOKEN")

# hello starts at zero, so its first call is a cold start; a PingSource
# and a broker's trigger give the event-source table (and Grafana's
# backlog panel) something to show.
cat >"$TMP/fns.yaml" <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: hello }
spec:
  template:
    metadata:
      annotations: { autoscaling.knative.dev/initial-scale: "0" }
    spec:
      containers: [ { image: $EXAMPLES_DIR/hello.wasm } ]
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: echo }
spec:
  template:
    spec:
      containers: [ { image: $EXAMPLES_DIR/echo.wasm } ]
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: fail }
spec:
  template:
    spec:
      timeoutSeconds: 5
      containers: [ { image: $EXAMPLES_DIR/fail.wasm } ]
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: { name: heartbeat }
spec:
  schedule: "@every 1s"
  data: '{"beat":true}'
  sink: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: echo } }
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: default }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: orders }
spec:
  broker: default
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: echo } }
---
# Two ScaledObjects for the scaling table: echo held at 2 by a cron window
# that is always open (the next end, each minute, comes before the next
# start, on 1 January), fail's reading a server that is not there.
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: { name: echo-scaler }
spec:
  scaleTargetRef: { name: echo }
  pollingInterval: 1
  triggers:
    - type: cron
      metadata: { timezone: UTC, start: "0 0 1 1 *", end: "* * * * *", desiredReplicas: "2" }
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: { name: fail-scaler }
spec:
  scaleTargetRef: { name: fail }
  pollingInterval: 1
  triggers:
    - type: metrics-api
      metadata: { url: "http://127.0.0.1:1/stats", valueLocation: queued, targetValue: "5" }
EOF
out=$("$WASMFN" apply -f "$TMP/fns.yaml" 2>&1)
check "apply three functions, a PingSource, a broker, a trigger and two ScaledObjects" "$out" $?

# Traffic for the endpoints and for /metrics: 5 hello (the first cold),
# 2 failing, 1 event through the broker.
for _ in 1 2 3 4 5; do curl -s -o /dev/null "$DATA_URL/fn/hello/"; done
for _ in 1 2; do curl -s -o /dev/null "$DATA_URL/fn/fail/"; done
curl -s -o /dev/null -X POST "$DATA_URL/events/default" -H 'ce-specversion: 1.0' \
    -H 'ce-id: 1' -H 'ce-source: /test' -H 'ce-type: order.created' -d '{}'

# ---- 1. endpoints and files ------------------------------------------------

json() { node -e "$1" "${@:2}"; }

code=$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN_URL/v1/stats")
check "GET /v1/stats without the token: 401" "got $code" $([[ $code == 401 ]]; echo $?)

# Whether a call is a cold start depends on the autoscaler's tick (hello
# has no warm instance until it decides): the dashboard must count what
# Prometheus counts.
cold=$(metric wasmfn_cold_starts_total 'function="hello"')
s=$(curl -s "${AUTH[@]}" "$ADMIN_URL/v1/stats?window=1m")
json 'const s = JSON.parse(process.argv[1]), cold = +process.argv[2];
      const f = s.functions.find(x => x.name === "hello"), g = s.functions.find(x => x.name === "fail");
      const ok = s.windowSeconds === 60 && s.node.instances.budget > 0 &&
        s.node.memory.processResidentBytes > 0 && f.requests === 5 && f.errors === 0 &&
        cold >= 1 && f.coldStarts === cold && f.coldStartMeanMs > 0 && f.p50Ms > 0 &&
        f.p99Ms >= f.p50Ms && g.requests === 2 && g.errors === 2 && g.errorRate === 1;
      process.exit(ok ? 0 : 1)' "$s" "$cold"
check "/v1/stats: node capacity; hello 5 requests, its $cold cold starts, p50 <= p99; fail 2 errors" "$s" $?

s=$(curl -s "${AUTH[@]}" "$ADMIN_URL/v1/functions/hello/series")
json 'const s = JSON.parse(process.argv[1]);
      const n = s.samples.length, last = s.samples[n - 1];
      const total = s.samples.reduce((a, x) => a + x.requests, 0);
      process.exit(s.stepSeconds === 10 && n === 360 && total === 5 &&
        s.samples.reduce((a, x) => a + x.coldStarts, 0) === +process.argv[2] &&
        last.time <= s.now && s.now - last.time < 10 ? 0 : 1)' "$s" "$cold"
rc=$?
check "/v1/functions/hello/series: 360 samples of 10 s, 5 requests, $cold cold starts" \
    "$(head -c 300 <<<"$s")" $rc

s=$(curl -s "${AUTH[@]}" "$ADMIN_URL/v1/functions/fail/invocations?limit=1")
json 'const a = JSON.parse(process.argv[1]);
      process.exit(a.length === 1 && a[0].status === 502 && a[0].revision === "fail-00001" &&
        a[0].trigger === "http" && a[0].durationMs > 0 ? 0 : 1)' "$s"
check "/v1/functions/fail/invocations?limit=1: the last call, 502" "$s" $?

# Every call is listed with its invocation id and, when it has one, its
# trace id: the same ids its log lines carry (wasmfn logs -o json).
T=4bf92f3577b34da6a3ce929d0e0e4736
curl -s -o /dev/null -H "traceparent: 00-$T-00f067aa0ba902b7-01" "$DATA_URL/fn/fail/"
s=$(curl -s "${AUTH[@]}" "$ADMIN_URL/v1/functions/fail/invocations?limit=2")
logs=$("$WASMFN" logs fail -o json 2>&1)
json 'const [a, logs, t] = [JSON.parse(process.argv[1]), process.argv[2], process.argv[3]];
      const lines = logs.split("\n").filter(l => l.trim()).map(l => JSON.parse(l));
      const mine = lines.filter(l => l.invocation_id === a[0].id);
      process.exit(a.length === 2 && /^[0-9a-f]{32}$/.test(a[0].id) && a[0].traceId === t &&
        /^[0-9a-f]{32}$/.test(a[1].id) && a[1].id !== a[0].id && !("traceId" in a[1]) &&
        mine.length >= 2 && mine.every(l => l.trace_id === t) ? 0 : 1)' "$s" "$logs" "$T"
rc=$?
check "recent invocations carry every call's invocation id and its trace id, as its log lines do" \
    "$s / $(grep -c . <<<"$logs") log lines" $rc

# Events are delivered to echo as CloudEvents: their trigger says so.
for ((i = 0; i < 50; i++)); do
    s=$(curl -s "${AUTH[@]}" "$ADMIN_URL/v1/functions/echo/invocations")
    grep -q '"trigger":"event"' <<<"$s" && break
    sleep 0.1
done
grep -q '"trigger":"event"' <<<"$s"
rc=$?
check "an event delivered to echo is listed with trigger event" "$(head -c 300 <<<"$s")" $rc

bad() { # bad NAME URL WANT_CODE
    local c
    c=$(curl -s -o "$TMP/body" -w '%{http_code}' "${AUTH[@]}" "$2")
    check "$1: $3 naming the fault" "$c $(cat "$TMP/body")" \
        $([[ $c == "$3" ]] && grep -q '"error"' "$TMP/body"; echo $?)
}
bad "window=2h" "$ADMIN_URL/v1/stats?window=2h" 400
bad "window=soon" "$ADMIN_URL/v1/functions/hello/series?window=soon" 400
bad "limit=51" "$ADMIN_URL/v1/functions/hello/invocations?limit=51" 400
bad "series of an unknown function" "$ADMIN_URL/v1/functions/nope/series" 404

hdr=$(curl -s -D - -o "$TMP/index.html" "$ADMIN_URL/ui/")
check "/ui/ served without the token, with the dashboard's page" "$hdr" \
    $(grep -q '^HTTP/1.1 200' <<<"$hdr" && grep -q 'id="login-form"' "$TMP/index.html"; echo $?)
check "/ui/ headers: CSP default-src 'self', frame-ancestors 'none', nosniff" "$hdr" \
    $(grep -qi "^content-security-policy: default-src 'self';.*frame-ancestors 'none'" <<<"$hdr" &&
      grep -qi '^x-content-type-options: nosniff' <<<"$hdr"; echo $?)
check "/ui/index.html has no inline script" "" \
    $(! grep -q '<script>' "$TMP/index.html" && ! grep -qi ' on[a-z]*=' "$TMP/index.html"; echo $?)
code=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$ADMIN_URL/ui/app.js")
check "/ui/app.js: 200 text/javascript" "$code" $([[ $code == "200 text/javascript"* ]]; echo $?)
code=$(curl -s --path-as-is -o /dev/null -w "%{http_code}" "$ADMIN_URL/ui/../admin.token")
check "/ui/../admin.token: not served" "$code" $([[ $code == 404 ]]; echo $?)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$ADMIN_URL/ui/")
check "POST /ui/: 405" "$code" $([[ $code == 405 ]]; echo $?)

# ---- 2. the Grafana dashboard against a real Prometheus ------------------

out=$(node "$HERE/grafana.mjs" "$ROOT/deploy/grafana/wasmfn-dashboard.json" "$ADMIN_URL" "$TMP" \
      "${PROMETHEUS:-prometheus}" 2>&1)
rc=$?
echo "$out" | sed 's/^/     /'
check "deploy/grafana/wasmfn-dashboard.json: valid, every query answered by Prometheus over this daemon" \
    "see above" $rc

# ---- 3. the web dashboard in Chromium -----------------------------------

mkdir -p "$SHOTS"
out=$(node "$HERE/dashboard.mjs" "$ADMIN_URL" "$DATA_URL" "$WASMFN_TOKEN" "$SHOTS" 2>&1)
rc=$?
echo "$out" | sed 's/^/     /'
check "the dashboard in headless Chromium" "see above" $rc

echo "$SUITE: $pass passed, $failed failed (${SECONDS} s)"
[[ $failed == 0 ]]
