"""The snapshot store (layer L2): one unpacked overlay layer per chain ID, shared by all images.

Responsibility: keep each layer's content, unpacked once, in a directory keyed by the layer's
chain ID; create snapshots atomically; answer what to mount for a chain (descriptions only:
`linux/` performs mounts).

On-disk layout under `root`:
    <16 hex>/fs          the layer's content: an overlayfs lower layer (whiteouts as char 0:0,
                         opaque dirs with trusted.overlay.opaque=y)
    <16 hex>/meta.json   {"chain_id": ..., "parent": ...}; the full chain ID is the key
    <16 hex>/usage       cached byte count (written once, snapshots never change)
    .staging/<pid>-*     snapshots being unpacked
    .locks/<16 hex>      flock(2) files serialising commit and removal of one chain
    .trash/              snapshots being removed

Invariants:
- A snapshot directory appears only by rename(2) of a complete staging dir, so a partially
  unpacked layer is never visible: `has()` is true only for complete snapshots.
- Directory names are the first 16 hex digits of the chain ID (short, so that 100+ lowerdirs
  fit the one-page mount option limit); `meta.json` holds the full ID and a (practically
  impossible) prefix collision is detected and refused with Conflict.
- Two processes may unpack the same chain at once: each works in its own staging dir, the
  commit (check + rename) runs under the chain's flock, the first wins and the other's tree is
  discarded. Both get their own `apply` result.
- Snapshots are immutable once committed. The store does not know which are mounted; keeping
  used snapshots (leases, GC roots) is the engine's job. Unpacked trees are not fsync'ed.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dockyard.digest import Digest
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.linux.proc import exists
from dockyard.snapshot.mount import Mount

T = TypeVar("T")

PAGE_SIZE = 4096
_BAD_PATH_CHARS = (",", ":", "\\")


@dataclass(frozen=True)
class SnapshotInfo:
    chain_id: Digest
    parent: Digest | None
    dir: Path


def _check_mountable(path: Path, what: str) -> None:
    if any(c in str(path) for c in _BAD_PATH_CHARS):
        raise InvalidArgument(
            f"{what} {str(path)!r} contains ',', ':' or '\\', which overlay mount options cannot "
            "carry; choose another directory"
        )


class SnapshotStore:
    """Snapshots keyed by chain ID under `root` (created on first use)."""

    def __init__(self, root: Path) -> None:
        _check_mountable(root, "snapshot root")
        self.root = root

    # -- names ------------------------------------------------------------------------------

    @staticmethod
    def _short(chain_id: str) -> str:
        return Digest.parse(chain_id).hex[:16]

    def _home(self, chain_id: str) -> Path:
        return self.root / self._short(chain_id)

    def _meta(self, home: Path) -> dict[str, str | None] | None:
        try:
            with open(home / "meta.json", encoding="utf-8") as f:
                data: dict[str, str | None] = json.load(f)
                return data
        except (FileNotFoundError, NotADirectoryError):
            return None

    @contextlib.contextmanager
    def _lock(self, chain_id: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / self._short(chain_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- queries ----------------------------------------------------------------------------

    def has(self, chain_id: str) -> bool:
        meta = self._meta(self._home(chain_id))
        return meta is not None and meta.get("chain_id") == chain_id

    def dir(self, chain_id: str) -> Path:
        """The snapshot's content directory (an overlay lowerdir)."""
        if not self.has(chain_id):
            raise NotFound(f"snapshot {chain_id} not found")
        return self._home(chain_id) / "fs"

    def list(self) -> list[Digest]:
        """Chain IDs of all snapshots, children before their parents (so that removing them
        in this order never hits the parent check)."""
        return [i.chain_id for i in self.infos()]

    def infos(self) -> builtins.list[SnapshotInfo]:
        """All snapshots with their parents, children before parents, then by chain ID."""
        found: dict[Digest, SnapshotInfo] = {}
        if not self.root.is_dir():
            return []
        for name in os.listdir(self.root):
            if name.startswith("."):
                continue
            meta = self._meta(self.root / name)
            if meta is None or not isinstance(meta.get("chain_id"), str):
                continue
            chain = Digest.parse(str(meta["chain_id"]))
            parent = meta.get("parent")
            parent_id = Digest(parent) if parent else None
            found[chain] = SnapshotInfo(chain, parent_id, self.root / name / "fs")
        depth: dict[Digest, int] = {}
        for c in found:
            path = [c]
            while (p := found[path[-1]].parent) in found and p not in depth and p not in path:
                path.append(p)  # (`not in path` only guards against corrupt, cyclic metadata)
            for k in reversed(path):
                p = found[k].parent
                base = depth[p] if p is not None and p in depth else -1
                depth[k] = base + 1
        return sorted(found.values(), key=lambda i: (-depth[i.chain_id], i.chain_id))

    def usage(self, chain_id: str) -> int:
        """Bytes used by the snapshot: apparent sizes of files and symlinks, each inode once."""
        fs = self.dir(chain_id)
        cache = fs.parent / "usage"
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(cache.read_text())
        total = _tree_size(fs)
        _write_atomic(cache, str(total).encode())
        return total

    # -- changes ----------------------------------------------------------------------------

    def create(self, chain_id: str, parent: str | None, apply: Callable[[Path], T]) -> T:
        """Unpack a snapshot with `apply(dir)` in a staging dir and commit it atomically.

        Returns `apply`'s result. If the snapshot exists when the commit happens (another
        process won, or it existed already: check `has()` first to skip the work), this
        unpacked copy is discarded and the existing one kept. NotFound if `parent` is not a
        snapshot. If `apply` raises, nothing is committed.
        """
        Digest.parse(chain_id)
        if parent is not None and not self.has(parent):
            raise NotFound(f"parent snapshot {parent} of {chain_id} not found")
        staging_root = self.root / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        self.cleanup()
        staging = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=staging_root))
        try:
            os.chmod(staging, 0o700)
            (staging / "fs").mkdir(mode=0o755)
            result = apply(staging / "fs")
            meta = {"chain_id": chain_id, "parent": parent}
            _write_atomic(staging / "meta.json", json.dumps(meta).encode())
            self._commit(chain_id, staging)
            return result
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _commit(self, chain_id: str, staging: Path) -> None:
        home = self._home(chain_id)
        with self._lock(chain_id):
            meta = self._meta(home)
            if meta is not None:
                if meta.get("chain_id") != chain_id:
                    raise Conflict(
                        f"snapshot dir {home} already holds {meta.get('chain_id')}, "
                        f"which shares its 16-digit prefix with {chain_id}"
                    )
                return  # another process won the race; our staging copy is discarded
            if home.exists():  # debris without meta.json (e.g. an interrupted removal)
                self._discard(home)
            os.chmod(staging, 0o755)
            os.rename(staging, home)

    def remove(self, chain_id: str) -> None:
        """Remove a snapshot; Conflict if another snapshot names it as parent."""
        with self._lock(chain_id):
            if not self.has(chain_id):
                raise NotFound(f"snapshot {chain_id} not found")
            children = [s.chain_id for s in self.infos() if s.parent == chain_id]
            if children:
                raise Conflict(
                    f"snapshot {chain_id} is the parent of {children[0]}; remove it first"
                )
            self._discard(self._home(chain_id))

    def _discard(self, home: Path) -> None:
        trash = self.root / ".trash"
        trash.mkdir(parents=True, exist_ok=True)
        dest = Path(tempfile.mkdtemp(prefix=home.name + "-", dir=trash))
        os.rename(home, dest / "d")  # disappears atomically, then deleted at leisure
        shutil.rmtree(dest, ignore_errors=True)

    def cleanup(self) -> None:
        """Delete staging dirs of dead processes and leftover trash."""
        for sub in (".staging", ".trash"):
            base = self.root / sub
            if not base.is_dir():
                continue
            for name in os.listdir(base):
                if sub == ".staging" and _pid_alive(name.split("-", 1)[0]):
                    continue
                shutil.rmtree(base / name, ignore_errors=True)

    # -- mounts -----------------------------------------------------------------------------

    def mounts(
        self,
        chain: builtins.list[str],
        upper: Path | None,
        work: Path | None,
        *,
        target: Path | None = None,
    ) -> builtins.list[Mount]:
        """What to mount for a rootfs made of `chain` (bottom layer first) and `upper`.

        - no upper, one layer: a read-only recursive bind of the snapshot;
        - no layers, an upper: a read-write bind of `upper`;
        - otherwise an overlay, lowerdirs topmost first (`work` is required with `upper`).
        When the absolute option string would exceed one page, lowerdirs are given relative to
        the store root and `Mount.cwd` says so.
        """
        dest = str(target) if target is not None else ""
        if upper is not None:
            _check_mountable(upper, "upper dir")
            if work is None:
                raise InvalidArgument("an overlay with an upper dir needs a work dir")
            _check_mountable(work, "work dir")
        for c in chain:
            if not self.has(c):
                raise NotFound(f"snapshot {c} not found; unpack the image first")
        if not chain:
            if upper is None:
                raise InvalidArgument("nothing to mount: no layers and no upper dir")
            return [Mount("bind", str(upper), dest, ("rbind", "rw"))]
        if upper is None and len(chain) == 1:
            return [Mount("bind", str(self.dir(chain[0])), dest, ("rbind", "ro"))]
        tail = () if upper is None else (f"upperdir={upper}", f"workdir={work}")
        lowers = [self._short(c) + "/fs" for c in reversed(chain)]
        options = ("lowerdir=" + ":".join(f"{self.root}/{d}" for d in lowers), *tail)
        if len(",".join(options)) < PAGE_SIZE:
            return [Mount("overlay", "overlay", dest, options)]
        options = ("lowerdir=" + ":".join(lowers), *tail)
        if len(",".join(options)) < PAGE_SIZE:
            return [Mount("overlay", "overlay", dest, options, cwd=str(self.root))]
        raise InvalidArgument(
            f"{len(chain)} layers do not fit in one overlay mount's options; flatten the image"
        )


def _pid_alive(text: str) -> bool:
    return text.isdigit() and exists(int(text))
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _tree_size(root: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    if st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_size
    return total
