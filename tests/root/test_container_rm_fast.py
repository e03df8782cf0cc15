"""`run --rm` on the fast path: the exit code comes back once the record is gone and the slow
cleanup finishes behind it; nothing outlives the next listing, also when the supervisor dies
half-way; `--rm` rootfs overlays are volatile, others are not; the record caches the image."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import dy
from tests.images import BASE_CHANGES, write_busybox_rootfs

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    r = tmp_path_factory.mktemp("rmfast") / "root"
    tar = r.parent / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    dy(r, "import", *[a for c in BASE_CHANGES for a in ("--change", c)], str(tar), "bb:1")
    try:
        yield r
    finally:
        ids = dy(r, "ps", "-aq", "--no-trunc", check=False).out.split()
        if ids:
            dy(r, "rm", "-f", *ids, check=False)
        dy(r, "ps", "-a", check=False)  # finishes any removal still under way
        left = [line for line in Path("/proc/mounts").read_text().splitlines() if str(r) in line]
        for line in left:
            subprocess.run(["umount", "-l", line.split()[1]], check=False)
        assert left == []


def _left(root: Path) -> list[str]:
    d = root / "containers"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_rm_returns_the_code_and_leaves_nothing_after_a_listing(root: Path) -> None:
    for _ in range(3):
        r = dy(root, "run", "--rm", "--network", "none", "bb:1", "sh", "-c", "echo hi; exit 7",
               check=False)  # fmt: skip
        assert (r.rc, r.out) == (7, "hi\n")
    assert dy(root, "ps", "-aq").out == ""
    assert _left(root) == []
    assert [m for m in Path("/proc/mounts").read_text().splitlines() if str(root) in m] == []
    assert not list((root / "runtime").glob("*/state.json"))


def test_rm_name_is_free_at_once(root: Path) -> None:
    for _ in range(2):
        dy(root, "run", "--rm", "--network", "none", "--name", "again", "bb:1", "true")
    assert dy(root, "ps", "-aq").out == ""


def test_rm_overlay_is_volatile_and_others_are_not(root: Path) -> None:
    grep = ["grep", "-c", "volatile", "/proc/self/mountinfo"]
    r = dy(root, "run", "--rm", "--network", "none", "bb:1", *grep, check=False)
    assert r.out.strip() == "1"
    r = dy(root, "run", "--network", "none", "--name", "keep", "bb:1", *grep, check=False)
    assert r.out.strip() == "0"
    dy(root, "rm", "keep")


def test_record_caches_the_image_config_and_chain(root: Path) -> None:
    dy(root, "create", "--network", "none", "--name", "cached", "bb:1", "true")
    from dockyard.engine import Engine

    with Engine.open(root) as engine:
        c = engine.containers.get("cached")
        img = engine.images.resolve("bb:1")
        assert c.image_id == str(img.id)
        assert c.image_config == img.config.config
        assert c.image_chain == [str(x) for x in img.chain]
        assert engine.images.run_view("bb:1") == (str(img.id), c.image_config, c.image_chain)
    dy(root, "rm", "cached")


def test_a_listing_finishes_a_removal_whose_supervisor_died(root: Path) -> None:
    cid = dy(root, "create", "--network", "none", "--rm", "bb:1", "true").out.strip()
    d = root / "containers" / cid
    from dockyard.container import running
    from dockyard.engine import Engine

    with Engine.open(root) as engine:  # as a supervisor killed right after deleting the record
        c = engine.containers.get(cid)
        running.mount_rootfs(engine.containers, c)
        (d / "removing").write_text("dockyard")
        with engine.meta.tx():
            engine.meta.delete_container(cid)
    assert os.path.ismount(d / "rootfs")
    assert dy(root, "ps", "-aq").out == ""
    assert not d.exists()
