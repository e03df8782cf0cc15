"""The seccomp program cache: stable keys, in-process and on-disk hits that skip libseccomp,
files that are not exactly ours ignored and rewritten, and the ENOSYS stub."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux import seccomp
from dockyard.linux.kernel import PR_SET_NO_NEW_PRIVS, RealKernel

SPEC: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
}
RET_ALLOW = struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)  # a one-instruction program


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Count compilations (a fake compiler returning RET ALLOW) with an empty memo."""
    made: list[dict[str, Any]] = []

    def build(spec: dict[str, Any]) -> bytes:
        made.append(spec)
        return RET_ALLOW

    monkeypatch.setattr(seccomp, "_memo", {})
    monkeypatch.setattr(seccomp, "build_program", build)
    return made


def _forget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process: nothing compiled in memory, and libseccomp must not be needed."""
    monkeypatch.setattr(seccomp, "_memo", {})

    def no_lib() -> None:
        raise AssertionError("libseccomp loaded on a cache hit")

    monkeypatch.setattr(seccomp, "_lib", no_lib)


def test_key_is_stable_and_depends_on_what_matters(monkeypatch: pytest.MonkeyPatch) -> None:
    key = seccomp.cache_key(SPEC)
    assert len(key) == 64 and key == seccomp.cache_key(dict(reversed(list(SPEC.items()))))
    assert seccomp.cache_key({**SPEC, "defaultErrnoRet": 38}) != key
    monkeypatch.setattr(seccomp, "_lib_identity", lambda: "/lib/libseccomp.so.2.9.9:1:2")
    assert seccomp.cache_key(SPEC) != key


def test_library_identity_names_the_file() -> None:
    identity = seccomp._lib_identity()
    assert all("libseccomp.so.2" in part for part in identity.split(";") if part)


def test_non_json_spec_is_rejected() -> None:
    with pytest.raises(InvalidArgument):
        seccomp.cache_key({"syscalls": {1, 2}})


def test_memo_hit_compiles_once(builds: list[dict[str, Any]]) -> None:
    first = seccomp.compile_filter(SPEC)
    assert seccomp.compile_filter(dict(SPEC)) is first
    assert len(builds) == 1


def test_disk_hit_skips_libseccomp(
    builds: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    seccomp.compile_filter(SPEC, str(cache))
    files = list(cache.iterdir())
    assert [f.name for f in files] == [f"{seccomp.cache_key(SPEC)}.bpf"]
    assert files[0].stat().st_mode & 0o777 == 0o600
    _forget(monkeypatch)
    assert seccomp.compile_filter(SPEC, str(cache)).program == RET_ALLOW
    assert len(builds) == 1


def _header_and_program(path: Path) -> tuple[bytes, bytes]:
    header, _, program = path.read_bytes().partition(b"\n")
    return header, program


@pytest.mark.parametrize(
    "damage",
    ["truncated", "flipped", "other_key", "empty", "no_header", "group_writable", "symlink"],
)
def test_damaged_file_is_ignored_and_rewritten(
    damage: str, builds: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    seccomp.compile_filter(SPEC, str(cache))
    path = cache / f"{seccomp.cache_key(SPEC)}.bpf"
    good = path.read_bytes()
    header, program = _header_and_program(path)
    if damage == "truncated":
        path.write_bytes(good[:-3])
    elif damage == "flipped":
        path.write_bytes(header + b"\n" + program[:-1] + bytes([program[-1] ^ 1]))
    elif damage == "other_key":
        path.write_bytes(
            header.replace(seccomp.cache_key(SPEC).encode(), b"0" * 64) + b"\n" + program
        )
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "no_header":
        path.write_bytes(program)
    elif damage == "group_writable":
        path.chmod(0o620)
    else:
        (tmp_path / "elsewhere").write_bytes(good)
        path.unlink()
        path.symlink_to(tmp_path / "elsewhere")
    monkeypatch.setattr(seccomp, "_memo", {})
    assert seccomp.compile_filter(SPEC, str(cache)).program == RET_ALLOW
    assert len(builds) == 2  # compiled again
    assert path.read_bytes() == good and not path.is_symlink()  # and rewritten
    assert sorted(p.name for p in cache.iterdir()) == [path.name]  # no temporary left


def test_unwritable_cache_is_not_an_error(builds: list[dict[str, Any]], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    assert seccomp.compile_filter(SPEC, str(blocker / "cache")).program == RET_ALLOW


def test_memo_is_bounded(builds: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "MEMO_SIZE", 3)
    for n in range(5):
        seccomp.compile_filter({**SPEC, "defaultErrnoRet": n})
    assert len(seccomp._memo) == 3


def test_filter_rejects_what_is_not_a_program() -> None:
    for bad in (b"", b"1234567", RET_ALLOW * 4097):
        with pytest.raises(InvalidArgument):
            seccomp.Filter(bad)


def test_real_compile_round_trips_through_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seccomp, "_memo", {})
    built = seccomp.compile_filter(SPEC, str(tmp_path))
    assert len(built.program) % 8 == 0 and len(built.program) > 8
    _forget(monkeypatch)
    assert seccomp.compile_filter(SPEC, str(tmp_path)).program == built.program


def test_stub_only_when_the_default_refuses() -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("x86_64 syscall numbers")
    allow = seccomp.build_program(SPEC)
    refuse = seccomp.build_program({**SPEC, "defaultAction": "SCMP_ACT_ERRNO"})
    code, _, _, k = struct.unpack_from("=HBBI", allow)
    assert (code, k) == (0x20, 4)  # libseccomp's own program: load the arch first
    stub = seccomp.enosys_stub(0xC000003E, 258)  # AUDIT_ARCH_X86_64, mkdirat
    assert refuse.startswith(stub) and len(stub) == 6 * 8


def _errno_in_child(filt: seccomp.Filter, nr: int) -> int:
    """Load `filt` in a child (no_new_privs: no privilege needed) and call syscall `nr`."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    k = RealKernel()
    pid = os.fork()
    if pid == 0:
        try:
            k.prctl(PR_SET_NO_NEW_PRIVS, 1)
            filt.load()
            rc = libc.syscall(ctypes.c_long(nr), ctypes.c_long(-1), ctypes.c_long(0), 0)
            os._exit(ctypes.get_errno() if rc == -1 else 0)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_newer_syscalls_say_enosys_listed_ones_keep_their_answer(tmp_path: Path) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("x86_64 syscall numbers")
    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS},
            {"names": _PYTHON_NEEDS, "action": "SCMP_ACT_ALLOW"},
        ],
    }
    filt = seccomp.compile_filter(spec, str(tmp_path))
    assert _errno_in_child(filt, 258) == errno.EROFS  # mkdirat: its rule
    assert _errno_in_child(filt, 83) == errno.EPERM  # mkdir: unlisted, below the newest
    assert _errno_in_child(filt, 462) == errno.ENOSYS  # mseal: above the newest (mkdirat)
    assert _errno_in_child(filt, 0x40000000 | 39) != errno.ENOSYS  # x32: the program's answer


_PYTHON_NEEDS = ["exit_group", "exit", "write", "getpid", "rt_sigprocmask", "rt_sigaction",
                 "munmap", "mmap", "brk", "close", "futex", "madvise"]  # fmt: skip
