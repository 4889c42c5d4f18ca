#!/usr/bin/env bash
# async_tests.sh — asynchronous invocation (`Prefer: respond-async`,
# DESIGN.md §4) against the real daemon: the data plane answers 202 with a
# Location at once, the call runs like any other (counted, logged) and its
# outcome is at `GET /v1/invocations/ID` on the admin API. Starts
# `wasmfn serve` on free loopback ports with a temporary data dir; prints one
# line per test and "async: N passed, M failed"; exits non-zero on failure.
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples FNS_DIR=build/serving-fns \
#       bash tests/serving/async_tests.sh      (what `make test-async` runs)
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
FNS_DIR=$(realpath "${FNS_DIR:-build/serving-fns}")
TMP=$(mktemp -d -t wasmfn-async.XXXXXX)
# shellcheck source=tests/lib/daemon.sh
. "$(dirname "$0")/../lib/daemon.sh"
PID=
pass=0
failed=0

cleanup() {
    if [[ -n $PID ]]; then
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok   $1"; pass=$((pass + 1)); }
not_ok() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# start_daemon [serve options]: starts `wasmfn serve` on a fresh data dir
# ($DATA) and sets PID, DATA_URL, WASMFN_API, WASMFN_TOKEN and AUTH.
start_daemon() {
    DATA=$(mktemp -d "$TMP/data.XXXXXX")
    LOG=$DATA.log # one per daemon: never read the line of the one before
    daemon_start "$LOG" "$DATA" --workers 2 "$@"
    local rc=$?
    PID=$daemon_pid DATA_URL=$daemon_url
    if ((rc != 0)); then
        echo "async: the daemon did not start; its log:" >&2
        tail -20 "$LOG" >&2
        exit 1
    fi
    AUTH=(-H "Authorization: Bearer $WASMFN_TOKEN")
}
start_daemon

for f in echo fail; do "$WASMFN" deploy "$f" "$EXAMPLES_DIR/$f.wasm" >/dev/null || exit 1; done
"$WASMFN" deploy slow "$FNS_DIR/slow.wasm" --timeout 5 >/dev/null || exit 1

# submit URL [curl args]: sends with Prefer: respond-async; sets CODE, LOC, BODY.
submit() {
    local url=$1
    shift
    CODE=$(curl -s -m 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
        -H 'Prefer: respond-async' "$@" "$url")
    LOC=$(tr -d '\r' <"$TMP/headers" | awk -F': ' 'tolower($1) == "location" {print $2}')
    BODY=$(cat "$TMP/body")
}
# outcome LOC: GETs the record into $TMP/inv (prints the HTTP status).
outcome() {
    curl -s -m 10 -o "$TMP/inv" -w '%{http_code}' "${AUTH[@]}" "$WASMFN_API$1"
}
# wait_done LOC: polls until the record is completed (10 s at most).
wait_done() {
    for ((k = 0; k < 100; k++)); do
        [[ $(outcome "$1") == 200 && $(jq -r .state "$TMP/inv") == completed ]] && return 0
        sleep 0.1
    done
    return 1
}
metric() { # NAME LABEL...: sum of the matching samples
    local name=$1
    shift
    curl -s -m 10 "$WASMFN_API/metrics" | awk -v name="$name" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        index($0, name "{") == 1 { for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) next; s += $NF }
        END { printf "%g\n", s + 0 }'
}

