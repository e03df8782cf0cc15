"""The native runtime: OCI lifecycle operations on containers started from this process.

Responsibility: `NativeRuntime` implements the `Runtime` protocol — create (init waits on the
exec FIFO), start (opens the FIFO), state, kill, delete, pause/resume (cgroup freezer), exec,
ps, list — keeping one state directory per container under `root`.

Invariants: the state record is written atomically and only after init reported `ready`; a
failed create removes the cgroup, the state directory and the init process; status is computed
from the kernel (is the recorded pid alive with its recorded start time, does the FIFO still
exist, is the cgroup frozen), never trusted from the file; `delete` leaves no cgroup, process or
state behind, and poststop hooks run after everything else is gone.
"""

from __future__ import annotations

import builtins
import os
import time

from dockyard.errors import Conflict, DockyardError, FailedPrecondition, InvalidArgument, NotFound
from dockyard.linux import attach_warmup
from dockyard.linux.kernel import CLONE_NEWNS, CLONE_NEWUSER, RealKernel
from dockyard.linux.proc import alive, start_time
from dockyard.runtime import hooks, launch, process, reap
from dockyard.runtime import spec as specmod
from dockyard.runtime.state import EXEC_FIFO, StateRoot, write_atomic

SIGTERM = 15
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.linux.kernel import Kernel

if TYPE_CHECKING:
    import socket

    from dockyard.linux.cgroups import Cgroup
    from dockyard.runtime.channel import Channel
    from dockyard.runtime.console import ConsoleServer
    from dockyard.runtime.standby import Standby

if TYPE_CHECKING:
    Spec = dict[str, Any]


