#!/usr/bin/env bash
# run_tests.sh — `make test-oci`: wasmfn push / pull / registry login
# against Debian's docker-registry (the CNCF distribution registry) started
# here on loopback ports, each with its own config and storage:
#
#   plain    plain HTTP, anonymous
#   basic    htpasswd (bcrypt, from htpasswd -B) basic auth
#   tls      HTTPS with a self-signed certificate made by openssl
#   bearer   the bearer-token flow: the registry trusts tokens signed by a
#            certificate, issued by tests/oci/token_server.js
#
# and skopeo (a tool we did not write) copying plain container images the
# script builds as OCI layouts: a gzip tar layer, an uncompressed one, an
# index of two platforms. Each check asserts what a user sees: exit status,
# the one-line message, the bytes of the pulled module.
#
# Needs: WASMFN (the binary), docker-registry, skopeo, htpasswd, openssl,
# node, curl (scripts/deps.sh installs them).
set -uo pipefail

WASMFN=${WASMFN:?set WASMFN to the wasmfn binary}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
PIDS=()
pass=0
failed=0
failures=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok   $1"; pass=$((pass + 1)); }
not_ok() { echo "FAIL $1: $2"; failed=$((failed + 1)); failures+=("$1"); }

for tool in docker-registry skopeo htpasswd openssl node curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "oci: $tool is missing (make deps installs it)" >&2
        exit 1
    fi
done

source "$HERE/lib.sh"

# run NAME: runs "$@" after NAME, keeping stdout in $TMP/out, stderr in
# $TMP/err, status in rc.
run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
err1() { head -c 400 "$TMP/err" | tr '\n' ' '; }
# expect_fail NAME PATTERN: the last run exited 1 with one stderr line
# matching PATTERN (extended regex).
expect_fail() {
    local lines
    lines=$(wc -l <"$TMP/err")
    if [[ $rc == 1 && $lines == 1 ]] && grep -Eq -- "$2" "$TMP/err"; then
        ok "$1"
    else
        not_ok "$1" "exit $rc, stderr ($lines lines): $(err1)"
    fi
}

# a small module: the Wasm header and a custom section of random bytes
make_module() {
    local f=$1 n=${2:-3000}
    {
        printf '\0asm\1\0\0\0'
        printf '\0'            # custom section id
        printf '\xa0\x5d'      # LEB128 length 12000 (more than the bytes: never run)
        head -c "$n" /dev/urandom
    } >"$f"
}

EMPTY_CFG="$TMP/empty-config.json"
echo '{}' >"$EMPTY_CFG"
export DOCKER_CONFIG="$TMP/no-docker-config" # never the user's own

# ---------------------------------------------------------------- plain HTTP
start_registry plain ""
R="127.0.0.1:$PORT_plain"
make_module "$TMP/a.wasm" 5000

run "$WASMFN" push "$TMP/a.wasm" "$R/fns/hello:1.0"
pushed=$(cat "$TMP/out")
if [[ $rc == 0 && $pushed =~ ^$R/fns/hello:1\.0@sha256:[0-9a-f]{64}$ ]]; then
    ok "push prints REF@sha256:..."
else
    not_ok "push" "exit $rc, out '$pushed', err $(err1)"
fi

