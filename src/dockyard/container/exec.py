"""`exec`: run a process inside a running container (layer L4).

The process object starts from the container's own (its environment, user, capabilities,
rlimits, as written in the container's bundle) and takes the overrides `exec` allows: args,
extra env, user, working directory, tty, privileged. The runtime forks it from this process
into the container's namespaces and cgroup; stdio is this process's own, or a pty relayed
here with `-t`. This process holds that pty's master: its initial size is the caller's
`console_size` (`process.consoleSize`, applied by the runtime before the process starts), and
while relaying it follows this process's terminal (SIGWINCH).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from typing import Any

from dockyard.container.service import ContainerService
from dockyard.errors import Conflict


def exec_process(
    svc: ContainerService,
    name_or_id: str,
    args: list[str],
    *,
    env: list[str] | None = None,
    user: str | None = None,
    workdir: str | None = None,
    tty: bool = False,
    privileged: bool = False,
    detach: bool = False,
    console_size: tuple[int, int] | None = None,
) -> int:
    """Run `args` in the container: its exit code, or 0 when `detach`. `console_size`:
    (rows, cols) of the pty with `tty`."""
    from dockyard.container.spec import all_caps, resolve_user

    c = svc.get(name_or_id)
    if c.state.status == "paused":
        raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
    if c.state.status != "running":
        raise Conflict(f"Container {c.id} is not running")
    d = svc.dir(c.id)
    spec = json.loads((d / "bundle" / "config.json").read_text())
    proc: dict[str, Any] = dict(spec["process"])
    proc["args"] = list(args)
    proc["terminal"] = tty
    proc.pop("consoleSize", None)
    if tty and console_size is not None:
        proc["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    merged: dict[str, str] = {}
    for e in [*proc.get("env", []), *(env or [])]:
        k, _, v = e.partition("=")
        merged[k] = v
    proc["env"] = [f"{k}={v}" for k, v in merged.items()]
    if workdir:
        proc["cwd"] = workdir
    if user:
        uid, gid, extra, _home = resolve_user(d / "rootfs", user)
        proc["user"] = {"uid": uid, "gid": gid, "additionalGids": extra}
    if privileged:
        caps = all_caps()
        proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    rt = svc.runtime_for(c)
    if not tty:
        if detach:
            _detached_stdio(lambda: rt.exec(c.id, proc, detach=True))
            return 0
        return rt.exec(c.id, proc)
    return _exec_tty(rt, c.id, proc, detach)


def _detached_stdio(fn: Any) -> None:
    saved = [os.dup(i) for i in (0, 1, 2)]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for i in (0, 1, 2):
            os.dup2(null, i)
        fn()
    finally:
        for i, fd in enumerate(saved):
            os.dup2(fd, i)
            os.close(fd)
        os.close(null)


def _exec_tty(rt: Any, cid: str, proc: dict[str, Any], detach: bool) -> int:
    """Run with a pty: the runtime sends the master over a console socket; relay it here.

    The runtime starts it detached (it returns at once, with the pid) and leaves it to the
    nearest subreaper: this process becomes one first, so that it can wait for the exit code."""
    from dockyard.linux.pty import recv_fd

    if not detach:
        from dockyard.linux.kernel import PR_SET_CHILD_SUBREAPER, RealKernel

        RealKernel().prctl(PR_SET_CHILD_SUBREAPER, 1)
    with tempfile.TemporaryDirectory(prefix="dockyard-exec-") as tmp:
        path = os.path.join(tmp, "console.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        pid = rt.exec(cid, proc, console_socket=path, detach=True)
        conn, _ = srv.accept()
        master, _name = recv_fd(conn)
        conn.close()
        srv.close()
    if detach:
        os.close(master)
        return 0
    return _relay_pty(master, pid)


def _relay_pty(master: int, pid: int) -> int:
    import selectors
    import termios
    import tty

    from dockyard.linux.pty import set_winsize, watch_winsize

    def resize(rows: int, cols: int) -> None:
        with contextlib.suppress(OSError):
            set_winsize(master, rows, cols)

    unwatch = watch_winsize(resize)
    restore = None
    if os.isatty(0):
        old = termios.tcgetattr(0)
        tty.setraw(0)
        restore = old
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    sel.register(0, selectors.EVENT_READ)
    try:
        done = False
        while not done:
            for key, _ in sel.select():
                if key.fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        done = True
                        break
                    os.write(1, data)
                else:
                    data = os.read(0, 65536)
                    if not data:
                        sel.unregister(0)
                        continue
                    os.write(master, data)
    finally:
        unwatch()
        if restore is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, restore)
        sel.close()
        os.close(master)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
