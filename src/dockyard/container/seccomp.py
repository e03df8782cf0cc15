"""Seccomp profiles for containers: Docker's default policy and Docker-format profile files,
both rendered as the OCI `linux.seccomp` object (pure data; the only I/O is reading a file).

Responsibility: `default_profile(caps)` is the policy of Docker's built-in profile — an allowlist
whose default action is ERRNO(EPERM), the same syscall allowances and argument conditions
(`personality` personas, `socket` without AF_VSOCK, `clone` without namespace flags and `clone3`
answered with ENOSYS unless CAP_SYS_ADMIN), the native architecture with its sub-architectures,
and the capability-dependent includes (CAP_SYS_ADMIN: mount, umount, setns, unshare...;
CAP_SYS_PTRACE: kcmp, pidfd_getfd...; CAP_SYS_MODULE: init_module...). `load_profile(source,
caps)` reads Docker's profile JSON (`--security-opt seccomp=FILE`, or the JSON text the docker
CLI sends) and resolves its `includes`/`excludes`/`archMap` the way Docker's daemon does.
`from_security_opts(opts, caps, privileged=...)` picks the profile a container runs with.

Invariants:
- the policy is data (the `_RULES` table below), filtered by one function (`_selected`) for the
  built-in profile and for loaded files alike; includes need *every* listed capability in the
  bounding set, excludes drop a rule when *any* listed capability is present (Docker's rule);
- a profile is built once per (capability set, architecture, kernel) and cached; callers get a
  fresh copy they may mutate;
- `None` means unconfined: `seccomp=unconfined`, `--privileged`, or a file with neither a
  default action nor rules; malformed files raise `InvalidArgument` naming the problem.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from dockyard.errors import InvalidArgument

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
EPERM, ENOSYS, AF_VSOCK = 1, 38, 40
UNCONFINED, BUILTIN = "unconfined", "builtin"
ACTIONS = frozenset(
    ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
     ERRNO, "SCMP_ACT_TRACE", ALLOW, "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"]
)  # fmt: skip
OPERATORS = frozenset(
    ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
     "SCMP_CMP_MASKED_EQ"]
)  # fmt: skip
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NS_FLAGS = 0x7E020000
Kernel = tuple[int, int, int]


class Arg(NamedTuple):
    """A condition on argument number `arg` (0-5) of the call."""

    arg: int
    value: int
    op: str
    value_two: int = 0


class Cond(NamedTuple):
    """An `includes` or `excludes` clause: capabilities, architectures, minimum kernel."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: Kernel | None = None


