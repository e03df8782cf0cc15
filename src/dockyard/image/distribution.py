"""Engine-level pull (layer L2): a registry image becomes a local, unpacked, named image.

`pull_image` drives `registry.pull` with an `on_layer` consumer that extracts every layer while
it downloads (one pass: download, hash, decompress, extract). Snapshots are independent
directories, so each layer is extracted concurrently into a private directory under the
snapshot store's staging area; once the whole pull succeeded, the directories are committed as
chain snapshots bottom-up (`SnapshotStore.create` with an `apply` that renames the extracted
tree into place), and `ImageService.register` names the image.

Invariants:
- Every extracted layer's diff_id is checked against the image config before it is committed;
  nothing (snapshot, image row, name) is committed when any layer fails.
- Everything runs under the shared GC lock and a lease, so GC never sweeps a blob or a snapshot
  this pull wrote and has not named yet. Downloaded (compressed) layer blobs stay in the content
  store (the manifest references them) and are recorded as layer variants for `push` to reuse.
- A download interrupted by a crash resumes from its ingest on the next pull; an integrity
  failure (a digest or diff_id mismatch) leaves nothing behind: the pull's unnamed blobs are
  collected before the error is raised.
- Extraction directories of a dead process are removed by `SnapshotStore.cleanup` (their
  names start with the owner's pid, as the store's own staging dirs do).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from dockyard.digest import Digest
from dockyard.errors import AlreadyExists, DigestMismatch, DockyardError, InvalidArgument
from dockyard.oci.types import Descriptor, Platform
from dockyard.reference import Reference
from dockyard.snapshot.chain import chain_ids

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.image.model import Image
    from dockyard.registry.client import RegistryClient
    from dockyard.registry.errors import RegistryError
    from dockyard.registry.progress import Progress
    from dockyard.registry.pull import PullResult, Resolved

_CHUNK = 1 << 20


# --- clients ---------------------------------------------------------------------------------


def registry_clients(engine: Engine, ref: Reference) -> list[RegistryClient]:
    """Clients for `ref`'s registry: mirrors first (docker.io only), then the registry.
    Loopback registries speak plain http; others https unless marked insecure."""
    from dockyard.registry.client import clients_for
    from dockyard.registry.credentials import CredentialStore

    return clients_for(
        ref.domain,
        credentials=CredentialStore(),
        mirrors=engine.config.registry_mirrors,
        insecure_registries=engine.config.insecure_registries,
    )


def docker_wording(err: RegistryError) -> str:
    """A registry error message with codes spelled as Docker spells them
    (`manifest_unknown: x` → `manifest unknown: x`)."""
    return re.sub(
        r"(^|; )([a-z_]+):", lambda m: m.group(1) + m.group(2).replace("_", " ") + ":", str(err)
    )


def pull_error(ref: Reference, err: RegistryError) -> RegistryError:
    """Docker's daemon wording for a failed pull of `ref`."""
    codes = set(err.codes)
    msg = docker_wording(err)
    if codes & {"NAME_UNKNOWN", "DENIED", "UNAUTHORIZED"} or err.status in (401, 403):
        text = (
            f"pull access denied for {ref.familiar_name}, repository does not exist or may "
            f"require 'docker login': {msg}"
        )
    elif "MANIFEST_UNKNOWN" in codes or err.status == 404:
        text = f"manifest for {ref.familiar_string()} not found: {msg}"
    else:
        return err
    return type(err)(text, status=err.status, codes=err.codes)


# --- pull ------------------------------------------------------------------------------------


def pull_image(
    engine: Engine,
    ref: Reference,
    *,
    platform: Platform | None = None,
    progress: Progress | None = None,
) -> Image:
    """Pull `ref` (tag or digest), unpack it and name it; return the local image."""
    from dockyard.registry.errors import RegistryError

    ref = ref.pinned()
    clients = registry_clients(engine, ref)
    meta = engine.meta
    try:
        with meta.gc_lock(), meta.lease() as lease, _workdir(engine) as work:
            try:
                client, resolved = _resolve(clients, ref, engine, platform)
                unpacker = _Unpacker(engine, work, resolved.manifest.layers)
                result = _pull(client, ref, resolved, engine, unpacker, progress)
            except RegistryError as e:
                raise pull_error(ref, e) from None
            unpacker.commit(result, lease)
            _record(engine, result, resolved.index_digest, lease)
            img = engine.images.register(
                result.manifest_digest,
                [ref] if ref.tag else [],
                index_digest=resolved.index_digest,
                repo_digest_of=[ref],
            )
            if resolved.index_digest is None:
                return img
            with meta.tx():  # Docker names a multi-platform image by its index digest too
                meta.set_repo_digest(f"{ref.name}@{resolved.index_digest}", str(img.id))
            return engine.images.get(str(img.id))
    except DigestMismatch:
        engine.images.gc()  # an integrity failure leaves nothing behind
        raise
    finally:
        for c in clients:
            c.close()


