"""Bundle loading and derived values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.linux import kernel as k
from dockyard.runtime import spec


def test_default_spec_is_valid_and_like_runc() -> None:
    s = spec.default_spec()
    spec.check(s)
    assert spec.new_namespace_flags(s) == (
        k.CLONE_NEWPID | k.CLONE_NEWNET | k.CLONE_NEWIPC | k.CLONE_NEWUTS | k.CLONE_NEWNS
    )
    assert s["root"] == {"path": "rootfs", "readonly": True}


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        spec.load(str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(InvalidArgument, match=r"config\.json"):
        spec.load(str(tmp_path))
    bad = spec.default_spec()
    bad["process"]["args"] = []
    (tmp_path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(InvalidArgument, match=r"process\.args"):
        spec.load(str(tmp_path))
    bad = spec.default_spec()
    bad["linux"]["namespaces"].append({"type": "bogus"})
    with pytest.raises(InvalidArgument, match="bogus"):
        spec.check(bad)


def test_joined_namespaces_user_first_and_rootfs(tmp_path: Path) -> None:
    s = spec.default_spec()
    s["linux"]["namespaces"] = [
        {"type": "network", "path": "/proc/1/ns/net"},
        {"type": "user", "path": "/proc/1/ns/user"},
        {"type": "mount"},
    ]
    assert [t for t, _ in spec.joined_namespaces(s)] == ["user", "network"]
    assert spec.new_namespace_flags(s) == k.CLONE_NEWNS
    assert spec.rootfs(s, str(tmp_path)) == str(tmp_path / "rootfs")


def test_state_object_fields() -> None:
    st = spec.state_object("c1", "running", 42, "/b", {"a": "b"})
    assert st == {
        "ociVersion": spec.OCI_VERSION, "id": "c1", "status": "running", "bundle": "/b",
        "pid": 42, "annotations": {"a": "b"},
    }  # fmt: skip
    assert "pid" not in spec.state_object("c1", "stopped", 42, "/b", None)
