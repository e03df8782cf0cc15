"""The streaming tar reader: formats, extensions, hashing, corruption."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from dockyard.errors import InvalidArgument
from dockyard.layer import tarstream as ts
from dockyard.layer import tarwrite as tw


def build(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def member(
    name: str, typ: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = typ
    info.mtime = 1_600_000_000
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def read(blob: bytes, threaded: bool = True) -> tuple[list[tuple[ts.Entry, bytes]], ts.TarReader]:
    r = ts.TarReader(io.BytesIO(blob), threaded=threaded)
    out = []
    try:
        for e in r:
            out.append((e, b"".join(bytes(c) for c in r.chunks(e))))
    finally:
        r.close()
    return out, r


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("threaded", [True, False])
def test_formats(fmt: int, threaded: bool) -> None:
    long = "d/" + "x" * 90 + "/" + "y" * 40
    blob = build(
        [
            member("d/", tarfile.DIRTYPE, mode=0o755),
            member("d/f", data=b"hello", mode=0o4755, uid=7, gid=8),
            member(long, data=b"long"),
            member("d/l", tarfile.SYMTYPE, linkname="f"),
            member("d/h", tarfile.LNKTYPE, linkname="d/f"),
            member("d/p", tarfile.FIFOTYPE),
            member("d/c", tarfile.CHRTYPE, devmajor=1, devminor=3),
        ],
        fmt,
    )
    entries, r = read(blob, threaded)
    names = [e.name for e, _ in entries]
    assert names == ["d/", "d/f", long, "d/l", "d/h", "d/p", "d/c"]
    f = entries[1][0]
    assert (f.mode, f.uid, f.gid, f.mtime_ns) == (0o4755, 7, 8, 1_600_000_000 * 10**9)
    assert entries[1][1] == b"hello" and entries[2][1] == b"long"
    assert entries[3][0].type == ts.SYM and entries[3][0].linkname == "f"
    assert entries[4][0].type == ts.LNK and entries[4][0].linkname == "d/f"
    assert (entries[6][0].devmajor, entries[6][0].devminor) == (1, 3)
    assert r.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert r.size == len(blob)


def test_pax_xattrs_times_and_unicode() -> None:
    info, data = member("dä/ünï", data=b"x")
    info.pax_headers = {
        "SCHILY.xattr.user.k": "v",
        "mtime": "1600000000.5",
        "atime": "1500000000.25",
    }
    entries, _ = read(build([(info, data)]))
    e = entries[0][0]
    assert e.name == "dä/ünï"
    assert e.xattrs == {"user.k": b"v"}
    assert e.mtime_ns == 1_600_000_000_500_000_000
    assert e.atime_ns == 1_500_000_000_250_000_000


def test_global_pax_header() -> None:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uid": "42"}
    ) as tf:
        info, _ = member("a")
        tf.addfile(info, io.BytesIO(b""))
    entries, _ = read(buf.getvalue())
    assert entries[0][0].uid == 42


def test_digest_covers_trailing_padding() -> None:
    blob = build([member("a", data=b"1")]) + bytes(10240)
    _, r = read(blob)
    assert r.size == len(blob)
    assert r.digest == "sha256:" + hashlib.sha256(blob).hexdigest()


def test_skips_unread_data() -> None:
    blob = build([member("a", data=b"1" * 3000), member("b", data=b"2")])
    r = ts.TarReader(io.BytesIO(blob))
    names = [e.name for e in r]  # data never consumed by the caller
    r.close()
    assert names == ["a", "b"]


def test_bad_checksum() -> None:
    blob = bytearray(build([member("a", data=b"1")]))
    blob[0] = ord("b")
    with pytest.raises(InvalidArgument, match="checksum"):
        read(bytes(blob))


def test_truncated() -> None:
    blob = build([member("a", data=b"1" * 5000)])
    with pytest.raises(InvalidArgument, match="truncated"):
        read(blob[:2048])


def test_sparse_refused() -> None:
    blob = bytearray(tw.header("s", b"S", size=0) + tw.END_OF_ARCHIVE)
    with pytest.raises(InvalidArgument, match="sparse"):
        read(bytes(blob))


def test_writer_headers_parse_back() -> None:
    name = "a/" + "n" * 150
    blob = (
        tw.header(
            name,
            b"0",
            size=3,
            mode=0o600,
            uid=3_000_000,
            gid=5,
            mtime=10,
            xattrs={"security.capability": b"\x01\x00\xff"},
        )
        + b"abc"
        + tw.pad(3)
        + tw.header("l", b"2", linkname="t" * 200)
        + tw.END_OF_ARCHIVE
    )
    entries, _ = read(blob)
    e = entries[0][0]
    assert (e.name, e.uid, e.gid, e.mode, e.mtime_ns) == (name, 3_000_000, 5, 0o600, 10**10)
    assert e.xattrs == {"security.capability": b"\x01\x00\xff"}
    assert entries[0][1] == b"abc"
    assert entries[1][0].linkname == "t" * 200
    # and GNU/Python tar agree
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        assert tf.getnames() == [name, "l"]


def _rechecksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (b"00000644", 0o644),  # eight digits, no terminator
        (b"   644 \0", 0o644),  # space padded (old writers)
        (b"644\0\0\0\0\0", 0o644),
        (b"\0" * 8, 0),
        (b"\x80\0\0\0\0\0\x01\xa4", 0o644),  # GNU base-256
    ],
)
def test_numeric_field_variants(field: bytes, value: int) -> None:
    block = bytearray(tw.header("f", b"0", mode=0o600))
    block[100:108] = field
    entries, _ = read(_rechecksum(block) + tw.END_OF_ARCHIVE)
    assert entries[0][0].mode == value
