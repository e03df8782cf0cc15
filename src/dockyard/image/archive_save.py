"""`save` (layer L2): write images as the archive Docker ≥ 25 writes, streaming and deterministic.

Archive contents (sorted, every entry mtime 0, uid/gid 0, no user names):
    blobs/sha256/<hex>   the config, manifest and layer blobs of every image, once each
    index.json           OCI index: one manifest descriptor per tag, annotated with
                         `io.containerd.image.name` (full name) and
                         `org.opencontainers.image.ref.name` (the tag); one bare descriptor for
                         an image saved without a name
    manifest.json        Docker's legacy list: [{"Config", "RepoTags", "Layers"}], paths into blobs/
    oci-layout           {"imageLayoutVersion":"1.0.0"}
    repositories         Docker's legacy {repo: {tag: top layer hex}}, when any tag is saved

Selection follows Docker's `save`: `name:tag` saves that tag; a bare repository name saves every
tag of the repository; an ID, ID prefix or `name@digest` saves the image without names.

Invariants:
- Manifests and configs are written byte for byte as stored, so digests and the image ID
  survive a save → load round trip.
- Blobs are streamed from the content store in 1 MiB chunks (a layer is never held in memory)
  and verified as they are read: a corrupt blob fails the save.
- The same images and names always give the same bytes.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dockyard.digest import Digest
from dockyard.errors import DigestMismatch, InvalidArgument
from dockyard.image import archive
from dockyard.image.service import ImageService
from dockyard.oci import mediatypes
from dockyard.oci.types import Manifest, Platform
from dockyard.reference import Reference, parse_reference

_BLOCK = 512
_RECORD = 20 * _BLOCK  # tar's traditional record size: the archive is padded to a multiple
_CHUNK = 1 << 20


@dataclass
class SaveItem:
    """One image to save and the tags it is saved under (in the order they were named)."""

    image_id: Digest
    manifest_digest: Digest
    manifest: Manifest
    platform: Platform
    diff_ids: tuple[Digest, ...]
    refs: list[Reference] = field(default_factory=list)


def select_images(images: ImageService, names: Sequence[str]) -> list[SaveItem]:
    """Resolve `save` arguments to images and tags, as Docker does (see the module doc)."""
    if not names:
        raise InvalidArgument("no image names given")
    items: dict[str, SaveItem] = {}

    def add(image_id: str, ref: Reference | None) -> None:
        item = items.get(image_id)
        if item is None:
            img = images.get(image_id)
            item = SaveItem(
                img.id, img.manifest_digest, img.manifest, img.config.platform, img.config.diff_ids
            )
            items[image_id] = item
        if ref is not None and ref.string() not in {r.string() for r in item.refs}:
            item.refs.append(ref)

    for name in names:
        ref = _named(name)
        if ref is None or ref.digest is not None:
            add(images.lookup_id(name), None)
        elif ref.tag is None:
            tagged = _tags_of_repository(images, ref)
            if not tagged:
                add(images.lookup_id(name), None)
            for t, iid in tagged:
                add(iid, t)
        else:
            add(images.lookup_id(ref.string()), ref)
    return list(items.values())


def _named(name: str) -> Reference | None:
    """`name` as a repository reference, or None when it can only be an ID (prefix)."""
    if name.startswith("sha256:"):
        return None
    try:
        return parse_reference(name, default_tag=False)
    except InvalidArgument:
        return None


def _tags_of_repository(images: ImageService, repo: Reference) -> list[tuple[Reference, str]]:
    out: list[tuple[Reference, str]] = []
    for iid, tags in images.meta.all_tags().items():
        for t in tags:
            ref = parse_reference(t)
            if ref.name == repo.name:
                out.append((ref, iid))
    return sorted(out, key=lambda x: x[0].string())


# --- the documents ------------------------------------------------------------------------


def _json_line(obj: Any) -> bytes:
    """Go's json.Encoder output: compact, insertion order kept, one trailing newline."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _index_json(items: Sequence[SaveItem], sizes: dict[str, int]) -> bytes:
    descriptors: list[dict[str, Any]] = []
    for item in items:
        base: dict[str, Any] = {
            "mediaType": item.manifest.media_type,
            "digest": str(item.manifest_digest),
            "size": sizes[item.manifest_digest],
        }
        platform = item.platform.to_dict() if item.platform.os else None
        for ref in item.refs:
            d = dict(base)
            d["annotations"] = {
                archive.ANNOTATION_IMAGE_NAME: ref.string(),
                archive.ANNOTATION_REF_NAME: ref.tag or "",
            }
            if platform:
                d["platform"] = platform
            descriptors.append(d)
        if not item.refs:
            if platform:
                base["platform"] = platform
            descriptors.append(base)
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
    return json.dumps(index, separators=(",", ":"), ensure_ascii=False).encode()


