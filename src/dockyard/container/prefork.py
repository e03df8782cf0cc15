"""A container's supervisor forked before the container exists (layer L4).

`run` forks its supervisor ahead (`Prefork`), before it parses flags or opens a database: the
child loads the start path's modules and opens its own databases on the other core while the
CLI looks up the image and creates the record, then waits for `go` with the container's ID.

A command server's spare worker goes one step further (`make_ready`): it forks the supervisor
for the *next* `run` while it waits for a caller, and both warm up before the command arrives.
That takes the fork (~2 ms for a process this size) and most copy-on-write page faults (~3 µs
each, a few thousand per `run`: every page a forked Python process writes is copied first) off
the start path. `dockyard.cli._early` takes it (`take_ready`) for `run` and lets it go for any
other command.

The `go` message carries what a supervisor forked ahead cannot have inherited from the command:
its environment, working directory and umask (applied before anything runs; the engine is
opened again if a `DOCKYARD_*` variable differs from the one it was warmed up with), and, for
an attached `-i`, the command's stdin (SCM_RIGHTS over the `go` socket).

Invariants: the child never keeps a descriptor of whoever forked it except its own ends of the
pipes (`close_in_child` names the others: a spare's listening socket must not live on in a
supervisor); a child that gets no `go` (EOF) exits at once; `close()` of an unused one never
blocks the command (`wait=False`: the short-lived worker's exit lets it be reaped).
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING, Any

from dockyard.container import running
from dockyard.container.supervisor import Attach, await_start, detach_stdio, run_supervisor
from dockyard.linux import spare_ns
from dockyard.runtime.channel import receive_order, send_order

if TYPE_CHECKING:
    from dockyard.container.service import ContainerService

_READY: list[Prefork] = []  # at most one: made by a spare worker for the next command
# A supervisor made ahead starts its container's init (`runtime.standby`: ~40 ms of CPU) only
# after this long without a command: commands that follow each other at once (a script) would
# pay for it in CPU taken from them, and would rarely use it.
STANDBY_DELAY = 0.05


class Prefork:
    """A supervisor waiting for `go` (see the module docstring).

    Fork it before the CLI opens any database (the child opens its own engine on `root`).
    The child detaches at once (a session of its own) and waits for `go`; `close()`
    without `go` makes it exit. It holds the write ends of three pipes from the start — the
    container's stdout, stderr and exit status, read here as `out`, `err`, `status` — and
    uses them if `go` says the CLI is attached."""

    def __init__(
        self,
        root: str | None,
        *,
        close_in_child: tuple[int, ...] = (),
        container_id: str | None = None,
    ) -> None:
        self.container_id = container_id  # the ID `create` must use (the standby's), if any
        self.out, out_w = os.pipe()
        self.err, err_w = os.pipe()
        self.status, st_w = os.pipe()
        go, go_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ready, ready_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            go.close()
            for fd in (self.out, self.err, self.status, self._ready, *close_in_child):
                with contextlib.suppress(OSError):
                    os.close(fd)
            _preforked(root, (out_w, err_w, st_w), go_child, ready_w, container_id)
        go_child.close()
        self._go: socket.socket | None = go
        for fd in (out_w, err_w, st_w, ready_w):
            os.close(fd)

    def go(self, cid: str, *, attach: bool, stdin: bool) -> None:
        """Let the supervisor run `cid`; wait until it runs (or raise its start error)."""
        assert self._go is not None
        umask = os.umask(0o022)
        os.umask(umask)
        order = {"cid": cid, "attach": attach, "stdin": stdin, "cwd": os.getcwd()}
        order.update(env=dict(os.environ), umask=umask)
        with contextlib.suppress(OSError):  # a supervisor gone: `await_start` says so
            send_order(self._go, order, [0] if stdin else [])
        self._go.close()
        self._go = None
        ready = self._ready
        self._ready = -1
        self.pid = 0  # our child until we exit (the CLI does soon): not waited for
        await_start(0, ready, cid)

    def close(self, *, wait: bool = True) -> None:
        """Tell a supervisor that never got `go` to exit; close this side's pipe ends."""
        if self._go is not None:
            self._go.close()
            self._go = None
        for name in ("_ready", "out", "err", "status"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)
        if self.pid and wait:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.pid = 0


def make_ready(root: str, close_in_child: tuple[int, ...]) -> None:
    """In a spare worker: fork the supervisor for the next `run` now, with the ID of the
    container it will run picked now (its init and cgroup are made ahead: `runtime.standby`)."""
    cid = os.urandom(32).hex()
    _READY.append(Prefork(root, close_in_child=close_in_child, container_id=cid))


