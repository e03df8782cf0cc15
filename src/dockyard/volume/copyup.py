"""Copy an image's directory into a new volume, and measure a volume (host filesystem only).

Responsibility: Docker's copy-up — when an empty volume is first mounted over a directory the
image has, the directory's content is copied into the volume, keeping modes, ownership,
timestamps, symlinks, hard links, device nodes, FIFOs and extended attributes (file
capabilities included).

Invariants (safety): the source tree is walked through directory file descriptors opened with
O_NOFOLLOW and every entry is reached relative to its parent's descriptor, so no symlink in
the image — even one swapped in during the walk — is ever followed: symlinks are copied as
symlinks. `resolve_in_rootfs` resolves a container path the way the container will see it,
with every symlink kept inside the rootfs (`..` stops at its top, absolute targets restart
at it). Sockets are skipped (they are meaningless without their process).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def resolve_in_rootfs(rootfs: Path, path: str) -> Path | None:
    """Host path of container path `path` inside `rootfs`, symlinks resolved in scope.

    None when it does not exist. Raises InvalidArgument on a symlink loop.
    """
    from dockyard.linux.rootpath import secure_join

    resolved = secure_join(str(rootfs), path)
    return Path(resolved) if os.path.lexists(resolved) else None


def is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def copy_up(src: Path, dst: Path) -> bool:
    """Copy the content of directory `src` into the empty directory `dst`, then give `dst` the
    owner, mode, xattrs and times of `src`. False (nothing copied) when `src` is missing, is
    not a directory, or is a symlink."""
    try:
        sfd = os.open(src, _DIR)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return False
        raise
    try:
        dfd = os.open(dst, _DIR)
        try:
            _Copier(dfd).copy_dir(sfd, dfd, "")
            _apply_meta(dfd, sfd, os.fstat(sfd))
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
    return True


class _Copier:
    """One copy: remembers the first copy of each multiply-linked inode to link the rest."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.links: dict[tuple[int, int], str] = {}

    def copy_dir(self, sfd: int, dfd: int, rel: str) -> None:
        with os.scandir(sfd) as it:
            names = sorted(e.name for e in it)
        for name in names:
            st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
            relname = f"{rel}/{name}" if rel else name
            if stat.S_ISSOCK(st.st_mode):
                continue  # meaningless without its process
            if stat.S_ISDIR(st.st_mode):
                self._copy_subdir(sfd, dfd, name, st, relname)
            elif not self._link_again(dfd, name, st, relname):
                self._copy_entry(sfd, dfd, name, st)

    def _copy_subdir(self, sfd: int, dfd: int, name: str, st: os.stat_result, rel: str) -> None:
        os.mkdir(name, 0o700, dir_fd=dfd)
        child_s = os.open(name, _DIR, dir_fd=sfd)
        try:
            child_d = os.open(name, _DIR, dir_fd=dfd)
            try:
                self.copy_dir(child_s, child_d, rel)
                _apply_meta(child_d, child_s, st)
            finally:
                os.close(child_d)
        finally:
            os.close(child_s)

    def _link_again(self, dfd: int, name: str, st: os.stat_result, rel: str) -> bool:
        """Hard-link `name` to an earlier copy of the same inode; False for a first sight."""
        if st.st_nlink < 2:
            return False
        key = (st.st_dev, st.st_ino)
        first = self.links.get(key)
        if first is None:
            self.links[key] = rel
            return False
        os.link(first, name, src_dir_fd=self.root_fd, dst_dir_fd=dfd, follow_symlinks=False)
        return True

    def _copy_entry(self, sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            _copy_file(sfd, dfd, name, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
            _apply_link_meta(sfd, dfd, name, st)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            # a node we just made in our own new tree: naming it again reaches the same node
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dfd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dfd)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
        # sockets: skipped


def _copy_file(sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        dst = os.open(name, flags, 0o600, dir_fd=dfd)
        try:
            _copy_bytes(src, dst, st.st_size)
            _apply_meta(dst, src, st)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_bytes(src: int, dst: int, size: int) -> None:
    left = size
    while left > 0:
        try:
            n = os.sendfile(dst, src, None, min(left, 1 << 30))
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            n = _copy_plain(src, dst)
        if n == 0:
            break  # the file shrank while we copied it
        left -= n
    # a file that grew while we copied it: take the rest too
    while _copy_plain(src, dst):
        pass


def _copy_plain(src: int, dst: int) -> int:
    data = os.read(src, 1 << 20)
    view = memoryview(data)
    while view:
        view = view[os.write(dst, view) :]
    return len(data)


def _apply_meta(fd: int, src_fd: int, st: os.stat_result) -> None:
    """Owner, then mode (chown clears set-id bits), then xattrs (chown drops file
    capabilities), then times (anything else would change them)."""
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    _copy_xattrs(src_fd, fd)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _apply_link_meta(sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    _copy_xattrs(f"/proc/self/fd/{sfd}/{name}", f"/proc/self/fd/{dfd}/{name}", follow=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)


def _copy_xattrs(src: int | str, dst: int | str, follow: bool = True) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return
        raise
    for xname in names:
        # an attribute the target filesystem or our privileges refuse is left behind, as
        # Docker's copy does for security.selinux and the like
        with contextlib.suppress(OSError):
            value = os.getxattr(src, xname, follow_symlinks=follow)
            os.setxattr(dst, xname, value, follow_symlinks=follow)


def tree_size(path: Path) -> int:
    """Bytes in the files under `path`, each inode once, directories not counted (Docker's
    `directory.Size`); symlinks are counted by their own size and never followed."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or st.st_size == 0:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_size
    return total
