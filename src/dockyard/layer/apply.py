"""Apply a layer tar to a directory (layer L2), streaming and contained.

Responsibility: read a (possibly gzip/zstd-compressed) OCI layer tar as a forward-only stream,
compute its diff_id (sha256 of the uncompressed tar) in the same pass, and write its entries
into `target` with their modes, owners, times and xattrs, translating OCI whiteouts.

Whiteouts (OCI image spec, "layer" document):
- `overlay_whiteouts=True` (a snapshot used as an overlay lowerdir): `.wh.NAME` becomes an
  overlayfs whiteout (char device 0:0 named NAME) and `DIR/.wh..wh..opq` sets the xattr
  `trusted.overlay.opaque=y` on DIR.
- `overlay_whiteouts=False` (applying onto a full tree, e.g. a flattened rootfs): `.wh.NAME`
  deletes NAME, and an opaque marker deletes DIR's children that this layer did not create.
- Other `.wh..wh.*` names (aufs metadata) are skipped, as Docker does.

Invariants (security):
- Nothing is ever created, changed or deleted outside `target`. Names are cleaned by
  `safepath.clean` (leading `/` stripped, `..` and NUL refused); every parent directory is
  reached through `safepath.RootedTree`, which never follows a symlink out of `target`; leaf
  operations use dir fds with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW, and a file is only ever created
  with O_CREAT|O_EXCL after removing what was there, so symlinks planted by earlier entries are
  created but never followed. Hardlink sources are resolved the same way and linked without
  following a final symlink.
- Device nodes are refused (InvalidArgument) when `allow_devices=False`, and need root.
- `trusted.overlay.*` xattrs are never taken from a tar: overlay metadata only comes from
  whiteout conversion.
- A failed apply leaves `target` partially written; the snapshot store extracts into a
  staging directory and renames it into place, so a partial tree is never used.
- Directory modes and times are set after all entries, so their mtimes survive and read-only
  directories can still be filled.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.digest import Digest
from dockyard.errors import DockyardError, FailedPrecondition, InvalidArgument, NotFound
from dockyard.layer import tarstream as ts
from dockyard.layer.compression import decompressed
from dockyard.layer.safepath import DIR_FLAGS, Parts, RootedTree, clean

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class ApplyResult:
    diff_id: Digest
    size: int  # bytes of the uncompressed tar


def apply_layer(
    stream: BinaryIO,
    target: Path,
    *,
    overlay_whiteouts: bool = True,
    allow_devices: bool = True,
    same_owner: bool | None = None,
) -> ApplyResult:
    """Extract the layer tar read from `stream` into the existing directory `target`.

    `same_owner` (default: true when running as root) applies the entries' uid/gid.
    """
    try:
        ex = _Extractor(
            target,
            overlay_whiteouts=overlay_whiteouts,
            allow_devices=allow_devices,
            same_owner=os.geteuid() == 0 if same_owner is None else same_owner,
        )
    except OSError as err:
        raise NotFound(f"cannot extract a layer into {target}: {err.strerror}") from err
    try:
        reader = ts.TarReader(decompressed(stream))
        try:
            for entry in reader:
                ex.add(entry, reader)
            ex.finish()
        finally:
            reader.close()
    finally:
        ex.close()
    return ApplyResult(reader.digest, reader.size)


class _Extractor:
    def __init__(
        self, target: Path, *, overlay_whiteouts: bool, allow_devices: bool, same_owner: bool
    ) -> None:
        self.tree = RootedTree(target)
        self.overlay = overlay_whiteouts
        self.allow_devices = allow_devices
        self.same_owner = same_owner
        self.is_root = os.geteuid() == 0
        self.seen: set[Parts] = set()  # created by this layer (for opaque dirs on a full tree)
        self.dirs: dict[Parts, ts.Entry] = {}  # mode and times applied in finish()

    def close(self) -> None:
        self.tree.close()

    # -- dispatch ----------------------------------------------------------------------------

    def add(self, e: ts.Entry, reader: ts.TarReader) -> None:
        parts = clean(e.name)
        try:
            self._add(parts, e, reader)
        except DockyardError:
            raise
        except OSError as err:
            raise DockyardError(f"cannot extract layer entry {e.name!r}: {err}") from err
        except (OverflowError, ValueError) as err:  # e.g. an id or time out of range
            raise InvalidArgument(f"invalid layer entry {e.name!r}: {err}") from err
        finally:
            self.tree.release()
        if not self.overlay:
            self.seen.add(parts)

    def _add(self, parts: Parts, e: ts.Entry, reader: ts.TarReader) -> None:
        if not parts:
            if e.type != ts.DIR:
                raise InvalidArgument(f"tar entry {e.name!r} names the root but is not a directory")
            self._root_dir_meta(e)
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts[:-1], base, e)
            return
        parent = self.tree.dir(parts[:-1], create=True)
        assert parent is not None
        if e.type == ts.DIR:
            self._mkdir(parent, parts, e)
        elif e.type == ts.SYM:
            self._symlink(parent, base, e)
        elif e.type == ts.LNK:
            self._hardlink(parent, base, e)
        elif e.type in (ts.CHR, ts.BLK, ts.FIFO):
            self._node(parent, base, e)
        else:
            self._file(parent, base, e, reader)

    # -- removal -----------------------------------------------------------------------------

    def _remove(self, parent: int, name: str) -> bool:
        """Remove `name` under `parent` if present (recursively for dirs). Never follows links."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            self.tree.invalidate()
            shutil.rmtree(name, dir_fd=parent)
        else:
            if stat.S_ISLNK(st.st_mode):
                self.tree.invalidate()
            os.unlink(name, dir_fd=parent)
        return True

    # -- whiteouts ---------------------------------------------------------------------------

    def _whiteout(self, dir_parts: Parts, base: str, e: ts.Entry) -> None:
        if base == OPAQUE_MARKER:
            self._opaque(dir_parts)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            log.debug("skipping aufs metadata entry %r", e.name)
            return
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise InvalidArgument(f"invalid whiteout entry {e.name!r}")
        parent = self.tree.dir(dir_parts, create=self.overlay)
        if parent is None:
            return  # deleting inside a directory that does not exist: nothing to do
        self._remove(parent, name)
        if self.overlay:
            self._need_root(e.name, "create an overlay whiteout")
            os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)

    def _opaque(self, dir_parts: Parts) -> None:
        fd = self.tree.dir(dir_parts, create=self.overlay)
        if fd is None:
            return
        if self.overlay:
            try:
                os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            except PermissionError as err:
                raise FailedPrecondition(
                    f"cannot mark {'/'.join(dir_parts) or '/'!r} opaque: setting "
                    f"{OVERLAY_OPAQUE_XATTR} needs CAP_SYS_ADMIN ({err.strerror})"
                ) from err
            return
        for name in os.listdir(fd):
            if (*dir_parts, name) not in self.seen:
                self._remove(fd, name)

    # -- entry kinds -------------------------------------------------------------------------

    def _file(self, parent: int, name: str, e: ts.Entry, reader: ts.TarReader) -> None:
        try:
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
        except FileExistsError:
            self._remove(parent, name)
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            for chunk in reader.chunks(e):
                view = chunk
                while view:
                    view = view[os.write(fd, view) :]
            self._meta_fd(fd, e, set_mode=True)
        finally:
            os.close(fd)

    def _mkdir(self, parent: int, parts: Parts, e: ts.Entry) -> None:
        name = parts[-1]
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._remove(parent, name)
                os.mkdir(name, 0o700, dir_fd=parent)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        try:
            self._meta_fd(fd, e, set_mode=False)
        finally:
            os.close(fd)
        self.dirs.pop(parts, None)
        self.dirs[parts] = e

    def _root_dir_meta(self, e: ts.Entry) -> None:
        self._meta_fd(self.tree.root_fd, e, set_mode=False)
        self.dirs[()] = e

    def _symlink(self, parent: int, name: str, e: ts.Entry) -> None:
        if not e.linkname or "\0" in e.linkname:
            raise InvalidArgument(f"symlink {e.name!r} has an empty or invalid target")
        try:
            os.symlink(e.linkname, name, dir_fd=parent)
        except FileExistsError:
            self._remove(parent, name)
            os.symlink(e.linkname, name, dir_fd=parent)
        self._meta_path(parent, name, e, set_mode=False)

    def _hardlink(self, parent: int, name: str, e: ts.Entry) -> None:
        src = clean(e.linkname, "hardlink target")
        if not src:
            raise InvalidArgument(f"hardlink {e.name!r} points at the layer root")
        src_parent = self.tree.dir(src[:-1], create=False)
        if src_parent is None:
            raise InvalidArgument(f"hardlink {e.name!r}: target {e.linkname!r} does not exist")
        try:
            st = os.stat(src[-1], dir_fd=src_parent, follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidArgument(
                f"hardlink {e.name!r}: target {e.linkname!r} does not exist"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"hardlink {e.name!r}: target {e.linkname!r} is a directory")
        try:
            dst = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if (dst.st_dev, dst.st_ino) == (st.st_dev, st.st_ino):
                return
            self._remove(parent, name)
        except FileNotFoundError:
            pass
        os.link(src[-1], name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)

    def _node(self, parent: int, name: str, e: ts.Entry) -> None:
        if e.type == ts.FIFO:
            kind, dev = stat.S_IFIFO, 0
        else:
            if not self.allow_devices:
                raise InvalidArgument(
                    f"layer entry {e.name!r} is a device node; device nodes are not allowed here"
                )
            self._need_root(e.name, "create a device node")
            kind = stat.S_IFCHR if e.type == ts.CHR else stat.S_IFBLK
            dev = os.makedev(e.devmajor, e.devminor)
        self._remove(parent, name)
        os.mknod(name, kind | 0o600, dev, dir_fd=parent)
        self._meta_path(parent, name, e, set_mode=True)

    # -- metadata ----------------------------------------------------------------------------

    def _need_root(self, name: str, what: str) -> None:
        if not self.is_root:
            raise FailedPrecondition(f"layer entry {name!r}: only root can {what}")

    def _times(self, e: ts.Entry) -> tuple[int, int]:
        return (e.mtime_ns if e.atime_ns is None else e.atime_ns, e.mtime_ns)

    def _meta_fd(self, fd: int, e: ts.Entry, *, set_mode: bool) -> None:
        """Owner, then mode (chown clears setuid), then xattrs (chown clears capabilities)."""
        if self.same_owner:
            os.fchown(fd, e.uid, e.gid)
        if set_mode:
            os.fchmod(fd, e.mode)
        for key, value in e.xattrs.items():
            self._setxattr(fd, key, value, e.name)
        if set_mode:
            os.utime(fd, ns=self._times(e))

    def _meta_path(self, parent: int, name: str, e: ts.Entry, *, set_mode: bool) -> None:
        if self.same_owner:
            os.chown(name, e.uid, e.gid, dir_fd=parent, follow_symlinks=False)
        if set_mode:
            os.chmod(name, e.mode, dir_fd=parent, follow_symlinks=False)
        for key, value in e.xattrs.items():
            self._setxattr(f"/proc/self/fd/{parent}/{name}", key, value, e.name)
        os.utime(name, ns=self._times(e), dir_fd=parent, follow_symlinks=False)

    def _setxattr(self, where: int | str, key: str, value: bytes, entry: str) -> None:
        if key.startswith("trusted.overlay.") or key.startswith("user.overlay."):
            log.debug("ignoring overlay xattr %s on %r from the layer", key, entry)
            return
        try:
            if isinstance(where, int):
                os.setxattr(where, key, value)
            else:
                os.setxattr(where, key, value, follow_symlinks=False)
        except OSError as err:
            # user.* is refused (EPERM) on symlinks and device nodes by the kernel.
            privileged = key.startswith(("security.", "trusted.")) or isinstance(where, str)
            unsupported = err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
            if (privileged and err.errno in (errno.EPERM, errno.EACCES)) or unsupported:
                log.debug("cannot set xattr %s on %r: %s; skipped", key, entry, err.strerror)
                return
            raise

    def finish(self) -> None:
        """Directory modes and times, after every entry was written."""
        for parts, e in self.dirs.items():
            try:
                parent = self.tree.dir(parts[:-1], create=False) if parts else None
                if parts:
                    if parent is None:
                        continue  # removed by a later whiteout
                    fd = os.open(parts[-1], DIR_FLAGS, dir_fd=parent)
                else:
                    fd = os.dup(self.tree.root_fd)
            except (OSError, DockyardError):
                self.tree.release()
                continue  # replaced or removed by a later entry
            try:
                os.fchmod(fd, e.mode)
                os.utime(fd, ns=self._times(e))
            finally:
                os.close(fd)
                self.tree.release()