run "$WASMFN" pull "$R/fns/hello:1.0" -o "$TMP/a.out.wasm"
if [[ $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/a.out.wasm" &&
    grep -q "module sha256:$(sha "$TMP/a.wasm") ($(size "$TMP/a.wasm") bytes) from manifest ${pushed#*@}" "$TMP/out"; then
    ok "pull gets the pushed bytes, with the module's and the manifest's digests"
else
    not_ok "push then pull" "exit $rc, out $(cat "$TMP/out"), err $(err1)"
fi

run "$WASMFN" pull "$pushed" -o "$TMP/a.bydigest.wasm"
if [[ $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/a.bydigest.wasm"; then
    ok "pull by REF:TAG@sha256 digest"
else
    not_ok "pull by digest" "exit $rc, err $(err1)"
fi

run "$WASMFN" push "$TMP/a.wasm" "$R/fns/hello:again"
if [[ $rc == 0 && ${pushed#*@} == "$(sed 's/.*@//' "$TMP/out")" ]]; then
    ok "pushing the same module again gives the same manifest digest"
else
    not_ok "push is deterministic" "exit $rc, ${pushed#*@} vs $(cat "$TMP/out")"
fi

curl -s -o "$TMP/man.json" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$R/v2/fns/hello/manifests/1.0"
if grep -q '"mediaType":"application/vnd.wasm.config.v0+json"' "$TMP/man.json" &&
    grep -q '"mediaType":"application/vnd.wasm.content.layer.v1+wasm"' "$TMP/man.json" &&
    grep -q '"org.opencontainers.image.title":"a.wasm"' "$TMP/man.json"; then
    ok "the pushed manifest is a Wasm OCI artifact (config, layer media types, title)"
else
    not_ok "artifact layout" "$(head -c 400 "$TMP/man.json")"
fi

# skopeo reads what we pushed
if skopeo inspect --raw --tls-verify=false "docker://$R/fns/hello:1.0" >"$TMP/skopeo.json" 2>"$TMP/err" &&
    cmp -s "$TMP/skopeo.json" "$TMP/man.json"; then
    ok "skopeo reads the pushed manifest"
else
    not_ok "skopeo inspect" "$(err1)"
fi

run "$WASMFN" pull "$R/fns/hello:nosuch" -o "$TMP/x.wasm"
expect_fail "unknown tag: one line, manifest unknown" "^wasmfn pull: $R/fns/hello:nosuch: manifest unknown: no such tag$"
if [[ ! -e $TMP/x.wasm && ! -e $TMP/x.wasm.part ]]; then ok "a failed pull leaves no file"; else not_ok "failed pull leaves a file" "$(ls "$TMP")"; fi

run "$WASMFN" pull "nosuch.invalid/fns/hello:1" -o "$TMP/x.wasm"
expect_fail "unknown host" "unknown host 'nosuch.invalid'"

closed=$(free_port)
run "$WASMFN" pull "127.0.0.1:$closed/fns/hello:1" -o "$TMP/x.wasm"
expect_fail "nothing listening: connection refused" "cannot connect to registry 127.0.0.1:$closed"

# a registry that accepts connections and never answers: --timeout ends it
HPORT=$(free_port)
node -e 'require("net").createServer(() => {}).listen(Number(process.argv[1]), "127.0.0.1")' "$HPORT" &
PIDS+=($!)
for ((i = 0; i < 50; i++)); do curl -s -m 0.1 -o /dev/null "http://127.0.0.1:$HPORT/"; [[ $? == 28 ]] && break; sleep 0.1; done
start=$(date +%s%N)
run "$WASMFN" pull --timeout 1s "127.0.0.1:$HPORT/fns/hello:1" -o "$TMP/x.wasm"
took_ms=$((($(date +%s%N) - start) / 1000000))
expect_fail "a registry that never answers: timed out after --timeout" "^wasmfn pull: 127.0.0.1:$HPORT/fns/hello:1: timed out after 1000 ms$"
if ((took_ms < 10000)); then ok "the timeout bounds the whole pull"; else not_ok "timeout" "took $took_ms ms"; fi

run "$WASMFN" pull --max-size 1Ki "$R/fns/hello:1.0" -o "$TMP/x.wasm"
expect_fail "a module over --max-size is refused before download" "is $(size "$TMP/a.wasm") bytes, over the module size limit of 1024 bytes"

run "$WASMFN" pull "$R/Bad Ref" -o "$TMP/x.wasm"
if [[ $rc == 2 ]] && grep -q "bad image reference" "$TMP/err"; then ok "a malformed reference is a usage error"; else not_ok "bad reference" "exit $rc $(err1)"; fi

echo 'not wasm' >"$TMP/text.txt"
run "$WASMFN" push "$TMP/text.txt" "$R/fns/text:1"
expect_fail "push refuses a file that is not a Wasm module" "not a WebAssembly module"

# a manifest with no Wasm layer: upload blobs and a manifest by hand (curl)
curl_blob() { # FILE REPO: monolithic upload (POST, then PUT with the digest)
    local loc
    loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/$2/blobs/uploads/" | tr -d '\r' |
        sed -n 's/^Location: //Ip')
    case $loc in http*) ;; *) loc="http://$R$loc" ;; esac
    case $loc in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
    curl -s -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$1" "${loc}digest=sha256:$(sha "$1")"
}
echo 'hello, not a module' >"$TMP/readme.txt"
echo '{}' >"$TMP/wcfg.json"
curl_blob "$TMP/readme.txt" fns/nowasm
curl_blob "$TMP/wcfg.json" fns/nowasm
cat >"$TMP/nowasm.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:$(sha "$TMP/wcfg.json")","size":$(size "$TMP/wcfg.json")},"layers":[{"mediaType":"text/plain","digest":"sha256:$(sha "$TMP/readme.txt")","size":$(size "$TMP/readme.txt")}]}
EOF
curl -s -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$TMP/nowasm.json" "http://$R/v2/fns/nowasm/manifests/1"
run "$WASMFN" pull "$R/fns/nowasm:1" -o "$TMP/x.wasm"
expect_fail "a manifest with no Wasm layer" "the manifest has no Wasm layer \(layers: text/plain\)"

# a tampered blob: change the stored layer's bytes (same size) behind the
# registry's back; the registry serves them as they are
make_module "$TMP/t.wasm" 4000
"$WASMFN" push "$TMP/t.wasm" "$R/fns/tampered:1" >/dev/null 2>&1
td=$(sha "$TMP/t.wasm")
blob="$STORE_plain/docker/registry/v2/blobs/sha256/${td:0:2}/$td/data"
if [[ -f $blob ]]; then
    printf 'XXXX' | dd of="$blob" bs=1 seek=100 conv=notrunc status=none
    run "$WASMFN" pull "$R/fns/tampered:1" -o "$TMP/x.wasm"
    expect_fail "a tampered blob: digest mismatch, nothing written" "digest mismatch: blob sha256:$td hashes to sha256:"
    [[ -e $TMP/x.wasm ]] && not_ok "tampered blob" "the file was written"
else
    not_ok "tampered blob" "no blob file at $blob"
fi

# ------------------------------------------- plain images, copied by skopeo
POLICY="$TMP/policy.json"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"

skopeo_copy() { # LAYOUT TAG DEST [--all]
    skopeo --policy "$POLICY" copy -q ${4:-} --dest-tls-verify=false "oci:$1:$2" "docker://$R/$3" \
        >"$TMP/skopeo.log" 2>&1
}

make_module "$TMP/img.wasm" 7000
read -r m s < <(oci_image "$TMP/layout-gz" /app/hello.wasm "$TMP/img.wasm" app/hello.wasm gzip linux amd64)
layout_index "$TMP/layout-gz" v1 application/vnd.oci.image.manifest.v1+json "$m" "$s"
if skopeo_copy "$TMP/layout-gz" v1 plain/hello:v1; then
    run "$WASMFN" pull "$R/plain/hello:v1" -o "$TMP/img.out.wasm"
    if [[ $rc == 0 ]] && cmp -s "$TMP/img.wasm" "$TMP/img.out.wasm" && grep -q "/app/hello.wasm" "$TMP/out"; then
        ok "a plain image (gzip tar layer) copied by skopeo: pull gets the entrypoint's .wasm"
    else
        not_ok "plain image gzip" "exit $rc, $(cat "$TMP/out") $(err1)"
    fi
else
    not_ok "skopeo copy (gzip image)" "$(tail -1 "$TMP/skopeo.log")"
fi

read -r m s < <(oci_image "$TMP/layout-tar" ./fn/main.wasm "$TMP/img.wasm" fn/main.wasm tar linux amd64)
layout_index "$TMP/layout-tar" v1 application/vnd.oci.image.manifest.v1+json "$m" "$s"
if skopeo_copy "$TMP/layout-tar" v1 plain/tar:v1; then
    run "$WASMFN" pull "$R/plain/tar:v1" -o "$TMP/tar.out.wasm"
    if [[ $rc == 0 ]] && cmp -s "$TMP/img.wasm" "$TMP/tar.out.wasm"; then
        ok "a plain image with an uncompressed tar layer"
    else
        not_ok "plain image tar" "exit $rc, $(err1)"
    fi
else
    not_ok "skopeo copy (tar image)" "$(tail -1 "$TMP/skopeo.log")"
fi

read -r m s < <(oci_image "$TMP/layout-sh" /bin/sh "$TMP/img.wasm" bin/sh gzip linux amd64)
layout_index "$TMP/layout-sh" v1 application/vnd.oci.image.manifest.v1+json "$m" "$s"
if skopeo_copy "$TMP/layout-sh" v1 plain/sh:v1; then
    run "$WASMFN" pull "$R/plain/sh:v1" -o "$TMP/x.wasm"
    expect_fail "a plain image whose entrypoint is not a .wasm" "has no Wasm layer and its entrypoint '/bin/sh' is not a .wasm file"
else
    not_ok "skopeo copy (sh image)" "$(tail -1 "$TMP/skopeo.log")"
fi

# an index of two platforms: linux/arm64 holds another module, linux/amd64 ours
make_module "$TMP/arm.wasm" 100
L="$TMP/layout-idx"
read -r ma sa < <(oci_image "$L" /app/hello.wasm "$TMP/arm.wasm" app/hello.wasm gzip linux arm64)
read -r mb sb < <(oci_image "$L" /app/hello.wasm "$TMP/img.wasm" app/hello.wasm gzip linux amd64)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"os":"linux","architecture":"arm64"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"os":"linux","architecture":"amd64"}}]}' \
    "$ma" "$sa" "$mb" "$sb" >"$TMP/idx.json"
