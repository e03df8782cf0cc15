"""RUN steps as containers (layer L4): the process, the OCI spec, running it, its output.

`run_args(...)` turns a RUN (shell or exec form, heredocs) into argv; `build_spec(...)` makes a
minimal Docker-like OCI spec (default capabilities, masked /proc paths, private pid/ipc/uts/
mount namespaces, a loopback-only network namespace unless `--network=host`, the RUN
`--mount`s as extra mounts); `run_container(...)` runs it with the native runtime, stdin from
/dev/null and stdout+stderr into one pipe read line by line, and returns the exit code.

In a build worker (`build.parallel`) SIGTERM/SIGINT call `cancel`, which kills the running
container; outside one, terminal signals are forwarded to it.

Invariants: the runtime's container is deleted (processes, cgroup, state) before
`run_container` returns or raises; the calling process's own fds 0/1/2 are never touched (the
init gets the pipe through the runtime's `stdio`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockyard.build.model import Run
from dockyard.build.parser import Heredoc

HOSTNAME = "buildkitsandbox"


def _heredoc_script(cmd: str, heredocs: tuple[Heredoc, ...]) -> str:
    """The shell script BuildKit runs for `RUN cmd <<A ...`: the command line, then each body
    and its terminator, so the shell itself feeds the bodies to their fds."""
    parts = [cmd]
    for h in heredocs:
        body = h.content
        if body and not body.endswith("\n"):
            body += "\n"
        parts.append(body + h.name)
    return "\n".join(parts) + "\n"


def run_args(ins: Run, shell: list[str]) -> tuple[list[str], str | None]:
    """(argv, script) for a RUN: `script` is a heredoc file to mount at /dev/pipes/NAME when
    the whole command is one heredoc starting with `#!` (run as a program)."""
    if not ins.shell_form:
        return list(ins.command), None
    cmd = ins.command[0] if ins.command else ""
    if not ins.heredocs:
        return [*shell, cmd], None
    words = cmd.split()
    if len(ins.heredocs) == 1 and len(words) == 1 and words[0].startswith("<<"):
        body = ins.heredocs[0].text
        if body.startswith("#!"):
            return [f"/dev/pipes/{ins.heredocs[0].name}"], body
        return [*shell, body], None
    return [*shell, _heredoc_script(cmd, ins.heredocs)], None


def display(argv: list[str]) -> str:
    return " ".join(argv)


def build_spec(
    rootfs: Path,
    argv: list[str],
    env: list[str],
    cwd: str,
    user: tuple[int, int, list[int]],
    *,
    network: str,
    mounts: list[dict[str, Any]],
    cgroup: str,
    netns: str | None = None,
) -> dict[str, Any]:
    """The OCI spec of a RUN container; `netns`: a namespace to join unless `network=host`
    (else a new, empty one)."""
    from dockyard.container.spec import MASKED, READONLY, capabilities, default_mounts

    caps = capabilities({})
    uid, gid, extra = user
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if network != "host":
        namespaces.append({"type": "network", "path": netns} if netns else {"type": "network"})
    process: dict[str, Any] = {
        "terminal": False,
        "user": {"uid": uid, "gid": gid, "additionalGids": extra},
        "args": argv,
        "env": env,
        "cwd": cwd or "/",
        "capabilities": {
            "bounding": caps,
            "effective": caps if uid == 0 else [],
            "permitted": caps if uid == 0 else [],
        },
        "noNewPrivileges": False,
    }
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": HOSTNAME,
        "mounts": [*default_mounts({}), *mounts],
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroup,
            "resources": {},
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READONLY),
        },
    }


def bind(source: str, target: str, readonly: bool) -> dict[str, Any]:
    return {
        "destination": target,
        "type": "bind",
        "source": source,
        "options": ["rbind", "ro" if readonly else "rw"],
    }


def tmpfs(target: str, size: int | None) -> dict[str, Any]:
    opts = ["nosuid", "nodev", "mode=755"]
    if size:
        opts.append(f"size={size}")
    return {"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts}


class Running:
    """The RUN container of this process, for cancellation (a build worker's SIGTERM)."""

    def __init__(self) -> None:
        self.pid = 0
        self.cancelled = False
        self.worker = False  # in a build worker: no signal forwarding, `cancel` handles them


RUNNING = Running()


def cancel(signum: int = 0, frame: object = None) -> None:
    """Signal handler of a build worker: stop now — kill the running container (its RUN then
    fails and the step unwinds through its cleanups) and start no further step."""
    RUNNING.cancelled = True
    if RUNNING.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(RUNNING.pid, 9)


def run_container(
    runtime_root: str,
    container_id: str,
    bundle: Path,
    spec: dict[str, Any],
    on_line: Callable[[str], None],
) -> int:
    """Run the container to completion, streaming its output lines; return its exit code."""
    from dockyard.runtime import jsonio
    from dockyard.runtime.native import NativeRuntime

    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").write_text(jsonio.dumps(spec))
    rt = NativeRuntime(runtime_root)
    out_r, out_w = os.pipe()
    sin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    pid = 0
    try:
        try:
            pid = rt.create(container_id, str(bundle), started=True, stdio=(sin, out_w, out_w))
        finally:
            os.close(out_w)
            os.close(sin)
        RUNNING.pid = pid
        if RUNNING.cancelled:
            cancel()
        _pump(out_r, on_line)
        return _wait(pid)
    finally:
        RUNNING.pid = 0
        os.close(out_r)
        if pid:
            with contextlib.suppress(Exception):
                rt.delete(container_id, force=True)


def _wait(pid: int) -> int:
    from dockyard.runtime.reap import exit_code, wait_forwarding

    if not RUNNING.worker:
        return wait_forwarding(pid)
    _, status = os.waitpid(pid, 0)  # retried after a signal handler (PEP 475)
    return exit_code(status)


def _pump(fd: int, on_line: Callable[[str], None]) -> None:
    pending = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.replace(b"\r\n", b"\n").split(b"\n")
        for line in lines:
            on_line(line.decode("utf-8", "replace"))
    if pending:
        on_line(pending.decode("utf-8", "replace"))
