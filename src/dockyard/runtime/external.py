"""`ExternalRuntime`: the `Runtime` protocol on a runc-compatible binary (runc, crun).

Responsibility: build runc command lines (`--root R create --bundle B --pid-file F ID`, `start`,
`state`, `kill`, `delete [-f]`, `pause`, `resume`, `ps --format json`, `list --format json`,
`exec -p process.json`, `run`), run them, parse their JSON, and map failures to typed errors.
Invariants: stdout/stderr of lifecycle commands are captured (so errors can say what the binary
said); `run` and foreground `exec` inherit our stdio, as the container's I/O goes there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

from dockyard.errors import Conflict, DockyardError, FailedPrecondition, NotFound, Unavailable
from dockyard.runtime import jsonio


class ExternalRuntime:
    """Drive `binary` (name on PATH or a path) with runc's CLI."""

    def __init__(self, binary: str = "runc", root: str | None = None) -> None:
        import shutil

        path = shutil.which(binary)
        if path is None:
            raise Unavailable(f"OCI runtime {binary!r} is not installed (not on PATH)")
        self.binary = path
        self.name = os.path.basename(binary)
        self.root = root

    def _argv(self, *args: str) -> list[str]:
        base = [self.binary]
        if self.root:
            base += ["--root", self.root]
        return [*base, *args]

    def _call(self, *args: str) -> str:
        proc = subprocess.run(self._argv(*args), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise _error(self.name, args, proc.stderr.strip() or proc.stdout.strip())
        return proc.stdout

    def create(
        self,
        container_id: str,
        bundle: str,
        *,
        console_socket: str | None = None,
        pid_file: str | None = None,
        stdio: tuple[int, int, int] | None = None,
        on_spawned: Callable[[int], None] | None = None,
        started: bool = False,
    ) -> int:
        """The container's init inherits our stdio (as with runc itself), so the binary's
        errors are read from a JSON --log file, not from a pipe the init would hold open.
        `on_spawned` runs once the binary has created the container; `started`: `start`
        follows at once."""
        with tempfile.TemporaryDirectory() as tmp:
            pf = pid_file or os.path.join(tmp, "pid")
            log = os.path.join(tmp, "log.json")
            args = ["--log", log, "--log-format", "json", "create", "--bundle", bundle]
            args += ["--pid-file", pf]
            if console_socket:
                args += ["--console-socket", console_socket]
            code = _run(self._argv(*args, container_id), stdio)
            if code != 0:
                raise _error(self.name, ("create",), _log_errors(log))
            with open(pf) as f:
                pid = int(f.read().strip())
        try:
            if on_spawned is not None:
                on_spawned(pid)
            if started:
                self.start(container_id)
        except BaseException:
            with contextlib.suppress(DockyardError):
                self.delete(container_id, force=True)
            raise
        return pid

    def start(self, container_id: str) -> None:
        self._call("start", container_id)

    def state(self, container_id: str) -> dict[str, Any]:
        state: dict[str, Any] = jsonio.loads(self._call("state", container_id))
        return state

    def kill(self, container_id: str, sig: int = signal.SIGTERM, *, all: bool = False) -> None:
        self._call("kill", *(["--all"] if all else []), container_id, str(int(sig)))

    def delete(self, container_id: str, *, force: bool = False) -> None:
        self._call("delete", *(["--force"] if force else []), container_id)

    def pause(self, container_id: str) -> None:
        self._call("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._call("resume", container_id)

    def ps(self, container_id: str) -> list[int]:
        pids: list[int] = jsonio.loads(self._call("ps", "--format", "json", container_id)) or []
        return pids

    def list(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = jsonio.loads(self._call("list", "--format", "json")) or []
        return items

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
        args = ["run", "--bundle", bundle]
        if detach:
            args.append("--detach")
        if console_socket:
            args += ["--console-socket", console_socket]
        if pid_file:
            args += ["--pid-file", pid_file]
        return _run(self._argv(*args, container_id), stdio)

    def exec(
        self,
        container_id: str,
        proc: dict[str, Any],
        *,
        console_socket: str | None = None,
        pid_file: str | None = None,
        detach: bool = False,
        stdio: tuple[int, int, int] | None = None,
    ) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            pjson = os.path.join(tmp, "process.json")
            with open(pjson, "w") as f:
                f.write(jsonio.dumps(proc))
            pf = pid_file or os.path.join(tmp, "pid")
            args = ["exec", "-p", pjson, "--pid-file", pf]
            if detach:
                args.append("--detach")
            if console_socket:
                args += ["--console-socket", console_socket]
            code = _run(self._argv(*args, container_id), stdio)
            if not detach:
                return code
            if code != 0:
                raise DockyardError(f"{self.name} exec failed with exit code {code}")
            with open(pf) as f:
                return int(f.read().strip())


def _run(argv: list[str], stdio: tuple[int, int, int] | None) -> int:
    """Run the binary with our stdio or the given fds; its exit code."""
    if stdio is None:
        return subprocess.run(argv, check=False).returncode
    stdin, stdout, stderr = stdio
    return subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr, check=False).returncode


def _log_errors(path: str) -> str:
    """The error messages of a runc JSON log ({"level": "error", "msg": ...} per line)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return "failed (no log written)"
    msgs = []
    for line in lines:
        try:
            entry = jsonio.loads(line)
        except ValueError:
            msgs.append(line)
            continue
        if entry.get("level") in ("error", "fatal"):
            msgs.append(str(entry.get("msg")))
    return "; ".join(msgs) or "failed"


def _error(name: str, args: tuple[str, ...], message: str) -> DockyardError:
    what = f"{name} {args[0]}: {message}"
    low = message.lower()
    if "does not exist" in low or "not found" in low:
        return NotFound(what)
    if "already exists" in low:
        return Conflict(what)
    if "not running" in low or "cannot" in low or "not stopped" in low:
        return FailedPrecondition(what)
    return DockyardError(what)
