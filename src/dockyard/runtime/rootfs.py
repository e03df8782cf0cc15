"""The container's file system view: mounts, /dev, pivot_root, masked and read-only paths.

Responsibility: run inside the container's new mount namespace (in the init process, before
exec) and turn `root`, `mounts`, `linux.devices`, `maskedPaths`, `readonlyPaths` and
`rootfsPropagation` into mount(2) calls through a `Kernel`, in the order runc uses:
propagation of "/", bind of the rootfs on itself, spec mounts in order, default devices and
/dev symlinks, pivot_root, then read-only and masked paths and the read-only root.

Invariants: every destination is resolved inside the rootfs with symlinks evaluated relative
to it (`secure_join`), so a symlink in an image can never send a mount to the host; the host's
mounts are never changed (the first call makes "/" a slave in our namespace); missing masked or
read-only paths are skipped, as runc does.
"""

from __future__ import annotations

import os
import stat

from dockyard.errors import InvalidArgument
from dockyard.linux import kernel as K
from dockyard.linux import mountopts
from dockyard.linux.rootpath import secure_join

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any

    from dockyard.linux.kernel import Kernel

DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
DEV_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)


def prepare(
    k: Kernel,
    spec: dict[str, Any],
    rootfs: str,
    bundle: str,
    cgroup_sources: dict[str, str] | None,
    userns: bool,
) -> None:
    """Everything before pivot_root: propagation, rootfs bind, mounts, devices."""
    k.mount("", "/", "", K.MS_SLAVE | K.MS_REC, "")
    k.mount(rootfs, rootfs, "", K.MS_BIND | K.MS_REC, "")
    k.mount("", rootfs, "", K.MS_PRIVATE, "")
    dev_bound = False
    for m in spec.get("mounts") or []:
        mount_one(k, m, rootfs, bundle, cgroup_sources, userns)
        if (
            m.get("destination") == "/dev"
            and mountopts.parse(m.get("options"), m.get("type", "")).bind
        ):
            dev_bound = True
    if not dev_bound:
        make_devices(k, rootfs, userns, (spec.get("linux") or {}).get("devices") or [])
        make_dev_symlinks(rootfs)


def mount_one(
    k: Kernel,
    m: dict[str, Any],
    rootfs: str,
    bundle: str,
    cgroup_sources: dict[str, str] | None,
    userns: bool,
) -> None:
    dest_rel = m.get("destination", "")
    if not dest_rel.startswith("/"):
        raise InvalidArgument(f"mount destination {dest_rel!r} must be absolute")
    dest = secure_join(rootfs, dest_rel)
    fstype = m.get("type") or ""
    source = m.get("source") or ""
    opts = mountopts.parse(m.get("options"), fstype)
    if opts.bind:
        if not os.path.isabs(source):
            source = os.path.join(bundle, source)
        _make_target(dest, file=not os.path.isdir(source))
        k.mount(source, dest, "", K.MS_BIND | (K.MS_REC if opts.recursive else 0), "")
        if opts.flags:
            locked = mountopts.statvfs_flags(os.statvfs(dest).f_flag) if userns else 0
            k.mount("", dest, "", K.MS_BIND | K.MS_REMOUNT | opts.flags | locked, "")
    elif fstype == "cgroup" and cgroup_sources is not None:
        _mount_cgroup_v1(k, dest, opts, cgroup_sources)
    else:
        _make_target(dest, file=False)
        k.mount(source, dest, fstype, opts.flags, opts.data)
    for prop in opts.propagation:
        k.mount("", dest, "", prop, "")


def _mount_cgroup_v1(
    k: Kernel, dest: str, opts: mountopts.MountOptions, sources: dict[str, str]
) -> None:
    """What runc mounts on a v1/hybrid host: a tmpfs with one bind per hierarchy."""
    v1 = {name: d for name, d in sources.items() if name != "unified"}
    _make_target(dest, file=False)
    if not v1:  # pure v2: the container's own cgroup directory
        k.mount(str(sources["unified"]), dest, "", K.MS_BIND | K.MS_REC, "")
        if opts.flags:
            k.mount("", dest, "", K.MS_BIND | K.MS_REMOUNT | opts.flags, "")
        return
    k.mount("tmpfs", dest, "tmpfs", opts.flags & ~K.MS_RDONLY, "mode=755")
    for name, host_dir in sorted(v1.items()):
        sub = os.path.join(dest, name)
        os.makedirs(sub, exist_ok=True)
        k.mount(str(host_dir), sub, "", K.MS_BIND | K.MS_REC, "")
        k.mount("", sub, "", K.MS_BIND | K.MS_REMOUNT | opts.flags, "")


