"""The native runtime as a library on the real kernel: lifecycle, cleanup, limits, freezer,
exec, hooks, console socket, user namespaces, and the CVE-2019-5736 class of attack."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import Conflict, FailedPrecondition, NotFound
from dockyard.runtime.native import NativeRuntime
from tests.root.bundle_helpers import default_config, make_bundle

pytestmark = [pytest.mark.root]


def _cid(tmp_path: Path, tag: str) -> str:
    return f"{tag}-{tmp_path.name[-10:]}"


def _bundle(tmp_path: Path, args: list[str], **linux: Any) -> tuple[Path, dict[str, Any]]:
    config = default_config(args)
    config["linux"].update(linux)
    return make_bundle(tmp_path / "bundle", args, config=config), config


def _cgroup_dirs(rt: NativeRuntime, cid: str) -> list[Path]:
    from dockyard.linux.cgroups import open_cgroup

    sources = open_cgroup(rt.states.load(cid)["cgroupsPath"]).mount_sources()
    return [Path(d) for d in sources.values()]


def _assert_no_leftovers(
    rt: NativeRuntime, cid: str, pid: int, dirs: list[Path], root: Path
) -> None:
    assert not os.path.exists(rt.states.dir(cid))
    assert [d for d in dirs if d.exists()] == []
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert str(root) not in Path("/proc/self/mountinfo").read_text()
    with pytest.raises(NotFound):
        rt.state(cid)


def _wait_status(rt: NativeRuntime, cid: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while rt.state(cid)["status"] != status:
        assert time.monotonic() < deadline, f"{cid} never became {status}"
        time.sleep(0.01)


def test_create_start_state_kill_delete_leaves_nothing(rt: NativeRuntime, tmp_path: Path) -> None:
    bundle, _ = _bundle(tmp_path, ["sleep", "1000"])
    cid = _cid(tmp_path, "life")
    pid = rt.create(cid, str(bundle))
    dirs = _cgroup_dirs(rt, cid)
    state = rt.state(cid)
    assert state["status"] == "created" and state["pid"] == pid and state["id"] == cid
    assert state["ociVersion"] and state["bundle"] == str(bundle)
    rt.start(cid)
    assert rt.state(cid)["status"] == "running"
    with pytest.raises(FailedPrecondition):
        rt.start(cid)
    with pytest.raises(Conflict):
        rt.delete(cid)
    assert rt.ps(cid) == [pid]
    rt.kill(cid, signal.SIGKILL)
    assert rt.wait(cid) == 137
    assert rt.state(cid)["status"] == "stopped"
    rt.delete(cid)
    _assert_no_leftovers(rt, cid, pid, dirs, bundle / "rootfs")


def test_create_started_runs_at_once_without_fifo(rt: NativeRuntime, tmp_path: Path) -> None:
    """`create(started=True)`: the process runs with no `start` (the supervisor's way), the
    state says running from the first look, and there is no exec FIFO to open."""
    bundle, _ = _bundle(tmp_path, ["sh", "-c", "echo up > /dev/shm/up; sleep 1000"])
    cid = _cid(tmp_path, "started")
    seen: list[int] = []
    pid = rt.create(cid, str(bundle), started=True, on_spawned=seen.append)
    dirs = _cgroup_dirs(rt, cid)
    assert seen == [pid]
    assert rt.state(cid)["status"] == "running"
    assert not (Path(rt.states.dir(cid)) / "exec.fifo").exists()
    up = Path(f"/proc/{pid}/root/dev/shm/up")
    deadline = time.monotonic() + 5
    while not up.exists():
        assert time.monotonic() < deadline, "the process did not run"
        time.sleep(0.01)
    with pytest.raises(FailedPrecondition):
        rt.start(cid)
    rt.kill(cid, signal.SIGKILL)
    assert rt.wait(cid) == 137
    rt.delete(cid)
    _assert_no_leftovers(rt, cid, pid, dirs, bundle / "rootfs")


def test_delete_after_kill_9_of_init_with_children(rt: NativeRuntime, tmp_path: Path) -> None:
    bundle, _ = _bundle(tmp_path, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    cid = _cid(tmp_path, "k9")
    pid = rt.create(cid, str(bundle))
    rt.start(cid)
    deadline = time.monotonic() + 5
    while len(rt.ps(cid)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    dirs = _cgroup_dirs(rt, cid)
    children = rt.ps(cid)
    os.kill(pid, signal.SIGKILL)  # behind the runtime's back
    rt.wait(cid)
    assert rt.state(cid)["status"] == "stopped"
    rt.delete(cid)
    _assert_no_leftovers(rt, cid, pid, dirs, bundle / "rootfs")
    assert [p for p in children if Path(f"/proc/{p}").exists()] == []


def test_force_delete_of_running_and_created(rt: NativeRuntime, tmp_path: Path) -> None:
    bundle, _ = _bundle(tmp_path, ["sleep", "1000"])
    for started in (False, True):
        cid = _cid(tmp_path, f"force{int(started)}")
        pid = rt.create(cid, str(bundle))
        if started:
            rt.start(cid)
        dirs = _cgroup_dirs(rt, cid)
        rt.delete(cid, force=True)
        _assert_no_leftovers(rt, cid, pid, dirs, bundle / "rootfs")


def test_missing_executable_fails_create_cleanly(rt: NativeRuntime, tmp_path: Path) -> None:
    bundle, _ = _bundle(tmp_path, ["/no/such/program"])
    cid = _cid(tmp_path, "noexe")
    with pytest.raises(NotFound, match="no such file"):
        rt.create(cid, str(bundle))
    assert rt.states.ids() == []


def test_memory_limit_exceeded_kills_with_137(rt: NativeRuntime, tmp_path: Path) -> None:
    grow = "a=aaaaaaaaaaaaaaaa; while :; do a=$a$a; done"
    bundle, _ = _bundle(tmp_path, ["sh", "-c", grow], resources={"memory": {"limit": 48 << 20}})
    cid = _cid(tmp_path, "oom")
    rt.create(cid, str(bundle))
    rt.start(cid)
    assert rt.wait(cid) == 137
    assert rt.state(cid)["status"] == "stopped"
    from dockyard.linux.cgroups import open_cgroup

    assert open_cgroup(rt.states.load(cid)["cgroupsPath"]).oom_killed()


def test_pids_limit_stops_a_fork_bomb(rt: NativeRuntime, tmp_path: Path) -> None:
    bomb = (
        "(i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/shm/err;"
        " read n < /sys/fs/cgroup/pids/pids.current; echo $n > /dev/shm/count; sleep 1000"
    )
    bundle, _ = _bundle(tmp_path, ["sh", "-c", bomb], resources={"pids": {"limit": 10}})
    cid = _cid(tmp_path, "pids")
    pid = rt.create(cid, str(bundle))
    rt.start(cid)
    count = Path(f"/proc/{pid}/root/dev/shm/count")
    deadline = time.monotonic() + 10
    while not count.exists() or not count.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert int(count.read_text()) <= 10
    assert "fork" in Path(f"/proc/{pid}/root/dev/shm/err").read_text()


def _cpu_usage(rt: NativeRuntime, cid: str) -> int:
    from dockyard.linux.cgroups import open_cgroup

    cpuacct = open_cgroup(rt.states.load(cid)["cgroupsPath"]).mount_sources()["cpuacct"]
    return int((Path(cpuacct) / "cpuacct.usage").read_text())


def test_paused_container_uses_no_cpu(rt: NativeRuntime, tmp_path: Path) -> None:
    bundle, _ = _bundle(tmp_path, ["sh", "-c", "while :; do :; done"])
    cid = _cid(tmp_path, "frz")
    rt.create(cid, str(bundle))
    rt.start(cid)
    time.sleep(0.1)
    rt.pause(cid)
    assert rt.state(cid)["status"] == "paused"
    with pytest.raises(FailedPrecondition):
        rt.pause(cid)
    before = _cpu_usage(rt, cid)
    time.sleep(0.3)
    assert _cpu_usage(rt, cid) == before
    rt.resume(cid)
    assert rt.state(cid)["status"] == "running"
    time.sleep(0.2)
    assert _cpu_usage(rt, cid) > before + 50_000_000  # busy again (> 50 ms of CPU)


def _running(rt: NativeRuntime, tmp_path: Path, tag: str, **linux: Any) -> tuple[str, int]:
    bundle, _ = _bundle(tmp_path, ["sleep", "1000"], **linux)
    cid = _cid(tmp_path, tag)
    pid = rt.create(cid, str(bundle))
    rt.start(cid)
    return cid, pid


def _exec_output(
    rt: NativeRuntime, cid: str, pid: int, script: str, **proc: Any
) -> tuple[int, str]:
    process = {**rt.config(cid)["process"], **proc}
    process["args"] = ["sh", "-c", f"({script}) > /dev/shm/out 2>&1"]
    code = rt.exec(cid, process)
    return code, Path(f"/proc/{pid}/root/dev/shm/out").read_text()


def test_exec_joins_namespaces_with_identity(rt: NativeRuntime, tmp_path: Path) -> None:
    cid, pid = _running(rt, tmp_path, "exec")
    code, out = _exec_output(
        rt,
        cid,
        pid,
        "hostname; pwd; echo $FOO; id; ps -o pid,comm | grep -c sleep; exit 7",
        env=["PATH=/bin", "FOO=bar"],
        cwd="/tmp",
        user={"uid": 1000, "gid": 1000},
    )
    assert code == 7
    assert out.split("\n")[:5] == ["box", "/tmp", "bar", "uid=1000 gid=1000", "1"]
    assert rt.exec(cid, {**rt.config(cid)["process"], "args": ["true"]}, detach=True) > 0


def test_exec_into_stopped_container_fails(rt: NativeRuntime, tmp_path: Path) -> None:
    cid, _pid = _running(rt, tmp_path, "exst")
    rt.kill(cid, signal.SIGKILL)
    rt.wait(cid)
    with pytest.raises(FailedPrecondition):
        rt.exec(cid, {"args": ["true"], "cwd": "/"})


def test_container_cannot_open_runtime_exe_during_exec(rt: NativeRuntime, tmp_path: Path) -> None:
    """CVE-2019-5736: while our (host python) process joins the container, a process inside
    tries to open /proc/<its pid>/exe for writing; it must be refused (non-dumpable)."""
    cid, pid = _running(rt, tmp_path, "cve")
    seen: dict[str, Any] = {}

    def attack(host_pid: int) -> None:
        status = Path(f"/proc/{host_pid}/status").read_text()
        inner = status.split("NSpid:")[1].split("\n")[0].split()[-1]
        assert os.readlink(f"/proc/{host_pid}/exe").startswith(os.path.realpath("/"))
        seen["code"], seen["out"] = _exec_output(
            rt,
            cid,
            pid,
            f"readlink /proc/{inner}/exe || echo no-readlink; (: >> /proc/{inner}/exe); echo rc=$?",
        )

    process = {**rt.config(cid)["process"], "args": ["true"]}
    assert rt.exec(cid, process, on_joined=attack) == 0
    out = seen["out"]
    assert "Permission denied" in out and "rc=1" in out and "no-readlink" in out, out
    assert "python" not in out


def test_hooks_run_in_order_with_state(rt: NativeRuntime, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"

    def hook(name: str) -> dict[str, Any]:
        return {"path": "/bin/sh", "args": ["sh", "-c", f"(echo {name}; cat; echo) >> {log}"]}

    hooks = {k: [hook(k)] for k in ("prestart", "createRuntime", "createContainer", "poststart")}
    hooks["poststop"] = [hook("poststop")]
    hooks["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/shm/started"]}]
    config = default_config(["sleep", "1000"])
    config["hooks"] = hooks
    bundle = make_bundle(tmp_path / "bundle", [], config=config)
    cid = _cid(tmp_path, "hooks")
    pid = rt.create(cid, str(bundle))
    rt.start(cid)
    deadline = time.monotonic() + 5
    started = Path(f"/proc/{pid}/root/dev/shm/started")
    while not started.exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rt.delete(cid, force=True)
    text = log.read_text().split("\n")
    names = [line for line in text if line and not line.startswith("{")]
    assert names == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    states = [json.loads(line) for line in text if line.startswith("{")]
    assert all(s["id"] == cid and s["bundle"] == str(bundle) for s in states)
    assert states[0]["status"] == "creating" and states[-1]["status"] == "stopped"


def test_console_socket_receives_pty_master(rt: NativeRuntime, tmp_path: Path) -> None:
    from dockyard.linux.pty import recv_fd

    sock_path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    config = default_config(["sh", "-c", "tty; echo hello-tty; sleep 1000"])
    config["process"]["terminal"] = True
    bundle = make_bundle(tmp_path / "bundle", [], config=config)
    cid = _cid(tmp_path, "tty")
    try:
        server.settimeout(10)
        rt.create(cid, str(bundle), console_socket=sock_path)
        conn, _ = server.accept()
        master, _name = recv_fd(conn)
        conn.close()
        rt.start(cid)
        out = b""
        deadline = time.monotonic() + 5
        while b"hello-tty" not in out and time.monotonic() < deadline:
            out += os.read(master, 4096)
        os.close(master)
        assert b"hello-tty" in out and b"/dev/" in out
    finally:
        server.close()


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory the mapped root of a user namespace can traverse (tmp_path is 0700)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="dockyard-userns-", dir="/run"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_user_namespace_maps_root(rt: NativeRuntime, tmp_path: Path, public_dir: Path) -> None:
    config = default_config(
        ["sh", "-c", "id > /dev/shm/id; cat /proc/self/uid_map >> /dev/shm/id; sleep 1000"]
    )
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["mounts"] = [m for m in config["mounts"] if m["type"] not in ("cgroup",)]
    bundle = make_bundle(public_dir / "bundle", [], config=config)
    cid = _cid(tmp_path, "userns")
    pid = rt.create(cid, str(bundle))
    rt.start(cid)
    out = Path(f"/proc/{pid}/root/dev/shm/id")
    deadline = time.monotonic() + 5
    while not out.exists() or "100000" not in out.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    text = out.read_text()
    assert text.startswith("uid=0(root) gid=0(root)")
    assert text.split("\n")[1].split() == ["0", "100000", "65536"]
    assert Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0] == "100000"
    code, seen = _exec_output(rt, cid, pid, "id -u; cat /proc/self/uid_map")
    assert code == 0 and seen.split() == ["0", "0", "100000", "65536"]


def test_join_namespace_by_path_and_sysctl(rt: NativeRuntime, tmp_path: Path) -> None:
    first, first_pid = _running(rt, tmp_path, "nsa", sysctl={"net.ipv4.ip_forward": "1"})
    config = default_config(["sleep", "1000"])
    config["linux"]["namespaces"] = [
        {"type": "network", "path": f"/proc/{first_pid}/ns/net"},
        {"type": "pid"},
        {"type": "mount"},
        {"type": "uts"},
    ]
    bundle = make_bundle(tmp_path / "bundle2", [], config=config)
    second = _cid(tmp_path, "nsb")
    pid = rt.create(second, str(bundle))
    rt.start(second)
    net = [os.stat(f"/proc/{p}/ns/net").st_ino for p in (first_pid, pid)]
    assert net[0] == net[1] != os.stat("/proc/self/ns/net").st_ino
    assert os.stat(f"/proc/{pid}/ns/ipc").st_ino == os.stat("/proc/self/ns/ipc").st_ino
    code, out = _exec_output(rt, second, pid, "cat /proc/sys/net/ipv4/ip_forward")
    assert (code, out) == (0, "1\n")
    assert first in [s["id"] for s in rt.list()]
