"""The ctypes kernel on calls that need no privilege, and the fake's failure injection."""

from __future__ import annotations

import errno
import os

import pytest

from dockyard.linux.fake import FakeKernel
from dockyard.linux.kernel import PR_GET_DUMPABLE, RealKernel


def test_real_capget_and_prctl() -> None:
    k = RealKernel()
    eff, prm, _inh = k.capget()
    assert eff & ~prm == 0
    assert k.prctl(PR_GET_DUMPABLE) in (0, 1, 2)


def test_real_errors_are_oserrors_with_the_call() -> None:
    k = RealKernel()
    with pytest.raises(OSError) as info:
        k.umount2("/definitely/not/a/mount/point", 0)
    assert info.value.errno in (errno.EINVAL, errno.ENOENT, errno.EPERM)
    assert "umount" in str(info.value)


def test_real_clone_without_flags_is_fork() -> None:
    k = RealKernel()
    pid = k.clone(0)
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def test_fake_records_and_fails_on_demand() -> None:
    fake = FakeKernel()
    fake.mount("a", "b", "tmpfs", 1, "")
    fake.fail_on["pivot_root"] = errno.EINVAL
    with pytest.raises(OSError):
        fake.pivot_root(".", ".")
    assert fake.names() == ["mount", "pivot_root"]
