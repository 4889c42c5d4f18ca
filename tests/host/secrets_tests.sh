#!/usr/bin/env bash
# secrets_tests.sh — Secrets and ConfigMaps as env values through the real
# daemon (docs/secrets.md):
#   - `wasmfn secret set` and a v1 ConfigMap / Secret applied from YAML
#     (data base64, stringData) reach the guest through
#     env[].valueFrom.secretKeyRef / configMapKeyRef; optional refs to a
#     missing object leave the variable unset; a missing one that is not
#     optional is refused with 400 naming it;
#   - the secret's value is found in no API response (functions, revisions,
#     secrets, the apply answer), no line of the daemon's log or the
#     function's log, not in /metrics, and in no file of the data directory
#     (the SQLite WAL included), before and after a change;
#   - changing the secret makes a new revision whose guest sees the new
#     value; the key file is mode 0600; kill -9 and a restart still serve
#     the value; deleting a secret in use is refused (409), and allowed once
#     no serving revision uses it.
# One line per test, then "secrets: N passed, M failed".
#
#   WASMFN=build/wasmfn FNS_DIR=build/host-fns bash tests/host/secrets_tests.sh
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
FNS_DIR=$(realpath "${FNS_DIR:-build/host-fns}")

TMP=$(mktemp -d -t wasmfn-secrets.XXXXXX)
SUITE=secrets
# shellcheck source=tests/serving/lib.sh
source "$(dirname "$0")/../serving/lib.sh"
T0=$(date +%s%N)

if [[ ! -e $FNS_DIR/envdump.wasm ]]; then
    echo "secrets: $FNS_DIR/envdump.wasm is missing (run: make host-fns)" >&2
    exit 1
fi

finish() {
    echo "secrets: $pass passed, $failed failed ($((($(date +%s%N) - T0) / 1000000)) ms)"
    [[ $failed == 0 ]]
    exit
}

# Values nobody could guess or find by chance, fresh for each run.
V1="s3cr3t-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
V2="n3w-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
V3="y4ml-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# Everything a client or operator can read: saved to $TMP/seen as we go.
: >"$TMP/seen"
seen() { tee -a "$TMP/seen"; }
api() { curl -s -m 10 -H "Authorization: Bearer $WASMFN_TOKEN" "$ADMIN_URL$1" | seen; }

# leaks LABEL VALUE...: no API answer seen, log, metric or data-dir file holds a value.
leaks() {
    local label=$1 v where=""
    shift
    api /v1/functions >/dev/null
    api /v1/functions/envdump/revisions >/dev/null
    api /v1/secrets >/dev/null
    api /v1/secrets/db >/dev/null
    api /v1/configmaps >/dev/null
    "$WASMFN" get envdump -o json | seen >/dev/null
    "$WASMFN" list -o json | seen >/dev/null
    "$WASMFN" secret list | seen >/dev/null
    "$WASMFN" logs envdump 2>&1 | seen >/dev/null
    curl -s -m 10 "$ADMIN_URL/metrics" | seen >/dev/null
    for v in "$@"; do
        grep -qa -- "$v" "$TMP/seen" && where+=" API/CLI/metrics/logs of the function"
        grep -qa -- "$v" "$TMP"/serve.*.log && where+=" daemon log"
        grep -rqa -- "$v" "$DATA" && where+=" data dir: $(grep -rla -- "$v" "$DATA" | tr '\n' ' ')"
    done
    check "$label: the value is in no API answer, log, metric or data-dir file" "found in:$where" \
        "$([[ -z $where ]]; echo $?)"
}

if ! start_daemon; then
    not_ok "daemon starts" "see above"
    finish
fi

out=$("$WASMFN" secret set db "password=$V1" user=admin 2>&1 | seen)
check "wasmfn secret set creates the secret" "$out" "$([[ $out == "secret/db: created" ]]; echo $?)"
mode=$(stat -c %a "$DATA/secrets.key")
check "DATA/secrets.key is mode 0600" "mode $mode" "$([[ $mode == 600 ]]; echo $?)"

cat >"$TMP/app.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { mode: fast }
---
apiVersion: v1
kind: Secret
metadata: { name: api }
type: Opaque
data: { token: $(printf '%s' "$V3" | base64 -w0) }
stringData: { region: eu-1 }
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: envdump }
spec:
  template:
    spec:
      containers:
        - image: $FNS_DIR/envdump.wasm
          env:
            - { name: PLAIN, value: hi }
            - name: PASSWORD
              valueFrom: { secretKeyRef: { name: db, key: password } }
            - name: TOKEN
              valueFrom: { secretKeyRef: { name: api, key: token } }
            - name: REGION
              valueFrom: { secretKeyRef: { name: api, key: region } }
            - name: MODE
              valueFrom: { configMapKeyRef: { name: cfg, key: mode } }
            - name: ABSENT
              valueFrom: { secretKeyRef: { name: nosuch, key: x, optional: true } }
