"""A container's filesystem from the outside (layer L4): `cp`, `diff`, `export`, and
`container prune` (with the space it reclaims). `commit` lives in `container.commit`.

Responsibility: read and write a container's root filesystem whether it runs or not (a stopped
container's overlay is mounted at its usual mount point for the duration of the call, under
the container's record lock, so a concurrent `start` waits and two calls never unmount under
each other), list its changes as Docker's A/C/D, and flatten it to a tar.

Invariants (security):
- A path inside a container is resolved from a directory fd of the container's root, one
  component at a time, with `safepath.RootedTree`: a symlink is resolved as if the container
  root were `/` (absolute targets restart at the container root, `..` stops there), so nothing
  the container planted can lead a read or a write onto the host.
- Trees are read through directory fds with O_NOFOLLOW (never by path), so a running container
  swapping a directory for a symlink mid-copy cannot redirect the read either; writes go
  through `layer.apply.apply_layer` rooted at the resolved destination's fd, which is
  contained the same way. A tar from a container is extracted on the host the same way.
- The mount points our runtime creates for Docker's "init layer" files (/etc/hosts,
  /etc/hostname, /etc/resolv.conf, ...: empty files, or empty /dev /proc /sys dirs, absent from
  the image) are not changes: `diff` does not list them and `commit` leaves them out.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from dockyard.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from dockyard.layer import tarwrite as tw
from dockyard.layer.safepath import DIR_FLAGS, Parts, RootedTree

if TYPE_CHECKING:
    from dockyard.container.model import Container
    from dockyard.container.service import ContainerService

_CHUNK = 1 << 20
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
INIT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab", ".dockerenv")
INIT_DIRS = ("dev", "proc", "sys")


# -- the container's root --------------------------------------------------------------------


@contextlib.contextmanager
def container_root(svc: ContainerService, c: Container) -> Iterator[int]:
    """A directory fd of the container's merged root filesystem, mounted if need be."""
    from dockyard.linux import fsmount

    target = svc.dir(c.id) / "rootfs"
    if fsmount.is_mounted(str(target)):  # running: its own mount stays its supervisor's
        fd = os.open(target, DIR_FLAGS)
        try:
            yield fd
        finally:
            os.close(fd)
        return
    # Stopped: mount under the record lock, so a `start` (whose first record update takes
    # the lock) waits until we are done and another cp never unmounts under us.
    with svc.locked(c.id):
        if not fsmount.is_mounted(str(target)):
            from dockyard.container import running

            running.mount_rootfs(svc, c)
        try:
            fd = os.open(target, DIR_FLAGS)
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            if not svc.supervisor_alive(c.id):
                svc._unmount(c.id)


def lowers(svc: ContainerService, c: Container) -> list[Path]:
    img = svc.engine.images.get(c.image_id)
    return [svc.engine.snapshots.dir(str(x)) for x in reversed(img.chain)]


def _parts(path: str) -> Parts:
    if "\0" in path:
        raise InvalidArgument(f"path {path!r} contains a NUL byte")
    return tuple(p for p in posixpath.normpath("/" + path).split("/") if p)


def _canon(tree: RootedTree, fd: int) -> str:
    """The container path of a directory fd that `tree` handed out."""
    here = os.readlink(f"/proc/self/fd/{fd}")
    root = os.readlink(f"/proc/self/fd/{tree.root_fd}")
    rel = os.path.relpath(here, root)
    return "/" if rel == "." else "/" + rel


def _resolve(tree: RootedTree, path: str, follow: bool) -> tuple[int, str]:
    """(parent dir fd, final name) of a container path; name "" is the root itself.

    With `follow`, a final symlink is followed (inside the container root); intermediate
    symlinks are always followed, inside the root. NotFound if a parent is missing.
    """
    parts = _parts(path)
    for _ in range(40):
        if not parts:
            return tree.root_fd, ""
        try:
            parent = tree.dir(parts[:-1], create=False)
        except InvalidArgument:
            raise NotFound(
                f"Could not find the file {path} in container: not a directory"
            ) from None
        if parent is None:
            raise NotFound(f"Could not find the file {path} in container")
        name = parts[-1]
        st = _lstat_at(parent, name)
        if not follow or st is None or not stat.S_ISLNK(st.st_mode):
            return parent, name
        target = os.readlink(name, dir_fd=parent)
        base = "/" if target.startswith("/") else _canon(tree, parent)
        parts = _parts(posixpath.join(base, target))
    raise InvalidArgument(f"{path}: too many levels of symbolic links")