class NativeRuntime:
    """Our own OCI runtime, used in-process (the engine) or by `dockyard-runtime`."""

    name = "dockyard"

    def __init__(self, root: str = "/run/dockyard-runtime", kernel: Kernel | None = None) -> None:
        self.states = StateRoot(root)
        # compiled seccomp programs; "@" keeps the name apart from every valid container id
        self.seccomp_cache = os.path.join(root, "@seccomp")
        self.kernel: Kernel = kernel or RealKernel()
        self._cgroups: dict[str, Cgroup] = {}

    def _cgroup(self, record: dict[str, Any]) -> Cgroup:
        """The container's cgroup (opened once per path: opening parses mountinfo)."""
        path = record["cgroupsPath"]
        if path not in self._cgroups:
            from dockyard.linux.cgroups import open_cgroup

            self._cgroups[path] = open_cgroup(path)
        return self._cgroups[path]

    # -- create / start -------------------------------------------------------------------

    def create(
        self,
        container_id: str,
        bundle: str,
        *,
        console_socket: str | None = None,
        pid_file: str | None = None,
        started: bool = False,
        stdio: tuple[int, int, int] | None = None,
        on_spawned: Callable[[int], None] | None = None,
    ) -> int:
        """Create the container; its init waits for `start` (unless `started`: then it waits
        on no FIFO, and poststart hooks run before this returns). Returns its pid.

        `stdio`: fds to become the init's stdin/stdout/stderr (default: ours, as runc).
        `on_spawned(pid)`: called while the init sets itself up (see `api.Runtime.create`)."""
        record = self._create(
            container_id, bundle, console_socket, pid_file, started, stdio, on_spawned=on_spawned
        )
        if started:
            self._poststart(record)
        pid: int = record["pid"]
        return pid

    def _create(
        self,
        container_id: str,
        bundle: str,
        console_socket: str | None,
        pid_file: str | None,
        started: bool,
        stdio: tuple[int, int, int] | None,
        loaded: Spec | None = None,
        on_spawned: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """`create`, returning the state record it saved (`loaded`: the bundle's spec, if the
        caller has read it already)."""
        bundle = os.path.realpath(bundle)
        spec = loaded if loaded is not None else specmod.load(bundle)
        if not specmod.new_namespace_flags(spec) & CLONE_NEWNS and not any(
            kind == "mount" for kind, _ in specmod.joined_namespaces(spec)
        ):
            raise InvalidArgument("the native runtime needs a mount namespace (linux.namespaces)")
        # an init cloned ahead for this very container (`runtime.standby`), if it fits
        sb = _standby_for(container_id, spec)
        flags, joined = specmod.new_namespace_flags(spec), specmod.joined_namespaces(spec)
        if sb is None and not launch.self_joins(flags, joined):
            attach_warmup.start()  # the init's cgroup.procs write: pre-pay its grace period
        statedir = self.states.create(container_id)
        cg: Cgroup | None = None
        pid = 0
        try:
            preload = getattr(self.kernel, "preload", None)
            if preload is not None:
                preload()  # libc before the cgroup's mkdir: mkdir, clone, attach close together
            cg = sb.cgroup if sb is not None else _open_cgroup(spec, container_id)
            self._cgroups[cg.path] = cg
            fifo = None if started else os.path.join(statedir, EXEC_FIFO)
            if fifo:
                os.mkfifo(fifo, 0o622)
            pid = self._spawn_init(
                spec, bundle, container_id, cg, fifo, console_socket, stdio, on_spawned, sb
            )
            record = {
                "id": container_id,
                "pid": pid,
                "starttime": start_time(pid),
                "bundle": bundle,
                "created": time.time(),
                "cgroupsPath": cg.path,
                "config": spec,
            }
            self.states.save(container_id, record)
        except BaseException:
            if pid > 0:
                reap.kill_quietly(pid)
                reap.wait_gone(pid, 5.0)
            if sb is not None:
                sb.drop()  # a standby never launched: killed and reaped
            if cg is not None:
                cg.destroy()
            self.states.remove(container_id)
            attach_warmup.finish()
            raise
        if pid_file:
            write_atomic(_abs(pid_file), f"{pid}".encode(), 0o644)
        return record

    def _spawn_init(
        self,
        spec: Spec,
        bundle: str,
        container_id: str,
        cg: Cgroup,
        fifo: str | None,
        console_socket: str | None,
        stdio: tuple[int, int, int] | None,
        on_spawned: Callable[[int], None] | None = None,
        sb: Standby | None = None,
    ) -> int:
        linux = spec.get("linux") or {}
        console = _connect(console_socket) if spec["process"].get("terminal") else None
        if spec["process"].get("terminal") and console is None:
            raise InvalidArgument("process.terminal is true: pass --console-socket")
        # Opened here, inherited by the init: a mapped root in a user namespace may not be
        # able to open the state directory. O_RDWR never blocks on a FIFO.
        fifo_fd = os.open(fifo, os.O_RDWR | os.O_CLOEXEC) if fifo else None
        flags = specmod.new_namespace_flags(spec)
        try:
            launched = None
            if sb is not None:  # cloned into its cgroup already; it prepares the process
                launched = _launch_standby(
                    sb, spec, bundle, fifo_fd, console, stdio, self.seccomp_cache
                )
            if launched is not None:
                pid, chan = launched
            else:
                from dockyard.runtime.init import init_for

                child = init_for(
                    spec, bundle, container_id, fifo_fd, cg, console, self.seccomp_cache
                )
                job = launch.Job(child, flags, specmod.joined_namespaces(spec), cg, stdio=stdio)
                # mkdir as late as possible: it waits for the kernel's cgroup_mutex, which a
                # concurrent first cgroup attach (ours warming up, or anyone's) holds for a
                # grace period; after it, the init's attach follows at once
                # (linux/attach_warmup.py).
                cg.create(specmod.with_default_devices(spec))
                pid, chan = launch.spawn(self.kernel, job)
        finally:
            if console is not None:
                console.close()
            if fifo_fd is not None:
                os.close(fifo_fd)
        try:
            if flags & CLONE_NEWUSER:
                launch.write_id_maps(pid, linux)
                chan.send("go")
            if on_spawned is not None:
                on_spawned(pid)  # the caller's work, while the init mounts and pivots
            msg = (
                chan.expect("ready")
                if not hooks.hooks_of(spec, "prestart", "createRuntime")
                else None
            )
            if msg is None:
                chan.expect("hooks")
                state = specmod.state_object(
                    container_id, "creating", pid, bundle, spec.get("annotations")
                )
                hooks.run("prestart", hooks.hooks_of(spec, "prestart"), state)
                hooks.run("createRuntime", hooks.hooks_of(spec, "createRuntime"), state)
                chan.send("go")
                chan.expect("ready")
        except BaseException:
            reap.kill_quietly(pid)
            reap.reap_if_child(pid)
            raise
        finally:
            chan.close()
        return pid

    def start(self, container_id: str) -> None:
        record = self._record(container_id)
        status = self._status(record)
        if status != "created":
            raise FailedPrecondition(f"cannot start a container that is {status}")
        fifo = os.path.join(self.states.dir(container_id), EXEC_FIFO)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise FailedPrecondition(f"container {container_id!r} init is gone: {e}") from None
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
        os.unlink(fifo)
        self._poststart(record)

    def _poststart(self, record: dict[str, Any]) -> None:
        if not hooks.hooks_of(record["config"], "poststart"):
            return
        hooks.run_reporting(
            "poststart", hooks.hooks_of(record["config"], "poststart"), self._state_of(record)
        )

    # -- queries --------------------------------------------------------------------------

    def state(self, container_id: str) -> dict[str, Any]:
        """The runtime spec's state object (ociVersion, id, status, pid, bundle, annotations)."""
        return self._state_of(self._record(container_id))

    def list(self) -> builtins.list[dict[str, Any]]:
        out = []
        for cid in self.states.ids():
            try:
                out.append(self.state(cid))
            except NotFound:
                continue
        return out

    def config(self, container_id: str) -> Spec:
        """The config.json the container was created from."""
        config: Spec = self._record(container_id)["config"]
        return config

    def ps(self, container_id: str) -> builtins.list[int]:
        record = self._record(container_id)
        if self._status(record) == "stopped":
            return []
        return self._cgroup(record).pids()

    def wait(self, container_id: str) -> int:
        """Wait for the init to exit and return its exit code (128 + N for signal N).

        Only for containers created by this process (the init is our child)."""
        pid = self._record(container_id)["pid"]
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            raise FailedPrecondition(
                f"container {container_id!r} was not started by this process: cannot wait"
            ) from None
        return reap.exit_code(status)

    def _record(self, container_id: str) -> dict[str, Any]:
        return self.states.load(container_id)

    def _state_of(self, record: dict[str, Any]) -> dict[str, Any]:
        status = self._status(record)
        state = specmod.state_object(
            record["id"],
            status,
            record["pid"],
            record["bundle"],
            record["config"].get("annotations"),
        )
        state["pid"] = record["pid"] if status != "stopped" else 0
        return state

    def _status(self, record: dict[str, Any]) -> str:
        if not alive(record["pid"], record.get("starttime")):
            return "stopped"
        if os.path.exists(os.path.join(self.states.dir(record["id"]), EXEC_FIFO)):
            return "created"
        try:
            if self._cgroup(record).state() == "frozen":
                return "paused"
        except DockyardError:
            pass
        return "running"

    # -- signals, pause, delete -------------------------------------------------------------

    def kill(self, container_id: str, sig: int = SIGTERM, *, all: bool = False) -> None:
        record = self._record(container_id)
        status = self._status(record)
        if status == "stopped":
            raise FailedPrecondition(f"container {container_id!r} is not running")
        if all:
            self._cgroup(record).kill(sig)
            return
        os.kill(record["pid"], sig)

    def pause(self, container_id: str) -> None:
        record = self._record(container_id)
        status = self._status(record)
        if status != "running":
            raise FailedPrecondition(f"cannot pause a container that is {status}")
        self._cgroup(record).freeze()

    def resume(self, container_id: str) -> None:
        record = self._record(container_id)
        status = self._status(record)
        if status != "paused":
            raise FailedPrecondition(f"cannot resume a container that is {status}")
        self._cgroup(record).thaw()

    def delete(self, container_id: str, *, force: bool = False) -> None:
        self._delete(self._record(container_id), force)

    def _delete(self, record: dict[str, Any], force: bool) -> None:
        container_id = record["id"]
        status = self._status(record)
        if status in ("running", "paused") and not force:
            raise Conflict(
                f"cannot delete container {container_id!r} that is {status}: stop it or use --force"
            )
        cg = self._cgroup(record)
        reap.reap_nohang(record["pid"])
        if status != "stopped":
            if status == "paused":
                cg.thaw()
            reap.kill_quietly(record["pid"])
            reap.reap_if_child(record["pid"])
            reap.wait_gone(record["pid"], 10.0)
        cg.destroy()
        state = self._state_of(record)
        state["status"] = "stopped"
        self.states.remove(container_id)
        hooks.run_reporting("poststop", hooks.hooks_of(record["config"], "poststop"), state)

    # -- run and exec ---------------------------------------------------------------------

    def run(
        self,
        container_id: str,
        bundle: str,
        *,
        console_socket: str | None = None,
        pid_file: str | None = None,
        detach: bool = False,
        stdio: tuple[int, int, int] | None = None,
    ) -> int:
        """create + start; unless `detach`, wait, delete and return the exit code.

        A foreground container with `process.terminal` and no console socket gets a pty
        proxied to our stdio, as `runc run` does."""
        server = None
        spec = _try_load(bundle)  # read once: create uses it too (None: create reports why)
        if console_socket is None and not detach and spec and spec["process"].get("terminal"):
            from dockyard.runtime.console import ConsoleServer

            server = ConsoleServer()
            console_socket = server.path
        try:
            record = self._create(
                container_id, bundle, console_socket, pid_file, True, stdio, loaded=spec
            )
            pid = record["pid"]
            self._poststart(record)
            if detach:
                return 0
            restore = reap.forward_signals(pid)  # also while the console is proxied
            try:
                if server is not None:
                    _proxy(server, stdio)
                code = reap.wait_child(pid)
            finally:
                restore()
        finally:
            if server is not None:
                server.close()
        self._delete(record, force=True)
        return code

    def exec(
        self,
        container_id: str,
        proc: dict[str, Any],
        *,
        console_socket: str | None = None,
        pid_file: str | None = None,
        detach: bool = False,
        on_joined: Callable[[int], None] | None = None,
        stdio: tuple[int, int, int] | None = None,
    ) -> int:
        """Run `proc` (an OCI process object) in the container; returns its exit code, or its
        pid when `detach`. `on_joined(pid)` runs once it has joined the container, before
        execve (tests use it to look at the joining process from inside)."""
        record = self._record(container_id)
        if self._status(record) != "running":
            raise FailedPrecondition(f"cannot exec in a container that is {self._status(record)}")
        if not proc.get("args"):
            raise InvalidArgument("exec: process.args must name the program to run")
        init_pid = record["pid"]
        join = launch.namespaces_of(init_pid)
        if not launch.self_joins(0, join):
            attach_warmup.start()  # reaped by launch.spawn (or by our caller, the CLI)
        linux = record["config"].get("linux") or {}
        prepared = process.Prepared(proc, _cap_limit(), linux, self.seccomp_cache)
        server = None
        if proc.get("terminal") and console_socket is None and not detach:
            from dockyard.runtime.console import ConsoleServer

            server = ConsoleServer()  # a pty proxied to our stdio, as `runc exec -t`
            console_socket = server.path
        try:
            return self._exec(record, proc, prepared, join, console_socket, server, pid_file,
                              detach, on_joined, stdio)  # fmt: skip
        finally:
            if server is not None:
                server.close()

    def _exec(
        self,
        record: dict[str, Any],
        proc: dict[str, Any],
        prepared: process.Prepared,
        join: builtins.list[tuple[str, str]],
        console_socket: str | None,
        server: ConsoleServer | None,
        pid_file: str | None,
        detach: bool,
        on_joined: Callable[[int], None] | None,
        stdio: tuple[int, int, int] | None,
    ) -> int:
        console = _connect(console_socket) if proc.get("terminal") else None
        from dockyard.runtime.init import ExecChild

        child = ExecChild(proc, prepared, console, any(kind == "user" for kind, _ in join))
        job = launch.Job(child, 0, join, self._cgroup(record), adopt=not detach, stdio=stdio)
        pid, chan = launch.spawn(self.kernel, job)
        if console is not None:
            console.close()
        try:
            if on_joined is not None:
                on_joined(pid)
            chan.send("go")
            chan.expect("ready")
        except BaseException:
            reap.kill_quietly(pid)
            reap.reap_if_child(pid)
            raise
        finally:
            chan.close()
        if pid_file:
            write_atomic(_abs(pid_file), f"{pid}".encode(), 0o644)
        if detach:
            return pid
        restore = reap.forward_signals(pid)  # also while the console is proxied
        try:
            if server is not None:
                _proxy(server, stdio)
            return reap.wait_child(pid)
        finally:
            restore()


def _proxy(server: ConsoleServer, stdio: tuple[int, int, int] | None) -> None:
    """Receive the pty master from the container and proxy it to our stdio until it closes;
    the container's pty follows our terminal's size (now and on every SIGWINCH), as with
    `runc run -t`."""
    import contextlib

    from dockyard.linux.pty import set_winsize, watch_winsize
    from dockyard.runtime.console import proxy

    master = server.receive()

    def resize(rows: int, cols: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            set_winsize(master, rows, cols)

    unwatch = watch_winsize(resize)
    try:
        proxy(master, *(stdio[:2] if stdio else (0, 1)))
    finally:
        unwatch()
        os.close(master)


def _try_load(bundle: str) -> Spec | None:
    try:
        return specmod.load(os.path.realpath(bundle))
    except DockyardError:
        return None


def _standby_for(container_id: str, spec: Spec) -> Standby | None:
    """The init cloned ahead for this container, if this process made one (`runtime.standby`,
    never imported otherwise: `dockyard-runtime` pays nothing for it) and it fits `spec`."""
    import sys

    mod = sys.modules.get("dockyard.runtime.standby")
    return mod.take(container_id, spec) if mod is not None else None


def _launch_standby(
    sb: Standby,
    spec: Spec,
    bundle: str,
    fifo_fd: int | None,
    console: socket.socket | None,
    stdio: tuple[int, int, int] | None,
    seccomp_cache: str,
) -> tuple[int, Channel] | None:
    """The standby started as the container's init, or None when it was lost (dropped now,
    with its cgroup: the caller makes both the usual way)."""
    from dockyard.runtime import standby

    try:
        return sb.launch(spec, bundle, fifo_fd, console, stdio, seccomp_cache)
    except standby.Lost:
        sb.drop()
        return None


def _open_cgroup(spec: Spec, container_id: str) -> Cgroup:
    from dockyard.linux.cgroups import open_cgroup

    return open_cgroup(specmod.cgroups_path(spec, container_id))


def _cap_limit() -> int:
    from dockyard.linux.caps import last_cap

    return last_cap()


def _connect(path: str | None) -> socket.socket | None:
    if path is None:
        return None
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise InvalidArgument(f"console socket {path}: {e.strerror}") from None
    return sock


def _abs(path: str) -> str:
    return os.path.abspath(path)
