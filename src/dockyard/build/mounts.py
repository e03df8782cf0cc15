"""Mount clean-up for build work dirs (layer L4): unmount a target fully, and remove a tree
after unmounting whatever is still mounted under it (deepest first).

Invariant: `rmtree_unmounting` never deletes through a mount point (it unmounts first, lazily
as a last resort), so a leftover bind mount of a host path cannot make it delete host files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def unmount_all(target: str) -> None:
    from dockyard.linux import fsmount

    for _ in range(8):
        try:
            if not fsmount.unmount(target, detach=False):
                return
        except OSError:
            fsmount.unmount(target, detach=True)


def rmtree_unmounting(path: Path) -> None:
    """Remove a work dir, unmounting first whatever is still mounted under it."""
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4].replace("\\040", " ") for ln in f]
    for p in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        unmount_all(p)
    shutil.rmtree(path, ignore_errors=True)
