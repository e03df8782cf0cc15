"""Cgroup parents a benchmark leaves on the host, and their removal.

Podman (cgroupfs manager) makes `libpod_parent` (with `conmon` below it) in every hierarchy and
never removes it; our containers live under `dockyard/<id>`, whose parent stays when the last
container is gone. A benchmark notes which parents existed before it ran (`parents`) and removes,
at the end, the empty ones it caused (`remove_new`)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

NAMES = ("libpod_parent", "dockyard")


def parents() -> set[Path]:
    found: set[Path] = set()
    for name in NAMES:
        found |= set(Path("/sys/fs/cgroup").glob(f"*/{name}"))
    return found


def remove_new(before: set[Path], timeout: float = 5.0) -> None:
    """Remove the parents made since `before` (and their empty children), waiting up to
    `timeout` s for a container's cgroup that a finishing supervisor still removes."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(parents() - before)
        for parent in left:
            for child in sorted(parent.iterdir()):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        os.rmdir(child)
            with contextlib.suppress(OSError):
                os.rmdir(parent)
        if not (parents() - before) or time.monotonic() > deadline:
            return
        time.sleep(0.1)
