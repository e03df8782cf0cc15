"""A cgroup on the v1 hierarchies (one directory per mounted controller).

Responsibility: `V1Cgroup` — create the directory in every hierarchy, initialise cpuset, apply
OCI resources through `plan.plan_v1`, freeze with the freezer controller, read stats.

Invariants:
- the directories are given at construction (`dirs`: subsystem → directory); nothing here
  resolves mount points, so tests can point it at a fake tree;
- on a hybrid host the cgroup also gets a directory in the unified tree (`unified`), as runc
  does, so processes are tracked there too and `linux.resources.unified` can be written;
- cpuset.cpus/mems of every new level are copied from the parent before any process joins
  (a v1 cpuset with empty cpus refuses tasks).
"""

from __future__ import annotations

import os
import time

from dockyard.errors import Conflict, InvalidArgument, Unavailable
from dockyard.linux.cgroups import _fs
from dockyard.linux.cgroups._common import BaseCgroup, CgroupStats
from dockyard.linux.cgroups.plan import plan_unified, plan_v1

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Literal

FREEZE_TIMEOUT = 5.0
UNLIMITED = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (≈ 2**63)


class V1Cgroup(BaseCgroup):
    """A cgroup at `path` in each v1 hierarchy (`dirs`) and optionally the unified tree."""

    version = 1

    def __init__(
        self,
        path: str,
        dirs: Mapping[str, str | os.PathLike[str]],
        unified: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = path
        self.dirs = {name: _fs.normpath(d) for name, d in dirs.items()}
        self.unified = _fs.normpath(unified) if unified is not None else None
        self.devices_enforced = "devices" in self.dirs

    def __repr__(self) -> str:
        return f"V1Cgroup({self.path!r})"

    # ---- hooks ----
    def _dirs(self) -> list[str]:
        out: list[str] = []
        for d in [*self.dirs.values(), *([self.unified] if self.unified else [])]:
            if d not in out:
                out.append(d)
        return out

    def _dir_for(self, controller: str) -> str:
        d = self.dirs.get(controller)
        if d is None:
            raise Unavailable(f"cgroup v1 controller {controller!r} is not mounted on this host")
        return d

    def _has_freezer(self) -> bool:
        return "freezer" in self.dirs

    def _after_mkdir(self) -> None:
        cpuset = self.dirs.get("cpuset")
        if cpuset is not None:
            init_cpuset(cpuset)

    # ---- Cgroup API ----
    def apply(self, resources: Mapping[str, Any]) -> None:
        self._write_all(plan_v1(resources))
        unified = plan_unified(resources)
        if not unified:
            return
        if self.unified is None:
            raise InvalidArgument("linux.resources.unified needs cgroup v2 (this host has v1 only)")
        for w in unified:
            _fs.write(_fs.join(self.unified, w.files[0]), w.value)

    def freeze(self) -> None:
        state = _fs.join(self._dir_for("freezer"), "freezer.state")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            _fs.write(state, "FROZEN")
            if _fs.read(state) == "FROZEN":
                return
            if time.monotonic() > deadline:
                self.thaw()
                raise Conflict(f"cgroup {self.path} did not freeze in {FREEZE_TIMEOUT:.0f}s")
            time.sleep(0.001)

    def thaw(self) -> None:
        _fs.write(_fs.join(self._dir_for("freezer"), "freezer.state"), "THAWED")

    def state(self) -> Literal["frozen", "thawed"]:
        text = _fs.read(_fs.join(self._dir_for("freezer"), "freezer.state"))
        return "frozen" if text == "FROZEN" else "thawed"

    def stats(self) -> CgroupStats:
        mem = self.dirs.get("memory")
        pids = self.dirs.get("pids")
        cpuacct = self.dirs.get("cpuacct")
        read, write = _blkio_bytes(self.dirs.get("blkio"))
        limit = _int_in(mem, "memory.limit_in_bytes")
        return CgroupStats(
            memory_usage=_int_in(mem, "memory.usage_in_bytes"),
            memory_limit=None if limit is None or limit >= UNLIMITED else limit,
            memory_max_usage=_int_in(mem, "memory.max_usage_in_bytes"),
            cpu_usage_ns=_int_in(cpuacct, "cpuacct.usage"),
            pids_current=_int_in(pids, "pids.current"),
            pids_limit=_int_in(pids, "pids.max"),
            oom_kills=self._oom_kills(),
            blkio_read_bytes=read,
            blkio_write_bytes=write,
        )

    def _oom_kills(self) -> int | None:
        mem = self.dirs.get("memory")
        if mem is None:
            return None
        return _fs.read_keyed(_fs.join(mem, "memory.oom_control")).get("oom_kill")

    def oom_killed(self) -> bool:
        return (self._oom_kills() or 0) > 0

    def clone_target(self) -> str | None:
        return self.unified

    def self_join_files(self) -> list[str]:
        return [_fs.join(d, "tasks") for d in self._dirs() if d != self.unified]

    def mount_sources(self) -> dict[str, str]:
        out = {name.removeprefix("name="): d for name, d in self.dirs.items()}
        if self.unified is not None:
            out[_fs.UNIFIED] = self.unified
        return out


def _int_in(directory: str | None, name: str) -> int | None:
    return _fs.read_int(_fs.join(directory, name)) if directory else None


def init_cpuset(directory: str | os.PathLike[str]) -> None:
    """Give every level from the hierarchy root down to `directory` non-empty cpus and mems."""
    chain: list[str] = []
    d = _fs.normpath(directory)
    while os.path.exists(_fs.join(d, "cpuset.cpus")):
        chain.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for child in reversed(chain[:-1]):  # the root always has both set
        parent = os.path.dirname(child)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if _fs.read(_fs.join(child, name)) == "":
                _fs.write(_fs.join(child, name), _fs.read(_fs.join(parent, name)))


def _blkio_bytes(blkio: str | None) -> tuple[int | None, int | None]:
    if blkio is None:
        return None, None
    for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.io_service_bytes_recursive"):
        text = _fs.read_optional(_fs.join(blkio, name))
        if text is None:
            continue
        totals = {"Read": 0, "Write": 0}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in totals:
                totals[parts[1]] += int(parts[2])
        return totals["Read"], totals["Write"]
    return None, None
