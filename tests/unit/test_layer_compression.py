"""Layer codecs: detection, streaming decompression, compressors."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from pathlib import Path

import pytest
import zstandard

from dockyard.errors import InvalidArgument
from dockyard.layer.apply import apply_layer
from dockyard.layer.compression import compressor, decompressed, detect

DATA = random.Random(7).randbytes(3000) * 700  # ~2 MB, compressible, over one chunk


class Trickle(io.RawIOBase):
    """A non-seekable stream returning at most `step` bytes per read (like a socket)."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        n = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out


def read_all(stream: io.RawIOBase | io.BytesIO, n: int = 65536) -> bytes:
    out = bytearray()
    r = decompressed(stream)  # type: ignore[arg-type]
    while chunk := r.read(n):
        out += chunk
    return bytes(out)


def test_detect() -> None:
    assert detect(b"\x1f\x8b\x08") == "gzip"
    assert detect(b"\x28\xb5\x2f\xfd") == "zstd"
    assert detect(b"usr/") == "plain"
    assert detect(b"") == "plain"
    with pytest.raises(InvalidArgument, match="xz or bzip2"):
        detect(b"\xfd7zXZ\x00")


@pytest.mark.parametrize("kind", ["gzip", "zstd", "plain"])
def test_round_trip(kind: str) -> None:
    out = io.BytesIO()
    c = compressor(kind, out)
    for i in range(0, len(DATA), 100_000):
        c.write(DATA[i : i + 100_000])
    c.close()
    assert not out.closed
    assert read_all(io.BytesIO(out.getvalue())) == DATA


@pytest.mark.parametrize("kind", ["gzip", "zstd", "plain"])
def test_trickling_stream(kind: str) -> None:
    out = io.BytesIO()
    c = compressor(kind, out)
    c.write(DATA[:50_000])
    c.close()
    assert read_all(Trickle(out.getvalue(), 5), 4096) == DATA[:50_000]


def test_gzip_deterministic() -> None:
    a, b = io.BytesIO(), io.BytesIO()
    for buf in (a, b):
        c = compressor("gzip", buf)
        c.write(b"hello")
        c.close()
    assert a.getvalue() == b.getvalue()
    assert gzip.decompress(a.getvalue()) == b"hello"


def test_gzip_multi_member_and_padding() -> None:
    blob = gzip.compress(b"abc") + gzip.compress(b"def") + bytes(100)
    assert read_all(io.BytesIO(blob)) == b"abcdef"


def test_gzip_trailing_garbage() -> None:
    with pytest.raises(InvalidArgument, match="trailing garbage"):
        read_all(io.BytesIO(gzip.compress(b"abc") + b"junk"))


def test_gzip_truncated() -> None:
    blob = gzip.compress(DATA)
    with pytest.raises(InvalidArgument, match="truncated"):
        read_all(io.BytesIO(blob[: len(blob) // 2]))


def test_gzip_corrupt() -> None:
    blob = bytearray(gzip.compress(DATA))
    blob[20:40] = b"\xff" * 20
    with pytest.raises(InvalidArgument):
        read_all(io.BytesIO(bytes(blob)))


def test_zstd_multi_frame() -> None:
    z = zstandard.ZstdCompressor()
    blob = z.compress(b"abc") + z.compress(b"def")
    assert read_all(io.BytesIO(blob)) == b"abcdef"


def test_zstd_corrupt() -> None:
    blob = bytearray(zstandard.ZstdCompressor().compress(DATA))
    blob[4:8] = b"\xff" * 4  # frame header descriptor
    with pytest.raises(InvalidArgument, match="zstd"):
        read_all(io.BytesIO(bytes(blob)))


def test_truncated_zstd_layer_is_caught_by_the_tar_reader(tmp_path: Path) -> None:
    # zstandard's bounded stream reader ends quietly on a truncated frame; the tar layer
    # (no end-of-archive block) and the digest checks catch it.
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = len(DATA)
        tf.addfile(info, io.BytesIO(DATA))
    blob = zstandard.ZstdCompressor().compress(tar.getvalue())
    with pytest.raises(InvalidArgument, match="truncated"):
        apply_layer(io.BytesIO(blob[: len(blob) // 2]), tmp_path)


def test_unknown_kind() -> None:
    with pytest.raises(InvalidArgument, match="unknown compression"):
        compressor("lz4", io.BytesIO())
