"""apply_layer without privileges: entries, metadata, whiteouts on a full tree, refusals.

The hostile-tar suite proper (with host sentinels) is tests/root/test_layer_hostile.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.layer.apply import apply_layer

T0 = 1_600_000_000


def entry(
    name: str, typ: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = typ
    info.mtime = T0
    info.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
    info.uid = os.geteuid()
    info.gid = os.getegid()
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


def apply(blob: bytes, target: Path, **kw: bool) -> str:
    target.mkdir(exist_ok=True)
    return apply_layer(io.BytesIO(blob), target, **kw).diff_id


def test_tree_and_metadata(tmp_path: Path) -> None:
    blob = tar(
        entry("etc/", tarfile.DIRTYPE, mode=0o750, mtime=T0 - 100),
        entry("etc/conf", data=b"a=1\n", mode=0o640, mtime=T0 - 50),
        entry("bin/", tarfile.DIRTYPE, mode=0o755),
        entry("bin/tool", data=b"#!", mode=0o4755),
        entry("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"),
        entry("bin/tool2", tarfile.LNKTYPE, linkname="bin/tool"),
        entry("run/fifo", tarfile.FIFOTYPE, mode=0o600),
        entry("ro/", tarfile.DIRTYPE, mode=0o555),
        entry("ro/f", data=b"x", mode=0o444),
    )
    root = tmp_path / "t"
    diff_id = apply(blob, root)
    assert diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert (root / "etc/conf").read_bytes() == b"a=1\n"
    assert stat.S_IMODE(os.stat(root / "etc").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(root / "etc/conf").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(root / "bin/tool").st_mode) == 0o4755
    assert os.stat(root / "etc").st_mtime == T0 - 100  # set after its contents
    assert os.stat(root / "etc/conf").st_mtime == T0 - 50
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    assert os.lstat(root / "bin/sh").st_mtime == T0
    assert os.stat(root / "bin/tool2").st_ino == os.stat(root / "bin/tool").st_ino
    assert stat.S_ISFIFO(os.lstat(root / "run/fifo").st_mode)
    assert stat.S_IMODE(os.stat(root / "run").st_mode) == 0o755  # implicit parent
    assert (root / "ro/f").read_bytes() == b"x"
    assert stat.S_IMODE(os.stat(root / "ro").st_mode) == 0o555
    os.chmod(root / "ro", 0o755)


@pytest.mark.parametrize("compress", [gzip.compress, lambda b: b])
def test_diff_id_is_of_uncompressed_tar(tmp_path: Path, compress: object) -> None:
    blob = tar(entry("a", data=b"hello"))
    got = apply_layer(io.BytesIO(compress(blob)), tmp_path)  # type: ignore[operator]
    assert got.diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert got.size == len(blob)


def test_whiteouts_on_full_tree(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply(
        tar(
            entry("a/b", data=b"1"),
            entry("a/c", data=b"2"),
            entry("x/y", data=b"3"),
            entry("keep", data=b"4"),
        ),
        root,
    )
    apply(
        tar(
            entry("a/new0", data=b"n"),  # same layer, before the marker: kept
            entry("a/.wh..wh..opq"),
            entry("a/new", data=b"n"),
            entry(".wh.x"),
            entry("nodir/.wh.gone"),  # parent missing: nothing to do
            entry(".wh..wh.plnk"),  # aufs metadata: skipped
        ),
        root,
        overlay_whiteouts=False,
    )
    assert sorted(os.listdir(root)) == ["a", "keep"]
    assert sorted(os.listdir(root / "a")) == ["new", "new0"]


def test_replacements(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply(
        tar(
            entry("d/f", data=b"1"),
            entry("f", data=b"2"),
            entry("l", tarfile.SYMTYPE, linkname="d"),
        ),
        root,
    )
    apply(
        tar(
            entry("d", data=b"now a file"),
            entry("f/", tarfile.DIRTYPE),
            entry("l/", tarfile.DIRTYPE),  # a symlink replaced by a dir, not followed
            entry("l/g", data=b"g"),
        ),
        root,
        overlay_whiteouts=False,
    )
    assert (root / "d").read_bytes() == b"now a file"
    assert (root / "f").is_dir()
    assert not (root / "l").is_symlink() and (root / "l/g").read_bytes() == b"g"


def test_absolute_and_dot_names_are_contained(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply(tar(entry("/abs/f", data=b"1"), entry("./rel/./g", data=b"2")), root)
    assert (root / "abs/f").read_bytes() == b"1"
    assert (root / "rel/g").read_bytes() == b"2"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/.."])
def test_dotdot_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgument, match=r"\.\."):
        apply(tar(entry(name, data=b"1")), tmp_path / "t")
    assert not (tmp_path / "x").exists()


def test_nul_in_name_refused(tmp_path: Path) -> None:
    info, data = entry("a")
    info.pax_headers = {"path": "a\x00b"}
    with pytest.raises(InvalidArgument, match="NUL"):
        apply(tar((info, data)), tmp_path / "t")


def test_symlink_parent_resolved_inside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "t"
    apply(
        tar(
            entry("abs", tarfile.SYMTYPE, linkname=str(outside)),
            entry("abs/evil", data=b"x"),
            entry("up", tarfile.SYMTYPE, linkname="../../../../.."),
            entry("up/evil2", data=b"y"),
        ),
        root,
    )
    assert os.listdir(outside) == []
    assert (root / str(outside).lstrip("/") / "evil").read_bytes() == b"x"
    assert (root / "evil2").read_bytes() == b"y"


def test_devices_refused_when_not_allowed(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="device"):
        apply(
            tar(entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)),
            tmp_path / "t",
            allow_devices=False,
        )


def test_hardlink_to_missing_or_dir_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        apply(tar(entry("h", tarfile.LNKTYPE, linkname="/etc/passwd")), tmp_path / "t")
    with pytest.raises(InvalidArgument, match="directory"):
        apply(
            tar(entry("d/", tarfile.DIRTYPE), entry("h", tarfile.LNKTYPE, linkname="d")),
            tmp_path / "u",
        )


def test_file_in_place_of_parent_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a directory"):
        apply(tar(entry("f", data=b"1"), entry("f/g", data=b"2")), tmp_path / "t")


def test_symlink_loop_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="symbolic links"):
        apply(
            tar(
                entry("a", tarfile.SYMTYPE, linkname="b"),
                entry("b", tarfile.SYMTYPE, linkname="a"),
                entry("a/x", data=b"1"),
            ),
            tmp_path / "t",
        )


def test_truncated_layer_fails(tmp_path: Path) -> None:
    blob = tar(entry("a", data=b"1" * 10000))
    with pytest.raises(InvalidArgument, match="truncated"):
        apply(blob[:3000], tmp_path / "t")


def test_root_entry_sets_root_metadata(tmp_path: Path) -> None:
    root = tmp_path / "t"
    apply(tar(entry("./", tarfile.DIRTYPE, mode=0o711, mtime=T0 - 5), entry("a", data=b"")), root)
    st = os.stat(root)
    assert stat.S_IMODE(st.st_mode) == 0o711 and st.st_mtime == T0 - 5


def test_large_file_streams(tmp_path: Path) -> None:
    data = os.urandom(1 << 16) * 40  # 2.5 MiB, several chunks
    root = tmp_path / "t"
    apply(tar(entry("big", data=data), entry("after", data=b"z")), root)
    assert (root / "big").read_bytes() == data
    assert (root / "after").read_bytes() == b"z"


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_reads_gnu_tar_output(tmp_path: Path, fmt: str) -> None:
    import shutil
    import subprocess

    if shutil.which("tar") is None:
        pytest.skip("tar not installed")
    src = tmp_path / "src"
    deep = src / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    (deep / ("f" * 150)).write_bytes(b"deep")
    os.symlink("x" * 200, src / "longlink")
    (src / "ünï").write_bytes(b"u")
    os.link(deep / ("f" * 150), src / "hard")
    blob = subprocess.run(
        ["tar", f"--format={fmt}", "--sort=name", "-c", "-C", str(src), "."],
        check=True,
        capture_output=True,
    ).stdout
    root = tmp_path / "t"
    apply(blob, root)
    assert (root / ("d" * 120) / ("e" * 120) / ("f" * 150)).read_bytes() == b"deep"
    assert os.readlink(root / "longlink") == "x" * 200
    assert (root / "ünï").read_bytes() == b"u"
    inside = root / ("d" * 120) / ("e" * 120) / ("f" * 150)
    assert os.stat(root / "hard").st_ino == os.stat(inside).st_ino


def test_no_fd_or_thread_leak_on_failures(tmp_path: Path) -> None:
    import threading

    fds = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    bad = [
        tar(entry("f", data=b"1"), entry("f/g", data=b"2")),
        tar(entry("a", tarfile.SYMTYPE, linkname="a"), entry("a/x", data=b"1")),
        tar(
            entry("l", tarfile.SYMTYPE, linkname="/x/y"),
            entry("h", tarfile.LNKTYPE, linkname="l/z"),
        ),
        tar(entry("big", data=b"1" * 100_000))[:5000],
    ]
    for i, blob in enumerate(bad * 5):
        with pytest.raises(InvalidArgument):
            apply(blob, tmp_path / f"t{i}")
    assert len(os.listdir("/proc/self/fd")) == fds
    assert threading.active_count() == threads


def test_huge_extended_header_refused(tmp_path: Path) -> None:
    from dockyard.layer import tarwrite as tw

    blob = tw.header("PaxHeader", b"x", size=100 << 20) + bytes(1024)
    with pytest.raises(InvalidArgument, match="limit"):
        apply(blob, tmp_path / "t")


def test_out_of_range_ids_refused(tmp_path: Path) -> None:
    info, data = entry("f", data=b"x")
    info.pax_headers = {"uid": str(1 << 40)}
    with pytest.raises(InvalidArgument, match="'f'"):
        apply(tar((info, data)), tmp_path / "t", same_owner=True)


def test_missing_target(tmp_path: Path) -> None:
    from dockyard.errors import NotFound

    with pytest.raises(NotFound):
        apply_layer(io.BytesIO(tar(entry("f"))), tmp_path / "missing")
