"""The image service (layer L2): images as records over the content store and snapshots.

Responsibilities: register an image whose blobs are already in the content store (unpacking its
layers into chain-ID snapshots and naming it in one DB transaction), resolve names and ID
prefixes the way Docker does, tag, remove (`rmi` semantics), prune, garbage-collect, and report
disk usage.

Invariants:
- An image row exists only when its manifest, config and every layer blob are in the content
  store and every chain snapshot is unpacked; names only point at existing image rows.
- GC deletes a blob or snapshot only when no image row, lease or in-use hook reaches it, and
  runs under the exclusive GC lock so it never races a writer holding the shared lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard.digest import Digest, is_digest
from dockyard.errors import Conflict, DigestMismatch, InvalidArgument, NotFound
from dockyard.reference import Reference, parse_reference
from dockyard.snapshot.chain import chain_ids
from dockyard.store.meta import ImageRow, MetaDB

if TYPE_CHECKING:  # the model types load on first use: `run` resolves without them
    from dockyard.image.model import Image
    from dockyard.oci.types import ImageConfig, Manifest
    from dockyard.snapshot.store import SnapshotStore
    from dockyard.store.content import ContentStore

InUse = Callable[[str], list[tuple[str, bool]]]  # image ID -> [(container ID, running)]


@dataclass(frozen=True)
class ImageUsage:
    image: Image
    size: int
    shared: int
    unique: int
    containers: int


@dataclass(frozen=True)
class RemoveEvent:
    kind: str  # "Untagged" or "Deleted"
    value: str


class ImageService:
    def __init__(
        self,
        content: ContentStore,
        meta: MetaDB,
        snapshots: SnapshotStore | Callable[[], SnapshotStore],
    ) -> None:
        """`snapshots` may be a factory: the store is opened on first use (`run` never
        needs it here)."""
        self.content = content
        self.meta = meta
        self._snapshots = snapshots
        self.in_use: InUse = lambda _id: []
        self.extra_snapshot_roots: Callable[[], set[str]] = set

    @property
    def snapshots(self) -> SnapshotStore:
        if callable(self._snapshots):
            self._snapshots = self._snapshots()
        return self._snapshots

    # reading ----------------------------------------------------------------------------

    def _load(self, row: ImageRow, tags: list[str], digests: list[str]) -> Image:
        from dockyard.image.model import Image
        from dockyard.oci.types import ImageConfig, Manifest

        manifest = Manifest.from_json(self.content.read_bytes(row.manifest))
        config = ImageConfig.from_json(self.content.read_bytes(row.id))
        return Image(
            id=Digest(row.id),
            manifest_digest=Digest(row.manifest),
            index_digest=Digest(row.index) if row.index else None,
            manifest=manifest,
            config=config,
            tags=tuple(tags),
            repo_digests=tuple(digests),
            created=row.created,
            added=row.added,
            size=row.size,
        )

    def get(self, image_id: str) -> Image:
        row = self.meta.image(image_id)
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        return self._load(row, self.meta.tags_of(row.id), self.meta.repo_digests_of(row.id))

    def list_images(self) -> list[Image]:
        tags = self.meta.all_tags()
        digests = self.meta.all_repo_digests()
        return [
            self._load(r, tags.get(r.id, []), digests.get(r.id, [])) for r in self.meta.images()
        ]

    def lookup_id(self, name_or_id: str) -> str:
        """Resolve a name, `name@digest`, full ID or unique ID prefix to an image ID."""
        s = name_or_id
        if is_digest(s) and self.meta.image(s):
            return s
        ref: Reference | None
        try:
            ref = parse_reference(s)
        except InvalidArgument:
            ref = None
        if ref is not None:
            if ref.digest:
                iid = self.meta.repo_digest(f"{ref.name}@{ref.digest}")
                if iid is None and self.meta.image(ref.digest):
                    iid = ref.digest  # name@<image id> also resolves, as in Docker
                if iid:
                    return iid
            else:
                iid = self.meta.tag(ref.string())
                if iid:
                    return iid
        hexpart = s[7:] if s.startswith("sha256:") else s
        if hexpart and all(c in "0123456789abcdef" for c in hexpart) and len(hexpart) <= 64:
            ids = self.meta.images_by_prefix(hexpart)
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {hexpart}")
        if ref is None:
            parse_reference(s)  # re-raise Docker's wording for a malformed name
        shown = ref.familiar_string() if ref is not None else s
        raise NotFound(f"No such image: {shown}")

    def resolve(self, name_or_id: str) -> Image:
        return self.get(self.lookup_id(name_or_id))

    def run_view(self, name_or_id: str) -> tuple[str, dict[str, Any], list[str]]:
        """What starting a container needs of an image, cheaply: its ID, its config's
        `config` object and its layer chain IDs (bottom first). Reads only the config blob
        (verified); the image row's invariant says the rest is in place."""
        iid = self.lookup_id(name_or_id)
        data = json.loads(self.content.read_bytes(iid))
        diff_ids = [str(d) for d in (data.get("rootfs") or {}).get("diff_ids") or []]
        return iid, dict(data.get("config") or {}), [str(c) for c in chain_ids(diff_ids)]

    # writing ----------------------------------------------------------------------------

    def unpack(self, manifest: Manifest, config: ImageConfig) -> int:
        """Make sure every chain snapshot of the image exists; return the image's size."""
        from dockyard.oci import mediatypes

        if len(manifest.layers) != len(config.diff_ids):
            raise InvalidArgument(
                f"image has {len(manifest.layers)} layers but {len(config.diff_ids)} diff_ids"
            )
        chain = chain_ids(list(config.diff_ids))
        size = 0
        parent: str | None = None
        for layer, diff_id, cid in zip(manifest.layers, config.diff_ids, chain, strict=True):
            if layer.media_type not in mediatypes.LAYERS:
                raise InvalidArgument(f"unsupported layer media type {layer.media_type}")
            if not self.snapshots.has(cid):
                self.snapshots.create(cid, parent, _applier(self.content, layer.digest, diff_id))
            size += self.snapshots.usage(cid)
            parent = cid
        return size

    def register(
        self,
        manifest_digest: str,
        names: Iterable[Reference] = (),
        *,
        index_digest: str | None = None,
        repo_digest_of: Iterable[Reference] = (),
    ) -> Image:
        """Record an image whose blobs are in the content store; point `names` at it.

        `repo_digest_of` are repositories the manifest was pulled from or pushed to: they get
        a `repo@manifest-digest` entry (Docker's RepoDigests).
        """
        from dockyard.oci.types import ImageConfig, Manifest

        manifest = Manifest.from_json(self.content.read_bytes(manifest_digest))
        config_bytes = self.content.read_bytes(manifest.config.digest)
        config = ImageConfig.from_json(config_bytes)
        size = self.unpack(manifest, config)
        iid = str(manifest.config.digest)
        now = time.time()
        with self.meta.tx():
            old = self.meta.image(iid)
            self.meta.put_image(
                ImageRow(
                    id=iid,
                    manifest=str(manifest_digest),
                    index=index_digest,
                    created=config.created or "",
                    added=old.added if old else now,
                    size=size,
                )
            )
            for ref in names:
                self.meta.set_tag(ref.string(), iid, now)
            for ref in repo_digest_of:
                self.meta.set_repo_digest(f"{ref.name}@{manifest_digest}", iid)
        return self.get(iid)

    def tag(self, source: str, target: Reference) -> None:
        iid = self.lookup_id(source)
        with self.meta.tx():
            self.meta.set_tag(target.string(), iid, time.time())

    def remove(self, name_or_id: str, *, force: bool = False) -> list[RemoveEvent]:
        """Docker's `rmi`: untag a name; delete the image when no name is left."""
        iid = self.lookup_id(name_or_id)
        tags = self.meta.tags_of(iid)
        digests = self.meta.repo_digests_of(iid)
        by_name = self._named_tag(name_or_id, iid)
        events: list[RemoveEvent] = []
        users = self.in_use(iid)
        with self.meta.gc_lock(), self.meta.tx():
            if by_name is not None and (len(tags) > 1 or (users and not force)):
                if users and len(tags) == 1:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name_or_id}" '
                        f"(must force) - container {users[0][0][:12]} is using its "
                        f"referenced image {iid[7:19]}"
                    )
                self.meta.delete_tag(by_name)
                return [RemoveEvent("Untagged", _familiar(by_name))]
            if by_name is None and len(tags) > 1 and not force:
                raise Conflict(
                    f"conflict: unable to delete {iid[7:19]} (must be forced) - image is "
                    "referenced in multiple repositories"
                )
            running = [c for c, up in users if up]
            if running:
                raise Conflict(
                    f"conflict: unable to delete {iid[7:19]} (cannot be forced) - image is being "
                    f"used by running container {running[0][:12]}"
                )
            if users and not force:
                raise Conflict(
                    f"conflict: unable to delete {iid[7:19]} (must be forced) - image is being "
                    f"used by stopped container {users[0][0][:12]}"
                )
            for t in tags:
                events.append(RemoveEvent("Untagged", _familiar(t)))
            for d in digests:
                events.append(RemoveEvent("Untagged", _familiar(d)))
            if users:
                for t in tags:
                    self.meta.delete_tag(t)
                return events
            self.meta.delete_image(iid)
            events.append(RemoveEvent("Deleted", iid))
        self.gc()
        return events

    def _named_tag(self, name_or_id: str, iid: str) -> str | None:
        """The tag `name_or_id` names, if it was given as a name (not as an ID)."""
        try:
            ref = parse_reference(name_or_id)
        except InvalidArgument:
            return None
        if ref.digest:
            return None
        full = ref.string()
        return full if self.meta.tag(full) == iid else None

    def prune(self, *, all_images: bool = False) -> tuple[list[RemoveEvent], int]:
        """Remove dangling images (with `all_images`, every image no container uses)."""
        events: list[RemoveEvent] = []
        tags = self.meta.all_tags()
        for row in self.meta.images():
            if self.in_use(row.id):
                continue
            if tags.get(row.id) and not all_images:
                continue
            with self.meta.tx():
                for t in tags.get(row.id, []):
                    events.append(RemoveEvent("untagged", _familiar(t)))
                self.meta.delete_image(row.id)
            events.append(RemoveEvent("deleted", row.id))
        return events, self.gc()

    def disk_usage(self) -> list[ImageUsage]:
        """Per image: total, shared (layers other images also use) and unique size."""
        imgs = self.list_images()
        users: dict[str, int] = {}
        for img in imgs:
            for cid in img.chain:
                users[cid] = users.get(cid, 0) + 1
        out = []
        for img in imgs:
            shared = sum(self.snapshots.usage(c) for c in img.chain if users[c] > 1)
            total = sum(self.snapshots.usage(c) for c in img.chain)
            out.append(ImageUsage(img, total, shared, total - shared, len(self.in_use(img.id))))
        return out

    def total_size(self) -> int:
        """Bytes the images use on disk, each shared layer counted once."""
        return sum(
            self.snapshots.usage(c) for c in {c for i in self.list_images() for c in i.chain}
        )

    # garbage collection -----------------------------------------------------------------

    def gc(self) -> int:
        """Delete blobs and snapshots nothing reaches; return the bytes reclaimed."""
        from dockyard.oci.types import ImageConfig, Manifest

        with self.meta.gc_lock(exclusive=True):
            blobs: set[str] = set(self.meta.leased("blob"))
            snaps: set[str] = set(self.meta.leased("snapshot")) | self.extra_snapshot_roots()
            cache_blobs, cache_snaps = self.meta.build_cache_roots()
            blobs |= cache_blobs
            snaps |= cache_snaps
            for row in self.meta.images():
                blobs.update(x for x in (row.id, row.manifest, row.index) if x)
                try:
                    m = Manifest.from_json(self.content.read_bytes(row.manifest))
                    c = ImageConfig.from_json(self.content.read_bytes(row.id))
                except (NotFound, DigestMismatch, InvalidArgument):
                    continue
                blobs.update(str(x.digest) for x in m.layers)
                blobs.update(self._variants(c.diff_ids))
                snaps.update(str(x) for x in chain_ids(list(c.diff_ids)))
            freed = 0
            for d, size in list(self.content.walk()):
                if str(d) not in blobs:
                    self.content.delete(d)
                    freed += size
            for cid in list(self.snapshots.list()):
                if cid not in snaps:
                    freed += self.snapshots.usage(cid)
                    self.snapshots.remove(cid)
            self.content.clean_ingests()
            return freed

    def _variants(self, diff_ids: Iterable[Digest]) -> set[str]:
        """Compressed variants of these layers (kept so a later push compresses nothing)."""
        from dockyard.oci import mediatypes

        out: set[str] = set()
        for d in diff_ids:
            for mt in (mediatypes.OCI_LAYER_GZIP, mediatypes.DOCKER_LAYER_GZIP):
                v = self.meta.layer_variant(str(d), mt)
                if v is not None:
                    out.add(v[0])
        return out


def _applier(content: ContentStore, digest: Digest, diff_id: Digest) -> Callable[[object], int]:
    def apply(target: object) -> int:
        from pathlib import Path

        from dockyard.layer.apply import apply_layer

        r = content.open(digest)
        try:
            res = apply_layer(r, Path(str(target)))  # type: ignore[arg-type]
            r.read()  # drain: the verifying reader checks the blob digest at EOF
        finally:
            r.close()
        if res.diff_id != diff_id:
            raise DigestMismatch(
                f"layer {digest}: uncompressed content is {res.diff_id}, config says {diff_id}"
            )
        return int(res.size)

    return apply


def _familiar(name: str) -> str:
    try:
        return parse_reference(name).familiar_string()
    except InvalidArgument:
        return name
