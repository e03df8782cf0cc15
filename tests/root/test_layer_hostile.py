"""Hostile layer tars: nothing may be written, changed or deleted outside the target.

Each test builds the attack with tarfile, applies it into `target`, and proves that a
sentinel directory beside the target stays empty, a victim directory beside it is unchanged
(content, owner, mode, times), and host files (/etc/passwd) are untouched. Whether the apply
refuses (InvalidArgument) or contains the entry inside the target, the outside stays intact.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.errors import DockyardError
from dockyard.layer.apply import apply_layer

pytestmark = pytest.mark.root

HOST_FILE = Path("/etc/passwd")


def entry(
    name: str, typ: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = typ
    info.mtime = 1_600_000_000
    info.mode = 0o777 if typ == tarfile.DIRTYPE else 0o666
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


def snapshot(path: Path) -> list[tuple[str, int, int, int, int, float, bytes]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            data = Path(p).read_bytes() if os.path.isfile(p) and not os.path.islink(p) else b""
            out.append((p, st.st_mode, st.st_uid, st.st_nlink, st.st_ino, st.st_mtime, data))
    return sorted(out)


def host_state() -> tuple[str, int, int, int, float]:
    st = os.stat(HOST_FILE)
    digest = hashlib.sha256(HOST_FILE.read_bytes()).hexdigest()
    return digest, st.st_mode, st.st_uid, st.st_nlink, st.st_mtime


@dataclass
class Arena:
    base: Path
    target: Path
    sentinel: Path  # must stay empty
    victim: Path  # must stay unchanged

    def apply(self, blob: bytes, **kw: bool) -> DockyardError | None:
        try:
            apply_layer(io.BytesIO(blob), self.target, **kw)
        except DockyardError as e:
            return e
        return None


@pytest.fixture
def arena(tmp_path: Path) -> Iterator[Arena]:
    a = Arena(tmp_path, tmp_path / "target", tmp_path / "sentinel", tmp_path / "victim")
    for d in (a.target, a.sentinel, a.victim):
        d.mkdir()
    (a.victim / "file").write_text("precious")
    os.utime(a.victim / "file", (1000, 1000))
    before_victim = snapshot(a.victim)
    before_host = host_state()
    yield a
    assert os.listdir(a.sentinel) == [], "something was written outside the target"
    assert snapshot(a.victim) == before_victim, "a file outside the target changed"
    assert host_state() == before_host, "a host file changed"


def test_dotdot_escape(arena: Arena) -> None:
    err = arena.apply(tar(entry("../sentinel/evil", data=b"x")))
    assert err is not None and "../sentinel/evil" in str(err)
    err = arena.apply(tar(entry("ok/../../sentinel/evil", data=b"x")))
    assert err is not None


def test_absolute_path_is_contained(arena: Arena) -> None:
    assert arena.apply(tar(entry(str(arena.sentinel / "evil"), data=b"x"))) is None
    assert (arena.target / str(arena.sentinel).lstrip("/") / "evil").read_bytes() == b"x"


def test_symlink_then_write_through(arena: Arena) -> None:
    arena.apply(
        tar(
            entry("a", tarfile.SYMTYPE, linkname=str(arena.sentinel)),
            entry("a/evil", data=b"x"),
            entry("b", tarfile.SYMTYPE, linkname="../sentinel"),
            entry("b/evil", data=b"y"),
        )
    )
    assert os.readlink(arena.target / "a") == str(arena.sentinel)  # created, not followed


def test_symlink_dotdot_chains(arena: Arena) -> None:
    arena.apply(
        tar(
            entry("x/", tarfile.DIRTYPE),
            entry("x/up", tarfile.SYMTYPE, linkname="../../../../../../../.."),
            entry("x/up/sentinel/evil", data=b"x"),
            entry("c1", tarfile.SYMTYPE, linkname="c2/.."),
            entry("c2", tarfile.SYMTYPE, linkname="x/up/.."),
            entry("c1/sentinel/evil2", data=b"y"),
        )
    )


def test_hardlink_to_host_file(arena: Arena) -> None:
    err = arena.apply(tar(entry("pw", tarfile.LNKTYPE, linkname=str(HOST_FILE))))
    assert err is not None and "pw" in str(err)
    err = arena.apply(tar(entry("pw", tarfile.LNKTYPE, linkname="../victim/file")))
    assert err is not None
    err = arena.apply(
        tar(
            entry("etc", tarfile.SYMTYPE, linkname=str(HOST_FILE.parent)),
            entry("pw", tarfile.LNKTYPE, linkname="etc/passwd"),
        )
    )
    assert err is not None


def test_hardlink_to_symlink_pointing_out(arena: Arena) -> None:
    victim = arena.victim / "file"
    arena.apply(
        tar(
            entry("s", tarfile.SYMTYPE, linkname=str(victim)),
            entry("h", tarfile.LNKTYPE, linkname="s"),
            entry("h", data=b"overwrite through the link?"),
            entry("s", data=b"overwrite through the symlink?", mode=0o777, uid=1234),
        )
    )
    assert (arena.target / "h").read_bytes() == b"overwrite through the link?"


def test_metadata_through_symlink(arena: Arena) -> None:
    victim = arena.victim / "file"
    arena.apply(
        tar(
            entry("s", tarfile.SYMTYPE, linkname=str(victim), uid=4321, mtime=5),
            entry("d", tarfile.SYMTYPE, linkname=str(arena.victim)),
            entry("d/", tarfile.DIRTYPE, mode=0o700, uid=4321),
        )
    )


def test_device_node_refused(arena: Arena) -> None:
    err = arena.apply(
        tar(entry("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)), allow_devices=False
    )
    assert err is not None and "sda" in str(err)
    assert not (arena.target / "sda").exists()


def test_dir_replaced_by_symlink(arena: Arena) -> None:
    arena.apply(
        tar(
            entry("d/", tarfile.DIRTYPE),
            entry("d/f", data=b"inside"),
            entry("d", tarfile.SYMTYPE, linkname=str(arena.sentinel)),
            entry("d/evil", data=b"x"),
            entry("e/", tarfile.DIRTYPE),
            entry("e", tarfile.SYMTYPE, linkname="../sentinel"),
            entry("e/evil", data=b"y"),
        )
    )


@pytest.mark.parametrize("overlay", [True, False])
def test_whiteouts_through_symlink(arena: Arena, overlay: bool) -> None:
    arena.apply(
        tar(
            entry("v", tarfile.SYMTYPE, linkname=str(arena.victim)),
            entry("v/.wh.file"),
            entry("v/.wh..wh..opq"),
            entry("w", tarfile.SYMTYPE, linkname="../victim"),
            entry("w/.wh.file"),
        ),
        overlay_whiteouts=overlay,
    )


def test_whiteout_of_dotdot_refused(arena: Arena) -> None:
    assert arena.apply(tar(entry("sub/.wh.."))) is not None
    assert arena.apply(tar(entry("../victim/.wh.file")), overlay_whiteouts=False) is not None


def test_file_over_symlink_to_host(arena: Arena) -> None:
    arena.apply(
        tar(
            entry("passwd", tarfile.SYMTYPE, linkname=str(HOST_FILE)),
            entry("passwd", data=b"root::0:0::/:/bin/sh\n"),
        )
    )
    assert (arena.target / "passwd").read_bytes().startswith(b"root::")
