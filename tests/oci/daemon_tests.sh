#!/usr/bin/env bash
# daemon_tests.sh — `make test-oci-daemon`: `wasmfn serve` resolving
# `image:` registry references when a manifest is applied (issue 16).
# Debian's docker-registry runs on loopback (plain HTTP, and with htpasswd
# auth); images are pushed with `wasmfn push` and, for a plain container
# image with a tar layer, copied by skopeo. Each check is what a user sees:
# the apply's output and exit status, the function's answer on the data
# plane, `wasmfn get`.
#
# Needs: WASMFN, HELLO and ECHO (the example modules), docker-registry,
# skopeo, htpasswd, node, curl.
set -uo pipefail

WASMFN=${WASMFN:?set WASMFN to the wasmfn binary}
HELLO=${HELLO:?set HELLO to build/examples/hello.wasm}
ECHO_WASM=${ECHO:?set ECHO to build/examples/echo.wasm}
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=oci-daemon
TMP=$(mktemp -d)
PIDS=()
source "$HERE/../serving/lib.sh"
source "$HERE/lib.sh"
export DOCKER_CONFIG="$TMP/no-docker-config" # never the user's own credentials

for tool in docker-registry skopeo htpasswd node curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "$SUITE: $tool is missing (make deps installs it)" >&2
        exit 1
    fi
done

run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
err1() { head -c 600 "$TMP/err" | tr '\n' ' '; }
# jq_ PATH <JSON: the value at a dotted path (numbers index arrays)
jq_() {
    node -e 'let j=JSON.parse(require("fs").readFileSync(0));
for (const k of process.argv[1].split(".")) j = j == null ? j : j[k];
console.log(typeof j == "object" ? JSON.stringify(j) : j)' "$1"
}
call() { curl -s -m 10 "$DATA_URL/fn/$1/"; }

# The seed's Knative Service, its image replaced by a loopback reference.
service_yaml() { # NAME IMAGE
    printf '%s\n' \
        "apiVersion: serving.knative.dev/v1" \
        "kind: Service" \
        "metadata:" \
        "  name: $1" \
        "spec:" \
        "  template:" \
        "    spec:" \
        "      containers:" \
        "        - image: $2"
}

start_registry plain ""
BG_PIDS+=("${PIDS[@]}")
R="127.0.0.1:$PORT_plain"
REF="$R/hello-function:latest"
if ! "$WASMFN" push "$HELLO" "$REF" >"$TMP/push1" 2>&1; then
    echo "$SUITE: push failed: $(cat "$TMP/push1")" >&2
    exit 1
fi
MAN1=$(sed 's/.*@//' "$TMP/push1")
"$WASMFN" push "$HELLO" "$R/hello-function:v1" >/dev/null 2>&1

start_daemon --tier interp --insecure-registry "$R" || exit 1

# ---- the seed's manifest, from a registry
service_yaml hello-function "$REF" >"$TMP/svc.yaml"
run "$WASMFN" apply -f "$TMP/svc.yaml"
body=$(call hello-function)
if [[ $rc == 0 && $(cat "$TMP/out") == "service/hello-function: revision hello-function-00001 created" &&
    $body == "Hello from wasmfn!"* ]]; then
    ok "apply a Knative Service whose image is a registry reference: it serves"
else
    not_ok "apply from registry" "exit $rc, out $(cat "$TMP/out"), err $(err1), body '$body'"
fi

"$WASMFN" get hello-function -o json >"$TMP/get.json" 2>&1
if [[ $(jq_ revisions.0.imageRef <"$TMP/get.json") == "$REF" &&
    $(jq_ revisions.0.imageDigest <"$TMP/get.json") == "$MAN1" &&
    $(jq_ revisions.0.image <"$TMP/get.json") == "sha256:$(sha "$HELLO")" ]]; then
    ok "the revision records the reference, the manifest digest and the module digest"
else
    not_ok "revision record" "$(head -c 600 "$TMP/get.json")"
fi
run "$WASMFN" get hello-function
if grep -Eq "hello-function-00001 +$REF +$MAN1" "$TMP/out"; then
    ok "wasmfn get shows the reference and what it resolved to"
else
    not_ok "get text" "$(cat "$TMP/out")"
fi

run "$WASMFN" apply -f "$TMP/svc.yaml"
if [[ $rc == 0 && $(cat "$TMP/out") == *"revision hello-function-00001 unchanged" ]]; then
    ok "re-applying with the tag unmoved changes nothing"
else
    not_ok "re-apply unchanged" "exit $rc, $(cat "$TMP/out") $(err1)"
fi

