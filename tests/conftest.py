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


@pytest.fixture(scope="session", autouse=True)
def _host_side_effects() -> Iterator[None]:
    """Cgroup parents, run dirs and caches this session made go at its end (tests/hostfx)."""
    from tests import hostfx

    before = hostfx.existing()
    yield
    if os.geteuid() != 0:
        return
    from tests.cli import stop_server

    stop_server(owner=os.getpid())  # this session's servers, with their last workers
    hostfx.remove_new(before)