class Rule(NamedTuple):
    names: tuple[str, ...]
    action: str = ALLOW
    args: tuple[Arg, ...] = ()
    errno_ret: int | None = None
    includes: Cond = Cond()
    excludes: Cond = Cond()


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Allowed for every container, grouped by what they touch.
_FILES = _names("""
    access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2
    chown chown32 fchown fchown32 fchownat lchown lchown32 umask
    open openat openat2 creat close close_range dup dup2 dup3 fcntl fcntl64 flock
    read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
    lseek _llseek readahead fadvise64 fadvise64_64 fallocate
    sendfile sendfile64 splice tee vmsplice copy_file_range cachestat
    stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
    statfs statfs64 fstatfs fstatfs64 getdents getdents64 listmount statmount
    mkdir mkdirat mknod mknodat rmdir unlink unlinkat link linkat symlink symlinkat
    readlink readlinkat rename renameat renameat2 truncate truncate64 ftruncate ftruncate64
    sync syncfs fsync fdatasync sync_file_range
    utime utimes utimensat utimensat_time64 futimesat name_to_handle_at
    getxattr lgetxattr fgetxattr getxattrat setxattr lsetxattr fsetxattr setxattrat
    listxattr llistxattr flistxattr listxattrat removexattr lremovexattr fremovexattr
    removexattrat
""")
_EVENTS = _names("""
    ioctl pipe pipe2 select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old
    epoll_pwait epoll_pwait2 eventfd eventfd2 signalfd signalfd4
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
    inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
    io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
    io_uring_setup io_uring_enter io_uring_register ioprio_get ioprio_set
""")
_MEMORY = _names("""
    brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages
    mlock mlock2 mlockall munlock munlockall membarrier memfd_create memfd_secret
    pkey_alloc pkey_free pkey_mprotect map_shadow_stack mseal
""")
_NETWORK = _names("""
    socketpair socketcall bind connect listen accept accept4 shutdown
    getsockname getpeername getsockopt setsockopt
    send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64
""")
_IPC = _names("""
    ipc msgget msgctl msgsnd msgrcv semget semctl semop semtimedop semtimedop_time64
    shmget shmctl shmat shmdt mq_open mq_unlink mq_getsetattr mq_notify
    mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64
""")
_PROCESSES = _names("""
    fork vfork execve execveat exit exit_group wait4 waitid waitpid
    kill tkill tgkill pidfd_open pidfd_send_signal process_mrelease pause restart_syscall
    rt_sigaction rt_sigprocmask rt_sigpending rt_sigsuspend rt_sigreturn rt_sigqueueinfo
    rt_tgsigqueueinfo rt_sigtimedwait rt_sigtimedwait_time64 sigaltstack sigprocmask sigreturn
    futex futex_time64 futex_waitv futex_wait futex_wake futex_requeue
    set_robust_list get_robust_list set_tid_address set_thread_area get_thread_area rseq
    prctl seccomp landlock_create_ruleset landlock_add_rule landlock_restrict_self uretprobe
""")
_IDENTITY = _names("""
    getpid getppid gettid getpgid getpgrp getsid setpgid setsid
    getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
    getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
    setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
    setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32
    setgroups setgroups32 capget capset
    getrlimit ugetrlimit setrlimit prlimit64 getrusage getpriority setpriority
    sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr
    sched_getparam sched_setparam sched_getscheduler sched_setscheduler
    sched_get_priority_max sched_get_priority_min sched_rr_get_interval
    sched_rr_get_interval_time64 getcpu getrandom sysinfo uname
""")
_TIME = _names("""
    time times gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64
    clock_nanosleep clock_nanosleep_time64 nanosleep adjtimex clock_adjtime clock_adjtime64
    alarm getitimer setitimer timer_create timer_delete timer_getoverrun
    timer_gettime timer_gettime64 timer_settime timer_settime64
""")
BASE_ALLOWED = (*_FILES, *_EVENTS, *_MEMORY, *_NETWORK, *_IPC, *_PROCESSES, *_IDENTITY, *_TIME)