def _resolve(
    clients: list[RegistryClient], ref: Reference, engine: Engine, platform: Platform | None
) -> tuple[RegistryClient, Resolved]:
    """The first client (mirrors first) that resolves `ref`, with the manifest it chose."""
    from dockyard.registry.errors import RegistryError
    from dockyard.registry.pull import resolve

    for c in clients[:-1]:
        try:
            return c, resolve(c, ref, engine.content, platform)
        except RegistryError:
            continue
    return clients[-1], resolve(clients[-1], ref, engine.content, platform)


def _pull(
    client: RegistryClient,
    ref: Reference,
    resolved: Resolved,
    engine: Engine,
    unpacker: _Unpacker,
    progress: Progress | None,
) -> PullResult:
    """Fetch the config (to plan the chain), then the layers by manifest digest, so that a tag
    moved meanwhile cannot mix two images."""
    from dockyard.oci.types import ImageConfig
    from dockyard.registry.fetch import download_blob
    from dockyard.registry.pull import PullResult, pull

    cfg = resolved.manifest.config
    download_blob(client, ref.path, cfg, engine.content)
    config = ImageConfig.from_json(engine.content.read_bytes(cfg.digest))
    unpacker.plan(config.diff_ids)
    if unpacker.complete():  # up to date: like Docker, no layer is even looked at
        return PullResult(resolved.manifest_digest, resolved.manifest, None, config, cfg.digest)
    by_digest = Reference(ref.domain, ref.path, None, resolved.manifest_digest)
    return pull(client, by_digest, engine.content, on_layer=unpacker.on_layer, progress=progress)


@contextmanager
def _workdir(engine: Engine) -> Iterator[Path]:
    staging = engine.snapshots.root / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    engine.snapshots.cleanup()
    work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-pull-", dir=staging))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _record(engine: Engine, result: PullResult, index: Digest | None, lease: str) -> None:
    """Lease the pulled blobs and record each compressed layer as a variant of its diff_id."""
    from dockyard.oci import mediatypes

    meta = engine.meta
    with meta.tx():
        for d in (index, result.manifest_digest, result.config_digest):
            if d:
                meta.lease_add(lease, "blob", str(d))
        for desc, diff_id in zip(result.manifest.layers, result.config.diff_ids, strict=True):
            meta.lease_add(lease, "blob", str(desc.digest))
            if mediatypes.layer_compression(desc.media_type) != "none":
                meta.put_layer_variant(str(diff_id), desc.media_type, desc.digest, desc.size)


@dataclass(frozen=True)
class _Extracted:
    index: int
    tree: Path | None  # None: the snapshot existed, nothing to commit


