#!/usr/bin/env bash
# tests/host/http_tests.sh — outbound HTTP from guests (wasi_experimental_http,
# docs/host-http.md) through `wasmfn serve --workers 1`, against two local
# upstreams (tests/host/upstream.py): A is on the function's allowed list,
# B is not (or only by the name localhost). Each upstream logs every TCP
# connection it accepts, so "refused without a connection being made" is
# checked on the upstream's side. Then the same guest under `wasmfn run
# --allow-host`. Ends with "host-http: N passed, M failed".
#
# Env: WASMFN, EXAMPLES_DIR, FNS_DIR (the built tests/host/fns/*.wasm).
set -u
SUITE=host-http
WASMFN=${WASMFN:-build/wasmfn}
EXAMPLES_DIR=${EXAMPLES_DIR:-build/examples}
FNS_DIR=${FNS_DIR:-build/host-fns}
TMP=$(mktemp -d)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../serving/lib.sh"
t0=$(date +%s.%N)

finish() {
    echo "host-http: $pass passed, $failed failed ($(awk -v a="$t0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }') s)"
    [[ $failed == 0 ]]
    exit
}

# upstream NAME: starts tests/host/upstream.py; sets PORT_NAME.
upstream() {
    : >"$TMP/$1.conns"
    python3 "$HERE/upstream.py" "$TMP/$1.conns" >"$TMP/$1.out" 2>&1 &
    BG_PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q '^port ' "$TMP/$1.out" && break
        sleep 0.05
    done
    printf -v "PORT_$1" '%s' "$(awk '/^port /{print $2}' "$TMP/$1.out")"
}
conns() { wc -l <"$TMP/$1.conns" | tr -d ' '; }

upstream A
upstream B
if [[ -z $PORT_A || -z $PORT_B ]]; then
    not_ok "upstreams start" "$(cat "$TMP/A.out" "$TMP/B.out")"
    finish
fi
A=http://127.0.0.1:$PORT_A
if ! start_daemon --workers 1; then
    not_ok "daemon starts" "see above"
    finish
fi
dep() { "$WASMFN" deploy "$@" -q >/dev/null 2>"$TMP/deploy.err"; }
if ! dep out "$FNS_DIR/outbound.wasm" --timeout 2 --allow-host "$A" \
    --allow-host "http://localhost:$PORT_B" ||
    ! dep closed "$FNS_DIR/outbound.wasm" ||
    ! dep slowup "$FNS_DIR/outbound.wasm" --allow-host "$A/" ||
    ! dep hello "$EXAMPLES_DIR/hello.wasm"; then
    not_ok "deploy" "$(cat "$TMP/deploy.err")"
    finish
fi

# call FN PATH URL [curl args...]: the guest's answer.
call() {
    local fn=$1 path=$2 url=$3
    shift 3
    curl -s -m 20 -H "X-Url: $url" "$@" "$DATA_URL/fn/$fn$path"
}
has() { grep -qxF -- "$2" <<<"$1"; }

# ---- the allowed URL: status, headers and body reach the guest --------------
r=$(call out /fetch "$A/echo?status=201" -H 'X-Method: POST' --data-binary 'ping')
has "$r" "error=0" && has "$r" "status=201" && has "$r" "x-upstream=yes (error 0)" &&
    has "$r" "x-upstream:yes" && has "$r" "content-type:text/plain" && has "$r" "method=POST" &&
    has "$r" "from-guest=yes" && has "$r" "content-type=text/plain" && has "$r" "received=ping" &&
    has "$r" "close=0 close_again=1"
rc=$?
check "allowed URL: the guest gets the upstream's status, headers and body" "$r" $rc
r=$(call out /fetch "$A/redirect")
has "$r" "status=302" && has "$r" "location:/echo"
rc=$?
check "a redirect is handed to the guest, not followed" "$r" $rc
r=$(call out /fetch "$A/big?bytes=300000")
has "$r" "body_bytes=300000 end_error=0"
rc=$?
check "a 300 kB body is read in pieces to its end" "$r" $rc

