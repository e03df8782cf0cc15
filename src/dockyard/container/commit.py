"""`commit` (layer L4): a new image made of a container's image plus its changes as one layer.

Responsibility: write the container's overlay upper dir as an uncompressed layer blob
(`layer.create.write_layer`, whiteouts and opaque dirs included), then a config (the
container's config with `--change`s applied, the parent's history plus one entry naming the
container's command) and a manifest of the parent's layers plus the new one, and register it.

Invariants:
- Blobs are written under a lease and the shared GC lock; `ImageService.register` names the
  image only once every blob and snapshot exists, so a crash leaves no half image.
- The init-layer mount points (see `fsops`) are left out of the layer.
- The container is frozen while its upper dir is read (`pause`, Docker's default), and thawed
  whatever happens.
- The new manifest keeps the parent's format (Docker schema 2 or OCI).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dockyard.container.fsops import init_artifacts, lowers
from dockyard.layer import tarwrite as tw

if TYPE_CHECKING:
    from dockyard.container.model import Container
    from dockyard.container.service import ContainerService
    from dockyard.image.model import Image
    from dockyard.reference import Reference


class _Sink(Protocol):
    def write(self, data: bytes) -> int: ...


class _DropEntries:
    """A tar pass-through writer that leaves out the members named in `drop` (no trailing /).

    It understands what `tarwrite` emits: ustar headers, each optionally preceded by one PAX
    header whose `path` record overrides the name.
    """

    def __init__(self, out: _Sink, drop: set[str]) -> None:
        self.out = out
        self.drop = drop
        self.buf = bytearray()
        self.copy = 0  # bytes to pass through
        self.skip = 0  # bytes to leave out
        self.pax = b""  # a PAX header waiting for its member
        self.ended = False

    def write(self, data: bytes) -> int:
        self.buf += data
        while self._step():
            pass
        return len(data)

    def _step(self) -> bool:
        if self.ended or self.copy:
            n = len(self.buf) if self.ended else min(self.copy, len(self.buf))
            self.out.write(bytes(self.buf[:n]))
            del self.buf[:n]
            self.copy -= 0 if self.ended else n
            return bool(self.buf) and not self.ended
        if self.skip:
            n = min(self.skip, len(self.buf))
            del self.buf[:n]
            self.skip -= n
            return bool(self.buf)
        if len(self.buf) < tw.BLOCK:
            return False
        block = bytes(self.buf[: tw.BLOCK])
        if block == bytes(tw.BLOCK):
            self.ended = True
            return True
        typ, size = block[156:157], int(block[124:136].rstrip(b"\0 ") or b"0", 8)
        data_len = size + (-size % tw.BLOCK)
        if typ == b"x":
            if len(self.buf) < tw.BLOCK + data_len:
                return False
            self.pax = bytes(self.buf[: tw.BLOCK + data_len])
            del self.buf[: tw.BLOCK + data_len]
            return True
        name, size = _member_name(block, self.pax[tw.BLOCK :], size)
        del self.buf[: tw.BLOCK]
        data_len = 0 if typ in (b"1", b"2", b"5") else size + (-size % tw.BLOCK)
        if name.rstrip("/") in self.drop:
            self.skip = data_len
        else:
            self.out.write(self.pax + block)
            self.copy = data_len
        self.pax = b""
        return True


def _member_name(block: bytes, pax: bytes, size: int) -> tuple[str, int]:
    name = block[:100].split(b"\0", 1)[0]
    records = {}
    while pax:
        length = pax.split(b" ", 1)[0]
        if not length.isdigit() or int(length) == 0:
            break
        rec, pax = pax[: int(length)], pax[int(length) :]
        key, _, value = rec.partition(b" ")[2].partition(b"=")
        records[key] = value[:-1]
    name = records.get(b"path", name)
    if b"size" in records:
        size = int(records[b"size"])
    return name.decode("utf-8", "surrogateescape"), size


@dataclass(frozen=True)
class CommitOptions:
    changes: tuple[str, ...] = ()
    message: str = ""
    author: str = ""
    pause: bool = True


def commit(svc: ContainerService, name: str, ref: Reference | None, opts: CommitOptions) -> Image:
    """`commit`: a new image made of the container's image and its changes as one more layer."""
    c = svc.get(name)
    paused = False
    if opts.pause and c.state.status == "running":
        svc.runtime_for(c).pause(c.id)
        paused = True
    try:
        return _commit(svc, c, ref, opts)
    finally:
        if paused:
            with contextlib.suppress(Exception):
                svc.runtime_for(c).resume(c.id)


def _commit(
    svc: ContainerService, c: Container, ref: Reference | None, opts: CommitOptions
) -> Image:
    from dockyard.image.changes import apply_changes
    from dockyard.layer.changes import diff_changes
    from dockyard.layer.create import write_layer
    from dockyard.oci import mediatypes as mt
    from dockyard.oci.types import Descriptor, History, ImageConfig, Manifest
    from dockyard.units import rfc3339

    images = svc.engine.images
    parent = images.get(c.image_id)
    upper = svc.dir(c.id) / "upper"
    cfg = apply_changes({**c.config, "Image": str(parent.id)}, list(opts.changes))  # check first
    drop = {p.lstrip("/") for p in init_artifacts(upper, diff_changes(upper, lowers(svc, c)))}
    docker = parent.manifest.media_type == mt.DOCKER_MANIFEST
    with images.meta.gc_lock(), images.meta.lease() as lease:
        with images.content.writer() as w:
            sink = _DropEntries(w, drop) if drop else w
            write_layer(upper, sink, from_overlay_upper=True, compression="plain")  # type: ignore[arg-type]
            size = w.offset
            layer = w.commit()
        images.meta.lease_add(lease, "blob", layer)
        now = rfc3339()
        pc = parent.config
        config = ImageConfig(
            diff_ids=(*pc.diff_ids, layer),
            architecture=pc.architecture,
            os=pc.os,
            variant=pc.variant,
            created=now,
            author=opts.author or None,
            config=cfg,
            history=(
                *pc.history,
                History(
                    created=now,
                    created_by=" ".join(c.command),
                    author=opts.author or None,
                    comment=opts.message or None,
                ),
            ),
            extra={"container": c.id},
        )
        cfg_bytes = config.to_json()
        cfg_digest = images.content.put_bytes(cfg_bytes)
        images.meta.lease_add(lease, "blob", cfg_digest)
        manifest = Manifest(
            config=Descriptor(mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG, cfg_digest,
                              len(cfg_bytes)),
            layers=(
                *parent.manifest.layers,
                Descriptor(mt.layer_media_type("none", docker=docker), layer, size),
            ),
            media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        )  # fmt: skip
        man_bytes = manifest.to_json()
        man_digest = images.content.put_bytes(man_bytes)
        images.meta.lease_add(lease, "blob", man_digest)
        return images.register(man_digest, [ref] if ref else [])
