"""A container's init started before the container exists: a *standby* (layer L3).

Why: on the start path, the runtime made the container's cgroup (mkdirs in ten hierarchies, the
cpuset and device rules) and cloned its init from the supervisor, a ~35 MB Python process (the
page tables, then hundreds of copy-on-write faults on both sides while they share pages): ~4 ms
on these machines. A supervisor forked ahead (`container.prefork`) knows the ID of the container
it will run before that container exists, so it does both while it waits (`make_ready`): the
cgroup `/dockyard/<id>` is made with a typical container's resources, and a process is cloned
into it in a new PID namespace, which at once executes a fresh interpreter (`main`): it shares no
page with the supervisor (a forked standby did, and the supervisor's own writes then cost more
than the clone saved), loads the init's code, compiles the typical seccomp profile, says
`standby` and waits for its job. It does that at its supervisor's low priority (a spare's nice
10: a command arriving meanwhile comes first) and takes the normal one with its job.

When the runtime creates that container (`take`) and the spec asks for exactly what the standby
is — the ID, the cgroup path and resources, new mount and PID namespaces, no user namespace,
nothing to join but network, IPC and UTS — and the standby is ready, the job travels to it: the
spec, the bundle, its descriptors (stdio, namespaces to join, exec FIFO, console socket). It goes
on as a freshly cloned stage 2 would (`launch`): a new mount namespace (unshared now, so it holds
the rootfs mounted since), the namespaces joined, stdio, the process prepared, the `InitChild`.
Anything else, and the standby is dropped first (killed, reaped, its cgroup removed) and the
container is created the usual way.

Invariants: the standby is in its cgroup (every hierarchy) before it runs any code of ours, and
non-dumpable (PR_SET_DUMPABLE, set again first thing after execve) before it joins anything; it
dies with its parent (PR_SET_PDEATHSIG, kept across execve, and EOF on its job socket); at most
one exists per process, handed out once. A marker `<runtime root>/@standby/<id>` (pid, start
time, cgroup path) lives while the standby is unclaimed, so one whose supervisor was killed
leaves nothing for long: the next `make_ready` in that root removes the cgroup of every marker
whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

from dockyard.linux.kernel import (
    CLONE_NEWCGROUP,
    CLONE_NEWNS,
    CLONE_NEWPID,
    NAMESPACES,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    RealKernel,
)
from dockyard.linux.proc import alive, start_time
from dockyard.runtime import jsonio, launch, reap
from dockyard.runtime.channel import Channel, pair, receive_order, send_order

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from dockyard.linux.cgroups import Cgroup
    from dockyard.linux.kernel import Kernel

FLAGS = CLONE_NEWNS | CLONE_NEWPID  # what an engine container's init makes (the rest: joined)
# cloned with the PID namespace only: the mount namespace is unshared when the job comes, so
# that it copies the mounts as they are then (the container's rootfs among them)
_CLONE_FLAGS = CLONE_NEWPID
_SIGKILL = 9
_READY: list[Standby] = []
_MAIN = "from dockyard.runtime.standby import main; main()"


class Lost(Exception):
    """The standby could not be given its job (it died after `take`): nothing was started,
    and the caller creates the container the usual way."""


class Standby:
    """The parent's handle on a standby init (see the module docstring)."""

    def __init__(
        self, container_id: str, cg: Cgroup, resources: dict[str, Any], marker: str
    ) -> None:
        self.container_id = container_id
        self.cgroup = cg
        self.resources = resources
        self.marker = marker
        self.pid = 0
        self.chan: Channel | None = None
        self.sock: socket.socket | None = None
        self._ready = False

    def matches(self, container_id: str, spec: dict[str, Any]) -> bool:
        """Whether the container `spec` describes can be this standby, now."""
        from dockyard.runtime import spec as specmod

        return (
            container_id == self.container_id
            and specmod.cgroups_path(spec, container_id) == self.cgroup.path
            and specmod.new_namespace_flags(spec) & ~CLONE_NEWCGROUP == FLAGS
            and all(kind in launch.CHILD_JOINABLE for kind, _ in specmod.joined_namespaces(spec))
            and specmod.with_default_devices(spec) == self.resources
            and self.ready()
        )

    def ready(self) -> bool:
        """Alive, and done warming up (it said `standby`); never blocks."""
        if self.chan is None:
            return False
        try:
            if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
                return False
        except ChildProcessError:
            return False
        if not self._ready:
            import select

            if select.select([self.chan.rfd], [], [], 0)[0]:
                msg = self.chan.recv()
                self._ready = msg is not None and msg.get("t") == "standby"
        return self._ready

    def launch(
        self,
        spec: dict[str, Any],
        bundle: str,
        fifo_fd: int | None,
        console: socket.socket | None,
        stdio: tuple[int, int, int] | None,
        seccomp_cache: str | None,
    ) -> tuple[int, Channel]:
        """Hand the standby its job; returns (its pid, the parent end of its channel), as
        `launch.spawn` does. It is in its cgroup already: "cgroup" is sent at once. The
        standby prepares the process itself (`process.Prepared`, with `seccomp_cache`).
        Raises `Lost` when the job cannot be sent (the caller drops it and goes on)."""
        from dockyard.runtime import spec as specmod

        assert self.sock is not None and self.chan is not None
        join = specmod.joined_namespaces(spec)
        ns_fds = [os.open(path, os.O_RDONLY | os.O_CLOEXEC) for _, path in join]
        try:
            fds = [*(stdio or (0, 1, 2)), *ns_fds]
            if fifo_fd is not None:
                fds.append(fifo_fd)
            if console is not None:
                fds.append(console.fileno())
            order = {
                "spec": spec, "bundle": bundle, "id": self.container_id,
                "join": [kind for kind, _ in join], "fifo": fifo_fd is not None,
                "console": console is not None, "seccomp_cache": seccomp_cache,
            }  # fmt: skip
            try:
                send_order(self.sock, order, fds)
            except OSError as e:
                raise Lost(f"standby init {self.pid}: {e.strerror}") from None
        finally:
            launch.close_all(ns_fds)
            self.sock.close()
            self.sock = None
        chan, self.chan = self.chan, None
        try:
            chan.send("cgroup")
        except BaseException:
            chan.close()
            reap.kill_quietly(self.pid)
            reap.reap_if_child(self.pid)
            raise
        return self.pid, chan

    def drop(self) -> None:
        """Kill the standby (unless it was launched), remove its cgroup and its marker."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.chan is not None:
            self.chan.close()
            self.chan = None
            if self.pid > 0:
                reap.kill_quietly(self.pid)
                reap.reap_if_child(self.pid)
            with contextlib.suppress(Exception):
                self.cgroup.destroy()
        with contextlib.suppress(OSError):
            os.unlink(self.marker)


def make_ready(
    runtime_root: str,
    seccomp_cache: str,
    container_id: str,
    spec: dict[str, Any],
    kernel: Kernel | None = None,
) -> Standby | None:
    """In a supervisor forked ahead: start the standby init of container `container_id`,
    whose spec will look like `spec` (a typical container's: its cgroup path, resources and
    seccomp profile). None when it cannot be made (no error: the container is then created the
    usual way). Returns at once; the standby warms up on its own."""
    from dockyard.linux.cgroups import open_cgroup
    from dockyard.runtime import spec as specmod

    drop()
    markers = os.path.join(runtime_root, "@standby")
    sweep(markers)
    k = kernel or RealKernel()
    cg = open_cgroup(specmod.cgroups_path(spec, container_id))
    resources = specmod.with_default_devices(spec)
    sb = Standby(container_id, cg, resources, os.path.join(markers, container_id))
    parent, child = pair()
    sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    keep = (child_sock.fileno(), child.rfd, child.wfd)
    argv = [sys.executable, "-S", "-c", _MAIN, *map(str, keep), cg.path, seccomp_cache]
    env = {"PYTHONPATH": _package_parent(), "PATH": os.defpath}
    fds = None
    try:
        os.makedirs(markers, mode=0o700, exist_ok=True)
        cg.create(resources)
        fds = launch.self_join_fds(cg, _CLONE_FLAGS, [])
        preload = getattr(k, "preload", None)
        if preload is not None:
            preload()
        pid, joined = launch.clone_stage2(k, _CLONE_FLAGS, fds)
        if pid == 0:
            _exec(k, fds, joined, keep, argv, env)
        sb.pid = pid
        sb.chan, sb.sock = parent, sock
        if not joined:
            cg.add(pid)  # the slow way, but off the start path
        warm = jsonio.dumps(spec).encode()
        sock.sendall(len(warm).to_bytes(4, "big") + warm)
        with open(sb.marker, "w") as f:
            f.write(f"{pid} {start_time(pid) or 0} {cg.path}\n")
    except BaseException as e:  # a signal's SystemExit too: nothing may be left behind
        sb.chan, sb.sock = parent, sock
        sb.drop()
        if not isinstance(e, Exception):
            raise
        return None
    finally:
        child.close()
        child_sock.close()
        if fds is not None:
            launch.close_all(fds[0] + [fds[1]])
    _READY.append(sb)
    return sb


def take(container_id: str, spec: dict[str, Any]) -> Standby | None:
    """The standby for this container, if there is one and it fits `spec` now; any other is
    dropped (its cgroup may have the container's path: gone before the runtime makes it)."""
    while _READY:
        sb = _READY.pop()
        if sb.matches(container_id, spec):
            with contextlib.suppress(OSError):
                os.unlink(sb.marker)
            return sb
        sb.drop()
    return None


def drop() -> None:
    """Drop the standby this process holds, if any."""
    while _READY:
        _READY.pop().drop()


def sweep(markers: str) -> None:
    """Remove the cgroup and marker of every standby whose process is gone (its supervisor
    was killed before it could drop it)."""
    from dockyard.linux.cgroups import open_cgroup

    try:
        names = os.listdir(markers)
    except OSError:
        return
    for name in names:
        path = os.path.join(markers, name)
        with contextlib.suppress(Exception):  # a marker we cannot read goes all the same
            with open(path) as f:
                pid_s, started, cgroup_path = f.read().split()
            if alive(int(pid_s), int(started) or None):
                continue
            open_cgroup(cgroup_path).destroy()
        with contextlib.suppress(OSError):
            os.unlink(path)


def _package_parent() -> str:
    import dockyard

    return os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))