class _Unpacker:
    """The `on_layer` consumer: extracts each layer into its own directory, concurrently,
    and commits the directories as chain snapshots once the pull succeeded."""

    def __init__(self, engine: Engine, work: Path, layers: tuple[Descriptor, ...]) -> None:
        self.engine = engine
        self.work = work
        self.layers = layers
        self._lock = threading.Lock()
        self._slots: dict[str, list[int]] = {}
        for i, d in enumerate(layers):
            self._slots.setdefault(str(d.digest), []).append(i)
        self._diff_ids: list[Digest] = []
        self._chain: list[Digest] = []

    def plan(self, diff_ids: tuple[Digest, ...]) -> None:
        if len(diff_ids) != len(self.layers):
            raise InvalidArgument(
                f"the image config lists {len(diff_ids)} layers (diff_ids) but the manifest "
                f"has {len(self.layers)}"
            )
        self._diff_ids = list(diff_ids)
        self._chain = chain_ids(list(diff_ids))

    def complete(self) -> bool:
        """Every layer blob is stored and every chain snapshot unpacked already."""
        content, snaps = self.engine.content, self.engine.snapshots
        return all(content.has(d.digest) for d in self.layers) and all(
            snaps.has(c) for c in self._chain
        )

    def _position(self, desc: Descriptor) -> int:
        """The manifest position this call handles (a repeated blob is called once per use;
        its uses have the same content, so which call takes which position does not matter)."""
        with self._lock:
            return self._slots[str(desc.digest)].pop(0)

    def on_layer(self, desc: Descriptor, reader: BinaryIO) -> _Extracted:
        from dockyard.layer.apply import apply_layer

        i = self._position(desc)
        want = self._diff_ids[i]
        if self.engine.snapshots.has(self._chain[i]):
            if not self.engine.content.has(desc.digest):
                _check_diff_id(desc, _diff_id_of(reader), want)  # verify what we store
            return _Extracted(i, None)
        tree = Path(tempfile.mkdtemp(prefix=f"layer{i}-", dir=self.work))
        os.chmod(tree, 0o755)
        try:
            res = apply_layer(_fast_gunzip(reader), tree)
        except DockyardError:
            raise
        except Exception as e:  # a corrupt stream (gzip, I/O): Docker's wording
            raise DockyardError(f"failed to register layer: {e}") from e
        while reader.read(_CHUNK):  # reach EOF: the feed raises there if verification failed
            pass
        _check_diff_id(desc, res.diff_id, want)
        return _Extracted(i, tree)

    def commit(self, result: PullResult, lease: str) -> None:
        """Commit the extracted trees as chain snapshots, bottom-up."""
        snaps = self.engine.snapshots
        trees = {x.index: x.tree for x in result.layer_results if isinstance(x, _Extracted)}
        parent: str | None = None
        for i, cid in enumerate(self._chain):
            tree = trees.get(i)
            if not snaps.has(cid):
                if tree is None:  # the snapshot vanished meanwhile: unpack it from the store
                    self.engine.images.unpack(result.manifest, result.config)
                else:
                    with contextlib.suppress(AlreadyExists):  # another process was first
                        snaps.create(cid, parent, _move_into(tree))
            with self.engine.meta.tx():
                self.engine.meta.lease_add(lease, "snapshot", str(cid))
            parent = cid


def _move_into(tree: Path) -> Callable[[Path], int]:
    def apply(target: Path) -> int:
        os.rmdir(target)
        os.rename(tree, target)
        return 0

    return apply


def _fast_gunzip(reader: BinaryIO) -> BinaryIO:
    """A gzip stream decoded with ISA-L when `isal` is installed (about 3x zlib's speed);
    anything else is returned as it is, for `apply_layer` to detect and decode."""
    import importlib

    peek = getattr(reader, "peek", None)
    if peek is None or peek(2)[:2] != b"\x1f\x8b":
        return reader
    try:
        igzip: Any = importlib.import_module("isal.igzip")
    except ImportError:
        return reader
    return cast(BinaryIO, igzip.GzipFile(fileobj=reader, mode="rb"))


def _diff_id_of(reader: BinaryIO) -> Digest:
    from dockyard.layer.compression import decompressed

    h = hashlib.sha256()
    plain = decompressed(reader)
    while b := plain.read(_CHUNK):
        h.update(b)
    while reader.read(_CHUNK):
        pass
    return Digest(f"sha256:{h.hexdigest()}")


def _check_diff_id(desc: Descriptor, got: Digest, want: Digest) -> None:
    if got != want:
        raise DigestMismatch(
            f"layer {desc.digest}: uncompressed content is {got}, the image config says {want}"
        )


def list_tags(engine: Engine, ref: Reference) -> list[str]:
    """The repository's tags (`GET /v2/<name>/tags/list`, following `Link` pages)."""
    import json
    from urllib.parse import urljoin

    from dockyard.registry.auth import repository_scope
    from dockyard.registry.errors import RegistryError

    client = registry_clients(engine, ref)[-1]
    tags: list[str] = []
    url: str | None = f"/v2/{ref.path}/tags/list?n=1000"
    try:
        while url:
            resp = client.request(
                "GET", url, scopes=(repository_scope(ref.path),), what=f"tags of {ref.name}"
            )
            try:
                body = json.loads(resp.read_all(16 << 20) or b"{}")
            finally:
                resp.close()
            tags.extend(str(t) for t in body.get("tags") or [])
            link = resp.header("Link") or ""
            m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
            url = urljoin(client.base + "/", m.group(1)) if m else None
    except RegistryError as e:
        raise pull_error(ref, e) from None
    finally:
        client.close()
    return sorted(set(tags))
