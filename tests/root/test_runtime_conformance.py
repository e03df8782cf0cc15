"""The `Runtime` protocol contract, run against every implementation: our native runtime
in-process and runc through `ExternalRuntime`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import DockyardError, NotFound
from dockyard.runtime.api import Runtime
from tests.root.bundle_helpers import make_bundle

pytestmark = [pytest.mark.root]


@pytest.fixture(params=["dockyard", "runc"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    root = tempfile.mkdtemp(prefix="conf-", dir="/run")
    rt: Runtime
    if request.param == "dockyard":
        from dockyard.runtime.native import NativeRuntime

        rt = NativeRuntime(root)
    else:
        from tests.conftest import require_tool

        require_tool("runc")
        from dockyard.runtime.external import ExternalRuntime

        rt = ExternalRuntime("runc", root=root)
    try:
        yield rt
    finally:
        for state in rt.list():
            with contextlib.suppress(DockyardError):
                rt.delete(state["id"], force=True)
        shutil.rmtree(root, ignore_errors=True)


def _wait(rt: Runtime, cid: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while rt.state(cid)["status"] != status:
        assert time.monotonic() < deadline, f"{rt.name}: {cid} never became {status}"
        time.sleep(0.01)


def test_lifecycle_contract(runtime: Runtime, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", ["sleep", "1000"])
    cid = "conf-life"
    pid = runtime.create(cid, str(bundle))
    state = runtime.state(cid)
    assert (state["id"], state["status"], state["pid"]) == (cid, "created", pid)
    assert state["bundle"] == str(bundle) and state["ociVersion"]
    runtime.start(cid)
    assert runtime.state(cid)["status"] == "running"
    assert runtime.ps(cid) == [pid]
    proc = {"args": ["sh", "-c", "exit 5"], "cwd": "/", "env": ["PATH=/bin"]}
    assert runtime.exec(cid, proc) == 5
    runtime.pause(cid)
    assert runtime.state(cid)["status"] == "paused"
    runtime.resume(cid)
    assert runtime.state(cid)["status"] == "running"
    assert [s["id"] for s in runtime.list()] == [cid]
    with pytest.raises(DockyardError):
        runtime.delete(cid)
    runtime.kill(cid, signal.SIGKILL)
    _wait(runtime, cid, "stopped")
    runtime.delete(cid)
    with pytest.raises(NotFound):
        runtime.state(cid)


def test_run_reports_exit_code_with_given_stdio(runtime: Runtime, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    out, err = tmp_path / "out", tmp_path / "err"
    with open(os.devnull) as null, out.open("w") as o, err.open("w") as e:
        code = runtime.run("conf-run", str(bundle), stdio=(null.fileno(), o.fileno(), e.fileno()))
    assert code == 3
    assert (out.read_text(), err.read_text()) == ("out\n", "err\n")
    assert runtime.list() == []