idx=$(sha "$TMP/idx.json")
cp "$TMP/idx.json" "$L/blobs/sha256/$idx"
layout_index "$L" v1 application/vnd.oci.image.index.v1+json "$idx" "$(size "$TMP/idx.json")"
if skopeo_copy "$L" v1 plain/multi:v1 --all; then
    run "$WASMFN" pull "$R/plain/multi:v1" -o "$TMP/multi.out.wasm"
    if [[ $rc == 0 ]] && cmp -s "$TMP/img.wasm" "$TMP/multi.out.wasm" && grep -q "from manifest sha256:$mb" "$TMP/out"; then
        ok "an index: pull picks linux/amd64 (no wasi/wasm listed)"
    else
        not_ok "index" "exit $rc, $(cat "$TMP/out") $(err1)"
    fi
else
    not_ok "skopeo copy --all (index)" "$(tail -1 "$TMP/skopeo.log")"
fi

# ------------------------------------------------------ htpasswd basic auth
htpasswd -Bbc "$TMP/htpasswd" alice s3cret >/dev/null 2>&1
start_registry basic "auth:
  htpasswd:
    realm: wasmfn-test-realm
    path: $TMP/htpasswd"
B="127.0.0.1:$PORT_basic"
CFG="$TMP/docker/config.json"

