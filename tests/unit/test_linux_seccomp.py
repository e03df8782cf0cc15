"""Seccomp filters built with libseccomp: actions, rules with arguments, and a real load in a
forked child (no_new_privs makes that unprivileged)."""

from __future__ import annotations

import errno
import os

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux.kernel import PR_SET_NO_NEW_PRIVS, RealKernel
from dockyard.linux.seccomp import action_value, compile_filter

PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_NOPE"],
    "syscalls": [
        {"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": errno.EROFS},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
    ],
}  # fmt: skip


def test_action_values() -> None:
    assert action_value("SCMP_ACT_ERRNO", None) == 0x00050000 | errno.EPERM
    assert action_value("SCMP_ACT_ERRNO", 5) == 0x00050005
    assert action_value("SCMP_ACT_ALLOW", None) == 0x7FFF0000
    with pytest.raises(InvalidArgument):
        action_value("SCMP_ACT_EXPLODE", None)


def test_bad_operator_is_rejected() -> None:
    bad = {"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}  # fmt: skip
    with pytest.raises(InvalidArgument, match="SCMP_CMP_ALMOST"):
        compile_filter(bad)


def test_filter_loads_and_applies_in_a_child(tmp_path: os.PathLike[str]) -> None:
    filt = compile_filter(PROFILE)
    k = RealKernel()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            k.prctl(PR_SET_NO_NEW_PRIVS, 1)
            filt.load()
            try:
                os.mkdir(os.path.join(tmp_path, "x"))
            except OSError as e:
                code = 10 if e.errno == errno.EROFS else 2
            try:
                k.personality(8)
            except OSError as e:
                code += 20 if e.errno == errno.EPERM else 0
            k.personality(0)  # other argument values are allowed
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 30
    assert not os.path.exists(os.path.join(tmp_path, "x"))


def test_program_is_a_binary_tree() -> None:
    """libseccomp's binary tree (SCMP_FLTATR_CTL_OPTIMIZE 2): range tests (JGT/JGE) split the
    syscall numbers, where a linear program tests each with JEQ; it loads faster (the kernel's
    action cache runs it for every syscall number) and filters in ~log2(n) tests."""
    many = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": [
            "read", "write", "close", "fstat", "lseek", "mmap", "mprotect", "munmap", "brk",
            "rt_sigaction", "rt_sigprocmask", "ioctl", "pread64", "pwrite64", "readv", "writev",
            "access", "pipe", "select", "sched_yield", "mremap", "msync", "mincore", "madvise",
            "dup", "dup2", "pause", "nanosleep", "getitimer", "alarm", "setitimer", "getpid",
        ], "action": "SCMP_ACT_ALLOW"}],
    }  # fmt: skip
    program = compile_filter(many).program
    codes = [int.from_bytes(program[i : i + 2], "little") for i in range(0, len(program), 8)]
    jgt_k, jge_k = 0x25, 0x35
    ranges = sum(1 for c in codes if c in (jgt_k, jge_k))
    assert ranges >= 4, f"a linear program ({ranges} range tests in {len(codes)} instructions)"
