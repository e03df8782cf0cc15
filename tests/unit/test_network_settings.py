"""Network names per state root (`engine.network_settings`): the default root keeps the
production names; any other root gets its own, so two roots never share a bridge or a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import DEFAULT_ROOT
from dockyard.engine import network_settings


def test_the_default_root_keeps_the_production_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_NETWORK_TAG", raising=False)
    s = network_settings(None, DEFAULT_ROOT)
    assert (s.table, s.default_bridge) == ("dockyard", "dockyard0")


def test_other_roots_get_names_of_their_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DOCKYARD_NETWORK_TAG", raising=False)
    a, b = (network_settings(None, tmp_path / n) for n in ("a", "b"))
    assert a.table != b.table and a.default_bridge != b.default_bridge
    for s in (a, b):
        assert s.table.startswith("dy") and s.table != "dockyard"
        assert s.default_bridge == f"{s.table}b0" and len(s.default_bridge) <= 15
        assert s.veth_prefix.startswith(s.table)
        assert s.default_prefixlen == 24
    assert network_settings(None, tmp_path / "a") == a  # stable for a root


def test_a_session_tag_names_every_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKYARD_NETWORK_TAG", "dt1")
    assert network_settings(None, tmp_path).table.startswith("dt1")
    assert network_settings(None, DEFAULT_ROOT).table.startswith("dt1")


def test_an_explicit_network_config_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKYARD_NETWORK_TAG", raising=False)
    s = network_settings({"table": "mine", "default-bridge": "mine0"}, tmp_path)
    assert (s.table, s.default_bridge) == ("mine", "mine0")
