"""State directories: ids, atomic records, liveness by pid and start time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import AlreadyExists, InvalidArgument, NotFound
from dockyard.linux.proc import alive, start_time
from dockyard.runtime.state import StateRoot, check_id


def test_ids_are_checked() -> None:
    assert check_id("abc-1.2_x+y") == "abc-1.2_x+y"
    for bad in ("", "..", "a/b", "a b", "x" * 2000):
        with pytest.raises(InvalidArgument):
            check_id(bad)


def test_records_round_trip_atomically(tmp_path: Path) -> None:
    root = StateRoot(str(tmp_path / "root"))
    d = root.create("c1")
    assert oct(os.stat(d).st_mode & 0o777) == "0o711"
    with pytest.raises(AlreadyExists):
        root.create("c1")
    root.save("c1", {"id": "c1", "pid": 5})
    root.save("c1", {"id": "c1", "pid": 6})
    assert root.load("c1") == {"id": "c1", "pid": 6}
    assert sorted(os.listdir(d)) == ["state.json"]  # no temporary left behind
    assert root.ids() == ["c1"]
    root.remove("c1")
    assert root.ids() == []
    with pytest.raises(NotFound):
        root.load("c1")


def test_liveness_uses_start_time() -> None:
    me = os.getpid()
    started = start_time(me)
    assert started is not None and alive(me, started)
    assert not alive(me, started + 1)  # same pid, another process
    assert not alive(2**22 + 12345, None)
