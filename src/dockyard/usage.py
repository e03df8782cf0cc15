"""Disk usage by kind, as `system df` and the Engine API's /system/df report it (layer L5).

Images: shared layers counted once; reclaimable = what images no container uses hold alone.
Containers: their writable layers; reclaimable = those of stopped containers.
Local volumes: reclaimable = volumes no container (running or not) uses.
Build cache: entries, and the bytes of layers only the cache keeps alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.engine import Engine


@dataclass(frozen=True)
class Usage:
    kind: str  # "Images", "Containers", "Local Volumes", "Build Cache"
    count: int
    active: int
    size: int
    reclaimable: int


def disk_usage(engine: Engine) -> list[Usage]:
    return [_images(engine), _containers(engine), _volumes(engine), _build_cache(engine)]


def _images(engine: Engine) -> Usage:
    usage = engine.images.disk_usage()
    total = engine.images.total_size()
    active = [u for u in usage if u.containers]
    return Usage("Images", len(usage), len(active), total, total - sum(u.unique for u in active))


def _containers(engine: Engine) -> Usage:
    from dockyard.container.fsops import upper_size

    svc = engine.containers
    cs = svc.list_containers()
    sizes = {c.id: upper_size(svc, c.id) for c in cs}
    stopped = sum(sizes[c.id] for c in cs if not c.state.running)
    running = sum(1 for c in cs if c.state.running)
    return Usage("Containers", len(cs), running, sum(sizes.values()), stopped)


def _volumes(engine: Engine) -> Usage:
    vs = engine.volumes
    vols = vs.list()
    sizes = {v.name: vs.size(v.name) for v in vols}
    used = {v.name for v in vols if engine.containers.users_of_volume(v.name)}
    free = sum(n for name, n in sizes.items() if name not in used)
    return Usage("Local Volumes", len(vols), len(used), sum(sizes.values()), free)


def _build_cache(engine: Engine) -> Usage:
    _blobs, snaps = engine.meta.build_cache_roots()
    in_images = {str(c) for img in engine.images.list_images() for c in img.chain}
    size = sum(engine.snapshots.usage(c) for c in snaps - in_images if engine.snapshots.has(c))
    return Usage("Build Cache", engine.meta.build_cache_count(), 0, size, size)