# 1. 202 at once while the guest is still running; the outcome afterwards.
submit "$DATA_URL/fn/slow/?ms=1500"
id=$(jq -r .id <<<"$BODY" 2>/dev/null)
pref=$(tr -d '\r' <"$TMP/headers" | awk -F': ' 'tolower($1) == "preference-applied" {print $2}')
st=$(outcome "$LOC")
state=$(jq -r .state "$TMP/inv" 2>/dev/null)
if [[ $CODE == 202 && $LOC == "/v1/invocations/$id" && ${#id} == 32 && $pref == respond-async &&
    $st == 200 && $state == pending ]]; then
    ok "Prefer: respond-async -> 202, Location /v1/invocations/ID, pending while the guest sleeps"
else
    not_ok "202 and pending" "code $CODE loc '$LOC' id '$id' pref '$pref'; GET $st state '$state'"
fi
if wait_done "$LOC" && [[ $(jq -r .status "$TMP/inv") == 200 && $(jq -r .body "$TMP/inv") == "slept 1500 ms" &&
    $(jq -r .function "$TMP/inv") == slow && $(jq -r .revision "$TMP/inv") == slow-00001 &&
    $(jq -r '.accepted_at <= .started_at and .started_at <= .finished_at' "$TMP/inv") == true ]]; then
    ok "the outcome: status 200, body, function, revision, accepted <= started <= finished"
else
    not_ok "outcome of slow" "$(cat "$TMP/inv")"
fi

# 2. The request (method, path, query, headers, body) reaches the guest.
submit "$DATA_URL/fn/echo/a/b?x=1" -H 'X-Demo: yes' --data-binary 'hello async body'
if [[ $CODE == 202 ]] && wait_done "$LOC" && [[ $(jq -r .status "$TMP/inv") == 200 ]] &&
    jq -r .body "$TMP/inv" | grep -q 'REQUEST_METHOD=POST' &&
    jq -r .body "$TMP/inv" | grep -q 'PATH_INFO=/a/b' &&
    jq -r .body "$TMP/inv" | grep -q 'HTTP_X_DEMO=yes' &&
    jq -r .body "$TMP/inv" | grep -q 'hello async body' &&
    ! jq -r .body "$TMP/inv" | grep -qi 'HTTP_PREFER=x' &&
    [[ $(jq -r '.headers[] | select(.name | ascii_downcase == "content-type") | .value' "$TMP/inv") == text/plain* ]]; then
    ok "the guest sees the request and its body; headers and body are kept"
else
    not_ok "echo outcome" "code $CODE: $(head -c 600 "$TMP/inv")"
fi

# 3. Status codes from the guest and failures are the outcome.
submit "$DATA_URL/fn/echo/?status=418"
s1=$CODE
wait_done "$LOC"; st1=$(jq -r .status "$TMP/inv")
submit "$DATA_URL/fn/fail/"
s2=$CODE
wait_done "$LOC"; st2=$(jq -r .status "$TMP/inv")
sleep 0.2
if [[ $s1 == 202 && $st1 == 418 && $s2 == 202 && $st2 == 502 ]] &&
    "$WASMFN" logs fail 2>/dev/null | grep -q 'wasmfn: trap'; then
    ok "a guest's 418 and a trap's 502 are recorded; the trap is in the function's log"
else
    not_ok "statuses" "echo 202? $s1 -> $st1; fail 202? $s2 -> $st2"
fi

# 4. Several preferences, any case; without it the call is synchronous.
submit "$DATA_URL/fn/echo/" -H 'Prefer: wait=5, Respond-Async'
c1=$CODE
c2=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Prefer: respond-asyncx' "$DATA_URL/fn/echo/")
c3=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$DATA_URL/fn/echo/")
c4=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Prefer: respond-async' "$DATA_URL/fn/nope/")
if [[ $c1 == 202 && $c2 == 200 && $c3 == 200 && $c4 == 404 ]]; then
    ok "'wait=5, Respond-Async' -> 202; 'respond-asyncx' and no Prefer -> 200; unknown function -> 404"
else
    not_ok "Prefer parsing" "list $c1 (202), other token $c2 (200), none $c3 (200), unknown fn $c4 (404)"
fi

# 5. The admin API: auth, unknown ids, methods.
u1=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$WASMFN_API$LOC")
u2=$(outcome /v1/invocations/0123456789abcdef0123456789abcdef)
u3=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X DELETE "${AUTH[@]}" "$WASMFN_API$LOC")
if [[ $u1 == 401 && $u2 == 404 && $u3 == 405 ]]; then
    ok "GET /v1/invocations/ID needs the token (401), unknown id 404, DELETE 405"
else
    not_ok "admin API" "no token $u1 (401), unknown $u2 (404), DELETE $u3 (405)"
fi

# 6. Counted like any request; concurrent async calls all complete.
locs=()
for ((k = 0; k < 20; k++)); do
    submit "$DATA_URL/fn/slow/?ms=200"
    [[ $CODE == 202 ]] && locs+=("$LOC")
done
all=1
for l in "${locs[@]}"; do
    wait_done "$l" && [[ $(jq -r .status "$TMP/inv") == 200 ]] || all=0
