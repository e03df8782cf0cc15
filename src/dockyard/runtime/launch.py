"""Forking a container's processes from the calling Python process (no second interpreter).

Responsibility: `spawn(job)` forks stage 1, which makes itself non-dumpable, joins any namespaces
given by path, then clones stage 2 with CLONE_PARENT and the new-namespace flags, so stage 2 (the
container's init, or an exec'd process) is a direct child of the caller (unless the job is not
adopted: a detached exec is left to the nearest subreaper or init). Stage 2 runs
`job.child(kernel, channel)`, which must end in execve. The caller gets stage 2's host pid.

The cgroup, fast way (no user namespace, no cgroup namespace to join): stage 2 is cloned into
the cgroup2 directory (clone3 CLONE_INTO_CGROUP) and, first thing, writes "0" to each v1 `tasks`
file, opened by the caller beforehand (`Cgroup.self_join_files`): no cgroup.procs write, so no
RCU grace period (5-20 ms, see linux/attach_warmup.py). Otherwise (or when clone3 refuses) the
caller writes stage 2's pid to cgroup.procs *while* stage 2 sets itself up, overlapping the
grace period with the child's mounts. Either way the caller then sends "cgroup". Invariant:
stage 2 never execs before it is in its cgroup and has received "cgroup" (the init waits for it;
an exec'd process waits for "go", which the caller sends only after `spawn` returned).

Why stage 1: setns(2) into a pid or user namespace must happen in a single-threaded process and
changes only its children; doing it in a throwaway fork leaves the caller (the engine, a
library user) untouched. Why CLONE_PARENT: the caller can waitpid the container directly. When
there is nothing to join (the usual `create`), or only network/ipc/uts namespaces, which stage 2
joins itself (`CHILD_JOINABLE`), stage 2 is cloned from the caller directly.

CVE-2019-5736 (a container overwriting the host runtime binary through /proc/PID/exe while the
runtime joins it): our runtime-side process in the container is a fork of the host Python
interpreter, so /proc/PID/exe points at the host's python binary. Stage 1 calls
prctl(PR_SET_DUMPABLE, 0) *before* it joins any namespace; stage 2 inherits that, so a process in
the container cannot open /proc/PID/exe, /proc/PID/fd/* or /proc/PID/mem of it (ptrace access
checks fail for non-dumpable tasks) during the whole window until execve. execve then replaces
the interpreter image (and resets dumpability for the container's own binary), and every fd >= 3
is close-on-exec (`process.exec_process`), so no host file leaks into the container.
"""

from __future__ import annotations

import os

from dockyard.errors import DockyardError
from dockyard.linux import attach_warmup
from dockyard.linux.kernel import (
    CLONE_NEWCGROUP,
    CLONE_NEWUSER,
    CLONE_PARENT,
    NAMESPACES,
    PR_SET_DUMPABLE,
)
from dockyard.runtime.channel import Channel, pair

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from dockyard.linux.kernel import Kernel

if TYPE_CHECKING:
    from dockyard.linux.cgroups import Cgroup

if TYPE_CHECKING:
    ChildMain = Callable[[Kernel, Channel], None]


class Job:
    """What to start: namespaces to join (type, path), new-namespace clone flags, the child.

    `adopt`: make stage 2 our child (CLONE_PARENT) — only when we will wait for it. A detached
    exec must not be: as a zombie of ours it would keep the container's pid namespace (and so
    its dying init) from being torn down until we reaped it."""

    def __init__(
        self,
        child: ChildMain,
        clone_flags: int,
        join: list[tuple[str, str]],
        cgroup: Cgroup | None,
        adopt: bool = True,
        stdio: tuple[int, int, int] | None = None,
    ) -> None:
        self.child = child
        self.clone_flags = clone_flags
        self.join = join
        self.cgroup = cgroup
        self.adopt = adopt
        self.stdio = stdio


def spawn(k: Kernel, job: Job) -> tuple[int, Channel]:
    """Start `job`; returns (host pid of stage 2, parent end of its channel).

    Reaps the `attach_warmup` helper, if one was started, once stage 2 is in its cgroup."""
    try:
        return _spawn(k, job)
    finally:
        attach_warmup.finish()


