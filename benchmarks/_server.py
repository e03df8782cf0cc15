"""The command server in benchmarks: measure Dockyard as users run it (a warm server for the
state root, started by its second command), and stop it at the end.

`warm(dockyard, root)` runs commands until the server answers; `stop(root)` ends it (and its
spare). `DOCKYARD_SERVER=0` in the environment measures without a server instead.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.cli import server_pids
from tests.cli import stop_server as stop

__all__ = ["stop", "warm"]


def warm(dockyard: str, root: Path, env: dict[str, str] | None = None, timeout: float = 30) -> None:
    if (env or os.environ).get("DOCKYARD_SERVER", "1") == "0":
        return
    for _ in range(2):  # a root's second command starts its server
        subprocess.run([dockyard, "--root", str(root), "version"], env=env, capture_output=True)
    end = time.monotonic() + timeout
    while not (server_pids(root) and (root / "cli.sock").exists()):
        if time.monotonic() > end:
            raise RuntimeError(f"no command server for {root}")
        time.sleep(0.05)
