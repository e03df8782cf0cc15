"""The per-container supervisor (layer L4): a process forked from the CLI that outlives it.

It mounts the container's root filesystem, writes the bundle, creates and starts the container
through the runtime (in-process: the container's init is this process's direct child), pumps
its stdout/stderr into the json-file log and to an attached CLI, feeds its stdin from `attach`
clients (`attachserve`, on `<dir>/attach.sock`), reaps the exit status, records
it (exit code, OOM kill, finish time), applies the restart policy, and on the way out deletes
the runtime state, unmounts the rootfs and, for `--rm`, removes the container (reporting the
exit code to the CLI as soon as the record is gone, before the slow part).

`run` forks its supervisor ahead (`container.prefork`); `start` forks it here (`spawn`).

Invariants:
- While the supervisor lives it holds an exclusive flock on `<dir>/supervisor.lock`; anyone
  can tell it is gone (crash, kill -9) by taking that lock, and the record is then repaired
  by `service.reconcile` — a record never claims "running" for a container nobody runs.
- The supervisor never writes to the CLI's stdout/stderr after it detaches: a detached
  container does not keep `$(dockyard run -d ...)` waiting.
- Every state change is a read-modify-write of the record under the container lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard.errors import DockyardError, NotFound

if TYPE_CHECKING:
    from dockyard.container.attachserve import StdinRelay
    from dockyard.container.health import HealthMonitor
    from dockyard.container.service import ContainerService


@dataclass
class Attach:
    """Pipes to an attached CLI (write ends, owned by the supervisor after the fork)."""

    stdout: int
    stderr: int
    status: int  # the exit code is written here as text when the container is done
    stdin: bool  # the container reads the CLI's stdin (inherited fd 0)


def exit_code_for(err: DockyardError) -> int:
    """Docker's exit codes for a container that could not start."""
    msg = str(err).lower()
    if isinstance(err, NotFound) or "not found" in msg or "no such file" in msg:
        return 127
    if "permission denied" in msg:
        return 126
    return 125


def spawn(svc: ContainerService, cid: str, attach: Attach | None) -> None:
    """Start the supervisor for `cid` and wait until the container runs (or failed to).

    Raises the start error in the caller, so `run`/`start` report it like Docker does.
    """
    svc.close_db()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _become_supervisor(lambda: svc, cid, attach, w)
    os.close(w)
    if attach is not None:
        for fd in (attach.stdout, attach.stderr, attach.status):
            os.close(fd)
    await_start(pid, r, cid)


def _become_supervisor(
    service: Callable[[], ContainerService], cid: str, attach: Attach | None, ready: int
) -> None:
    """In a freshly forked child: detach (new session, second fork) and supervise `cid`."""
    code = 1
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        saved_stdin = detach_stdio(keep_stdin=attach is not None and attach.stdin)
        code = run_supervisor(service, cid, attach, ready, saved_stdin)
    finally:
        os._exit(code)


def run_supervisor(
    service: Callable[[], ContainerService],
    cid: str,
    attach: Attach | None,
    ready: int,
    saved_stdin: int,
) -> int:
    svc: ContainerService | None = None
    try:
        svc = service()
        return _supervise(svc, cid, attach, ready, saved_stdin)
    except BaseException:  # pragma: no cover - last resort: never return into the CLI
        with contextlib.suppress(BaseException):
            import traceback

            if svc is not None:
                with open(svc.dir(cid) / "supervisor.err", "a") as f:
                    traceback.print_exc(file=f)
        return 1


def await_start(pid: int, ready: int, cid: str) -> None:
    """Wait for the supervisor's start report (`pid`: the intermediate child of a double
    fork, reaped first; 0 for a pre-forked supervisor)."""
    if pid:
        os.waitpid(pid, 0)
    with os.fdopen(ready, "rb") as f:
        msg = f.read()
    if not msg:
        raise DockyardError(f"container {cid[:12]}: the supervisor died before starting it")
    report = json.loads(msg)
    if report.get("error"):
        err_cls = NotFound if report.get("code") == 127 else DockyardError
        e = err_cls(report["error"])
        e.exit_code = report.get("code", 125)
        raise e


def detach_stdio(keep_stdin: bool = False) -> int:
    """Point fds 0-2 at /dev/null and become the subreaper of the container's processes;
    return a copy of the old stdin when `keep_stdin` (else -1)."""
    from dockyard.linux.kernel import PR_SET_CHILD_SUBREAPER, RealKernel

    saved = os.dup(0) if keep_stdin else -1
    fd = os.open(os.devnull, os.O_RDWR)
    for i in (0, 1, 2):
        os.dup2(fd, i)
    os.close(fd)
    RealKernel().prctl(PR_SET_CHILD_SUBREAPER, 1)
    return saved