run "$WASMFN" push --registry-config "$EMPTY_CFG" "$TMP/a.wasm" "$B/fns/hello:1"
expect_fail "no credentials: 401 naming the realm" "401 Unauthorized \(realm \"wasmfn-test-realm\"\): authentication required and there are no credentials for $B"

run "$WASMFN" registry login --registry-config "$CFG" "$B" -u alice --password-stdin <<<"wrong"
expect_fail "login with a wrong password: 401 naming the realm" "^wasmfn registry login: $B: 401 Unauthorized \(realm \"wasmfn-test-realm\"\)"
if [[ ! -e $CFG ]]; then ok "a refused login stores nothing"; else not_ok "refused login" "config written"; fi

run "$WASMFN" registry login --registry-config "$CFG" "$B" -u alice --password-stdin <<<"s3cret"
mode=$(stat -c %a "$CFG" 2>/dev/null)
auth=$(node -e 'const c=require(process.argv[1]);console.log(Buffer.from(c.auths[process.argv[2]].auth,"base64").toString())' "$CFG" "$B" 2>/dev/null)
if [[ $rc == 0 && $mode == 600 && $auth == alice:s3cret ]]; then
    ok "registry login stores base64 user:password in the config file, mode 0600"
else
    not_ok "registry login" "exit $rc, mode $mode, auth '$auth', $(err1)"
