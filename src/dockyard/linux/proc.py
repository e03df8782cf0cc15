"""Processes as /proc shows them (layer L1): is a pid alive, and is it still the same process.

A pid alone is not an identity — pids are reused. Records that must survive their writer (a
container's init, its supervisor) store the pid with its start time (field 22 of
/proc/PID/stat) and check both. Leases and staging dirs that only need "is the writer still
there" use `exists`. Only os: cheap on every start path.
"""

from __future__ import annotations

import os


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None if the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, if `started` is given, is the process that
    started then."""
    if pid <= 0:
        return False
    now = start_time(pid)
    return now is not None and (not started or now == started)


def exists(pid: int) -> bool:
    """Whether a process (even a zombie, even another user's) has this pid."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
