"""Run the `dockyard` console script the way a user types it, against a given state root."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


@dataclass
class Result:
    rc: int
    out: str
    err: str


def dy(root: Path, *args: str, input: bytes | None = None, check: bool = True) -> Result:
    p = subprocess.run(
        [DOCKYARD, "--root", str(root), *args], input=input, capture_output=True, timeout=120
    )
    r = Result(p.returncode, p.stdout.decode(), p.stderr.decode())
    if check and r.rc != 0:
        raise AssertionError(f"dockyard {' '.join(args)} exited {r.rc}: {r.err}")
    return r


def stop_server(root: Path, timeout: float = 10.0) -> None:
    """End every command server of `root` (also one still starting up) and wait until they are
    gone: for tests that check that no process is left mentioning their state root."""
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        pids = _servers_of(root)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if pids:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:  # none, and none appeared meanwhile
            return
        time.sleep(0.02)


def _servers_of(root: Path) -> list[int]:
    want = str(root).encode()
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"dockyard.cli.server" in cmd and want in cmd:
                out.append(int(entry))
    return out
