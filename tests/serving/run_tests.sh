#!/usr/bin/env bash
# run_tests.sh — integration tests of `wasmfn serve`: starts the real daemon
# on free loopback ports with a temporary data dir and drives it only through
# the CLI and HTTP, as a user would. One line per test, then
# "serving: N passed, M failed"; exits non-zero when anything failed.
# Whatever it started is stopped on every exit path (trap).
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples FNS_DIR=build/serving-fns \
#       bash tests/serving/run_tests.sh      (what `make test-serving` runs)
#   ONLY=split bash tests/serving/run_tests.sh   runs the tests whose name matches
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
FNS_DIR=$(realpath "${FNS_DIR:-build/serving-fns}")
SRC_EXAMPLES=$(realpath "$(dirname "$0")/../../examples")
ONLY=${ONLY:-}

TMP=$(mktemp -d -t wasmfn-serving.XXXXXX)
SUITE=serving
# shellcheck source=tests/serving/lib.sh
source "$(dirname "$0")/lib.sh"

# wanted NAME: whether test NAME runs under $ONLY.
wanted() { [[ -z $ONLY || $1 == *$ONLY* ]]; }

for f in "$WASMFN" "$EXAMPLES_DIR/hello.wasm" "$EXAMPLES_DIR/echo.wasm" "$FNS_DIR/slow.wasm" \
    "$FNS_DIR/spin.wasm" "$FNS_DIR/leak.wasm" "$FNS_DIR/noisy.wasm"; do
    if [[ ! -e $f ]]; then
        echo "serving: $f is missing (run: make all examples serving-fns)" >&2
        exit 1
    fi
done

SERVE_HELP=$("$WASMFN" serve --help 2>&1)
has_flag() { grep -q -- "$1" <<<"$SERVE_HELP"; }

MAX_BODY_FLAG=()
MAX_BODY=$((16 * 1024 * 1024))
if has_flag --max-body; then
    MAX_BODY=65536
    MAX_BODY_FLAG=(--max-body "$MAX_BODY")
fi
QUEUE_FLAG=()
QUEUE=100
for q in --queue-per-revision --queue-depth --queue; do
    if has_flag "$q"; then
        QUEUE=2
        QUEUE_FLAG=("$q" "$QUEUE")
        break
    fi
done

SERVE_FLAGS=("${MAX_BODY_FLAG[@]}" "${QUEUE_FLAG[@]}")

# code URL [curl args...]: the HTTP status (body to $TMP/body, headers to $TMP/headers).
code() {
    local url=$1
    shift
    curl -s -m 30 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$@" "$url"
}

# latest NAME: the function's latestRevision from `wasmfn get -o json`.
latest() {
    "$WASMFN" get "$1" -o json 2>/dev/null |
        grep -o '"latestRevision" *: *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/'
}

