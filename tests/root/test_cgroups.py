"""Real-kernel tests of dockyard.linux.cgroups (root). Every cgroup lives under a unique
/dockyard-test-<hex> path and every directory and process is removed in a finally."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.errors import NotFound
from dockyard.linux.cgroups import (
    Cgroup,
    cgroup_for_pid,
    cgroup_from_sources,
    cgroup_mode,
    open_cgroup,
)

pytestmark = pytest.mark.root

if (
    not Path("/proc/self/mountinfo").exists()
    or "cgroup" not in Path("/proc/self/mountinfo").read_text()
):
    pytest.skip("no cgroup hierarchy mounted", allow_module_level=True)

Opener = Callable[..., Cgroup]
Spawner = Callable[..., subprocess.Popen[bytes]]

HOLD = "import sys; sys.stdin.readline()\n"  # child waits until we have moved it into the cgroup


@pytest.fixture
def cgroups() -> Iterator[Opener]:
    """Open cgroups under a unique test root; destroy them and the root's dirs afterwards."""
    top = f"dockyard-test-{secrets.token_hex(4)}"
    opened: list[Cgroup] = []

    def opener(name: str, *, version: int | None = None, relative: bool = False) -> Cgroup:
        path = f"{top}/{name}" if relative else f"/{top}/{name}"
        cg = open_cgroup(path, version=version)
        opened.append(cg)
        return cg

    try:
        yield opener
    finally:
        for cg in opened:
            try:
                cg.destroy()
            finally:
                for d in _sources(cg).values():
                    _remove_up_to(d, top)


def _sources(cg: Cgroup) -> dict[str, Path]:
    """mount_sources() (plain strings) as Paths, for reading files back."""
    return {name: Path(d) for name, d in cg.mount_sources().items()}


def _remove_up_to(d: Path, top: str) -> None:
    while d.name and d.parent != d:
        if d.is_dir():
            os.rmdir(d)
        if d.name == top:
            return
        d = d.parent


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    procs: list[subprocess.Popen[bytes]] = []

    def spawner(*argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(p)
        return p

    try:
        yield spawner
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def _release(p: subprocess.Popen[bytes]) -> None:
    assert p.stdin is not None
    p.stdin.write(b"go\n")
    p.stdin.flush()


def _py(code: str) -> tuple[str, str, str]:
    return (sys.executable, "-c", HOLD + code)


def test_mode_is_detected() -> None:
    assert cgroup_mode() in ("v1", "hybrid", "v2")


def test_create_memory_limit_read_back(cgroups: Opener) -> None:
    cg = cgroups("mem")
    cg.create({"memory": {"limit": 64 << 20, "reservation": 32 << 20}, "pids": {"limit": 50}})
    stats = cg.stats()
    assert stats.memory_limit == 64 << 20
    assert stats.pids_limit == 50
    assert all(d.is_dir() for d in _sources(cg).values())


def test_oom_kill_is_reported(cgroups: Opener, spawn: Spawner) -> None:
    cg = cgroups("oom")
    limit = 32 << 20
    cg.create({"memory": {"limit": limit, "swap": limit}})
    assert not cg.oom_killed()
    p = spawn(*_py("b = b'x' * (256 << 20)\n"))
    cg.add(p.pid)
    _release(p)
    assert p.wait(timeout=20) == -9
    assert cg.oom_killed()
    assert (cg.stats().oom_kills or 0) >= 1


def test_pids_limit_stops_fork_loop(cgroups: Opener, spawn: Spawner) -> None:
    cg = cgroups("pids")
    cg.create({"pids": {"limit": 5}})
    forker = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30); os._exit(0)\n"
        "    n += 1\n"
        "print(n, flush=True)\n"
        "time.sleep(30)\n"
    )
    p = spawn(*_py(forker))
    cg.add(p.pid)
    _release(p)
    assert p.stdout is not None
    assert int(p.stdout.readline()) == 4  # the forker itself + 4 children = pids.max
    assert cg.stats().pids_current == 5
    assert len(cg.pids()) == 5


def test_freeze_stops_cpu_until_thaw(cgroups: Opener, spawn: Spawner) -> None:
    cg = cgroups("freeze")
    cg.create()
    p = spawn("/bin/busybox", "sh", "-c", "while :; do :; done")
    cg.add(p.pid)
    time.sleep(0.1)
    cg.freeze()
    assert cg.state() == "frozen"
    before = cg.stats().cpu_usage_ns
    time.sleep(0.3)
    assert cg.stats().cpu_usage_ns == before
    cg.thaw()
    assert cg.state() == "thawed"
    time.sleep(0.3)
    after = cg.stats().cpu_usage_ns
    assert before is not None and after is not None and after > before


