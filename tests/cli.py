"""Run the `dockyard` console script the way a user types it, against a given state root."""

from __future__ import annotations

import subprocess
import sys
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
