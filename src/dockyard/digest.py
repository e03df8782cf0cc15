"""Content digests (layer L0): `algorithm:hex` strings, hashing, and verified reading.

Only sha256 and sha512 are accepted, as the OCI image spec registers them. A `Digest` is a plain
`str` subclass so it serialises into JSON as itself; construct one with `Digest.parse` to validate.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from dockyard.errors import DigestMismatch, InvalidArgument

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")


class Digest(str):
    """A validated `algorithm:hex` digest."""

    __slots__ = ()

    @classmethod
    def parse(cls, value: str) -> Digest:
        m = _DIGEST_RE.match(value)
        if not m or len(m.group(2)) != _HEX_LEN[m.group(1)]:
            raise InvalidArgument(f"invalid digest {value!r}: expected sha256:<64 hex digits>")
        return cls(value)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.split(":", 1)[1]

    @property
    def short(self) -> str:
        """The 12-hex-digit short form Docker shows for IDs."""
        return self.hex[:12]


def is_digest(value: str) -> bool:
    m = _DIGEST_RE.match(value)
    return bool(m) and len(m.group(2)) == _HEX_LEN[m.group(1)]  # type: ignore[union-attr]


def sha256_bytes(data: bytes) -> Digest:
    return Digest.of(data)


def sha256_file(f: BinaryIO, chunk: int = 1 << 20) -> tuple[Digest, int]:
    """Hash a file object from its current position to EOF; return (digest, size)."""
    h = hashlib.sha256()
    n = 0
    while True:
        b = f.read(chunk)
        if not b:
            break
        h.update(b)
        n += len(b)
    return Digest("sha256:" + h.hexdigest()), n


class VerifyingReader:
    """Wraps a binary stream; hashes what passes through and checks digest (and size) at EOF.

    Raises `DigestMismatch` on the read that reaches EOF if the bytes do not match, so a consumer
    that reads to the end cannot act on unverified content without seeing the error.
    """

    def __init__(self, raw: BinaryIO, expected: str, size: int | None = None) -> None:
        d = Digest.parse(expected)
        self._raw = raw
        self._expected = d
        self._size = size
        self._hash = hashlib.new(d.algorithm)
        self._n = 0
        self._done = False

    def read(self, n: int = -1) -> bytes:
        b = self._raw.read(n)
        if b:
            self._hash.update(b)
            self._n += len(b)
            if self._size is not None and self._n > self._size:
                raise DigestMismatch(
                    f"content for {self._expected} is larger than its announced size {self._size}"
                )
        if not b or n < 0:
            self._finish()
        return b

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._size is not None and self._n != self._size:
            raise DigestMismatch(
                f"content for {self._expected} has size {self._n}, expected {self._size}"
            )
        got = f"{self._expected.algorithm}:{self._hash.hexdigest()}"
        if got != self._expected:
            raise DigestMismatch(f"content digest mismatch: expected {self._expected}, got {got}")

    def close(self) -> None:
        self._raw.close()