def take_ready() -> Prefork | None:
    """The supervisor made ahead, if it is still there (one that died warming up is let go)."""
    while _READY:
        ready = _READY.pop()
        try:
            gone = os.waitpid(ready.pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            gone = True
        if not gone:
            return ready
        ready.pid = 0
        ready.close()
    return None


def _preforked(
    root: str | None,
    attach_fds: tuple[int, int, int],
    go: socket.socket,
    ready_w: int,
    container_id: str | None,
) -> None:
    """The pre-forked child: detach, load the start path's modules and databases, wait for
    the container's ID, then supervise it (never returns). With `container_id` (made ahead
    by a spare worker), the container's init and cgroup are made while it waits."""
    code = 1
    try:
        # A session of its own (no terminal signals), but no second fork: that would cost a
        # fork of a large process on the start path. The supervisor never opens a terminal
        # device (a pty master reaches it over a socket), so leading a session is harmless;
        # it stays its forker's child until that exits (soon), then init's.
        os.setsid()
        detach_stdio()
        _stop_on_signals()  # until `go`: a stop must drop the standby, not orphan its cgroup
        warmed = _engine_env()
        svc = _warm_up(root)
        spare_ns.make_ready()  # the container's network, IPC and UTS namespaces, ahead
        with contextlib.suppress(Exception):
            running.rehearse()
        if container_id is not None and not _readable(go, STANDBY_DELAY):
            with contextlib.suppress(Exception):
                running.make_standby(svc, container_id)
        order, fds = receive_order(go, max_fds=1)
        if order is None:
            code = 0
            return
        with contextlib.suppress(OSError):
            # a spare's nice 10 was for what we did ahead (and the standby's warm-up): a
            # command arriving meanwhile had the CPU first
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        _stop_on_signals(stop=False)
        stdin = fds[0] if fds else -1
        _become_caller(order)
        if _engine_env() != warmed:
            svc = _warm_up(root)
        attach = None
        if order["attach"]:
            attach = Attach(*attach_fds, stdin=bool(order["stdin"]))
        else:
            for fd in attach_fds:
                os.close(fd)
        code = run_supervisor(lambda: svc, order["cid"], attach, ready_w, stdin)
    finally:
        _drop_standby()  # never used (no `go`, a failed start): its process and cgroup go
        os._exit(code)


def _stop_on_signals(stop: bool = True) -> None:
    """SIGTERM, SIGINT, SIGHUP end a supervisor still waiting for `go` through its `finally`
    (which drops the standby); once it has its container they are the supervisor's again."""
    import signal

    def _stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _stop if stop else signal.SIG_DFL)


def _drop_standby() -> None:
    import sys

    mod = sys.modules.get("dockyard.runtime.standby")
    if mod is not None:
        with contextlib.suppress(Exception):
            mod.drop()


def _readable(sock: socket.socket, timeout: float) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


def _become_caller(order: dict[str, Any]) -> None:
    """The command's environment, working directory and umask (see the module docstring)."""
    env = order.get("env")
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update(env)
    with contextlib.suppress(OSError, KeyError, TypeError):
        os.chdir(order["cwd"])
    with contextlib.suppress(KeyError, TypeError):
        os.umask(int(order["umask"]))


def _engine_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("DOCKYARD_")}


def _warm_up(root: str | None) -> ContainerService:
    """Import what starting a container needs and open the engine's databases (errors
    surface later, where they belong); return the container service."""
    import importlib

    from dockyard.engine import Engine

    for mod in (
        "dockyard.container.service", "dockyard.container.running", "dockyard.container.networking",
        "dockyard.container.spec", "dockyard.container.seccomp", "dockyard.container.etcfiles",
        "dockyard.container.mounts", "dockyard.container.logs", "dockyard.network.setup",
        "dockyard.linux.fsmount", "dockyard.runtime", "dockyard.runtime.native",
        "dockyard.runtime.jsonio", "dockyard.snapshot.store",
    ):  # fmt: skip
        with contextlib.suppress(Exception):
            importlib.import_module(mod)
    engine = Engine.open(root)
    if (engine.root / "meta.db").exists():  # else a root being removed: make nothing in it
        with contextlib.suppress(Exception):
            engine.meta  # noqa: B018 - opened now, off the critical path
            engine.networks  # noqa: B018
    return engine.containers
