"""Cgroups v1 and v2 (layer L1): create, limit, freeze, signal, measure and remove a cgroup.

Responsibility: the public face of the package — detect the host's cgroup mode, resolve an OCI
`linux.cgroupsPath` to directories, and hand back a `Cgroup` (v1: `V1Cgroup`, v2: `V2Cgroup`).
All cgroupfs I/O happens in this package (`_fs`); the OCI resources → file writes translation is
pure (`plan`).

Path rules (as runc): an absolute path ("/dockyard/<id>") is relative to each hierarchy's root;
a relative path ("dockyard/<id>") is placed under the calling process's own cgroup in each
hierarchy (/proc/self/cgroup). systemd's "slice:prefix:name" form is not supported.

Version rules: `open_cgroup(path)` uses the v1 controllers on v1 and hybrid hosts (as runc does
on hybrid; the cgroup then also gets a directory in the unified tree) and the unified tree on
pure v2 hosts. `version=2` forces the unified tree, which on a hybrid host usually has no
controllers: freeze, kill, pids and cgroup.* files still work there.

Devices: v1 enforces `linux.resources.devices` through devices.allow/deny; v2 does not (it needs
an eBPF program). `Cgroup.devices_enforced` tells the runtime which case it is in.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument, NotFound, Unavailable
from dockyard.linux.cgroups import _fs
from dockyard.linux.cgroups._common import BaseCgroup, CgroupStats
from dockyard.linux.cgroups.plan import shares_to_weight
from dockyard.linux.cgroups.v1 import V1Cgroup
from dockyard.linux.cgroups.v2 import V2Cgroup

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Literal, Protocol

__all__ = [
    "Cgroup",
    "CgroupMode",
    "CgroupStats",
    "V1Cgroup",
    "V2Cgroup",
    "cgroup_for_pid",
    "cgroup_from_sources",
    "cgroup_mode",
    "open_cgroup",
    "shares_to_weight",
]

if not TYPE_CHECKING:
    # At run time: the common base class stands for the protocol (typing stays unloaded).
    CgroupMode = str
    Cgroup = BaseCgroup
else:
    CgroupMode = Literal["v1", "hybrid", "v2"]

    class Cgroup(Protocol):
        """One container's cgroup, in every hierarchy it lives in."""

        version: int
        path: str  # the OCI cgroupsPath it was opened with
        devices_enforced: bool  # False on v2: device rules are validated but not enforced

        def create(self, resources: Mapping[str, Any] | None = None) -> None:
            """mkdir in every hierarchy (joining an existing cgroup is fine), then `apply`."""

        def apply(self, resources: Mapping[str, Any]) -> None:
            """Write the OCI `linux.resources` values that are given."""

        def add(self, pid: int) -> None:
            """Move process `pid` into the cgroup in every hierarchy."""

        def clone_target(self) -> str | None:
            """The cgroup2 directory to clone a new process into (CLONE_INTO_CGROUP)."""

        def self_join_files(self) -> list[str]:
            """The v1 `tasks` files a process writes "0" to, to move itself (no grace period)."""

        def freeze(self) -> None:
            """Freeze every process; returns once the kernel reports the cgroup frozen."""

        def thaw(self) -> None: ...

        def state(self) -> Literal["frozen", "thawed"]: ...

        def pids(self) -> list[int]:
            """Every process in the cgroup and its descendants, sorted."""

        def stats(self) -> CgroupStats: ...

        def oom_killed(self) -> bool:
            """Whether the kernel OOM-killed a process in this cgroup since it was created."""

        def kill(self, sig: int = 9) -> None:
            """Signal every process (frozen while signalling, so forks can't escape)."""

        def destroy(self) -> None:
            """Kill what is left, wait until empty, remove every directory. Idempotent."""

        def mount_sources(self) -> dict[str, str]:
            """Host directory per hierarchy, keyed by controller ("memory", "systemd",
            "unified")."""


def cgroup_mode(mountinfo: str | None = None) -> CgroupMode:
    """The host's cgroup layout, from /proc/self/mountinfo (or the given text)."""
    return _mode(_hierarchies(mountinfo))


