"""Paths the engine or a peer tool creates on the host as a side effect: cgroup parents, the
netns run dir, runc/crun state dirs, podman/skopeo's blob-info cache. A test session
(tests/conftest.py) and a benchmark (benchmarks/bench_run.py) note which existed before they ran
(`existing`) and remove at the end the ones they caused (`remove_new`), so they leave the host
as they found it."""

from __future__ import annotations

import os
import shutil
import time

_HIERARCHIES = (
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd",
    "unified",
)  # fmt: skip
# Podman (cgroupfs manager) makes `libpod_parent` with `conmon` below it and never removes it.
SIDE_EFFECTS = (
    *(f"/sys/fs/cgroup/{c}/{name}" for c in _HIERARCHIES
      for name in ("dockyard", "dockyard-build", "libpod_parent/conmon", "libpod_parent")),
    "/run/dockyard",
    "/var/lib/containers",
    "/run/runc",
    "/run/crun",
)  # fmt: skip


_PARENTS = tuple(f"/sys/fs/cgroup/{c}/dockyard" for c in _HIERARCHIES)


def existing() -> set[str]:
    """The side effects present now, with the cgroups below the engine's parents (a
    container's, a standby init's): those made later must be gone at the end too."""
    return {p for p in SIDE_EFFECTS if os.path.exists(p)} | set(_children())


def _children() -> list[str]:
    out = []
    for parent in _PARENTS:
        try:
            out += [e.path for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
    return out


def remove_new(before: set[str], timeout: float = 5.0) -> None:
    """Remove the side effects not in `before`: a cgroup only when empty (a live container's
    keeps it; a `--rm` supervisor may still be removing its container's cgroup, so each waits
    up to `timeout` s), a directory only when nothing is mounted below it."""
    for p in [*_children(), *SIDE_EFFECTS]:  # children first: a parent must be empty
        if p in before or not os.path.exists(p):
            continue
        if p.startswith("/sys/fs/cgroup/"):
            deadline = time.monotonic() + timeout
            while True:
                try:
                    os.rmdir(p)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        else:
            with open("/proc/mounts") as f:
                if any(line.split()[1].startswith(p + "/") for line in f):
                    continue  # something is still mounted below it: leave it
            shutil.rmtree(p, ignore_errors=True)
