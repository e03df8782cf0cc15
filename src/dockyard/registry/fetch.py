"""Downloading one blob into the content store, resumable, optionally teed to a consumer.

`download_blob` writes through a `ContentStore` writer keyed by the blob's digest, so:
- nothing is visible under blobs/ until size and digest were verified (`commit()`); a blob
  that fails verification is dropped, and `DigestMismatch` raised;
- a download cut off mid-stream is resumed with `Range: bytes=<offset>-`, both within this call
  (bounded retries) and by a later call (the ingest keeps its bytes); a server that ignores
  Range (200 instead of 206) makes the download restart from byte 0.

`LayerFeed` is the tee: a bounded queue the downloader pushes chunks into and a file-like
object a consumer thread reads. The consumer sees EOF only after the blob was committed
verified; a failed download or verification surfaces as an exception from its `read()`.
"""

from __future__ import annotations

import http.client
import io
import queue
import re
import threading
import time
from collections.abc import Callable

from dockyard.oci.types import Descriptor
from dockyard.registry.client import RegistryClient
from dockyard.registry.errors import RegistryUnavailable
from dockyard.registry.transport import Response
from dockyard.store.content import ContentStore, ContentWriter

CHUNK = 1 << 20
_RANGE_RE = re.compile(r"bytes (\d+)-")


class _Truncated(Exception):
    """The server closed the body before `size` bytes arrived."""


class LayerFeed(io.RawIOBase):
    """A pipe from the downloading thread to a consumer thread, made of a bounded queue."""

    def __init__(self, depth: int = 16) -> None:
        super().__init__()
        self._q: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._buf = b""
        self._eof = False
        self.consumer_done = threading.Event()

    # producer side
    def feed(self, data: bytes) -> None:
        self._put(data)

    def finish(self, error: BaseException | None = None) -> None:
        self._put(error if error is not None else b"")

    def _put(self, item: bytes | BaseException) -> None:
        while not self.consumer_done.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    # consumer side
    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        while not self._buf and not self._eof:
            item = self._q.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                self._eof = True
            self._buf = item
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def download_blob(
    client: RegistryClient,
    repo: str,
    desc: Descriptor,
    store: ContentStore,
    *,
    sink: Callable[[bytes], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    attempts: int = 5,
) -> bool:
    """Fetch `desc` into `store` unless it is there. Returns True when bytes were streamed to
    `sink` during the download; False when the caller must read the blob from the store to
    feed its consumer (it was present already, or the download resumed an earlier ingest)."""
    if store.has(desc.digest):
        return False
    try:
        w = store.writer(f"registry-pull:{desc.digest}", expected=desc.digest, size=desc.size)
    except FileNotFoundError:
        # another process committed this blob (and removed the ingest) while we waited
        if store.has(desc.digest):
            return False
        raise
    with w:
        if store.has(desc.digest):  # another writer finished while we waited for the lock
            w.abort()
            return False
        streaming = sink is not None and w.offset == 0
        _transfer(client, repo, desc, w, sink if streaming else None, on_bytes, attempts)
        w.commit()
    return streaming


def _transfer(
    client: RegistryClient,
    repo: str,
    desc: Descriptor,
    w: ContentWriter,
    sink: Callable[[bytes], None] | None,
    on_bytes: Callable[[int], None] | None,
    attempts: int,
) -> None:
    failures = 0
    while True:
        if w.offset >= desc.size:
            return
        try:
            resp = client.open_blob(repo, desc.digest, w.offset)
            try:
                skip = _position(resp, w, sink)
                _copy(resp, w, desc.size, skip, sink, on_bytes)
            finally:
                resp.close()
            return
        except (OSError, http.client.HTTPException, _Truncated, RegistryUnavailable) as e:
            failures += 1
            if failures >= attempts:
                raise RegistryUnavailable(
                    f"download of {desc.digest} failed after {failures} attempts: {e}"
                ) from e
            time.sleep(client.backoff * 2 ** (failures - 1))


def _position(resp: Response, w: ContentWriter, sink: Callable[[bytes], None] | None) -> int:
    """Line the writer up with the response; return how many leading bytes to skip."""
    if w.offset == 0:
        return 0
    m = _RANGE_RE.match(resp.header("Content-Range") or "")
    if resp.status == 206 and m and int(m.group(1)) == w.offset:
        return 0
    if sink is not None:  # the consumer already has the prefix: skip it in the new body
        return w.offset
    w.truncate()
    return 0


def _copy(
    resp: Response,
    w: ContentWriter,
    size: int,
    skip: int,
    sink: Callable[[bytes], None] | None,
    on_bytes: Callable[[int], None] | None,
) -> None:
    while True:
        chunk = resp.read(CHUNK)
        if not chunk:
            break
        if skip:
            drop = min(skip, len(chunk))
            chunk, skip = chunk[drop:], skip - drop
            if not chunk:
                continue
        if w.offset + len(chunk) > size:
            chunk = chunk[: size - w.offset + 1]  # one byte over: commit() reports the size
            w.write(chunk)
            return
        w.write(chunk)
        if sink is not None:
            sink(chunk)
        if on_bytes is not None:
            on_bytes(w.offset)
    if w.offset < size:
        raise _Truncated(f"connection closed after {w.offset} of {size} bytes")