def _lstat_at(parent: int, name: str) -> os.stat_result | None:
    try:
        if not name:
            return os.fstat(parent)
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(parent: int, name: str) -> int:
    return os.dup(parent) if not name else os.open(name, DIR_FLAGS, dir_fd=parent)


# -- tar of a tree, through fds --------------------------------------------------------------


class _TarWriter:
    """Tar members of a tree read through dir fds (O_NOFOLLOW everywhere)."""

    def __init__(self, owner: tuple[int, int] | None) -> None:
        self.owner = owner
        self.links: dict[tuple[int, int], str] = {}

    def stream(self, parent: int, name: str, arc: str) -> Iterator[bytes]:
        """The whole archive of `name` under `parent` ("" = parent itself), named `arc` ("" =
        its contents at the top)."""
        st = _lstat_at(parent, name)
        if st is None:
            raise NotFound(f"{name}: no such file or directory")
        yield from self.member(parent, name, st, arc)
        yield tw.END_OF_ARCHIVE

    def member(self, parent: int, name: str, st: os.stat_result, arc: str) -> Iterator[bytes]:
        mode = st.st_mode
        uid, gid = self.owner or (st.st_uid, st.st_gid)

        def hdr(arcname: str, typ: bytes, **kw: Any) -> bytes:
            return tw.header(
                arcname, typ, mode=stat.S_IMODE(mode), uid=uid, gid=gid,
                mtime=max(0, int(st.st_mtime)), **kw,
            )  # fmt: skip

        if stat.S_ISDIR(mode):
            fd = _open_dir(parent, name)
            try:
                if arc:
                    yield hdr(arc + "/", b"5", xattrs=_xattrs(fd))
                for child in sorted(os.listdir(fd)):
                    cst = _lstat_at(fd, child)
                    if cst is not None:
                        yield from self.member(fd, child, cst, f"{arc}/{child}" if arc else child)
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                yield hdr(arc, b"1", linkname=self.links[key])
                return
            if st.st_nlink > 1:
                self.links[key] = arc
            yield from self._file(parent, name, arc, hdr)
        elif stat.S_ISLNK(mode):
            yield hdr(arc, b"2", linkname=os.readlink(name, dir_fd=parent))
        elif stat.S_ISFIFO(mode):
            yield hdr(arc, b"6")
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            typ = b"3" if stat.S_ISCHR(mode) else b"4"
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
            yield hdr(arc, typ, devmajor=major, devminor=minor)
        # sockets are skipped, as Docker does

    def _file(self, parent: int, name: str, arc: str, hdr: Callable[..., bytes]) -> Iterator[bytes]:
        fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                raise Conflict(f"{arc!r} changed while it was being copied")
            size = fst.st_size
            yield hdr(arc, b"0", size=size, xattrs=_xattrs(fd))
            left = size
            while left:
                chunk = os.read(fd, min(left, _CHUNK))
                if not chunk:
                    raise Conflict(f"{arc!r} shrank while it was being copied")
                left -= len(chunk)
                yield chunk
            yield tw.pad(size)
        finally:
            os.close(fd)


def _xattrs(fd: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with contextlib.suppress(OSError):
        for key in sorted(os.listxattr(fd)):
            if ".overlay." in key:
                continue
            with contextlib.suppress(OSError):
                out[key] = os.getxattr(fd, key)
    return out


class _IterReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self.buf:
            try:
                self.buf = memoryview(next(self.chunks))
            except StopIteration:
                return 0
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def _reader(chunks: Iterator[bytes]) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(_IterReader(chunks), _CHUNK))


class _FdPath:
    """The directory an open fd refers to, as a path that names the fd itself: a trailing `.`
    (which `pathlib` would drop) keeps O_NOFOLLOW off the /proc magic link, and nothing the
    container controls is looked up again."""

    def __init__(self, fd: int) -> None:
        self.path = f"/proc/self/fd/{fd}/."

    def __fspath__(self) -> str:
        return self.path


def _fd_tree(fd: int) -> RootedTree:
    return RootedTree(cast(Path, _FdPath(fd)))


def _extract(stream: BinaryIO, dir_fd: int, *, same_owner: bool, devices: bool) -> None:
    from dockyard.layer.apply import apply_layer

    target = cast(Path, _FdPath(dir_fd))  # apply_layer only ever os.open()s it
    apply_layer(stream, target, overlay_whiteouts=False, same_owner=same_owner,
                allow_devices=devices)  # fmt: skip


