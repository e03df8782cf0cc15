"""A cgroup in the unified (v2) hierarchy.

Responsibility: `V2Cgroup` — one directory under the cgroup2 mount; enable the controllers a
write needs in every ancestor's cgroup.subtree_control; apply OCI resources through
`plan.plan_v2`; freeze with cgroup.freeze; kill with cgroup.kill when the kernel has it.

Invariants:
- the hierarchy root and the directory are given at construction, so tests can use a fake tree;
- controllers are enabled only when a write needs them (creating a cgroup without resources
  changes no subtree_control), and only from the root down to our parent;
- devices are not enforced on v2 (the kernel's device controller is an eBPF program, which
  dockyard does not attach): `devices_enforced` is False and the runtime must not rely on the
  cgroup to deny device access (e.g. create only the device nodes the spec lists).
"""

from __future__ import annotations

import os
import time

from dockyard.errors import Conflict, InvalidArgument, Unavailable
from dockyard.linux.cgroups import _fs
from dockyard.linux.cgroups._common import SIGKILL, BaseCgroup, CgroupStats
from dockyard.linux.cgroups.plan import controllers, plan_v2

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Literal

    from dockyard.linux.cgroups.plan import Write

FREEZE_TIMEOUT = 5.0


class V2Cgroup(BaseCgroup):
    """The cgroup `directory` of the unified hierarchy mounted at `root`."""

    version = 2
    devices_enforced = False

    def __init__(
        self, path: str, root: str | os.PathLike[str], directory: str | os.PathLike[str]
    ) -> None:
        root, directory = _fs.normpath(root), _fs.normpath(directory)
        if not _fs.is_within(directory, root):
            raise InvalidArgument(f"cgroup {directory} is not under the hierarchy {root}")
        self.path = path
        self.root = root
        self.dir = directory

    def __repr__(self) -> str:
        return f"V2Cgroup({self.path!r})"

    # ---- hooks ----
    def _dirs(self) -> list[str]:
        return [self.dir]

    def _dir_for(self, controller: str) -> str:
        return self.dir

    def _has_freezer(self) -> bool:
        return os.path.exists(_fs.join(self.dir, "cgroup.freeze"))

    def _prepare(self, writes: list[Write]) -> None:
        needed = controllers(writes)
        if not needed:
            return
        chain: list[str] = []  # our parent up to the hierarchy root
        d = self.dir
        while d != self.root:
            d = os.path.dirname(d)
            chain.append(d)
        for parent in reversed(chain):
            enable_controllers(parent, needed)

    # ---- Cgroup API ----
    def apply(self, resources: Mapping[str, Any]) -> None:
        self._write_all(plan_v2(resources))

    def freeze(self) -> None:
        _fs.write(_fs.join(self.dir, "cgroup.freeze"), "1")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while self.state() != "frozen":
            if time.monotonic() > deadline:
                self.thaw()
                raise Conflict(f"cgroup {self.path} did not freeze in {FREEZE_TIMEOUT:.0f}s")
            time.sleep(0.001)

    def thaw(self) -> None:
        _fs.write(_fs.join(self.dir, "cgroup.freeze"), "0")

    def state(self) -> Literal["frozen", "thawed"]:
        events = _fs.read_keyed(_fs.join(self.dir, "cgroup.events"))
        return "frozen" if events.get("frozen") == 1 else "thawed"

    def kill(self, sig: int = SIGKILL) -> None:
        if sig == SIGKILL and os.path.exists(_fs.join(self.dir, "cgroup.kill")):
            _fs.write(_fs.join(self.dir, "cgroup.kill"), "1")
            return
        super().kill(sig)

    def stats(self) -> CgroupStats:
        d = self.dir
        j = _fs.join
        cpu = _fs.read_keyed(j(d, "cpu.stat"))
        io_read, io_write = _io_bytes(d)
        usec = cpu.get("usage_usec")
        return CgroupStats(
            memory_usage=_fs.read_int(j(d, "memory.current")),
            memory_limit=_fs.read_int(j(d, "memory.max")),
            memory_max_usage=_fs.read_int(j(d, "memory.peak")),
            cpu_usage_ns=None if usec is None else usec * 1000,
            pids_current=_fs.read_int(j(d, "pids.current")),
            pids_limit=_fs.read_int(j(d, "pids.max")),
            oom_kills=_fs.read_keyed(j(d, "memory.events")).get("oom_kill"),
            blkio_read_bytes=io_read,
            blkio_write_bytes=io_write,
        )

    def oom_killed(self) -> bool:
        return _fs.read_keyed(_fs.join(self.dir, "memory.events")).get("oom_kill", 0) > 0

    def clone_target(self) -> str | None:
        return self.dir

    def self_join_files(self) -> list[str]:
        return []

    def mount_sources(self) -> dict[str, str]:
        return {_fs.UNIFIED: self.dir}


def enable_controllers(parent: str, needed: set[str]) -> None:
    """Enable each of `needed` in `parent`'s cgroup.subtree_control (if not already)."""
    available = _fs.read(_fs.join(parent, "cgroup.controllers")).split()
    enabled = _fs.read(_fs.join(parent, "cgroup.subtree_control")).split()
    for name in sorted(needed):
        if name not in available:
            raise Unavailable(
                f"cgroup v2 controller {name!r} is not available in {parent} "
                f"(cgroup.controllers: {' '.join(available) or 'none'})"
            )
        if name not in enabled:
            _fs.write(_fs.join(parent, "cgroup.subtree_control"), f"+{name}")


def _io_bytes(d: str) -> tuple[int | None, int | None]:
    text = _fs.read_optional(_fs.join(d, "io.stat"))
    if text is None:
        return None, None
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write