def _manifest_json(items: Sequence[SaveItem]) -> bytes:
    entries = [
        {
            "Config": archive.blob_path(item.manifest.config.digest),
            "RepoTags": [r.familiar_string() for r in item.refs] or None,
            "Layers": [archive.blob_path(x.digest) for x in item.manifest.layers],
        }
        for item in items
    ]
    return _json_line(entries)


def _repositories(items: Sequence[SaveItem]) -> bytes | None:
    repos: dict[str, dict[str, str]] = {}
    for item in items:
        if not item.diff_ids:
            continue
        top = item.diff_ids[-1].hex
        for ref in item.refs:
            repos.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = top
    if not repos:
        return None
    return json.dumps(repos, separators=(",", ":"), sort_keys=True).encode() + b"\n"


# --- the tar writer -----------------------------------------------------------------------


class TarWriter:
    """A minimal forward-only tar writer with normalised headers (PAX only when needed)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.written = 0

    def _write(self, data: bytes | memoryview) -> None:
        self._out.write(data)
        self.written += len(data)

    def _header(self, name: str, kind: bytes, size: int, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = size
        info.mode = mode
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", tarfile.DIRTYPE, 0, 0o755)

    def add_file(self, name: str, size: int, chunks: Iterable[bytes]) -> None:
        self._header(name, tarfile.REGTYPE, size, 0o644)
        n = 0
        for chunk in chunks:
            n += len(chunk)
            if n > size:
                raise DigestMismatch(f"{name}: content is larger than its size {size}")
            self._write(chunk)
        if n != size:
            raise DigestMismatch(f"{name}: content has {n} bytes, expected {size}")
        if size % _BLOCK:
            self._write(bytes(_BLOCK - size % _BLOCK))

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_file(name, len(data), [data])

    def close(self) -> None:
        self._write(bytes(2 * _BLOCK))
        if self.written % _RECORD:
            self._write(bytes(_RECORD - self.written % _RECORD))
        self._out.flush()


def _blob_chunks(images: ImageService, digest: Digest) -> Iterable[bytes]:
    r = images.content.open(digest)
    try:
        while chunk := r.read(_CHUNK):
            yield chunk
    finally:
        r.close()


def write_archive(images: ImageService, items: Sequence[SaveItem], out: BinaryIO) -> None:
    """Stream the archive of `items` into `out` (which may be a pipe)."""
    sizes: dict[str, int] = {}
    for item in items:
        for d in (item.manifest_digest, item.manifest.config.digest):
            sizes[d] = images.content.size(d)
        for layer in item.manifest.layers:
            sizes[layer.digest] = images.content.size(layer.digest)
    files: dict[str, bytes] = {
        archive.OCI_INDEX_FILE: _index_json(items, sizes),
        archive.DOCKER_MANIFEST_FILE: _manifest_json(items),
        archive.OCI_LAYOUT_FILE: json.dumps(
            {"imageLayoutVersion": mediatypes.OCI_LAYOUT_VERSION}, separators=(",", ":")
        ).encode(),
    }
    repos = _repositories(items)
    if repos is not None:
        files[archive.REPOSITORIES_FILE] = repos
    tar = TarWriter(out)
    tar.add_dir("blobs")
    for alg in sorted({Digest(d).algorithm for d in sizes}):
        tar.add_dir(f"blobs/{alg}")
    for blob in sorted(sizes, key=archive.blob_path):
        tar.add_file(archive.blob_path(blob), sizes[blob], _blob_chunks(images, Digest(blob)))
    for name in sorted(files):
        tar.add_bytes(name, files[name])
    tar.close()


def save(images: ImageService, names: Sequence[str], out: BinaryIO) -> list[SaveItem]:
    """`docker save NAMES` into `out`; returns what was saved."""
    items = select_images(images, names)
    write_archive(images, items, out)
    return items
