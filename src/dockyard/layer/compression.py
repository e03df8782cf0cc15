"""Layer codecs (layer L2): detect gzip / zstd / plain, stream-decompress, stream-compress.

Responsibility: turn a byte stream that may be compressed into the plain stream, and the
reverse, without ever holding a whole layer in memory and without seeking (the input may be a
socket or a pipe). Media types are not decided here (that is `oci/`); only the codecs.

Invariants:
- `detect` looks only at magic bytes; `decompressed` consumes the input from its current
  position and never seeks, so callers may hand it a network stream.
- gzip is decoded with zlib's streaming decoder and multi-member gzip files are supported
  (concatenated members decode to the concatenation). zstd uses the `zstandard` package,
  imported lazily so that importing this module costs nothing.
- A truncated gzip stream raises InvalidArgument. A truncated zstd stream ends quietly
  (zstandard's bounded-output reader does not report an incomplete frame, and its unbounded
  decompressobj would let a small blob expand without limit); the tar reader (missing
  end-of-archive) and the diff_id/digest checks catch it.
- A compressor never closes the stream it writes into; `close()` flushes the codec's trailer.
- gzip output is deterministic (zlib's gzip wrapper writes mtime 0 and no file name).
"""

from __future__ import annotations

import zlib
from typing import BinaryIO, Protocol, cast

from dockyard.errors import InvalidArgument

GZIP = "gzip"
ZSTD = "zstd"
PLAIN = "plain"
KINDS = (GZIP, ZSTD, PLAIN)

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZIP2_MAGIC = b"BZh"
_MAGIC_LEN = 6
_CHUNK = 1 << 20


def detect(head: bytes) -> str:
    """Kind of compression from the first bytes of a stream: "gzip", "zstd" or "plain".

    xz and bzip2 are recognised only to be refused with a clear message: OCI layers do not use
    them and Docker does not push them.
    """
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZSTD_MAGIC):
        return ZSTD
    if head.startswith(_XZ_MAGIC) or head.startswith(_BZIP2_MAGIC):
        raise InvalidArgument(
            "layer is compressed with xz or bzip2; only gzip and zstd are supported"
        )
    return PLAIN


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Prefixed:
    """A reader that first returns `head`, then the rest of `raw` (a peek without seeking)."""

    def __init__(self, head: bytes, raw: _Readable) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data = self._head + self._raw.read()
                self._head = b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._raw.read(n)

    def close(self) -> None:
        pass


class _GzipReader:
    """Streaming gzip decoder over any `read()`-able stream; handles concatenated members."""

    def __init__(self, raw: _Readable) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(wbits=31)
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        while not self._eof:
            out = self._step(n)
            if out:
                return out
        return b""

    def _step(self, n: int) -> bytes:
        d = self._d
        if d.unconsumed_tail:
            return self._feed(d.unconsumed_tail, n)
        if d.eof:
            rest = d.unused_data or self._raw.read(_CHUNK)
            if not rest:
                self._eof = True
                return b""
            if not rest.startswith(b"\x1f"):
                # Zero padding after the last member is tolerated, as gzip(1) does.
                self._drain_zeros(rest)
                self._eof = True
                return b""
            self._d = zlib.decompressobj(wbits=31)
            return self._feed(rest, n)
        data = self._raw.read(_CHUNK)
        if not data:
            raise InvalidArgument("truncated gzip stream: unexpected end of input")
        return self._feed(data, n)

    def _feed(self, data: bytes, n: int) -> bytes:
        try:
            return self._d.decompress(data, n)
        except zlib.error as e:
            raise InvalidArgument(f"corrupt gzip stream: {e}") from e

    def _drain_zeros(self, chunk: bytes) -> None:
        while chunk:
            if chunk.strip(b"\x00"):
                raise InvalidArgument("trailing garbage after gzip stream")
            chunk = self._raw.read(_CHUNK)

    def close(self) -> None:
        pass


def decompressed(stream: BinaryIO) -> BinaryIO:
    """The plain content of `stream`, whatever its compression, as a streaming reader."""
    head = b""
    while len(head) < _MAGIC_LEN:
        more = stream.read(_MAGIC_LEN - len(head))
        if not more:
            break
        head += more
    kind = detect(head)
    raw = _Prefixed(head, stream)
    if kind == GZIP:
        return cast(BinaryIO, _GzipReader(raw))
    if kind == ZSTD:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, raw), read_size=_CHUNK, read_across_frames=True
        )
        return cast(BinaryIO, _ZstdReader(reader))
    return cast(BinaryIO, raw)


class _ZstdReader:
    """Maps zstandard's errors to InvalidArgument."""

    def __init__(self, reader: _Readable) -> None:
        self._r = reader

    def read(self, n: int = -1) -> bytes:
        try:
            return self._r.read(n)
        except Exception as e:  # zstandard.ZstdError, not importable at module level
            if type(e).__name__ == "ZstdError":
                raise InvalidArgument(f"corrupt zstd stream: {e}") from e
            raise

    def close(self) -> None:
        pass


class Compressor(Protocol):
    """A write-only codec stream; `close()` writes the trailer but leaves `out` open."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...

    def close(self) -> None: ...


class _Plain:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._out.write(data)
        return len(data)

    def close(self) -> None:
        pass


class _GzipWriter:
    def __init__(self, out: BinaryIO, level: int) -> None:
        self._out = out
        self._c = zlib.compressobj(level, zlib.DEFLATED, 31)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        out = self._c.compress(data)
        if out:
            self._out.write(out)
        return len(data)

    def close(self) -> None:
        self._out.write(self._c.flush())


class _ZstdWriter:
    def __init__(self, out: BinaryIO, level: int) -> None:
        import zstandard

        self._out = out
        self._c = zstandard.ZstdCompressor(level=level).compressobj()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        out = self._c.compress(bytes(data))
        if out:
            self._out.write(out)
        return len(data)

    def close(self) -> None:
        self._out.write(self._c.flush())


def compressor(kind: str, out: BinaryIO, level: int | None = None) -> Compressor:
    """A writer compressing into `out` with `kind` ("gzip", "zstd", "plain").

    Default levels: gzip 6 (a balance Docker also uses by default), zstd 3.
    """
    if kind == GZIP:
        return _GzipWriter(out, 6 if level is None else level)
    if kind == ZSTD:
        return _ZstdWriter(out, 3 if level is None else level)
    if kind == PLAIN:
        return _Plain(out)
    raise InvalidArgument(f"unknown compression {kind!r}: expected one of {', '.join(KINDS)}")
