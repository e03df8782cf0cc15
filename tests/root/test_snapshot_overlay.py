"""Snapshots on the real kernel: an overlay of 3 unpacked layers with whiteouts and opaque dirs,
then the container's changes back to a layer (write_layer from the upper dir) and `diff`."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.layer.apply import apply_layer
from dockyard.layer.create import diff_changes, write_layer
from dockyard.snapshot.chain import chain_ids
from dockyard.snapshot.mount import Mount
from dockyard.snapshot.store import SnapshotStore

pytestmark = pytest.mark.root


def entry(
    name: str, typ: bytes = tarfile.REGTYPE, data: bytes = b""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = typ
    info.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
    return info, data


def tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


LAYERS = [
    tar(
        entry("etc/", tarfile.DIRTYPE),
        entry("etc/hosts", data=b"base"),
        entry("etc/old", data=b"old"),
        entry("opt/", tarfile.DIRTYPE),
        entry("opt/a", data=b"a"),
        entry("opt/b", data=b"b"),
        entry("bin/", tarfile.DIRTYPE),
        entry("bin/busybox", data=b"bb"),
    ),
    tar(entry("etc/.wh.old"), entry("etc/new", data=b"new"), entry("opt/c", data=b"c")),
    tar(entry("opt/", tarfile.DIRTYPE), entry("opt/.wh..wh..opq"), entry("opt/only", data=b"o")),
]


def mount(m: Mount, target: Path) -> None:
    cmd = ["mount", "-t", m.type, m.source, str(target), "-o", m.data]
    if m.type == "bind":
        cmd = ["mount", "--bind", m.source, str(target)]
    subprocess.run(cmd, check=True, cwd=m.cwd)
    if m.type == "bind" and "ro" in m.options:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[list[Path]]:
    """Mount points; every one is unmounted at teardown, even when the test fails."""
    points: list[Path] = []
    yield points
    for p in reversed(points):
        subprocess.run(["umount", "-l", str(p)], check=False)


def diff_id(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def unpack(store: SnapshotStore, layers: list[bytes]) -> list[str]:
    diff_ids = [diff_id(b) for b in layers]
    chain = chain_ids(diff_ids)
    parent = None
    for c, blob, d in zip(chain, layers, diff_ids, strict=True):
        res = store.create(c, parent, lambda fs, b=blob: apply_layer(io.BytesIO(b), fs))
        assert res.diff_id == d
        parent = c
    return list(chain)


def test_overlay_of_three_snapshots(tmp_path: Path, mounted: list[Path]) -> None:
    store = SnapshotStore(tmp_path / "snaps")
    chain = unpack(store, LAYERS)
    upper, work, rootfs = tmp_path / "upper", tmp_path / "work", tmp_path / "rootfs"
    for d in (upper, work, rootfs):
        d.mkdir()
    (m,) = store.mounts(chain, upper, work)
    mount(m, rootfs)
    mounted.append(rootfs)

    assert sorted(os.listdir(rootfs / "etc")) == ["hosts", "new"]  # whiteout hides old
    assert sorted(os.listdir(rootfs / "opt")) == ["only"]  # opaque hides a, b, c
    assert (rootfs / "etc/hosts").read_bytes() == b"base"

    # The container changes things; its upper dir becomes a layer.
    (rootfs / "etc/hosts").write_bytes(b"changed")
    (rootfs / "etc/new").unlink()
    (rootfs / "added").write_bytes(b"+")
    for n in os.listdir(rootfs / "opt"):
        os.unlink(rootfs / "opt" / n)
    os.rmdir(rootfs / "opt")
    os.mkdir(rootfs / "opt")  # recreated: overlay makes it opaque
    (rootfs / "opt/fresh").write_bytes(b"f")

    lowers = [store.dir(c) for c in reversed(chain)]
    changes = diff_changes(upper, lowers)
    assert ("C", "/etc/hosts") in changes
    assert ("D", "/etc/new") in changes
    assert ("A", "/added") in changes
    assert ("C", "/opt") in changes and ("A", "/opt/fresh") in changes
    assert ("D", "/opt/only") in changes

    out = io.BytesIO()
    res = write_layer(upper, out, from_overlay_upper=True, compression="plain")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        names = tf.getnames()
    assert "etc/.wh.new" in names and "opt/.wh..wh..opq" in names and "added" in names
    assert names.index("opt") < names.index("opt/.wh..wh..opq") < names.index("opt/fresh")

    # Applied as a 4th snapshot, the new chain shows the container's view.
    chain4 = chain_ids([*(diff_id(b) for b in LAYERS), res.diff_id])[-1]
    store.create(chain4, chain[-1], lambda fs: apply_layer(io.BytesIO(out.getvalue()), fs))
    view = tmp_path / "view"
    view.mkdir()
    (m2,) = store.mounts([*chain, chain4], None, None)
    mount(m2, view)
    mounted.append(view)
    assert sorted(os.listdir(view / "etc")) == ["hosts"]
    assert sorted(os.listdir(view / "opt")) == ["fresh"]
    assert (view / "etc/hosts").read_bytes() == b"changed"
    assert (view / "added").read_bytes() == b"+"
    wh = os.lstat(store.dir(chain4) / "etc/new")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0


def test_single_layer_read_only_bind(tmp_path: Path, mounted: list[Path]) -> None:
    store = SnapshotStore(tmp_path / "snaps")
    chain = unpack(store, LAYERS[:1])
    (m,) = store.mounts(chain, None, None)
    assert m.type == "bind" and "ro" in m.options
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    mount(m, rootfs)
    mounted.append(rootfs)
    assert (rootfs / "etc/hosts").read_bytes() == b"base"
    with pytest.raises(OSError):
        (rootfs / "etc/x").write_bytes(b"x")


def test_many_layers_mount_with_relative_lowerdirs(tmp_path: Path, mounted: list[Path]) -> None:
    store = SnapshotStore(tmp_path / ("snapshots-with-a-rather-long-name-" + "x" * 40))
    layers = [tar(entry(f"f{i}", data=str(i).encode())) for i in range(120)]
    chain = unpack(store, layers)
    upper, work, rootfs = tmp_path / "upper", tmp_path / "work", tmp_path / "rootfs"
    for d in (upper, work, rootfs):
        d.mkdir()
    (m,) = store.mounts(chain, upper, work)
    assert m.cwd is not None
    mount(m, rootfs)
    mounted.append(rootfs)
    assert len(os.listdir(rootfs)) == 120
    assert (rootfs / "f119").read_bytes() == b"119"
