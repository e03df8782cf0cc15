"""Shared by the `volume` commands (not a command itself): the engine's volume service and
Docker's `KEY=VALUE` flag maps."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.cli import Context
    from dockyard.volume.service import VolumeService


def volumes(ctx: Context) -> VolumeService:
    """`engine.volumes` when the engine wires one (with its in-use hook), else a service of
    our own over the same state root."""
    from dockyard.volume.service import VolumeService

    svc = getattr(ctx.engine, "volumes", None)
    if isinstance(svc, VolumeService):
        return svc
    return VolumeService(ctx.engine.root, ctx.engine.meta)


def kv_map(values: list[str] | None) -> dict[str, str]:
    """`-o k=v` / `--label k=v` flags; a bare `k` maps to "" (Docker's MapOpts)."""
    out: dict[str, str] = {}
    for v in values or []:
        k, _, val = v.partition("=")
        out[k] = val
    return out