def _spawn(k: Kernel, job: Job) -> tuple[int, Channel]:
    preload = getattr(k, "preload", None)
    if preload is not None:
        preload()  # load libc once here rather than in every child
    parent, child = pair()
    fds = self_join_fds(job.cgroup, job.clone_flags, job.join)
    try:
        if job.adopt and _joinable_by_child(job):
            return _spawn_direct(k, job, parent, child, fds), parent
        stage1 = os.fork()
        if stage1 == 0:
            parent.close()
            _stage1(k, job, child, fds)
    finally:
        if fds is not None:
            close_all(fds[0] + [fds[1]])
    child.close()
    try:
        msg = parent.expect("pid", defer=("ready", "hooks"))
    except BaseException:
        parent.close()
        raise
    finally:
        _reap(stage1)
    pid = int(msg["pid"])
    _join_cgroup(job, pid, parent, bool(msg.get("joined")))
    return pid, parent


if TYPE_CHECKING:
    SelfJoin = tuple[list[int], int]  # fds of the v1 `tasks` files, of the cgroup2 dir (or -1)


def self_join_fds(
    cg: Cgroup | None, clone_flags: int, join: list[tuple[str, str]]
) -> SelfJoin | None:
    """The fds stage 2 needs to join its cgroup by itself, or None where it cannot (a user
    namespace: its writes would be refused; a cgroup namespace to join: clone3 refuses)."""
    if cg is None or not self_joins(clone_flags, join):
        return None
    tasks: list[int] = []
    try:
        for path in cg.self_join_files():
            tasks.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        target = cg.clone_target()
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        return tasks, os.open(target, flags) if target is not None else -1
    except OSError:
        close_all(tasks)
        return None


def self_joins(clone_flags: int, join: list[tuple[str, str]]) -> bool:
    """Whether stage 2 can join its cgroup by itself (no cgroup.procs write, no grace period):
    not in a user namespace (its writes would be refused), no cgroup namespace to join (clone3
    refuses CLONE_INTO_CGROUP across it)."""
    return not clone_flags & CLONE_NEWUSER and not any(k in ("user", "cgroup") for k, _ in join)


def clone_stage2(k: Kernel, flags: int, fds: SelfJoin | None) -> tuple[int, bool]:
    """clone stage 2; (pid, whether it joins its cgroup by itself: `enter_cgroup`)."""
    if fds is None:
        return k.clone(flags), False
    if fds[1] < 0:
        return k.clone(flags), True  # v1 only: the `tasks` files are all
    try:
        return k.clone(flags, cgroup_fd=fds[1]), True
    except OSError:  # no clone3 or CLONE_INTO_CGROUP here: the caller writes cgroup.procs
        return k.clone(flags), False


def enter_cgroup(fds: SelfJoin | None, joined: bool) -> None:
    """In stage 2: move ourselves (our only thread) into the v1 hierarchies."""
    if fds is None:
        return
    if joined:
        for fd in fds[0]:
            os.write(fd, b"0")
    close_all(fds[0] + [fds[1]])


def close_all(fds: list[int]) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def _join_cgroup(job: Job, pid: int, parent: Channel, joined: bool) -> None:
    """Unless stage 2 `joined` by itself, move it into the job's cgroup while it sets itself
    up; then tell it ("cgroup")."""
    try:
        if job.cgroup is not None and not joined:
            job.cgroup.add(pid)
        parent.send("cgroup")
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs startup time
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        if job.adopt:
            _reap(pid)
        parent.close()
        raise


# Namespaces a freshly cloned, single-threaded child may join itself with setns(2): joining
# them changes the caller alone (unlike pid, which applies to children only) and needs no
# particular order with the namespaces clone made (unlike user, mount and cgroup).
CHILD_JOINABLE = ("network", "ipc", "uts")


def _joinable_by_child(job: Job) -> bool:
    """Whether stage 2 can be cloned from the caller directly: nothing to join, or only
    namespaces in CHILD_JOINABLE and no new user namespace (from which joining the host's
    network namespace would be refused)."""
    if not job.join:
        return True
    if job.clone_flags & CLONE_NEWUSER:
        return False
    return all(kind in CHILD_JOINABLE for kind, _ in job.join)


