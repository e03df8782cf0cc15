"""Signalling, waiting for and reaping container processes.

Responsibility: kill a process quietly, reap it if it is our child, wait until a process that is
not our child is gone (zombies count as gone), translate wait statuses as shells do (signal N →
128 + N), and wait for a foreground container while forwarding terminal signals to it.
Invariant: never reaps a process it was not asked about (the engine may own other children).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # C module; `signal` imports enum (slow)
import os
import time

from dockyard.errors import DockyardError
from dockyard.linux.proc import start_time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Callable

SIGKILL = 9


def kill_quietly(pid: int) -> None:
    try:  # noqa: SIM105 - contextlib costs startup time
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        pass


def reap_if_child(pid: int) -> int | None:
    """waitpid `pid` if it is our child; its exit code, or None if it is not ours."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return exit_code(status)


def reap_nohang(pid: int) -> None:
    """Collect `pid` if it is our exited child (library use: init is our child)."""
    try:  # noqa: SIM105
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while start_time(pid) is not None:
        if time.monotonic() > deadline:
            raise DockyardError(f"process {pid} did not exit after SIGKILL")
        time.sleep(0.005)


def exit_code(status: int) -> int:
    """A wait status as shells and Docker report it: the exit code, or 128 + signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def wait_forwarding(pid: int) -> int:
    """Wait for our child `pid`, forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/2 to it."""
    restore = forward_signals(pid)
    try:
        return wait_child(pid)
    finally:
        restore()


def forward_signals(pid: int) -> Callable[[], None]:
    """From now on, send the signals a foreground process gets (`_FORWARDED`) to `pid`, as
    runc does for `run`/`exec` (also while a console is proxied); returns the undo."""

    def forward(signum: int, _frame: object) -> None:
        try:  # noqa: SIM105
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    old = {s: _signal.signal(s, forward) for s in _FORWARDED}

    def restore() -> None:
        for s, handler in old.items():
            _signal.signal(s, handler)

    return restore


def wait_child(pid: int) -> int:
    """Wait for our child `pid` (through signal handlers) and return its exit code."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return exit_code(status)
        except InterruptedError:
            continue


# SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 (numbers: `signal` imports `enum`)
_FORWARDED = (2, 15, 1, 3, 10, 12)