def test_destroy_removes_dirs_with_live_processes(cgroups: Opener, spawn: Spawner) -> None:
    cg = cgroups("destroy")
    cg.create()
    procs = [spawn("/bin/busybox", "sleep", "60") for _ in range(3)]
    for p in procs:
        cg.add(p.pid)
    assert cg.pids() == sorted(p.pid for p in procs)
    cg.destroy()
    assert not any(d.exists() for d in _sources(cg).values())
    assert [p.wait(timeout=5) for p in procs] == [-9, -9, -9]
    cg.destroy()  # idempotent


def test_kill_with_sigterm_and_cgroup_for_pid(cgroups: Opener, spawn: Spawner) -> None:
    cg = cgroups("kill")
    cg.create()
    p = spawn("/bin/busybox", "sleep", "60")
    cg.add(p.pid)
    mine = cgroup_for_pid(p.pid)
    key = "memory" if cg.version == 1 else "unified"
    assert mine[key] == cg.path
    cg.kill(15)
    assert p.wait(timeout=5) == -15
    assert cg.state() == "thawed"


def test_cpu_and_cpuset_read_back(cgroups: Opener) -> None:
    cg = cgroups("cpu")
    cg.create({"cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"}})
    src = _sources(cg)
    if cg.version == 1:
        assert (src["cpu"] / "cpu.shares").read_text().strip() == "512"
        assert (src["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "20000"
        assert (src["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (src["cpuset"] / "cpuset.cpus").read_text().strip() == "0"
        assert (src["cpuset"] / "cpuset.mems").read_text().strip() == "0"
    else:
        assert (src["unified"] / "cpu.weight").read_text().strip() == "59"
        assert (src["unified"] / "cpu.max").read_text().strip() == "20000 100000"
        assert (src["unified"] / "cpuset.cpus").read_text().strip() == "0"
    # lowering the period below the quota's current ratio must still work (retry ordering)
    cg.apply({"cpu": {"quota": 5000, "period": 10000}})


def test_devices_deny_all_then_allow(cgroups: Opener) -> None:
    cg = cgroups("dev")
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]
    cg.create({"devices": rules})
    if not cg.devices_enforced:
        pytest.skip("devices are not enforced by cgroups on v2")
    listed = (_sources(cg)["devices"] / "devices.list").read_text().split("\n")
    assert "c 1:3 rwm" in listed and "a *:* rwm" not in listed


def test_relative_path_goes_under_own_cgroup(cgroups: Opener) -> None:
    cg = cgroups("rel", relative=True)
    cg.create()
    own = cgroup_for_pid(os.getpid())
    for name, d in cg.mount_sources().items():
        key = {"systemd": "name=systemd"}.get(name, name)
        assert str(d).endswith(own[key].rstrip("/") + "/" + cg.path)


def test_unified_tree_works_without_controllers(cgroups: Opener, spawn: Spawner) -> None:
    if cgroup_mode() == "v1":
        pytest.skip("no unified hierarchy")
    cg = cgroups("v2", version=2)
    cg.create()
    p = spawn("/bin/busybox", "sleep", "60")
    cg.add(p.pid)
    assert cg.pids() == [p.pid]
    cg.freeze()
    assert cg.state() == "frozen"
    cg.thaw()
    cg.kill()
    assert p.wait(timeout=5) == -9
    cg.destroy()
    assert not _sources(cg)["unified"].exists()


def test_reopen_from_saved_sources(cgroups: Opener, spawn: Spawner) -> None:
    cg = cgroups("saved")
    cg.create({"pids": {"limit": 9}})
    saved = {k: str(v) for k, v in cg.mount_sources().items()}
    again = cgroup_from_sources(cg.path, saved)
    assert again.version == cg.version and again.mount_sources() == cg.mount_sources()
    p = spawn("/bin/busybox", "sleep", "60")
    again.add(p.pid)
    assert cg.pids() == [p.pid] and again.stats().pids_limit == 9
    again.destroy()
    assert p.wait(timeout=5) == -9
    with pytest.raises(NotFound):
        cg.state() if cg.version == 1 else cg.add(os.getpid())
