"""Deterministic tar header encoding (layer L2): POSIX ustar, with PAX records only when needed.

Responsibility: encode one tar member header from explicit values, so that the same values
always give the same bytes (no user/group names, no host-dependent fields, no timestamps other
than the ones given).

Invariants:
- Headers use the POSIX "ustar\\0" "00" magic; uname/gname are empty; numbers are zero-padded
  octal; the ustar `prefix` field is never used.
- A PAX extended header (typeflag 'x', named "././@PaxHeader") precedes a member only when a
  value does not fit ustar: a name or link target longer than 100 bytes or not ASCII, a
  number out of range, or xattrs (as `SCHILY.xattr.NAME`, raw bytes). Records are sorted.
- The archive ends with two zero blocks (1024 bytes), as Go's archive/tar and Docker write.
"""

from __future__ import annotations

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)
_MAX_ID = 0o7777777
_MAX_SIZE = 0o77777777777


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def pad(size: int) -> bytes:
    """Zero bytes that round `size` up to a whole block."""
    return bytes(-size % BLOCK)


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n += 1
    return b"%d" % n + body


def _block(
    name: bytes,
    typ: bytes,
    *,
    size: int,
    mode: int,
    uid: int,
    gid: int,
    mtime: int,
    linkname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
) -> bytes:
    parts = [
        name[:100].ljust(100, b"\0"),
        _octal(mode, 8),
        _octal(uid, 8),
        _octal(gid, 8),
        _octal(size, 12),
        _octal(mtime, 12),
        b" " * 8,
        typ,
        linkname[:100].ljust(100, b"\0"),
        b"ustar\x0000",
        bytes(64),  # uname, gname
        _octal(devmajor, 8),
        _octal(devminor, 8),
        bytes(155 + 12),
    ]
    raw = bytearray(b"".join(parts))
    raw[148:156] = b"%06o\0 " % sum(raw)
    return bytes(raw)


def header(
    name: str,
    typ: bytes,
    *,
    size: int = 0,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = 0,
    linkname: str = "",
    devmajor: int = 0,
    devminor: int = 0,
    xattrs: dict[str, bytes] | None = None,
) -> bytes:
    """The header block(s) of one member: an optional PAX header, then the ustar header."""
    name_b, link_b = _enc(name), _enc(linkname)
    pax: dict[bytes, bytes] = {}
    if len(name_b) > 100 or not name_b.isascii():
        pax[b"path"] = name_b
    if len(link_b) > 100 or not link_b.isascii():
        pax[b"linkpath"] = link_b
    if size > _MAX_SIZE:
        pax[b"size"], size = b"%d" % size, 0
    if not 0 <= uid <= _MAX_ID:
        pax[b"uid"], uid = b"%d" % uid, 0
    if not 0 <= gid <= _MAX_ID:
        pax[b"gid"], gid = b"%d" % gid, 0
    if not 0 <= mtime <= _MAX_SIZE:
        pax[b"mtime"], mtime = b"%d" % mtime, 0
    for key, value in (xattrs or {}).items():
        pax[b"SCHILY.xattr." + _enc(key)] = value
    out = b""
    if pax:
        data = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
        out = _block(b"././@PaxHeader", b"x", size=len(data), mode=0o644, uid=0, gid=0, mtime=0)
        out += data + pad(len(data))
    block = _block(
        name_b,
        typ,
        size=size,
        mode=mode,
        uid=uid,
        gid=gid,
        mtime=mtime,
        linkname=link_b,
        devmajor=devmajor,
        devminor=devminor,
    )
    return out + block
