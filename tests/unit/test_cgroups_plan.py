"""Unit tests of the pure parts of dockyard.linux.cgroups: conversions, planning, /proc parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.linux.cgroups import _fs, cgroup_mode
from dockyard.linux.cgroups.plan import (
    Write,
    blkio_weight_to_io_weight,
    device_rule,
    plan_v1,
    plan_v2,
    shares_to_weight,
    swap_for_v2,
)

KNOWN = frozenset(["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"])

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""
PURE_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
PURE_V1 = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"


def test_shares_to_weight_matches_runc_crun() -> None:
    assert shares_to_weight(0) == 0
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 100
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(10**7) == 10000
    assert shares_to_weight(512) == 59
    assert shares_to_weight(2048) == 174


def test_blkio_weight_conversion() -> None:
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(1000) == 10000
    assert blkio_weight_to_io_weight(0) == 0


def test_swap_for_v2() -> None:
    assert swap_for_v2(None, 100) is None
    assert swap_for_v2(0, 100) is None
    assert swap_for_v2(-1, 100) == -1
    assert swap_for_v2(300, 100) == 200
    with pytest.raises(InvalidArgument, match="must be >="):
        swap_for_v2(50, 100)
    with pytest.raises(InvalidArgument, match="needs"):
        swap_for_v2(200, None)


def test_device_rules() -> None:
    assert device_rule({"allow": False, "access": "rwm"}) == (False, "a *:* rwm")
    assert device_rule({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}) == (
        True,
        "c 1:3 rw",
    )
    assert device_rule({"allow": True, "type": "b", "major": 8}) == (True, "b 8:* rwm")
    for bad in ({"allow": True, "type": "x"}, {"allow": True, "access": "z"}, {"type": "c"}):
        with pytest.raises(InvalidArgument):
            device_rule(bad)


def test_plan_v1_writes_only_given_values() -> None:
    assert plan_v1({}) == []
    assert plan_v1({"memory": {}, "cpu": None}) == []
    writes = plan_v1({"pids": {"limit": 5}, "cpu": {"cpus": "0"}})
    assert writes == [
        Write("cpuset", ("cpuset.cpus",), "0"),
        Write("pids", ("pids.max",), "5"),
    ]


def test_plan_v1_memory_order_and_swap_retry() -> None:
    writes = plan_v1({"memory": {"limit": 100, "swap": 200, "reservation": 50}})
    assert [(w.files[0], w.value) for w in writes] == [
        ("memory.memsw.limit_in_bytes", "200"),
        ("memory.limit_in_bytes", "100"),
        ("memory.soft_limit_in_bytes", "50"),
    ]
    assert writes[0].retry_after_next
    assert not writes[0].optional  # a real swap limit must not be silently dropped
    unlimited = plan_v1({"memory": {"limit": 100, "swap": -1}})
    assert unlimited[0].optional


def test_plan_v1_cpu_and_devices() -> None:
    writes = plan_v1(
        {
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "mems": "0"},
            "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c"}],
            "memory": {"disableOOMKiller": True},
        }
    )
    got = [(w.controller, w.files[0], w.value) for w in writes]
    assert got == [
        ("memory", "memory.oom_control", "1"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "20000"),
        ("cpuset", "cpuset.mems", "0"),
        ("devices", "devices.deny", "a *:* rwm"),
        ("devices", "devices.allow", "c *:* rwm"),
    ]
    assert writes[2].retry_after_next


def test_plan_v1_blkio_weight_is_optional_with_fallback() -> None:
    (w,) = plan_v1({"blockIO": {"weight": 300}})
    assert w.files == ("blkio.weight", "blkio.bfq.weight")
    assert w.optional


def test_plan_rejects_bad_types() -> None:
    with pytest.raises(InvalidArgument, match=r"memory\.limit"):
        plan_v1({"memory": {"limit": "1g"}})
    with pytest.raises(InvalidArgument):
        plan_v1({"memory": []})
    with pytest.raises(Unavailable, match="network"):
        plan_v1({"network": {"classID": 1}})


def test_plan_v2() -> None:
    writes = plan_v2(
        {
            "memory": {"limit": 100, "swap": 300, "reservation": 10},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": -1},
            "devices": [{"allow": False, "access": "rwm"}],
            "unified": {"memory.high": "90", "cgroup.max.depth": "3"},
        }
    )
    got = [(w.controller, w.files[0], w.value) for w in writes]
    assert got == [
        ("memory", "memory.swap.max", "200"),
        ("memory", "memory.max", "100"),
        ("memory", "memory.low", "10"),
        ("cpu", "cpu.weight", "100"),
        ("cpu", "cpu.max", "50000 100000"),
        ("cpuset", "cpuset.cpus", "0-1"),
        ("pids", "pids.max", "max"),
        ("memory", "memory.high", "90"),
        ("", "cgroup.max.depth", "3"),
    ]


def test_plan_v2_cpu_max_forms() -> None:
    def cpu_max(cpu: dict[str, int]) -> str:
        (w,) = plan_v2({"cpu": cpu})
        return w.value

    assert cpu_max({"quota": 20000}) == "20000"
    assert cpu_max({"quota": -1, "period": 50000}) == "max 50000"
    assert cpu_max({"period": 50000}) == "max 50000"


def test_plan_v2_validates_devices_and_unified_names() -> None:
    with pytest.raises(InvalidArgument):
        plan_v2({"devices": [{"allow": "yes"}]})
    for bad in ("../x", "memory", ".hidden"):
        with pytest.raises(InvalidArgument):
            plan_v2({"unified": {bad: "1"}})


def test_parse_mountinfo_hybrid_comounted() -> None:
    h = _fs.parse_mountinfo(HYBRID, KNOWN)
    assert h.v1["cpu"] == h.v1["cpuacct"]
    assert h.v1["cpu"].point == "/sys/fs/cgroup/cpu,cpuacct"
    assert set(h.v1) == {"cpu", "cpuacct", "memory", "name=systemd"}
    assert h.unified is not None and h.unified.point == "/sys/fs/cgroup/unified"


def test_cgroup_mode_from_mountinfo() -> None:
    assert cgroup_mode(HYBRID) == "hybrid"
    assert cgroup_mode(PURE_V2) == "v2"
    assert cgroup_mode(PURE_V1) == "v1"
    with pytest.raises(Unavailable):
        cgroup_mode("1 2 0:1 / / rw - ext4 /dev/sda rw\n")


def test_mount_dir_for_non_root_mount() -> None:
    m = _fs.Mount(Path("/sys/fs/cgroup"), "/outer")  # a Path is accepted, strings come back
    assert m.dir_for("/outer/x") == "/sys/fs/cgroup/x"
    assert m.dir_for("/outer") == m.dir_for("/outer/") == "/sys/fs/cgroup"
    assert _fs.Mount("/m", "/").dir_for("/a/b") == "/m/a/b"
    assert _fs.Mount("/m/", "/").dir_for("/a/b/") == "/m/a/b"


def test_write_compares_by_value() -> None:
    w = Write("pids", ("pids.max",), "5")
    assert w == Write("pids", ("pids.max",), "5", False, False)
    assert w != Write("pids", ("pids.max",), "5", optional=True)
    assert len({w, Write("pids", ("pids.max",), "5")}) == 1
    assert "pids.max" in repr(w)


def test_parse_proc_cgroup() -> None:
    text = "9:name=systemd:/\n2:cpu,cpuacct:/a\n4:memory:/m/x\n0::/u\n"
    assert _fs.parse_proc_cgroup(text) == {
        "name=systemd": "/",
        "cpu": "/a",
        "cpuacct": "/a",
        "memory": "/m/x",
        "unified": "/u",
    }