# -- cp --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyOptions:
    archive: bool = False  # -a: keep uid/gid
    follow_link: bool = False  # -L: follow a symlink given as the source


def _src_flags(path: str, follow_link: bool) -> tuple[bool, bool]:
    """(follow the final symlink, copy only the contents), from Docker's path suffixes."""
    contents = path.endswith("/.") or path == "."
    return follow_link or contents or path.endswith("/"), contents


def plan_copy(
    src_is_dir: bool, contents: bool, src_base: str, dest: str, dest_st: os.stat_result | None
) -> tuple[bool, str]:
    """Docker's cp rules: (extract into `dest` itself, else into its parent; top-level name in
    the archive, "" for the source's contents)."""
    if dest_st is not None and stat.S_ISDIR(dest_st.st_mode):
        return True, "" if (src_is_dir and (contents or not src_base)) else src_base
    base = posixpath.basename(dest.rstrip("/"))
    if dest_st is not None:
        if src_is_dir:
            raise InvalidArgument(f"cannot copy a directory to a file: {dest}")
        return False, base
    if dest.endswith("/") and not src_is_dir:
        raise NotFound(f"destination directory {dest} does not exist")
    if not base:
        raise InvalidArgument(f"invalid destination {dest!r}")
    return False, base


def copy_from_container(
    svc: ContainerService, name: str, src: str, dest: str | BinaryIO, opts: CopyOptions
) -> None:
    """`cp CONTAINER:SRC DEST`; `dest` is a host path or a stream that gets a tar."""
    c = svc.get(name)
    follow, contents = _src_flags(src, opts.follow_link)
    with container_root(svc, c) as root_fd:
        tree = _fd_tree(root_fd)
        try:
            parent, base = _resolve(tree, src, follow)
            st = _lstat_at(parent, base)
            if st is None:
                raise NotFound(f"Could not find the file {src} in container {name}")
            is_dir = stat.S_ISDIR(st.st_mode)
            if (src.endswith("/") or contents) and not is_dir:
                raise InvalidArgument(f"{src}: not a directory")
            writer = _TarWriter(None)
            named = _parts(src)[-1:]  # the name the user gave, even if a link was followed
            src_base = named[0] if named else ""
            if not isinstance(dest, str):
                arc = "" if (contents or not src_base) else src_base
                for chunk in writer.stream(parent, base, arc):
                    dest.write(chunk)
                return
            into, arc = _host_dest(dest, is_dir, contents, src_base)
            try:
                stream = _reader(writer.stream(parent, base, arc))
                _extract(stream, into, same_owner=opts.archive, devices=False)
            finally:
                os.close(into)
        finally:
            tree.close()


def _host_dest(dest: str, is_dir: bool, contents: bool, src_base: str) -> tuple[int, str]:
    """Open the host directory to extract into; return (its fd, top-level name)."""
    path = os.path.abspath(dest)
    try:
        dest_st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        dest_st = None
    into_dest, arc = plan_copy(is_dir, contents, src_base, dest, dest_st)
    where = path if into_dest else os.path.dirname(path)
    try:
        fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"destination directory {where} does not exist") from None
    return fd, arc


def copy_to_container(
    svc: ContainerService, name: str, src: str | BinaryIO, dest: str, opts: CopyOptions
) -> None:
    """`cp SRC CONTAINER:DEST`; `src` is a host path or a stream holding a tar."""
    c = svc.get(name)
    if c.host_config.get("ReadonlyRootfs"):
        raise FailedPrecondition(f"container rootfs is marked read-only: {name}")
    with container_root(svc, c) as root_fd:
        tree = _fd_tree(root_fd)
        try:
            parent, base = _resolve(tree, dest, True)
            dest_st = _lstat_at(parent, base)
            if not isinstance(src, str):
                if dest_st is None or not stat.S_ISDIR(dest_st.st_mode):
                    raise InvalidArgument(f"destination {dest} must be a directory")
                into = _open_dir(parent, base)
                try:
                    _extract(src, into, same_owner=True, devices=True)
                finally:
                    os.close(into)
                return
            _copy_host_tree(src, opts, parent, base, dest, dest_st)
        finally:
            tree.close()


