"""Resolving a path inside a container's root filesystem from the host (layer L1).

`secure_join(root, path)` follows every symlink on the way as if `root` were "/": absolute
targets restart at `root`, `..` never climbs above it, so the result is always inside `root`.
Missing components are kept as written. Link depth is bounded (40, Linux's ELOOP limit).
Used wherever the host acts on a path a container image controls: mount destinations (runtime),
volume copy-up sources, /etc/passwd lookups for `--user`. Only os/stat: cheap on every start path.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument

MAX_SYMLINKS = 40


def secure_join(root: str, unsafe: str) -> str:
    """`root`/`unsafe` with every symlink on the way resolved as if `root` were "/"."""
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise InvalidArgument(f"too many levels of symbolic links resolving {unsafe!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
