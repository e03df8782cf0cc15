"""Mount descriptions (layer L2, pure data).

A snapshotter returns what to mount, never mounts (containerd's `mount.Mount`); `linux/`
performs it. Invariant: a `Mount` is immutable and self-contained, except that when `cwd` is
set, relative paths in `options` (overlay `lowerdir=`) are relative to `cwd` and the mount must
be performed with that working directory (this keeps the option string under one page, 4096
bytes, for images with many layers, as Docker's overlay2 driver does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mount:
    type: str  # "overlay" or "bind"
    source: str  # "overlay" for overlay mounts, the directory for binds
    target: str  # where to mount; "" when the caller decides
    options: tuple[str, ...]  # e.g. ("lowerdir=a:b", "upperdir=u", "workdir=w") or ("rbind", "ro")
    cwd: str | None = None  # working directory for relative paths in options, if any

    @property
    def data(self) -> str:
        """The comma-joined option string as passed to mount(2) (bind flags included)."""
        return ",".join(self.options)
