#!/usr/bin/env python3
"""mkimage.py — writes an OCI image layout tar for `ctr images import`:
one uncompressed layer holding the given files, a config with the entrypoint
and env, and the image name as containerd's import reads it.

  mkimage.py OUT.tar NAME --file SRC:DEST... [--entrypoint '["/cmd.wasm"]']
             [--env K=V]... [--label K=V]... [--workdir DIR]
"""
import argparse, hashlib, io, json, tarfile


def blob(out, data):
    d = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + d)
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))
    return "sha256:" + d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("name")
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--entrypoint", default="[]")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--workdir", default="")
    a = ap.parse_args()

    layer_io = io.BytesIO()
    with tarfile.open(fileobj=layer_io, mode="w", format=tarfile.PAX_FORMAT) as layer:
        dirs = set()
        for spec in a.file:
            src, dest = spec.split(":", 1)
            dest = dest.lstrip("/")
            parts = dest.split("/")[:-1]
            for i in range(len(parts)):
                d = "/".join(parts[: i + 1])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    layer.addfile(ti)
            with open(src, "rb") as f:
                data = f.read()
            ti = tarfile.TarInfo(dest)
            ti.size = len(data)
            ti.mode = 0o755
            layer.addfile(ti, io.BytesIO(data))
    layer_bytes = layer_io.getvalue()

    with tarfile.open(a.out, mode="w") as out:
        layer_digest = blob(out, layer_bytes)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": json.loads(a.entrypoint),
                "Env": a.env,
                "Labels": dict(l.split("=", 1) for l in a.label),
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }
        if a.workdir:
            config["config"]["WorkingDir"] = a.workdir
        config_bytes = json.dumps(config).encode()
        config_digest = blob(out, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer_bytes),
                }
            ],
        }
        manifest_bytes = json.dumps(manifest).encode()
        manifest_digest = blob(out, manifest_bytes)
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(manifest_bytes),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {"io.containerd.image.name": a.name},
                }
            ],
        }
        for name, data in (("index.json", json.dumps(index).encode()),
                           ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            out.addfile(ti, io.BytesIO(data))


if __name__ == "__main__":
    main()