def _exec(
    k: Kernel,
    fds: launch.SelfJoin | None,
    joined: bool,
    keep: tuple[int, ...],
    argv: list[str],
    env: dict[str, str],
) -> NoReturn:
    """In the clone: into the cgroup, tied to the parent's life, then the fresh interpreter."""
    try:
        launch.enter_cgroup(fds, joined)
        k.prctl(PR_SET_DUMPABLE, 0)
        k.prctl(PR_SET_PDEATHSIG, _SIGKILL)
        low = 3  # nothing of the supervisor's but `keep` goes on (pipes, databases)
        for fd in sorted(keep):
            os.closerange(low, fd)
            os.set_inheritable(fd, True)
            low = fd + 1
        os.closerange(low, 1 << 20)
        os.execve(argv[0], argv, env)
    finally:
        os._exit(127)


# -- the standby's own interpreter ----------------------------------------------------------


def main() -> NoReturn:
    """The standby: `python -S -c ... SOCK CHAN_R CHAN_W CGROUP_PATH SECCOMP_CACHE`."""
    k = RealKernel()
    k.prctl(PR_SET_DUMPABLE, 0)  # execve made us dumpable again
    sock_fd, rfd, wfd = (int(a) for a in sys.argv[1:4])
    cgroup_path, seccomp_cache = sys.argv[4], sys.argv[5]
    for fd in (sock_fd, rfd, wfd):
        os.set_inheritable(fd, False)
    chan = Channel(rfd, wfd)
    code = 0
    try:
        sock = socket.socket(fileno=sock_fd)
        cg, warm = _warm_up(k, sock, cgroup_path, seccomp_cache)
        if warm:
            chan.send("standby")
            order, got = receive_order(sock)
            if order is not None:
                _become(k, order, got, chan, cg)
    except BaseException as e:
        code = 1
        with contextlib.suppress(BaseException):
            launch.report(chan, e)
    os._exit(code)


