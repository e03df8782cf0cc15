"""The content store: immutable blobs addressed by digest (layer L1).

Layout under `root`:
    blobs/sha256/<hex>        committed blobs, read-only, never modified in place
    ingest/<key>/data         a blob being written; <key> is derived from the writer's `ref`
    ingest/<key>/lock         flock'ed by the one writer that owns the ingest

Invariants:
- A blob is visible under blobs/ only after its size and digest were verified; it gets there by
  one atomic rename, so a crash never leaves a half-written blob visible.
- Two writers of the same blob are safe: each writes its own ingest (or waits for the lock on
  the same ref); whichever renames last replaces identical bytes.
- Reads verify: `open()` returns a reader that raises DigestMismatch at EOF if the bytes on disk
  no longer match their name; `read_bytes()` verifies before returning.
- An interrupted ingest keeps its bytes under ingest/<key>: a writer opened again with the same
  `ref` resumes at `offset` (used by registry downloads with HTTP Range).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from dockyard.digest import Digest, VerifyingReader
from dockyard.errors import DigestMismatch, NotFound


class ContentWriter:
    """Writes one blob into the ingest area; `commit()` verifies and publishes it.

    Use as a context manager: leaving the block without `commit()` keeps the partial bytes for a
    later resume (abort() drops them).
    """

    def __init__(
        self, store: ContentStore, key: str, expected: str | None, size: int | None
    ) -> None:
        self._store = store
        self._dir = store.root / "ingest" / key
        self._lockfd = self._lock_ingest()
        self.expected = Digest.parse(expected) if expected else None
        self.size = size
        self._hash = hashlib.new(self.expected.algorithm if self.expected else "sha256")
        self._data = self._dir / "data"
        self._f: BinaryIO = open(self._data, "ab")  # noqa: SIM115 - closed in commit/close
        self.offset = 0
        if self._f.tell():
            with open(self._data, "rb") as r:
                while b := r.read(1 << 20):
                    self._hash.update(b)
                    self.offset += len(b)
        self._closed = False

    def _lock_ingest(self) -> int:
        """Create and lock the ingest dir. A writer that waited for the lock while the previous
        owner committed (and removed the dir) finds its lock file unlinked, and starts over."""
        while True:
            self._dir.mkdir(parents=True, exist_ok=True)
            lock = self._dir / "lock"
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def write(self, data: bytes) -> int:
        self._f.write(data)
        self._hash.update(data)
        self.offset += len(data)
        return len(data)

    def truncate(self) -> None:
        """Start over (e.g. when a server ignored a Range request)."""
        self._f.seek(0)
        self._f.truncate()
        self._hash = hashlib.new(self._hash.name)
        self.offset = 0

    def commit(self) -> Digest:
        self._f.flush()
        os.fsync(self._f.fileno())
        got = Digest(f"{self._hash.name}:{self._hash.hexdigest()}")
        try:
            if self.size is not None and self.offset != self.size:
                raise DigestMismatch(
                    f"blob {self.expected or got}: got {self.offset} bytes, expected {self.size}"
                )
            if self.expected is not None and got != self.expected:
                raise DigestMismatch(f"blob digest mismatch: expected {self.expected}, got {got}")
            dest = self._store.path(got)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self._data, 0o444)
            os.replace(self._data, dest)
        except BaseException:
            self.abort()
            raise
        self._cleanup()
        return got

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._data.unlink()
        self._cleanup()

    def close(self) -> None:
        """Release the ingest, keeping partial bytes for a resume."""
        if not self._closed:
            self._closed = True
            self._f.close()
            os.close(self._lockfd)

    def _cleanup(self) -> None:
        # Remove the ingest while still holding its lock: a writer waiting for the lock then
        # finds its lock file unlinked and starts over on a fresh ingest.
        shutil.rmtree(self._dir, ignore_errors=True)
        self.close()

    def __enter__(self) -> ContentWriter:
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        d = Digest.parse(digest)
        return self.root / "blobs" / d.algorithm / d.hex

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> VerifyingReader:
        """A reader that verifies the blob's digest when it reaches EOF."""
        try:
            f = open(self.path(digest), "rb")  # noqa: SIM115 - owned by the reader
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None
        return VerifyingReader(f, digest)

    def read_bytes(self, digest: str) -> bytes:
        r = self.open(digest)
        try:
            return r.read()
        finally:
            r.close()

    def writer(
        self, ref: str | None = None, *, expected: str | None = None, size: int | None = None
    ) -> ContentWriter:
        """A writer for one blob. `ref` names a resumable ingest (defaults to a unique one)."""
        if ref is None:
            ref = f"{os.getpid()}-{os.urandom(8).hex()}"
        key = hashlib.sha256(ref.encode()).hexdigest()[:32]
        return ContentWriter(self, key, expected, size)

    def put_bytes(self, data: bytes, expected: str | None = None) -> Digest:
        d = Digest.of(data)
        if expected is not None and d != expected:
            raise DigestMismatch(f"blob digest mismatch: expected {expected}, got {d}")
        if self.has(d):
            return d
        with self.writer(expected=d, size=len(data)) as w:
            w.write(data)
            return w.commit()

    def put_file(
        self, src: BinaryIO, expected: str | None = None, size: int | None = None
    ) -> Digest:
        with self.writer(expected=expected, size=size) as w:
            while b := src.read(1 << 20):
                w.write(b)
            return w.commit()

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def walk(self) -> Iterator[tuple[Digest, int]]:
        base = self.root / "blobs"
        if not base.is_dir():
            return
        for algo in sorted(os.listdir(base)):
            for name in sorted(os.listdir(base / algo)):
                p = base / algo / name
                yield Digest(f"{algo}:{name}"), p.stat().st_size

    def clean_ingests(self) -> None:
        """Remove abandoned ingests whose writer is gone (their lock is free)."""
        base = self.root / "ingest"
        if not base.is_dir():
            return
        for d in base.iterdir():
            try:
                fd = os.open(d / "lock", os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                shutil.rmtree(d, ignore_errors=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(d, ignore_errors=True)
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
