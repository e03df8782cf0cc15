"""V1Cgroup and V2Cgroup against fake cgroup trees in tmp_path (no root, no kernel)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument, NotFound, Unavailable
from dockyard.linux.cgroups import CgroupStats, V1Cgroup, V2Cgroup, _fs, open_cgroup

V2_LEAF_FILES = {
    "cgroup.procs": "",
    "cgroup.freeze": "0",
    "cgroup.events": "populated 0\nfrozen 1\n",
    "cgroup.kill": "",
    "memory.max": "max",
    "memory.low": "0",
    "memory.swap.max": "max",
    "memory.current": "4096",
    "memory.peak": "8192",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    "cpu.weight": "100",
    "cpu.max": "max 100000",
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\n",
    "pids.max": "max",
    "pids.current": "2",
    "io.stat": "8:0 rbytes=100 wbytes=20 rios=1\n8:16 rbytes=1 wbytes=2\n",
}


def _files(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record every cgroup write (path relative to nothing, value) and still perform it."""
    log: list[tuple[str, str]] = []
    real = _fs.write

    def recording(path: str, value: str | int) -> None:
        log.append((str(path), str(value)))
        real(path, value)

    monkeypatch.setattr(_fs, "write", recording)
    return log


@pytest.fixture
def v2(tmp_path: Path) -> V2Cgroup:
    root = tmp_path / "unified"
    _files(root, {"cgroup.controllers": "cpuset cpu io memory pids", "cgroup.subtree_control": ""})
    _files(root / "dy", {"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "cpu"})
    _files(root / "dy" / "c1", V2_LEAF_FILES)
    return V2Cgroup("/dy/c1", root, root / "dy" / "c1")


def test_v2_apply_writes_files_and_enables_controllers(
    v2: V2Cgroup, writes: list[tuple[str, str]]
) -> None:
    v2.create({"memory": {"limit": 1 << 20, "swap": 3 << 20}, "cpu": {"shares": 512}})
    d = Path(v2.dir)
    assert (d / "memory.max").read_text() == str(1 << 20)
    assert (d / "memory.swap.max").read_text() == str(2 << 20)
    assert (d / "cpu.weight").read_text() == "59"
    enabled = [(Path(p).parent.name, v) for p, v in writes if p.endswith("subtree_control")]
    # root: cpu and memory; dy: only memory (cpu is already on); never the leaf itself
    assert enabled == [("unified", "+cpu"), ("unified", "+memory"), ("dy", "+memory")]


def test_v2_create_without_resources_touches_no_subtree_control(
    v2: V2Cgroup, writes: list[tuple[str, str]]
) -> None:
    v2.create()
    assert writes == []


def test_v2_missing_controller_and_file(v2: V2Cgroup) -> None:
    with pytest.raises(Unavailable, match="'io' is not available"):
        v2.apply({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}})
    (Path(v2.dir) / "pids.max").unlink()
    with pytest.raises(Unavailable, match=r"pids\.max"):
        v2.apply({"pids": {"limit": 3}})


def test_v2_unified_and_devices_flag(v2: V2Cgroup) -> None:
    v2.apply({"unified": {"memory.low": "123"}, "devices": [{"allow": False}]})
    assert (Path(v2.dir) / "memory.low").read_text() == "123"
    assert v2.devices_enforced is False


def test_v2_freeze_state_kill(v2: V2Cgroup) -> None:
    v2.freeze()
    assert (Path(v2.dir) / "cgroup.freeze").read_text() == "1"
    assert v2.state() == "frozen"
    v2.thaw()
    assert (Path(v2.dir) / "cgroup.freeze").read_text() == "0"
    v2.kill()
    assert (Path(v2.dir) / "cgroup.kill").read_text() == "1"


def test_v2_stats_and_oom(v2: V2Cgroup) -> None:
    s = v2.stats()
    assert s.memory_usage == 4096 and s.memory_limit is None and s.memory_max_usage == 8192
    assert s.cpu_usage_ns == 1_500_000
    assert s.pids_current == 2 and s.pids_limit is None
    assert s.oom_kills == 1 and v2.oom_killed()
    assert (s.blkio_read_bytes, s.blkio_write_bytes) == (101, 22)
    assert v2.mount_sources() == {"unified": v2.dir}


def test_v2_rejects_dir_outside_root(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        V2Cgroup("/x", tmp_path / "a", tmp_path / "b")
    with pytest.raises(InvalidArgument):
        V2Cgroup("/x", tmp_path / "a", tmp_path / "ab")  # a string prefix is not a parent
    assert V2Cgroup("/x", f"{tmp_path}/a/", tmp_path / "a" / "b").dir == f"{tmp_path}/a/b"


# ---- v1 ----


@pytest.fixture
def v1(tmp_path: Path) -> V1Cgroup:
    dirs: dict[str, Path] = {}
    _files(tmp_path / "cpuset", {"cpuset.cpus": "0-1", "cpuset.mems": "0"})
    _files(tmp_path / "cpuset" / "dy", {"cpuset.cpus": "", "cpuset.mems": ""})
    _files(tmp_path / "cpuset" / "dy" / "c1", {"cpuset.cpus": "", "cpuset.mems": ""})
    leaf_files = {
        "memory": {
            "memory.limit_in_bytes": "9223372036854771712",
            "memory.memsw.limit_in_bytes": "9223372036854771712",
            "memory.usage_in_bytes": "100",
            "memory.max_usage_in_bytes": "200",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        },
        "cpu": {"cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"},
        "cpuacct": {"cpuacct.usage": "777"},
        "freezer": {"freezer.state": "THAWED"},
        "pids": {"pids.max": "max", "pids.current": "1"},
        "devices": {"devices.allow": "", "devices.deny": ""},
        "blkio": {
            "blkio.bfq.weight": "100",
            "blkio.throttle.io_service_bytes_recursive": "8:0 Read 10\n8:0 Write 5\n"
            "8:0 Total 15\nTotal 15\n",
        },
    }
    for ctrl, files in leaf_files.items():
        _files(tmp_path / ctrl / "dy" / "c1", files)
    for ctrl in [*leaf_files, "cpuset"]:
        dirs[ctrl] = tmp_path / ctrl / "dy" / "c1"
    dirs["name=systemd"] = tmp_path / "systemd" / "dy" / "c1"
    return V1Cgroup("/dy/c1", dirs)


def test_v1_create_initialises_cpuset_and_applies(v1: V1Cgroup) -> None:
    v1.create(
        {
            "cpu": {"shares": 512, "quota": 20000, "period": 50000, "mems": "0"},
            "pids": {"limit": 7},
            "blockIO": {"weight": 300},
            "devices": [{"allow": False, "access": "rwm"}],
        }
    )
    dirs = {name: Path(d) for name, d in v1.dirs.items()}  # plain strings inside
    cpuset = dirs["cpuset"]
    assert (cpuset.parent / "cpuset.cpus").read_text() == "0-1"
    assert (cpuset / "cpuset.cpus").read_text() == "0-1"
    assert (cpuset / "cpuset.mems").read_text() == "0"
    assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "20000"
    assert (dirs["pids"] / "pids.max").read_text() == "7"
    assert (dirs["blkio"] / "blkio.bfq.weight").read_text() == "300"  # fallback file
    assert (dirs["devices"] / "devices.deny").read_text() == "a *:* rwm"
    assert dirs["name=systemd"].is_dir()
    assert v1.devices_enforced


def test_v1_memsw_retried_after_limit(v1: V1Cgroup, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lowering: the kernel refuses memsw < current limit, so it's written after the limit."""
    order: list[str] = []
    real = _fs.write

    def kernel_like(where: str, value: str | int) -> None:
        path = Path(where)
        if path.name == "memory.memsw.limit_in_bytes":
            limit = int((path.parent / "memory.limit_in_bytes").read_text())
            if int(value) < limit:
                raise InvalidArgument("EINVAL")
        order.append(path.name)
        real(where, value)

    monkeypatch.setattr(_fs, "write", kernel_like)
    v1.apply({"memory": {"limit": 1 << 20, "swap": 2 << 20}})
    assert order == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    assert (Path(v1.dirs["memory"]) / "memory.memsw.limit_in_bytes").read_text() == str(2 << 20)


def test_v1_errors(v1: V1Cgroup) -> None:
    with pytest.raises(Unavailable, match="'hugetlb' is not mounted"):
        v1.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
    with pytest.raises(InvalidArgument, match="unified"):
        v1.apply({"unified": {"memory.high": "1"}})
    with pytest.raises(Unavailable, match=r"cpu\.idle"):
        v1.apply({"cpu": {"idle": 1}})


def test_v1_freeze_stats_mount_sources(v1: V1Cgroup) -> None:
    v1.freeze()
    assert v1.state() == "frozen"
    v1.thaw()
    assert v1.state() == "thawed"
    s = v1.stats()
    assert s.memory_limit is None and s.memory_usage == 100 and s.memory_max_usage == 200
    assert s.cpu_usage_ns == 777 and s.pids_current == 1 and s.pids_limit is None
    assert s.oom_kills == 2 and v1.oom_killed()
    assert (s.blkio_read_bytes, s.blkio_write_bytes) == (10, 5)
    sources = v1.mount_sources()
    assert sources["systemd"] == v1.dirs["name=systemd"] and "unified" not in sources


def test_v1_destroy_removes_fake_dirs_and_is_idempotent(v1: V1Cgroup, tmp_path: Path) -> None:
    # rmdir only removes empty directories, so use a tree without interface files
    fresh = V1Cgroup("/z", {"pids": tmp_path / "p" / "z", "memory": tmp_path / "m" / "z"})
    fresh.create()
    (tmp_path / "p" / "z" / "nested").mkdir()
    fresh.destroy()
    assert not (tmp_path / "p" / "z").exists() and not (tmp_path / "m" / "z").exists()
    fresh.destroy()


def test_open_cgroup_rejects_bad_paths() -> None:
    for bad in ("", "/", "system.slice:dy:abc", "/a/../b", "./x"):
        with pytest.raises(InvalidArgument):
            open_cgroup(bad)


def test_apply_before_create_is_not_found(tmp_path: Path) -> None:
    cg = V1Cgroup("/n", {"pids": tmp_path / "pids" / "n"})
    with pytest.raises(NotFound):
        cg.apply({"pids": {"limit": 3}})
    cg.kill()  # nothing to signal: no error
    cg.destroy()


def test_kill_without_freezer_signals_each_process(tmp_path: Path) -> None:
    p = subprocess.Popen(["sleep", "30"])
    try:
        d = tmp_path / "pids" / "k"
        _files(d, {"cgroup.procs": f"{p.pid}\n"})
        V1Cgroup("/k", {"pids": d}).kill(15)
        assert p.wait(timeout=5) == -15
    finally:
        p.kill()
        p.wait()


def test_remove_if_empty_and_stats_record(tmp_path: Path) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    _files(full, {"cgroup.procs": ""})
    assert _fs.remove_if_empty(str(empty)) and not empty.exists()
    assert _fs.remove_if_empty(str(empty))  # already gone
    assert not _fs.remove_if_empty(str(full)) and full.is_dir()
    stats = CgroupStats(memory_usage=1, pids_current=2)
    assert stats == CgroupStats(memory_usage=1, pids_current=2) != CgroupStats()
    assert stats.memory_limit is None and "pids_current=2" in repr(stats)
