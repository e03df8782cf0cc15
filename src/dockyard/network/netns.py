"""Persistent network namespaces, bind-mounted under a run directory we own.

Responsibility: create a fresh network namespace that outlives any process (so the engine can
configure it before the container's first process starts; the runtime joins it by path, as an
OCI `linux.namespaces[{type: network, path: ...}]` entry), tell whether a path still holds one,
and delete it.

How: a short-lived thread calls unshare(CLONE_NEWNET) — the network namespace is per thread, so
the rest of the process is unaffected — and bind-mounts `/proc/thread-self/ns/net` onto the
target file; the thread then exits and the mount keeps the namespace alive. No process is
started. Deleting is a lazy unmount plus unlink; the kernel frees the namespace (and destroys the
veth ends inside it) when the last user goes.

Invariants:
- namespaces live only under the run dir given (default `/run/dockyard/netns`), never in the
  shared `/run/netns` of `ip netns`;
- `create` either returns a path holding a namespace or leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from dockyard.errors import AlreadyExists, InvalidArgument

DEFAULT_RUN_DIR = Path("/run/dockyard/netns")
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MNT_DETACH = 2


def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def is_netns(path: Path) -> bool:
    """True if `path` is a bind mount of a network namespace (nsfs)."""
    try:
        return os.stat(path).st_dev == _nsfs_dev() and os.path.ismount(path)
    except OSError:
        return False


def _make_in_thread(path: Path) -> None:
    from dockyard.linux.kernel import RealKernel

    errors: list[BaseException] = []

    def work() -> None:
        try:
            k = RealKernel()
            k.unshare(_CLONE_NEWNET)
            k.mount(
                f"/proc/self/task/{threading.get_native_id()}/ns/net", str(path), "", _MS_BIND, ""
            )
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)

    t = threading.Thread(target=work, name="dockyard-netns")
    t.start()
    t.join()
    if errors:
        raise errors[0]


def create(path: Path) -> Path:
    """Create a new network namespace held by a bind mount at `path`."""
    if path.exists():
        raise AlreadyExists(f"network namespace {path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        _make_in_thread(path)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return path


def delete(path: Path) -> None:
    """Unmount and remove a namespace file; a missing one is not an error."""
    from dockyard.linux.kernel import RealKernel

    with contextlib.suppress(OSError):
        RealKernel().umount2(str(path), _MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def path_for(run_dir: Path, name: str) -> Path:
    """`run_dir/name`, with `name` checked to be one path component."""
    if not name or "/" in name or name in (".", ".."):
        raise InvalidArgument(f"invalid network namespace name {name!r}")
    return run_dir / name
