"""Helpers shared by the archive tests: small images built straight into an engine, archives
built by hand (Docker < 25 and OCI layouts), and tar inspection. Also checks the helpers.

Unit tests need small, fast images with several layers: an uncompressed layer tar (tarfile),
an image config and an OCI manifest are put into the content store, then registered. (The
busybox image of `tests/images.py` is used where a runnable image is needed.)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from typing import Any

from dockyard.engine import Engine
from dockyard.image.model import Image
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, Manifest
from dockyard.reference import parse_reference

Tree = dict[str, bytes | str | None]  # path -> file bytes, "->target" symlink (str), None: dir


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(tree: Tree) -> bytes:
    """A deterministic, uncompressed layer tar of `tree`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(tree):
            value = tree[name]
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if value is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(value, str):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, value, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(value), 0o755
                tar.addfile(info, io.BytesIO(value))
    return buf.getvalue()


def image_config(diff_ids: Iterable[str], cmd: list[str] | None = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": "test"}],
    }
    doc.update(extra)
    return json.dumps(doc, indent=1).encode()  # not canonical on purpose: IDs are of the bytes


def make_image(
    engine: Engine, layers: list[Tree], names: Iterable[str] = (), **config: Any
) -> Image:
    """Build and register an image of `layers` (uncompressed), named `names`."""
    tars = [layer_tar(t) for t in layers]
    descs = []
    for t in tars:
        d = engine.content.put_bytes(t)
        descs.append(Descriptor(mediatypes.OCI_LAYER, d, len(t)))
    cfg = image_config([sha(t) for t in tars], **config)
    cd = engine.content.put_bytes(cfg)
    m = Manifest(config=Descriptor(mediatypes.OCI_CONFIG, cd, len(cfg)), layers=tuple(descs))
    md = engine.content.put_bytes(m.to_json())
    return engine.images.register(md, [parse_reference(n) for n in names])


def tar_members(data: bytes) -> dict[str, bytes]:
    """Regular files of a tar (possibly compressed) by name."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f.read()
    return out


def write_tar(entries: list[tuple[str, bytes | str]], *, compress: str = "") -> bytes:
    """A tar with the given members in the given order (str value: a symlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    data = buf.getvalue()
    if compress == "gzip":
        return gzip.compress(data, mtime=0)
    if compress == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor().compress(data))
    return data


# --- checks of the helpers themselves ------------------------------------------------------


def test_layer_tar_is_deterministic() -> None:
    tree: Tree = {"a": None, "a/b": b"x", "a/c": "b"}
    assert layer_tar(tree) == layer_tar(dict(reversed(list(tree.items()))))


def test_write_tar_roundtrip() -> None:
    data = write_tar([("z", b"1"), ("a", b"2")], compress="gzip")
    assert tar_members(data) == {"z": b"1", "a": b"2"}
