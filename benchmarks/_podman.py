"""What Podman leaves on the host after a benchmark, and its removal.

Podman (cgroupfs manager) makes a `libpod_parent` cgroup (with `conmon` below it) in every
hierarchy and never removes it. A benchmark notes which existed before it ran (`parents`) and
removes, at the end, the empty ones it caused (`remove_new`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PARENT = "libpod_parent"


def parents() -> set[Path]:
    return set(Path("/sys/fs/cgroup").glob(f"*/{PARENT}"))


def remove_new(before: set[Path]) -> None:
    for parent in sorted(parents() - before):
        for child in sorted(parent.iterdir()):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    os.rmdir(child)
        with contextlib.suppress(OSError):
            os.rmdir(parent)