# ---- the tag moves: a new revision; the old one keeps its digest
"$WASMFN" push "$ECHO_WASM" "$REF" >"$TMP/push2" 2>&1
MAN2=$(sed 's/.*@//' "$TMP/push2")
run "$WASMFN" apply -f "$TMP/svc.yaml"
body=$(curl -s -m 10 -d 'ping-body' "$DATA_URL/fn/hello-function/")
"$WASMFN" get hello-function -o json >"$TMP/get.json" 2>&1
if [[ $rc == 0 && $(cat "$TMP/out") == *"revision hello-function-00002 created" &&
    $body == *ping-body* && $body != "Hello"* &&
    $(jq_ revisions.0.imageDigest <"$TMP/get.json") == "$MAN1" &&
    $(jq_ revisions.1.imageDigest <"$TMP/get.json") == "$MAN2" &&
    $(jq_ revisions.1.image <"$TMP/get.json") == "sha256:$(sha "$ECHO_WASM")" ]]; then
    ok "re-apply after the tag moved: a new revision serves the new module, the old keeps its digest"
else
    not_ok "tag moved" "exit $rc, $(cat "$TMP/out") $(err1) body '$body' $(head -c 300 "$TMP/get.json")"
fi

# ---- a multi-document apply with an unknown image applies nothing
{
    service_yaml multi-a "$R/hello-function:v1"
    echo '---'
    service_yaml multi-b "$R/nosuch:1"
} >"$TMP/multi.yaml"
run "$WASMFN" apply -f "$TMP/multi.yaml"
"$WASMFN" get multi-a >/dev/null 2>&1
got_a=$?
if [[ $rc == 1 && $got_a != 0 ]] &&
    grep -q "document 2: line 19: spec.template.spec.containers\[0\].image: $R/nosuch:1: manifest unknown: no such" "$TMP/err" &&
    grep -q "nothing applied" "$TMP/err"; then
    ok "multi-document apply whose second image is unknown: nothing applied, the error names document, line and field"
else
    not_ok "multi-document all or nothing" "exit $rc, get multi-a $got_a, $(err1)"
fi

# ---- the admin API directly: errors with their status
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $WASMFN_TOKEN" \
    -d "{\"apiVersion\":\"serving.knative.dev/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"x\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"image\":\"$R/hello-function:nosuch\"}]}}}}" \
    "$ADMIN_URL/v1/apply")
if [[ $code == 400 ]] && grep -q "containers\[0\].image: $R/hello-function:nosuch: manifest unknown: no such tag" "$TMP/body"; then
    ok "POST /v1/apply with an unknown tag: 400 naming the field and the tag"
else
    not_ok "api unknown tag" "$code $(cat "$TMP/body")"
fi
closed=$(free_port)
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $WASMFN_TOKEN" \
    -d "{\"image\":\"127.0.0.1:$closed/fn:1\"}" "$ADMIN_URL/v1/images")
if [[ $code == 502 ]] && grep -q "cannot connect to registry 127.0.0.1:$closed" "$TMP/body"; then
    ok "POST /v1/images from a registry that is down: 502"
else
    not_ok "api registry down" "$code $(cat "$TMP/body")"
fi

# ---- cache by digest: the layer is gone from the registry, the module is
# in the daemon's store: a new tag naming the same manifest still deploys.
# (The registry refuses a manifest whose blobs it lacks: tag first.)
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$R/v2/hello-function/manifests/v1" >"$TMP/m.json"
curl -s -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$TMP/m.json" "http://$R/v2/hello-function/manifests/v2"
hd=$(sha "$HELLO")
rm -f "$STORE_plain/docker/registry/v2/blobs/sha256/${hd:0:2}/$hd/data"
"$WASMFN" pull "$R/hello-function:v2" -o "$TMP/x.wasm" >/dev/null 2>&1
pull_rc=$?
service_yaml cached "$R/hello-function:v2" >"$TMP/cached.yaml"
run "$WASMFN" apply -f "$TMP/cached.yaml"
body=$(call cached)
if [[ $pull_rc != 0 && $rc == 0 && $body == "Hello from wasmfn!"* ]]; then
    ok "a module already stored is not transferred again (its layer deleted from the registry, the apply works)"
else
    not_ok "cache by digest" "pull without cache exit $pull_rc (want failure), apply exit $rc $(err1), body '$body'"
fi