def _warm_up(
    k: Kernel, sock: socket.socket, cgroup_path: str, seccomp_cache: str
) -> tuple[Cgroup, bool]:
    """Import what the init needs (as `dockyard-runtime run` does: the init imports anything
    else it needs before pivot_root), load libc, open the cgroup, prepare the typical process
    (its seccomp program, compiled or read from the cache, stays in memory). False when the
    parent went away first."""
    import dockyard.linux.pty
    import dockyard.linux.seccomp
    import dockyard.runtime.hooks
    import dockyard.runtime.init
    import dockyard.runtime.rootfs  # noqa: F401 - what `dockyard-runtime run` loads, no more
    from dockyard.linux.caps import last_cap
    from dockyard.linux.cgroups import open_cgroup
    from dockyard.runtime import process

    preload = getattr(k, "preload", None)
    if preload is not None:
        preload()
    cg = open_cgroup(cgroup_path)
    head = _read_exactly(sock, 4)
    if len(head) < 4:
        return cg, False
    spec = jsonio.loads(_read_exactly(sock, int.from_bytes(head, "big")).decode())
    with contextlib.suppress(Exception):
        process.Prepared(spec["process"], last_cap(), spec.get("linux") or {}, seccomp_cache)
    return cg, True


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _become(
    k: Kernel, order: dict[str, Any], fds: list[int], chan: Channel, cg: Cgroup
) -> NoReturn:
    """Stage 2 of the container in `order` (see the module docstring)."""
    from dockyard.runtime.init import init_for

    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)  # warmed up niced (a spare's), runs at normal
    spec = order["spec"]
    for fd in fds:
        os.set_inheritable(fd, False)  # recvmsg gave them without close-on-exec
    stdio, rest = fds[:3], fds[3:]
    ns_fds, rest = rest[: len(order["join"])], rest[len(order["join"]) :]
    fifo_fd = rest.pop(0) if order["fifo"] else None
    console = socket.socket(fileno=rest.pop(0)) if order["console"] else None
    k.unshare(CLONE_NEWNS)  # a copy of the mounts as they are now: the rootfs is mounted
    for fd, kind in zip(ns_fds, order["join"], strict=True):
        k.setns(fd, NAMESPACES[kind][0])
        os.close(fd)
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    for fd in set(stdio):
        if fd > 2:
            os.close(fd)
    child = init_for(
        spec, order["bundle"], order["id"], fifo_fd, cg, console, order["seccomp_cache"]
    )
    launch.stage2(k, launch.Job(child, FLAGS, [], cg), chan)