# Calls only some architectures have (profiles name them as in `arches`).
_ARCH_ONLY: dict[tuple[str, ...], str] = {
    ("ppc64le",): "sync_file_range2 swapcontext",
    ("arm", "arm64"): "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint "
    "cacheflush set_tls",
    ("amd64", "x32"): "arch_prctl",
    ("amd64", "x32", "x86"): "modify_ldt",
    ("s390", "s390x"): "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
    ("riscv64",): "riscv_flush_icache riscv_hwprobe",
}
# What a capability grants, seccomp must not take away: allowed when the bounding set has it.
_CAP_GRANTS: dict[str, str] = {
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_ADMIN": """bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick
        lookup_dcookie lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr
        move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname
        setns syslog umount umount2 unshare""",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "init_module finit_module delete_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}
# personality(2) personas a container may switch to: PER_LINUX, PER_LINUX32, UNAME26 and
# UNAME26|PER_LINUX32, plus 0xffffffff (the query form).
_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_S390 = ("s390", "s390x")
_NO_SYS_ADMIN = Cond(caps=("CAP_SYS_ADMIN",))
_RULES: tuple[Rule, ...] = (
    Rule(BASE_ALLOWED),
    # Before 4.8 a tracer could rewrite a syscall after seccomp had checked it.
    Rule(_names("ptrace process_vm_readv process_vm_writev"), includes=Cond(min_kernel=(4, 8, 0))),
    Rule(("socket",), args=(Arg(0, AF_VSOCK, "SCMP_CMP_NE"),)),
    *(Rule(("personality",), args=(Arg(0, p, "SCMP_CMP_EQ"),)) for p in _PERSONAS),
    *(Rule(_names(names), includes=Cond(arches=a)) for a, names in _ARCH_ONLY.items()),
    *(Rule(_names(names), includes=Cond(caps=(c,))) for c, names in _CAP_GRANTS.items()),
    # Without CAP_SYS_ADMIN: threads and fork yes, new namespaces no (s390 passes the flags
    # second). clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall
    # back to clone.
    Rule(("clone",), args=(Arg(0, CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ"),),
         excludes=Cond(caps=("CAP_SYS_ADMIN",), arches=_S390)),
    Rule(("clone",), args=(Arg(1, CLONE_NS_FLAGS, "SCMP_CMP_MASKED_EQ"),),
         includes=Cond(arches=_S390), excludes=_NO_SYS_ADMIN),
    Rule(("clone3",), action=ERRNO, errno_ret=ENOSYS, excludes=_NO_SYS_ADMIN),
)  # fmt: skip
# The native architecture and the others its kernel also runs (Docker's archMap).
ARCH_MAP: dict[str, tuple[str, ...]] = {
    "SCMP_ARCH_X86_64": ("SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "SCMP_ARCH_AARCH64": ("SCMP_ARCH_ARM",),
    "SCMP_ARCH_MIPS64": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "SCMP_ARCH_MIPS64N32": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "SCMP_ARCH_MIPSEL64": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "SCMP_ARCH_MIPSEL64N32": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "SCMP_ARCH_S390X": ("SCMP_ARCH_S390",),
    "SCMP_ARCH_RISCV64": (),
}
# uname -m → the short name profiles use in includes/excludes "arches" → libseccomp's name.
_MACHINES = {
    "x86_64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv6l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "ppc": "ppc",
    "s390x": "s390x", "s390": "s390", "mips64": "mips64", "mips": "mipsle",
    "riscv64": "riscv64",
}  # fmt: skip
_SECCOMP_ARCH = {
    "amd64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86", "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "ppc64": "SCMP_ARCH_PPC64",
    "ppc": "SCMP_ARCH_PPC", "s390x": "SCMP_ARCH_S390X", "s390": "SCMP_ARCH_S390",
    "mips64": "SCMP_ARCH_MIPS64", "mipsle": "SCMP_ARCH_MIPSEL", "riscv64": "SCMP_ARCH_RISCV64",
}  # fmt: skip


def native_arch() -> str:
    """The running machine as profiles name it in `arches` ("amd64", "arm64", ...)."""
    machine = os.uname().machine
    return _MACHINES.get(machine, machine)


def parse_kernel(release: str) -> Kernel:
    """Kernel release to (major, minor, patch): "6.18.44-fc" → (6, 18, 44), "4.8" → (4, 8, 0)."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if m is None:
        raise InvalidArgument(f'invalid kernel version {release!r}: expected e.g. "4.8"')
    return (int(m[1]), int(m[2]), int(m[3] or 0))


def running_kernel() -> Kernel:
    return parse_kernel(os.uname().release)


def normalize_caps(caps: Iterable[str]) -> frozenset[str]:
    """Capability names as Docker compares them: upper case with the CAP_ prefix."""
    upper = (c.upper() for c in caps)
    return frozenset(c if c.startswith("CAP_") else f"CAP_{c}" for c in upper)


def default_profile(
    caps: Iterable[str], *, arch: str | None = None, kernel: Kernel | None = None
) -> dict[str, Any]:
    """Docker's default profile as an OCI `linux.seccomp` object for a container whose bounding
    set is `caps`. `arch`/`kernel` default to this machine's (tests pass others)."""
    key = (normalize_caps(caps), arch or native_arch(), kernel or running_kernel())
    return _copy(_default_cached(*key))


@lru_cache(maxsize=64)
def _default_cached(caps: frozenset[str], arch: str, kernel: Kernel) -> dict[str, Any]:
    return _render(ERRNO, EPERM, _arches_for(arch, ARCH_MAP), {}, _RULES, caps, arch, kernel)


def _arches_for(arch: str, arch_map: dict[str, tuple[str, ...]]) -> list[str]:
    native = _SECCOMP_ARCH.get(arch)
    if native is None or native not in arch_map:
        return []
    return [native, *arch_map[native]]


def _selected(rule: Rule, caps: frozenset[str], arch: str, kernel: Kernel) -> bool:
    inc, exc = rule.includes, rule.excludes
    if arch in exc.arches or any(c in caps for c in exc.caps):
        return False
    if exc.min_kernel is not None and kernel >= exc.min_kernel:
        return False
    if inc.arches and arch not in inc.arches:
        return False
    if not all(c in caps for c in inc.caps):
        return False
    return inc.min_kernel is None or kernel >= inc.min_kernel


def _render(
    default_action: str,
    default_errno: int | None,
    architectures: list[str],
    extra: dict[str, Any],
    rules: Iterable[Rule],
    caps: frozenset[str],
    arch: str,
    kernel: Kernel,
) -> dict[str, Any]:
    out: dict[str, Any] = {"defaultAction": default_action}
    if default_errno is not None:
        out["defaultErrnoRet"] = default_errno
    if architectures:
        out["architectures"] = architectures
    out.update(extra)
    out["syscalls"] = [_oci_rule(r) for r in rules if _selected(r, caps, arch, kernel)]
    return out


def _oci_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
    if rule.errno_ret is not None:
        out["errnoRet"] = rule.errno_ret
    if rule.args:
        out["args"] = [
            {"index": a.arg, "value": a.value, "valueTwo": a.value_two, "op": a.op}
            for a in rule.args
        ]
    return out


def _copy(profile: dict[str, Any]) -> dict[str, Any]:
    out = dict(profile)
    if "architectures" in out:
        out["architectures"] = list(out["architectures"])
    if "flags" in out:
        out["flags"] = list(out["flags"])
    out["syscalls"] = [_copy_rule(r) for r in profile["syscalls"]]
    return out


def _copy_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out = dict(rule)
    out["names"] = list(rule["names"])
    if "args" in rule:
        out["args"] = [dict(a) for a in rule["args"]]
    return out


# ---- Docker-format profile files -------------------------------------------------------------


def load_profile(
    source: str, caps: Iterable[str] = (), *, arch: str | None = None, kernel: Kernel | None = None
) -> dict[str, Any] | None:
    """The OCI seccomp object for `--security-opt seccomp=SOURCE`.

    SOURCE is "unconfined" (→ None), "builtin" (→ the default profile), the profile's JSON text
    (what the docker CLI sends), or the path of a JSON file. `caps` is the container's bounding
    set, against which `includes`/`excludes` capability clauses are resolved.
    """
    if source == UNCONFINED:
        return None
    if source == BUILTIN:
        return default_profile(caps, arch=arch, kernel=kernel)
    text = source if source.lstrip().startswith("{") else _read(source)
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"decoding seccomp profile failed: {e}") from None
    return convert_profile(doc, caps, arch=arch, kernel=kernel)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgument(
            f"opening seccomp profile ({path}) failed: {e.strerror or e}; pass a JSON file, "
            f'"{UNCONFINED}" or "{BUILTIN}"'
        ) from None


