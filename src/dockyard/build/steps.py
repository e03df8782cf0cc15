"""File operations of build steps, confined to a root (layer L4): COPY/ADD, WORKDIR's mkdir.

`Rooted(root)` resolves paths the way the container would see them: symlinks are followed
*inside* the root (an absolute link target restarts at the root, `..` stops at it), so an image
whose /lib links to /usr/lib never makes the builder touch the host's /usr/lib. `copy_items`
writes `Item`s (a file, link or directory tree, or an ADD tar to extract) under a destination
with Docker's rules: a destination ending in `/` (or `.`), several sources, a wildcard, or an
existing directory means "into this directory"; a directory source copies its *contents*.

Speed: a directory this step created exists only in the overlay's upper dir, so everything
under it is written straight into the upper dir (`Rooted.writable`), skipping overlayfs'
per-file lookups in every lower layer; paths are still resolved through the mounted root.

Invariants: nothing is created, changed or followed outside the root — every write goes to a
path whose parent was resolved by `Rooted` and is created with O_EXCL|O_NOFOLLOW after removing
what was there; owners are the `--chown` owner, else root (context files) or the source's own
(files from a stage); mode is `--chmod` (octal, or symbolic applied to the source's mode)
when given, else the source's; mtimes are kept.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.build.chmod import Chmod
from dockyard.errors import FailedPrecondition, InvalidArgument

_MAX_HOPS = 40
_OFLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
Owner = tuple[int, int] | None


class Rooted:
    """Path resolution and directory creation inside `root`."""

    def __init__(self, root: Path | str, upper: Path | str | None = None) -> None:
        self.root = os.path.realpath(root)
        self.upper = os.path.realpath(upper) if upper is not None else None
        self.fresh: set[str] = set()  # dirs made by this step: they exist only in `upper`

    def writable(self, path: str) -> str:
        """Where to create `path` (a host path under the root): in the upper dir directly when
        its parent was made by this step (no lower layer can hold anything there, so overlay's
        per-file work is skipped), else through the mounted root. Lookups under such a dir go
        to the upper dir too: the mounted view may have cached that a name was missing."""
        parent = os.path.dirname(path)
        if self.upper is None or not self.fresh or parent not in self.fresh:
            return path
        return self.upper + path[len(self.root) :]

    def physical(self, path: str) -> str:
        """`path` itself in the upper dir when this step made it, else as mounted."""
        if self.upper is not None and path in self.fresh:
            return self.upper + path[len(self.root) :]
        return self.writable(path)

    def made_dir(self, path: str) -> None:
        self.fresh.add(path)

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """Host path of `path` (relative to the root, `/`-separated), symlinks resolved inside
        the root. Missing components are kept as written."""
        todo = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if done:
                    done.pop()
                continue
            host = self.writable(os.path.join(self.root, *done, name))
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                done.append(name)
                continue
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                hops += 1
                if hops > _MAX_HOPS:
                    raise InvalidArgument(f"too many levels of symbolic links in {path!r}")
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            done.append(name)
        return os.path.join(self.root, *done)

    def mkdirs(self, path: str, owner: Owner = None, mode: int = 0o755) -> str:
        """Create `path` and missing parents (owned by `owner`, default root); its host path."""
        real = self.resolve(path)
        rel = os.path.relpath(real, self.root)
        cur = self.root
        for part in [] if rel == "." else rel.split("/"):
            cur = os.path.join(cur, part)
            where = self.writable(cur)
            try:
                st = os.lstat(where)
            except FileNotFoundError:
                os.mkdir(where, mode)
                os.chmod(where, mode)
                uid, gid = owner if owner is not None else (0, 0)
                os.lchown(where, uid, gid)
                self.made_dir(cur)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise FailedPrecondition(f"cannot create directory {path!r}: {part!r} is a file")
        return real

    def is_dir(self, path: str) -> bool:
        host = self.writable(self.resolve(path))
        return os.path.isdir(host) and not os.path.islink(host)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.writable(self.resolve(path, follow_last=False)))


@dataclass
class Item:
    """One source: `host` path of a file/link/dir; `base` its name; for a dir, `children` as
    (path relative to it, host path, lstat), parents first. `tar` marks an ADD archive."""

    host: str
    base: str
    st: os.stat_result
    children: list[tuple[str, str, os.stat_result]] = field(default_factory=list)
    tar: bool = False


def dest_path(dest: str, workdir: str) -> tuple[str, bool]:
    """(absolute destination, whether it names a directory by its spelling)."""
    as_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
    full = posixpath.normpath(posixpath.join(workdir or "/", dest))
    return full, as_dir


def is_archive(path: str) -> bool:
    """An ADD source that is auto-extracted: tar, maybe gzip/bzip2/xz/zstd-compressed."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def copy_items(
    root: Rooted,
    items: list[Item],
    dest: str,
    *,
    workdir: str,
    owner: Owner,
    chmod: Chmod | None,
    force_dir: bool = False,
    parents: bool = False,
) -> None:
    """Copy `items` to `dest` (relative to `workdir`) inside `root`. With `parents`
    (`COPY --parents`), each item keeps its source path (`Item.base`) under `dest`."""
    full, as_dir = dest_path(dest, workdir)
    into_dir = as_dir or force_dir or parents or len(items) > 1 or root.is_dir(full)
    for it in items:
        if stat.S_ISDIR(it.st.st_mode):
            top_path = posixpath.join(full, it.base) if parents and it.base != "." else full
            top = root.mkdirs(top_path, owner)
            _copy_tree(root, it, top, owner, chmod)
        elif it.tar:
            top = root.mkdirs(full, owner)
            _extract(it.host, root.physical(top))
        else:
            target = posixpath.join(full, it.base) if into_dir else full
            parent = root.mkdirs(posixpath.dirname(target) or "/", owner)
            dst = root.writable(os.path.join(parent, posixpath.basename(target)))
            _copy_one(it.host, it.st, dst, owner, chmod)


