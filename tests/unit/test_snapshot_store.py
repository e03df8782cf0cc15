"""SnapshotStore: atomic create, queries, removal, races, mount descriptions."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.snapshot.chain import chain_ids
from dockyard.snapshot.mount import Mount
from dockyard.snapshot.store import PAGE_SIZE, SnapshotStore

DIFFS = ["sha256:" + c * 64 for c in "abcdef"]
CHAIN = chain_ids(DIFFS)


def writer(text: str) -> Callable[[Path], str]:
    def apply(d: Path) -> str:
        (d / "f").write_text(text)
        return text

    return apply


def test_create_and_query(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path / "snaps")
    assert not s.has(CHAIN[0]) and s.list() == []
    assert s.create(CHAIN[0], None, writer("one")) == "one"
    assert s.has(CHAIN[0])
    d = s.dir(CHAIN[0])
    assert (d / "f").read_text() == "one"
    assert d.parent.name == CHAIN[0].hex[:16]
    s.create(CHAIN[1], CHAIN[0], writer("two"))
    assert s.list() == [CHAIN[1], CHAIN[0]]  # children first
    infos = {i.chain_id: i for i in s.infos()}
    assert infos[CHAIN[1]].parent == CHAIN[0] and infos[CHAIN[0]].parent is None
    assert s.usage(CHAIN[1]) == 3
    assert s.usage(CHAIN[1]) == 3  # cached
    assert s.create(CHAIN[0], None, writer("again")) == "again"  # work discarded
    assert (s.dir(CHAIN[0]) / "f").read_text() == "one"


def test_parent_must_exist(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path)
    with pytest.raises(NotFound):
        s.create(CHAIN[1], CHAIN[0], writer("x"))


def test_failed_apply_leaves_nothing(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path)

    def boom(d: Path) -> None:
        (d / "partial").write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        s.create(CHAIN[0], None, boom)
    assert not s.has(CHAIN[0])
    assert os.listdir(tmp_path / ".staging") == []
    assert s.list() == []


def test_list_orders_children_first(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path)
    parent = None
    for c in CHAIN:
        s.create(c, parent, writer(c))
        parent = c
    other = chain_ids(["sha256:" + "9" * 64])[0]
    s.create(other, None, writer("o"))
    order = s.list()
    assert [c for c in order if c in CHAIN] == list(reversed(CHAIN))
    for c in order:  # removal in list order never trips the parent check
        s.remove(c)
    assert s.list() == []


def test_remove(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path)
    s.create(CHAIN[0], None, writer("1"))
    s.create(CHAIN[1], CHAIN[0], writer("2"))
    with pytest.raises(Conflict):
        s.remove(CHAIN[0])
    s.remove(CHAIN[1])
    s.remove(CHAIN[0])
    assert s.list() == [] and not s.has(CHAIN[0])
    with pytest.raises(NotFound):
        s.remove(CHAIN[0])
    with pytest.raises(NotFound):
        s.dir(CHAIN[0])


def _racer(root: str, text: str, barrier: Any) -> None:
    def apply(d: Path) -> str:
        barrier.wait()
        for i in range(50):
            (d / f"f{i}").write_text(text)
        time.sleep(0.05)
        return text

    SnapshotStore(Path(root)).create(CHAIN[0], None, apply)


def test_two_processes_unpack_same_chain(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), t, barrier)) for t in "AB"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(10)
    assert [p.exitcode for p in procs] == [0, 0]
    s = SnapshotStore(tmp_path)
    d = s.dir(CHAIN[0])
    texts = {(d / f"f{i}").read_text() for i in range(50)}
    assert len(texts) == 1  # exactly one winner, never a mix
    assert os.listdir(tmp_path / ".staging") == []


def test_cleanup_removes_dead_staging(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path)
    dead = tmp_path / ".staging" / "999999999-abc"
    dead.mkdir(parents=True)
    live = tmp_path / ".staging" / f"{os.getpid()}-abc"
    live.mkdir()
    s.cleanup()
    assert not dead.exists() and live.exists()


def test_mounts_descriptions(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path)
    parent = None
    for c in CHAIN[:3]:
        s.create(c, parent, writer(c))
        parent = c
    d = [str(s.dir(c)) for c in CHAIN[:3]]
    up, wk = tmp_path / "up", tmp_path / "wk"
    assert s.mounts(CHAIN[:1], None, None) == [Mount("bind", d[0], "", ("rbind", "ro"))]
    assert s.mounts([], up, wk, target=Path("/r")) == [
        Mount("bind", str(up), "/r", ("rbind", "rw"))
    ]
    assert s.mounts(CHAIN[:3], None, None) == [
        Mount("overlay", "overlay", "", (f"lowerdir={d[2]}:{d[1]}:{d[0]}",))
    ]
    m = s.mounts(CHAIN[:2], up, wk)[0]
    assert m.options == (f"lowerdir={d[1]}:{d[0]}", f"upperdir={up}", f"workdir={wk}")
    assert m.cwd is None
    with pytest.raises(InvalidArgument):
        s.mounts(CHAIN[:2], up, None)
    with pytest.raises(InvalidArgument):
        s.mounts([], None, None)
    with pytest.raises(NotFound):
        s.mounts([CHAIN[4]], None, None)


def test_mounts_many_layers_fit_one_page(tmp_path: Path) -> None:
    root = tmp_path / ("deep-" + "x" * 60)
    s = SnapshotStore(root)
    diffs = ["sha256:" + f"{i:064x}" for i in range(150)]
    chain = chain_ids(diffs)
    parent = None
    for c in chain:
        s.create(c, parent, lambda d: None)
        parent = c
    m = s.mounts(chain, tmp_path / "up", tmp_path / "wk")[0]
    assert m.cwd == str(root)
    assert len(m.data) < PAGE_SIZE
    lowers = m.options[0].removeprefix("lowerdir=").split(":")
    assert len(lowers) == 150 and lowers[0] == chain[-1].hex[:16] + "/fs"
    assert all((root / x).is_dir() for x in lowers)
    with pytest.raises(InvalidArgument):
        s.mounts(chain * 2, tmp_path / "up", tmp_path / "wk")


def test_unmountable_paths_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        SnapshotStore(tmp_path / "a,b")
    s = SnapshotStore(tmp_path)
    s.create(CHAIN[0], None, writer("x"))
    with pytest.raises(InvalidArgument):
        s.mounts(CHAIN[:1], tmp_path / "u:p", tmp_path / "w")
