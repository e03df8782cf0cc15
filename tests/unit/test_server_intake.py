"""Which callers a command server serves (`cli.server_worker.same_interpreter`): its own
interpreter under any of its names in its directory, never another venv's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from dockyard.cli.server_worker import same_interpreter


def test_the_same_path_is_ours() -> None:
    assert same_interpreter(sys.executable)


def test_another_name_for_the_same_binary_in_the_same_directory_is_ours(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = tmp_path / "python3.11"
    real.write_text("")
    (tmp_path / "python").symlink_to(real.name)
    (tmp_path / "python3").symlink_to(real.name)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert same_interpreter(str(tmp_path / "python3"))


def test_the_same_binary_from_another_directory_is_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = tmp_path / "python3.11"
    real.write_text("")
    for venv in ("a", "b"):
        (tmp_path / venv).mkdir()
        (tmp_path / venv / "python").symlink_to(os.path.join("..", real.name))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "a" / "python"))
    assert not same_interpreter(str(tmp_path / "b" / "python"))
    assert not same_interpreter(str(tmp_path / "a" / "python2"))
