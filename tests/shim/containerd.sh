# containerd.sh — a private containerd for the shim's tests
# (tests/shim/run_tests.sh) and bench (bench/shim/start_latency.sh); sourced.
# Debian's containerd with its own root, state, sockets and configuration
# under a temporary directory, CRI disabled, containerd-shim-wasmfn-v1 on
# its PATH (containerd finds runtime io.containerd.wasmfn.v1 by that name).
#
#   ctrd_start DIR SHIM   starts it (needs root); sets CPID; 1 if it did not
#                         answer within 5 s (the end of its log is printed)
#   C ARGS...             ctr against it
#   ctrd_stop             stops it, the shims and processes it left (ours,
#                         runc's, background compilers), unmounts what is
#                         mounted under DIR and removes DIR
#
# DIR should be short: a shim's socket lives at DIR/s/<64 hex digits>, and
# unix socket paths end at 108 bytes.

CTRD_DIR=
CPID=

ctrd_start() {
    CTRD_DIR=$1
    local shim=$2
    mkdir -p "$CTRD_DIR/bin" "$CTRD_DIR/root" "$CTRD_DIR/state"
    ln -sf "$shim" "$CTRD_DIR/bin/containerd-shim-wasmfn-v1"
    cat >"$CTRD_DIR/config.toml" <<EOC
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CTRD_DIR/c.sock"
[ttrpc]
  address = "$CTRD_DIR/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOC
    PATH="$CTRD_DIR/bin:$PATH" containerd --config "$CTRD_DIR/config.toml" >"$CTRD_DIR/containerd.log" 2>&1 &
    CPID=$!
    for _ in $(seq 1 100); do C version >/dev/null 2>&1 && return 0; sleep 0.05; done
    tail -5 "$CTRD_DIR/containerd.log"
    return 1
}

C() { ctr -a "$CTRD_DIR/c.sock" "$@"; }

ctrd_stop() {
    [[ -n $CTRD_DIR ]] || return 0
    [[ -n $CPID ]] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
    local p
    for p in $(pgrep -f "containerd-shim-(wasmfn-v1|runc-v2) (.*-address $CTRD_DIR/c.sock|_guest $CTRD_DIR/|compile --cache-dir $CTRD_DIR/)" 2>/dev/null); do
        kill -9 "$p" 2>/dev/null
    done
    grep -o " $CTRD_DIR/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$CTRD_DIR"
    CTRD_DIR=
}