def _supervise(
    svc: ContainerService, cid: str, attach: Attach | None, ready: int, saved_stdin: int
) -> int:
    from dockyard.container import running

    lockfd = os.open(svc.dir(cid) / "supervisor.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    fcntl.flock(lockfd, fcntl.LOCK_EX)
    first = True
    code = 0
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # A handler, not SIG_IGN: ignored dispositions survive execve into the container.
        signal.signal(sig, lambda *_: None)
    backoff = 0.1
    removal: tuple[bool] | None = None  # `--rm` after a run: (holds host ports,)
    while True:
        t0 = time.monotonic()
        try:
            run = running.start_process(svc, cid, stdin_fd=saved_stdin)
        except Exception as exc:  # any failure: report it, and leave nothing mounted or held
            e = (
                exc
                if isinstance(exc, DockyardError)
                else DockyardError(f"{type(exc).__name__}: {exc}")
            )
            code = exit_code_for(e)
            running.record_start_failure(svc, cid, str(e), code)
            if first:
                os.write(ready, json.dumps({"error": str(e), "code": code}).encode())
                os.close(ready)
            break
        relay = _stdin_relay(svc, cid, run, saved_stdin)  # before `ready`: attach can connect
        if first:
            os.write(ready, b'{"ok": true}')
            os.close(ready)
            first = False
        monitor = _health_monitor(svc, cid, wake_w)
        try:
            code = _pump(
                run, attach, relay, wake_r, monitor, lambda h: running.set_health(svc, cid, h)
            )
        finally:
            if relay is not None:
                relay.close()
        restart = running.finish_process(svc, cid, run, code)
        if not restart:
            removal = (run.published,) if run.auto_remove else None
            break
        if time.monotonic() - t0 > 10:
            backoff = 0.1
        time.sleep(backoff)
        backoff = min(backoff * 2, 60.0)
    if removal is not None:  # the CLI learns the code once the record is gone, not later
        running.remove_after_exit(svc, cid, lambda: _report(attach, code), ports=removal[0])
    else:
        running.after_exit(svc, cid)
        _report(attach, code)
    os.close(lockfd)
    return 0


def _report(attach: Attach | None, code: int) -> None:
    """Tell an attached CLI the exit code and let go of its pipes (it returns then)."""
    if attach is None:
        return
    with contextlib.suppress(OSError):
        os.write(attach.status, f"{code}\n".encode())
    for fd in (attach.stdout, attach.stderr, attach.status):
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):
        os.nice(10)  # what is left (unmount, removal) must not slow the CLI that is exiting now


def _stdin_relay(svc: ContainerService, cid: str, run: object, cli_stdin: int) -> StdinRelay | None:
    """Serve the container's stdin to `attach` (None if it is not ours to feed)."""
    from dockyard.container.running import Running

    assert isinstance(run, Running)
    if not run.tty and run.stdin_w < 0:
        return None  # nothing to feed (and no record read on the start path)
    from dockyard.container import attachserve

    try:
        return attachserve.for_run(svc.dir(cid), run, svc.get(cid).config, cli_stdin)
    except Exception:  # no attach then; the container runs on
        if run.stdin_w >= 0:
            with contextlib.suppress(OSError):
                os.close(run.stdin_w)
        return None


def _health_monitor(svc: ContainerService, cid: str, wake_w: int) -> HealthMonitor | None:
    cfg = svc.get(cid).config.get("Healthcheck") or {}
    if not cfg.get("Test") or cfg["Test"][0] == "NONE":
        return None  # no healthcheck: not even its module is loaded
    from dockyard.container import running
    from dockyard.container.health import HealthMonitor

    mon = HealthMonitor(cfg, svc.engine.root, cid, wake_w)
    if not mon.enabled:
        return None
    running.set_health(svc, cid, {"Status": "starting", "FailingStreak": 0, "Log": []})
    return mon


def _pump(
    run: object,
    attach: Attach | None,
    relay: StdinRelay | None,
    wake_r: int,
    monitor: HealthMonitor | None = None,
    on_health: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Copy container output to the log and the attached CLI, and `relay` clients' input to
    its stdin, until the init exits; run healthchecks when they are due."""
    from dockyard.container.running import Running

    assert isinstance(run, Running)
    sel = selectors.DefaultSelector()
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    outs = {run.stdout: "stdout"}
    if run.stderr >= 0:
        outs[run.stderr] = "stderr"
    for fd, name in outs.items():
        sel.register(fd, selectors.EVENT_READ, name)
    if relay is not None:
        relay.register(sel)
    targets = {"stdout": attach.stdout if attach else -1, "stderr": attach.stderr if attach else -1}
    if run.tty and attach is not None:
        targets["stderr"] = attach.stdout
    status: int | None = None
    deadline: float | None = None
    first_health, last_health = True, None
    while outs:
        now = time.monotonic()
        timeout = None if deadline is None else max(0.0, deadline - now)
        if monitor is not None and status is None:
            monitor.maybe_start(now)
            due = monitor.due_in(now)
            if due is not None:
                timeout = due if timeout is None else min(timeout, due)
        events = sel.select(timeout)
        if not events and deadline is not None:
            break
        for key, mask in events:
            name = key.data
            if name is relay and relay is not None:
                relay.on_event(key.fd, mask)
            elif name == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                if monitor is not None and on_health is not None:
                    h = monitor.collect(None if first_health else last_health)
                    if h is not None:
                        first_health, last_health = False, h
                        on_health(h)
            else:
                fd = key.fd
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the pty's last slave closed
                    data = b""
                if not data:
                    sel.unregister(fd)
                    del outs[fd]
                    if fd != run.stdout or not run.tty:
                        os.close(fd)
                    continue
                run.log.write(name, data)
                tgt = targets[name]
                if tgt >= 0:
                    try:
                        os.write(tgt, data)
                    except OSError:
                        targets[name] = -1
        if status is None:
            try:
                pid, st = os.waitpid(run.pid, os.WNOHANG)
            except ChildProcessError:
                pid, st = run.pid, 0
            if pid == run.pid:
                status = os.waitstatus_to_exitcode(st)
                status = 128 - status if status < 0 else status
                deadline = time.monotonic() + 0.3  # drain what is still buffered
    if relay is not None:
        relay.close()
    sel.close()
    if status is None:
        _, st = os.waitpid(run.pid, 0)
        status = os.waitstatus_to_exitcode(st)
        status = 128 - status if status < 0 else status
    if run.tty:
        with contextlib.suppress(OSError):
            os.close(run.stdout)
    run.log.flush()
    return status
