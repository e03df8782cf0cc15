"""Run the `dockyard` console script the way a user types it, against a given state root."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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


def server_pids(root: Path | None = None, owner: int | None = None) -> list[int]:
    """Command servers (and their spares) running for state root `root`, or started under
    `DOCKYARD_SERVER_OWNER=owner` (a test session's pid)."""
    want = str(root).encode() if root is not None else None
    mark = f"DOCKYARD_SERVER_OWNER={owner}".encode() if owner is not None else None
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if b"dockyard.cli.server" not in cmd or (want is not None and want not in cmd):
                continue
            if mark is not None and mark not in Path(f"/proc/{entry}/environ").read_bytes():
                continue
        except OSError:
            continue
        out.append(int(entry))
    return out


def stop_server(root: Path | None = None, owner: int | None = None, timeout: float = 10.0) -> None:
    """End every command server of `root` (or of test session `owner`), also one still
    starting up, and wait until they are gone: for tests that check that no process is left
    mentioning their state root, and for the end of a session."""
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        pids = server_pids(root, owner)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if pids:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:  # none, and none appeared meanwhile
            return
        time.sleep(0.02)


@contextlib.contextmanager
def busybox_root(tmp: Path, name: str = "bb") -> Iterator[Path]:
    """A state root under `tmp` with the busybox base image imported as `name`; on the way out
    every container is removed and no mount of the root may be left."""
    from tests.images import BASE_CHANGES, write_busybox_rootfs

    state = tmp / "state"
    tar = tmp / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    args = [a for c in BASE_CHANGES for a in ("--change", c)]
    dy(state, "import", *args, str(tar), name)
    try:
        yield state
    finally:
        ids = dy(state, "ps", "-aq", "--no-trunc", check=False).out.split()
        if ids:
            dy(state, "rm", "-f", *ids, check=False)
        with open("/proc/mounts") as f:
            left = [line for line in f if str(state) in line]
        for cid in ids:
            assert not Path(f"/sys/fs/cgroup/pids/dockyard/{cid}").exists()
        assert not left, left
