"""The image record the rest of the engine sees: a config, the manifest that carries it, its
names. Pure data; `image.service` builds it from the stores."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.digest import Digest
from dockyard.oci.types import ImageConfig, Manifest
from dockyard.snapshot.chain import chain_ids


@dataclass(frozen=True)
class Image:
    id: Digest  # the image ID: digest of the config blob
    manifest_digest: Digest
    index_digest: Digest | None
    manifest: Manifest
    config: ImageConfig
    tags: tuple[str, ...]  # normalised names, e.g. docker.io/library/busybox:latest
    repo_digests: tuple[str, ...]  # repository@manifest-digest
    created: str
    added: float
    size: int

    @property
    def chain(self) -> list[Digest]:
        return chain_ids(list(self.config.diff_ids))

    @property
    def short_id(self) -> str:
        return self.id.short
