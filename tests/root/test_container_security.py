"""The default seccomp profile on the real kernel.

Two levels: (1) the profile's filter loaded in a forked child, which then makes raw syscalls
with harmless arguments — a blocked call answers EPERM (or ENOSYS for clone3), an allowed one
reaches the kernel and fails its own way (ENOENT, EINVAL, EBADF...); (2) busybox containers
run by dockyard-runtime, and by runc on the same bundle, showing `Seccomp: 2`, ordinary commands
working and mount/unshare/sethostname/reboot refused unless CAP_SYS_ADMIN is granted.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.container.seccomp import default_profile
from dockyard.container.spec import DEFAULT_CAPS
from tests.root.bundle_helpers import Runner, default_config, make_bundle, runner_for

pytestmark = [pytest.mark.root]

NOWHERE = b"/nonexistent-dockyard-seccomp-test"
CLONE_NEWNS, CLONE_FS, CLONE_THREAD = 0x20000, 0x200, 0x10000
O_NONBLOCK = 0o4000
# label: (syscall, args). Every call is harmless whether it is allowed or not.
CALLS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "getpid": ("getpid", ()),
    "socket_unix": ("socket", (1, 1, 0)),
    "socket_vsock": ("socket", (40, 1, 0)),
    "personality_query": ("personality", (0xFFFFFFFF,)),
    "personality_no_aslr": ("personality", (0x0040000,)),
    "clone_thread_alone": ("clone", (CLONE_THREAD, 0, 0, 0, 0)),  # EINVAL in the kernel
    "clone_newns_fs": ("clone", (CLONE_NEWNS | CLONE_FS, 0, 0, 0, 0)),  # EINVAL in the kernel
    "clone3": ("clone3", (None, 0)),
    "keyctl": ("keyctl", (0, -3, 0)),
    "add_key": ("add_key", (b"user", b"dockyard-test", None, 0, -2)),
    "request_key": ("request_key", (b"user", b"dockyard-none", None, 0)),
    "unshare_nothing": ("unshare", (0,)),
    "setns_badfd": ("setns", (-1, 0)),
    "mount_nowhere": ("mount", (b"none", NOWHERE, b"tmpfs", 0, None)),
    "umount_nowhere": ("umount2", (NOWHERE, 0)),
    "bpf_badcmd": ("bpf", (0xFFFF, None, 0)),
    "userfaultfd": ("userfaultfd", (0,)),
    "chroot_nowhere": ("chroot", (NOWHERE,)),
    "reboot_badmagic": ("reboot", (0, 0, 0, None)),
    "delete_module_none": ("delete_module", (b"dockyard_no_such_module", O_NONBLOCK)),
    "clock_settime_null": ("clock_settime", (0, None)),
    "kcmp_self": ("kcmp", (os.getpid(), os.getpid(), 1, 0, 0)),
    "syslog_size": ("syslog", (10, None, 0)),
    "open_by_handle_badfd": ("open_by_handle_at", (-1, None, 0)),
}
OK = 0  # the call succeeded


def _libseccomp() -> Any:
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError as e:
        pytest.skip(f"libseccomp.so.2 missing: {e}")
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib


def _arg(a: Any) -> Any:
    return ctypes.c_char_p(a) if isinstance(a, bytes) else a if a is None else ctypes.c_long(a)


def errnos_under(profile: dict[str, Any] | None) -> dict[str, int]:
    """Make every call in CALLS from a child with `profile` loaded; label → errno (0 = ok)."""
    from dockyard.linux.seccomp import compile_filter

    lib = _libseccomp()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    numbers = {n: lib.seccomp_syscall_resolve_name(n.encode()) for n, _ in CALLS.values()}
    prepared = [(label, numbers[n], [_arg(a) for a in args]) for label, (n, args) in CALLS.items()]
    filt = compile_filter(profile) if profile is not None else None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipe and never returns
        try:
            os.close(r)
            if filt is not None:
                filt.load()
            lines = []
            for label, nr, args in prepared:
                ctypes.set_errno(0)
                rc = libc.syscall(nr, *args)
                lines.append(f"{label} {ctypes.get_errno() if rc == -1 else 0}\n")
            os.write(w, "".join(lines).encode())
            os._exit(0)
        finally:
            os._exit(1)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return {label: int(e) for label, e in (line.split() for line in out.splitlines())}


def test_unconfined_calls_reach_the_kernel() -> None:
    """The control: without a filter no call is refused with EPERM by seccomp (as root)."""
    got = errnos_under(None)
    assert got["mount_nowhere"] == errno.ENOENT and got["setns_badfd"] == errno.EBADF
    assert got["clone_newns_fs"] == errno.EINVAL and got["clone3"] == errno.EINVAL
    assert got["reboot_badmagic"] == errno.EINVAL and got["unshare_nothing"] == OK


def test_default_profile_blocks_with_eperm() -> None:
    got = errnos_under(default_profile(DEFAULT_CAPS))
    for label in ("getpid", "socket_unix", "personality_query"):
        assert got[label] == OK, label
    assert got["clone_thread_alone"] == errno.EINVAL  # clone without namespace flags passes
    assert got["chroot_nowhere"] == errno.ENOENT  # CAP_SYS_CHROOT is a default capability
    blocked = [
        "socket_vsock", "personality_no_aslr", "clone_newns_fs", "keyctl", "add_key",
        "request_key", "unshare_nothing", "setns_badfd", "mount_nowhere", "umount_nowhere",
        "bpf_badcmd", "userfaultfd", "reboot_badmagic", "delete_module_none",
        "clock_settime_null", "kcmp_self", "syslog_size", "open_by_handle_badfd",
    ]  # fmt: skip
    assert {k: got[k] for k in blocked} == dict.fromkeys(blocked, errno.EPERM)
    assert got["clone3"] == errno.ENOSYS  # so that libc falls back to clone


def test_cap_sys_admin_lets_mount_and_namespace_calls_through() -> None:
    got = errnos_under(default_profile([*DEFAULT_CAPS, "CAP_SYS_ADMIN"]))
    assert got["unshare_nothing"] == OK
    assert got["setns_badfd"] == errno.EBADF
    assert got["mount_nowhere"] == errno.ENOENT
    assert got["umount_nowhere"] == errno.ENOENT
    assert got["clone_newns_fs"] == errno.EINVAL and got["clone3"] == errno.EINVAL
    assert got["bpf_badcmd"] == errno.EINVAL
    assert got["keyctl"] == got["add_key"] == errno.EPERM  # never allowed
    assert got["reboot_badmagic"] == errno.EPERM  # that is CAP_SYS_BOOT's


def test_each_capability_opens_its_own_calls() -> None:
    caps = [*DEFAULT_CAPS, "CAP_SYS_BOOT", "CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_PTRACE",
            "CAP_SYSLOG", "CAP_DAC_READ_SEARCH"]  # fmt: skip
    got = errnos_under(default_profile(caps))
    assert got["reboot_badmagic"] == errno.EINVAL
    assert got["delete_module_none"] in (errno.ENOENT, errno.ENOSYS)  # ENOSYS: no modules
    assert got["clock_settime_null"] == errno.EFAULT
    assert got["kcmp_self"] == OK and got["syslog_size"] == OK
    assert got["open_by_handle_badfd"] not in (OK, errno.EPERM)
    assert got["mount_nowhere"] == errno.EPERM and got["unshare_nothing"] == errno.EPERM
    no_chroot = [c for c in DEFAULT_CAPS if c != "CAP_SYS_CHROOT"]
    assert errnos_under(default_profile(no_chroot))["chroot_nowhere"] == errno.EPERM


# ---- containers ------------------------------------------------------------------------------

PROBE = r"""
grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status
try() { name=$1; shift; out=$("$@" 2>&1 >/dev/null); echo "$name rc=$? ${out##*: }"; }
try ls ls /
try cat cat /etc/passwd
try date date
try fork sh -c 'true'
try shm sh -c 'echo hi > /dev/shm/x && cat /dev/shm/x'
try ps ps
try chroot chroot / true
try unshare_user unshare -U true
try unshare_mnt unshare -m true
try mount mount -t tmpfs tmpfs /tmp
try hostname hostname dockyard-test
if [ "$$" = 1 ] && grep -q '^Seccomp:.2' /proc/self/status; then try reboot reboot -f; fi
"""
DENIED = ("Operation not permitted", "permission denied")  # busybox mount says the latter


def security_config(caps: list[str], nnp: bool) -> dict[str, Any]:
    config = default_config(["sh", "-c", PROBE])
    config["process"]["capabilities"] = {
        k: list(caps) for k in ("bounding", "effective", "permitted")
    }
    config["process"]["noNewPrivileges"] = nnp
    config["linux"]["seccomp"] = default_profile(caps)
    return config


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[dict[str, Runner]]:
    made: dict[str, Runner] = {}
    try:
        made["dockyard"] = runner_for("dockyard", tmp_path)
        yield made
    finally:
        for r in made.values():
            r.cleanup()


def _cid(tmp_path: Path, tag: str) -> str:
    return f"sec-{tag}-{tmp_path.name[-10:]}"


def observe(runner: Runner, bundle: Path, cid: str) -> dict[str, str]:
    proc = runner("run", "--bundle", str(bundle), cid, timeout=60)
    assert proc.returncode == 0, f"{runner.name}: rc={proc.returncode}\n{proc.stderr}"
    out = {}
    for line in proc.stdout.splitlines():
        key, _, rest = line.replace(":", " ", 1).partition(" ")
        out[key] = rest.strip()
    return out


def _run_both(
    runners: dict[str, Runner], tmp_path: Path, config: dict[str, Any], tag: str
) -> dict[str, dict[str, str]]:
    bundle = make_bundle(tmp_path / "b", [], config=config)
    results = {"dockyard": observe(runners["dockyard"], bundle, f"dy{tag}")}
    runners["runc"] = runner_for("runc", tmp_path)
    results["runc"] = observe(runners["runc"], bundle, f"runc{tag}")
    return results


def check_default(seen: dict[str, str], nnp: bool) -> None:
    assert seen["Seccomp"] == "2" and seen["NoNewPrivs"] == str(int(nnp))
    for ok in ("ls", "cat", "date", "fork", "shm", "ps", "chroot"):
        assert seen[ok].startswith("rc=0"), (ok, seen[ok])
    for denied in ("unshare_user", "unshare_mnt", "mount", "hostname", "reboot"):
        assert not seen[denied].startswith("rc=0"), (denied, seen)
        assert any(d in seen[denied] for d in DENIED), (denied, seen)


@pytest.mark.parametrize("nnp", [False, True], ids=["docker-default", "no-new-privileges"])
def test_default_profile_in_a_container(
    runners: dict[str, Runner], tmp_path: Path, nnp: bool
) -> None:
    bundle = make_bundle(tmp_path / "b", [], config=security_config(list(DEFAULT_CAPS), nnp))
    check_default(observe(runners["dockyard"], bundle, _cid(tmp_path, f"nnp{int(nnp)}")), nnp)


def test_cap_sys_admin_container_may_mount(runners: dict[str, Runner], tmp_path: Path) -> None:
    config = security_config([*DEFAULT_CAPS, "CAP_SYS_ADMIN"], False)
    seen = observe(
        runners["dockyard"], make_bundle(tmp_path / "b", [], config=config), _cid(tmp_path, "adm")
    )
    assert seen["Seccomp"] == "2"
    for ok in ("mount", "unshare_mnt", "hostname", "ls", "chroot"):
        assert seen[ok].startswith("rc=0"), (ok, seen[ok])
    assert DENIED[0] in seen["reboot"]  # CAP_SYS_BOOT is still missing


@pytest.mark.peer
@pytest.mark.parametrize(
    "extra",
    [[], ["CAP_SYS_ADMIN"], ["CAP_SYS_PTRACE", "CAP_SYS_TIME"]],
    ids=["default", "admin", "more"],
)
def test_same_outcomes_as_runc(
    runners: dict[str, Runner], tmp_path: Path, extra: list[str]
) -> None:
    config = security_config([*DEFAULT_CAPS, *extra], False)
    results = _run_both(runners, tmp_path, config, _cid(tmp_path, f"x{len(extra)}"))
    assert results["dockyard"] == results["runc"]
    if not extra:
        check_default(results["runc"], False)


# ---- 32-bit processes (the x86 sub-architecture of the profile) ------------------------------

FSTAT64_C = r"""
static int sys2(int nr, int a, int b) {
    int ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
    return ret;
}
void _start(void) {
    char buf[128];
    int r = sys2(197, 1, (int)buf);  /* fstat64(1, buf): a syscall only i386 has */
    sys2(1, r < 0 ? -r : 0, 0);      /* exit(errno) */
    for (;;) {}
}
"""


@pytest.fixture
def i386_fstat64(tmp_path: Path) -> Path:
    """A libc-free static i386 program exiting with fstat64's errno (skips without -m32)."""
    import shutil
    import subprocess

    if os.uname().machine != "x86_64" or shutil.which("gcc") is None:
        pytest.skip("needs gcc on x86_64")
    src, exe = tmp_path / "fstat64.c", tmp_path / "fstat64"
    src.write_text(FSTAT64_C)
    cmd = ["gcc", "-m32", "-static", "-nostdlib", "-fno-pie", "-no-pie", "-O1", "-o", exe, src]
    made = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot build an i386 program: {made.stderr[-200:]}")
    if subprocess.run([exe], check=False).returncode != 0:
        pytest.skip("this kernel does not run i386 programs")
    return exe


