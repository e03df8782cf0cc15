"""Pushing an image from a ContentStore to a registry: blobs first, then manifests.

For a manifest: its config and layers are uploaded (a HEAD first skips blobs the repository
has; a blob the caller says came from another repository of the same registry is mounted with
`POST .../blobs/uploads/?mount=<digest>&from=<repo>`; small blobs go in one PUT, larger ones in
`PATCH` chunks), then the manifest is PUT under the tag (or its digest). For an index, every
child manifest present in the store is pushed the same way by digest before the index itself;
children absent from the store must already be in the repository.

Invariants: blobs are sent exactly as stored (no re-compression, so digests hold), each read
from the store is verified as it is sent, and a manifest is PUT only after all its blobs were
accepted, so the registry never holds a manifest whose blobs are missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from dockyard.digest import Digest
from dockyard.errors import NotFound
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, Index, Manifest, parse_document
from dockyard.reference import Reference
from dockyard.registry import progress as pg
from dockyard.registry.client import RegistryClient
from dockyard.store.content import ContentStore

UPLOAD_CHUNK = 16 << 20


def document_media_type(data: bytes) -> str:
    """The media type a manifest/index declares, else the OCI one its shape implies."""
    try:
        obj = json.loads(data)
    except ValueError:
        return mediatypes.OCI_MANIFEST
    mt = obj.get("mediaType") if isinstance(obj, dict) else None
    if isinstance(mt, str) and mt:
        return mt
    return (
        mediatypes.OCI_INDEX
        if isinstance(obj, dict) and "manifests" in obj
        else (mediatypes.OCI_MANIFEST)
    )


def push(
    client: RegistryClient,
    ref: Reference,
    store: ContentStore,
    manifest_digest: str,
    *,
    progress: pg.Progress | None = None,
    mount_from: Mapping[Digest, str] | Mapping[str, str] | None = None,
    chunk_size: int = UPLOAD_CHUNK,
    max_workers: int = 3,
) -> Digest:
    """Push the image whose manifest (or index) is `manifest_digest` in `store` to `ref`.

    `mount_from` maps blob digests to a repository of the same registry they can be mounted
    from. Returns the digest of the pushed top-level document."""
    pusher = _Pusher(client, ref.path, store, progress, mount_from or {}, chunk_size, max_workers)
    data = store.read_bytes(manifest_digest)
    doc = parse_document(data)
    if isinstance(doc, Index):
        for child in doc.manifests:
            pusher.push_child(child)
    else:
        pusher.push_blobs(doc)
    reference = ref.tag or ref.digest or "latest"
    return client.put_manifest(ref.path, reference, data, document_media_type(data))


class _Pusher:
    def __init__(
        self,
        client: RegistryClient,
        repo: str,
        store: ContentStore,
        progress: pg.Progress | None,
        mount_from: Mapping[Digest, str] | Mapping[str, str],
        chunk_size: int,
        max_workers: int,
    ) -> None:
        self.client = client
        self.repo = repo
        self.store = store
        self.progress = progress
        self.mount_from = mount_from
        self.chunk_size = chunk_size
        self.max_workers = max_workers

    def push_child(self, child: Descriptor) -> None:
        if not self.store.has(child.digest):
            if self.client.head_manifest(self.repo, child.digest) is None:
                raise NotFound(
                    f"manifest {child.digest} of the index is neither in the local store "
                    f"nor in {self.client.host}/{self.repo}"
                )
            return
        data = self.store.read_bytes(child.digest)
        doc = parse_document(data)
        if isinstance(doc, Index):
            for grandchild in doc.manifests:
                self.push_child(grandchild)
        else:
            self.push_blobs(doc)
        self.client.put_manifest(self.repo, child.digest, data, document_media_type(data))

    def push_blobs(self, manifest: Manifest) -> None:
        layers = _unique(manifest.layers)
        for d in layers:
            pg.emit(self.progress, d.digest, pg.PREPARING)
        blobs = [manifest.config, *[d for d in layers if d.digest != manifest.config.digest]]
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="push") as pool:
            futures = [pool.submit(self.push_blob, d, d is not manifest.config) for d in blobs]
            for f in futures:
                f.result()

    def push_blob(self, desc: Descriptor, report: bool) -> None:
        progress = self.progress if report else None
        d = desc.digest
        if self.client.blob_exists(self.repo, d, push=True):
            pg.emit(progress, d, pg.LAYER_ALREADY_EXISTS)
            return
        source = self.mount_from.get(d)
        if source and source != self.repo:
            location = self.client.start_upload(self.repo, mount=d, from_repo=source)
            if location is None:
                pg.emit(progress, d, pg.MOUNTED_FROM, detail=source)
                return
        else:
            location = self.client.start_upload(self.repo)
        assert location is not None
        size = self.store.size(d)
        if size <= self.chunk_size:
            data = self.store.read_bytes(d)
            pg.emit(progress, d, pg.PUSHING, 0, size)
            self.client.finish_upload(self.repo, location, d, data)
        else:
            self._chunked(location, d, size, progress)
        pg.emit(progress, d, pg.PUSHED, size, size)

    def _chunked(self, location: str, d: Digest, size: int, progress: pg.Progress | None) -> None:
        r = self.store.open(d)
        try:
            offset = 0
            while chunk := r.read(self.chunk_size):  # the last read verifies the digest
                location = self.client.upload_chunk(self.repo, location, chunk, offset)
                offset += len(chunk)
                pg.emit(progress, d, pg.PUSHING, offset, size)
        finally:
            r.close()
        self.client.finish_upload(self.repo, location, d)


def _unique(descs: Sequence[Descriptor]) -> list[Descriptor]:
    seen: set[str] = set()
    out: list[Descriptor] = []
    for d in descs:
        if d.digest not in seen:
            seen.add(d.digest)
            out.append(d)
    return out
