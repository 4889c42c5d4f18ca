#!/usr/bin/env bash
# lifecycle_tests.sh — one function must never hurt the others: the node's
# budget of instances (a function asking for far more gets what fits and a
# warning, the others keep serving, a full node answers 503), modules that
# can never start refused at deploy with 400 (a start function that loops,
# wizer.initialize over the memory limit, 65,536 initial pages) without
# stalling the daemon, and old revisions pruned with their artefacts.
# Starts the real daemon on free loopback ports with a temporary data dir;
# one line per test, then "lifecycle: N passed, M failed".
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples FNS_DIR=build/serving-fns \
#       bash tests/serving/lifecycle_tests.sh     (what `make test-lifecycle` runs)
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
FNS_DIR=$(realpath "${FNS_DIR:-build/serving-fns}")

TMP=$(mktemp -d -t wasmfn-lifecycle.XXXXXX)
SUITE=lifecycle
# shellcheck source=tests/serving/lib.sh
source "$(dirname "$0")/lib.sh"

for f in "$WASMFN" "$EXAMPLES_DIR/hello.wasm" "$FNS_DIR/slow.wasm"; do
    if [[ ! -e $f ]]; then
        echo "lifecycle: $f is missing (run: make all examples serving-fns)" >&2
        exit 1
    fi
done
if ! command -v wat2wasm >/dev/null; then
    echo "lifecycle: wat2wasm (wabt) is missing" >&2
    exit 1
fi

# wat NAME TEXT: assembles TEXT into $TMP/NAME.wasm.
wat() {
    printf '%s\n' "$2" >"$TMP/$1.wat"
    wat2wasm -o "$TMP/$1.wasm" "$TMP/$1.wat" || { echo "lifecycle: wat2wasm $1 failed" >&2; exit 1; }
}

# A WASI command that exits at once; the variants differ in what runs
# before it can serve.
START='(func (export "_start"))'
wat start_loop "(module (memory (export \"memory\") 1) (func \$init (loop \$l (br \$l))) (start \$init) $START)"
wat wizer_loop "(module (memory (export \"memory\") 1) (func (export \"wizer.initialize\") (loop \$l (br \$l))) $START)"
# Grows memory by 1 GiB and traps if it could not (as a real initialiser
# does when its allocator fails).
wat wizer_grow "(module (memory (export \"memory\") 1)
  (func (export \"wizer.initialize\")
    (if (i32.eq (memory.grow (i32.const 16384)) (i32.const -1)) (then unreachable)))
  $START)"
wat huge "(module (memory (export \"memory\") 65536) $START)"

# code URL [curl args...]: the HTTP status (body to $TMP/body, headers to $TMP/headers).
code() {
    local url=$1
    shift
    curl -s -m 30 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$@" "$url"
}

# apply_json JSON: POST /v1/apply; the status, the body in $TMP/body.
apply_json() {
    curl -s -m 60 -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $WASMFN_TOKEN" \
        -H 'Content-Type: application/json' --data-binary "$1" "$ADMIN_URL/v1/apply"
}

# upload F.wasm: its digest.
upload() {
    curl -s -m 30 -H "Authorization: Bearer $WASMFN_TOKEN" --data-binary "@$1" \
        "$ADMIN_URL/v1/blobs" | grep -o 'sha256:[0-9a-f]*'
}

# service NAME DIGEST [extra spec.template.spec JSON] [annotations JSON] [traffic JSON]
service() {
    printf '{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"%s"},"spec":{"template":{"metadata":{"annotations":{%s}},"spec":{%s"containers":[{"image":"%s"%s}]}}%s}}' \
        "$1" "${4:-}" "${3:-}" "$2" "${6:-}" "${5:-}"
}

mkdir -p "$DATA"
SERVE_FLAGS=(--max-instances 8 --keep-revisions 2)
if ! start_daemon; then
    not_ok "daemon starts" "wasmfn serve did not become ready"
    echo "lifecycle: $pass passed, $failed failed"
    exit 1
fi

if grep -q 'node budget: 8 live instances' "$LOG"; then
    ok "the node's budget is logged at start"
else
    not_ok "the node's budget is logged at start" "$(grep -m1 budget "$LOG")"
fi

"$WASMFN" deploy hello "$EXAMPLES_DIR/hello.wasm" -q >/dev/null 2>&1
"$WASMFN" deploy slow "$FNS_DIR/slow.wasm" -q >/dev/null 2>&1

# ---- item 10: a start function that loops ----

