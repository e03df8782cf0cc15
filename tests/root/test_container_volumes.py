"""Volumes and bind mounts in containers: named volumes persist, anonymous ones follow the
container (`rm -v`, `--rm`), image VOLUME paths are filled from the image, binds honour :ro."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import dy
from tests.images import BASE_CHANGES, write_busybox_rootfs

pytestmark = pytest.mark.root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    tar = tmp_path / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    args = ["import"]
    for c in [*BASE_CHANGES, "VOLUME /etc"]:
        args += ["--change", c]
    dy(r, *args, str(tar), "volimg:1")
    args = ["import"]
    for c in BASE_CHANGES:
        args += ["--change", c]
    dy(r, *args, str(tar), "busybox:latest")
    yield r
    ids = dy(r, "ps", "-aq", check=False).out.split()
    if ids:
        dy(r, "rm", "-f", *ids, check=False)
    assert not [m for m in Path("/proc/mounts").read_text().splitlines() if str(r) in m]


def test_named_volume_persists_across_containers(root: Path) -> None:
    dy(root, "run", "--rm", "--network", "none", "-v", "data:/data", "busybox",
       "sh", "-c", "echo hi > /data/f")  # fmt: skip
    r = dy(
        root, "run", "--rm", "--network", "none", "-v", "data:/data", "busybox", "cat", "/data/f"
    )
    assert r.out == "hi\n"
    assert dy(root, "volume", "ls", "-q").out == "data\n"
    dy(root, "run", "-d", "--network", "none", "--name", "user1", "-v", "data:/data", "busybox",
       "sleep", "60")  # fmt: skip
    r = dy(root, "volume", "rm", "data", check=False)
    assert r.rc == 1 and "volume is in use" in r.err
    dy(root, "rm", "-f", "user1")
    dy(root, "volume", "rm", "data")


def test_anonymous_volumes_follow_the_container(root: Path) -> None:
    dy(root, "run", "--network", "none", "--name", "anon", "-v", "/scratch", "busybox",
       "touch", "/scratch/x")  # fmt: skip
    assert len(dy(root, "volume", "ls", "-q").out.split()) == 1
    dy(root, "rm", "-v", "anon")
    assert dy(root, "volume", "ls", "-q").out == ""
    dy(root, "run", "--rm", "--network", "none", "-v", "/scratch", "busybox", "true")
    assert dy(root, "volume", "ls", "-q").out == ""


def test_image_volume_is_filled_from_the_image(root: Path) -> None:
    r = dy(root, "run", "--network", "none", "--name", "vi", "volimg:1", "cat", "/etc/passwd")
    assert r.out.startswith("root:x:0:0")
    vols = dy(root, "volume", "ls", "-q").out.split()
    assert len(vols) == 1
    dy(root, "rm", "-v", "vi")


def test_bind_mount_read_only(root: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "h").write_text("from host\n")
    r = dy(root, "run", "--rm", "--network", "none", "-v", f"{host}:/h:ro", "busybox",
           "sh", "-c", "cat /h/h; echo x > /h/y", check=False)  # fmt: skip
    assert r.out == "from host\n" and r.rc != 0 and "Read-only file system" in r.err
    assert not (host / "y").exists()
    dy(root, "run", "--rm", "--network", "none", "-v", f"{host}:/h", "busybox", "sh", "-c",
       "echo w > /h/w")  # fmt: skip
    assert (host / "w").read_text() == "w\n"