def _copy_host_tree(
    src: str, opts: CopyOptions, parent: int, base: str, dest: str, dest_st: os.stat_result | None
) -> None:
    follow, contents = _src_flags(src, opts.follow_link)
    path = os.path.abspath(src)
    src_base = os.path.basename(path)  # the name the user gave, even if a link is followed
    if follow:
        path = os.path.realpath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFound(f"could not find the file {src} on the host") from None
    is_dir = stat.S_ISDIR(st.st_mode)
    if (src.endswith("/") or contents) and not is_dir:
        raise InvalidArgument(f"{src}: not a directory")
    into_dest, arc = plan_copy(is_dir, contents, src_base, dest, dest_st)
    into = _open_dir(parent, base) if into_dest else os.dup(parent)
    src_parent = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        owner = None if opts.archive else (0, 0)
        name = os.path.basename(path)  # "" for the host's root
        stream = _reader(_TarWriter(owner).stream(src_parent, name, arc))
        _extract(stream, into, same_owner=True, devices=True)
    finally:
        os.close(src_parent)
        os.close(into)


# -- diff ------------------------------------------------------------------------------------


def init_artifacts(upper: Path, changes: list[tuple[str, str]]) -> set[str]:
    """Paths ("/etc/hosts") of init-layer mount points in `upper`, and dirs holding only them."""
    kinds = {p: k for k, p in changes}
    hidden: set[str] = set()
    for rel in (*INIT_FILES, *INIT_DIRS):
        if kinds.get("/" + rel) != "A":
            continue
        st = os.lstat(upper / rel)
        empty_file = stat.S_ISREG(st.st_mode) and st.st_size == 0
        if empty_file or (stat.S_ISDIR(st.st_mode) and not os.listdir(upper / rel)):
            hidden.add("/" + rel)
    for kind, p in sorted(changes, key=lambda kp: -kp[1].count("/")):  # deepest first
        d = upper / p.lstrip("/")
        if kind != "C" or not d.is_dir() or d.is_symlink():
            continue
        children = [f"{p}/{n}" for n in os.listdir(d)]
        if children and all(ch in hidden for ch in children):
            hidden.add(p)
    return hidden


def changes(svc: ContainerService, name: str) -> list[tuple[str, str]]:
    """`diff`: (kind, path) with kind A, C or D, sorted by path as Docker prints them."""
    from dockyard.layer.changes import diff_changes

    c = svc.get(name)
    upper = svc.dir(c.id) / "upper"
    found = diff_changes(upper, lowers(svc, c))
    hidden = init_artifacts(upper, found)
    return [(k, p) for k, p in found if p not in hidden]


# -- export ----------------------------------------------------------------------------------


def export(svc: ContainerService, name: str, out: BinaryIO) -> None:
    """`export`: the container's merged root filesystem as one tar, written to `out`."""
    c = svc.get(name)
    with container_root(svc, c) as root_fd:
        for chunk in _TarWriter(None).stream(root_fd, "", ""):
            out.write(chunk)


# -- prune -----------------------------------------------------------------------------------


def upper_size(svc: ContainerService, cid: str) -> int:
    """Bytes in the container's writable layer (apparent sizes, each inode once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(svc.dir(cid) / "upper"):
        for f in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, f))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def prune(svc: ContainerService, filters: dict[str, list[str]]) -> tuple[list[str], int]:
    """`container prune`: remove every stopped container the filters select (until=, label=,
    label!=); return their IDs and the bytes reclaimed."""
    from dockyard.units import parse_time

    for key in filters:
        if key not in ("until", "label", "label!"):
            raise InvalidArgument(f"invalid filter '{key}'")
    until = [_until(v) for v in filters.get("until", [])]
    removed: list[str] = []
    freed = 0
    for c in svc.list_containers():
        if c.state.running or c.state.status == "removing":
            continue
        created = parse_time(c.created)
        ts = created.timestamp() if created else 0.0
        if any(ts >= u for u in until) or not _labels_match(c, filters):
            continue
        size = upper_size(svc, c.id)
        with contextlib.suppress(NotFound):
            svc.remove(c.id)
            removed.append(c.id)
            freed += size
    return removed, freed


def _until(value: str) -> float:
    import time

    from dockyard.units import parse_time

    units = {"s": 1, "m": 60, "h": 3600}
    if value.replace(".", "", 1).isdigit():
        return float(value)
    if value and value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(value[:-1]) * units[value[-1]]
    dt = parse_time(value)
    if dt is None:
        raise InvalidArgument(f"invalid filter 'until={value}'")
    return float(dt.timestamp())


def _labels_match(c: Container, f: dict[str, list[str]]) -> bool:
    labels = c.config.get("Labels") or {}

    def has(want: str) -> bool:
        k, sep, v = want.partition("=")
        return k in labels and (not sep or labels[k] == v)

    return all(has(w) for w in f.get("label", [])) and not any(has(w) for w in f.get("label!", []))
