"""VolumeService on a temporary state root: create, list, inspect, remove, prune,
prepare_mount with copy-up, and concurrent creation."""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.store.meta import MetaDB
from dockyard.volume.model import ANONYMOUS_LABEL
from dockyard.volume.service import VolumeService


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[VolumeService]:
    meta = MetaDB(tmp_path / "root")
    try:
        yield VolumeService(tmp_path / "root", meta)
    finally:
        meta.close()


def test_create_get_inspect(svc: VolumeService) -> None:
    v = svc.create("data", labels={"a": "1"})
    assert v.name == "data" and v.driver == "local" and v.labels == {"a": "1"}
    assert Path(v.mountpoint) == svc.root / "volumes" / "data" / "_data"
    assert Path(v.mountpoint).is_dir() and not v.anonymous
    info = svc.inspect("data")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["CreatedAt"])
    assert info["Labels"] == {"a": "1"} and info["Options"] == {} and info["Scope"] == "local"
    # creating again returns the existing volume, labels untouched
    again = svc.create("data", labels={"b": "2"})
    assert again == v
    with pytest.raises(NotFound, match="get nope: no such volume"):
        svc.get("nope")
    with pytest.raises(InvalidArgument, match="invalid characters"):
        svc.create("bad/name")


def test_anonymous_volume(svc: VolumeService) -> None:
    v = svc.create()
    assert re.fullmatch(r"[0-9a-f]{64}", v.name)
    assert v.labels == {ANONYMOUS_LABEL: ""} and v.anonymous


def test_list_sorted_and_filtered(svc: VolumeService) -> None:
    for n in ("v10", "v2", "v1"):
        svc.create(n, labels={"n": n})
    svc.in_use = lambda name: ["c" * 64] if name == "v2" else []
    assert [v.name for v in svc.list()] == ["v1", "v2", "v10"]
    assert [v.name for v in svc.list({"dangling": ["true"]})] == ["v1", "v10"]
    assert [v.name for v in svc.list({"label": ["n=v10"]})] == ["v10"]
    assert [v.name for v in svc.list({"name": ["1"]})] == ["v1", "v10"]


def test_remove_refuses_a_volume_in_use(svc: VolumeService) -> None:
    svc.create("busy")
    users = ["a" * 64, "b" * 64]
    svc.in_use = lambda name: users if name == "busy" else []
    with pytest.raises(Conflict) as e:
        svc.remove("busy")
    assert str(e.value) == f"remove busy: volume is in use - [{users[0]}, {users[1]}]"
    with pytest.raises(Conflict):
        svc.remove("busy", force=True)
    assert svc.exists("busy")
    users.clear()
    assert svc.remove("busy") is True
    assert not svc.exists("busy") and not (svc.dir / "busy").exists()
    with pytest.raises(NotFound, match="get busy: no such volume"):
        svc.remove("busy")
    assert svc.remove("busy", force=True) is False


def test_prune_anonymous_only_unless_all(svc: VolumeService) -> None:
    anon = svc.create().name
    used_anon = svc.create().name
    svc.create("named")
    svc.create("mounted", options={"type": "tmpfs", "device": "tmpfs"})
    Path(svc.get(anon).mountpoint, "f").write_bytes(b"x" * 1500)
    svc.in_use = lambda name: ["c1"] if name == used_anon else []
    deleted, freed = svc.prune()
    assert deleted == [anon] and freed == 1500
    deleted, freed = svc.prune(filters={"label": ["nothing"]}, all_volumes=True)
    assert deleted == []
    # volumes with mount options are never pruned (no space to reclaim), as in Docker
    deleted, _ = svc.prune(all_volumes=True)
    assert deleted == ["named"]
    assert sorted(v.name for v in svc.list()) == sorted(["mounted", used_anon])
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling'"):
        svc.prune(filters={"dangling": ["true"]})


def test_prune_all_filter(svc: VolumeService) -> None:
    svc.create("named")
    assert svc.prune(filters={"all": ["false"]})[0] == []
    assert svc.prune(filters={"all": ["1"]})[0] == ["named"]
    with pytest.raises(InvalidArgument, match="invalid filter 'all'"):
        svc.prune(filters={"all": ["maybe"]})


