"""The `Runtime` protocol: the OCI runtime operations (runtime.md, "Operations") plus runc's
conveniences (run, exec, pause, resume, ps, list), as the engine calls them in-process.

Invariants every implementation keeps: `state` returns the spec's state object (ociVersion,
id, status in creating/created/running/paused/stopped, pid, bundle, annotations); operations
on an unknown id raise `NotFound`, in the wrong state `FailedPrecondition` or `Conflict`;
exit codes are reported as shells do (signal N → 128 + N); `stdio` (create, run, exec) gives
the container process's stdin/stdout/stderr fds, by default the caller's own.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any, Protocol


class Runtime(Protocol):
    name: str

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
        """Create the container (init waits for `start`); returns the init's host pid.

        `on_spawned(pid)` is called once the init exists, possibly while it still sets itself
        up (the native runtime: the caller's work overlaps the init's); raising from it
        aborts the create. `started`: create and start in one (no `start` follows; the
        native runtime's init then waits on no FIFO): `on_spawned` runs before the process
        can begin, poststart hooks before this returns."""
        ...

    def start(self, container_id: str) -> None: ...

    def state(self, container_id: str) -> dict[str, Any]: ...

    def kill(self, container_id: str, sig: int = signal.SIGTERM, *, all: bool = False) -> None: ...

    def delete(self, container_id: str, *, force: bool = False) -> None: ...

    def pause(self, container_id: str) -> None: ...

    def resume(self, container_id: str) -> None: ...

    def ps(self, container_id: str) -> list[int]: ...

    def list(self) -> list[dict[str, Any]]: ...

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
        """create + start; unless `detach`, wait, delete, and return the exit code."""
        ...

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
        """Run an OCI process object in the container: exit code, or pid when `detach`."""
        ...
