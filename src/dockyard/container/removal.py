"""Removal of `--rm` containers after they exit (layer L4), in the order that lets the attached
CLI return early.

Docker's `run --rm` returns after the container is removed. What a user can observe of a
removal is the record (the name is free again, `ps -a` no longer lists it), the anonymous
volumes, and the published host ports; those go first, then `report` tells the CLI the exit
code, then the slow part follows in the supervisor: runtime state and cgroups, the rootfs
unmount, the network namespace, the container's directory.

Invariants:
- From the moment the record is deleted until the directory is gone, the directory holds a
  `removing` marker naming the container's runtime, and the supervisor holds its lock.
- `finish_removals` (called by listings and the image/volume in-use checks) waits for such a
  supervisor, or, when it died half-way (kill -9), finishes its cleanup, so no mount, cgroup or
  netns outlives a listing that no longer shows the container.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from dockyard.errors import NotFound

if TYPE_CHECKING:
    from dockyard.container.service import ContainerService

REMOVING = "removing"  # the marker file in a container's directory
WAIT_SECONDS = 10.0  # how long a listing waits for a supervisor that is still removing


def remove_after_exit(
    svc: ContainerService, cid: str, report: Callable[[], None], *, ports: bool
) -> None:
    """Remove `cid` (its process has exited), calling `report` once the removal is visible;
    `ports`: it holds host ports, released before `report` too."""
    from dockyard.container import mounts, networking

    try:
        c = svc._load(cid)
    except NotFound:
        report()
        return
    runtime = c.host_config.get("Runtime") or "dockyard"
    with contextlib.suppress(OSError):
        (svc.dir(cid) / REMOVING).write_text(runtime)
    with svc.locked(cid), svc.meta.tx():
        svc.meta.delete_container(cid)
    mounts.remove_anonymous(svc.engine, mounts.volume_names(c))
    if ports:
        networking.suppress_release(svc.engine, cid)
    report()
    svc._cleanup_runtime(cid, runtime)
    shutil.rmtree(svc.dir(cid), ignore_errors=True)


def finish_removals(svc: ContainerService, skip: set[str]) -> None:
    """Wait for (bounded), or finish, the removals under way in the state root, except the
    containers in `skip` (those with records, and this process's own removals)."""
    try:
        names = os.listdir(svc.root)
    except FileNotFoundError:
        return
    for cid in names:
        marker = svc.root / cid / REMOVING
        if cid in skip or not marker.exists():
            continue
        svc._wait_supervisor(cid, WAIT_SECONDS)
        if svc.supervisor_alive(cid) or not marker.exists():
            continue
        try:
            runtime = marker.read_text().strip() or "dockyard"
        except OSError:
            continue
        svc._cleanup_runtime(cid, runtime)
        shutil.rmtree(svc.root / cid, ignore_errors=True)
