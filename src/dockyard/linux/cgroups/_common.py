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
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from dockyard.errors import Conflict, InvalidArgument, NotFound, Unavailable
from dockyard.linux.cgroups import _fs
from dockyard.linux.cgroups.plan import Write

DESTROY_TIMEOUT = 10.0


class CgroupStats(NamedTuple):
    """A snapshot of a cgroup's usage; None where the kernel doesn't report it (or "max")."""

    memory_usage: int | None = None
    memory_limit: int | None = None
    memory_max_usage: int | None = None
    cpu_usage_ns: int | None = None
    pids_current: int | None = None
    pids_limit: int | None = None
    oom_kills: int | None = None
    blkio_read_bytes: int | None = None
    blkio_write_bytes: int | None = None


class BaseCgroup:
    """Operations shared by both cgroup versions."""

    version: int
    path: str
    devices_enforced: bool

    # ---- hooks ----
    def _dirs(self) -> list[Path]:
        """Every directory of this cgroup (one per hierarchy), without duplicates."""
        raise NotImplementedError

    def _dir_for(self, controller: str) -> Path:
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
            if (base / name).exists():
                _fs.write(base / name, w.value)
                return
        if not base.is_dir():
            raise NotFound(f"cgroup {base} does not exist (create it first)")
        if not w.optional:
            names = " or ".join(str(base / n) for n in w.files)
            raise Unavailable(f"cgroup file {names} does not exist (kernel lacks the feature?)")

    def add(self, pid: int) -> None:
        for d in self._dirs():
            _fs.write(d / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self._dirs():
            found |= _fs.procs(d)
        return sorted(found)

    def kill(self, sig: int = signal.SIGKILL) -> None:
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
        if not any(d.is_dir() for d in self._dirs()):
            return
        deadline = time.monotonic() + DESTROY_TIMEOUT
        while self.pids():
            if time.monotonic() > deadline:
                raise Conflict(f"cgroup {self.path} still has processes {self.pids()}")
            self.kill(signal.SIGKILL)
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
