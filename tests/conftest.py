"""Shared test set-up.

Every test session gets its own temporary state root (DOCKYARD_ROOT), so no test touches
/var/lib/dockyard. Tests marked `root` need root and the real kernel and are skipped otherwise;
tests marked `peer` skip when the peer tool is missing (CI installs every peer).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Command servers (dockyard/cli/server.py) that the CLI starts for the state roots tests use end
# with this test session, and sooner when idle: no process outlives the session.
os.environ["DOCKYARD_SERVER_OWNER"] = str(os.getpid())
os.environ.setdefault("DOCKYARD_SERVER_IDLE", "60")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def session_root() -> Iterator[Path]:
    """A state root of this test session's own, removed at the end."""
    d = Path(tempfile.mkdtemp(prefix="dockyard-test-"))
    old = os.environ.get("DOCKYARD_ROOT")
    os.environ["DOCKYARD_ROOT"] = str(d)
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("DOCKYARD_ROOT", None)
        else:
            os.environ["DOCKYARD_ROOT"] = old
        shutil.rmtree(d, ignore_errors=True)


def require_tool(name: str) -> str:
    """Path of a peer tool, or skip the test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(scope="session", autouse=True)
def _network_isolation() -> Iterator[None]:
    """Give every state root of this session network names of its own (bridge, veths, nft
    table: `dt<2 hex><4 hex of the root>`), never the production `dockyard0`/`dockyard`, and
    remove everything carrying the session's tag at the end, with net.ipv4.ip_forward put
    back as it was."""
    tag = "dt" + secrets.token_hex(1)
    old_tag = os.environ.get("DOCKYARD_NETWORK_TAG")
    os.environ["DOCKYARD_NETWORK_TAG"] = tag
    fwd_path = Path("/proc/sys/net/ipv4/ip_forward")
    fwd = fwd_path.read_text() if fwd_path.exists() else None
    try:
        yield
    finally:
        if old_tag is None:
            os.environ.pop("DOCKYARD_NETWORK_TAG", None)
        else:
            os.environ["DOCKYARD_NETWORK_TAG"] = old_tag
        if os.geteuid() == 0:
            _remove_tagged(tag)
            if fwd is not None:
                with contextlib.suppress(OSError):
                    fwd_path.write_text(fwd)


def _remove_tagged(tag: str) -> None:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(tag):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    for line in tables.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith(tag):
            subprocess.run(["nft", "delete", "table", parts[1], parts[2]], capture_output=True)


# Paths the engine or a peer tool creates as a side effect (cgroup parents, the netns run dir,
# podman/skopeo's blob-info cache): removed at the end of the session when they were not there
# at its start, so a test run leaves the host as it found it.
_SIDE_EFFECTS = (
    *(f"/sys/fs/cgroup/{c}/{name}" for c in (
        "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd",
        "unified",
    ) for name in ("dockyard", "dockyard-build")),
    "/run/dockyard",
    "/var/lib/containers",
    "/run/runc",
    "/run/crun",
)  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _host_side_effects() -> Iterator[None]:
    before = {p for p in _SIDE_EFFECTS if os.path.exists(p)}
    yield
    if os.geteuid() != 0:
        return
    from tests.cli import stop_server

    stop_server(owner=os.getpid())  # this session's servers, with their last workers
    for p in _SIDE_EFFECTS:
        if p in before or not os.path.exists(p):
            continue
        if p.startswith("/sys/fs/cgroup/"):
            # only when empty: a live container's cgroup keeps it; a `--rm` supervisor may
            # still be removing its container's cgroup for a moment
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(p)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        else:
            with open("/proc/mounts") as f:
                if any(line.split()[1].startswith(p + "/") for line in f):
                    continue  # something is still mounted below it: leave it
            shutil.rmtree(p, ignore_errors=True)
