"""Pulling an image: index → manifest → config → layers, all verified into a ContentStore.

`pull` resolves the reference (choosing one platform's manifest from an index), stores the
index and manifest bytes as fetched (their digests name those exact bytes), fetches the config,
then the layers on a small thread pool. Blobs already in the store are not fetched again.

When `on_layer` is given it is called once for every layer, in a thread of its own, with a
file-like object yielding the layer's (compressed) bytes *while they download*, so unpacking
overlaps the transfer; the object reaches EOF only after the blob was verified and committed,
and raises instead if verification failed. Layers that were already stored, or whose download
resumed an earlier partial ingest, are fed from the store (verified on read). The values
`on_layer` returns come back in `PullResult.layer_results`, in manifest order.

Invariants: nothing unverified is visible in the store; on any failure `pull` raises (the first
error), after every worker has stopped.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, BinaryIO

from dockyard.digest import Digest
from dockyard.errors import InvalidArgument
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, ImageConfig, Index, Manifest, Platform
from dockyard.reference import Reference
from dockyard.registry import progress as pg
from dockyard.registry.client import FetchedManifest, RegistryClient
from dockyard.registry.errors import RegistryError, RegistryNotFound
from dockyard.registry.fetch import CHUNK, LayerFeed, download_blob
from dockyard.registry.platforms import select_manifest
from dockyard.store.content import ContentStore

OnLayer = Callable[[Descriptor, BinaryIO], object]
_MAX_INDEX_DEPTH = 2


@dataclass(frozen=True)
class PullResult:
    manifest_digest: Digest
    manifest: Manifest
    index_digest: Digest | None
    config: ImageConfig
    config_digest: Digest
    layer_results: tuple[object, ...] = ()


@dataclass(frozen=True)
class Resolved:
    manifest: Manifest
    manifest_digest: Digest
    index_digest: Digest | None


def resolve(
    client: RegistryClient, ref: Reference, store: ContentStore, platform: Platform | None
) -> Resolved:
    """Fetch the reference's manifest (through its index, if any) and store both documents."""
    repo = ref.path
    fm = client.get_manifest(repo, ref.digest or ref.tag or "latest")
    index_digest: Digest | None = None
    for _ in range(_MAX_INDEX_DEPTH + 1):
        if fm.media_type not in mediatypes.INDEXES:
            break
        store.put_bytes(fm.data, fm.digest)
        index_digest = index_digest or fm.digest
        chosen = select_manifest(Index.from_json(fm.data), platform)
        fm = client.get_manifest(repo, chosen.digest)
    else:
        raise InvalidArgument(f"{ref.string()}: image indexes nested too deeply")
    manifest = _parse_manifest(fm, ref)
    store.put_bytes(fm.data, fm.digest)
    return Resolved(manifest, fm.digest, index_digest)


def _parse_manifest(fm: FetchedManifest, ref: Reference) -> Manifest:
    if fm.media_type not in mediatypes.MANIFESTS:
        raise InvalidArgument(
            f"{ref.string()}: unsupported manifest type {fm.media_type!r} "
            "(schema 1 and artifacts cannot be pulled as images)"
        )
    return Manifest.from_json(fm.data)


def pull(
    client: RegistryClient,
    ref: Reference,
    store: ContentStore,
    *,
    platform: Platform | None = None,
    on_layer: OnLayer | None = None,
    progress: pg.Progress | None = None,
    max_workers: int = 3,
) -> PullResult:
    """Pull `ref` from `client`'s registry into `store` (see the module docstring)."""
    r = resolve(client, ref, store, platform)
    cfg_desc = r.manifest.config
    download_blob(client, ref.path, cfg_desc, store)
    config = ImageConfig.from_json(store.read_bytes(cfg_desc.digest))
    if len(config.diff_ids) != len(r.manifest.layers):
        raise InvalidArgument(
            f"{ref.string()}: the image config lists {len(config.diff_ids)} layers "
            f"(diff_ids) but the manifest has {len(r.manifest.layers)}"
        )
    for d in r.manifest.layers:
        pg.emit(progress, d.digest, pg.PULLING_FS_LAYER)
    results = _pull_layers(
        client, ref.path, r.manifest.layers, store, on_layer, progress, max_workers
    )
    return PullResult(
        manifest_digest=r.manifest_digest,
        manifest=r.manifest,
        index_digest=r.index_digest,
        config=config,
        config_digest=cfg_desc.digest,
        layer_results=results,
    )


