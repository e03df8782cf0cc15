"""Copy-up of an image directory into a volume, and path resolution inside a rootfs
(no root needed: ownership stays the caller's; see tests/root for chown and devices)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.volume.copyup import copy_up, is_empty_dir, resolve_in_rootfs, tree_size


def _tree(src: Path) -> None:
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "e" / "f").write_text("deep")
    (src / "exe").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "exe", 0o755)
    (src / "secret").write_text("s")
    os.chmod(src / "secret", 0o600)
    os.symlink("d/e/f", src / "rel")
    os.symlink("/etc/passwd", src / "abs")
    os.symlink("../../../../../../etc", src / "escape")
    os.link(src / "exe", src / "exe2")
    os.mkfifo(src / "fifo", 0o640)
    os.setxattr(src / "secret", "user.note", b"xa")
    os.chmod(src / "d", 0o1777)
    os.utime(src / "d" / "e" / "f", ns=(1_000_000_000, 2_000_000_000))
    os.utime(src / "d", ns=(3_000_000_000, 4_000_000_000))
    os.utime(src / "rel", ns=(5_000_000_000, 6_000_000_000), follow_symlinks=False)


def test_copy_up_keeps_modes_links_xattrs_and_times(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    _tree(src)
    os.chmod(src, 0o705)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
        os.link(src / "sock", src / "sock2")
        assert copy_up(src, dst)
    assert not (dst / "sock").exists() and not (dst / "sock2").exists()  # sockets skipped
    assert (dst / "d" / "e" / "f").read_text() == "deep"
    assert stat.S_IMODE((dst / "exe").stat().st_mode) == 0o755
    assert stat.S_IMODE((dst / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((dst / "d").stat().st_mode) == 0o1777
    assert stat.S_IMODE(dst.stat().st_mode) == 0o705
    assert os.readlink(dst / "rel") == "d/e/f"
    assert os.readlink(dst / "abs") == "/etc/passwd"
    assert os.readlink(dst / "escape") == "../../../../../../etc"
    assert (dst / "rel").lstat().st_mtime_ns == 6_000_000_000
    assert (dst / "exe").stat().st_ino == (dst / "exe2").stat().st_ino
    assert stat.S_ISFIFO((dst / "fifo").lstat().st_mode)
    assert stat.S_IMODE((dst / "fifo").lstat().st_mode) == 0o640
    assert os.getxattr(dst / "secret", "user.note") == b"xa"
    assert (dst / "d" / "e" / "f").stat().st_mtime_ns == 2_000_000_000
    assert (dst / "d").stat().st_mtime_ns == 4_000_000_000
    assert (dst / "exe").stat().st_uid == (src / "exe").stat().st_uid


def test_copy_up_never_follows_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host-secret").write_text("no")
    rootfs = tmp_path / "rootfs"
    (rootfs / "data").mkdir(parents=True)
    os.symlink(str(outside), rootfs / "data" / "link")  # absolute: host path from the host
    os.symlink(str(outside), rootfs / "mnt")
    dst = tmp_path / "dst"
    dst.mkdir()
    assert copy_up(rootfs / "data", dst)
    assert os.readlink(dst / "link") == str(outside)
    copied = [f for _, dirs, files in os.walk(dst) for f in dirs + files]
    assert copied == ["link"]
    # the source itself a symlink: nothing is copied
    dst2 = tmp_path / "dst2"
    dst2.mkdir()
    assert copy_up(rootfs / "mnt", dst2) is False and is_empty_dir(dst2)
    assert copy_up(rootfs / "nothing", dst2) is False
    (rootfs / "file").write_text("f")
    assert copy_up(rootfs / "file", dst2) is False


def test_resolve_in_rootfs_keeps_symlinks_inside(tmp_path: Path) -> None:
    r = tmp_path / "rootfs"
    (r / "usr" / "share").mkdir(parents=True)
    (r / "etc").mkdir()
    os.symlink("/usr/share", r / "abs")
    os.symlink("../../../../etc", r / "usr" / "up")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    assert resolve_in_rootfs(r, "/usr/share") == r / "usr" / "share"
    assert resolve_in_rootfs(r, "/abs") == r / "usr" / "share"
    assert resolve_in_rootfs(r, "/usr/up") == r / "etc"
    assert resolve_in_rootfs(r, "/../../etc/.") == r / "etc"
    assert resolve_in_rootfs(r, "/missing/x") is None
    assert resolve_in_rootfs(r, "/") == r
    with pytest.raises(InvalidArgument, match="too many levels"):
        resolve_in_rootfs(r, "/loop1")


def test_tree_size_counts_files_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 100)
    os.link(tmp_path / "d" / "a", tmp_path / "b")
    (tmp_path / "c").write_bytes(b"y" * 10)
    os.symlink("/usr", tmp_path / "l")  # counted as the link itself, never followed
    assert tree_size(tmp_path) == 110 + len("/usr")
