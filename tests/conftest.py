"""Shared test set-up.

Every test session gets its own temporary state root (DOCKYARD_ROOT), so no test touches
/var/lib/dockyard. Tests marked `root` need root and the real kernel and are skipped otherwise;
tests marked `peer` skip when the peer tool is missing (CI installs every peer).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


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
