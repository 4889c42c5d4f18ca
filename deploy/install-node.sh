#!/usr/bin/env bash
# install-node.sh — makes a node's containerd run Wasm pods with wasmfn:
# copies containerd-shim-wasmfn-v1 to /usr/local/bin and its configuration
# to /etc/wasmfn/shim.toml, adds the runtime
# handler `wasmfn` to containerd's configuration (K3s: its config.toml.tmpl;
# otherwise /etc/containerd/config.toml), and restarts containerd (or K3s).
# Run as root on the node:  deploy/install-node.sh [PATH/TO/containerd-shim-wasmfn-v1]
# Then: kubectl apply -f deploy/runtimeclass.yaml and label the node
# wasmfn.dev/shim=true.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
shim=${1:-$here/../build/containerd-shim-wasmfn-v1}
[[ $(id -u) -eq 0 ]] || { echo "install-node.sh: run as root" >&2; exit 1; }
[[ -x $shim ]] || { echo "install-node.sh: $shim: no such executable (make, or pass its path)" >&2; exit 1; }

install -m 0755 "$shim" /usr/local/bin/containerd-shim-wasmfn-v1
echo "installed /usr/local/bin/containerd-shim-wasmfn-v1"
# The shim's configuration, which the runtime's ConfigPath option names; an
# existing one is the operator's and is left alone.
if [[ ! -e /etc/wasmfn/shim.toml ]]; then
    install -D -m 0644 "$here/containerd/wasmfn-shim.toml" /etc/wasmfn/shim.toml
    echo "installed /etc/wasmfn/shim.toml"
fi

k3s_dir=/var/lib/rancher/k3s/agent/etc/containerd
if [[ -d $k3s_dir ]]; then
    tmpl=$k3s_dir/config.toml.tmpl
    if [[ -e $tmpl ]] && ! grep -q 'io.containerd.wasmfn.v1' "$tmpl"; then
        echo "install-node.sh: $tmpl exists; add the section of $here/containerd/config.toml.tmpl to it" >&2
        exit 1
    fi
    [[ -e $tmpl ]] || install -m 0644 "$here/containerd/config.toml.tmpl" "$tmpl"
    echo "K3s: runtime wasmfn in $tmpl; restarting K3s"
    if systemctl is-active --quiet k3s; then systemctl restart k3s; else systemctl restart k3s-agent; fi
    exit 0
fi

conf=/etc/containerd/config.toml
mkdir -p /etc/containerd
[[ -s $conf ]] || containerd config default >"$conf"
if grep -q 'io.containerd.wasmfn.v1' "$conf"; then
    echo "containerd: runtime wasmfn already in $conf"
else
    # The section, without the snippet's own `version` line.
    { echo; grep -v '^version' "$here/containerd/wasmfn-runtime.toml"; } >>"$conf"
    echo "containerd: runtime wasmfn added to $conf"
fi
systemctl restart containerd
echo "containerd restarted"
