"""Rootfs preparation against the recording fake kernel (no root needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux import kernel as k
from dockyard.linux.fake import FakeKernel
from dockyard.runtime import rootfs


def _rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "escape").symlink_to("/etc")
    (root / "up").symlink_to("../../../..")
    return root


def test_secure_join_keeps_symlinks_inside(tmp_path: Path) -> None:
    root = str(_rootfs(tmp_path))
    assert rootfs.secure_join(root, "/escape/passwd") == f"{root}/etc/passwd"
    assert rootfs.secure_join(root, "/up/etc") == f"{root}/etc"
    assert rootfs.secure_join(root, "../../x") == f"{root}/x"
    (Path(root) / "loop").symlink_to("loop")
    with pytest.raises(InvalidArgument):
        rootfs.secure_join(root, "/loop/x")


def _mounts(fake: FakeKernel) -> list[tuple[object, ...]]:
    return [c[1:] for c in fake.calls if c[0] == "mount"]


def test_prepare_mount_sequence(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    src = tmp_path / "data"
    src.mkdir()
    spec = {
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "size=1m"]},
            {"destination": "/data", "type": "bind", "source": str(src),
             "options": ["rbind", "ro", "rprivate"]},
        ]
    }  # fmt: skip
    fake = FakeKernel()
    rootfs.prepare(fake, spec, str(root), str(tmp_path), None, userns=False)
    mounts = _mounts(fake)
    assert mounts[0] == ("", "/", "", k.MS_SLAVE | k.MS_REC, "")
    assert mounts[1] == (str(root), str(root), "", k.MS_BIND | k.MS_REC, "")
    assert ("proc", f"{root}/proc", "proc", 0, "") in mounts
    assert ("tmpfs", f"{root}/etc/x", "tmpfs", k.MS_NOSUID, "size=1m") in mounts
    i = mounts.index((str(src), f"{root}/data", "", k.MS_BIND | k.MS_REC, ""))
    assert mounts[i + 1] == ("", f"{root}/data", "", k.MS_BIND | k.MS_REMOUNT | k.MS_RDONLY, "")
    assert mounts[i + 2] == ("", f"{root}/data", "", k.MS_PRIVATE | k.MS_REC, "")
    nodes = [c for c in fake.calls if c[0] == "mknod"]
    assert [c[1] for c in nodes] == [f"{root}{p}" for p, _, _ in rootfs.DEFAULT_DEVICES]
    assert os.readlink(root / "dev" / "ptmx") == "pts/ptmx"
    assert os.readlink(root / "dev" / "fd") == "/proc/self/fd"


def test_userns_binds_devices_instead_of_mknod(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    fake = FakeKernel()
    rootfs.prepare(fake, {"mounts": []}, str(root), str(tmp_path), None, userns=True)
    assert "mknod" not in fake.names()
    assert ("/dev/null", f"{root}/dev/null", "", k.MS_BIND, "") in _mounts(fake)


def test_cgroup_mount_like_runc_on_v1(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    sources = {"memory": Path("/sys/fs/cgroup/memory/c"), "unified": Path("/u/c")}
    spec = {"mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                        "options": ["nosuid", "ro"]}]}  # fmt: skip
    fake = FakeKernel()
    rootfs.prepare(fake, spec, str(root), str(tmp_path), sources, userns=False)
    mounts = _mounts(fake)
    dest = f"{root}/sys/fs/cgroup"
    assert ("tmpfs", dest, "tmpfs", k.MS_NOSUID, "mode=755") in mounts
    assert ("/sys/fs/cgroup/memory/c", f"{dest}/memory", "", k.MS_BIND | k.MS_REC, "") in mounts
    assert not any("/u/c" in str(m[0]) for m in mounts)  # runc mounts no unified tree on v1


def test_pivot_and_finish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKernel()
    monkeypatch.chdir(tmp_path)
    rootfs.pivot(fake, str(tmp_path), "rshared")
    assert fake.names() == ["pivot_root", "mount", "umount2", "mount"]
    assert fake.calls[-1] == ("mount", "", "/", "", k.MS_SHARED | k.MS_REC, "")
    fake = FakeKernel()
    rootfs.mask_path(fake, str(tmp_path))
    rootfs.mask_path(fake, "/etc/hostname")
    rootfs.mask_path(fake, "/no/such/path")
    assert _mounts(fake) == [
        ("tmpfs", str(tmp_path), "tmpfs", k.MS_RDONLY, ""),
        ("/dev/null", "/etc/hostname", "", k.MS_BIND, ""),
    ]
