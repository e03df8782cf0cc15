"""The last steps before execve, shared by a container's init and by `exec`.

Responsibility: turn an OCI `process` object into the calling process's final identity —
rlimits, oom_score_adj, supplementary groups, gid, uid, umask, no_new_privs, the five capability
sets, seccomp — then resolve `args[0]` against the container's PATH and exec it.

Order (as runc's init): rlimits and oom_score_adj first (they may need privilege), the bounding
set is dropped while we still hold CAP_SETPCAP, seccomp is loaded before dropping privilege
when no_new_privs is off (installing a filter then needs CAP_SYS_ADMIN) and as late as possible
otherwise; ids change with PR_SET_KEEPCAPS so capset can set the wanted sets afterwards.

Invariant (CVE-2019-5736 class): before execve every fd >= 3 is marked close-on-exec, so no
descriptor of the host runtime (its interpreter, state directory, sync pipes) leaks into the
container; the process image of the interpreter is replaced by execve.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument, NotFound
from dockyard.linux import caps
from dockyard.linux.kernel import PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any

    from dockyard.linux.kernel import Kernel

if TYPE_CHECKING:
    from dockyard.linux.seccomp import Filter

RLIMITS = {
    name: i
    for i, name in enumerate(
        (
            "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
            "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
            "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
            "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
        )
    )
}  # fmt: skip
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Prepared:
    """What must be computed while the host is still visible (before pivot_root/setns mnt)."""

    def __init__(
        self,
        process: dict[str, Any],
        cap_limit: int,
        linux: dict[str, Any],
        seccomp_cache: str | None = None,
    ) -> None:
        """`seccomp_cache`: a directory keeping compiled seccomp programs across processes."""
        self.process = process
        self.cap_limit = cap_limit
        self.cap_sets = caps.masks(process.get("capabilities"), cap_limit)
        self.seccomp: Filter | None = None
        if linux.get("seccomp"):
            from dockyard.linux.seccomp import compile_filter

            self.seccomp = compile_filter(linux["seccomp"], seccomp_cache)
        for rl in process.get("rlimits") or []:
            if rl.get("type") not in RLIMITS:
                raise InvalidArgument(f"unknown rlimit type {rl.get('type')!r}")


def set_limits(k: Kernel, process: dict[str, Any]) -> None:
    for rl in process.get("rlimits") or []:
        k.setrlimit(RLIMITS[rl["type"]], rl["soft"], rl["hard"])
    if process.get("oomScoreAdj") is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(process["oomScoreAdj"]))


def set_identity(k: Kernel, prep: Prepared, userns_setgroups: bool = True) -> None:
    """Groups, ids, umask, no_new_privs, capabilities and (early) seccomp."""
    process = prep.process
    user = process.get("user") or {}
    nnp = bool(process.get("noNewPrivileges"))
    caps.drop_bounding(k, prep.cap_sets, prep.cap_limit)
    if nnp:
        k.prctl(PR_SET_NO_NEW_PRIVS, 1)
    elif prep.seccomp is not None:
        prep.seccomp.load()
    k.prctl(PR_SET_KEEPCAPS, 1)
    if userns_setgroups:
        k.setgroups(list(user.get("additionalGids") or []))
    k.setresgid(int(user.get("gid", 0)))
    k.setresuid(int(user.get("uid", 0)))
    k.prctl(PR_SET_KEEPCAPS, 0)
    caps.set_sets(k, prep.cap_sets, prep.cap_limit)
    if user.get("umask") is not None:
        os.umask(int(user["umask"]))


def environment(process: dict[str, Any]) -> dict[str, str]:
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in process.get("env") or [])
    if "HOME" not in env:
        env["HOME"] = home_of(int((process.get("user") or {}).get("uid", 0)))
    return env


def home_of(uid: int) -> str:
    """The home directory of `uid` in the container's /etc/passwd, or "/"."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def resolve(argv0: str, env: dict[str, str]) -> str:
    """The executable `argv0` names, looked up in the container's PATH like execvp."""
    if "/" in argv0:
        if not os.path.exists(argv0):
            raise NotFound(f'exec: "{argv0}": stat {argv0}: no such file or directory')
        return argv0
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(d or ".", argv0)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise NotFound(f'exec: "{argv0}": executable file not found in $PATH')


def chdir(process: dict[str, Any]) -> None:
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except FileNotFoundError:
        os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd)


def reset_signals() -> None:
    """Default dispositions and an empty mask for every signal, as a fresh process has them.

    The interpreter ignores SIGPIPE and SIGXFSZ, and its callers may ignore or block others;
    ignored dispositions and the mask survive execve, so without this the container's
    programs would not die of SIGPIPE (`yes | head`) and might ignore SIGTERM.
    """
    import _signal  # type: ignore[import-not-found]  # `signal` would import enum

    for n in range(1, _signal.NSIG):
        if n in (_signal.SIGKILL, _signal.SIGSTOP):
            continue
        try:  # noqa: SIM105 - contextlib stays off this path
            _signal.signal(n, _signal.SIG_DFL)
        except (OSError, ValueError):  # reserved real-time signals of the C library
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def exec_process(k: Kernel, prep: Prepared, path: str, env: dict[str, str]) -> None:
    """Reset signals, load the late seccomp filter, close-on-exec every fd >= 3, execve.
    Never returns."""
    reset_signals()
    if prep.process.get("noNewPrivileges") and prep.seccomp is not None:
        prep.seccomp.load()
    k.cloexec_from(3)
    os.execve(path, list(prep.process["args"]), env)
