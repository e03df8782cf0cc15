"""A supervisor forked ahead by a spare worker (`dockyard.container.prefork.make_ready`) runs the
next `run` as one forked by the command itself would: with the command's stdin, environment,
working directory and umask; any other command lets it go without leaving a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import busybox_root

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with busybox_root(tmp_path_factory.mktemp("prefork")) as s:
        yield s


def _as_spare(
    state: Path, argv: list[str], *, stdin: bytes = b"", env_after: str = "", nice: int = 0
) -> str:
    """Run, in a fresh interpreter, what a spare worker does: fork the ready supervisor, then
    (as the caller's command arrives) take on another environment, umask and working
    directory, and run `argv` through the CLI. Prints what the script reports."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from dockyard.container import prefork
        os.nice({nice})  # a spare warms up at nice 10
        prefork.make_ready({str(state)!r}, ())
        ready = prefork._READY[0]
        child = ready.pid
        os.environ["DOCKYARD_PROBE"] = "caller"
        {env_after}
        os.umask(0o027)
        os.chdir("/tmp")
        from dockyard import cli
        code = cli.main(["--root", {str(state)!r}, *{argv!r}])
        sys.stdout.flush()
        gone = False
        for _ in range(200):
            try:
                pid, _status = os.waitpid(child, os.WNOHANG)
            except ChildProcessError:
                pid = -1
            if pid:
                gone = True
                break
            time.sleep(0.01)
        print(f"code={{code}} taken={{not prefork._READY}} pid={{ready.pid}} gone={{gone}}")
        """
    )
    p = subprocess.run(
        [sys.executable, "-c", script], input=stdin, capture_output=True, timeout=120,
        env={**os.environ, "DOCKYARD_SERVER": "0"}, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def test_run_takes_the_ready_supervisor_with_the_callers_stdin(state: Path) -> None:
    out = _as_spare(
        state, ["run", "--rm", "-i", "--network", "none", "bb", "sh", "-c", "cat; exit 4"],
        stdin=b"from the caller\n",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "from the caller"
    assert lines[1].startswith("code=4 taken=True pid=0"), out


def test_the_ready_supervisor_works_in_the_callers_directory_and_umask(state: Path) -> None:
    """The log file the supervisor creates follows the caller's umask (0o027 → no "other")."""
    out = _as_spare(state, ["run", "-d", "--name", "umask", "--network", "none", "bb", "true"])
    assert "code=0 taken=True" in out, out
    cid = out.split()[0]
    log = next((state / "containers" / cid).glob("*-json.log"))
    assert log.stat().st_mode & 0o007 == 0
    rm = subprocess.run(
        [str(Path(sys.executable).parent / "dockyard"), "--root", str(state), "rm", "-f", cid],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert rm.returncode == 0, rm.stderr


def test_another_command_lets_the_ready_supervisor_go(state: Path) -> None:
    out = _as_spare(state, ["ps", "-a"])
    assert out.startswith("CONTAINER ID"), out
    last = out.splitlines()[-1]
    assert "code=0 taken=True" in last and "gone=True" in last, out


_WAIT_FOR_STANDBY = """
marker = os.path.join(state_dir, "runtime", "@standby", ready.container_id)
for _ in range(2000):
    if os.path.exists(marker) and os.path.getsize(marker):
        break
    time.sleep(0.01)
time.sleep(3)  # its interpreter warms up
print("standby", open(marker).read().split()[0], ready.container_id, flush=True)
"""


def _standby_wait(state: Path) -> str:
    return f"state_dir = {str(state)!r}; exec({_WAIT_FOR_STANDBY!r})"


def test_run_starts_in_the_standby_made_ahead(state: Path) -> None:
    """The ready supervisor picked the container's ID ahead and started its init in its
    cgroup (`runtime.standby`): `run` gives the container that ID, and that process is its
    init."""
    out = _as_spare(
        state, ["run", "-d", "--network", "none", "bb", "sleep", "30"],
        env_after=_standby_wait(state), nice=10,
    )  # fmt: skip
    lines = out.splitlines()
    _, standby_pid, picked = lines[0].split()
    assert lines[1] == picked, out
    try:
        assert json.loads(_dy(state, "inspect", picked))[0]["State"]["Pid"] == int(standby_pid)
        # it warmed up at the spare's nice 10; the container runs at the normal priority
        stat = Path(f"/proc/{standby_pid}/stat").read_text()
        assert stat.rsplit(")", 1)[1].split()[16] == "0", stat
        assert not (state / "runtime" / "@standby" / picked).exists()
    finally:
        _dy(state, "rm", "-f", picked)
    assert _cgroup_gone(picked)


def _cgroup_gone(cid: str) -> bool:
    from dockyard.linux.cgroups import open_cgroup

    return not any(
        Path(d).exists() for d in open_cgroup(f"/dockyard/{cid}").mount_sources().values()
    )


def test_another_command_drops_the_standby(state: Path) -> None:
    out = _as_spare(state, ["ps", "-a"], env_after=_standby_wait(state))
    _, standby_pid, picked = out.splitlines()[0].split()
    assert "gone=True" in out.splitlines()[-1], out
    assert not Path(f"/proc/{standby_pid}").exists()
    assert not (state / "runtime" / "@standby" / picked).exists()
    assert _cgroup_gone(picked)


def test_a_killed_supervisors_standby_is_swept_by_the_next(state: Path) -> None:
    """kill -9 of a ready supervisor holding a standby: the standby dies with it (its parent
    death signal); its cgroup and marker, left behind, go when the next standby is made."""
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from dockyard.container import prefork
        state_dir = {str(state)!r}

        def standby_of(ready):
            marker = os.path.join(state_dir, "runtime", "@standby", ready.container_id)
            for _ in range(2000):
                if os.path.exists(marker) and os.path.getsize(marker):
                    return int(open(marker).read().split()[0])
                time.sleep(0.01)
            raise SystemExit("no standby")

        prefork.make_ready(state_dir, ())
        first = prefork._READY.pop()
        pid = standby_of(first)
        os.kill(first.pid, signal.SIGKILL)
        os.waitpid(first.pid, 0)
        for _ in range(500):
            if not os.path.exists(f"/proc/{{pid}}"):
                break
            time.sleep(0.01)
        print(first.container_id, pid, os.path.exists(f"/proc/{{pid}}"), flush=True)
        prefork.make_ready(state_dir, ())
        second = prefork._READY.pop()
        standby_of(second)
        print(second.container_id, flush=True)
        second.close()
        """
    )
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**os.environ, "DOCKYARD_SERVER": "0"}, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    killed, standby_pid, still_there = lines[0].split()
    assert still_there == "False", f"standby {standby_pid} outlived its supervisor"
    assert not (state / "runtime" / "@standby" / killed).exists()
    assert _cgroup_gone(killed)
    deadline = time.monotonic() + 10  # the second one, let go: dropped by its supervisor
    while not _cgroup_gone(lines[1]):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_stopped_supervisor_drops_its_standby(state: Path) -> None:
    """SIGTERM to a ready supervisor (as `stop_server` sends to every process of a root's
    server) ends it through its clean-up: no standby, cgroup or marker is left."""
    out = _as_spare(
        state, ["version"],
        env_after=_standby_wait(state)
        + "; import signal; os.kill(ready.pid, signal.SIGTERM); os.waitpid(ready.pid, 0)"
        + "; prefork._READY.clear()",
    )  # fmt: skip
    _, standby_pid, picked = out.splitlines()[0].split()
    assert (
        not Path(f"/proc/{standby_pid}").exists()
        or "Z" in Path(f"/proc/{standby_pid}/stat").read_text()
    )
    assert not (state / "runtime" / "@standby" / picked).exists()
    assert _cgroup_gone(picked)


def test_a_changed_engine_variable_reopens_the_engine(state: Path) -> None:
    """Warmed up under one DOCKYARD_* environment, run under another: still runs (the
    supervisor opens the engine again with the caller's)."""
    out = _as_spare(
        state, ["run", "--rm", "--network", "none", "bb", "echo", "reopened"],
        env_after='os.environ["DOCKYARD_DEBUG"] = "1"',
    )  # fmt: skip
    assert out.splitlines()[0] == "reopened", out


def test_the_container_joins_the_namespaces_made_ahead(state: Path) -> None:
    """The ready supervisor's network, IPC and UTS namespaces (`linux.spare_ns`) are what the
    container runs in: new ones (not the host's), one set per container."""
    keys = ("net", "ipc", "uts")
    host = [os.stat(f"/proc/self/ns/{k}").st_ino for k in keys]
    first = _as_spare(state, ["run", "-d", "--network", "none", "bb", "sleep", "30"]).split()[0]
    try:
        pid = json.loads(_dy(state, "inspect", first))[0]["State"]["Pid"]
        running = [os.stat(f"/proc/{pid}/ns/{k}").st_ino for k in keys]
        out = _as_spare(
            state, ["run", "--rm", "--network", "none", "bb", "sh", "-c",
                    "stat -L -c %i /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts"],
        )  # fmt: skip
        second = [int(x) for x in out.splitlines()[:3]]
        for i in range(3):
            assert len({host[i], running[i], second[i]}) == 3, (keys[i], host, running, second)
        namespaces = json.loads(
            (state / "containers" / first / "bundle" / "config.json").read_text()
        )["linux"]["namespaces"]
        joined = {e["type"] for e in namespaces if e.get("path", "").startswith("/proc/")}
        assert joined == {"network", "ipc", "uts"}
    finally:
        _dy(state, "rm", "-f", first)


def _dy(state: Path, *args: str) -> str:
    p = subprocess.run(
        [str(Path(sys.executable).parent / "dockyard"), "--root", str(state), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_a_ready_supervisor_that_died_is_replaced(state: Path) -> None:
    """`take_ready` lets a ready supervisor that is gone (killed, or stranded while making its
    namespaces) go; `run` forks a fresh one and runs as usual."""
    out = _as_spare(
        state, ["run", "--rm", "--network", "none", "bb", "echo", "fresh"],
        env_after="os.kill(child, 9); time.sleep(0.2)",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "fresh", out
    assert lines[1].startswith("code=0 taken=True"), out


def test_a_ready_supervisor_lost_after_it_was_taken_is_a_clean_error(state: Path) -> None:
    """If the supervisor dies between `take_ready` and `go`, `run` says so (exit 125), with no
    traceback: the `go` message's send error is left to `await_start` to report."""
    kill_after_take = (
        "orig = prefork.take_ready\n"
        "def take():\n"
        "    r = orig()\n"
        "    os.kill(r.pid, 9)\n"
        "    time.sleep(0.2)\n"
        "    return r\n"
        "prefork.take_ready = take"
    )
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from dockyard.container import prefork
        prefork.make_ready({str(state)!r}, ())
        {textwrap.indent(kill_after_take, "        ").lstrip()}
        from dockyard import cli
        code = cli.main(["--root", {str(state)!r}, "run", "--name", "lost", "--network",
                         "none", "bb", "true"])
        print(f"code={{code}}")
        """
    )
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**os.environ, "DOCKYARD_SERVER": "0"}, check=False,
    )  # fmt: skip
    try:
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip().endswith("code=125"), p.stdout + p.stderr
        assert "supervisor died before starting it" in p.stderr
        assert "Traceback" not in p.stderr
    finally:
        _dy(state, "rm", "-f", "lost")


def test_the_start_path_rehearsal_has_no_effect(tmp_path: Path) -> None:
    """`running.rehearse` (run by a supervisor made ahead) builds a record, spec and process
    preparation in memory only: no file, mount, cgroup or process appears."""
    from dockyard.container import running

    before = set(os.listdir("/sys/fs/cgroup/pids"))
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        running.rehearse()
    finally:
        os.chdir(cwd)
    assert os.listdir(tmp_path) == []
    assert set(os.listdir("/sys/fs/cgroup/pids")) == before
    with open("/proc/self/mountinfo") as f:
        assert f.read() == mounts
