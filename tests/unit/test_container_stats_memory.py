"""`stats` MEM USAGE and MEM % as Docker computes them, from fake cgroup trees (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.cli.stats import row
from dockyard.container import stats
from dockyard.container.model import Container, State
from dockyard.linux.cgroups import V1Cgroup, V2Cgroup

MIB = 1 << 20
V1_UNLIMITED = 9223372036854771712


def _container() -> Container:
    return Container(
        id="c" * 64, name="web", image="bb", image_id="sha256:" + "0" * 64, created="",
        config={}, host_config={}, state=State(status="running", pid=1),
    )  # fmt: skip


def _write(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)


def _usage(cg: V1Cgroup | V2Cgroup) -> stats.Usage:
    c = _container()
    return stats._usage(c, stats.reading(cg), stats.reading(cg))


def test_usage_minus_inactive_file_as_docker_s_cli() -> None:
    # v1: total_inactive_file (hierarchical) wins over inactive_file
    assert stats.mem_usage_no_cache(100, {"total_inactive_file": 30, "inactive_file": 5}) == 70
    # v2: inactive_file
    assert stats.mem_usage_no_cache(100, {"inactive_file": 40}) == 60
    # never below zero: a cache figure not smaller than the usage is ignored
    assert stats.mem_usage_no_cache(100, {"total_inactive_file": 100, "inactive_file": 10}) == 90
    assert stats.mem_usage_no_cache(100, {"inactive_file": 200}) == 100
    assert stats.mem_usage_no_cache(100, {}) == 100


def test_v1_unlimited_counts_against_the_host_s_memory(tmp_path: Path) -> None:
    mem = tmp_path / "memory" / "dockyard" / "x"
    _write(mem, {
        "memory.usage_in_bytes": f"{100 * MIB}\n",
        "memory.limit_in_bytes": f"{V1_UNLIMITED}\n",
        "memory.stat": f"cache {50 * MIB}\ninactive_file {MIB}\n"
                       f"total_inactive_file {30 * MIB}\ntotal_rss {60 * MIB}\n",
    })  # fmt: skip
    u = _usage(V1Cgroup("/dockyard/x", {"memory": mem}))
    host = stats._host_memory()
    assert u.mem_usage == 70 * MIB
    assert u.mem_limit == host
    assert u.mem_percent == pytest.approx(100.0 * 70 * MIB / host)


def test_v1_with_a_limit(tmp_path: Path) -> None:
    mem = tmp_path / "memory"
    _write(mem, {
        "memory.usage_in_bytes": f"{60 * MIB}\n",
        "memory.limit_in_bytes": f"{200 * MIB}\n",
        "memory.stat": f"total_inactive_file {10 * MIB}\n",
    })  # fmt: skip
    u = _usage(V1Cgroup("/dockyard/x", {"memory": mem}))
    assert (u.mem_usage, u.mem_limit) == (50 * MIB, 200 * MIB)
    assert u.mem_percent == pytest.approx(25.0)
    r = row(u, "web", no_trunc=False)
    assert r["MemUsage"] == "50MiB / 200MiB"
    assert r["MemPerc"] == "25.00%"


def test_v2_memory_current_minus_inactive_file(tmp_path: Path) -> None:
    d = tmp_path / "dockyard" / "x"
    _write(d, {
        "memory.current": f"{80 * MIB}\n",
        "memory.max": f"{160 * MIB}\n",
        "memory.stat": f"anon {20 * MIB}\nfile {60 * MIB}\ninactive_file {40 * MIB}\n",
    })  # fmt: skip
    u = _usage(V2Cgroup("/dockyard/x", tmp_path, d))
    assert (u.mem_usage, u.mem_limit) == (40 * MIB, 160 * MIB)
    assert u.mem_percent == pytest.approx(25.0)


def test_v2_max_and_a_limit_above_the_host_count_as_the_host(tmp_path: Path) -> None:
    host = stats._host_memory()
    d = tmp_path / "x"
    _write(d, {"memory.current": f"{MIB}\n", "memory.max": "max\n", "memory.stat": ""})
    u = _usage(V2Cgroup("/dockyard/x", tmp_path, d))
    assert (u.mem_usage, u.mem_limit) == (MIB, host)
    (d / "memory.max").write_text(f"{host * 4}\n")
    assert _usage(V2Cgroup("/dockyard/x", tmp_path, d)).mem_limit == host


def test_a_cgroup_without_memory_files_reads_zero(tmp_path: Path) -> None:
    d = tmp_path / "x"
    d.mkdir()
    u = _usage(V2Cgroup("/dockyard/x", tmp_path, d))
    assert u.mem_usage == 0 and u.mem_percent == 0.0
