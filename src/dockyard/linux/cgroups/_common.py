"""What cgroup v1 and v2 share: stats record, signalling, teardown, and applying planned writes.

Responsibility: `CgroupStats`; `BaseCgroup`, which implements pids/kill/destroy/apply on top of
the few version-specific hooks (`_dirs`, `_dir_for`, `freeze`, `thaw`, `state`).

Invariants:
- `kill` freezes the tree before signalling so a fork loop cannot outrun it, and leaves the
  freezer state as it found it;
- `destroy` is idempotent: it kills what is left, waits until the tree is empty, thaws it, and
  removes every directory bottom-up; a missing cgroup is not an error.
"""

from __future__ import annotations

import errno
import os
import time

from dockyard.errors import Conflict, InvalidArgument, NotFound, Unavailable
from dockyard.linux.cgroups import _fs

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Literal

    from dockyard.linux.cgroups.plan import Write

DESTROY_TIMEOUT = 10.0
SIGKILL = 9  # `signal` imports enum: numbers keep it off the start path


class CgroupStats:
    """A snapshot of a cgroup's usage; None where the kernel doesn't report it (or "max").

    A plain class with __slots__ rather than a NamedTuple (typing is off the start path);
    keyword construction, attribute access and equality by value."""

    __slots__ = (
        "blkio_read_bytes",
        "blkio_write_bytes",
        "cpu_usage_ns",
        "memory_limit",
        "memory_max_usage",
        "memory_usage",
        "oom_kills",
        "pids_current",
        "pids_limit",
    )

    def __init__(
        self,
        memory_usage: int | None = None,
        memory_limit: int | None = None,
        memory_max_usage: int | None = None,
        cpu_usage_ns: int | None = None,
        pids_current: int | None = None,
        pids_limit: int | None = None,
        oom_kills: int | None = None,
        blkio_read_bytes: int | None = None,
        blkio_write_bytes: int | None = None,
    ) -> None:
        self.memory_usage = memory_usage
        self.memory_limit = memory_limit
        self.memory_max_usage = memory_max_usage
        self.cpu_usage_ns = cpu_usage_ns
        self.pids_current = pids_current
        self.pids_limit = pids_limit
        self.oom_kills = oom_kills
        self.blkio_read_bytes = blkio_read_bytes
        self.blkio_write_bytes = blkio_write_bytes

    def _asdict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in _STAT_FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CgroupStats) and self._asdict() == other._asdict()

    def __hash__(self) -> int:
        return hash(tuple(self._asdict().values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._asdict().items())
        return f"CgroupStats({inner})"


_STAT_FIELDS = (
    "memory_usage",
    "memory_limit",
    "memory_max_usage",
    "cpu_usage_ns",
    "pids_current",
    "pids_limit",
    "oom_kills",
    "blkio_read_bytes",
    "blkio_write_bytes",
)


class BaseCgroup:
    """Operations shared by both cgroup versions."""

    version: int
    path: str
    devices_enforced: bool

    # ---- hooks ----
    def _dirs(self) -> list[str]:
        """Every directory of this cgroup (one per hierarchy), without duplicates."""
        raise NotImplementedError

    def _dir_for(self, controller: str) -> str:
        """The directory where `controller`'s files live; Unavailable when it isn't mounted."""
        raise NotImplementedError

    def _has_freezer(self) -> bool:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def state(self) -> Literal["frozen", "thawed"]:
        raise NotImplementedError

    def _prepare(self, writes: list[Write]) -> None:
        """Version-specific set-up before `writes` are made (e.g. enabling v2 controllers)."""

    def apply(self, resources: Mapping[str, Any]) -> None:
        raise NotImplementedError

    # ---- shared behaviour ----
    def create(self, resources: Mapping[str, Any] | None = None) -> None:
        for d in self._dirs():
            _fs.mkdir(d)
        self._after_mkdir()
        if resources:
            self.apply(resources)

    def _after_mkdir(self) -> None:
        """Version-specific initialisation of fresh directories."""

    def _write_all(self, writes: list[Write]) -> None:
        self._prepare(writes)
        pending: Write | None = None
        for w in writes:
            if pending is not None:
                self._write(w)
                self._write(pending)
                pending = None
                continue
            try:
                self._write(w)
            except InvalidArgument:
                if not w.retry_after_next:
                    raise
                pending = w
        if pending is not None:
            self._write(pending)

    def _write(self, w: Write) -> None:
        base = self._dir_for(w.controller)
        for name in w.files:
            path = _fs.join(base, name)
            if os.path.exists(path):
                _fs.write(path, w.value)
                return
        if not os.path.isdir(base):
            raise NotFound(f"cgroup {base} does not exist (create it first)")
        if not w.optional:
            names = " or ".join(_fs.join(base, n) for n in w.files)
            raise Unavailable(f"cgroup file {names} does not exist (kernel lacks the feature?)")

    def add(self, pid: int) -> None:
        for d in self._dirs():
            _fs.write(_fs.join(d, "cgroup.procs"), pid)

    def clone_target(self) -> str | None:
        """The cgroup2 directory a new process can be cloned straight into (clone3's
        CLONE_INTO_CGROUP: no cgroup.procs write), or None."""
        raise NotImplementedError

    def self_join_files(self) -> list[str]:
        """The files a single-threaded process writes "0" to, to move *itself* into this
        cgroup's v1 hierarchies: each `tasks` file. Moving one thread, the writer itself, the
        kernel skips the global threadgroup lock, whose first writer after a quiet period waits
        for an RCU grace period (5-20 ms: linux/attach_warmup.py); cgroup.procs always takes it.
        With `clone_target` (opened before the clone), these put a new process in every
        hierarchy."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self._dirs():
            found |= _fs.procs(d)
        return sorted(found)

    def kill(self, sig: int = SIGKILL) -> None:
        if not self.pids():
            return
        freezer = self._has_freezer()
        frozen_before = freezer and self.state() == "frozen"
        if freezer and not frozen_before:
            self.freeze()
        try:
            for pid in self.pids():
                _signal(pid, sig)
        finally:
            if freezer and not frozen_before:
                self.thaw()

    def destroy(self) -> None:
        # Fast path (every `run` ends here): an empty leaf cgroup goes with one rmdir(2) per
        # hierarchy; the kernel refuses (EBUSY) while processes or child cgroups remain.
        if all([_fs.remove_if_empty(d) for d in self._dirs()]):
            return
        deadline = time.monotonic() + DESTROY_TIMEOUT
        while self.pids():
            if time.monotonic() > deadline:
                raise Conflict(f"cgroup {self.path} still has processes {self.pids()}")
            self.kill(SIGKILL)
            if self._has_freezer() and self.state() == "frozen":
                self.thaw()
            time.sleep(0.01)
        for d in self._dirs():
            _fs.rmdir_tree(d, deadline)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except OSError as e:
        if e.errno != errno.ESRCH:
            raise