# responsive NAME URL...: every URL answers 200 within 100 ms, polled for
# as long as $1 (a pid) runs; records the slowest in $TMP/slowest.
watch_responsive() {
    local pid=$1 slowest=0 t u
    shift
    while kill -0 "$pid" 2>/dev/null; do
        for u in "$@"; do
            t=$(curl -s -m 5 -o /dev/null -w '%{http_code} %{time_total}' "$u")
            if [[ ${t%% *} != 200 ]]; then slowest=999; continue; fi
            t=${t#* }
            if awk -v a="$t" -v b="$slowest" 'BEGIN { exit !(a > b) }'; then slowest=$t; fi
        done
        sleep 0.05
    done
    echo "$slowest" >"$TMP/slowest"
}

for m in start_loop wizer_loop; do
    d=$(upload "$TMP/$m.wasm")
    t0=$(date +%s%N)
    apply_json "$(service loop "$d" '"timeoutSeconds":2,')" >"$TMP/status" &
    apid=$!
    watch_responsive "$apid" "$ADMIN_URL/healthz" "$DATA_URL/fn/hello/"
    wait "$apid"
    ms=$((($(date +%s%N) - t0) / 1000000))
    st=$(cat "$TMP/status")
    body=$(cat "$TMP/body")
    slowest=$(cat "$TMP/slowest")
    if [[ $st == 400 && $body == *"did not finish within 2000 ms"* && $ms -lt 6000 ]]; then
        ok "$m: refused with 400 naming the cause after ${ms} ms"
    else
        not_ok "$m: refused with 400 naming the cause" "status $st after $ms ms: $body"
    fi
    if awk -v s="$slowest" 'BEGIN { exit !(s < 0.1) }'; then
        ok "$m: /healthz and hello answer within 100 ms while it deploys (slowest ${slowest}s)"
    else
        not_ok "$m: /healthz and hello answer within 100 ms while it deploys" "slowest ${slowest}s"
    fi
done
st=$(code "$ADMIN_URL/v1/functions/loop" -H "Authorization: Bearer $WASMFN_TOKEN")
check "a refused deploy leaves nothing behind (404)" "got $st" "$([[ $st == 404 ]]; echo $?)"

# ---- item 11: limits applied while imaging; modules that can never start ----

d=$(upload "$TMP/wizer_grow.wasm")
st=$(apply_json "$(service grow "$d" '' '' '' ',"resources":{"limits":{"memory":"128Mi"}}')")
body=$(cat "$TMP/body")
if [[ $st == 400 && $body == *"wizer.initialize trapped"* ]]; then
    ok "wizer.initialize growing memory past the 128Mi limit: 400"
else
    not_ok "wizer.initialize growing memory past the 128Mi limit: 400" "status $st: $body"
fi
# Under a limit that allows it, the same module deploys; its image (1 GiB
# of memory) is then too large for a revision with 128Mi.
st=$(apply_json "$(service grow "$d" '' '' '' ',"resources":{"limits":{"memory":"2Gi"}}')")
st2=$(apply_json "$(service grow2 "$d" '' '' '' ',"resources":{"limits":{"memory":"128Mi"}}')")
body=$(cat "$TMP/body")
if [[ $st == 200 && $st2 == 400 && $body == *"over the memory limit"* ]]; then
    ok "the same module: 200 under 2Gi, 400 under 128Mi (its image is larger)"
else
    not_ok "the same module: 200 under 2Gi, 400 under 128Mi" "statuses $st $st2: $body"
fi

d=$(upload "$TMP/huge.wasm")
st=$(apply_json "$(service huge "$d")")
body=$(cat "$TMP/body")
if [[ $st == 400 && $body == *"cannot start"*"65536 pages"* ]]; then
    ok "a module with 65,536 initial pages: 400"
else
    not_ok "a module with 65,536 initial pages: 400" "status $st: $body"
fi
"$WASMFN" delete grow >/dev/null 2>&1

# ---- item 9: the node's budget ----

st=$(apply_json "$(service hog "$(upload "$EXAMPLES_DIR/hello.wasm")" '' \
    '"autoscaling.knative.dev/min-scale":"100000","autoscaling.knative.dev/initial-scale":"100000"')")
check "min-scale 100000 is accepted" "status $st: $(cat "$TMP/body")" "$([[ $st == 200 ]]; echo $?)"
# (Under the native tier the interpreted instances are let go when native
# code is ready, and warmed again at the next tick: poll.)
for ((i = 0; i < 100; i++)); do
    json=$("$WASMFN" get hog -o json 2>&1)
    warm=$(grep -o '"warm" *: *[0-9]*' <<<"$json" | grep -o '[0-9]*$')
    [[ ${warm:-0} -ge 3 ]] && break
    sleep 0.1
done
txt=$("$WASMFN" get hog 2>&1)
if [[ ${warm:-0} -ge 1 && ${warm:-0} -le 6 && $json == *'"warnings":["'*"budget"* &&
    $txt == *"Warnings:"*"budget"* ]]; then
    ok "min-scale 100000 gets what fits ($warm warm of a budget of 8) and a warning"
else
    not_ok "min-scale 100000 gets what fits and a warning" "warm ${warm:-?}: $json"
fi
codes=""
for ((i = 0; i < 5; i++)); do codes+="$(code "$DATA_URL/fn/hello/") "; done
check "another function still answers 200 (5 requests)" "$codes" \
    "$([[ $codes == "200 200 200 200 200 " ]]; echo $?)"

# A full node: 12 requests at once that each hold an instance for 1.5 s, on
# a budget of 8. The hog's idle instances give way; what does not fit gets
# 503 with Retry-After (never 500 or 502).
for ((i = 0; i < 12; i++)); do
    curl -s -m 30 -o /dev/null -D "$TMP/h.$i" -w '%{http_code}\n' "$DATA_URL/fn/slow/?ms=1500" \
        >"$TMP/c.$i" &
    BG_PIDS+=($!)
done
wait "${BG_PIDS[@]}" 2>/dev/null
BG_PIDS=()
n200=0 n503=0 other="" retry=1
for ((i = 0; i < 12; i++)); do
    c=$(cat "$TMP/c.$i")
    case $c in
    200) n200=$((n200 + 1)) ;;
    503) n503=$((n503 + 1)); grep -qi '^Retry-After:' "$TMP/h.$i" || retry=0 ;;
    *) other+="$c " ;;
    esac