def _image_dir(tmp_path: Path) -> Path:
    src = tmp_path / "rootfs" / "data"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("hello")
    os.chmod(src / "sub" / "f.txt", 0o640)
    os.chmod(src, 0o750)
    return src


def test_prepare_mount_creates_and_copies_up_once(svc: VolumeService, tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    with pytest.raises(NotFound):
        svc.prepare_mount("fresh", src, create=False)
    data = svc.prepare_mount("fresh", src, create=True)
    assert data == svc.root / "volumes" / "fresh" / "_data"
    assert (data / "sub" / "f.txt").read_text() == "hello"
    assert (data.stat().st_mode & 0o777) == 0o750
    assert ((data / "sub" / "f.txt").stat().st_mode & 0o777) == 0o640
    assert svc.get("fresh").used
    assert not list(data.parent.glob(".copyup-*"))
    # emptied by the user: a later use does not copy again (the volume is not new)
    (data / "sub" / "f.txt").unlink()
    (data / "sub").rmdir()
    assert svc.prepare_mount("fresh", src, create=True) == data
    assert list(data.iterdir()) == []


def test_prepare_mount_never_copies_into_a_non_empty_volume(
    svc: VolumeService, tmp_path: Path
) -> None:
    src = _image_dir(tmp_path)
    v = svc.create("filled")
    Path(v.mountpoint, "mine").write_text("keep")
    data = svc.prepare_mount("filled", src, create=False)
    assert sorted(p.name for p in data.iterdir()) == ["mine"]


def test_prepare_mount_without_image_content(svc: VolumeService, tmp_path: Path) -> None:
    data = svc.prepare_mount("empty", None, create=True)
    assert list(data.iterdir()) == []
    data2 = svc.prepare_mount("empty2", tmp_path / "missing", create=True)
    assert list(data2.iterdir()) == []


def test_a_directory_without_a_row_is_adopted_not_wiped(svc: VolumeService) -> None:
    stale = svc.dir / "ghost" / "_data"
    stale.mkdir(parents=True)
    (stale / "old").write_text("data")
    os.chmod(stale, 0o700)
    v = svc.create("ghost")
    assert (Path(v.mountpoint) / "old").read_text() == "data"
    assert (Path(v.mountpoint).stat().st_mode & 0o777) == 0o700
    # removal leaves no trash behind
    svc.remove("ghost")
    assert sorted(p.name for p in svc.dir.iterdir()) == [".lock"]


def _create_same(root: str, barrier: multiprocessing.synchronize.Barrier, q: object) -> None:
    meta = MetaDB(Path(root))
    try:
        barrier.wait()
        v = VolumeService(Path(root), meta).create("shared", labels={"pid": str(os.getpid())})
        q.put(v.created + v.labels["pid"])  # type: ignore[attr-defined]
    finally:
        meta.close()


def test_concurrent_create_of_one_name_makes_one_volume(tmp_path: Path) -> None:
    root = tmp_path / "root"
    MetaDB(root).close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    q = ctx.Queue()
    procs = [ctx.Process(target=_create_same, args=(str(root), barrier, q)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        results = {q.get(timeout=30) for _ in procs}
    finally:
        for p in procs:
            p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    assert len(results) == 1  # every process got the same volume
    meta = MetaDB(root)
    try:
        assert [v.name for v in VolumeService(root, meta).list()] == ["shared"]
    finally:
        meta.close()


def _prepare_same(root: str, src: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    meta = MetaDB(Path(root))
    try:
        barrier.wait()
        VolumeService(Path(root), meta).prepare_mount("racy", Path(src), create=True)
    finally:
        meta.close()


def test_concurrent_first_use_copies_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    src = _image_dir(tmp_path)
    MetaDB(root).close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_prepare_same, args=(str(root), str(src), barrier)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    vdir = root / "volumes" / "racy"
    assert sorted(p.name for p in vdir.iterdir()) == ["_data"]
    assert [p.name for p in (vdir / "_data").iterdir()] == ["sub"]