# ---- a plain container image (tar layer) copied by skopeo, with deploy
POLICY="$TMP/policy.json"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"
read -r m s < <(oci_image "$TMP/layout" /app/hello.wasm "$HELLO" app/hello.wasm gzip linux amd64)
layout_index "$TMP/layout" v1 application/vnd.oci.image.manifest.v1+json "$m" "$s"
if skopeo --policy "$POLICY" copy -q --dest-tls-verify=false "oci:$TMP/layout:v1" \
    "docker://$R/plain/hello:v1" >"$TMP/skopeo.log" 2>&1; then
    run "$WASMFN" deploy plain-fn "$R/plain/hello:v1"
    body=$(call plain-fn)
    "$WASMFN" get plain-fn -o json >"$TMP/get.json" 2>&1
    if [[ $rc == 0 && $(cat "$TMP/out") == *"plain-fn-00001 created" && $body == "Hello from wasmfn!"* &&
        $(jq_ revisions.0.imageDigest <"$TMP/get.json") == "sha256:$m" ]]; then
        ok "wasmfn deploy NAME REF of a plain image copied by skopeo (gzip tar layer)"
    else
        not_ok "deploy plain image" "exit $rc, $(cat "$TMP/out") $(err1) body '$body'"
    fi
    # The same manifest again, its tar layer gone from the registry: the
    # daemon remembers which module that manifest held and reads no layer.
    ld=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$R/v2/plain/hello/manifests/v1" | jq_ layers.0.digest)
    ld=${ld#sha256:}
    rm -f "$STORE_plain/docker/registry/v2/blobs/sha256/${ld:0:2}/$ld/data"
    run "$WASMFN" deploy plain-again "$R/plain/hello:v1"
    body=$(call plain-again)
    if [[ -n $ld && $rc == 0 && $body == "Hello from wasmfn!"* ]]; then
        ok "a plain image deployed again reads no tar layer (its layer deleted from the registry, the deploy works)"
    else
        not_ok "plain image cache" "layer '$ld', exit $rc, $(cat "$TMP/out") $(err1) body '$body'"
    fi
else
    not_ok "skopeo copy" "$(tail -1 "$TMP/skopeo.log")"
fi
run "$WASMFN" deploy other "$R/plain/hello:nosuch"
if [[ $rc == 1 && $(wc -l <"$TMP/err") == 1 ]] &&
    grep -q "$R/plain/hello:nosuch: manifest unknown: no such tag" "$TMP/err"; then
    ok "wasmfn deploy of an unknown tag: one line"
else
    not_ok "deploy unknown tag" "exit $rc, $(err1)"
fi

# ---- the loop keeps serving while a pull waits on a registry that never answers
HPORT=$(free_port)
node -e 'require("net").createServer(() => {}).listen(Number(process.argv[1]), "127.0.0.1")' "$HPORT" &
BG_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
    curl -s -m 0.1 -o /dev/null "http://127.0.0.1:$HPORT/"
    [[ $? == 28 ]] && break
    sleep 0.1
done
curl -s -m 30 -o /dev/null -H "Authorization: Bearer $WASMFN_TOKEN" \
    -d "{\"image\":\"127.0.0.1:$HPORT/stuck:1\"}" "$ADMIN_URL/v1/images" &
BG_PIDS+=($!)
sleep 0.5
start=$(date +%s%N)
body=$(call hello-function)
hz=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$ADMIN_URL/healthz")
took_ms=$((($(date +%s%N) - start) / 1000000))
if [[ -n $body && $hz == 200 ]] && ((took_ms < 3000)); then
    ok "while a pull hangs, the data plane and the admin API answer"
else
    not_ok "loop responsive" "body '$body', healthz $hz, took $took_ms ms"
fi

# ---- htpasswd auth: 401 naming the realm without credentials, works with them
htpasswd -Bbc "$TMP/htpasswd" alice s3cret >/dev/null 2>&1
start_registry basic "auth:
  htpasswd:
    realm: wasmfn-test-realm
    path: $TMP/htpasswd"
BG_PIDS+=("${PIDS[@]}")
B="127.0.0.1:$PORT_basic"
CFG="$TMP/docker/config.json"
"$WASMFN" registry login --registry-config "$CFG" "$B" -u alice --password-stdin <<<"s3cret" >/dev/null 2>&1
"$WASMFN" push --registry-config "$CFG" "$HELLO" "$B/private/hello:1" >/dev/null 2>&1
service_yaml private "$B/private/hello:1" >"$TMP/private.yaml"
run "$WASMFN" apply -f "$TMP/private.yaml"
if [[ $rc == 1 ]] &&
    grep -q "401 Unauthorized (realm \"wasmfn-test-realm\"): authentication required and there are no credentials for $B" "$TMP/err"; then
    ok "a registry with htpasswd auth and no credentials: 401 naming the realm"
else
    not_ok "auth without credentials" "exit $rc, $(err1)"
fi

# SIGTERM with the stuck pull in flight: the pull is cancelled, the daemon exits.
kill -TERM "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
done
if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
    wait "$DAEMON_PID"
    term_rc=$?
    DAEMON_PID=
    if [[ $term_rc == 0 ]]; then ok "SIGTERM cancels a pull in flight and exits 0"; else not_ok "SIGTERM" "exit $term_rc"; fi
else
    not_ok "SIGTERM with a pull in flight" "still running after 10 s"
fi

start_daemon --tier interp --registry-config "$CFG" || exit 1
run "$WASMFN" apply -f "$TMP/private.yaml"
body=$(call private)
b2=$(call hello-function)
if [[ $rc == 0 && $body == "Hello from wasmfn!"* && -n $b2 ]]; then
    ok "with --registry-config the private image deploys (and what was applied before still serves after the restart)"
else
    not_ok "auth with credentials" "exit $rc, $(err1), body '$body', hello '$b2'"
fi

echo "$SUITE: $pass passed, $failed failed"
if ((failed > 0)); then
    printf '  failed: %s\n' "${failures[@]}"
    exit 1
fi
