"""The command server in benchmarks: measure Dockyard as users run it (a warm server for the
state root, started by the first command), and stop it at the end.

`warm(dockyard, root)` runs one command and waits until the server answers; `stop(root)` ends
it. `DOCKYARD_SERVER=0` in the environment measures without a server instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def pid_of(root: Path) -> int | None:
    try:
        pid = int((root / "cli.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def warm(dockyard: str, root: Path, env: dict[str, str] | None = None, timeout: float = 30) -> None:
    if (env or os.environ).get("DOCKYARD_SERVER", "1") == "0":
        return
    for _ in range(2):  # a root's second command starts its server
        subprocess.run([dockyard, "--root", str(root), "version"], env=env, capture_output=True)
    end = time.monotonic() + timeout
    while not (pid_of(root) and (root / "cli.sock").exists()):
        if time.monotonic() > end:
            raise RuntimeError(f"no command server for {root}")
        time.sleep(0.05)


def stop(root: Path) -> None:
    pid = pid_of(root)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < end:
        time.sleep(0.02)
