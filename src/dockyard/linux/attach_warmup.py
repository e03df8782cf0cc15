"""Warm the kernel's cgroup attach lock while the runtime is still starting up.

Why: every write to a `cgroup.procs` file takes the kernel's global `cgroup_threadgroup_rwsem`
for writing, and the first writer after a quiet period waits for a whole RCU grace period
(`rcu_sync_enter` → `synchronize_rcu`) while holding `cgroup_mutex`: 5–20 ms on this host, more
than all the other kernel work of starting a container. A writer that comes within about one
grace period of the previous one passes at once (~0.05 ms). The lock is shared by every
hierarchy, v1 and v2; `mkdir` of a cgroup waits for `cgroup_mutex` meanwhile.

How: `start()` spawns (posix_spawn: vfork + exec, no copy-on-write of our pages) a shell that
writes "0" to our own cgroup's `cgroup.procs`: it moves itself into the cgroup it is already in,
a no-op move that still pays the grace period — while we import and read the spec. The runtime
then loads libc before it creates the container's cgroup, so that mkdir, clone and the init's
attach come right after the grace period, while the lock is still warm. `finish()` reaps the
helper.

Invariants: best effort — no cgroup filesystem, no /bin/sh, a failing write: the attach then
costs what it always did; the helper touches no cgroup but its own (= our) current one; only
`os` is imported (this runs first on `dockyard-runtime run`'s start path); only the process that
called `start()` calls `finish()` (the launcher, in the parent).
"""

from __future__ import annotations

import os

SHELL = "/bin/sh"
_SCRIPT = 'echo 0 > "$1"'
_helpers: list[int] = []  # pid of the running helper, if any


def start() -> None:
    """Spawn the helper, unless one is already running or there is no cgroup to touch."""
    if _helpers:
        return
    try:
        path = own_procs_file(_read("/proc/self/cgroup"))
        if path is None:
            return
        quiet = [(os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]  # its errors: nobody's
        pid = os.posix_spawn(SHELL, ["sh", "-c", _SCRIPT, "sh", path], {}, file_actions=quiet)
    except OSError:
        return
    _helpers.append(pid)


def finish() -> None:
    """Reap the helper (it ends at most about one grace period after it started writing)."""
    while _helpers:
        pid = _helpers.pop()
        try:  # noqa: SIM105 - contextlib costs startup time
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def own_procs_file(proc_cgroup: str, base: str = "/sys/fs/cgroup") -> str | None:
    """Our own `cgroup.procs` (from /proc/self/cgroup text) under the usual mount points: the
    unified hierarchy (hybrid `base`/unified or pure v2 `base`), else the v1 pids or memory
    hierarchy; None when none exists."""
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for name in parts[1].split(",") if parts[1] else [""]:
                own[name] = parts[2].strip("/")
    candidates = []
    if "" in own:
        candidates += [(f"{base}/unified", own[""]), (base, own[""])]
    candidates += [(f"{base}/{name}", own[name]) for name in ("pids", "memory") if name in own]
    for mount, rel in candidates:
        path = f"{mount}/{rel}/cgroup.procs" if rel else f"{mount}/cgroup.procs"
        if os.path.exists(path):
            return path
    return None


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536).decode(errors="replace")
    finally:
        os.close(fd)
