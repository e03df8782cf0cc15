"""Contained path resolution under a root directory (layer L2), openat-style.

Responsibility: turn a tar entry name into a directory file descriptor for its parent such that
nothing outside the root can ever be reached, whatever symlinks, `..` or absolute names earlier
entries planted. This is the security core of layer extraction.

Invariants:
- `clean()` strips leading `/` and `./` (containment, as Docker does), drops empty and `.`
  components, and refuses `..` components and NUL bytes with InvalidArgument.
- `RootedTree.dir()` walks from the root's fd one component at a time with O_NOFOLLOW. A symlink
  met on the way is resolved as if the root were `/` (chroot semantics): absolute targets
  restart at the root and `..` never climbs above the root. So a directory fd it returns always
  refers to a directory inside the root (or the root itself). Link depth is bounded (40, as
  Linux's ELOOP limit).
- File descriptors it returns are borrowed: valid until `release()`; cached fds that
  `invalidate()` drops are closed only at `release()`, so a caller holding one mid-operation
  never sees its number reused.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import OrderedDict
from pathlib import Path

from dockyard.errors import InvalidArgument

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40
_CACHE_SIZE = 256

Parts = tuple[str, ...]


def clean(name: str, what: str = "entry") -> Parts:
    """Components of a tar name relative to the root; refuses `..`, NUL and empty results.

    `what` names the thing in the error message (e.g. "entry", "hardlink target").
    """
    if "\0" in name:
        raise InvalidArgument(f"tar {what} name {name!r} contains a NUL byte")
    parts = tuple(name.strip("/").split("/"))
    if "" in parts or "." in parts:
        parts = tuple(p for p in parts if p and p != ".")
    if ".." in parts:
        raise InvalidArgument(f"tar {what} {name!r} has a '..' component (path escape refused)")
    return parts


class RootedTree:
    """Directory fds inside `root`, resolving symlinks as if `root` were `/`."""

    def __init__(self, root: Path) -> None:
        self.root_fd = os.open(root, DIR_FLAGS)
        st = os.fstat(self.root_fd)
        self._root_id = (st.st_dev, st.st_ino)
        self._cache: OrderedDict[Parts, int] = OrderedDict()
        self._graveyard: list[int] = []

    def close(self) -> None:
        self.invalidate()
        self.release()
        os.close(self.root_fd)

    def invalidate(self) -> None:
        """Forget every cached directory (call after removing or replacing a dir or symlink)."""
        self._graveyard.extend(self._cache.values())
        self._cache.clear()

    def release(self) -> None:
        """Close fds dropped since the last release; borrowed fds become invalid."""
        for fd in self._graveyard:
            os.close(fd)
        self._graveyard.clear()

    def dir(self, parts: Parts, *, create: bool) -> int | None:
        """A borrowed fd of the directory `parts` (None if missing and not `create`).

        Missing directories are created with mode 0755 when `create` is true, as Docker does
        for parents a layer does not list. A non-directory on the way raises InvalidArgument.
        """
        if not parts:
            return self.root_fd
        cached = self._cache.get(parts)
        if cached is not None:
            self._cache.move_to_end(parts)
            return cached
        i = len(parts) - 1
        while i > 0 and parts[:i] not in self._cache:
            i -= 1
        cur = os.dup(self._cache[parts[:i]] if i else self.root_fd)
        budget = [MAX_SYMLINKS]
        try:
            for j in range(i, len(parts)):
                nxt = self._step(cur, parts[j], create, budget, parts)
                if nxt is None:
                    return None
                os.close(cur)
                cur = nxt
                self._remember(parts[: j + 1], os.dup(cur))
        finally:
            os.close(cur)
        return self._cache[parts]

    def _remember(self, parts: Parts, fd: int) -> None:
        self._cache[parts] = fd
        while len(self._cache) > _CACHE_SIZE:
            _, old = self._cache.popitem(last=False)
            self._graveyard.append(old)

    def _step(
        self, cur: int, name: str, create: bool, budget: list[int], where: Parts
    ) -> int | None:
        """Open `name` under `cur` as a directory, following a symlink rooted at the root."""
        try:
            return os.open(name, DIR_FLAGS, dir_fd=cur)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o755, dir_fd=cur)
            return os.open(name, DIR_FLAGS, dir_fd=cur)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        st = os.stat(name, dir_fd=cur, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            raise InvalidArgument(f"{'/'.join(where)!r}: {name!r} exists and is not a directory")
        budget[0] -= 1
        if budget[0] < 0:
            raise InvalidArgument(f"{'/'.join(where)!r}: too many levels of symbolic links")
        return self._follow(cur, os.readlink(name, dir_fd=cur), create, budget, where)

    def _follow(
        self, cur: int, target: str, create: bool, budget: list[int], where: Parts
    ) -> int | None:
        base = os.dup(self.root_fd if target.startswith("/") else cur)
        try:
            for comp in target.split("/"):
                if comp in ("", "."):
                    continue
                nxt: int | None
                if comp == "..":
                    nxt = self._up(base)
                else:
                    nxt = self._step(base, comp, create, budget, where)
                if nxt is None:
                    return None
                os.close(base)
                base = nxt
            result, base = base, -1
            return result
        finally:
            if base >= 0:
                os.close(base)

    def _up(self, fd: int) -> int:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == self._root_id:
            return os.dup(self.root_fd)
        return os.open("..", DIR_FLAGS, dir_fd=fd)
