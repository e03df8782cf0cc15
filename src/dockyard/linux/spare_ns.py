"""Namespaces made before a container needs them (layer L1).

Why: creating a network, IPC and UTS namespace costs the kernel ~2 ms on these machines (a new
netns alone ~1 ms, and `lo` must be brought up in it), and the container's clone pays it on the
start path. A supervisor forked ahead of its command (`container.prefork`) makes them while it
waits (`make_ready`); the container's init then *joins* them by path (`/proc/<supervisor>/fd/<n>`,
which the runtime opens before the clone) instead of creating them. A joined namespace is the
same as a new one: nobody else has ever been in it, `lo` is up as the runtime would have set it,
and the init sets the container's hostname in it as usual.

How: a short-lived child unshares the three namespaces and brings `lo` up; we open its
`/proc/<pid>/ns/*` files (which keep the namespaces alive) and let it exit. Our own namespaces
are never touched, so no failure here can leave the supervisor in the wrong namespace; any
failure simply means "none made" and the runtime creates them as before.

Invariants: the descriptors are close-on-exec and are used at most once (`take` hands them out
once); the supervisor closes them once the container's init has joined (or failed), so the
namespaces live exactly as long as the container. Not used with a user namespace (the init could
not join namespaces owned by the host's).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from dockyard.linux.kernel import NAMESPACES, RealKernel

KINDS = ("network", "ipc", "uts")  # what the engine's containers always get new (network: none)

_READY: list[Premade] = []


class Premade:
    """Open namespace files, by OCI namespace type."""

    def __init__(self, fds: dict[str, int]) -> None:
        self.fds = fds

    def apply(self, spec: dict[str, Any]) -> list[str]:
        """Point the spec's *new* namespaces of our kinds at ours; the kinds used."""
        linux = spec.get("linux") or {}
        entries = linux.get("namespaces") or []
        if any(e.get("type") == "user" for e in entries):
            return []
        used = []
        for e in entries:
            kind = e.get("type")
            if kind in self.fds and not e.get("path"):
                e["path"] = f"/proc/{os.getpid()}/fd/{self.fds[kind]}"
                used.append(kind)
        return used

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = {}


def make() -> Premade | None:
    """A network, IPC and UTS namespace, new, with `lo` up; None if the kernel says no."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: unshare, lo up, say so, wait until the files are open
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            from dockyard.linux import loopback

            flags = 0
            for kind in KINDS:
                flags |= NAMESPACES[kind][0]
            RealKernel().unshare(flags)
            loopback.up()
            os.write(ready_w, b"1")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    fds: dict[str, int] = {}
    try:
        if os.read(ready_r, 1) == b"1":
            for kind in KINDS:
                path = f"/proc/{pid}/ns/{NAMESPACES[kind][1]}"
                fds[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        for fd in fds.values():
            os.close(fd)
        fds = {}
    finally:
        os.close(ready_r)
        os.close(done_w)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return Premade(fds) if len(fds) == len(KINDS) else None


def make_ready() -> None:
    """In a supervisor forked ahead: make the namespaces for the container it will run."""
    with contextlib.suppress(OSError):
        made = make()
        if made is not None:
            _READY.append(made)


def take() -> Premade | None:
    return _READY.pop() if _READY else None