def _make_target(path: str, file: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if file:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    else:
        os.makedirs(path, exist_ok=True)


def make_devices(k: Kernel, rootfs: str, userns: bool, devices: list[dict[str, Any]]) -> None:
    """The default devices of the spec plus `linux.devices` (bind mounts in a user ns)."""
    wanted: dict[str, dict[str, Any]] = {
        path: {
            "path": path,
            "type": "c",
            "major": ma,
            "minor": mi,
            "fileMode": 0o666,
            "uid": 0,
            "gid": 0,
        }
        for path, ma, mi in DEFAULT_DEVICES
    }
    for dev in devices:
        wanted[dev["path"]] = dev
    for dev in wanted.values():
        _make_device(k, rootfs, dev, userns)


def _make_device(k: Kernel, rootfs: str, dev: dict[str, Any], userns: bool) -> None:
    dest = secure_join(rootfs, dev["path"])
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if userns:
        _make_target(dest, file=True)
        k.mount(dev["path"], dest, "", K.MS_BIND, "")
        return
    kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}.get(
        dev.get("type", "c")
    )
    if kind is None:
        raise InvalidArgument(f"device {dev['path']}: unknown type {dev.get('type')!r}")
    mode = dev.get("fileMode", 0o666) & 0o7777
    if os.path.lexists(dest):
        os.unlink(dest)
    device = os.makedev(dev.get("major", 0), dev.get("minor", 0))
    k.mknod(dest, kind | mode, device, dev.get("uid", 0), dev.get("gid", 0))


def make_dev_symlinks(rootfs: str) -> None:
    for target, link in DEV_SYMLINKS:
        path = secure_join(rootfs, link)
        if not os.path.lexists(path) and os.path.isdir(os.path.dirname(path)):
            os.symlink(target, path)


def make_console(k: Kernel, rootfs: str, slave: str) -> None:
    """Bind the pty slave over /dev/console (after pivot_root `rootfs` is "/")."""
    dest = secure_join(rootfs, "/dev/console")
    _make_target(dest, file=True)
    k.mount(slave, dest, "", K.MS_BIND, "")


def pivot(k: Kernel, rootfs: str, propagation: str | None) -> None:
    """pivot_root(".", ".") and detach the old root, as runc does (no put_old directory)."""
    os.chdir(rootfs)
    k.pivot_root(".", ".")
    k.mount("", ".", "", K.MS_SLAVE | K.MS_REC, "")
    k.umount2(".", K.MNT_DETACH)
    os.chdir("/")
    if propagation:
        flag = mountopts.PROPAGATION.get(propagation)
        if flag is None:
            raise InvalidArgument(f"rootfsPropagation {propagation!r} is not a propagation mode")
        k.mount("", "/", "", flag, "")


def readonly_path(k: Kernel, path: str) -> None:
    if not os.path.exists(path):
        return
    k.mount(path, path, "", K.MS_BIND | K.MS_REC, "")
    flags = mountopts.statvfs_flags(os.statvfs(path).f_flag)
    k.mount(path, path, "", K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY | K.MS_REC | flags, "")


def mask_path(k: Kernel, path: str) -> None:
    """/dev/null over a file, an empty read-only tmpfs over a directory."""
    if not os.path.exists(path):
        return
    if os.path.isdir(path):
        k.mount("tmpfs", path, "tmpfs", K.MS_RDONLY, "")
    else:
        k.mount("/dev/null", path, "", K.MS_BIND, "")


def readonly_root(k: Kernel) -> None:
    flags = mountopts.statvfs_flags(os.statvfs("/").f_flag)
    k.mount("", "/", "", K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY | flags, "")


def finish(k: Kernel, spec: dict[str, Any]) -> None:
    """After pivot_root: sysctls, read-only paths, masked paths, read-only root."""
    linux = spec.get("linux") or {}
    for key, value in (linux.get("sysctl") or {}).items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))
    for path in linux.get("readonlyPaths") or []:
        readonly_path(k, path)
    for path in linux.get("maskedPaths") or []:
        mask_path(k, path)
    if (spec.get("root") or {}).get("readonly"):
        readonly_root(k)