def convert_profile(
    doc: Any, caps: Iterable[str] = (), *, arch: str | None = None, kernel: Kernel | None = None
) -> dict[str, Any] | None:
    """A decoded Docker profile (or plain OCI seccomp object) → the OCI seccomp object."""
    if not isinstance(doc, dict):
        raise InvalidArgument("decoding seccomp profile failed: expected a JSON object")
    syscalls = _field(doc, "syscalls", list) or []
    default_action = _field(doc, "defaultAction", str) or ""
    if not default_action and not syscalls:
        return None  # Docker: no default action and no rules means seccomp is off
    _check_action(default_action, "defaultAction")
    architectures = _field(doc, "architectures", list) or []
    arch_map = _field(doc, "archMap", list) or []
    if architectures and arch_map:
        raise InvalidArgument(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either "
            "'architectures' or 'archMap'"
        )
    arch = arch or native_arch()
    if arch_map:
        architectures = _arches_for(arch, _parse_arch_map(arch_map))
    extra = {k: doc[k] for k in ("flags", "listenerPath", "listenerMetadata") if doc.get(k)}
    rules = [_parse_rule(i, r) for i, r in enumerate(syscalls)]
    return _render(
        default_action,
        _field(doc, "defaultErrnoRet", int),
        [str(a) for a in architectures],
        extra,
        rules,
        normalize_caps(caps),
        arch,
        kernel or running_kernel(),
    )


