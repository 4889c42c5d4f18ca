#!/usr/bin/env bash
# deps.sh — installs the Debian 12 packages wasmfn needs to build, test and
# benchmark. Run as root (`make deps` does). Idempotent and silent when
# everything is already installed; runs `apt-get update` at most once, and
# only when something is missing.
#
# To add a dependency, append it to WASMFN_PACKAGES below (one list for the
# whole project, so there is one place to look).
set -euo pipefail

WASMFN_PACKAGES=(
    # compilers and the wasm32-wasi toolchain for examples/
    build-essential clang lld pkg-config
    libclang-rt-14-dev libclang-rt-14-dev-wasm32 wasi-libc
    # wasm tools: wast2json (spec suite), wat2wasm, wasm-opt
    wabt binaryen
    # libraries the daemon links against
    libuv1-dev libhttp-parser-dev libsqlite3-dev libyaml-dev libcjson-dev libhiredis-dev
    libssl-dev libcurl4-openssl-dev zlib1g-dev
    # guests' outbound HTTPS (src/host/http_out.h): the system's CA bundle
    ca-certificates
    # the native tier: LLVM 19's C API (libLLVM-19)
    llvm-19-dev
    # tests and benchmarks
    libcmocka-dev redis-server wrk nginx-light gnuplot-nox curl
    # the hostile HTTP client of make test-hardening (raw sockets, slow sends)
    python3
    # ss (iproute2): the eventing tests and bench/eventing count the data
    # plane's connections
    iproute2
    # make test-oci: the CNCF distribution registry, skopeo (copies images
    # we did not push ourselves), htpasswd -B (bcrypt entries for its auth)
    docker-registry skopeo apache2-utils
    # KEDA's ScaledObject (src/keda): NATS JetStream and RabbitMQ triggers'
    # client libraries; make test-keda runs prometheus (one behind basic
    # auth: htpasswd -B from apache2-utils), nats-server and rabbitmq-server
    libnats-dev librabbitmq-dev prometheus nats-server rabbitmq-server apache2-utils
    # the postgresql and mysql triggers' client libraries; make test-keda
    # runs a server of each (MariaDB stands for MySQL)
    libpq-dev postgresql libmariadb-dev mariadb-server
    # benchmarks of third-party programs (make bench-programs): dpkg-source
    # unpacks their Debian source packages, tclsh generates SQLite's
    # amalgamation
    dpkg-dev tcl
    # make test-ui: the web dashboard in headless Chromium (puppeteer-core
    # from npm drives it), the Grafana dashboard's queries in a Prometheus
    chromium prometheus
    # secrets and config maps sealed at rest (src/store/secrets.c)
    libsodium-dev
    # eventing sources on brokers (src/eventing/nats.c, mqtt.c, rabbitmq.c) and
    # the brokers make test-eventing-sources runs on loopback (rabbitmq-server
    # brings erlang and its epmd)
    libnats-dev libmosquitto-dev librabbitmq-dev nats-server mosquitto rabbitmq-server
    # containerd-shim-wasmfn-v1 (mk/shim.mk): containerd's .proto files,
    # protoc-c and its runtime, protobuf's well-known types; make
    # test-shim runs containerd (with ctr), make test-deploy python3-yaml
    golang-github-containerd-containerd-dev golang-github-containerd-cgroups-dev
    protobuf-c-compiler libprotobuf-c-dev
    libprotobuf-dev containerd python3-yaml
)

# node is used by tests and benches; any node on PATH will do (ours may come
# from elsewhere), so Debian's is installed only when there is none.
if ! command -v node >/dev/null 2>&1; then
    WASMFN_PACKAGES+=(nodejs)
fi
# npm installs workerd for `make bench` (bench/package.json); Debian's nodejs
# comes without it.
if ! command -v npm >/dev/null 2>&1; then
    WASMFN_PACKAGES+=(npm)
fi

missing=()
for pkg in "${WASMFN_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Installing redis-server or nginx would start their system services, and a
# postinst that cannot start one (port 80 taken, no init system) fails the
# whole install. Tests start their own servers on random ports, so tell
# invoke-rc.d not to start anything while we install (the standard
# policy-rc.d mechanism), unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
fi
cleanup() { if ((own_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: done"
