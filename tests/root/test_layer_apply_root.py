"""apply_layer as root: ownership, devices, xattrs, overlay whiteouts."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.layer.apply import apply_layer

pytestmark = pytest.mark.root


def entry(
    name: str, typ: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = typ
    info.mtime = 1_600_000_000
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def test_ownership_and_setuid(tmp_path: Path) -> None:
    apply_layer(
        io.BytesIO(
            tar(
                entry("d/", tarfile.DIRTYPE, uid=1001, gid=1002, mode=0o2775),
                entry("d/suid", data=b"x", uid=1003, gid=1004, mode=0o4755),
                entry("d/link", tarfile.SYMTYPE, linkname="/nowhere", uid=1005, gid=1006),
                entry("d/fifo", tarfile.FIFOTYPE, uid=1007, gid=1008, mode=0o620),
            )
        ),
        tmp_path,
    )
    st = os.stat(tmp_path / "d")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1001, 1002, 0o2775)
    st = os.stat(tmp_path / "d/suid")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1003, 1004, 0o4755)
    st = os.lstat(tmp_path / "d/link")
    assert (st.st_uid, st.st_gid) == (1005, 1006)
    st = os.lstat(tmp_path / "d/fifo")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1007, 1008, 0o620)


def test_devices(tmp_path: Path) -> None:
    apply_layer(
        io.BytesIO(
            tar(
                entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
                entry("dev/loop9", tarfile.BLKTYPE, devmajor=7, devminor=9, mode=0o660),
            )
        ),
        tmp_path,
    )
    st = os.lstat(tmp_path / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_IMODE(st.st_mode) == 0o666
    st = os.lstat(tmp_path / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 9)
    with pytest.raises(InvalidArgument, match="device"):
        apply_layer(
            io.BytesIO(tar(entry("zero", tarfile.CHRTYPE, devmajor=1, devminor=5))),
            tmp_path,
            allow_devices=False,
        )
    assert not (tmp_path / "zero").exists()


def test_xattrs(tmp_path: Path) -> None:
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service
    f, data = entry("ping", data=b"x", uid=1000, mode=0o755)
    f.pax_headers = {
        "SCHILY.xattr.user.comment": "hello",
        "SCHILY.xattr.security.capability": cap.decode("latin-1"),
        "SCHILY.xattr.trusted.overlay.opaque": "y",  # never taken from a layer
    }
    d, _ = entry("dir/", tarfile.DIRTYPE)
    d.pax_headers = {"SCHILY.xattr.user.d": "1"}
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w", format=tarfile.PAX_FORMAT, encoding="latin-1") as tf:
        f.size = 1
        tf.addfile(f, io.BytesIO(data))
        tf.addfile(d)
    apply_layer(io.BytesIO(blob.getvalue()), tmp_path)
    p = tmp_path / "ping"
    assert os.getxattr(p, "user.comment") == b"hello"
    assert os.getxattr(p, "security.capability") == cap  # survived the chown
    assert "trusted.overlay.opaque" not in os.listxattr(p)
    assert os.getxattr(tmp_path / "dir", "user.d") == b"1"


def test_overlay_whiteouts(tmp_path: Path) -> None:
    apply_layer(
        io.BytesIO(
            tar(
                entry("a/", tarfile.DIRTYPE),
                entry("a/.wh..wh..opq"),
                entry("a/kept", data=b"k"),
                entry(".wh.gone"),
                entry("deep/er/.wh.x"),
            )
        ),
        tmp_path,
    )
    st = os.lstat(tmp_path / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert stat.S_ISCHR(os.lstat(tmp_path / "deep/er/x").st_mode)
    assert os.getxattr(tmp_path / "a", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(tmp_path)) == ["a", "deep", "gone"]
    assert os.listdir(tmp_path / "a") == ["kept"]