def _field(obj: dict[str, Any], key: str, kind: type, where: str = "profile") -> Any:
    value = obj.get(key)
    bad_int = kind is int and isinstance(value, int) and value < 0
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) or bad_int):
        raise InvalidArgument(
            f"seccomp {where}: {key!r} must be a {_KIND_NAMES.get(kind, kind.__name__)}, "
            f"not {json.dumps(value)}"
        )
    return value


_KIND_NAMES = {list: "list", str: "string", int: "non-negative integer", dict: "object"}


def _check_action(action: str, where: str) -> None:
    if action not in ACTIONS:
        raise InvalidArgument(
            f"seccomp profile: unknown action {action!r} in {where}; expected one of "
            + ", ".join(sorted(ACTIONS))
        )


def _parse_arch_map(entries: list[Any]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("architecture"), str):
            raise InvalidArgument("seccomp profile: each archMap entry needs an 'architecture'")
        out.setdefault(e["architecture"], tuple(e.get("subArchitectures") or ()))
    return out


def _parse_rule(i: int, raw: Any) -> Rule:
    where = f"syscalls[{i}]"
    if not isinstance(raw, dict):
        raise InvalidArgument(f"seccomp profile: {where} must be an object")
    name, names = _field(raw, "name", str, where), _field(raw, "names", list, where)
    if name and names:
        raise InvalidArgument(
            f"seccomp profile: 'name' and 'names' were specified in {where}, use either "
            "'name' or 'names'"
        )
    all_names = tuple(str(n) for n in ([name] if name else names or []))
    action = _field(raw, "action", str, where) or ""
    _check_action(action, where)
    errno_ret = _field(raw, "errnoRet", int, where)
    args = tuple(_parse_arg(where, a) for a in _field(raw, "args", list, where) or [])
    return Rule(
        all_names,
        action,
        args,
        errno_ret,
        _parse_cond(where, raw.get("includes")),
        _parse_cond(where, raw.get("excludes")),
    )


def _parse_arg(where: str, raw: Any) -> Arg:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"seccomp profile: an argument of {where} must be an object")
    index = _field(raw, "index", int, where) or 0
    if not 0 <= index <= 5:
        raise InvalidArgument(f"seccomp profile: argument index {index} in {where} is not 0-5")
    op = _field(raw, "op", str, where) or ""
    if op not in OPERATORS:
        raise InvalidArgument(
            f"seccomp profile: unknown operator {op!r} in {where}; expected one of "
            + ", ".join(sorted(OPERATORS))
        )
    value = _field(raw, "value", int, where) or 0
    value_two = _field(raw, "valueTwo", int, where) or 0
    for v in (value, value_two):
        if not 0 <= v < 1 << 64:
            raise InvalidArgument(f"seccomp profile: argument value {v} in {where} is not a u64")
    return Arg(index, value, op, value_two)


def _parse_cond(where: str, raw: Any) -> Cond:
    if raw is None:
        return Cond()
    if not isinstance(raw, dict):
        raise InvalidArgument(f"seccomp profile: includes/excludes of {where} must be objects")
    min_kernel = _field(raw, "minKernel", str, where)
    return Cond(
        caps=tuple(normalize_caps(_field(raw, "caps", list, where) or [])),
        arches=tuple(str(a) for a in _field(raw, "arches", list, where) or []),
        min_kernel=parse_kernel(min_kernel) if min_kernel else None,
    )


# ---- --security-opt ---------------------------------------------------------------------------


def seccomp_option(security_opts: Sequence[str] | None) -> str | None:
    """The value of the last `seccomp=VALUE` (or legacy `seccomp:VALUE`) option, if any."""
    found = None
    for opt in security_opts or ():
        for sep in ("=", ":"):
            key, has_sep, value = opt.partition(sep)
            if key == "seccomp" and has_sep:
                found = value
                break
    return found


def from_security_opts(
    security_opts: Sequence[str] | None, caps: Iterable[str], *, privileged: bool = False
) -> dict[str, Any] | None:
    """The OCI seccomp object a container runs with, as Docker chooses it: none when privileged
    or `seccomp=unconfined`, the named profile when given, else the default for `caps`."""
    if privileged:
        return None
    value = seccomp_option(security_opts)
    if value is None or value == "":
        return default_profile(caps)
    return load_profile(value, caps)
