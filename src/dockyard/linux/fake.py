"""A recording `Kernel` for unit tests: no system call is made.

Responsibility: remember every call as `(name, args...)` in `calls`, keep the little state the
runtime reads back (capabilities, the bounding set), and fail on demand (`fail_on`) so error paths
can be tested. Invariant: it never touches the host; file-system side effects stay in the caller.
"""

from __future__ import annotations

import errno

from dockyard.linux.kernel import (
    PR_CAP_AMBIENT,
    PR_CAPBSET_DROP,
    PR_CAPBSET_READ,
)


class FakeKernel:
    """Records calls; `clone` returns `clone_result` (a fake pid by default)."""

    def __init__(self, last_cap: int = 40) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fail_on: dict[str, int] = {}
        self.caps = (1 << (last_cap + 1)) - 1
        self.bounding = self.caps
        self.inheritable = 0
        self.ambient = 0
        self.clone_result = 4242

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, *args))
        err = self.fail_on.get(name)
        if err is not None:
            raise OSError(err, f"{name}: fake failure")

    def names(self) -> list[str]:
        return [str(c[0]) for c in self.calls]

    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._record("setns", fd, nstype)

    def clone(self, flags: int, cgroup_fd: int = -1) -> int:
        if cgroup_fd < 0:
            self._record("clone", flags)
        else:
            self._record("clone", flags, cgroup_fd)
        return self.clone_result

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int) -> None:
        self._record("umount2", target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int:
        self._record("prctl", option, arg2, arg3)
        if option == PR_CAPBSET_READ:
            return (self.bounding >> arg2) & 1
        if option == PR_CAPBSET_DROP:
            if not (self.bounding >> arg2) & 1 and arg2 > 63:
                raise OSError(errno.EINVAL, "fake: no such capability")
            self.bounding &= ~(1 << arg2)
        if option == PR_CAP_AMBIENT and arg2 == 2:  # raise
            if not (self.inheritable >> arg3) & 1:
                raise OSError(errno.EPERM, "fake: not inheritable")
            self.ambient |= 1 << arg3
        return 0

    def capget(self) -> tuple[int, int, int]:
        self._record("capget")
        return self.caps, self.caps, self.inheritable

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._record("capset", effective, permitted, inheritable)
        self.caps = permitted
        self.inheritable = inheritable

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        self._record("setrlimit", resource, soft, hard)

    def setgroups(self, gids: list[int]) -> None:
        self._record("setgroups", list(gids))

    def setresgid(self, gid: int) -> None:
        self._record("setresgid", gid)

    def setresuid(self, uid: int) -> None:
        self._record("setresuid", uid)

    def personality(self, persona: int) -> None:
        self._record("personality", persona)

    def mknod(self, path: str, mode: int, device: int, uid: int, gid: int) -> None:
        self._record("mknod", path, mode, device, uid, gid)

    def cloexec_from(self, lowfd: int) -> None:
        self._record("cloexec_from", lowfd)