def _spawn_direct(
    k: Kernel, job: Job, parent: Channel, child: Channel, fds: SelfJoin | None
) -> int:
    """Clone stage 2 from the caller itself (one fork instead of two): nothing to join, or
    only namespaces stage 2 joins by itself (`CHILD_JOINABLE`; the engine's containers join
    the network namespace their network was set up in).

    Non-dumpable first, as in stage 1, before any setns (no container process exists yet).
    We move the child into its cgroup *while* it sets itself up (cgroup.procs writes are slow:
    each waits for an RCU grace period), so the child must wait for our "cgroup" message
    before it execs, and must unshare its cgroup namespace only then (the job's flags never
    include it here)."""
    ns_fds = [(os.open(path, os.O_RDONLY | os.O_CLOEXEC), kind) for kind, path in job.join]
    pid = -1
    try:
        pid, joined = clone_stage2(k, job.clone_flags & ~CLONE_NEWCGROUP, fds)
        if pid == 0:
            parent.close()
            try:
                enter_cgroup(fds, joined)
                k.prctl(PR_SET_DUMPABLE, 0)
                for fd, kind in ns_fds:
                    k.setns(fd, NAMESPACES[kind][0])
                close_all([fd for fd, _ in ns_fds])
                _stdio(job)
            except BaseException as e:
                report(child, e)
                os._exit(1)
            stage2(k, job, child)
    finally:
        if pid != 0:  # the parent's copies (stage 2 closed its own before it went on)
            close_all([fd for fd, _ in ns_fds])
    child.close()
    _join_cgroup(job, pid, parent, joined)
    return pid


def _stdio(job: Job) -> None:
    """stdio of the new process (before any namespace is joined)."""
    if job.stdio is not None:
        for target, fd in enumerate(job.stdio):
            if fd != target:
                os.dup2(fd, target)


def _reap(pid: int) -> None:
    try:  # noqa: SIM105 - contextlib costs startup time
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _stage1(k: Kernel, job: Job, chan: Channel, fds: SelfJoin | None) -> NoReturn:
    code = 1
    try:
        k.prctl(PR_SET_DUMPABLE, 0)  # before any setns: see the module docstring
        _stdio(job)
        ns_fds = [(os.open(path, os.O_RDONLY | os.O_CLOEXEC), kind) for kind, path in job.join]
        for fd, kind in ns_fds:
            k.setns(fd, NAMESPACES[kind][0])
            os.close(fd)
        flags = (CLONE_PARENT if job.adopt else 0) | job.clone_flags & ~CLONE_NEWCGROUP
        pid, joined = clone_stage2(k, flags, fds)
        if pid == 0:
            try:
                enter_cgroup(fds, joined)
            except BaseException as e:
                report(chan, e)
                os._exit(1)
            stage2(k, job, chan)
        chan.send("pid", pid=pid, joined=joined)
        code = 0
    except BaseException as e:
        report(chan, e)
    os._exit(code)


def stage2(k: Kernel, job: Job, chan: Channel) -> NoReturn:
    try:
        job.child(k, chan)
        raise DockyardError("container process returned instead of exec'ing")
    except BaseException as e:
        report(chan, e)
    os._exit(1)


def report(chan: Channel, e: BaseException) -> None:
    try:
        chan.send_error(e)
    except OSError:  # the parent is gone; say it where someone may see it
        os.write(2, f"dockyard-runtime: {e}\n".encode())


def namespaces_of(pid: int) -> list[tuple[str, str]]:
    """(type, path) of each namespace of `pid` that differs from ours, user first."""
    out: list[tuple[str, str]] = []
    for kind, (_flag, name) in NAMESPACES.items():
        theirs, ours = f"/proc/{pid}/ns/{name}", f"/proc/self/ns/{name}"
        try:
            if os.stat(theirs).st_ino != os.stat(ours).st_ino:
                out.append((kind, theirs))
        except FileNotFoundError:
            continue
    return sorted(out, key=lambda t: t[0] != "user")


def write_id_maps(pid: int, linux: dict[str, Any]) -> None:
    """uid_map and gid_map of a child in a new user namespace (from the parent)."""
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        maps = linux.get(key) or []
        if not maps:
            continue
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)