def open_cgroup(path: str, *, version: int | None = None) -> Cgroup:
    """The cgroup at OCI cgroupsPath `path` (not created: call `create`)."""
    _check_path(path)
    h = _hierarchies(None)
    mode = _mode(h)
    ver = version if version is not None else (2 if mode == "v2" else 1)
    own = {} if path.startswith("/") else cgroup_for_pid("self")
    if ver == 1:
        return _open_v1(path, h, mode, own)
    if ver == 2:
        if h.unified is None:
            raise Unavailable("no cgroup2 hierarchy is mounted on this host")
        directory = h.unified.dir_for(_absolute(path, own, _fs.UNIFIED))
        return V2Cgroup(path, h.unified.point, directory)
    raise InvalidArgument(f"cgroup version must be 1 or 2, not {version!r}")


def cgroup_from_sources(path: str, sources: Mapping[str, str | os.PathLike[str]]) -> Cgroup:
    """Rebuild a cgroup from a `mount_sources()` result saved earlier (e.g. in a state file), so
    a later process finds the same directories whatever its own cgroup. A lone "unified" key is
    a v2 cgroup; otherwise v1 ("unified", if present, is its hybrid directory)."""
    dirs = {name: _fs.normpath(d) for name, d in sources.items()}
    if set(dirs) == {_fs.UNIFIED}:
        directory = dirs[_fs.UNIFIED]
        h = _hierarchies(None)
        root = h.unified.point if h.unified is not None else directory
        if not _fs.is_within(directory, root):
            root = directory
        return V2Cgroup(path, root, directory)
    unified = dirs.pop(_fs.UNIFIED, None)
    known = _fs.known_controllers()
    v1 = {(k if k in known else "name=" + k): d for k, d in dirs.items()}
    return V1Cgroup(path, v1, unified)


def cgroup_for_pid(pid: int | Literal["self"]) -> dict[str, str]:
    """/proc/PID/cgroup as {controller: cgroup path}; the v2 entry is keyed "unified"."""
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            text = f.read().decode()
    except FileNotFoundError:
        raise NotFound(f"no process {pid}") from None
    return _fs.parse_proc_cgroup(text)


def _open_v1(path: str, h: _fs.Hierarchies, mode: CgroupMode, own: dict[str, str]) -> V1Cgroup:
    if mode == "v2":
        raise Unavailable("cgroup v1 is not mounted on this host (it is cgroup v2 only)")
    dirs = {name: m.dir_for(_absolute(path, own, name)) for name, m in h.v1.items()}
    unified = None
    if mode == "hybrid" and h.unified is not None:
        unified = h.unified.dir_for(_absolute(path, own, _fs.UNIFIED))
    return V1Cgroup(path, dirs, unified)


def _check_path(path: str) -> None:
    if not path or path == "/":
        raise InvalidArgument("cgroupsPath must name a cgroup, e.g. /dockyard/<id>")
    if ":" in path:
        raise InvalidArgument(f"cgroupsPath {path!r}: systemd slice:prefix:name is not supported")
    if any(part in (".", "..") for part in path.split("/")):
        raise InvalidArgument(f"cgroupsPath {path!r} must not contain . or ..")


def _absolute(path: str, own: dict[str, str], controller: str) -> str:
    if path.startswith("/"):
        return path
    return os.path.normpath(_fs.join(own.get(controller, "/"), path))


def _hierarchies(mountinfo: str | None) -> _fs.Hierarchies:
    if mountinfo is None:
        mountinfo = _fs.read("/proc/self/mountinfo")
    return _fs.parse_mountinfo(mountinfo, _fs.known_controllers())


def _mode(h: _fs.Hierarchies) -> CgroupMode:
    has_v1 = any(not name.startswith("name=") for name in h.v1)
    if has_v1:
        return "hybrid" if h.unified is not None else "v1"
    if h.unified is not None:
        return "v2"
    raise Unavailable("no cgroup hierarchy is mounted (neither cgroup nor cgroup2 in mountinfo)")
