#!/usr/bin/env python3
"""check_deploy.py — parses every manifest under the given directories (or
files) and checks them against the shapes the Kubernetes, Knative and KEDA
APIs define for the kinds we ship: YAML well-formed; apiVersion and kind a
pair those APIs serve; names valid DNS-1123 names; labels and annotations
strings (the API server rejects `true` where "true" is meant); workloads'
selectors matching their pod labels, containers with name and image,
volume mounts naming volumes, named target ports existing; RuntimeClass
`wasm` with handler `wasmfn`; Knative Services on `runtimeClassName: wasm`;
ScaledObjects pointing at a Deployment defined beside them, with triggers
of known type and string metadata. Also: *.toml parse (Go template lines of
config.toml.tmpl left out), and the runtime they declare is
io.containerd.wasmfn.v1, its options (if any) an absolute ConfigPath;
wasmfn-shim.toml (the shim's own configuration) holds only tier "auto" or
"interp" and an absolute cache_dir; *.sh pass `bash -n`.

Prints one line per fault ("FILE: doc N (Kind name): what") and
"deploy: N files, M documents, K faults"; exits 1 on a fault.
"""
import os, re, subprocess, sys, tomllib

import yaml

KINDS = {
    ("node.k8s.io/v1", "RuntimeClass"),
    ("serving.knative.dev/v1", "Service"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Service"),
    ("v1", "Namespace"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
KEDA_TRIGGERS = {"prometheus", "cpu", "memory", "redis-streams", "nats-jetstream", "rabbitmq",
                 "kafka", "cron", "metrics-api"}

faults = []


def fault(where, msg):
    faults.append(f"{where}: {msg}")


def strings_map(where, m, what):
    if m is None:
        return {}
    if not isinstance(m, dict):
        fault(where, f"{what} is not a map")
        return {}
    for k, v in m.items():
        if not isinstance(k, str) or not isinstance(v, str):
            fault(where, f"{what}: {k!r}: {v!r} is not a string (quote it)")
    return m


def check_pod_spec(where, pod, labels):
    if not isinstance(pod, dict):
        fault(where, "pod spec missing")
        return
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        fault(where, "spec.containers is empty")
        return
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    for i, c in enumerate(containers):
        cw = f"{where} containers[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("image"), str) or not c["image"]:
            fault(cw, "no image")
            continue
        for p in c.get("ports") or []:
            if not isinstance(p.get("containerPort"), int) or not 0 < p["containerPort"] < 65536:
                fault(cw, f"containerPort {p.get('containerPort')!r} is not a port number")
        for e in c.get("env") or []:
            if not isinstance(e.get("name"), str) or ("value" in e and not isinstance(e["value"], str)):
                fault(cw, f"env {e!r}: name and value must be strings")
        for vm in c.get("volumeMounts") or []:
            if vm.get("name") not in volumes:
                fault(cw, f"volumeMount {vm.get('name')!r} names no volume")
        for a in c.get("args") or []:
            if not isinstance(a, str):
                fault(cw, f"args: {a!r} is not a string")
        named = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
        for probe in ("readinessProbe", "livenessProbe"):
            port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
            if isinstance(port, str) and port not in named:
                fault(cw, f"{probe} port {port!r} is not a named port of the container")


def pod_ports(pod):
    return {p.get("name") for c in (pod or {}).get("containers") or [] for p in c.get("ports") or []}


def check_doc(where, d, workloads):
    api, kind = d.get("apiVersion"), d.get("kind")
    if (api, kind) not in KINDS:
        fault(where, f"apiVersion {api!r} kind {kind!r}: not a kind these APIs define")
        return
    meta = d.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or not DNS_SUBDOMAIN.match(name):
        fault(where, f"metadata.name {name!r} is not a DNS-1123 name")
    strings_map(where, meta.get("labels"), "metadata.labels")
    strings_map(where, meta.get("annotations"), "metadata.annotations")
    spec = d.get("spec")
    if kind == "RuntimeClass":
        h = d.get("handler")
        if not isinstance(h, str) or not DNS_LABEL.match(h):
            fault(where, f"handler {h!r} is not a DNS label")
        if name == "wasm" and h != "wasmfn":
            fault(where, "RuntimeClass wasm must have handler wasmfn")
        strings_map(where, ((d.get("scheduling") or {}).get("nodeSelector")), "scheduling.nodeSelector")
    elif kind == "Service" and api == "serving.knative.dev/v1":
        tmpl = (spec or {}).get("template") or {}
        strings_map(where, (tmpl.get("metadata") or {}).get("annotations"), "template annotations")
        pod = tmpl.get("spec")
        check_pod_spec(where, pod, {})
        if (pod or {}).get("runtimeClassName") != "wasm":
            fault(where, "the template does not use runtimeClassName: wasm")
    elif kind in ("Deployment", "DaemonSet"):
        tmpl = (spec or {}).get("template") or {}
        labels = strings_map(where, (tmpl.get("metadata") or {}).get("labels"), "template labels")
        strings_map(where, (tmpl.get("metadata") or {}).get("annotations"), "template annotations")
        sel = ((spec or {}).get("selector") or {}).get("matchLabels") or {}
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            fault(where, "spec.selector.matchLabels does not select the template's labels")
        check_pod_spec(where, tmpl.get("spec"), labels)
    elif kind == "Service":
        ports = (spec or {}).get("ports") or []
        if not ports:
            fault(where, "spec.ports is empty")
        sel = (spec or {}).get("selector") or {}
        target = [w for w in workloads if w["ns"] == meta.get("namespace") and sel and
                  all(w["labels"].get(k) == v for k, v in sel.items())]
        if not target:
            fault(where, f"selector {sel} selects no workload defined here")
        for p in ports:
            if not isinstance(p.get("port"), int):
                fault(where, f"port {p.get('port')!r} is not a number")
            tp = p.get("targetPort")
            if isinstance(tp, str) and target and tp not in pod_ports(target[0]["pod"]):
                fault(where, f"targetPort {tp!r} is not a named port of the pods")
    elif kind == "ScaledObject":
        ref = (spec or {}).get("scaleTargetRef") or {}
        if ref.get("kind", "Deployment") != "Deployment" or not any(
                w["kind"] == "Deployment" and w["name"] == ref.get("name") and
                w["ns"] == meta.get("namespace") for w in workloads):
            fault(where, f"scaleTargetRef {ref} names no Deployment defined here "
                         "(KEDA cannot scale a DaemonSet)")
        lo, hi = (spec or {}).get("minReplicaCount", 0), (spec or {}).get("maxReplicaCount", 100)
        if not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
            fault(where, f"minReplicaCount {lo!r} / maxReplicaCount {hi!r}")
        triggers = (spec or {}).get("triggers") or []
        if not triggers:
            fault(where, "no triggers")
        for t in triggers:
            if t.get("type") not in KEDA_TRIGGERS:
                fault(where, f"trigger type {t.get('type')!r} unknown")
            strings_map(where, t.get("metadata"), f"trigger {t.get('type')} metadata")


def check_shim_config(f, t):
    """The shim's configuration, as src/shim/config.c reads it."""
    for k, v in t.items():
        if k == "tier" and v not in ("auto", "interp"):
            fault(f, f'tier {v!r}: want "auto" or "interp"')
        elif k == "cache_dir" and not (isinstance(v, str) and v.startswith("/")):
            fault(f, "cache_dir: want an absolute path")
        elif k not in ("tier", "cache_dir"):
            fault(f, f"unknown key {k!r} (the shim knows tier and cache_dir)")


def main(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in sorted(names)]
        else:
            files.append(p)
    ndocs = 0
    docs = []
    for f in sorted(files):
        if f.endswith((".yaml", ".yml")):
            try:
                with open(f) as fh:
                    loaded = [d for d in yaml.safe_load_all(fh) if d is not None]
            except yaml.YAMLError as e:
                fault(f, f"YAML: {e}".replace("\n", " "))
                continue
            for i, d in enumerate(loaded):
                if not isinstance(d, dict):
                    fault(f"{f}: doc {i + 1}", "not a mapping")
                    continue
                docs.append((f, i, d))
        elif f.endswith((".toml", ".toml.tmpl")):
            with open(f) as fh:
                text = "".join(l for l in fh if "{{" not in l)
            try:
                t = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                fault(f, f"TOML: {e}")
                continue
            if os.path.basename(f) == "wasmfn-shim.toml":
                check_shim_config(f, t)
                continue
            rt = (t.get("plugins", {}).get("io.containerd.grpc.v1.cri", {}).get("containerd", {})
                  .get("runtimes", {}).get("wasmfn", {}))
            if rt.get("runtime_type") != "io.containerd.wasmfn.v1":
                fault(f, "no runtime wasmfn of type io.containerd.wasmfn.v1")
            opts = rt.get("options")
            if opts is not None and (set(opts) - {"ConfigPath", "TypeUrl"} or
                                     not str(opts.get("ConfigPath", "")).startswith("/")):
                fault(f, "runtime wasmfn: options are runtimeoptions.v1 (an absolute ConfigPath)")
        elif f.endswith(".sh"):
            r = subprocess.run(["bash", "-n", f], capture_output=True, text=True)
            if r.returncode:
                fault(f, "bash -n: " + r.stderr.strip().replace("\n", " "))
    workloads = []
    for f, i, d in docs:
        if d.get("kind") in ("Deployment", "DaemonSet"):
            tmpl = (d.get("spec") or {}).get("template") or {}
            workloads.append({"kind": d["kind"], "name": (d.get("metadata") or {}).get("name"),
                              "ns": (d.get("metadata") or {}).get("namespace"),
                              "labels": (tmpl.get("metadata") or {}).get("labels") or {},
                              "pod": tmpl.get("spec")})
    for f, i, d in docs:
        ndocs += 1
        where = f"{f}: doc {i + 1} ({d.get('kind')} {(d.get('metadata') or {}).get('name')})"
        check_doc(where, d, workloads)
    for line in faults:
        print(line)
    print(f"deploy: {len(files)} files, {ndocs} documents, {len(faults)} faults")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
