"""Seccomp filters from the OCI `linux.seccomp` object, built with libseccomp through ctypes.

Responsibility: `compile_filter(spec)` loads libseccomp.so.2 and builds a filter context while the
host file system is still visible (before pivot_root); `Filter.load()` installs it in the calling
process, as late as possible before execve.

Invariants (as runc behaves): unknown syscall names and architectures are skipped (negative
numbers other than __NR_SCMP_ERROR are libseccomp's pseudo-syscalls for names that exist only on
another architecture of the filter, e.g. mmap2 on x86, and are kept); rules whose
action equals the default action are skipped (libseccomp rejects them); libseccomp's own
no_new_privs side effect is disabled, so NoNewPrivs is exactly `process.noNewPrivileges`;
ERRNO actions default to EPERM unless `errnoRet`/`defaultErrnoRet` says otherwise. Not done
(yet): runc's ENOSYS stub for syscalls newer than the profile's newest (libseccomp cannot
express "nr > N" without one rule per number, which is slow with several architectures).
"""

from __future__ import annotations

import ctypes
import errno
from typing import Any

from dockyard.errors import InvalidArgument, Unavailable

_ACT_ALLOW = 0x7FFF0000
_ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": _ACT_ALLOW,
}
_OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
_FLTATR_CTL_NNP = 3
_NR_SCMP_ERROR = -1  # __NR_SCMP_ERROR: the only "unknown syscall" answer


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _lib() -> Any:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise Unavailable(f"seccomp requested but libseccomp.so.2 cannot be loaded: {e}") from e
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    return lib


def action_value(name: str, errno_ret: int | None, default_errno: int = errno.EPERM) -> int:
    """The libseccomp action code of an OCI action name."""
    try:
        base = _ACTIONS[name]
    except KeyError:
        raise InvalidArgument(f"unknown seccomp action {name!r}") from None
    if name == "SCMP_ACT_ERRNO":
        return base | ((errno_ret if errno_ret is not None else default_errno) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return base | ((errno_ret if errno_ret is not None else default_errno) & 0xFFFF)
    return base


class Filter:
    """A built libseccomp context, ready to `load()`."""

    def __init__(self, lib: Any, ctx: int) -> None:
        self._lib, self._ctx = lib, ctx

    def load(self) -> None:
        rc = self._lib.seccomp_load(self._ctx)
        if rc < 0:
            raise OSError(-rc, f"seccomp_load: {errno.errorcode.get(-rc, rc)}")


def compile_filter(spec: dict[str, Any]) -> Filter:
    """Build (do not load) the filter described by an OCI `linux.seccomp` object."""
    lib = _lib()
    default_errno = spec.get("defaultErrnoRet", errno.EPERM)
    default = action_value(spec.get("defaultAction", "SCMP_ACT_ALLOW"), None, default_errno)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise InvalidArgument("seccomp_init failed: bad defaultAction")
    lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0)
    for arch in spec.get("architectures") or []:
        token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
        if token:
            lib.seccomp_arch_add(ctx, token)  # -EEXIST for the native arch is fine
    for rule in spec.get("syscalls") or []:
        action = action_value(rule["action"], rule.get("errnoRet"), default_errno)
        for name in rule.get("names") or []:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == _NR_SCMP_ERROR:  # unknown; other negatives are libseccomp pseudo-syscalls
                continue
            if action != default:
                _add_rule(lib, ctx, action, nr, rule.get("args") or [], name)
    return Filter(lib, ctx)


def _add_rule(
    lib: Any, ctx: int, action: int, nr: int, args: list[dict[str, Any]], name: str
) -> None:
    indices = [a["index"] for a in args]
    groups = [args] if len(set(indices)) == len(indices) else [[a] for a in args]
    for group in groups:
        arr = (_ArgCmp * max(len(group), 1))()
        for i, a in enumerate(group):
            op = _OPS.get(a["op"])
            if op is None:
                raise InvalidArgument(f"unknown seccomp operator {a['op']!r} for {name}")
            arr[i] = _ArgCmp(a["index"], op, a.get("value", 0), a.get("valueTwo", 0))
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), arr)
        if rc < 0:
            raise InvalidArgument(f"seccomp rule for {name}: {errno.errorcode.get(-rc, rc)}")