YAML
out=$("$WASMFN" apply -f "$TMP/app.yaml" 2>&1 | seen)
check "apply takes a ConfigMap, a Secret and a Service using them" "$out" \
    "$([[ $out == *"configmap/cfg: created"* && $out == *"secret/api: created"* && $out == *"envdump-00001 created"* ]]; echo $?)"
body=$(curl -s -m 10 "$DATA_URL/fn/envdump/")
check "the guest sees the secret's value (secretKeyRef)" "$(grep PASSWORD <<<"$body")" \
    "$(grep -qx "PASSWORD=$V1" <<<"$body"; echo $?)"
check "a Secret's data is base64, stringData plain text" "$(grep -E 'TOKEN|REGION' <<<"$body")" \
    "$(grep -qx "TOKEN=$V3" <<<"$body" && grep -qx 'REGION=eu-1' <<<"$body"; echo $?)"
check "the guest sees the config map's value (configMapKeyRef)" "$(grep MODE <<<"$body")" \
    "$(grep -qx 'MODE=fast' <<<"$body"; echo $?)"
check "an optional reference to a missing secret leaves the variable unset" "$body" \
    "$(! grep -q '^ABSENT=' <<<"$body"; echo $?)"
out=$("$WASMFN" get envdump -o json)
check "wasmfn get shows the reference, not the value" "$out" \
    "$([[ $out == *'"secretKeyRef":{"name":"db","key":"password"'* ]]; echo $?)"
out=$("$WASMFN" secret list)
check "wasmfn secret list shows names and keys" "$out" \
    "$([[ $out == *db*password,user* && $out == *api* ]]; echo $?)"
leaks "after apply" "$V1" "$V3"

# ---- bad input ------------------------------------------------------------------

sed -e 's/name: envdump/name: broken/' -e 's/name: db, key: password/name: db, key: nokey/' \
    "$TMP/app.yaml" | awk 'BEGIN{RS="---"} NR==3' >"$TMP/broken.yaml"
out=$("$WASMFN" apply -f "$TMP/broken.yaml" 2>&1)
check "a reference to a missing key is refused, naming it" "$out" \
    "$([[ $out == *"secret db has no key nokey"* || $out == *"Secret db has no key nokey"* ]]; echo $?)"
printf 'apiVersion: v1\nkind: Secret\nmetadata: { name: bad }\ndata: { k: "not*base64" }\n' >"$TMP/bad.yaml"
out=$("$WASMFN" apply -f "$TMP/bad.yaml" 2>&1)
check "a Secret with bad base64 is refused, naming the key" "$out" \
    "$([[ $out == *"data.k: not valid base64"* ]]; echo $?)"

# ---- a change makes a new revision ---------------------------------------------

out=$("$WASMFN" secret set db "password=$V2" user=admin 2>&1 | seen)
check "changing the secret makes a new revision of the function using it" "$out" \
    "$([[ $out == *"secret/db: configured"* && $out == *"envdump-00002 created"* ]]; echo $?)"
body=$(curl -s -m 10 "$DATA_URL/fn/envdump/")
check "the new revision's guest sees the new value" "$(grep PASSWORD <<<"$body")" \
    "$(grep -qx "PASSWORD=$V2" <<<"$body"; echo $?)"
latest=$("$WASMFN" get envdump -o json | grep -o '"latestRevision":"[^"]*"')
check "the new revision is the latest" "$latest" \
    "$([[ $latest == '"latestRevision":"envdump-00002"' ]]; echo $?)"
leaks "after the change" "$V1" "$V2" "$V3"

# ---- restart -------------------------------------------------------------------

{ kill -KILL "$DAEMON_PID" && wait "$DAEMON_PID"; } 2>/dev/null
DAEMON_PID=
if start_daemon; then
    body=$(curl -s -m 10 "$DATA_URL/fn/envdump/")
    check "after kill -9 and a restart the guest still sees the value" "$(grep PASSWORD <<<"$body")" \
        "$(grep -qx "PASSWORD=$V2" <<<"$body"; echo $?)"
else
    not_ok "daemon restarts" "see above"
    finish
fi

# ---- delete --------------------------------------------------------------------

out=$("$WASMFN" secret delete db 2>&1)
rc=$?
check "deleting a secret in use is refused, naming the function" "exit $rc: $out" \
    "$([[ $rc == 1 && $out == *"in use by function envdump"* ]]; echo $?)"
"$WASMFN" delete envdump >/dev/null
out=$("$WASMFN" secret delete db 2>&1)
check "once no function uses it, it can be deleted" "$out" \
    "$([[ $out == "secret/db: deleted" ]]; echo $?)"
out=$("$WASMFN" secret list)
check "a deleted secret is no longer listed" "$out" "$([[ $out != *"db "* ]]; echo $?)"
leaks "at the end" "$V1" "$V2" "$V3"

finish
