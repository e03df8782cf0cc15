"""The Engine façade (layer L5): one object wiring the stores, the snapshotter and the services.

Everything is created lazily, so a command pays only for what it touches (`dockyard ps` never
opens the content store). State-root layout:
    <root>/content/      blobs by digest (store.content)
    <root>/meta.db       names and records (store.meta)
    <root>/snapshots/    unpacked layers by chain ID (snapshot.store)
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.config import Config

if TYPE_CHECKING:
    from dockyard.container.service import ContainerService
    from dockyard.image.service import ImageService
    from dockyard.snapshot.store import SnapshotStore
    from dockyard.store.content import ContentStore
    from dockyard.store.meta import MetaDB


class Engine:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.load()
        self.root: Path = self.config.root

    @classmethod
    def open(cls, root: str | Path | None = None) -> Engine:
        return cls(Config.load(root))

    @cached_property
    def meta(self) -> MetaDB:
        from dockyard.store.meta import MetaDB

        self.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        return MetaDB(self.root)

    @cached_property
    def content(self) -> ContentStore:
        from dockyard.store.content import ContentStore

        return ContentStore(self.root / "content")

    @cached_property
    def snapshots(self) -> SnapshotStore:
        from dockyard.snapshot.store import SnapshotStore

        return SnapshotStore(self.root / "snapshots")

    @cached_property
    def images(self) -> ImageService:
        from dockyard.image.service import ImageService

        svc = ImageService(self.content, self.meta, self.snapshots)
        svc.in_use = lambda image_id: self.containers.users_of_image(image_id)
        return svc

    @cached_property
    def containers(self) -> ContainerService:
        from dockyard.container.service import ContainerService

        return ContainerService(self)

    def close(self) -> None:
        if "meta" in self.__dict__:
            self.meta.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
