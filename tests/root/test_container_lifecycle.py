"""The container lifecycle as a new user types it: run, ps, logs, exec, stop, start, rm —
plus crash truthfulness (kill -9 of the supervisor), parallel starts, limits and restarts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cli import DOCKYARD, dy
from tests.images import BASE_CHANGES, write_busybox_rootfs

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    r = tmp_path_factory.mktemp("lifecycle") / "root"
    tar = r.parent / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    args = ["import"]
    for c in BASE_CHANGES:
        args += ["--change", c]
    dy(r, *args, str(tar), "busybox:latest")
    try:
        yield r
    finally:
        ids = dy(r, "ps", "-aq", check=False).out.split()
        if ids:
            dy(r, "rm", "-f", *ids, check=False)
        _assert_clean(r)


def _assert_clean(root: Path) -> None:
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if str(root) in line]
    assert mounts == [], mounts
    left = (
        [p for p in Path("/sys/fs/cgroup/pids/dockyard").glob("*")]
        if Path("/sys/fs/cgroup/pids/dockyard").exists()
        else []
    )
    ours = (
        {p.name for p in (root / "containers").glob("*")}
        if (root / "containers").exists()
        else set()
    )
    assert not [p for p in left if p.name in ours]


def _record(root: Path, name: str) -> dict:  # type: ignore[type-arg]
    out = dy(root, "inspect", "--type", "container", name).out
    return json.loads(out)[0]  # type: ignore[no-any-return]


def test_run_rm_prints_and_exit_codes(root: Path) -> None:
    r = dy(root, "run", "--rm", "busybox", "echo", "hello")
    assert r.out == "hello\n"
    r = dy(
        root, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False
    )
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")
    r = dy(root, "run", "--rm", "busybox", "nosuchcmd", check=False)
    assert r.rc == 127 and "executable file not found" in r.err
    r = dy(root, "run", "--rm", "--pull", "never", "nosuchimage", "true", check=False)
    assert r.rc == 125 and "No such image" in r.err
    assert dy(root, "ps", "-aq").out == ""  # --rm removed them all


def test_detached_lifecycle(root: Path) -> None:
    script = "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"
    cid = dy(root, "run", "-d", "--name", "web", "busybox", "sh", "-c", script).out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    lines = dy(root, "ps").out.splitlines()
    assert lines[0].split()[:2] == ["CONTAINER", "ID"]
    assert lines[1].startswith(cid[:12]) and lines[1].split()[-1] == "web"
    assert " Up " in lines[1]
    time.sleep(0.6)
    assert "tick 0\n" in dy(root, "logs", "web").out
    assert dy(root, "exec", "web", "cat", "/etc/hostname").out == cid[:12] + "\n"
    assert dy(root, "stop", "web").out == "web\n"
    row = dy(root, "ps", "-a", "--filter", "name=web").out.splitlines()[1]
    assert "Exited (0)" in row and "ago" in row
    assert dy(root, "ps", "-q").out == ""
    dy(root, "start", "web")
    assert dy(root, "ps", "-q").out == cid[:12] + "\n"
    dy(root, "kill", "web")
    assert "Exited (137)" in dy(root, "ps", "-a", "--filter", "name=web").out
    assert _record(root, "web")["State"]["ExitCode"] == 137
    r = dy(root, "rm", "web")
    assert r.out == "web\n"
    assert dy(root, "ps", "-aq").out == ""


def test_stop_timeout_escalates_to_sigkill(root: Path) -> None:
    dy(root, "run", "-d", "--name", "stubborn", "busybox", "sleep", "100")
    t0 = time.monotonic()
    dy(root, "stop", "-t", "1", "stubborn")
    assert time.monotonic() - t0 < 5
    assert "Exited (137)" in dy(root, "ps", "-a", "--filter", "name=stubborn").out
    dy(root, "rm", "stubborn")


def test_name_conflict_and_rm_running(root: Path) -> None:
    dy(root, "run", "-d", "--name", "one", "busybox", "sleep", "100")
    r = dy(root, "run", "-d", "--name", "one", "busybox", "true", check=False)
    assert r.rc == 125 and 'The container name "/one" is already in use' in r.err
    r = dy(root, "rm", "one", check=False)
    assert r.rc == 1 and "cannot remove a running container" in r.err
    r = dy(root, "rmi", "busybox", check=False)
    assert r.rc == 1 and "conflict" in r.err
    dy(root, "rm", "-f", "one")


def test_two_containers_do_not_share_changes(root: Path) -> None:
    image_id = dy(root, "inspect", "-f", "{{.Id}}", "busybox").out
    dy(root, "run", "--name", "ca", "busybox", "sh", "-c", "echo A > /a.txt")
    dy(root, "run", "--name", "cb", "busybox", "sh", "-c", "echo B > /b.txt")
    dy(root, "start", "-a", "ca")  # runs again with its own upper layer
    out = dy(root, "run", "--rm", "busybox", "ls", "/").out.split()
    assert "a.txt" not in out and "b.txt" not in out
    assert dy(root, "inspect", "-f", "{{.Id}}", "busybox").out == image_id
    dy(root, "rm", "ca", "cb")


def test_supervisor_killed_never_leaves_a_lying_record(root: Path) -> None:
    dy(root, "run", "-d", "--name", "victim", "busybox", "sleep", "100")
    rec = _record(root, "victim")
    init = rec["State"]["Pid"]
    sup = int(subprocess.run(["ps", "-o", "ppid=", "-p", str(init)], capture_output=True,
                             text=True).stdout.strip())  # fmt: skip
    os.kill(sup, signal.SIGKILL)
    os.kill(init, signal.SIGKILL)
    time.sleep(0.2)
    row = dy(root, "ps", "-a", "--filter", "name=victim").out.splitlines()[1]
    assert "Exited (" in row
    dy(root, "rm", "victim")
    _assert_clean(root)


def test_memory_limit_oom_kill(root: Path) -> None:
    r = dy(root, "run", "--name", "oom", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c",
           "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived", check=False)  # fmt: skip
    assert r.rc == 137
    assert _record(root, "oom")["State"]["OOMKilled"] is True
    dy(root, "rm", "oom")


def test_restart_on_failure(root: Path) -> None:
    dy(root, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c",
       "echo run; exit 1")  # fmt: skip
    deadline = time.time() + 15
    while time.time() < deadline:
        rec = _record(root, "flaky")
        if rec["State"]["Status"] == "exited" and rec["RestartCount"] == 2:
            break
        time.sleep(0.1)
    assert rec["RestartCount"] == 2 and rec["State"]["ExitCode"] == 1
    assert dy(root, "logs", "flaky").out == "run\nrun\nrun\n"
    dy(root, "rm", "flaky")


def test_fifty_parallel_containers(root: Path) -> None:
    def start(i: int) -> str:
        argv = [DOCKYARD, "--root", str(root), "run", "-d", "--name", f"par{i}", "busybox"]
        p = subprocess.run([*argv, "sleep", "30"], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(start, range(50)))
    assert len(set(ids)) == 50
    running = dy(root, "ps", "--format", "{{.Names}}").out.split()
    assert sorted(running) == sorted(f"par{i}" for i in range(50))
    dy(root, "rm", "-f", *ids)
    assert dy(root, "ps", "-aq").out == ""
    _assert_clean(root)


def test_healthcheck_states(root: Path) -> None:
    dy(root, "run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok",
       "--health-interval", "300ms", "--health-retries", "2", "busybox", "sleep", "60")  # fmt: skip

    def status() -> str:
        return dy(root, "ps", "--filter", "name=hc", "--format", "{{.Status}}").out.strip()

    assert status().endswith(("(health: starting)", "(unhealthy)"))
    deadline = time.time() + 10
    while not status().endswith("(unhealthy)") and time.time() < deadline:
        time.sleep(0.1)
    assert status().endswith("(unhealthy)")
    dy(root, "exec", "hc", "touch", "/tmp/ok")
    deadline = time.time() + 10
    while not status().endswith("(healthy)") and time.time() < deadline:
        time.sleep(0.1)
    assert status().endswith("(healthy)")
    health = _record(root, "hc")["State"]["Health"]
    assert health["Status"] == "healthy" and health["Log"][-1]["ExitCode"] == 0
    dy(root, "rm", "-f", "hc")


def test_container_processes_start_with_default_signals(root: Path) -> None:
    # Python ignores SIGPIPE and SIGXFSZ; a container must not inherit that (`yes | head`).
    status = dy(root, "run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/status")
    lines = dict(x.split(":\t", 1) for x in status.out.splitlines() if ":\t" in x)
    assert lines["SigIgn"].strip() == "0000000000000000"
    assert lines["SigBlk"].strip() == "0000000000000000"
    r = dy(root, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "yes | head -2")
    assert r.out == "y\ny\n"


@pytest.mark.peer
def test_runtime_runc_runs_the_same_container(root: Path) -> None:
    from tests.conftest import require_tool

    require_tool("runc")
    r = dy(root, "run", "--rm", "--runtime", "runc", "--network", "none", "busybox",
           "sh", "-c", "cat /proc/1/comm; exit 4", check=False)  # fmt: skip
    assert (r.rc, r.out) == (4, "sh\n")
    dy(root, "run", "-d", "--runtime", "runc", "--network", "none", "--name", "viarunc",
       "busybox", "sleep", "60")  # fmt: skip
    assert dy(root, "exec", "viarunc", "echo", "in").out == "in\n"
    dy(root, "stop", "-t", "1", "viarunc")
    assert "Exited (137)" in dy(root, "ps", "-a", "--filter", "name=viarunc").out
    dy(root, "rm", "viarunc")
    r = dy(root, "run", "--rm", "--runtime", "nosuch", "busybox", "true", check=False)
    assert r.rc == 125 and "unknown or invalid runtime name: nosuch" in r.err


def test_pause_unpause_and_inspect_kinds(root: Path) -> None:
    dy(root, "run", "-d", "--network", "none", "--name", "pz", "busybox", "sleep", "60")
    assert dy(root, "pause", "pz").out == "pz\n"
    assert dy(root, "ps", "--filter", "name=pz", "--format", "{{.Status}}").out.endswith(
        "(Paused)\n"
    )
    assert dy(root, "unpause", "pz").out == "pz\n"
    assert "Paused" not in dy(root, "ps", "--filter", "name=pz", "--format", "{{.Status}}").out
    assert dy(root, "container", "inspect", "-f", "{{.Name}}", "pz").out == "/pz\n"
    r = dy(root, "image", "inspect", "pz", check=False)  # a container is not an image
    assert r.rc == 1 and r.err == "Error response from daemon: No such image: pz\n"
    dy(root, "rm", "-f", "pz")
