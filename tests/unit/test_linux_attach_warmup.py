"""dockyard.linux.attach_warmup: finding our own cgroup.procs, and a helper that always ends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.linux import attach_warmup


def _procs(base: Path, *parts: str) -> str:
    d = base.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    (d / "cgroup.procs").write_text("")
    return str(d / "cgroup.procs")


def test_prefers_the_unified_hierarchy(tmp_path: Path) -> None:
    own = "4:memory:/m/x\n2:cpu,cpuacct:/a\n1:pids:/p\n0::/u/v\n"
    _procs(tmp_path, "pids", "p")
    assert attach_warmup.own_procs_file(own, str(tmp_path)) == str(tmp_path / "pids/p/cgroup.procs")
    unified = _procs(tmp_path, "unified", "u", "v")
    assert attach_warmup.own_procs_file(own, str(tmp_path)) == unified


def test_pure_v2_root_cgroup(tmp_path: Path) -> None:
    root = _procs(tmp_path)
    assert attach_warmup.own_procs_file("0::/\n", str(tmp_path)) == root


def test_nothing_mounted_gives_none(tmp_path: Path) -> None:
    assert attach_warmup.own_procs_file("0::/x\n4:memory:/m\n", str(tmp_path)) is None
    assert attach_warmup.own_procs_file("", str(tmp_path)) is None


def test_start_then_finish_leaves_no_child() -> None:
    attach_warmup.start()
    attach_warmup.start()  # idempotent while one is running
    helpers = list(attach_warmup._helpers)
    assert len(helpers) <= 1  # none without a cgroup filesystem or /bin/sh
    attach_warmup.finish()
    assert attach_warmup._helpers == []
    for pid in helpers:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped already
    attach_warmup.finish()  # nothing to reap: no error