done
if [[ -z $other && $n503 -ge 1 && $n200 -ge 6 && $retry == 1 ]]; then
    ok "a full node: $n200 served, $n503 answered 503 with Retry-After"
else
    not_ok "a full node answers 503 with Retry-After" "200: $n200, 503: $n503 (Retry-After $retry), other: $other"
fi
st=$(code "$DATA_URL/fn/hello/")
check "and serves again once they end" "got $st" "$([[ $st == 200 ]]; echo $?)"
"$WASMFN" delete hog >/dev/null 2>&1

# ---- item 13: revisions beyond the bound are pruned ----

# Distinct modules (a data segment apart), so each revision has its own
# artefacts on disk.
digests=()
for ((i = 1; i <= 6; i++)); do
    wat "rev$i" "(module (memory (export \"memory\") 1) (data (i32.const 0) \"r$i\") $START)"
    digests+=("$(upload "$TMP/rev$i.wasm")")
done
# rev1 is pinned by a route (0% of the traffic still names it); 2..6 follow.
apply_json "$(service gc "${digests[0]}")" >/dev/null
for ((i = 1; i < 6; i++)); do
    apply_json "$(service gc "${digests[$i]}" '' '' \
        ',"traffic":[{"revisionName":"gc-00001","percent":0},{"latestRevision":true,"percent":100}]')" \
        >"$TMP/status"
done
revs=$("$WASMFN" get gc -o json 2>/dev/null | grep -o '"name" *: *"gc-[0-9]*"' | grep -o 'gc-[0-9]*' |
    sort -u | tr '\n' ' ')
if [[ $revs == "gc-00001 gc-00004 gc-00005 gc-00006 " ]]; then
    ok "--keep-revisions 2: the routed revisions and the 2 newest others remain ($revs)"
else
    not_ok "--keep-revisions 2: the routed revisions and the 2 newest others remain" "got: $revs"
fi
gone=0 kept=0
for i in 1 2 3 4 5; do
    h=${digests[$i]#sha256:}
    n=$(find "$DATA/artifacts" -name "$h.*" | wc -l)
    if ((i <= 2)); then ((n == 0)) && gone=$((gone + 1)); else ((n > 0)) && kept=$((kept + 1)); fi
done
if [[ $gone == 2 && $kept == 3 ]]; then
    ok "the pruned revisions' module artefacts are deleted, the others' kept"
else
    not_ok "the pruned revisions' module artefacts are deleted" "deleted $gone of 2, kept $kept of 3: $(ls "$DATA/artifacts")"
fi
# One more (a module that answers): gc-00004 goes, the function serves.
apply_json "$(service gc "$(upload "$EXAMPLES_DIR/hello.wasm")" '' '' \
    ',"traffic":[{"revisionName":"gc-00001","percent":0},{"latestRevision":true,"percent":100}]')" \
    >/dev/null
revs=$("$WASMFN" get gc -o json 2>/dev/null | grep -o '"name" *: *"gc-[0-9]*"' | grep -o 'gc-[0-9]*' |
    sort -u | tr '\n' ' ')
st=$(code "$DATA_URL/fn/gc/")
if [[ $st == 200 && $revs == "gc-00001 gc-00005 gc-00006 gc-00007 " ]]; then
    ok "the next deploy prunes again and serves ($revs)"
else
    not_ok "the next deploy prunes again and serves" "status $st, revisions $revs"
fi

echo "lifecycle: $pass passed, $failed failed"
[[ $failed == 0 ]]
