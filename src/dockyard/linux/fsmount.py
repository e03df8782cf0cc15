"""Perform mount descriptions on the host (layer L1): the one place the engine mounts a
container's root filesystem or a volume outside a container's own mount namespace.

A description is (type, source, options, cwd) as `snapshot.mount.Mount` carries it. When `cwd`
is set, relative overlay `lowerdir=` paths are relative to it, so the mount runs in a forked
child that changes directory first: the calling process's working directory never changes
(it may be a multi-threaded engine).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from dockyard.linux import kernel as k
from dockyard.linux.mountopts import parse


def mount(
    fstype: str, source: str, target: str, options: Sequence[str], cwd: str | None = None
) -> None:
    kern = k.RealKernel()
    opts = parse(list(options), fstype)
    flags = opts.flags
    if opts.bind:
        flags |= k.MS_BIND | (k.MS_REC if opts.recursive else 0)
    if cwd is None:
        _do(kern, fstype, source, target, flags, opts.data)
    else:
        _in_dir(cwd, lambda: _do(kern, fstype, source, target, flags, opts.data))
    if opts.bind and flags & k.MS_RDONLY:
        kern.mount("", target, "", k.MS_REMOUNT | k.MS_BIND | k.MS_RDONLY, "")
    for p in opts.propagation:
        kern.mount("", target, "", p, "")


def _do(kern: k.RealKernel, fstype: str, source: str, target: str, flags: int, data: str) -> None:
    kern.mount(source, target, "" if flags & k.MS_BIND else fstype, flags, data)


def _in_dir(cwd: str, fn: object) -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: chdir, mount, report errno through the pipe
        code = 0
        try:
            os.close(r)
            os.chdir(cwd)
            fn()  # type: ignore[operator]
        except OSError as e:
            code = e.errno or 1
        except BaseException:
            code = 255
        with contextlib.suppress(OSError):
            os.write(w, code.to_bytes(2, "little"))
        os._exit(0)
    os.close(w)
    data = os.read(r, 2)
    os.close(r)
    os.waitpid(pid, 0)
    code = int.from_bytes(data, "little") if len(data) == 2 else 255
    if code:
        raise OSError(code, f"mount in {cwd}: {os.strerror(code) if code != 255 else 'failed'}")


def unmount(target: str, *, detach: bool = True) -> bool:
    """Unmount `target` (lazily by default); False when it was not mounted."""
    try:
        k.RealKernel().umount2(target, k.MNT_DETACH if detach else 0)
    except OSError as e:
        if e.errno in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            return False
        raise
    return True


def is_mounted(target: str) -> bool:
    t = os.path.realpath(target)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4].replace("\\040", " ") == t:
                return True
    return False
