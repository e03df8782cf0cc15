"""Which containers the launcher clones straight from the caller (one fork) and which go
through stage 1 (a throwaway fork that joins namespaces first): runtime/launch.py."""

from __future__ import annotations

from dockyard.linux.kernel import CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER
from dockyard.runtime.launch import Job, _joinable_by_child


def _job(flags: int, join: list[tuple[str, str]]) -> Job:
    return Job(lambda k, c: None, flags, join, None)


def test_nothing_to_join_is_direct() -> None:
    assert _joinable_by_child(_job(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET, []))


def test_network_ipc_uts_are_joined_by_the_child() -> None:
    join = [("network", "/proc/1/ns/net"), ("ipc", "/proc/1/ns/ipc"), ("uts", "/proc/1/ns/uts")]
    assert _joinable_by_child(_job(CLONE_NEWNS | CLONE_NEWPID, join))


def test_pid_mount_user_cgroup_need_stage_one() -> None:
    for kind in ("pid", "mount", "user", "cgroup"):
        assert not _joinable_by_child(_job(CLONE_NEWNS, [(kind, f"/proc/1/ns/{kind}")]))


def test_a_new_user_namespace_needs_stage_one() -> None:
    assert not _joinable_by_child(_job(CLONE_NEWUSER | CLONE_NEWNS, [("network", "/x")]))