done
n=$(metric wasmfn_requests_total 'function="slow"' 'code="200"')
if [[ ${#locs[@]} == 20 && $all == 1 && $n == 21 ]]; then
    ok "20 async calls queued at once all complete with 200; wasmfn_requests_total counts them (21)"
else
    not_ok "many async calls" "${#locs[@]} accepted, all completed: $all, requests_total{slow,200} = $n (want 21)"
fi

# 7. SIGTERM lets an accepted async call finish before exiting: the daemon
# is still there while the 1 s guest runs, then exits 0.
submit "$DATA_URL/fn/slow/?ms=1000"
kill -TERM "$PID"
sleep 0.3
alive=no
kill -0 "$PID" 2>/dev/null && alive=yes
wait "$PID"
rc=$?
PID=
if [[ $CODE == 202 && $alive == yes && $rc == 0 ]]; then
    ok "SIGTERM drains an accepted async call and exits 0"
else
    not_ok "drain" "code $CODE, alive 0.3 s after SIGTERM: $alive, exit $rc"
fi

# 8. Pending asynchronous calls are bounded by count and by bytes of bodies,
# per revision and per process (a second daemon with small bounds): beyond
# a bound the client gets 503 with Retry-After and nothing is queued; the
# calls accepted before complete and synchronous requests are served.
start_daemon --async-max-pending-per-revision 4 --async-max-pending 6 \
    --async-max-bytes-per-revision 1Mi --async-max-bytes 1536Ki
"$WASMFN" deploy echo "$EXAMPLES_DIR/echo.wasm" >/dev/null || exit 1
for f in slow slow2; do "$WASMFN" deploy "$f" "$FNS_DIR/slow.wasm" --timeout 30 >/dev/null || exit 1; done
# refused URL [curl args]: submits; true when it got 503 with a Retry-After.
refused() {
    submit "$@"
    [[ $CODE == 503 ]] && tr -d '\r' <"$TMP/headers" | grep -qi '^retry-after: [0-9]'
}
locs=()
codes=
for ((k = 0; k < 4; k++)); do
    submit "$DATA_URL/fn/slow/?ms=700"
    codes+=" $CODE"
    [[ $CODE == 202 ]] && locs+=("$LOC")
done
refused "$DATA_URL/fn/slow/?ms=700" && r1=yes || r1="no ($CODE: $BODY)"
for ((k = 0; k < 2; k++)); do
    submit "$DATA_URL/fn/slow2/?ms=700"
    codes+=" $CODE"
    [[ $CODE == 202 ]] && locs+=("$LOC")
done
refused "$DATA_URL/fn/slow2/?ms=700" && r2=yes || r2="no ($CODE: $BODY)"
sync=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$DATA_URL/fn/echo/")
all=1
for l in "${locs[@]}"; do
    wait_done "$l" && [[ $(jq -r .status "$TMP/inv") == 200 ]] || all=0
done
after=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Prefer: respond-async' "$DATA_URL/fn/slow/?ms=0")
nrev=$(metric wasmfn_async_rejected_total 'function="slow"' 'limit="revision"')
nproc=$(metric wasmfn_async_rejected_total 'function="slow2"' 'limit="process"')
if [[ ${#locs[@]} == 6 && $r1 == yes && $r2 == yes && $sync == 200 && $all == 1 && $after == 202 &&
    $nrev == 1 && $nproc == 1 ]]; then
    ok "pending async calls bounded by count: 503 + Retry-After per revision and per process; the 6 accepted complete"
else
    not_ok "async count bounds" "accepted:$codes; 5th to slow refused: $r1; 3rd to slow2 refused: $r2;
        sync $sync; all completed: $all; later $after; rejected_total revision $nrev, process $nproc"
fi
head -c $((600 * 1024)) /dev/zero >"$TMP/600k"
head -c $((400 * 1024)) /dev/zero >"$TMP/400k"
submit "$DATA_URL/fn/slow/?ms=700" --data-binary @"$TMP/600k"
b1=$CODE
refused "$DATA_URL/fn/slow/?ms=700" --data-binary @"$TMP/600k" && b2=yes || b2="no ($CODE)"
submit "$DATA_URL/fn/slow2/?ms=700" --data-binary @"$TMP/600k"
b3=$CODE
refused "$DATA_URL/fn/slow2/?ms=700" --data-binary @"$TMP/400k" && b4=yes || b4="no ($CODE)"
msg=$BODY
health=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$WASMFN_API/healthz")
if [[ $b1 == 202 && $b2 == yes && $b3 == 202 && $b4 == yes && $health == 200 && $msg == *pending* ]]; then
    ok "pending async bodies bounded by bytes (1Mi per revision, 1536Ki in all): 503 + Retry-After beyond"
else
    not_ok "async byte bounds" "600K $b1 (202), 600K more refused: $b2, slow2 600K $b3 (202), 400K more refused: $b4; healthz $health; '$msg'"
fi

echo "async: $pass passed, $failed failed"
[[ $failed == 0 ]]
