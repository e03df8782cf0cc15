"""Namespaces made before a container needs them (layer L1).

Why: creating a network, IPC and UTS namespace costs the kernel ~2 ms on these machines (a new
netns alone ~1 ms, and `lo` must be brought up in it), and the container's clone pays it on the
start path. A supervisor forked ahead of its command (`container.prefork`) makes them while it
waits (`make_ready`); the container's init then *joins* them by path (`/proc/<supervisor>/fd/<n>`,
which the runtime opens before the clone) instead of creating them. A joined namespace is the
same as a new one: nobody else has ever been in it, `lo` is up as the runtime would have set it,
and the init sets the container's hostname in it as usual.

How: the supervisor unshares the three namespaces, opens its `/proc/self/ns/*` files (which
keep them alive), brings `lo` up, and returns to its own namespaces by `setns` on descriptors it
opened first (root re-entering the namespaces it came from: this does not fail). It is still
single-threaded then. Any failure before that simply means "none made" and the runtime creates
them as before; a failure to return (never seen) raises `Stranded`, which nothing suppresses:
the supervisor made ahead dies, and the command forks a fresh one (`prefork.take_ready`).

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


class Stranded(RuntimeError):
    """We could not return to our own namespaces (not an OSError: nobody may suppress it)."""


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
    """A network, IPC and UTS namespace, new, with `lo` up; None if the kernel says no.

    We step into them and back (unshare, open, setns to the namespaces we came from). Not a
    child doing it for us: a fork marks every page of this large process copy-on-write, and
    the supervisor would pay hundreds of page faults for that on the start path."""
    kernel = RealKernel()
    host = {k: os.open(_own(k), os.O_RDONLY | os.O_CLOEXEC) for k in KINDS}
    fds: dict[str, int] = {}
    try:
        flags = 0
        for kind in KINDS:
            flags |= NAMESPACES[kind][0]
        try:
            kernel.unshare(flags)
        except OSError:
            return None
        try:
            from dockyard.linux import loopback

            for kind in KINDS:
                fds[kind] = os.open(_own(kind), os.O_RDONLY | os.O_CLOEXEC)
            loopback.up()
        except OSError:
            for fd in fds.values():
                os.close(fd)
            fds = {}
        finally:
            try:  # back home (root re-entering namespaces it holds open: this does not fail)
                for kind in KINDS:
                    kernel.setns(host[kind], NAMESPACES[kind][0])
            except OSError as e:  # but if it did, this process must not go on
                raise Stranded(f"cannot return to our own namespaces: {e}") from e
    finally:
        for fd in host.values():
            os.close(fd)
    return Premade(fds) if fds else None


def _own(kind: str) -> str:
    return f"/proc/self/ns/{NAMESPACES[kind][1]}"


def make_ready() -> None:
    """In a supervisor forked ahead: make the namespaces for the container it will run."""
    with contextlib.suppress(OSError):
        made = make()
        if made is not None:
            _READY.append(made)


def take() -> Premade | None:
    return _READY.pop() if _READY else None
