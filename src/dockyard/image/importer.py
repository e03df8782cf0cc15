"""`import`: a root filesystem tarball becomes a one-layer image (layer L2).

The tar (plain, gzip or zstd) is stored uncompressed as the layer blob, so its digest is its
diff_id and no compression is paid locally (a push compresses once, later). The blob is written
under a lease, the config and manifest follow, and `ImageService.register` unpacks the snapshot
and names the image in one transaction: a crash at any point leaves no image and no name.
"""

from __future__ import annotations

from typing import BinaryIO

from dockyard.image.changes import apply_changes
from dockyard.image.model import Image
from dockyard.image.service import ImageService
from dockyard.layer.compression import decompressed
from dockyard.oci import mediatypes
from dockyard.oci.types import Descriptor, History, ImageConfig, Manifest, Platform
from dockyard.reference import Reference
from dockyard.units import rfc3339


def import_rootfs(
    images: ImageService,
    stream: BinaryIO,
    *,
    ref: Reference | None = None,
    changes: list[str] | None = None,
    message: str = "",
    source: str = "-",
    platform: Platform | None = None,
) -> Image:
    content = images.content
    plat = platform or Platform.host()
    with images.meta.gc_lock(), images.meta.lease() as lease:
        plain = decompressed(stream)
        with content.writer() as w:
            while chunk := plain.read(1 << 20):
                w.write(chunk)
            size = w.offset
            layer_digest = w.commit()
        images.meta.lease_add(lease, "blob", layer_digest)
        now = rfc3339()
        config = ImageConfig(
            diff_ids=(layer_digest,),
            architecture=plat.architecture,
            os=plat.os,
            variant=plat.variant,
            created=now,
            config=apply_changes({}, changes or []),
            history=(History(created=now, comment=message or f"Imported from {source}"),),
        )
        cfg_bytes = config.to_json()
        cfg_digest = content.put_bytes(cfg_bytes)
        images.meta.lease_add(lease, "blob", cfg_digest)
        manifest = Manifest(
            config=Descriptor(mediatypes.OCI_CONFIG, cfg_digest, len(cfg_bytes)),
            layers=(Descriptor(mediatypes.OCI_LAYER, layer_digest, size),),
        )
        man_bytes = manifest.to_json()
        man_digest = content.put_bytes(man_bytes)
        images.meta.lease_add(lease, "blob", man_digest)
        return images.register(man_digest, [ref] if ref else [])