def _copy_tree(root: Rooted, it: Item, top: str, owner: Owner, chmod: Chmod | None) -> None:
    dirs: list[tuple[str, os.stat_result]] = []
    for rel, host, st in it.children:
        path = os.path.join(top, rel)
        if _copy_one(host, st, root.writable(path), owner, chmod, dirs):
            root.made_dir(path)
    for path, st in reversed(dirs):  # times after contents
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _owner_of(st: os.stat_result, owner: Owner) -> tuple[int, int]:
    return owner if owner is not None else (st.st_uid, st.st_gid)


def _copy_one(
    src: str,
    st: os.stat_result,
    dst: str,
    owner: Owner,
    chmod: Chmod | None,
    dirs: list[tuple[str, os.stat_result]] | None = None,
) -> bool:
    """Copy one entry to `dst`; True when it created a new directory there."""
    mode = st.st_mode
    uid, gid = _owner_of(st, owner)
    perm = chmod.apply(mode) if chmod is not None else stat.S_IMODE(mode)
    if stat.S_ISDIR(mode):
        try:
            existing = os.lstat(dst)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(dst)
            existing = None
        if existing is None:
            os.mkdir(dst, 0o700)
        os.lchown(dst, uid, gid)
        os.chmod(dst, perm)
        if dirs is not None:
            dirs.append((dst, st))
        return existing is None
    _remove(dst)
    if stat.S_ISREG(mode):
        _copy_file(src, dst, perm, uid, gid, st)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
        os.lchown(dst, uid, gid)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst, perm)
        os.lchown(dst, uid, gid)
    # sockets and devices are skipped, as Docker's COPY does
    return False


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_file(src: str, dst: str, perm: int, uid: int, gid: int, st: os.stat_result) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fout = os.open(dst, _OFLAGS, 0o600)
        try:
            left = st.st_size
            while left > 0:
                n = os.sendfile(fout, fin, None, min(left, 1 << 30))
                if n == 0:
                    break
                left -= n
            _copy_xattrs(fin, fout)
            os.fchown(fout, uid, gid)
            os.fchmod(fout, perm)
            os.utime(fout, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_xattrs(fin: int, fout: int) -> None:
    """Extended attributes a layer records (overlayfs' own are never copied)."""
    try:
        names = os.listxattr(fin)
    except OSError:
        return
    for name in names:
        if ".overlay." in name:
            continue
        try:
            os.setxattr(fout, name, os.getxattr(fin, name))
        except OSError:
            continue


def _extract(archive: str, top: str) -> None:
    """ADD's auto-extraction: the archive's entries under `top`, never escaping it."""
    import bz2
    import lzma

    from dockyard.layer.apply import apply_layer

    with open(archive, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        if head[:3] == b"BZh":
            with bz2.open(raw) as bz:
                apply_layer(bz, Path(top), overlay_whiteouts=False)  # type: ignore[arg-type]
        elif head[:6] == b"\xfd7zXZ\x00":
            with lzma.open(raw) as xz:
                apply_layer(xz, Path(top), overlay_whiteouts=False)  # type: ignore[arg-type]
        else:
            apply_layer(raw, Path(top), overlay_whiteouts=False)


def scan_tree(host: str) -> list[tuple[str, str, os.stat_result]]:
    """Every entry under directory `host` as (relative path, host path, lstat), parents first."""
    out: list[tuple[str, str, os.stat_result]] = []
    stack = [(host, "")]
    while stack:
        d, rel = stack.pop()
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for e in entries:
            st = e.stat(follow_symlinks=False)
            r = rel + e.name
            out.append((r, e.path, st))
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((e.path, r + "/"))
        stack.extend(reversed(subdirs))
    return out
