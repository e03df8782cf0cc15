"""Peers agree with our layers: umoci unpacks an OCI image whose layers we wrote (including a
layer made from an overlay upper dir, with whiteouts and an opaque dir) into the same tree as
our own flattening apply, and GNU tar's output applies identically."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from dockyard.layer.apply import apply_layer
from dockyard.layer.create import write_layer
from tests.conftest import require_tool

pytestmark = [pytest.mark.root, pytest.mark.peer]


def tree(root: Path) -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("l", os.readlink(p).encode())
            elif p.is_dir():
                out[rel] = ("d", b"")
            else:
                out[rel] = ("f", p.read_bytes())
    return out


def blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def oci_layout(layout: Path, layers: list[tuple[bytes, str]]) -> None:
    (layout / "blobs/sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
    }
    cfg = blob(layout, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(layout, b)}
            for b, _ in layers
        ],
    }
    m = blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **m,
                "annotations": {"org.opencontainers.image.ref.name": "t"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))


def test_umoci_agrees_on_our_layers(tmp_path: Path) -> None:
    umoci = require_tool("umoci")
    base = tmp_path / "base"
    (base / "etc").mkdir(parents=True)
    (base / "etc/hosts").write_text("h")
    (base / "etc/gone").write_text("g")
    (base / "opt").mkdir()
    (base / "opt/old").write_text("o")
    os.symlink("/etc/hosts", base / "hosts-link")
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/hosts").write_text("changed")
    os.mknod(upper / "etc/gone", 0o020000, os.makedev(0, 0))  # an overlay whiteout
    (upper / "opt").mkdir()
    os.setxattr(upper / "opt", "trusted.overlay.opaque", b"y")
    (upper / "opt/new").write_text("n")

    layers = []
    for src, ovl in ((base, False), (upper, True)):
        out = io.BytesIO()
        res = write_layer(src, out, from_overlay_upper=ovl, source_date_epoch=0)
        layers.append((out.getvalue(), res.diff_id))
    layout = tmp_path / "layout"
    oci_layout(layout, layers)
    bundle = tmp_path / "bundle"
    subprocess.run(
        [umoci, "unpack", "--image", f"{layout}:t", str(bundle)], check=True, capture_output=True
    )

    ours = tmp_path / "ours"
    ours.mkdir()
    for data, _ in layers:
        apply_layer(io.BytesIO(data), ours, overlay_whiteouts=False)
    expected = tree(ours)
    assert expected == tree(bundle / "rootfs")
    assert "etc/gone" not in expected and "opt/old" not in expected
    assert expected["etc/hosts"] == ("f", b"changed") and expected["opt/new"] == ("f", b"n")


def test_gnu_tar_and_apply_agree(tmp_path: Path) -> None:
    tar = require_tool("tar")
    src = tmp_path / "src"
    (src / "d/e").mkdir(parents=True)
    (src / "d/e/f").write_bytes(b"x" * 10000)
    os.symlink("../e/f", src / "d/l")
    os.link(src / "d/e/f", src / "d/h")
    os.setxattr(src / "d/e/f", "user.k", b"v")
    data = subprocess.run(
        [tar, "--xattrs", "--format=posix", "-c", "-C", str(src), "."],
        check=True,
        capture_output=True,
    ).stdout
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    subprocess.run(
        [tar, "--xattrs", "--xattrs-include=*", "-x", "-C", str(a)], input=data, check=True
    )
    res = apply_layer(io.BytesIO(data), b)
    assert res.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert tree(a) == tree(b)
    assert os.getxattr(b / "d/e/f", "user.k") == b"v"
    for rel in ("d", "d/e", "d/e/f", "d/h"):
        sa, sb = os.lstat(a / rel), os.lstat(b / rel)
        assert (sa.st_mode, sa.st_uid, sa.st_gid, sa.st_mtime) == (
            sb.st_mode,
            sb.st_uid,
            sb.st_gid,
            sb.st_mtime,
        )
