"""Reading an image archive in one pass (layer L2): every member lands where it belongs as it comes.

The archive may arrive on a pipe, so it is read once, front to back (`tarfile` stream mode over a
transparently gunzipped / unzstd'ed stream), and nothing is seeked:
- `blobs/<alg>/<hex>` members are verified against the digest their name gives. Plain blobs go
  into the content store as they are; a gzip/zstd blob (a compressed layer) is decompressed on
  the fly and stored UNCOMPRESSED (our store keeps layers plain, so its digest is the diff_id),
  while its compressed bytes are hashed to check the name.
- small metadata files (`manifest.json`, `index.json`, `repositories`, `*.json`, `<id>/json`)
  are kept in memory, since `manifest.json` may come before or after the blobs it names.
- any other regular member (Docker's `<id>/layer.tar`, podman's `<hex>.tar`) is a layer:
  decompressed if needed and stored, its digest (= diff_id) recorded under its path.
- symlinks and hard links are recorded, to be followed when manifest.json names them.

Invariants:
- Every blob written is added to the caller's lease before and after it becomes visible, under
  the shared GC lock, so a concurrent GC never sweeps it; a crash leaves only unreferenced blobs
  (and an abandoned ingest) that GC removes.
- Nothing is held in memory but metadata files (`MAX_METADATA` each, `MAX_METADATA_TOTAL` in
  all) and one chunk at a time.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from dockyard.digest import Digest
from dockyard.errors import DigestMismatch, InvalidArgument
from dockyard.image import archive
from dockyard.layer import compression
from dockyard.store.content import ContentStore, ContentWriter
from dockyard.store.meta import MetaDB

MAX_METADATA = 16 << 20  # one metadata file kept in memory
MAX_METADATA_TOTAL = 64 << 20  # all of them
_CHUNK = 1 << 20
_METADATA_NAMES = {
    archive.DOCKER_MANIFEST_FILE,
    archive.OCI_INDEX_FILE,
    archive.OCI_LAYOUT_FILE,
    archive.REPOSITORIES_FILE,
}


@dataclass(frozen=True)
class Stored:
    """A member written to the content store."""

    digest: Digest  # what the store holds: the plain bytes (for a layer, its diff_id)
    size: int
    raw_digest: Digest  # the member's bytes as they were in the archive
    compressed: bool


@dataclass
class Spool:
    """What one pass over an archive found."""

    metadata: dict[str, bytes] = field(default_factory=dict)  # path -> bytes
    blobs: dict[Digest, Stored] = field(default_factory=dict)  # by the digest in the name
    files: dict[str, Stored] = field(default_factory=dict)  # other stored members, by path
    links: dict[str, str] = field(default_factory=dict)  # path -> the path it points at

    def follow(self, path: str) -> str:
        """Follow symlinks / hard links recorded in the archive (at most 16 hops)."""
        for _ in range(16):
            nxt = self.links.get(path)
            if nxt is None:
                return path
            path = nxt
        raise InvalidArgument(f"invalid archive: too many levels of links at {path}")


class _Hashing:
    """A reader that counts, and hashes (until `hash` is set to None), what passes through."""

    def __init__(self, raw: BinaryIO, algorithm: str) -> None:
        self._raw = raw
        self.hash: Any = hashlib.new(algorithm)
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        b = self._raw.read(n)
        if self.hash is not None:
            self.hash.update(b)
        self.size += len(b)
        return b

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def digest(self) -> Digest:
        return Digest(f"{self.hash.name}:{self.hash.hexdigest()}")


class _Head:
    """A reader over `head` followed by the rest of `raw` (a peek without seeking)."""

    def __init__(self, head: bytes, raw: _Hashing) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = (self._head, b"") if n < 0 else (self._head[:n], self._head[n:])
            return data
        return self._raw.read(n)


class Spooler:
    """Reads an archive stream into the content store under a lease (see the module doc)."""

    def __init__(self, content: ContentStore, meta: MetaDB, lease: str) -> None:
        self.content = content
        self.meta = meta
        self.lease = lease
        self._metadata_total = 0

    def run(self, stream: BinaryIO) -> Spool:
        spool = Spool()
        plain = compression.decompressed(stream)
        try:
            with tarfile.open(fileobj=plain, mode="r|", bufsize=_CHUNK) as tar:
                for member in tar:
                    self._member(tar, member, spool)
        except tarfile.TarError as e:
            raise InvalidArgument(f"invalid archive: {e}") from None
        except EOFError as e:
            raise InvalidArgument(f"invalid archive: unexpected end of data ({e})") from None
        return spool

    def _member(self, tar: tarfile.TarFile, m: tarfile.TarInfo, spool: Spool) -> None:
        path = archive.clean_member_name(m.name)
        if m.issym():
            spool.links[path] = archive.resolve_link(path, m.linkname)
            return
        if m.islnk():
            spool.links[path] = archive.clean_member_name(m.linkname)
            return
        if not m.isfile():
            return
        f = tar.extractfile(m)
        if f is None:  # pragma: no cover - isfile() members always have data
            return
        expected = archive.blob_digest(path)
        if expected is not None:
            spool.blobs[expected] = self.store(cast(BinaryIO, f), expected, m.size)
        elif _is_metadata(path) and m.size <= MAX_METADATA:
            self._metadata_total += m.size
            if self._metadata_total > MAX_METADATA_TOTAL:
                raise InvalidArgument("invalid archive: too much metadata (over 64 MiB of JSON)")
            data = f.read()
            if len(data) != m.size:
                raise InvalidArgument(f"invalid archive: unexpected end of data in {path}")
            spool.metadata[path] = data
        else:
            spool.files[path] = self.store(cast(BinaryIO, f), None, m.size, name=path)

    # -- writing one member ----------------------------------------------------------------

    def store(
        self, f: BinaryIO, expected: Digest | None, size: int, *, name: str | None = None
    ) -> Stored:
        """Store one member (decompressing it when it is compressed) and verify it."""
        what = name or str(expected)
        raw = _Hashing(f, expected.algorithm if expected else "sha256")
        head = b""
        while len(head) < 6:
            more = raw.read(6 - len(head))
            if not more:
                break
            head += more
        kind = compression.detect(head)
        compressed = kind != compression.PLAIN
        src: BinaryIO = cast(BinaryIO, _Head(head, raw))
        if compressed:
            src = compression.decompressed(src)
        elif expected is not None and self.content.has(expected):
            raw.drain()  # already stored: verify the member all the same
            self._check(raw, expected, size, what)
            self._protect(expected)
            return Stored(expected, size, expected, False)
        else:
            raw.hash = None  # the content writer hashes these very bytes
        w = self.content.writer(expected=None if compressed else expected)
        try:
            try:
                while chunk := src.read(_CHUNK):
                    w.write(chunk)
            except InvalidArgument:  # a corrupt gzip/zstd stream: say which blob it is
                raw.drain()
                self._check(raw, expected if compressed else None, size, what)
                raise
            raw.drain()
            self._check(raw, expected if compressed else None, size, what)
            digest, n = self._commit(w, None if compressed else expected)
        except BaseException:
            w.abort()
            raise
        return Stored(digest, n, raw.digest() if compressed else digest, compressed)

    def _check(self, raw: _Hashing, expected: Digest | None, size: int, what: str) -> None:
        if raw.size != size:
            raise InvalidArgument(f"invalid archive: unexpected end of data in {what}")
        if expected is not None:
            got = raw.digest()
            if got != expected:
                raise _corrupt(expected, got)

    def _commit(self, w: ContentWriter, expected: Digest | None) -> tuple[Digest, int]:
        n = w.offset
        with self.meta.gc_lock():
            if expected is not None:
                self.meta.lease_add(self.lease, "blob", expected)
            try:
                digest = w.commit()
            except DigestMismatch:
                if expected is None:
                    raise
                raise _corrupt(expected, None) from None
            self._protect(digest)
        return digest, n

    def _protect(self, digest: Digest) -> None:
        self.meta.lease_add(self.lease, "blob", digest)

    def put_bytes(self, data: bytes, expected: str | None = None) -> Digest:
        """Store a small document (a config or a manifest we made) under the lease."""
        d = Digest.of(data)
        if expected is not None and d != expected:
            raise DigestMismatch(f"content digest mismatch: expected {expected}, got {d}")
        with self.meta.gc_lock():
            self._protect(d)
            return self.content.put_bytes(data, expected=d)


def _corrupt(expected: Digest, got: Digest | None) -> DigestMismatch:
    has = f": its content has digest {got}" if got else ": its content does not match its name"
    return DigestMismatch(f"archive blob {archive.blob_path(expected)} is corrupt{has}")


def _is_metadata(path: str) -> bool:
    return (
        path in _METADATA_NAMES
        or path.endswith(".json")
        or path.endswith("/json")
        or path.endswith("/VERSION")
    )
