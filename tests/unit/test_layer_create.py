"""write_layer: determinism, headers, round trip through apply_layer and GNU tar; diff_changes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.layer.apply import apply_layer
from dockyard.layer.create import LayerResult, diff_changes, write_layer


def make_tree(root: Path) -> None:
    (root / "b/sub").mkdir(parents=True)
    (root / "a").write_bytes(b"a" * 5000)
    (root / "b/sub/f").write_bytes(b"f")
    (root / "b/x-y").write_bytes(b"")
    (root / ("long-" + "n" * 120)).write_bytes(b"long")
    (root / "ünï").write_bytes(b"u")
    os.symlink("/bin/busybox", root / "sh")
    os.link(root / "a", root / "b/a-link")
    os.mkfifo(root / "fifo")
    os.chmod(root / "b/sub/f", 0o4750)


def layer(src: Path, **kw: object) -> tuple[bytes, LayerResult]:
    out = io.BytesIO()
    kw.setdefault("from_overlay_upper", False)
    res = write_layer(src, out, **kw)  # type: ignore[arg-type]
    return out.getvalue(), res


def test_result_digests(tmp_path: Path) -> None:
    make_tree(tmp_path)
    blob, res = layer(tmp_path)
    plain = gzip.decompress(blob)
    assert res.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert res.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert res.size_compressed == len(blob)
    assert res.size_uncompressed == len(plain)


def test_order_and_headers(tmp_path: Path) -> None:
    make_tree(tmp_path)
    blob, _ = layer(tmp_path, compression="plain")
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names[:6] == ["a", "b", "b/a-link", "b/sub", "b/sub/f", "b/x-y"]
    assert names.index("b") < names.index("b/sub/f")
    by = {m.name: m for m in members}
    assert by["b/a-link"].islnk() and by["b/a-link"].linkname == "a"
    assert by["sh"].issym() and by["sh"].linkname == "/bin/busybox"
    assert by["fifo"].isfifo()
    assert by["b/sub/f"].mode == 0o4750
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert "ünï" in by and ("long-" + "n" * 120) in by
    assert blob.endswith(bytes(1024))


def test_deterministic(tmp_path: Path) -> None:
    make_tree(tmp_path)
    for compression in ("gzip", "zstd", "plain"):
        first, r1 = layer(tmp_path, compression=compression)
        second, r2 = layer(tmp_path, compression=compression)
        assert first == second and r1 == r2


def test_source_date_epoch_clamps_mtimes(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for root, t in ((one, 1_700_000_000), (two, 1_800_000_000)):
        root.mkdir()
        make_tree(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                os.utime(os.path.join(dirpath, n), (t, t), follow_symlinks=False)
    _, r1 = layer(one, source_date_epoch=1_000_000_000)
    _, r2 = layer(two, source_date_epoch=1_000_000_000)
    assert r1 == r2
    _, r3 = layer(one)
    _, r4 = layer(two)
    assert r3 != r4


def test_round_trip_through_apply(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    make_tree(src)
    blob, res = layer(src, compression="zstd")
    got = apply_layer(io.BytesIO(blob), dst, same_owner=False)
    assert got.diff_id == res.diff_id
    assert (dst / "a").read_bytes() == b"a" * 5000
    assert os.stat(dst / "a").st_ino == os.stat(dst / "b/a-link").st_ino
    assert os.stat(dst / "b/sub/f").st_mode & 0o7777 == 0o4750
    assert os.readlink(dst / "sh") == "/bin/busybox"
    assert int(os.stat(dst / "b").st_mtime) == int(os.stat(src / "b").st_mtime)


def test_gnu_tar_reads_it(tmp_path: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("tar not installed")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    make_tree(src)
    blob, _ = layer(src, compression="plain")
    subprocess.run(["tar", "-x", "-C", str(dst)], input=blob, check=True)
    assert (dst / ("long-" + "n" * 120)).read_bytes() == b"long"
    assert (dst / "ünï").read_bytes() == b"u"


def test_sockets_skipped(tmp_path: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(tmp_path / "sock"))
        blob, _ = layer(tmp_path, compression="plain")
    finally:
        s.close()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        assert tf.getnames() == []


def test_diff_changes_added_and_changed(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc/hosts").write_text("x")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/hosts").write_text("y")
    (upper / "etc/new").write_text("n")
    (upper / "newdir/sub").mkdir(parents=True)
    (upper / "newdir/sub/f").write_text("f")
    assert diff_changes(upper, [lower]) == [
        ("C", "/etc"),
        ("C", "/etc/hosts"),
        ("A", "/etc/new"),
        ("A", "/newdir"),
        ("A", "/newdir/sub"),
        ("A", "/newdir/sub/f"),
    ]


def test_whiteout_like_names_refused(tmp_path: Path) -> None:
    from dockyard.errors import InvalidArgument

    (tmp_path / ".wh.foo").write_bytes(b"")
    with pytest.raises(InvalidArgument, match=r"\.wh\."):
        layer(tmp_path)