def pull_first(
    clients: Sequence[RegistryClient], ref: Reference, store: ContentStore, **kwargs: Any
) -> PullResult:
    """`pull` from the first of `clients` that works: mirrors first, then the registry itself
    (Docker's registry-mirrors). A mirror that is down or lacks the image is skipped."""
    if not clients:
        raise InvalidArgument("no registry endpoint to pull from")
    for c in clients[:-1]:
        try:
            return pull(c, ref, store, **kwargs)
        except (RegistryError, RegistryNotFound):
            continue
    return pull(clients[-1], ref, store, **kwargs)


def _pull_layers(
    client: RegistryClient,
    repo: str,
    layers: Sequence[Descriptor],
    store: ContentStore,
    on_layer: OnLayer | None,
    progress: pg.Progress | None,
    max_workers: int,
) -> tuple[object, ...]:
    if not layers:
        return ()
    locks = {d.digest: threading.Lock() for d in layers}  # a repeated layer: one download
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pull") as pool:
        futures = [
            pool.submit(_locked, locks[d.digest], client, repo, d, store, on_layer, progress)
            for d in layers
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            for f in futures:
                f.cancel()
            wait(futures)
            raise _first_error(futures)
    return tuple(f.result() for f in futures)


def _first_error(futures: list[Future[object]]) -> BaseException:
    for f in futures:
        if not f.cancelled() and f.exception() is not None:
            exc = f.exception()
            assert exc is not None
            return exc
    raise AssertionError("no failed future")


def _locked(lock: threading.Lock, *args: Any) -> object:
    with lock:
        return _pull_layer(*args)


def _pull_layer(
    client: RegistryClient,
    repo: str,
    desc: Descriptor,
    store: ContentStore,
    on_layer: OnLayer | None,
    progress: pg.Progress | None,
) -> object:
    existed = store.has(desc.digest)

    def on_bytes(n: int) -> None:
        pg.emit(progress, desc.digest, pg.DOWNLOADING, n, desc.size)

    if on_layer is None:
        download_blob(client, repo, desc, store, on_bytes=on_bytes)
        _finish_events(progress, desc, existed)
        return None
    feed = LayerFeed()
    consumer = _Consumer(on_layer, desc, feed)
    consumer.start()
    try:
        streamed = download_blob(client, repo, desc, store, sink=feed.feed, on_bytes=on_bytes)
        if not streamed:
            _feed_from_store(store, desc, feed)
    except BaseException as e:
        feed.finish(e)
        consumer.join()
        raise
    feed.finish()
    consumer.join()
    if consumer.error is not None:
        raise consumer.error
    _finish_events(progress, desc, existed)
    return consumer.result


def _finish_events(progress: pg.Progress | None, desc: Descriptor, existed: bool) -> None:
    if existed:
        pg.emit(progress, desc.digest, pg.ALREADY_EXISTS)
        return
    pg.emit(progress, desc.digest, pg.DOWNLOAD_COMPLETE)
    pg.emit(progress, desc.digest, pg.PULL_COMPLETE)


def _feed_from_store(store: ContentStore, desc: Descriptor, feed: LayerFeed) -> None:
    r = store.open(desc.digest)
    try:
        while not feed.consumer_done.is_set():
            b = r.read(CHUNK)  # raises DigestMismatch at EOF if the stored bytes changed
            if not b:
                break
            feed.feed(b)
    finally:
        r.close()


class _Consumer(threading.Thread):
    """Runs `on_layer` on the feed; records its result or exception."""

    def __init__(self, on_layer: OnLayer, desc: Descriptor, feed: LayerFeed) -> None:
        super().__init__(name=f"layer-{desc.digest.short}", daemon=True)
        self._on_layer = on_layer
        self._desc = desc
        self._feed = feed
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        reader = io.BufferedReader(self._feed, CHUNK)
        try:
            self.result = self._on_layer(self._desc, reader)
        except BaseException as e:
            self.error = e
        finally:
            self._feed.consumer_done.set()