# A copy of the modules next to the manifests the tests write, so image
# paths relative to the manifest are exercised.
mkdir -p "$TMP/m" "$DATA"
cp "$EXAMPLES_DIR"/*.wasm "$FNS_DIR"/*.wasm "$TMP/m/"

if ! start_daemon; then
    not_ok "daemon starts" "wasmfn serve did not become ready"
    echo "serving: $pass passed, $failed failed"
    exit 1
fi

# ---- the CLI without a daemon, and auth ----

if wanted unreachable; then
    # Port 1 (tcpmux) is closed on any machine that runs these tests.
    out=$(WASMFN_API="http://127.0.0.1:1" "$WASMFN" list 2>&1)
    rc=$?
    if [[ $rc -ne 0 && $out == *"cannot reach the admin API at http://127.0.0.1:1: Connection refused"* &&
        $out == *'is `wasmfn serve` running?'* && $(wc -l <<<"$out") -eq 1 ]]; then
        ok "CLI: unreachable admin API gives one clear line"
    else
        not_ok "CLI: unreachable admin API gives one clear line" "rc=$rc: $out"
    fi
fi

if wanted auth; then
    c1=$(code "$ADMIN_URL/v1/functions")
    c2=$(code "$ADMIN_URL/v1/functions" -H "Authorization: Bearer wrong-$WASMFN_TOKEN")
    c3=$(code "$ADMIN_URL/v1/functions" -H "Authorization: Bearer $WASMFN_TOKEN")
    c4=$(code "$ADMIN_URL/healthz")
    mode=$(stat -c %a "$DATA/admin.token")
    if [[ $c1 == 401 && $c2 == 401 && $c3 == 200 && $c4 == 200 && $mode == 600 ]]; then
        ok "admin API: no token or a wrong one -> 401, right token 200, /healthz open, token file 0600"
    else
        not_ok "admin API auth" "no token $c1, wrong $c2, right $c3 (want 401 401 200), /healthz $c4, token mode $mode"
    fi
    out=$(WASMFN_TOKEN=nope "$WASMFN" list 2>&1)
    rc=$?
    if [[ $rc -ne 0 && $out == *"401"* || $rc -ne 0 && $out == *"refused"* ]]; then
        ok "CLI: a wrong token fails with a message"
    else
        not_ok "CLI: a wrong token fails with a message" "rc=$rc: $out"
    fi
fi

# ---- deploy and route ----

if wanted deploy; then
    out=$("$WASMFN" deploy hello "$TMP/m/hello.wasm" --env GREETING=Howdy --memory 16 --timeout 5 2>&1)
    rc=$?
    if [[ $rc -eq 0 && $out == *hello-00001* ]]; then
        ok "CLI deploy prints the revision (hello-00001)"
    else
        not_ok "CLI deploy" "rc=$rc: $out"
    fi
    c=$(code "$DATA_URL/fn/hello/some/path")
    if [[ $c == 200 ]] && grep -q "Howdy from wasmfn! (path /some/path)" "$TMP/body"; then
        ok "data plane: /fn/hello/some/path -> 200 with PATH_INFO=/some/path and the deploy's env"
    else
        not_ok "data plane by path" "status $c, body: $(head -c 200 "$TMP/body")"
    fi
    c=$(code "$DATA_URL/x/y" -H "Host: hello.default.localhost")
    if [[ $c == 200 ]] && grep -q "Howdy from wasmfn! (path /x/y)" "$TMP/body"; then
        ok "data plane: Host: hello.default.localhost routes, whole path as PATH_INFO"
    else
        not_ok "data plane by Host" "status $c, body: $(head -c 200 "$TMP/body")"
    fi
    out=$("$WASMFN" list 2>&1)
    json=$("$WASMFN" list -o json 2>&1)
    if grep -q '^NAME' <<<"$out" && grep -q '^hello .*hello-00001' <<<"$out" &&
        [[ $json == \[* ]] && grep -q '"latestRevision" *: *"hello-00001"' <<<"$json"; then
        ok "CLI list: a table, and -o json the API's array"
    else
        not_ok "CLI list" "table: $out / json: ${json:0:300}"
    fi
    out=$("$WASMFN" get hello 2>&1)
    if [[ $? -eq 0 && $out == *"hello-00001"* && $out == *"GREETING=Howdy"* && $out == *"16Mi"* ]]; then
        ok "CLI get: shows the revision with its env and memory limit"
    else
        not_ok "CLI get" "$out"
    fi
    out=$("$WASMFN" get nosuchfn 2>&1)
    rc=$?
    if [[ $rc -ne 0 && $out == *nosuchfn* ]]; then
        ok "CLI get of an unknown function fails naming it"
    else
        not_ok "CLI get unknown" "rc=$rc: $out"
    fi
fi

if wanted examples; then
    rcs=""
    outs=""
    for y in "$SRC_EXAMPLES"/*.yaml; do
        outs+=$("$WASMFN" apply -f "$y" 2>&1)$'\n'
        rcs+="$? "
    done
    c1=$(code "$DATA_URL/fn/bonjour/")
    b1=$(cat "$TMP/body")
    c2=$(code "$DATA_URL/fn/hola/")
    b2=$(cat "$TMP/body")
    if [[ $rcs =~ ^(0 )+$ && $c1 == 200 && $b1 == *Bonjour* && $c2 == 200 && $b2 == *Hola* ]]; then
        ok "apply examples/*.yaml (one with two documents): bonjour and hola answer"
    else
        not_ok "apply examples" "exit codes $rcs; bonjour $c1 hola $c2; output: $outs"
    fi
fi

# ---- the CGI mapping ----

if wanted echo; then
    "$WASMFN" apply -f "$SRC_EXAMPLES/echo.yaml" >/dev/null 2>&1
    c=$(code "$DATA_URL/fn/echo/a/b?x=1&y=two" -X PUT -H 'X-Test-Header: abc' \
        -H 'Content-Type: text/x-demo' --data-binary 'the request body')
    missing=""
    for want in REQUEST_METHOD=PUT PATH_INFO=/a/b 'QUERY_STRING=x=1&y=two' HTTP_X_TEST_HEADER=abc \
        CONTENT_TYPE=text/x-demo CONTENT_LENGTH=16 FUNCTION_OWNER=examples; do
        grep -qxF "$want" "$TMP/body" || missing+=" $want"
    done
    if [[ $c == 200 && -z $missing ]] && [[ $(tail -c 16 "$TMP/body") == 'the request body' ]]; then
        ok "echo: CGI env (method, PATH_INFO, QUERY_STRING, HTTP_*, CONTENT_*, config env) and body echoed"
    else
        not_ok "echo CGI" "status $c, missing:$missing; body: $(head -c 600 "$TMP/body")"
    fi
    c=$(code "$DATA_URL/fn/echo/?status=418")
    h=$(grep -ci '^X-Echo-Env-Count:' "$TMP/headers")
    if [[ $c == 418 && $h == 1 ]]; then
        ok "echo: Status and other CGI headers reach the client (418, X-Echo-Env-Count)"
    else
        not_ok "echo status" "status $c (want 418), X-Echo-Env-Count seen $h times"
    fi
    out=$("$WASMFN" invoke echo -d 'via the cli' -H 'X-Cli: yes' --path '/p/q?k=v' 2>&1)
    rc=$?
    if [[ $rc -eq 0 && $out == *REQUEST_METHOD=POST* && $out == *PATH_INFO=/p/q* &&
        $out == *QUERY_STRING=k=v* && $out == *HTTP_X_CLI=yes* && $out == *"via the cli" ]]; then
        ok "CLI invoke: -d, -H, --path reach the function as CGI"
    else
        not_ok "CLI invoke" "rc=$rc: ${out:0:600}"
    fi
    # The invoke endpoint authenticates with the admin token; the function
    # (untrusted code) must not see it, or any function could take over
    # the admin API.
    if [[ $out == *REQUEST_METHOD* && $out != *"$WASMFN_TOKEN"* ]]; then
        ok "CLI invoke: the admin token is not passed to the function"
    else
        not_ok "CLI invoke hides the admin token" "the function saw it: $(grep -i authorization <<<"$out")"
    fi
    printf 'from a file' >"$TMP/in.txt"
    out=$("$WASMFN" invoke echo -X PATCH -d @"$TMP/in.txt" 2>&1)
    if [[ $out == *REQUEST_METHOD=PATCH* && $out == *"from a file" ]]; then
        ok "CLI invoke: -d @FILE and -X"
    else
        not_ok "CLI invoke @FILE" "${out:0:400}"
    fi
fi

if wanted transform; then
    "$WASMFN" apply -f "$SRC_EXAMPLES/transform.yaml" >/dev/null 2>&1
    c=$(code "$DATA_URL/fn/transform/" --data-binary '{"a": 1, "b": {"c": [true, "x"]}, "d": 2.5}')
    body=$(cat "$TMP/body")
    if [[ $c == 200 && $body == '{"A":1,"B":{"C":[true,"x"]},"D":2.5,"_FIELDS":3,"_SUM":3.5}' ]]; then
        ok "transform: JSON object in, keys upper-cased and computed fields out"
    else
        not_ok "transform" "status $c, body $body"
    fi
    c=$(code "$DATA_URL/fn/transform/" --data-binary '{"a": }')
    if [[ $c == 400 ]] && grep -q 'at byte 6' "$TMP/body"; then
        ok "transform: bad JSON -> 400 naming the byte"
    else
        not_ok "transform bad JSON" "status $c, body $(cat "$TMP/body")"
    fi
fi

# ---- limits and failures ----

if wanted unknown; then
    c1=$(code "$DATA_URL/fn/nosuchfn/")
    c2=$(code "$DATA_URL/" -H "Host: nosuchfn.default.localhost")
    if [[ $c1 == 404 && $c2 == 404 ]]; then
        ok "unknown function -> 404 (by path and by Host)"
    else
        not_ok "unknown function" "by path $c1, by Host $c2 (want 404)"
    fi
fi

if wanted body; then
    head -c $((MAX_BODY + 1)) /dev/zero >"$TMP/big"
    c=$(code "$DATA_URL/fn/echo/" -H 'Expect:' --data-binary @"$TMP/big")
    if [[ $c == 413 ]]; then
        ok "body over the limit ($((MAX_BODY + 1)) bytes) -> 413"
    else
        not_ok "oversized body" "status $c (want 413)"
    fi
    c=$(code "$DATA_URL/fn/hello/")
    [[ $c == 200 ]] || not_ok "serving after 413" "hello answered $c"
fi

if wanted fail; then
    "$WASMFN" apply -f "$SRC_EXAMPLES/fail.yaml" >/dev/null 2>&1
    c1=$(code "$DATA_URL/fn/fail/")
    c2=$(code "$DATA_URL/fn/fail/?mode=garbage")
    if [[ $c1 == 502 && $c2 == 502 ]]; then
        ok "failing function -> 502 (a trap, and output that is not CGI)"
    else
        not_ok "failing function" "trap $c1, garbage $c2 (want 502 502)"
    fi
    out=""
    for ((i = 0; i < 20; i++)); do
        out=$("$WASMFN" logs fail 2>&1)
        [[ $out == *"about to fail on purpose (mode trap)"* ]] && break
        sleep 0.1
    done
    if [[ $out == *"about to fail on purpose (mode trap)"* && $out == *fail-00001* ]]; then
        ok "wasmfn logs: the failing function's stderr, with its revision"
    else
        not_ok "wasmfn logs" "${out:0:400}"
    fi
    out=$("$WASMFN" invoke fail 2>&1)
    rc=$?
    if [[ $rc -ne 0 && $out == *502* ]]; then
        ok "CLI invoke of a failing function exits non-zero naming the 502"
    else
        not_ok "CLI invoke failing" "rc=$rc: $out"
    fi
    # logs -f sees a line written after it started.
    "$WASMFN" logs fail -f >"$TMP/follow" 2>&1 &
    fpid=$!
    BG_PIDS+=("$fpid")
    sleep 0.5
    code "$DATA_URL/fn/fail/?mode=followme" >/dev/null
    for ((i = 0; i < 50; i++)); do
        grep -q 'mode followme' "$TMP/follow" && break
        sleep 0.1
    done
    if grep -q 'mode followme' "$TMP/follow" && kill -0 "$fpid" 2>/dev/null; then
        ok "wasmfn logs -f streams new lines and keeps following"
    else
        not_ok "wasmfn logs -f" "got: $(head -c 300 "$TMP/follow")"
    fi
    kill "$fpid" 2>/dev/null
    wait "$fpid" 2>/dev/null
    c=$(code "$DATA_URL/fn/hello/")
    [[ $c == 200 ]] || not_ok "serving after guest traps" "hello answered $c"
fi

if wanted logescape; then
    # A guest's control characters reach no terminal: `wasmfn logs` (and the
    # API's text, and -f) show them escaped, one line per line it wrote.
    "$WASMFN" deploy noisy "$FNS_DIR/noisy.wasm" >/dev/null 2>&1
    "$WASMFN" logs noisy -f >"$TMP/noisy-follow" 2>&1 &
    fpid=$!
    BG_PIDS+=("$fpid")
    c=$(code "$DATA_URL/fn/noisy/")
    for ((i = 0; i < 30; i++)); do
        "$WASMFN" logs noisy >"$TMP/noisy-logs" 2>&1
        grep -q 'end$' "$TMP/noisy-logs" && grep -q 'end$' "$TMP/noisy-follow" && break
        sleep 0.1
    done
    kill "$fpid" 2>/dev/null
    wait "$fpid" 2>/dev/null
    curl -s -m 10 -H "Authorization: Bearer $WASMFN_TOKEN" "$ADMIN_URL/v1/functions/noisy/logs" >"$TMP/noisy-api"
    bad=
    for f in noisy-logs noisy-follow noisy-api; do
        # No ESC, CR, BEL, C1 CSI or stray byte; exactly two lines.
        LC_ALL=C grep -q $'[\x1b\r\x07\xff]\|\xc2\x9b' "$TMP/$f" && bad+=" $f:raw-control"
        [[ $(wc -l <"$TMP/$f") == 2 ]] || bad+=" $f:$(wc -l <"$TMP/$f")-lines"
        grep -qF 'noisy-00001: before\rFAKE 2099-01-01T00:00:00.000Z noisy-00001: forged' "$TMP/$f" || bad+=" $f:cr"
        grep -qF $'noisy-00001: \\x1b[31mred\\x1b[0m \\x1b]0;pwned\\x07 c1:\\u009b bad:\\xff ok:\xc3\xa9\tend' "$TMP/$f" ||
            bad+=" $f:ansi"
    done
    if [[ $c == 200 && -z $bad ]]; then
        ok "guest stderr with \\r, ANSI/OSC, C1 and bad UTF-8: logs, logs -f and the API print it escaped, one line per line"
    else
        not_ok "log escaping" "call $c;$bad: $(head -c 400 "$TMP/noisy-logs" | od -c | head -8)"
    fi
fi

if wanted timeout; then
    "$WASMFN" deploy spin "$TMP/m/spin.wasm" --timeout 1 >/dev/null 2>&1
    start=$(date +%s%N)
    c=$(code "$DATA_URL/fn/spin/")
    ms=$((($(date +%s%N) - start) / 1000000))
    if [[ $c == 504 && $ms -ge 900 && $ms -lt 5000 ]]; then
        ok "a looping function with timeoutSeconds 1 -> 504 after ${ms} ms"
    else
        not_ok "timeout" "status $c after $ms ms (want 504 after about 1 s)"
    fi
    c=$(code "$DATA_URL/fn/hello/")
    [[ $c == 200 ]] || not_ok "serving after a timeout" "hello answered $c"
fi

if wanted leak; then
    # Freed instances' memory slots are reset and reused (warm slots): each
    # request must still find the memory exactly as a fresh instance has
    # it, after requests that wrote a little (restored page by page) or
    # 1 MiB (dropped with madvise), one at a time or 16 at once.
    "$WASMFN" deploy leak "$TMP/m/leak.wasm" >/dev/null 2>&1
    first=$(curl -s -m 10 "$DATA_URL/fn/leak/")
    answers=()
    for ((i = 0; i < 12; i++)); do
        answers+=("$(curl -s -m 10 "$DATA_URL/fn/leak/?big=$((i % 3 == 0))")")
    done
    for ((round = 0; round < 3; round++)); do
        pids=()
        for ((i = 0; i < 16; i++)); do
            curl -s -m 10 "$DATA_URL/fn/leak/?big=$((i % 2))" >"$TMP/leak.$round.$i" &
            pids+=($!)
        done
        BG_PIDS+=("${pids[@]}")
        wait "${pids[@]}"
        for ((i = 0; i < 16; i++)); do answers+=("$(cat "$TMP/leak.$round.$i")"); done
    done
    bad=0
    for a in "${answers[@]}"; do [[ $a == "$first" ]] || bad=$((bad + 1)); done
    if [[ $first =~ ^bss=0\ data=0\ heap=0\ pages=[0-9]+$ && $bad == 0 ]]; then
        ok "fresh instance per request: ${#answers[@]} requests after ones that wrote memory all find it as new ($first)"
    else
        not_ok "no state between requests" "first '$first'; $bad of ${#answers[@]} differ, e.g. '$(printf '%s\n' "${answers[@]}" | grep -v -x -F -- "$first" | head -1)'"
    fi
fi

if wanted queue; then
    "$WASMFN" deploy slow "$TMP/m/slow.wasm" --max-scale 1 --timeout 4 >/dev/null 2>&1
    n=$((QUEUE + 8))
    pids=()
    for ((i = 0; i < n; i++)); do
        curl -s -m 30 -o /dev/null -D "$TMP/q$i.h" -w '%{http_code}\n' \
            "$DATA_URL/fn/slow/?ms=1500" >"$TMP/q$i.c" &
        pids+=($!)
    done
    BG_PIDS+=("${pids[@]}")
    wait "${pids[@]}"
    n200=0 n503=0 n504=0 other="" retry=1
    for ((i = 0; i < n; i++)); do
        c=$(cat "$TMP/q$i.c")
        case $c in
        200) n200=$((n200 + 1)) ;;
        503)
            n503=$((n503 + 1))
            grep -qi '^Retry-After:' "$TMP/q$i.h" || retry=0
            ;;
        504) n504=$((n504 + 1)) ;;
        *) other+=" $c" ;;
        esac
    done
    # With one instance, a 1.5 s function and a 4 s timeout, at most 3 finish;
    # the queue holds $QUEUE; the rest are refused at once.
    if [[ $n503 -ge 1 && $retry == 1 && $n200 -ge 1 && $n200 -le 3 && -z $other ]]; then
        ok "max-scale 1 with a full queue ($QUEUE): $n200 x 200, $n503 x 503 with Retry-After, $n504 x 504"
    else
        not_ok "max-scale and queue" "of $n: $n200 x 200, $n503 x 503 (Retry-After on all: $retry), $n504 x 504, other:$other"
    fi
fi

# ---- revisions and traffic ----

write_svc() { # write_svc FILE NAME GREETING [TRAFFIC-YAML]
    cat >"$1" <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: $2
spec:
  template:
    spec:
      containers:
        - image: ./m/hello.wasm
          env:
            - name: GREETING
              value: "$3"
${4:-}
EOF
}

if wanted revisions; then
    write_svc "$TMP/twin.yaml" twin one
    out1=$("$WASMFN" apply -f "$TMP/twin.yaml" 2>&1)
    out2=$("$WASMFN" apply -f "$TMP/twin.yaml" 2>&1)
    l2=$(latest twin)
    write_svc "$TMP/twin.yaml" twin two
    out3=$("$WASMFN" apply -f "$TMP/twin.yaml" 2>&1)
    l3=$(latest twin)
    c=$(code "$DATA_URL/fn/twin/")
    if [[ $out1 == *"twin-00001 created"* && $out2 == *"twin-00001 unchanged"* && $l2 == twin-00001 &&
        $out3 == *"twin-00002 created"* && $l3 == twin-00002 && $c == 200 ]] &&
        grep -q '^two from' "$TMP/body"; then
        ok "apply twice: same template -> no new revision; changed env -> twin-00002, serving it"
    else
        not_ok "revisions" "1st: $out1 / 2nd: $out2 (latest $l2) / changed: $out3 (latest $l3), status $c"
    fi
fi

if wanted split; then
    write_svc "$TMP/split.yaml" split A
    "$WASMFN" apply -f "$TMP/split.yaml" >/dev/null 2>&1
    write_svc "$TMP/split.yaml" split B "  traffic:
    - { revisionName: split-00001, percent: 50 }
    - { latestRevision: true, percent: 50 }"
    out=$("$WASMFN" apply -f "$TMP/split.yaml" 2>&1)
    a=0 b=0 other=0
    for ((i = 0; i < 200; i++)); do
        body=$(curl -s -m 10 "$DATA_URL/fn/split/")
        case $body in
        A\ from*) a=$((a + 1)) ;;
        B\ from*) b=$((b + 1)) ;;
        *) other=$((other + 1)) ;;
        esac
    done
    if [[ $a -ge 50 && $a -le 150 && $b -ge 50 && $b -le 150 && $other == 0 ]]; then
        ok "traffic 50/50 between split-00001 and split-00002: $a / $b of 200"
    else
        not_ok "traffic split" "split-00001 $a, split-00002 $b, other $other of 200 (apply: $out)"
    fi
fi

# ---- scale to zero ----

if wanted zero; then
    cat >"$TMP/zero.yaml" <<'EOF'
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: zero }
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/window: "6s"
        autoscaling.knative.dev/initial-scale: "0"
    spec:
      containers:
        - image: ./m/hello.wasm
EOF
    zapply=$("$WASMFN" apply -f "$TMP/zero.yaml" 2>&1)
    # Steady traffic for 3 s, so the autoscaler sees concurrency and keeps
    # an instance warm ...
    for ((i = 0; i < 12; i++)); do
        code "$DATA_URL/fn/zero/" >/dev/null
        sleep 0.25
    done
    t_end=$(date +%s%N)
    rev='revision="zero-00001"'
    warm_then=0
    for ((i = 0; i < 25; i++)); do
        warm_then=$(metric wasmfn_instances "$rev" 'state="warm"')
        [[ $warm_then != 0 ]] && break
        sleep 0.2
    done
    # ... then none: it must go to zero after the window, and the next
    # request must be a cold start.
    cold_before=$(metric wasmfn_cold_starts_total "$rev")
    zero_after=""
    t0=$(date +%s%N)
    while (($(date +%s%N) - t0 < 30000000000)); do # up to 30 s for a 6 s window
        w=$(metric wasmfn_instances "$rev" 'state="warm"')
        bz=$(metric wasmfn_instances "$rev" 'state="busy"')
        if [[ $w == 0 && $bz == 0 ]]; then
            zero_after=$((($(date +%s%N) - t_end) / 1000000000))
            break
        fi
        sleep 0.2
    done
    c=$(code "$DATA_URL/fn/zero/")
    cold_after=$(metric wasmfn_cold_starts_total "$rev")
    # The window is 6 s: instances stay warm that long after the traffic,
    # then go.
    if [[ -n $zero_after && $zero_after -ge 4 && $warm_then != 0 && $c == 200 && $cold_before != 0 ]] &&
        awk -v a="$cold_after" -v b="$cold_before" 'BEGIN { exit !(a == b + 1) }'; then
        ok "scale to zero: warm $warm_then -> 0 about ${zero_after}s after the traffic (window 6s); next request is cold start $cold_after"
    else
        not_ok "scale to zero" "warm after traffic $warm_then, reached 0 after: ${zero_after:-never} s; cold starts $cold_before -> $cold_after (want +1); status $c; apply: $zapply"
    fi
fi

# ---- metrics ----

if wanted metrics; then
    m=$(curl -s -m 10 "$ADMIN_URL/metrics")
    missing=""
    for name in wasmfn_requests_total wasmfn_request_duration_seconds_bucket \
        wasmfn_request_duration_seconds_count wasmfn_cold_starts_total \
        wasmfn_cold_start_duration_seconds_bucket wasmfn_instances wasmfn_queue_depth; do
        grep -q "^$name[{ ]" <<<"$m" || missing+=" $name"
    done
    for t in 'wasmfn_requests_total counter' 'wasmfn_request_duration_seconds histogram' \
        'wasmfn_instances gauge' 'wasmfn_queue_depth gauge'; do
        grep -q "^# TYPE $t" <<<"$m" || missing+=" (TYPE $t)"
    done
    req=$(metric wasmfn_requests_total 'function="hello"' 'code="200"')
    if [[ -z $missing && $req != 0 ]]; then
        ok "/metrics: the DESIGN.md §7 names and types; hello's 200s counted ($req)"
    else
        not_ok "/metrics" "missing:$missing; hello 200s: $req"
    fi
fi

# ---- bad input ----

if wanted invalid; then
    cat >"$TMP/bad.yaml" <<'EOF'
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: good-one }
spec:
  template:
    spec:
      containers: [ { image: ./m/hello.wasm } ]
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: bad-one
spec:
  template:
    spec:
      containers:
        - image: ./m/nope.wasm
EOF
    out=$("$WASMFN" apply -f "$TMP/bad.yaml" 2>&1)
    rc=$?
    c=$(code "$DATA_URL/fn/good-one/")
    if [[ $rc -ne 0 && $out == *"bad.yaml: document 2: line 17: spec.template.spec.containers[0].image: ./m/nope.wasm: No such file or directory"* && $c == 404 ]]; then
        ok "invalid manifest (missing image) -> non-zero exit naming file, document, line, field; nothing applied"
    else
        not_ok "invalid manifest (image)" "rc=$rc, good-one $c: $out"
    fi
    cat >"$TMP/bad2.yaml" <<'EOF'
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: bad-two }
spec:
  template:
    spec:
      timeoutSeconds: -5
      containers: [ { image: ./m/hello.wasm } ]
EOF
    out=$("$WASMFN" apply -f "$TMP/bad2.yaml" 2>&1)
    rc=$?
    if [[ $rc -ne 0 && $out == *"bad2.yaml: document 1: line 7: spec.template.spec.timeoutSeconds"* ]]; then
        ok "invalid manifest (the daemon refuses a field) -> error naming file, document, line, field"
    else
        not_ok "invalid manifest (server side)" "rc=$rc: $out"
    fi
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x\n' >"$TMP/bad3.yaml"
    out=$("$WASMFN" apply -f "$TMP/bad3.yaml" 2>&1)
    rc=$?
    if [[ $rc -ne 0 && $out == *"bad3.yaml: document 1: line "* ]]; then
        ok "invalid YAML -> error naming file, document and line"
    else
        not_ok "invalid YAML" "rc=$rc: $out"
    fi
    # The CLI reads a bounded amount for an image: a device (/dev/null here,
    # the same refusal as /dev/zero, which would never end) and a file over
    # 256 MiB (sparse: nothing is written) are refused before any upload.
    truncate -s 300M "$TMP/huge.wasm"
    for img in /dev/null "$TMP/huge.wasm"; do
        printf 'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: devimg}\nspec:\n  template:\n    spec:\n      containers: [ { image: %s } ]\n' \
            "$img" >"$TMP/devimg.yaml"
        out=$(timeout 20 "$WASMFN" apply -f "$TMP/devimg.yaml" 2>&1)
        rc=$?
        want="not a regular file (a character device)"
        [[ $img == /dev/null ]] || want="larger than 256 MiB (314572800 bytes)"
        if [[ $rc == 1 && $out == *"devimg.yaml: document 1: line 7: spec.template.spec.containers[0].image: $img: $want"* &&
            $(code "$DATA_URL/fn/devimg/") == 404 ]]; then
            ok "apply with image $img -> refused before upload: $want"
        else
            not_ok "apply with image $img" "rc=$rc: $out"
        fi
    done
    rm -f "$TMP/huge.wasm"
fi

if wanted module; then
    # A module whose type section claims more bytes than the file holds.
    printf '\0asm\1\0\0\0\1\20\1\140\0\0' >"$TMP/garbage.wasm"
    out=$("$WASMFN" deploy garbage "$TMP/garbage.wasm" 2>&1)
    rc=$?
    c=$(code "$DATA_URL/fn/hello/")
    cg=$(code "$DATA_URL/fn/garbage/")
    if [[ $rc -ne 0 && $out == *garbage.wasm* && $out =~ byte\ (0x[0-9a-fA-F]+|[0-9]+) && $c == 200 && $cg == 404 ]]; then
        ok "invalid module upload -> error with the byte offset; other functions keep serving"
    else
        not_ok "invalid module" "rc=$rc, hello $c, garbage $cg: $out"
    fi
    c=$(code "$ADMIN_URL/v1/blobs" -H "Authorization: Bearer $WASMFN_TOKEN" --data-binary 'not wasm at all')
    if [[ $c == 400 ]] && grep -q '"error"' "$TMP/body"; then
        ok "POST /v1/blobs with garbage -> 400 with a JSON error"
    else
        not_ok "blob garbage" "status $c, body $(head -c 200 "$TMP/body")"
    fi
fi

if wanted delete; then
    out=$("$WASMFN" delete bonjour 2>&1)
    rc=$?
    c=$(code "$DATA_URL/fn/bonjour/")
    l=$("$WASMFN" list 2>&1)
    out2=$("$WASMFN" delete bonjour 2>&1)
    rc2=$?
    if [[ $rc -eq 0 && $c == 404 && $l != *bonjour* && $rc2 -ne 0 && $out2 == *bonjour* ]]; then
        ok "CLI delete: the function is gone (404, not listed); deleting it again fails"
    else
        not_ok "delete" "rc=$rc ($out), then $c, list: $l; again rc=$rc2 ($out2)"
    fi
fi

# ---- crash and restart, then drain ----

if wanted restart; then
    before=$(curl -s -m 10 "$DATA_URL/fn/hello/")
    # Deploy, and SIGKILL right after the acknowledgement.
    "$WASMFN" deploy lastminute "$TMP/m/hello.wasm" --env GREETING=Late >/dev/null 2>&1
    kill -KILL "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
    if start_daemon; then
        c1=$(code "$DATA_URL/fn/hello/")
        b1=$(cat "$TMP/body")
        c2=$(code "$DATA_URL/fn/lastminute/")
        b2=$(cat "$TMP/body")
        l=$(latest twin)
        if [[ $c1 == 200 && $b1 == "$before" && $c2 == 200 && $b2 == Late* && $l == twin-00002 ]]; then
            ok "after SIGKILL and restart on the same data dir every deploy is served"
        else
            not_ok "restart after SIGKILL" "hello $c1 ($b1; before the kill: $before), lastminute $c2 ($b2), twin latest '$l'"
        fi
        # Every module was compiled before the kill, and its compiled form
        # kept in DATA/artifacts: the restart loads those, compiling nothing.
        ser=$(metric wasmfn_module_loads_total 'source="serialized"')
        comp=$(metric wasmfn_module_loads_total 'source="compiled"')
        if [[ $ser != 0 && $comp == 0 ]]; then
            ok "after the restart modules load from their serialised form ($ser), none is compiled"
        else
            not_ok "restart loads serialised modules" "serialized $ser, compiled $comp"
        fi
    else
        not_ok "restart after SIGKILL" "the daemon did not come back"
    fi
fi

if wanted drain && [[ -n $DAEMON_PID ]]; then
    "$WASMFN" deploy slowdrain "$TMP/m/slow.wasm" --timeout 20 >/dev/null 2>&1
    curl -s -m 30 -o "$TMP/drain.body" -w '%{http_code}' "$DATA_URL/fn/slowdrain/?ms=2000" \
        >"$TMP/drain.code" &
    cpid=$!
    BG_PIDS+=("$cpid")
    sleep 0.7
    kill -TERM "$DAEMON_PID"
    wait "$cpid"
    drc=""
    for ((i = 0; i < 150; i++)); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID"
            drc=$?
            break
        fi
        sleep 0.1
    done
    c=$(cat "$TMP/drain.code")
    after=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$DATA_URL/fn/hello/")
    if [[ $c == 200 && $(cat "$TMP/drain.body") == "slept 2000 ms" && $drc == 0 && $after == 000 ]]; then
        ok "SIGTERM drains: the in-flight 2 s request gets 200, then the daemon exits 0"
    else
        not_ok "SIGTERM drain" "in-flight request $c ($(cat "$TMP/drain.body")), daemon exit '${drc:-still running}', afterwards $after"
    fi
    [[ -n $drc ]] && DAEMON_PID=
fi

echo "serving: $pass passed, $failed failed"
if ((failed)); then
    echo "serving: failed: ${failures[*]}"
    echo "serving: last lines of the daemon's log:"
    tail -15 "${LOG:-/dev/null}" 2>/dev/null | sed 's/^/  | /'
    exit 1
fi
exit 0
