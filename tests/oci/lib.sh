# lib.sh — what the OCI test scripts share (sourced, never run on its own):
# free loopback ports, starting Debian's docker-registry, and building plain
# container images as OCI layouts for skopeo to copy.
#
# Before sourcing, set TMP (a temporary directory removed at exit) and
# PIDS (an array: start_registry adds the registry's pid, the caller kills
# what it holds at exit).

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# start_registry NAME [extra YAML for the config...]: sets PORT_<NAME> and
# STORE_<NAME>; waits until it listens.
start_registry() {
    local name=$1 extra=$2 scheme=${3:-http} port dir
    port=$(free_port)
    dir="$TMP/reg-$name"
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
$extra
EOF
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -sk -o /dev/null "$scheme://127.0.0.1:$port/v2/"; then
            printf -v "PORT_$name" %s "$port"
            printf -v "STORE_$name" %s "$dir/data"
            return 0
        fi
        sleep 0.1
    done
    echo "oci: docker-registry ($name) did not start; its log:" >&2
    tail -5 "$dir/log" >&2
    exit 1
}

# oci_image DIR ENTRYPOINT MODULE PATH_IN_TAR gzip|tar OS ARCH: adds an
# image to the OCI layout DIR; prints "DIGEST SIZE" of its manifest
oci_image() {
    local dir=$1 ep=$2 mod=$3 path=$4 comp=$5 os=$6 arch=$7 root
    mkdir -p "$dir/blobs/sha256"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    root=$(mktemp -d "$TMP/root.XXXX")
    mkdir -p "$root/$(dirname "$path")" "$root/etc"
    cp "$mod" "$root/$path"
    echo 'other file' >"$root/etc/motd"
    tar -C "$root" --owner=0 --group=0 -cf "$root.tar" etc "$path"
    local diff layer mt
    diff=$(sha "$root.tar")
    if [[ $comp == gzip ]]; then
        gzip -n <"$root.tar" >"$root.layer"
        mt=application/vnd.oci.image.layer.v1.tar+gzip
    else
        cp "$root.tar" "$root.layer"
        mt=application/vnd.oci.image.layer.v1.tar
    fi
    layer=$(sha "$root.layer")
    cp "$root.layer" "$dir/blobs/sha256/$layer"
    printf '{"architecture":"%s","os":"%s","config":{"Entrypoint":["%s"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$arch" "$os" "$ep" "$diff" >"$root.cfg"
    local cfg
    cfg=$(sha "$root.cfg")
    cp "$root.cfg" "$dir/blobs/sha256/$cfg"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' \
        "$cfg" "$(size "$root.cfg")" "$mt" "$layer" "$(size "$root.layer")" >"$root.man"
    local man
    man=$(sha "$root.man")
    cp "$root.man" "$dir/blobs/sha256/$man"
    echo "$man $(size "$root.man")"
}

# layout_index DIR TAG MEDIATYPE DIGEST SIZE: index.json naming one manifest
layout_index() {
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$3" "$4" "$5" "$2" >"$1/index.json"
}

