"""Differential tests: the same bundle under dockyard-runtime, runc and crun must look the same
from inside — hostname, pid 1, mounts, capabilities, seccomp, no_new_privs, cgroup limits,
rlimits, ids, masked and read-only paths, exit codes and signals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.root.bundle_helpers import Runner, default_config, make_bundle, runner_for

pytestmark = [pytest.mark.root]

PROBE = r"""
echo "hostname=$(hostname)"
echo "pid=$$"
awk '{for (i = 7; $i != "-"; i++); print "mount=" $5 " " $(i+1)}' /proc/self/mountinfo | sort
grep -E '^(CapEff|CapBnd|CapPrm|CapAmb|CapInh|Seccomp|NoNewPrivs):' /proc/self/status
echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"
echo "nofile=$(ulimit -n)"
echo "id=$(id)"
echo "keys=$(wc -c < /proc/keys)"
echo "firmware=$(ls /sys/firmware | wc -l)"
(echo x > /proc/sys/vm/drop_caches) 2>/dev/null && echo sysctl=writable || echo sysctl=readonly
(touch /newfile) 2>/dev/null && echo root=writable || echo root=readonly
(mkdir /dev/shm/blocked) 2>&1 | sed 's/^/seccomp=/'
ls -1 /dev | tr '\n' ' ' | sed 's/^/dev=/'; echo
exit 3
"""


def probe_config(user: dict[str, Any] | None = None, cgroupns: bool = False) -> dict[str, Any]:
    config = default_config(["sh", "-c", ("cat /proc/self/cgroup;" if cgroupns else "") + PROBE])
    if cgroupns:
        config["linux"]["namespaces"].append({"type": "cgroup"})
    config["linux"]["resources"].update(
        {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 64}}
    )
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 777, "soft": 555}]
    if user is not None:
        config["process"]["user"] = user
    return config


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[dict[str, Runner]]:
    made: dict[str, Runner] = {}
    try:
        made["dockyard"] = runner_for("dockyard", tmp_path)
        made["runc"] = runner_for("runc", tmp_path)
        yield made
    finally:
        for r in made.values():
            r.cleanup()


def _observe(runner: Runner, bundle: Path, cid: str) -> tuple[int, list[str]]:
    proc = runner("run", "--bundle", str(bundle), cid)
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"{runner.name}: no output; stderr: {proc.stderr}"
    return proc.returncode, lines


@pytest.mark.peer
@pytest.mark.parametrize(
    ("user", "cgroupns"),
    [(None, False), ({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}, False), (None, True)],
    ids=["root", "uid1000", "cgroupns"],
)
def test_same_view_as_runc(
    runners: dict[str, Runner], tmp_path: Path, user: dict[str, Any] | None, cgroupns: bool
) -> None:
    bundle = make_bundle(tmp_path / "b", [], config=probe_config(user, cgroupns))
    ours = _observe(runners["dockyard"], bundle, f"diff-dy-{tmp_path.name[-8:]}")
    theirs = _observe(runners["runc"], bundle, f"diff-runc-{tmp_path.name[-8:]}")
    assert ours[0] == theirs[0] == 3
    assert ours[1] == theirs[1]
    text = "\n".join(ours[1])
    assert "pid=1" in text and "hostname=box" in text
    assert "Seccomp:\t2" in text and "NoNewPrivs:\t1" in text
    assert "memory=67108864" in text and "pids=64" in text and "nofile=555" in text
    assert "sysctl=readonly" in text and "root=readonly" in text and "keys=0" in text
    assert "Operation not permitted" in text


@pytest.mark.peer
def test_same_view_as_crun(tmp_path: Path) -> None:
    crun = runner_for("crun", tmp_path)
    ours = runner_for("dockyard", tmp_path)
    try:
        bundle = make_bundle(tmp_path / "b", [], config=probe_config())
        assert _observe(ours, bundle, "diff-dy-c") == _observe(crun, bundle, "diff-crun")
    finally:
        crun.cleanup()
        ours.cleanup()


@pytest.mark.peer
def test_sigkill_reported_as_137(runners: dict[str, Runner], tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", ["sleep", "1000"])
    codes = {}
    for name, runner in runners.items():
        cid = f"kill-{name}-{tmp_path.name[-8:]}"
        proc = runner.popen("run", "--bundle", str(bundle), cid)
        _wait_status(runner, cid, "running")
        runner("kill", cid, "KILL", check=True)
        proc.wait(timeout=10)
        codes[name] = proc.returncode
    assert codes == {"dockyard": 137, "runc": 137}


@pytest.mark.peer
def test_kill_by_name_and_number_then_state_stopped(
    runners: dict[str, Runner], tmp_path: Path
) -> None:
    loop = "trap 'exit 0' TERM; while :; do sleep 0.05; done"
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", loop])
    for name, runner in runners.items():
        for sig in ("TERM", "15", "SIGKILL", "9"):
            cid = f"k{sig}-{name}-{tmp_path.name[-6:]}"
            runner("create", "--bundle", str(bundle), cid, check=True)
            assert runner.state(cid)["status"] == "created"
            runner("start", cid, check=True)
            assert runner.state(cid)["status"] == "running"
            runner("kill", cid, sig, check=True)
            _wait_status(runner, cid, "stopped")
            runner("delete", cid, check=True)
            assert runner("state", cid).returncode != 0


def _wait_status(runner: Runner, cid: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = runner("state", cid)
        if proc.returncode == 0 and f'"status": "{status}"' in proc.stdout.replace("\t", " "):
            return
        time.sleep(0.02)
    raise AssertionError(f"{runner.name}: {cid} never became {status}")
