"""A streaming tar reader (layer L2): ustar, POSIX PAX (local and global) and GNU long names.

Responsibility: parse tar headers from a forward-only byte stream, hash every byte read (so the
caller gets the layer's diff_id in the same pass), and hand out each entry's data in chunks.
Python's `tarfile` is not used for reading: its stream mode is slow and it interprets names in
ways an extractor must control itself.

Invariants:
- The input is never seeked and never held whole in memory: it is read in `CHUNK`-sized blocks.
- `digest`/`size` cover every byte of the uncompressed stream up to EOF, including the
  end-of-archive blocks and any trailing padding (`drain()` reads the rest), as diff_ids do.
- Names are returned exactly as stored (decoded UTF-8 with surrogateescape, so non-UTF-8 bytes
  round-trip through `os` calls); cleaning and containment are the extractor's job.
- A header with a bad checksum, a truncated stream or an unsupported entry type (sparse,
  multi-volume) raises InvalidArgument naming the entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from dockyard.digest import Digest
from dockyard.errors import InvalidArgument

BLOCK = 512
CHUNK = 1 << 20
MAX_EXTENDED = 8 << 20  # PAX / GNU long-name data held in memory, at most

REG, AREG, CONT = b"0", b"\0", b"7"  # regular files (CONT: contiguous, read as regular)
LNK, SYM, CHR, BLK, DIR, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
PAX, GPAX, GNU_LONGNAME, GNU_LONGLINK = b"x", b"g", b"L", b"K"
_DATALESS = {LNK, SYM, CHR, BLK, DIR, FIFO}
_UNSUPPORTED = {b"S": "GNU sparse file", b"M": "multi-volume continuation", b"V": "volume label"}
_XATTR_PREFIX = b"SCHILY.xattr."
_ZERO_BLOCK = bytes(BLOCK)
_NS = b"\0 "  # numeric field terminators


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstr(raw: bytes) -> bytes:
    i = raw.find(b"\0")
    return raw if i < 0 else raw[:i]


def _number(raw: bytes, what: str) -> int:
    """An octal (or GNU base-256) numeric header field."""
    try:
        return int(raw.rstrip(b"\0 ") or b"0", 8)  # the common case: "0000644\0"
    except ValueError:
        pass
    if raw and raw[0] & 0x80:
        n = raw[0] & 0x3F
        for b in raw[1:]:
            n = (n << 8) | b
        return -n if raw[0] & 0x40 else n
    text = _cstr(raw).strip(b" ")
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise InvalidArgument(f"corrupt tar header: bad {what} field {raw!r}") from None


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = int(block[148:156].rstrip(_NS), 8)
    except ValueError:
        stored = _number(block[148:156], "checksum")
    unsigned = sum(block) - sum(block[148:156]) + 256
    if stored == unsigned:
        return True
    signed = sum((b - 256 if b > 127 else b) for b in block[:148] + block[156:]) + 256
    return stored == signed


@dataclass
class Entry:
    """One tar member with PAX/GNU extensions already applied."""

    name: str
    type: bytes
    size: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    atime_ns: int | None = None
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        """Whether the entry carries data (POSIX: unknown types are read as regular files)."""
        return self.type not in _DATALESS


def _parse_pax(data: bytes, entry_name: str) -> dict[bytes, bytes]:
    """PAX records `"%d %s=%s\\n"`; values kept as bytes."""
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            if not data[pos:].strip(b"\0"):
                break
            raise InvalidArgument(f"corrupt PAX header before {entry_name!r}")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise InvalidArgument(f"corrupt PAX header before {entry_name!r}") from None
        rec = data[sp + 1 : pos + length]
        if length <= 0 or pos + length > len(data) or not rec.endswith(b"\n") or b"=" not in rec:
            raise InvalidArgument(f"corrupt PAX record before {entry_name!r}")
        key, _, value = rec[:-1].partition(b"=")
        out[key] = value
        pos += length
    return out


def _pax_int(pax: dict[bytes, bytes], key: bytes, default: int) -> int:
    if key not in pax:
        return default
    try:
        return int(pax[key])
    except ValueError:
        raise InvalidArgument(f"corrupt PAX {key.decode()} value {pax[key]!r}") from None


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    try:
        ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    except ValueError:
        raise InvalidArgument(f"corrupt PAX time {text!r}") from None
    return -ns if neg else ns


class _Source:
    """Reads and hashes the stream in CHUNK blocks, optionally in a background thread.

    The thread overlaps decompression and hashing (both release the GIL) with extraction; it
    never holds more than `_DEPTH` chunks. `close()` stops it even if the consumer gave up early.
    """

    _DEPTH = 4

    def __init__(self, raw: BinaryIO, threaded: bool) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.size = 0
        self._eof = False
        self._q: queue.Queue[bytes | BaseException] | None = None
        self._stop = threading.Event()
        if threaded:
            self._q = queue.Queue(self._DEPTH)
            self._thread = threading.Thread(target=self._run, name="layer-reader", daemon=True)
            self._thread.start()

    def _read_hashed(self) -> bytes:
        data = self._raw.read(CHUNK)
        if data:
            self.hash.update(data)
            self.size += len(data)
        return data

    def _run(self) -> None:
        assert self._q is not None
        item: bytes | BaseException
        while not self._stop.is_set():
            try:
                item = self._read_hashed()
            except BaseException as e:  # handed to the consumer, which re-raises it
                item = e
            while not self._stop.is_set():
                try:
                    self._q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, bytes) or not item:
                return

    def read(self) -> bytes:
        if self._eof:
            return b""
        if self._q is None:
            data = self._read_hashed()
        else:
            got = self._q.get()
            if isinstance(got, BaseException):
                self._eof = True
                raise got
            data = got
        self._eof = not data
        return data

    def close(self) -> None:
        if self._q is None:
            return
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._q.get(timeout=0.1)
        self._thread.join()


class TarReader:
    """Iterate over the entries of a plain (uncompressed) tar stream. Call `close()` after."""

    def __init__(self, stream: BinaryIO, *, threaded: bool = True) -> None:
        self._src = _Source(stream, threaded)
        self._buf = b""
        self._pos = 0
        self._pending = 0  # bytes of the current entry's data (+ padding) not yet consumed
        self._global: dict[bytes, bytes] = {}

    def close(self) -> None:
        self._src.close()

    @property
    def size(self) -> int:
        """Bytes read so far (all of the stream once iteration has finished)."""
        return self._src.size

    # -- the byte source -------------------------------------------------------------------

    def _fill(self) -> bool:
        data = self._src.read()
        if not data:
            return False
        self._buf = self._buf[self._pos :] + data if self._pos < len(self._buf) else data
        self._pos = 0
        return True

    def _take(self, n: int, what: str) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise InvalidArgument(f"truncated tar stream while reading {what}")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def _some(self, n: int, what: str) -> memoryview:
        """Up to `n` (at least 1) bytes without copying more than one chunk."""
        if self._pos >= len(self._buf) and not self._fill():
            raise InvalidArgument(f"truncated tar stream while reading {what}")
        end = min(len(self._buf), self._pos + n)
        out = memoryview(self._buf)[self._pos : end]
        self._pos = end
        return out

    def _skip(self, n: int, what: str) -> None:
        while n > 0:
            n -= len(self._some(n, what))

    @property
    def digest(self) -> Digest:
        return Digest("sha256:" + self._src.hash.hexdigest())

    def drain(self) -> None:
        """Read the rest of the stream so that `digest` and `size` cover all of it."""
        self._buf, self._pos = b"", 0
        while self._fill():
            self._buf, self._pos = b"", 0

    # -- entries ---------------------------------------------------------------------------

    def buffered(self, entry: Entry, limit: int) -> memoryview | None:
        """All of the current entry's data if it is already buffered and at most `limit`
        bytes (then it counts as consumed), else None. The view stays valid after later reads."""
        size = entry.size if entry.is_file else 0
        padded = size + (-size % BLOCK)
        if size > limit or self._pending != padded or self._pos + padded > len(self._buf):
            return None
        view = memoryview(self._buf)[self._pos : self._pos + size]
        self._pos += padded
        self._pending = 0
        return view

    def chunks(self, entry: Entry) -> Iterator[memoryview]:
        """The data of the current entry, in chunks; must be consumed before the next entry."""
        whole = self.buffered(entry, CHUNK)
        if whole is not None:
            if whole:
                yield whole
            return
        remaining = entry.size if entry.is_file else 0
        while remaining:
            part = self._some(min(remaining, CHUNK), entry.name)
            remaining -= len(part)
            self._pending -= len(part)
            yield part

    def __iter__(self) -> Iterator[Entry]:
        while True:
            if self._pending:
                self._skip(self._pending, "entry data")
                self._pending = 0
            entry = self._next()
            if entry is None:
                self.drain()
                return
            size = entry.size if entry.is_file else 0
            self._pending = size + (-size % BLOCK)
            yield entry

    def _next(self) -> Entry | None:
        local: dict[bytes, bytes] = {}
        while True:
            block = self._take(BLOCK, "a header")
            if block == _ZERO_BLOCK:
                return None
            name = _cstr(block[0:100])
            if not _checksum_ok(block):
                raise InvalidArgument(f"corrupt tar header (bad checksum) at {_decode(name)!r}")
            typ = block[156:157]
            try:
                size = int(block[124:136].rstrip(_NS), 8)
            except ValueError:
                size = _number(block[124:136], "size")
            if size < 0:
                raise InvalidArgument(f"negative size in tar header {_decode(name)!r}")
            if typ in (PAX, GPAX, GNU_LONGNAME, GNU_LONGLINK):
                if size > MAX_EXTENDED:
                    raise InvalidArgument(
                        f"extended tar header of {size} bytes before {_decode(name)!r} "
                        f"exceeds the {MAX_EXTENDED} byte limit"
                    )
                data = self._take(size + (-size % BLOCK), "an extended header")[:size]
                if typ == PAX:
                    local.update(_parse_pax(data, _decode(name)))
                elif typ == GPAX:
                    self._global.update(_parse_pax(data, _decode(name)))
                else:
                    key = b"path" if typ == GNU_LONGNAME else b"linkpath"
                    local.setdefault(key, _cstr(data))
                continue
            if typ in _UNSUPPORTED:
                raise InvalidArgument(
                    f"unsupported tar entry type ({_UNSUPPORTED[typ]}) at {_decode(name)!r}"
                )
            pax = {**self._global, **local} if self._global else local
            return self._entry(block, typ, name, size, pax)

    def _entry(
        self, block: bytes, typ: bytes, name: bytes, size: int, pax: dict[bytes, bytes]
    ) -> Entry:
        if block[257:263] == b"ustar\0" and block[345] != 0:
            name = _cstr(block[345:500]) + b"/" + name
        dev = typ in (CHR, BLK)
        try:  # the common case: octal digits, then NUL or space terminators
            mode, uid = int(block[100:108].rstrip(_NS), 8), int(block[108:116].rstrip(_NS), 8)
            gid, mtime = int(block[116:124].rstrip(_NS), 8), int(block[136:148].rstrip(_NS), 8)
        except ValueError:
            mode, uid = _number(block[100:108], "mode"), _number(block[108:116], "uid")
            gid, mtime = _number(block[116:124], "gid"), _number(block[136:148], "mtime")
        e = Entry(
            name=_decode(name),
            type=typ,
            size=0 if typ in _DATALESS else size,
            mode=mode & 0o7777,
            uid=uid,
            gid=gid,
            mtime_ns=mtime * 1_000_000_000,
            linkname=_decode(_cstr(block[157:257])) if typ in (LNK, SYM) else "",
            devmajor=_number(block[329:337], "devmajor") if dev else 0,
            devminor=_number(block[337:345], "devminor") if dev else 0,
        )
        if pax:
            _apply_pax(e, pax)
        return e


def _apply_pax(e: Entry, pax: dict[bytes, bytes]) -> None:
    if b"path" in pax:
        e.name = _decode(pax[b"path"])
    if b"linkpath" in pax:
        e.linkname = _decode(pax[b"linkpath"])
    if e.type not in _DATALESS:
        e.size = _pax_int(pax, b"size", e.size)
        if e.size < 0:
            raise InvalidArgument(f"negative size in tar header {e.name!r}")
    e.uid = _pax_int(pax, b"uid", e.uid)
    e.gid = _pax_int(pax, b"gid", e.gid)
    if b"mtime" in pax:
        e.mtime_ns = _pax_time_ns(pax[b"mtime"])
    if b"atime" in pax:
        e.atime_ns = _pax_time_ns(pax[b"atime"])
    for key, value in pax.items():
        if key.startswith(_XATTR_PREFIX):
            e.xattrs[_decode(key[len(_XATTR_PREFIX) :])] = value
