"""Write a layer tar of a directory (layer L2), deterministically, hashing as it goes.

Responsibility: turn a directory tree into an OCI layer tar (optionally compressed) and report
its diff_id (sha256 of the uncompressed tar) and digest (sha256 of the bytes written), both in
the same pass. With `from_overlay_upper=True` the tree is an overlayfs upper dir, and overlay
whiteouts (char 0:0) become `.wh.NAME` entries and opaque dirs (`trusted.overlay.opaque=y`)
get a `.wh..wh..opq` entry: that is how a container's changes become a layer.

Invariants (determinism: the same tree gives the same bytes):
- Entries are written depth first, each directory's children sorted by their byte names, so
  a parent always precedes its contents; a dir's `.wh..wh..opq` comes right after the dir.
- Names are relative, without `./`; directories end with `/`. Headers come from `tarwrite`:
  numeric uid/gid, empty uname/gname, whole-second mtimes clamped to `source_date_epoch`
  when it is given, PAX only when needed, xattrs as sorted `SCHILY.xattr.*` records
  (overlayfs' own `*.overlay.*` xattrs are never written).
- A regular file with several links is written once; later paths to the same inode are
  hardlink entries naming the first path. Sockets are skipped, as Docker does.
- A file whose name starts with `.wh.` is refused (it would read back as a whiteout).
- The output stream is not closed; a file that changes size while being read raises Conflict.
- Overlay "metacopy" upper files (data kept in a lower layer) are refused: they cannot be
  exported from the upper dir alone.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from dockyard.digest import Digest
from dockyard.errors import Conflict, FailedPrecondition, InvalidArgument
from dockyard.layer import tarwrite as tw
from dockyard.layer.changes import diff_changes
from dockyard.layer.compression import compressor

__all__ = ["LayerResult", "diff_changes", "write_layer"]

_CHUNK = 1 << 20
_OPAQUE_KEYS = ("trusted.overlay.opaque", "user.overlay.opaque")
_METACOPY_KEYS = ("trusted.overlay.metacopy", "user.overlay.metacopy")


@dataclass(frozen=True)
class LayerResult:
    diff_id: Digest
    digest: Digest
    size_uncompressed: int
    size_compressed: int


class _Hashing:
    """A writer that hashes and counts what passes through to `inner`."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)

    @property
    def digest(self) -> Digest:
        return Digest("sha256:" + self.hash.hexdigest())


def write_layer(
    source: Path,
    out: BinaryIO,
    *,
    from_overlay_upper: bool,
    source_date_epoch: int | None = None,
    compression: str = "gzip",
    level: int | None = None,
) -> LayerResult:
    """Write the layer tar of `source` into `out`, compressed with `compression`."""
    compressed = _Hashing(out)
    codec = compressor(compression, cast(BinaryIO, compressed), level)
    plain_hash = hashlib.sha256()
    plain_size = 0
    for chunk in _tar_stream(source, from_overlay_upper, source_date_epoch):
        plain_hash.update(chunk)
        plain_size += len(chunk)
        codec.write(chunk)
    codec.close()
    return LayerResult(
        diff_id=Digest("sha256:" + plain_hash.hexdigest()),
        digest=compressed.digest,
        size_uncompressed=plain_size,
        size_compressed=compressed.size,
    )


def _tar_stream(source: Path, overlay: bool, epoch: int | None) -> Iterator[bytes]:
    """The uncompressed tar as a sequence of byte chunks (headers and file data)."""
    links: dict[tuple[int, int], str] = {}
    pending = bytearray()
    for rel, path, st in _walk(source):
        for piece in _member(rel, path, st, overlay, epoch, links):
            pending += piece
            if len(pending) >= _CHUNK:
                yield bytes(pending)
                pending.clear()
    pending += tw.END_OF_ARCHIVE
    yield bytes(pending)


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative name, path, lstat) depth first, children sorted by byte name."""
    base = root / rel if rel else root
    names = sorted(os.listdir(os.fsencode(base)))
    for raw in names:
        name = os.fsdecode(raw)
        child_rel = f"{rel}/{name}" if rel else name
        path = root / child_rel
        st = os.lstat(path)
        yield child_rel, path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, child_rel)


def _xattrs(path: Path) -> dict[str, bytes]:
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for key in sorted(keys):
        if ".overlay." in key and key.startswith(("trusted.", "user.")):
            continue
        try:
            out[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
    return out


def _overlay_flag(path: Path, keys: tuple[str, ...]) -> bytes | None:
    for key in keys:
        try:
            return os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
    return None


def _member(
    rel: str,
    path: Path,
    st: os.stat_result,
    overlay: bool,
    epoch: int | None,
    links: dict[tuple[int, int], str],
) -> Iterator[bytes]:
    mode = st.st_mode
    mtime = int(st.st_mtime)
    if epoch is not None and mtime > epoch:
        mtime = epoch
    if stat.S_ISSOCK(mode):
        return
    if os.path.basename(rel).startswith(".wh."):
        raise InvalidArgument(
            f"{rel!r}: names starting with '.wh.' are whiteouts in OCI layers; rename the file"
        )

    def hdr(name: str, typ: bytes, **kw: Any) -> bytes:
        return tw.header(
            name, typ, mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid, mtime=mtime, **kw
        )

    if overlay and stat.S_ISCHR(mode) and st.st_rdev == 0:
        yield hdr(_whiteout_name(rel), b"0")
        return
    xattrs = _xattrs(path)
    if stat.S_ISDIR(mode):
        yield hdr(rel + "/", b"5", xattrs=xattrs)
        if overlay and _overlay_flag(path, _OPAQUE_KEYS) == b"y":
            yield hdr(rel + "/.wh..wh..opq", b"0")
    elif stat.S_ISLNK(mode):
        yield hdr(rel, b"2", linkname=os.readlink(path), xattrs=xattrs)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            yield hdr(rel, b"1", linkname=links[key])
            return
        if st.st_nlink > 1:
            links[key] = rel
        if overlay and _overlay_flag(path, _METACOPY_KEYS) is not None:
            raise FailedPrecondition(
                f"{rel!r} is an overlay metacopy file; mount overlay without metacopy to export"
            )
        yield hdr(rel, b"0", size=st.st_size, xattrs=xattrs)
        yield from _file_data(path, st.st_size, rel)
    elif stat.S_ISFIFO(mode):
        yield hdr(rel, b"6", xattrs=xattrs)
    else:
        typ = b"3" if stat.S_ISCHR(mode) else b"4"
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        yield hdr(rel, typ, devmajor=major, devminor=minor, xattrs=xattrs)


def _whiteout_name(rel: str) -> str:
    parent, _, base = rel.rpartition("/")
    return f"{parent}/.wh.{base}" if parent else f".wh.{base}"


def _file_data(path: Path, size: int, rel: str) -> Iterator[bytes]:
    left = size
    with open(path, "rb", buffering=0) as f:
        while left:
            chunk = f.read(min(left, _CHUNK))
            if not chunk:
                raise Conflict(f"{rel!r} shrank while the layer was being written")
            left -= len(chunk)
            yield chunk
        if f.read(1):
            raise Conflict(f"{rel!r} grew while the layer was being written")
    yield tw.pad(size)
