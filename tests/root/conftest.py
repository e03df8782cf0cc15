"""Fixtures shared by the root tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.runtime.native import NativeRuntime


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[NativeRuntime]:
    """A `NativeRuntime` on a private state root; every container it still knows is deleted
    afterwards."""
    runtime = NativeRuntime(str(tmp_path / "state"))
    try:
        yield runtime
    finally:
        for cid in runtime.states.ids():
            try:
                runtime.delete(cid, force=True)
            except Exception as e:  # keep cleaning the others
                print(f"cleanup of {cid} failed: {e}")
