"""What runs in a container and what it uses (layer L4): `top` and `stats`.

Responsibility: list the processes of a container's cgroup (read from /proc, or filtered from
the host's `ps` output when `ps` options are given, as Docker does) and sample its resource
usage from cgroup statistics, the network counters of its network namespace, and its pids.

Invariants:
- Processes come only from the container's own cgroup (`runtime.ps`), never from a name match;
  a process that exits between listing and reading /proc is skipped.
- `sample` takes one reading of every container, sleeps once, and takes the second, so CPU %
  over N containers costs one interval, not N. CPU % is CPU time over wall time, in percent
  of one CPU (so it can exceed 100 on several cores), as Docker reports it.
- MEM USAGE is Docker's: the cgroup's usage minus its inactive page cache (v1
  `memory.usage_in_bytes - total_inactive_file`, v2 `memory.current - inactive_file`, from
  memory.stat); MEM % is that over the limit, or over the host's memory when unlimited (a limit
  above the host's memory counts as the host's memory, as Docker's daemon reports it).
- A container that is not running reports zeros, never an error.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.errors import Conflict, DockyardError, InvalidArgument

if TYPE_CHECKING:
    from dockyard.container.model import Container
    from dockyard.container.service import ContainerService
    from dockyard.linux.cgroups import Cgroup, CgroupStats

_TICKS = os.sysconf("SC_CLK_TCK")


# -- top -------------------------------------------------------------------------------------


def container_pids(svc: ContainerService, c: Container) -> list[int]:
    if c.state.status not in ("running", "paused"):
        raise Conflict(f"container {c.id} is not running")
    try:
        return sorted(svc.runtime_for(c).ps(c.id))
    except DockyardError:
        return []


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _proc_row(pid: int) -> list[str] | None:
    """[PID, USER, TIME, COMMAND] for one process, busybox `ps` style."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    comm = stat[stat.find(b"(") + 1 : stat.rfind(b")")].decode(errors="replace")
    fields = stat[stat.rfind(b")") + 2 :].split()
    secs = (int(fields[11]) + int(fields[12])) // _TICKS  # utime + stime
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    command = " ".join(args) if args else f"[{comm}]"
    return [str(pid), _user(uid), f"{secs // 60}:{secs % 60:02d}", command]


def top(svc: ContainerService, name: str, ps_args: list[str]) -> tuple[list[str], list[list[str]]]:
    """`top`: (titles, rows). Without `ps_args`, PID USER TIME COMMAND from /proc; with them,
    the host's `ps ps_args` output restricted to the container's processes."""
    c = svc.get(name)
    pids = container_pids(svc, c)
    if not ps_args:
        rows = [r for r in (_proc_row(p) for p in pids) if r is not None]
        return ["PID", "USER", "TIME", "COMMAND"], rows
    return _host_ps(ps_args, set(pids))


def _host_ps(ps_args: list[str], pids: set[int]) -> tuple[list[str], list[list[str]]]:
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise InvalidArgument("ps options need the host's `ps` command, which is missing") from None
    if out.returncode != 0:
        raise InvalidArgument(f"ps: {out.stderr.strip() or 'failed'}")
    lines = out.stdout.splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    col = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            rows.append(fields)
    return titles, rows


# -- stats -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    id: str
    name: str
    cpu_percent: float
    mem_usage: int
    mem_limit: int
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int

    @property
    def mem_percent(self) -> float:
        return 100.0 * self.mem_usage / self.mem_limit if self.mem_limit else 0.0


@dataclass(frozen=True)
class _Reading:
    at: int  # monotonic ns
    cg: CgroupStats | None
    net: tuple[int, int]
    mem_stat: Mapping[str, int] | None = None  # memory.stat of the cgroup


def _host_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _net(pid: int) -> tuple[int, int]:
    """(rx, tx) bytes of every interface but lo in the network namespace of `pid`."""
    rx = tx = 0
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/net/dev") as f:
        for line in f.readlines()[2:]:
            iface, _, rest = line.partition(":")
            if iface.strip() == "lo":
                continue
            nums = rest.split()
            rx += int(nums[0])
            tx += int(nums[8])
    return rx, tx


def memory_stat(cg: Cgroup) -> dict[str, int]:
    """The cgroup's memory.stat ({} when there is none): v1's memory controller directory,
    or the unified directory on v2."""
    sources = cg.mount_sources()
    directory = sources.get("memory") if cg.version == 1 else sources.get("unified")
    out: dict[str, int] = {}
    if directory is None:
        return out
    try:
        with open(os.path.join(directory, "memory.stat")) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def mem_usage_no_cache(usage: int, stat: Mapping[str, int]) -> int:
    """Docker's MEM USAGE: `usage` minus the inactive page cache that `stat` (memory.stat)
    reports — `total_inactive_file` on v1, `inactive_file` on v2 — when it is smaller."""
    v1 = stat.get("total_inactive_file")
    if v1 is not None and v1 < usage:
        return usage - v1
    v2 = stat.get("inactive_file", 0)
    if v2 < usage:
        return usage - v2
    return usage


def reading(cg: Cgroup | None, net: tuple[int, int] = (0, 0)) -> _Reading:
    """One sample of `cg` (None: not running) and the network counters `net`."""
    now = time.monotonic_ns()
    if cg is None:
        return _Reading(now, None, net)
    stats: CgroupStats | None = None
    mem: dict[str, int] | None = None
    with contextlib.suppress(DockyardError, OSError):
        stats = cg.stats()
        mem = memory_stat(cg)
    return _Reading(now, stats, net, mem)


def _read(c: Container) -> _Reading:
    if c.state.status not in ("running", "paused"):
        return reading(None)
    from dockyard.linux.cgroups import open_cgroup

    cg: Cgroup | None = None
    with contextlib.suppress(DockyardError, OSError):
        cg = open_cgroup(f"/dockyard/{c.id}")
    host_net = (c.host_config.get("NetworkMode") or "") == "host"
    net = (0, 0) if host_net or not c.state.pid else _net(c.state.pid)
    return reading(cg, net) if cg is not None else _Reading(time.monotonic_ns(), None, net)


def _usage(c: Container, first: _Reading, second: _Reading) -> Usage:
    cg = second.cg
    if cg is None:
        return Usage(c.id, c.name, 0.0, 0, 0, 0, 0, 0, 0, 0)
    host = _host_memory()
    cpu = 0.0
    if first.cg is not None and first.cg.cpu_usage_ns is not None and cg.cpu_usage_ns is not None:
        wall = second.at - first.at
        cpu = 100.0 * (cg.cpu_usage_ns - first.cg.cpu_usage_ns) / wall if wall > 0 else 0.0
    return Usage(
        id=c.id,
        name=c.name,
        cpu_percent=max(0.0, cpu),
        mem_usage=mem_usage_no_cache(cg.memory_usage or 0, second.mem_stat or {}),
        mem_limit=min(cg.memory_limit or host, host),
        net_rx=second.net[0],
        net_tx=second.net[1],
        block_read=cg.blkio_read_bytes or 0,
        block_write=cg.blkio_write_bytes or 0,
        pids=cg.pids_current or 0,
    )


def sample(containers: list[Container], interval: float = 0.1) -> list[Usage]:
    """One `stats` reading per container, CPU % measured over `interval` seconds."""
    first = [_read(c) for c in containers]
    if any(r.cg is not None for r in first):
        time.sleep(interval)
    return [_usage(c, f, _read(c)) for c, f in zip(containers, first, strict=True)]