# ---- refused: no connection is made ------------------------------------------
b0=$(conns B)
r=$(call out /fetch "http://127.0.0.1:$PORT_B/echo")
has "$r" "error=7" && [[ $(conns B) == "$b0" ]]
rc=$?
check "a port not on the list: 7 destination_not_allowed, no connection" "$r; B saw $(conns B)" $rc
r=$(call out /fetch "http://localhost:$PORT_B/echo")
has "$r" "error=7" && [[ $(conns B) == "$b0" ]]
rc=$?
check "a listed name resolving to loopback: 7, no connection" "$r; B saw $(conns B)" $rc
a0=$(conns A)
r=$(call closed /fetch "$A/echo")
has "$r" "error=7" && [[ $(conns A) == "$a0" ]]
rc=$?
check "a function with no allowed hosts: 7, no connection" "$r; A saw $(conns A) (was $a0)" $rc
r=$(call out /fetch "https://127.0.0.1:$PORT_A/echo")
has "$r" "error=7"
rc=$?
check "same host and port with another scheme: 7" "$r" $rc

# ---- limits and hostile arguments ----------------------------------------------
r=$(call out /fetch "$A/big?bytes=17000000")
has "$r" "error=11"
rc=$?
check "a body beyond 16 MiB: 11 request_error" "$r" $rc
r=$(call out /badptr "$A/echo")
want=(req_url_oob=3 req_len_wraps=3 req_status_oob=3 req_body_oob=3 bad_utf8=6 bad_method=8
    bad_headers=9 bad_url=10 close_bad=1 body_bad_handle=1 ok_req=0 header_name_oob=3
    header_written_oob=3 "header_small=4 needed=3" header_missing=5 all_small=4 body_buf_oob=3
    body_len_huge=3 close=0)
miss=
for w in "${want[@]}"; do has "$r" "$w" || miss="$miss [$w]"; done
[[ -z $miss ]]
rc=$?
check "bad pointers, lengths, handles and strings get the interface's error codes" \
    "missing:$miss; got: $r" $rc
r=$(call out /sessions "$A/echo")
has "$r" "s8=0" && has "$r" "s9=13" && has "$r" "close1=0" && has "$r" "after_close=0"
rc=$?
check "a 9th open session: 13 too_many_sessions; closing one frees its place" "$r" $rc

# ---- an upstream that never answers: 504 at the timeout, others served --------
start=$(date +%s%N)
(curl -s -o /dev/null -w '%{http_code}' -m 20 -H "X-Url: $A/hang" "$DATA_URL/fn/out/fetch" \
    >"$TMP/hang.code"; date +%s%N >"$TMP/hang.end") &
hang=$!
sleep 0.3
served=0
for _ in 1 2 3; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -m 5 "$DATA_URL/fn/hello/") == 200 ]] &&
        [[ ! -e $TMP/hang.end ]] && served=$((served + 1))
done
wait "$hang"
code=$(cat "$TMP/hang.code")
ms=$((($(cat "$TMP/hang.end") - start) / 1000000))
[[ $served == 3 && $code == 504 && $ms -ge 1900 && $ms -lt 6000 ]]
rc=$?
check "upstream never answers: 504 at the 2 s timeout ($ms ms) while the one worker serves hello" \
    "hello answered $served/3 during the wait; code $code after $ms ms" $rc

