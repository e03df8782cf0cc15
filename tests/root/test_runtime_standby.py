"""The standby init (`runtime.standby`): started ahead in its cgroup, it becomes the container's
init when the spec fits, is dropped when it does not, and leaves nothing behind either way —
nor when its supervisor dies without dropping it (the next `make_ready` sweeps)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.linux.cgroups import open_cgroup
from dockyard.runtime import standby
from dockyard.runtime.native import NativeRuntime
from tests.root.bundle_helpers import default_config, make_bundle, write_config

pytestmark = [pytest.mark.root]


@pytest.fixture(autouse=True)
def _no_standby_left() -> Iterator[None]:
    yield
    standby.drop()


def _typical(tmp_path: Path, cid: str, args: list[str]) -> tuple[Path, dict[str, Any]]:
    """A bundle whose spec the standby fits: new PID and mount namespaces only, the
    cgroup /dockyard/<id>."""
    config = default_config(args)
    config["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}]
    config["linux"]["cgroupsPath"] = f"/dockyard/{cid}"
    config.pop("hostname", None)
    return make_bundle(tmp_path / "bundle", args, config=config), config


def _ready(rt: NativeRuntime, cid: str, spec: dict[str, Any]) -> standby.Standby:
    sb = standby.make_ready(rt.states.root, rt.seccomp_cache, cid, spec)
    assert sb is not None
    deadline = time.monotonic() + 20
    while not sb.ready():
        assert time.monotonic() < deadline, "the standby never warmed up"
        time.sleep(0.01)
    return sb


def _dirs(cgroup_path: str) -> list[Path]:
    return [Path(d) for d in open_cgroup(cgroup_path).mount_sources().values()]


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_standby_becomes_the_init(rt: NativeRuntime, tmp_path: Path) -> None:
    cid = f"sb-{tmp_path.name[-10:]}"
    bundle, spec = _typical(tmp_path, cid, ["sh", "-c", "echo $$ > /dev/shm/pid; sleep 1000"])
    keep = os.open("/dev/null", os.O_RDONLY)  # inheritable: must not reach the standby
    try:
        sb = _ready(rt, cid, spec)
    finally:
        os.close(keep)
    dirs = _dirs(f"/dockyard/{cid}")
    assert all(d.is_dir() for d in dirs) and Path(sb.marker).exists()
    # its stdio, its job socket and channel: nothing else of ours
    assert len(os.listdir(f"/proc/{sb.pid}/fd")) == 6, os.listdir(f"/proc/{sb.pid}/fd")
    pid = rt.create(cid, str(bundle), started=True)
    assert pid == sb.pid and not Path(sb.marker).exists()
    shown = Path(f"/proc/{pid}/root/dev/shm/pid")
    deadline = time.monotonic() + 5
    while not shown.exists() or not shown.read_text().strip():
        assert time.monotonic() < deadline, "the container's process did not run"
        time.sleep(0.01)
    assert shown.read_text().strip() == "1"  # the init of its own PID namespace
    assert rt.ps(cid) == [pid]  # in the container's cgroup
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    rt.kill(cid, signal.SIGKILL)
    assert rt.wait(cid) == 137
    rt.delete(cid)
    assert [d for d in dirs if d.exists()] == []


def test_a_spec_that_does_not_fit_drops_the_standby(rt: NativeRuntime, tmp_path: Path) -> None:
    cid = f"sbx-{tmp_path.name[-10:]}"
    bundle, spec = _typical(tmp_path, cid, ["true"])
    sb = _ready(rt, cid, spec)
    other = dict(spec, linux={**spec["linux"], "resources": {"pids": {"limit": 64}}})
    write_config(bundle, other)
    pid = rt.create(cid, str(bundle), started=True)
    assert pid != sb.pid and _gone(sb.pid) and not Path(sb.marker).exists()
    assert rt.wait(cid) == 0
    rt.delete(cid)
    assert [d for d in _dirs(f"/dockyard/{cid}") if d.exists()] == []


def test_dropped_standby_leaves_nothing(rt: NativeRuntime, tmp_path: Path) -> None:
    cid = f"sbd-{tmp_path.name[-10:]}"
    _bundle, spec = _typical(tmp_path, cid, ["true"])
    sb = _ready(rt, cid, spec)
    dirs = _dirs(f"/dockyard/{cid}")
    standby.drop()
    assert _gone(sb.pid) and not Path(sb.marker).exists()
    assert [d for d in dirs if d.exists()] == []


def test_sweep_removes_what_a_killed_supervisor_left(rt: NativeRuntime, tmp_path: Path) -> None:
    cid = f"sbk-{tmp_path.name[-10:]}"
    markers = Path(rt.states.root) / "@standby"
    markers.mkdir(parents=True)
    cg = open_cgroup(f"/dockyard/{cid}")
    cg.create()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (markers / cid).write_text(f"{dead} 1 /dockyard/{cid}\n")
    standby.sweep(str(markers))
    assert not (markers / cid).exists()
    assert [d for d in _dirs(f"/dockyard/{cid}") if d.exists()] == []


def test_a_dead_standby_is_not_taken(rt: NativeRuntime, tmp_path: Path) -> None:
    """A standby that died after it was ready (killed): the container is created the usual
    way, in the cgroup the drop removed and the runtime made again."""
    cid = f"sbz-{tmp_path.name[-10:]}"
    bundle, spec = _typical(tmp_path, cid, ["true"])
    sb = _ready(rt, cid, spec)
    _kill(sb.pid)
    pid = rt.create(cid, str(bundle), started=True)
    assert pid != sb.pid and rt.wait(cid) == 0
    rt.delete(cid)
    assert [d for d in _dirs(f"/dockyard/{cid}") if d.exists()] == []


def _kill(pid: int) -> None:
    """SIGKILL, and wait until it is a zombie (a standby that dies *while* it is taken is a
    failed start, as any init dying then)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_standby_lost_while_taking_its_job_falls_back(
    rt: NativeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It died between `take` and the job (here: it looked ready, its socket was closed):
    `Lost`, dropped, and the container is created the usual way."""
    cid = f"sbl-{tmp_path.name[-10:]}"
    bundle, spec = _typical(tmp_path, cid, ["true"])
    sb = _ready(rt, cid, spec)
    _kill(sb.pid)
    monkeypatch.setattr(standby.Standby, "ready", lambda self: True)
    pid = rt.create(cid, str(bundle), started=True)
    assert pid != sb.pid and rt.wait(cid) == 0
    assert _gone(sb.pid) and not Path(sb.marker).exists()
    rt.delete(cid)
    assert [d for d in _dirs(f"/dockyard/{cid}") if d.exists()] == []
