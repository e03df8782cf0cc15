"""jsonio, the sync channel, process set-up order, default device rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dockyard.errors import NotFound
from dockyard.linux import kernel as k
from dockyard.linux.fake import FakeKernel
from dockyard.runtime import jsonio, process
from dockyard.runtime.channel import pair
from dockyard.runtime.reap import exit_code
from dockyard.runtime.spec import with_default_devices


def test_jsonio_matches_json() -> None:
    doc = {"a": [1, 2.5, "é\n", None, True, False], "b": {"c": -1, "d": ""}}
    assert jsonio.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert jsonio.loads(" \n" + json.dumps(doc, indent=2) + "\n") == doc
    for bad in ("{", "[1,]", "1 2", ""):
        with pytest.raises(ValueError):
            jsonio.loads(bad)


def test_channel_carries_typed_errors_and_defers() -> None:
    parent, child = pair()
    try:
        child.send("ready")
        child.send("pid", pid=7)
        assert parent.expect("pid", defer=("ready",))["pid"] == 7
        assert parent.expect("ready")["t"] == "ready"
        child.send_error(NotFound("no such thing"))
        with pytest.raises(NotFound, match="no such thing"):
            parent.expect("ready")
        child.close()
        with pytest.raises(Exception, match="exited"):
            parent.expect("ready")
    finally:
        parent.close()


def test_identity_order_on_fake_kernel() -> None:
    proc = {
        "args": ["x"],
        "user": {"uid": 1000, "gid": 1001, "additionalGids": [5]},
        "noNewPrivileges": True,
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                         "permitted": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}],
    }  # fmt: skip
    prep = process.Prepared(proc, 40, {})
    fake = FakeKernel()
    process.set_limits(fake, proc)
    process.set_identity(fake, prep)
    names = [n for n in fake.names() if n != "prctl"]
    assert names == ["setrlimit", "setgroups", "setresgid", "setresuid", "capset"]
    assert fake.calls[0] == ("setrlimit", 7, 10, 20)
    prctls = [c[1] for c in fake.calls if c[0] == "prctl"]
    assert prctls.index(k.PR_SET_NO_NEW_PRIVS) > prctls.index(k.PR_CAPBSET_DROP)
    assert ("setgroups", [5]) in fake.calls


def test_resolve_uses_the_container_path(tmp_path: Path) -> None:
    exe = tmp_path / "tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert process.resolve("tool", {"PATH": f"/nonexistent:{tmp_path}"}) == str(exe)
    with pytest.raises(NotFound, match="executable file not found"):
        process.resolve("tool", {"PATH": "/nonexistent"})
    with pytest.raises(NotFound):
        process.resolve("/no/such", {})
    assert process.environment({"env": ["A=1", "B"], "user": {"uid": 4242}}) == {
        "A": "1", "B": "", "HOME": "/",
    }  # fmt: skip


def test_exit_codes_like_shells() -> None:
    assert exit_code(3 << 8) == 3
    assert exit_code(9) == 137


def test_default_device_rules_follow_the_spec_rules() -> None:
    spec = {
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
        }
    }
    rules = with_default_devices(spec)["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in rules
    assert rules[-1]["major"] == 10 and rules[-1]["minor"] == 229
    assert spec["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert os.getpid() > 0