# ---- the wait is billed as duration --------------------------------------------
r=$(call slowup /fetch "$A/slow?ms=700")
billed=$("$WASMFN" usage slowup -o json | python3 -c '
import json, sys
print(next((f["billed_ms"] for f in json.load(sys.stdin) if f["function"] == "slowup"), 0))')
has "$r" "error=0" && [[ ${billed%.*} -ge 700 ]]
rc=$?
check "waiting 700 ms for the upstream is billed (billed_ms $billed)" "$r" $rc

# ---- metrics, configuration, and the daemon still serving ---------------------
d=$(metric wasmfn_outbound_requests_total 'function="out"' 'outcome="denied"')
o=$(metric wasmfn_outbound_requests_total 'function="out"' 'outcome="ok"')
l=$(metric wasmfn_outbound_requests_total 'function="out"' 'outcome="limited"')
t=$(metric wasmfn_outbound_requests_total 'function="out"' 'outcome="timeout"')
[[ $d -ge 3 && $o -ge 4 && $l -ge 2 && $t == 1 ]]
rc=$?
check "wasmfn_outbound_requests_total counts by outcome" "denied $d ok $o limited $l timeout $t" $rc
c1=$(metric wasmfn_outbound_requests_total 'function="closed"')
"$WASMFN" delete closed >/dev/null
c2=$(metric wasmfn_outbound_requests_total 'function="closed"')
[[ $c1 -ge 1 && $c2 == 0 ]]
rc=$?
check "deleting a function removes its outbound series" "before $c1, after $c2" $rc
"$WASMFN" get out -o json | grep -q "\"http://localhost:$PORT_B\""
rc=$?
check "wasmfn get shows the revision's allowed hosts" "$("$WASMFN" get out -o json)" $rc
err=$("$WASMFN" deploy bad "$FNS_DIR/outbound.wasm" --allow-host ftp://x.example 2>&1)
[[ $? != 0 ]] && grep -q 'wasmfn.dev/allowed-hosts.*ftp://x.example' <<<"$err"
rc=$?
check "an entry that is not an http(s) origin is refused at deploy, named" "$err" $rc
cat >"$TMP/bad.yaml" <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: badpath }
spec:
  template:
    metadata:
      annotations: { wasmfn.dev/allowed-hosts: "https://ok.example, https://api.example/v1" }
    spec:
      containers: [ { image: $(cd "$FNS_DIR" && pwd)/outbound.wasm } ]
EOF
err=$("$WASMFN" apply -f "$TMP/bad.yaml" 2>&1)
[[ $? != 0 ]] && grep -q 'a path is not allowed' <<<"$err"
rc=$?
check "an entry with a path is refused at apply" "$err" $rc
[[ $(curl -s -o /dev/null -w '%{http_code}' -m 5 "$DATA_URL/fn/hello/") == 200 ]]
rc=$?
check "the daemon still serves" "" $rc

# ---- wasmfn run links outbound HTTP too -----------------------------------------
# runf URL [run flags...]: outbound.wasm's /fetch of URL under `wasmfn run`.
runf() {
    local url=$1
    shift
    "$WASMFN" run --tier "${TIER:-interp}" --cache-dir "$TMP/cache" --env PATH_INFO=/fetch \
        --env "HTTP_X_URL=$url" "$@" "$FNS_DIR/outbound.wasm"
}
r=$(runf "$A/echo?status=201" --allow-host "$A" 2>&1)
has "$r" "error=0" && has "$r" "status=201" && has "$r" "x-upstream=yes (error 0)" &&
    has "$r" "from-guest=yes"
rc=$?
check "wasmfn run --allow-host: the guest gets the upstream's answer" "$r" $rc
before=$(conns B)
r=$(runf "http://127.0.0.1:$PORT_B/echo" --allow-host "$A" 2>&1)
has "$r" "error=7" && [[ $(conns B) == "$before" ]]
rc=$?
check "wasmfn run: a destination not allowed is refused (7), no connection made" "$r" $rc
start=$(date +%s%N)
r=$(runf "$A/hang" --allow-host "$A" --timeout 500 2>&1)
st=$?
ms=$((($(date +%s%N) - start) / 1000000))
[[ $st == 124 && $ms -lt 5000 ]] && grep -q 'timeout' <<<"$r"
rc=$?
check "wasmfn run --timeout: an upstream that never answers ends the run (124)" \
    "exit $st after $ms ms: $r" $rc
r=$(runf "$A/echo" --allow-host ftp://x.example 2>&1)
st=$?
[[ $st == 125 ]] && grep -q -- "--allow-host 'ftp://x.example'" <<<"$r"
rc=$?
check "wasmfn run: a bad --allow-host is a usage error naming it" "exit $st: $r" $rc
finish
