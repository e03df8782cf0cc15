"""`load` (layer L2): import the images of a Docker or OCI archive, all or nothing.

Accepted archives (plain, gzip or zstd): Docker's (`manifest.json` naming configs and layers
either as `blobs/sha256/<hex>` — Docker ≥ 25 — or `<hex>.json` + `<id>/layer.tar` / `<hex>.tar`
— Docker < 25, `podman save`, `skopeo copy docker-archive:`), and OCI image layouts
(`index.json`, nested indexes, multi-platform indexes: the host platform is chosen), as written
by `podman save --format oci-archive` and `skopeo copy oci-archive:`. When both are present,
`manifest.json` is authoritative, as in Docker.

Steps: spool the archive into the content store under a lease (`archive_spool`), work out the
images (config, layers, names), check every layer's uncompressed digest against the config's
diff_ids, unpack every image, and only then name them. Names come from `RepoTags` (Docker), or
the `io.containerd.image.name` / `org.opencontainers.image.ref.name` annotations (OCI).

Invariants:
- The image ID is the digest of the archive's own config bytes, never of a re-serialisation.
- Layers are stored uncompressed. A manifest from the archive is kept byte for byte when all
  its layers are plain; otherwise an OCI manifest is made over the plain layers.
- A load that fails (bad digest, truncated or malformed archive, missing blob) registers no
  image and no name: everything is verified and unpacked before the first `register`. Blobs
  written before the failure are unreferenced once the lease ends, and GC removes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dockyard.digest import Digest
from dockyard.errors import DigestMismatch, InvalidArgument
from dockyard.image import archive
from dockyard.image.archive_spool import Spool, Spooler, Stored
from dockyard.image.service import ImageService
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, ImageConfig, Index, Manifest, Platform
from dockyard.reference import Reference, parse_reference

_PLAIN_LAYERS = frozenset(
    {mediatypes.OCI_LAYER, mediatypes.OCI_LAYER_NONDIST, mediatypes.DOCKER_LAYER_TAR}
)


@dataclass
class Loaded:
    """One image a load registered, and what happened to its names."""

    image_id: Digest
    names: list[Reference] = field(default_factory=list)
    replaced: dict[str, str] = field(default_factory=dict)  # name -> image ID it moved from


@dataclass
class _Candidate:
    config_digest: Digest
    config_bytes: bytes
    layers: list[Stored]
    manifest_digest: Digest | None = None  # the archive's manifest, when it can be kept
    names: list[Reference] = field(default_factory=list)

    def add_names(self, names: list[Reference]) -> None:
        seen = {n.string() for n in self.names}
        self.names.extend(n for n in names if n.string() not in seen)


def load(
    images: ImageService, stream: BinaryIO, *, platform: Platform | None = None
) -> list[Loaded]:
    """Load every image of the archive read from `stream`; return them in archive order.

    From a multi-platform index the image for `platform` (default: this host's) is chosen.
    """
    with images.meta.lease() as lease:
        spooler = Spooler(images.content, images.meta, lease)
        spool = spooler.run(stream)
        candidates = _Resolver(images, spool, platform or Platform.host()).candidates()
        manifests = [_store_manifest(spooler, c) for c in candidates]
        for c, (_, manifest) in zip(candidates, manifests, strict=True):
            _protect_snapshots(images, lease, c)
            images.unpack(manifest, ImageConfig.from_json(c.config_bytes))
        return [_register(images, c, md) for c, (md, _) in zip(candidates, manifests, strict=True)]


def _protect_snapshots(images: ImageService, lease: str, c: _Candidate) -> None:
    from dockyard.snapshot.chain import chain_ids

    config = ImageConfig.from_json(c.config_bytes)
    for cid in chain_ids(list(config.diff_ids)):
        images.meta.lease_add(lease, "snapshot", str(cid))


def _store_manifest(spooler: Spooler, c: _Candidate) -> tuple[Digest, Manifest]:
    spooler.put_bytes(c.config_bytes, c.config_digest)
    if c.manifest_digest is not None:
        return c.manifest_digest, Manifest.from_json(spooler.content.read_bytes(c.manifest_digest))
    manifest = Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, c.config_digest, len(c.config_bytes)),
        layers=tuple(Descriptor(mediatypes.OCI_LAYER, x.digest, x.size) for x in c.layers),
    )
    return spooler.put_bytes(manifest.to_json()), manifest


def _register(images: ImageService, c: _Candidate, manifest_digest: Digest) -> Loaded:
    replaced: dict[str, str] = {}
    for ref in c.names:
        old = images.meta.tag(ref.string())
        if old is not None and old != c.config_digest:
            replaced[ref.string()] = old
    img = images.register(manifest_digest, c.names)
    return Loaded(img.id, list(c.names), replaced)


class _Resolver:
    """Works out the images of a spooled archive (see the module doc)."""

    def __init__(self, images: ImageService, spool: Spool, platform: Platform) -> None:
        self.images = images
        self.spool = spool
        self.platform = platform
        self.by_config: dict[str, _Candidate] = {}

    def candidates(self) -> list[_Candidate]:
        meta = self.spool.metadata
        if archive.DOCKER_MANIFEST_FILE in meta:
            self._docker(meta[archive.DOCKER_MANIFEST_FILE])
        elif archive.OCI_INDEX_FILE in meta:
            index = Index.from_json(meta[archive.OCI_INDEX_FILE])
            self._oci_index(index, top=True)
        else:
            raise InvalidArgument(
                "invalid archive: no manifest.json or index.json found (is it an image archive?)"
            )
        if not self.by_config:
            raise InvalidArgument("invalid archive: it holds no image")
        return list(self.by_config.values())

    # -- Docker's manifest.json ------------------------------------------------------------

    def _docker(self, data: bytes) -> None:
        try:
            entries = json.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"invalid archive: manifest.json: {e}") from None
        if not isinstance(entries, list):
            raise InvalidArgument("invalid archive: manifest.json is not a list")
        kept = self._oci_manifests()
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise InvalidArgument("invalid archive: manifest.json entry without Config")
            config_digest, config_bytes = self._config_file(entry["Config"])
            layers = [self._layer_file(p) for p in entry.get("Layers") or []]
            names = [_repo_tag(t) for t in entry.get("RepoTags") or []]
            c = self._add(config_digest, config_bytes, layers, names)
            same = kept.get(config_digest)
            if c.manifest_digest is None and same and same[1] == [s.digest for s in layers]:
                c.manifest_digest = same[0]

    def _config_file(self, path: str) -> tuple[Digest, bytes]:
        path = self.spool.follow(archive.clean_member_name(path))
        d = archive.blob_digest(path)
        if d is not None:
            return d, self._blob_bytes(d)
        data = self.spool.metadata.get(path)
        if data is None:
            raise InvalidArgument(f"invalid archive: missing image config {path}")
        d = Digest.of(data)
        stem = path.rsplit("/", 1)[-1].removesuffix(".json").removeprefix("sha256:")
        if len(stem) == 64 and stem != d.hex:
            raise DigestMismatch(f"archive image config {path} is corrupt: its digest is {d}")
        return d, data

    def _layer_file(self, path: str) -> Stored:
        path = self.spool.follow(archive.clean_member_name(path))
        d = archive.blob_digest(path)
        stored = self.spool.blobs.get(d) if d is not None else self.spool.files.get(path)
        if stored is None:
            raise InvalidArgument(f"invalid archive: missing layer {path}")
        return stored

    def _oci_manifests(self) -> dict[str, tuple[Digest, list[Digest]]]:
        """Manifests of index.json that can be kept as they are, by config digest (with the
        layer digests they list)."""
        out: dict[str, tuple[Digest, list[Digest]]] = {}
        data = self.spool.metadata.get(archive.OCI_INDEX_FILE)
        if data is None:
            return out
        try:
            index = Index.from_json(data)
        except InvalidArgument:
            return out
        for desc in index.manifests:
            if desc.media_type not in mediatypes.MANIFESTS or desc.digest not in self.spool.blobs:
                continue
            try:
                m = Manifest.from_json(self._blob_bytes(desc.digest))
            except InvalidArgument:
                continue  # manifest.json is authoritative; a bad index entry is only not kept
            if all(
                x.media_type in _PLAIN_LAYERS
                and x.digest in self.spool.blobs
                and not self.spool.blobs[x.digest].compressed
                for x in m.layers
            ):
                out[m.config.digest] = (desc.digest, [x.digest for x in m.layers])
        return out

    # -- OCI layouts -----------------------------------------------------------------------

    def _oci_index(self, index: Index, *, top: bool, names: list[Reference] | None = None) -> None:
        children = [d for d in index.manifests if not _is_attestation(d)]
        if not top:
            children = self._for_platform(children)
        elif any(d.platform for d in children):
            matching = [d for d in children if d.platform is None or self._matches(d.platform)]
            if not matching:
                raise InvalidArgument(f"invalid archive: no image for platform {self.platform}")
            children = matching
        for desc in children:
            sub = _annotation_names(desc.annotations) if top else names or []
            self._oci_descriptor(desc, sub)

    def _oci_descriptor(self, desc: Descriptor, names: list[Reference]) -> None:
        data = self._blob_bytes(desc.digest)
        doc: Any = _parse_json(data, f"blob {desc.digest}")
        is_index = desc.media_type in mediatypes.INDEXES or (
            not desc.media_type and isinstance(doc, dict) and "manifests" in doc
        )
        if is_index:
            self._oci_index(Index.from_json(doc), top=False, names=names)
            return
        m = Manifest.from_json(doc)
        config_bytes = self._blob_bytes(m.config.digest)
        layers = [self._layer_blob(x) for x in m.layers]
        keep = all(
            x.media_type in _PLAIN_LAYERS and not s.compressed
            for x, s in zip(m.layers, layers, strict=True)
        )
        c = self._add(m.config.digest, config_bytes, layers, names)
        if keep and c.manifest_digest is None:
            c.manifest_digest = desc.digest

    def _for_platform(self, children: list[Descriptor]) -> list[Descriptor]:
        """In a nested index, the one manifest for the host platform (or the only one)."""
        if len(children) <= 1 or not any(d.platform for d in children):
            return children[:1]
        for d in children:
            if d.platform is not None and self._matches(d.platform):
                return [d]
        raise InvalidArgument(f"invalid archive: no image for platform {self.platform}")

    def _matches(self, p: Platform) -> bool:
        want = self.platform
        if p.os != want.os or p.architecture != want.architecture:
            return False
        return want.variant is None or p.variant in (None, want.variant)

    def _layer_blob(self, desc: Descriptor) -> Stored:
        stored = self.spool.blobs.get(desc.digest)
        if stored is None:
            raise InvalidArgument(f"invalid archive: missing layer blob {desc.digest}")
        if desc.media_type not in mediatypes.LAYERS:
            raise InvalidArgument(f"unsupported layer media type {desc.media_type}")
        return stored

    # -- common ----------------------------------------------------------------------------

    def _blob_bytes(self, digest: Digest) -> bytes:
        stored = self.spool.blobs.get(digest)
        if stored is None:
            raise InvalidArgument(f"invalid archive: missing blob {archive.blob_path(digest)}")
        return self.images.content.read_bytes(stored.digest)

    def _add(
        self,
        config_digest: Digest,
        config_bytes: bytes,
        layers: list[Stored],
        names: list[Reference],
    ) -> _Candidate:
        config = ImageConfig.from_json(config_bytes)
        if len(layers) != len(config.diff_ids):
            raise InvalidArgument(
                f"invalid archive: image {config_digest} has {len(layers)} layers but its "
                f"config lists {len(config.diff_ids)}"
            )
        for i, (s, diff_id) in enumerate(zip(layers, config.diff_ids, strict=True)):
            if s.digest != diff_id:
                raise DigestMismatch(
                    f"layer {i + 1} of image {config_digest} is corrupt: its content is "
                    f"{s.digest}, the image config says {diff_id}"
                )
        c = self.by_config.get(config_digest)
        if c is None:
            c = _Candidate(config_digest, config_bytes, layers)
            self.by_config[config_digest] = c
        c.add_names(names)
        return c


def _parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"invalid archive: {what} is not JSON: {e}") from None


def _repo_tag(tag: object) -> Reference:
    if not isinstance(tag, str):
        raise InvalidArgument(f"invalid archive: bad RepoTags entry {tag!r}")
    ref = parse_reference(tag)
    if ref.digest is not None or ref.tag is None:
        raise InvalidArgument(f"invalid tag {tag!r} in manifest.json")
    return ref


def _annotation_names(annotations: dict[str, str] | None) -> list[Reference]:
    """The name an index.json entry gives its image (containerd's first, then the OCI one)."""
    if not annotations:
        return []
    for key in (archive.ANNOTATION_IMAGE_NAME, archive.ANNOTATION_REF_NAME):
        value = annotations.get(key, "")
        if not value or ("/" not in value and ":" not in value):
            continue  # a bare tag such as "latest" names no repository
        try:
            ref = parse_reference(value)
        except InvalidArgument:
            continue
        if ref.tag is not None:
            return [Reference(ref.domain, ref.path, ref.tag)]
    return []


def _is_attestation(d: Descriptor) -> bool:
    ann = d.annotations or {}
    return "vnd.docker.reference.type" in ann or (
        d.platform is not None and d.platform.os == "unknown"
    )