def test_i386_syscalls_allowed_by_the_filter(i386_fstat64: Path) -> None:
    from dockyard.linux.seccomp import compile_filter

    filt = compile_filter(default_profile(DEFAULT_CAPS))
    pid = os.fork()
    if pid == 0:
        try:
            filt.load()
            os.execv(i386_fstat64, [str(i386_fstat64)])
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # 1 = EPERM: the x86 rules were dropped


@pytest.mark.peer
def test_i386_container_same_as_runc(
    runners: dict[str, Runner], tmp_path: Path, i386_fstat64: Path
) -> None:
    import shutil

    config = default_config(["sh", "-c", "/bin/fstat64; echo fstat64=$?"])
    config["linux"]["seccomp"] = default_profile(DEFAULT_CAPS)
    bundle = make_bundle(tmp_path / "b32", [], config=config)
    shutil.copy(i386_fstat64, bundle / "rootfs" / "bin" / "fstat64")
    runners["runc"] = runner_for("runc", tmp_path)
    seen = {
        n: r("run", "--bundle", str(bundle), _cid(tmp_path, f"i386{n}")).stdout
        for n, r in runners.items()
    }
    assert seen["runc"].strip() == "fstat64=0"
    assert seen["dockyard"] == seen["runc"]


def test_syscalls_newer_than_libseccomp_say_enosys_like_runc() -> None:
    """runc's ENOSYS stub: a syscall numbered above the profile's newest is answered ENOSYS
    (libc then falls back), not the default EPERM."""
    if os.uname().machine != "x86_64":
        pytest.skip("uses the x86_64 number of mseal")
    from dockyard.linux.seccomp import compile_filter

    filt = compile_filter(default_profile(DEFAULT_CAPS))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pid = os.fork()
    if pid == 0:
        try:
            filt.load()
            rc = libc.syscall(ctypes.c_long(462), ctypes.c_long(0), ctypes.c_long(0), 0)
            os._exit(ctypes.get_errno() if rc == -1 else 0)  # 462 = mseal (Linux 6.10)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == errno.ENOSYS
