"""The container side: what stage 2 does between clone and execve, for init and for exec.

Responsibility: `InitChild` sets up a new container (ids in a new user namespace, `lo` up in a
new network namespace, hostname,
rootfs and mounts, hooks in the container namespace, pivot_root, console, sysctls, masked and
read-only paths, process identity), reports `ready`, waits for `start` on the exec FIFO and
execs. `ExecChild` does the short version for a process joining a running container.

Invariants: nothing here returns — it execs or raises (the launcher reports the error on the
channel and exits); the host is visible only until pivot_root, so everything that needs host
files (libseccomp, the FIFO, the console socket) is opened before it; `ready` is sent only once
the executable has been found, so `create` fails cleanly for a missing program, as runc does.
"""

from __future__ import annotations

import os

from dockyard.linux.kernel import CLONE_NEWCGROUP, CLONE_NEWNET, CLONE_NEWUSER
from dockyard.runtime import hooks, process, rootfs
from dockyard.runtime import spec as specmod
from dockyard.runtime.channel import Channel

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any

    from dockyard.linux.kernel import Kernel

if TYPE_CHECKING:
    import socket

    from dockyard.linux.cgroups import Cgroup


_PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}  # PER_LINUX, PER_LINUX32


class InitChild:
    """Stage 2 of `create`: becomes the container's init."""

    def __init__(
        self,
        spec: dict[str, Any],
        bundle: str,
        container_id: str,
        prepared: process.Prepared,
        fifo_fd: int | None,
        cgroup_sources: dict[str, str] | None,
        console: socket.socket | None,
    ) -> None:
        self.spec, self.bundle, self.id = spec, bundle, container_id
        self.prepared = prepared
        self.fifo_fd = fifo_fd
        self.cgroup_sources = cgroup_sources
        self.console = console

    def __call__(self, k: Kernel, chan: Channel) -> None:
        spec = self.spec
        linux = spec.get("linux") or {}
        flags = specmod.new_namespace_flags(spec)
        userns = flags & CLONE_NEWUSER or specmod.has_namespace(spec, "user")
        if flags & CLONE_NEWUSER:
            chan.expect("go", defer=("cgroup",))  # the parent has written our id maps
            k.setresgid(0)
            k.setresuid(0)
        if flags & CLONE_NEWNET:  # as runc and crun: a new network namespace gets `lo` up
            from dockyard.linux import loopback

            loopback.up()
        if spec.get("hostname") and specmod.has_namespace(spec, "uts"):
            k.sethostname(spec["hostname"])
        if spec.get("domainname") and specmod.has_namespace(spec, "uts"):
            k.setdomainname(spec["domainname"])
        if linux.get("personality"):
            k.personality(_PERSONALITIES[linux["personality"].get("domain", "LINUX")])
        root = specmod.rootfs(spec, self.bundle)
        rootfs.prepare(k, spec, root, self.bundle, self.cgroup_sources, bool(userns))
        if hooks.hooks_of(spec, "prestart", "createRuntime"):
            chan.send("hooks")
            chan.expect("go", defer=("cgroup",))
        state = specmod.state_object(
            self.id, "creating", os.getpid(), self.bundle, spec.get("annotations")
        )
        hooks.run("createContainer", hooks.hooks_of(spec, "createContainer"), state)
        _preload(spec, self.console is not None)  # nothing can be imported after pivot_root
        fifo_fd = self.fifo_fd
        rootfs.pivot(k, root, linux.get("rootfsPropagation"))
        slave = self._console(k) if self.console is not None else None
        rootfs.finish(k, spec)
        proc = spec["process"]
        process.set_limits(k, proc)
        process.chdir(proc)
        chan.expect("cgroup")  # in the container's cgroup now: only from here on may we exec
        if flags & CLONE_NEWCGROUP:
            k.unshare(CLONE_NEWCGROUP)  # rooted at that cgroup; needs CAP_SYS_ADMIN still
        process.set_identity(k, self.prepared, userns_setgroups=True)
        env = process.environment(proc)
        path = process.resolve(proc["args"][0], env)
        if slave is not None:
            from dockyard.linux.pty import make_controlling

            make_controlling(slave)
        chan.send("ready")
        chan.close()
        if fifo_fd is not None:
            os.read(fifo_fd, 1)  # blocks until `start` writes
        state["status"] = "created"
        hooks.run("startContainer", hooks.hooks_of(spec, "startContainer"), state)
        process.exec_process(k, self.prepared, path, env)

    def _console(self, k: Kernel) -> str:
        from dockyard.linux.pty import open_pty, send_fd

        assert self.console is not None
        master, slave = open_pty()
        _console_size(master, self.spec["process"])
        rootfs.make_console(k, "/", slave)
        send_fd(self.console, master, slave)
        os.close(master)
        self.console.close()
        return slave


def init_for(
    spec: dict[str, Any],
    bundle: str,
    container_id: str,
    fifo_fd: int | None,
    cg: Cgroup,
    console: socket.socket | None,
    seccomp_cache: str | None,
) -> InitChild:
    """Stage 2 of `create` for `spec`: its process prepared now (while the host is visible),
    the cgroup's host directories if the spec mounts a cgroup filesystem."""
    from dockyard.linux.caps import last_cap

    linux = spec.get("linux") or {}
    prepared = process.Prepared(spec["process"], last_cap(), linux, seccomp_cache)
    mounts_cgroup = any(m.get("type") == "cgroup" for m in spec.get("mounts") or [])
    sources = cg.mount_sources() if mounts_cgroup else None
    return InitChild(spec, bundle, container_id, prepared, fifo_fd, sources, console)


def _console_size(master: int, proc: dict[str, Any]) -> None:
    """Apply `process.consoleSize` to a new pty, before the process can read it (as runc)."""
    size = proc.get("consoleSize")
    if size:
        from dockyard.linux.pty import set_winsize

        set_winsize(master, int(size.get("height", 0)), int(size.get("width", 0)))


def _preload(spec: dict[str, Any], console: bool) -> None:
    """Import, while the host is visible, what the steps after pivot_root will need."""
    if console:
        import dockyard.linux.pty  # noqa: F401
    if hooks.hooks_of(spec, "startContainer"):
        import subprocess  # noqa: F401
    from dockyard.linux import libc

    libc.load()  # RealKernel looks functions up lazily: the handle must exist before pivot_root


class ExecChild:
    """Stage 2 of `exec`: already in the container's namespaces and cgroup."""

    def __init__(
        self,
        proc: dict[str, Any],
        prepared: process.Prepared,
        console: socket.socket | None,
        userns: bool,
    ) -> None:
        self.proc, self.prepared, self.console, self.userns = proc, prepared, console, userns
        _preload({}, console is not None)  # stage 1 enters the container's mount namespace

    def __call__(self, k: Kernel, chan: Channel) -> None:
        chan.expect("go", defer=("cgroup",))
        slave = None
        if self.console is not None:
            from dockyard.linux.pty import open_pty, send_fd

            master, slave = open_pty()
            _console_size(master, self.proc)
            send_fd(self.console, master, slave)
            os.close(master)
            self.console.close()
        process.set_limits(k, self.proc)
        process.chdir(self.proc)
        process.set_identity(k, self.prepared, userns_setgroups=True)
        env = process.environment(self.proc)
        path = process.resolve(self.proc["args"][0], env)
        if slave is not None:
            from dockyard.linux.pty import make_controlling

            make_controlling(slave)
        chan.send("ready")
        chan.close()
        process.exec_process(k, self.prepared, path, env)
