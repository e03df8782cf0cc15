"""Run the `dockyard` console script the way a user types it, against a given state root."""

from __future__ import annotations

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
    """End the command server of `root`, if one runs, and wait until it is gone (for tests that
    check that no process is left mentioning their state root)."""
    try:
        pid = int((root / "cli.pid").read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
