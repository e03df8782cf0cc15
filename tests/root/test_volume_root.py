"""Volumes on the real kernel: copy-up with ownership, devices and privileged xattrs;
tmpfs-type and bind-type volumes mounted on first use and unmounted on removal."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import Conflict
from dockyard.linux import fsmount
from dockyard.store.meta import MetaDB
from dockyard.volume.copyup import resolve_in_rootfs
from dockyard.volume.service import VolumeService

pytestmark = pytest.mark.root


def _mounts_under(path: Path) -> list[str]:
    top = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(top)]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[VolumeService]:
    root = tmp_path / "root"
    meta = MetaDB(root)
    try:
        yield VolumeService(root, meta)
    finally:
        meta.close()
        for target in sorted(_mounts_under(root), key=len, reverse=True):
            fsmount.unmount(target)


def test_copy_up_keeps_ownership_devices_and_capabilities(
    svc: VolumeService, tmp_path: Path
) -> None:
    rootfs = tmp_path / "rootfs"
    src = rootfs / "var" / "lib" / "app"
    (src / "owned").mkdir(parents=True)
    os.chown(src, 1000, 1000)
    os.chmod(src, 0o2770)
    os.chown(src / "owned", 33, 44)
    (src / "owned" / "suid").write_bytes(b"x")
    os.chown(src / "owned" / "suid", 33, 44)
    os.chmod(src / "owned" / "suid", 0o4755)
    (src / "ping").write_bytes(b"elf")
    # cap_net_raw+ep, VFS_CAP_REVISION_2
    caps = bytes.fromhex("0100000200200000000000000000000000000000")
    os.setxattr(src / "ping", "security.capability", caps)
    os.setxattr(src / "ping", "trusted.x", b"t")
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(src / "null", 0o666)
    os.symlink("owned", src / "ln")
    os.chown(src / "ln", 7, 8, follow_symlinks=False)
    os.symlink("/var/lib/app", rootfs / "appdir")

    data = svc.prepare_mount("app", resolve_in_rootfs(rootfs, "/appdir"), create=True)
    st = data.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o2770)
    o = (data / "owned").stat()
    assert (o.st_uid, o.st_gid) == (33, 44)
    s = (data / "owned" / "suid").stat()
    assert (s.st_uid, stat.S_IMODE(s.st_mode)) == (33, 0o4755)
    assert os.getxattr(data / "ping", "security.capability") == caps
    assert os.getxattr(data / "ping", "trusted.x") == b"t"
    n = (data / "null").lstat()
    assert stat.S_ISCHR(n.st_mode) and n.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(n.st_mode) == 0o666
    ln = (data / "ln").lstat()
    assert stat.S_ISLNK(ln.st_mode) and (ln.st_uid, ln.st_gid) == (7, 8)


def test_tmpfs_volume_mounted_on_use_and_unmounted_on_remove(
    svc: VolumeService, tmp_path: Path
) -> None:
    src = tmp_path / "img"
    src.mkdir()
    (src / "seed").write_text("seeded")
    v = svc.create("scratch", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    data = Path(v.mountpoint)
    assert not fsmount.is_mounted(str(data))
    assert svc.prepare_mount("scratch", src, create=False) == data
    assert fsmount.is_mounted(str(data))
    with open("/proc/self/mountinfo") as f:
        line = next(ln for ln in f if ln.split()[4] == str(data))
    assert " - tmpfs tmpfs " in line and "size=1024k" in line
    assert (data / "seed").read_text() == "seeded"  # copied up into the tmpfs
    # a second use mounts nothing more
    svc.prepare_mount("scratch", src, create=False)
    assert len(_mounts_under(data)) == 1
    # not pruned (mount options), refused while in use, unmounted on removal
    assert svc.prune(all_volumes=True)[0] == []
    svc.in_use = lambda name: ["c1"]
    with pytest.raises(Conflict):
        svc.remove("scratch")
    assert fsmount.is_mounted(str(data))
    svc.in_use = lambda name: []
    svc.remove("scratch")
    assert _mounts_under(svc.dir) == [] and not (svc.dir / "scratch").exists()


def test_bind_volume_removal_keeps_the_host_directory(svc: VolumeService, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("keep me")
    svc.create("hostdir", options={"type": "none", "device": str(host), "o": "bind"})
    data = svc.prepare_mount("hostdir", None, create=False)
    assert (data / "precious").read_text() == "keep me"
    svc.remove("hostdir")
    assert (host / "precious").read_text() == "keep me"
    assert _mounts_under(svc.dir) == []


def test_cli_removes_a_mounted_tmpfs_volume(tmp_path: Path) -> None:
    from tests.cli import dy

    root = tmp_path / "root"
    try:
        dy(root, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tv")
        meta = MetaDB(root)
        try:
            data = VolumeService(root, meta).prepare_mount("tv", None, create=False)
        finally:
            meta.close()
        assert fsmount.is_mounted(str(data))
        (data / "f").write_text("x")
        assert dy(root, "volume", "prune", "-a", "-f").out == "Total reclaimed space: 0B\n"
        assert dy(root, "volume", "rm", "tv").out == "tv\n"
        assert _mounts_under(root) == [] and not (root / "volumes" / "tv").exists()
    finally:
        for target in sorted(_mounts_under(root), key=len, reverse=True):
            fsmount.unmount(target)
