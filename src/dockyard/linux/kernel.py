"""The `Kernel` protocol and its libc implementation (`linux.libc`, on `_ctypes`).

Responsibility: every system call the runtime makes that Python's `os` module does not offer
(or offers in a form we cannot fake) goes through one `Kernel` object: namespaces (unshare, setns,
a fork-like clone), mounts, pivot_root, host/domain names, prctl, capabilities, rlimits, groups,
personality. The runtime receives a `Kernel` so unit tests can pass `fake.FakeKernel` and check
the sequence of calls without root.

Invariants:
- libc is loaded lazily on first use (`preload()` before fork), errno captured per call as
  ctypes' `use_errno=True` does, without importing `ctypes` (~3 ms); a failing call raises `OSError`
  with the errno and a message naming the call and its main argument (never returns -1);
- `clone` has fork semantics (no new stack, no CLONE_VM) and runs Python's before/after-fork
  hooks, so the child is a consistent single-threaded interpreter;
- nothing here decides policy: callers pass flags, this module passes them on.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Protocol


# clone(2) / unshare(2) / setns(2) flags
CLONE_NEWTIME = 0x00000080
CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_INTO_CGROUP = 0x200000000  # clone3 only (Linux 5.7)
SIGCHLD = 17

# OCI namespace type -> (clone flag, /proc/PID/ns file name)
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "network": (CLONE_NEWNET, "net"),
    "pid": (CLONE_NEWPID, "pid"),
    "mount": (CLONE_NEWNS, "mnt"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# x86_64 system call numbers used through syscall(2)
_SYS_CLONE = 56
_SYS_CAPGET = 125
_SYS_CAPSET = 126
_SYS_PIVOT_ROOT = 155
_SYS_SETNS = 308
_SYS_CLONE3 = 435
_SYS_CLOSE_RANGE = 436
CLOSE_RANGE_CLOEXEC = 4
_CAP_VERSION_3 = 0x20080522


if TYPE_CHECKING:  # a protocol for the type checker; the run path never imports typing

    class Kernel(Protocol):
        """The system calls the runtime needs; `RealKernel` or a recording fake."""

        def unshare(self, flags: int) -> None: ...
        def setns(self, fd: int, nstype: int) -> None: ...
        def clone(self, flags: int, cgroup_fd: int = -1) -> int: ...
        def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None: ...
        def umount2(self, target: str, flags: int) -> None: ...
        def pivot_root(self, new_root: str, put_old: str) -> None: ...
        def sethostname(self, name: str) -> None: ...
        def setdomainname(self, name: str) -> None: ...
        def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int: ...
        def capget(self) -> tuple[int, int, int]: ...
        def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
        def setrlimit(self, resource: int, soft: int, hard: int) -> None: ...
        def setgroups(self, gids: list[int]) -> None: ...
        def setresgid(self, gid: int) -> None: ...
        def setresuid(self, uid: int) -> None: ...
        def personality(self, persona: int) -> None: ...
        def mknod(self, path: str, mode: int, device: int, uid: int, gid: int) -> None: ...
        def cloexec_from(self, lowfd: int) -> None: ...


def _check(result: int, what: str) -> int:
    if result < 0:
        from dockyard.linux import libc

        err = libc.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _arg(value: int | bytes | None) -> object:
    """A `syscall(2)` argument: ints widened to C long, bytes and None passed as pointers."""
    from dockyard.linux import libc

    return libc.c_long(value) if isinstance(value, int) else value


class RealKernel:
    """`Kernel` on the running Linux kernel through libc (x86_64), via `linux.libc`."""

    def preload(self) -> None:
        """Load libc now (callers do it before fork so children need not)."""
        from dockyard.linux import libc

        libc.load()

    def _syscall(self, number: int, *args: int | bytes | None) -> int:
        from dockyard.linux import libc

        return libc.long_fn("syscall")(libc.c_long(number), *[_arg(a) for a in args])

    def unshare(self, flags: int) -> None:
        from dockyard.linux import libc

        _check(libc.int_fn("unshare")(flags), f"unshare({flags:#x})")

    def setns(self, fd: int, nstype: int) -> None:
        _check(self._syscall(_SYS_SETNS, fd, nstype), f"setns({nstype:#x})")

    def clone(self, flags: int, cgroup_fd: int = -1) -> int:
        """fork(2) with extra clone flags: returns 0 in the child, the child's pid in the parent.

        `cgroup_fd` >= 0 (a cgroup2 directory): clone3(2) with CLONE_INTO_CGROUP, so the child
        starts in that cgroup (no cgroup.procs write); OSError (ENOSYS, EINVAL, EACCES...) when
        the kernel or the caller's namespaces do not allow it."""
        from dockyard.linux import libc

        libc.pyapi("PyOS_BeforeFork")()
        if cgroup_fd >= 0:
            args = libc.U64x11(
                flags | CLONE_INTO_CGROUP, 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd
            )
            call = libc.long_fn("syscall")
            pid = call(libc.c_long(_SYS_CLONE3), args, libc.c_long(88))
        else:
            pid = self._syscall(_SYS_CLONE, flags | SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            libc.pyapi("PyOS_AfterFork_Child")()
        else:
            err = libc.get_errno()
            libc.pyapi("PyOS_AfterFork_Parent")()
            if pid < 0:
                raise OSError(err, f"clone({flags:#x}): {os.strerror(err)}")
        return pid

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        from dockyard.linux import libc

        res = libc.int_fn("mount")(
            source.encode(), target.encode(), fstype.encode(), libc.c_ulong(flags),
            data.encode() or None,
        )  # fmt: skip
        _check(res, f"mount {source!r} on {target!r} (type {fstype!r}, flags {flags:#x}, {data!r})")

    def umount2(self, target: str, flags: int) -> None:
        from dockyard.linux import libc

        _check(libc.int_fn("umount2")(target.encode(), flags), f"umount {target!r}")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        res = self._syscall(_SYS_PIVOT_ROOT, new_root.encode(), put_old.encode())
        _check(res, f"pivot_root({new_root!r})")

    def sethostname(self, name: str) -> None:
        from dockyard.linux import libc

        raw = name.encode()
        _check(libc.int_fn("sethostname")(raw, len(raw)), f"sethostname({name!r})")

    def setdomainname(self, name: str) -> None:
        from dockyard.linux import libc

        raw = name.encode()
        _check(libc.int_fn("setdomainname")(raw, len(raw)), f"setdomainname({name!r})")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int:
        from dockyard.linux import libc

        ul = libc.c_ulong
        res = libc.int_fn("prctl")(option, ul(arg2), ul(arg3), ul(0), ul(0))
        return _check(res, f"prctl({option}, {arg2})")

    def capget(self) -> tuple[int, int, int]:
        from dockyard.linux import libc

        header, data = libc.U32x2(_CAP_VERSION_3, 0), libc.U32x6()
        _check(self._syscall_ptr(_SYS_CAPGET, header, data), "capget")
        eff = data[0] | data[3] << 32
        prm = data[1] | data[4] << 32
        inh = data[2] | data[5] << 32
        return eff, prm, inh

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        from dockyard.linux import libc

        header, data = libc.U32x2(_CAP_VERSION_3, 0), libc.U32x6()
        for i in (0, 1):
            shift = 32 * i
            data[3 * i] = (effective >> shift) & 0xFFFFFFFF
            data[3 * i + 1] = (permitted >> shift) & 0xFFFFFFFF
            data[3 * i + 2] = (inheritable >> shift) & 0xFFFFFFFF
        _check(self._syscall_ptr(_SYS_CAPSET, header, data), "capset")

    def _syscall_ptr(self, number: int, a: object, b: object) -> int:
        from dockyard.linux import libc

        return libc.long_fn("syscall")(libc.c_long(number), a, b)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        from dockyard.linux import libc

        limits = libc.U64x2(soft, hard)
        res = libc.int_fn("prlimit")(0, resource, limits, None)
        _check(res, f"setrlimit({resource})")

    def setgroups(self, gids: list[int]) -> None:
        os.setgroups(gids)

    def setresgid(self, gid: int) -> None:
        os.setresgid(gid, gid, gid)

    def setresuid(self, uid: int) -> None:
        os.setresuid(uid, uid, uid)

    def personality(self, persona: int) -> None:
        from dockyard.linux import libc

        _check(libc.int_fn("personality")(persona), f"personality({persona:#x})")

    def mknod(self, path: str, mode: int, device: int, uid: int, gid: int) -> None:
        """mknod(2), then the exact permission bits (no umask) and owner."""
        os.mknod(path, mode, device)
        os.chmod(path, mode & 0o7777)
        os.chown(path, uid, gid)

    def cloexec_from(self, lowfd: int) -> None:
        """Mark every fd >= lowfd close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC)."""
        _check(
            self._syscall(_SYS_CLOSE_RANGE, lowfd, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC),
            "close_range",
        )