fi

run "$WASMFN" push --registry-config "$CFG" "$TMP/a.wasm" "$B/fns/hello:1"
run2=$rc
run "$WASMFN" pull --registry-config "$CFG" "$B/fns/hello:1" -o "$TMP/b.out.wasm"
if [[ $run2 == 0 && $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/b.out.wasm"; then
    ok "basic auth: push and pull with the stored credentials"
else
    not_ok "basic auth push/pull" "push $run2, pull $rc, $(err1)"
fi

# the default config file: $DOCKER_CONFIG/config.json
mkdir -p "$TMP/dc"
cp "$CFG" "$TMP/dc/config.json"
run env DOCKER_CONFIG="$TMP/dc" "$WASMFN" pull "$B/fns/hello:1" -o "$TMP/b2.out.wasm"
if [[ $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/b2.out.wasm"; then
    ok "credentials from \$DOCKER_CONFIG/config.json"
else
    not_ok "default config" "exit $rc $(err1)"
fi

printf '{"auths":{"http://%s":{"auth":"%s"}}}' "$B" "$(printf alice:nope | base64)" >"$TMP/badcfg.json"
run "$WASMFN" pull --registry-config "$TMP/badcfg.json" "$B/fns/hello:1" -o "$TMP/x.wasm"
expect_fail "wrong stored password: 401 naming the realm and the file" "401 Unauthorized \(realm \"wasmfn-test-realm\"\): the registry refused the credentials of user 'alice' from $TMP/badcfg.json"

# ------------------------------------------------ Docker credential helpers
# A helper of the test's own (the protocol is the helper's command line:
# `get` reads the server, prints {Username, Secret}; `store` reads that JSON),
# keeping entries as files in $HELPER_DIR.
mkdir -p "$TMP/hbin" "$TMP/hstore" "$TMP/hcfg" "$TMP/hcfg2"
cat >"$TMP/hbin/docker-credential-wasmfntest" <<'EOH'
#!/usr/bin/env node
const fs = require('fs'), path = require('path');
const input = fs.readFileSync(0, 'utf8');
const file = s => path.join(process.env.HELPER_DIR, Buffer.from(s).toString('hex'));
if (process.argv[2] === 'get') {
    const f = file(input.trim());
    if (!fs.existsSync(f)) { process.stdout.write('credentials not found in native keychain\n'); process.exit(1); }
    process.stdout.write(fs.readFileSync(f));
} else if (process.argv[2] === 'store') {
    const j = JSON.parse(input);
    fs.writeFileSync(file(j.ServerURL), JSON.stringify(j));
} else process.exit(2);
EOH
chmod +x "$TMP/hbin/docker-credential-wasmfntest"
HPATH="$TMP/hbin:$PATH"
export HELPER_DIR="$TMP/hstore"
echo '{"credsStore": "wasmfntest"}' >"$TMP/hcfg/config.json"
run env PATH="$HPATH" "$WASMFN" registry login --registry-config "$TMP/hcfg/config.json" "$B" -u alice --password-stdin <<<"s3cret"
if [[ $rc == 0 ]] && grep -q "credentials in credential helper docker-credential-wasmfntest" "$TMP/out" &&
    ! grep -q s3cret "$TMP/hcfg/config.json" && grep -rq s3cret "$TMP/hstore"; then
    ok "registry login with a credsStore stores the password with the helper, not in the file"
else
    not_ok "login through a credential helper" "exit $rc, $(cat "$TMP/out") $(err1)"
fi
run env PATH="$HPATH" "$WASMFN" pull --registry-config "$TMP/hcfg/config.json" "$B/fns/hello:1" -o "$TMP/h.wasm"
if [[ $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/h.wasm"; then
    ok "pull with credentials from the credsStore helper"
else
    not_ok "pull through a credsStore helper" "exit $rc, $(err1)"
fi
# credHelpers names the helper for this host and wins over a stale auths entry.
printf '{"credHelpers":{"%s":"wasmfntest"},"auths":{"%s":{"auth":"%s"}}}' "$B" "$B" "$(printf alice:nope | base64)" \
    >"$TMP/hcfg2/config.json"
run env PATH="$HPATH" "$WASMFN" pull --registry-config "$TMP/hcfg2/config.json" "$B/fns/hello:1" -o "$TMP/h2.wasm"
if [[ $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/h2.wasm"; then
    ok "credHelpers' helper for the host wins over its auths entry"
else
    not_ok "pull through credHelpers" "exit $rc, $(err1)"
fi
printf '{"ServerURL":"%s","Username":"alice","Secret":"nope"}' "$B" >"$TMP/hstore/$(printf %s "$B" | od -An -tx1 | tr -d ' \n')"
run env PATH="$HPATH" "$WASMFN" pull --registry-config "$TMP/hcfg/config.json" "$B/fns/hello:1" -o "$TMP/x.wasm"
expect_fail "a helper's wrong password: 401 naming the helper" "the registry refused the credentials of user 'alice' from credential helper docker-credential-wasmfntest"
# Helpers that answer something other than a user name and password.
printf '#!/bin/sh\necho "not json"\n' >"$TMP/hbin/docker-credential-garbage"
printf '#!/bin/sh\necho "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"x\\"}"\n' >"$TMP/hbin/docker-credential-idtoken"
chmod +x "$TMP/hbin/docker-credential-garbage" "$TMP/hbin/docker-credential-idtoken"
# pull_with_store NAME: a pull whose registry config names helper NAME.
pull_with_store() {
    echo "{\"credsStore\": \"$1\"}" >"$TMP/hcfg/config.json"
    run env PATH="$HPATH" "$WASMFN" pull --registry-config "$TMP/hcfg/config.json" "$B/fns/hello:1" -o "$TMP/x.wasm"
}
pull_with_store garbage
expect_fail "a helper printing nonsense is named" "credential helper docker-credential-garbage get: not a \\{\"Username\", \"Secret\"\\} object"
pull_with_store idtoken
expect_fail "a helper's identity token is refused with a message" "credential helper docker-credential-idtoken holds an identity token for $B: not supported"
pull_with_store nosuchhelper
expect_fail "a credsStore helper missing from PATH is named" "credential helper docker-credential-nosuchhelper: not found on PATH"
# Helpers that misbehave: one that never answers is killed after 10 s (and
# reaped), one that floods stops being read at 64 KiB, one killed by a
# signal is named with it. Each is one line naming the helper.
cat >"$TMP/hbin/docker-credential-hang" <<EOH
#!/bin/sh
echo \$\$ >"$TMP/hang.pid"
exec sleep 60
EOH
cat >"$TMP/hbin/docker-credential-flood" <<'EOH'
#!/bin/sh
head -c 70000 /dev/zero | tr '\0' a
EOH
printf '#!/bin/sh\nkill -9 $$\n' >"$TMP/hbin/docker-credential-crash"
chmod +x "$TMP/hbin/docker-credential-hang" "$TMP/hbin/docker-credential-flood" "$TMP/hbin/docker-credential-crash"
t0=$(date +%s)
pull_with_store hang
took=$(($(date +%s) - t0))
expect_fail "a helper that never answers: named after 10 s" "credential helper docker-credential-hang get: no answer within 10 s"
if ((took >= 9 && took <= 30)) && [[ -s $TMP/hang.pid ]] && ! kill -0 "$(cat "$TMP/hang.pid")" 2>/dev/null; then
    ok "the silent helper was given 10 s, then killed (${took} s)"
else
    not_ok "the silent helper was given 10 s, then killed" "took ${took} s, pid $(cat "$TMP/hang.pid" 2>/dev/null) $(kill -0 "$(cat "$TMP/hang.pid" 2>/dev/null)" 2>/dev/null && echo alive)"
fi
pull_with_store flood
expect_fail "a helper printing more than 64 KiB is cut off and named" "credential helper docker-credential-flood get: more than 64 KiB of output"
pull_with_store crash
expect_fail "a helper killed by a signal is named with it" "credential helper docker-credential-crash get: killed by signal 9"

# ------------------------------------------------------------ TLS registry
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>&1
start_registry tls "  tls:
    certificate: $TMP/tls.crt
    key: $TMP/tls.key" https
T="127.0.0.1:$PORT_tls"

run "$WASMFN" push "$TMP/a.wasm" "$T/fns/hello:1"
expect_fail "TLS with an unknown CA is refused (no fallback to plain HTTP)" "TLS certificate of $T not trusted \(give its CA with --registry-ca\)"

run "$WASMFN" push --registry-ca "$TMP/tls.crt" "$TMP/a.wasm" "$T/fns/hello:1"
run2=$rc
run "$WASMFN" pull --registry-ca "$TMP/tls.crt" "$T/fns/hello:1" -o "$TMP/t.out.wasm"
if [[ $run2 == 0 && $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/t.out.wasm"; then
    ok "TLS: push and pull with --registry-ca"
else
    not_ok "TLS push/pull" "push $run2, pull $rc, $(err1)"
fi

# --------------------------------------------------------- bearer tokens
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=wasmfn-test-token \
    -keyout "$TMP/token.key" -out "$TMP/token.crt" >/dev/null 2>&1
TPORT=$(free_port)
node "$HERE/token_server.js" "$TPORT" "$TMP/token.key" "$TMP/token.crt" alice s3cret >"$TMP/token.log" 2>&1 &
PIDS+=($!)
start_registry bearer "auth:
  token:
    realm: http://127.0.0.1:$TPORT/token
    service: wasmfn-test-registry
    issuer: wasmfn-test-issuer
    rootcertbundle: $TMP/token.crt"
K="127.0.0.1:$PORT_bearer"

run "$WASMFN" registry login --registry-config "$TMP/bearer.json" "$K" -u alice --password-stdin <<<"wrong"
expect_fail "bearer: a wrong password is refused, naming the token realm" "401 Unauthorized \(realm \"http://127.0.0.1:$TPORT/token\"\)"

run "$WASMFN" registry login --registry-config "$TMP/bearer.json" "$K" -u alice --password-stdin <<<"s3cret"
login=$rc
run "$WASMFN" push --registry-config "$TMP/bearer.json" "$TMP/a.wasm" "$K/fns/hello:1"
run2=$rc
run "$WASMFN" pull --registry-config "$TMP/bearer.json" "$K/fns/hello:1" -o "$TMP/k.out.wasm"
if [[ $login == 0 && $run2 == 0 && $rc == 0 ]] && cmp -s "$TMP/a.wasm" "$TMP/k.out.wasm"; then
    ok "bearer-token flow: login, push and pull"
else
    not_ok "bearer push/pull" "login $login, push $run2, pull $rc, $(err1)"
fi

run "$WASMFN" pull --registry-config "$EMPTY_CFG" "$K/fns/hello:1" -o "$TMP/x.wasm"
expect_fail "bearer: anonymous pull refused, naming the realm" "401 Unauthorized \(realm \"http://127.0.0.1:$TPORT/token\"\): authentication required and there are no credentials"

echo "oci: $pass passed, $failed failed"
if ((failed)); then
    echo "oci: failed: ${failures[*]}"
    exit 1
fi
exit 0
