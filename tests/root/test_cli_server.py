"""The command server (dockyard/cli/server.py) and the launcher (dockyard/launcher.py): a
command run by a warm server's worker behaves exactly as one run in the caller's process —
stdin, stdout, stderr, exit code, environment, working directory, umask — and the server never
serves stale code, never outlives its owner, and kills a worker whose caller died."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import DOCKYARD, dy, stop_server
from tests.images import BASE_CHANGES, write_busybox_rootfs

pytestmark = pytest.mark.root

SERVED = 200  # exit code of `_served` when no server took the command


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    r = tmp_path_factory.mktemp("server") / "root"
    tar = r.parent / "rootfs.tar"
    with tar.open("wb") as f:
        write_busybox_rootfs(f)
    args = ["import"]
    for c in BASE_CHANGES:
        args += ["--change", c]
    dy(r, *args, str(tar), "busybox:latest")  # in-process: a root used once gets no server
    assert _server_pid(r) is None
    dy(r, "images")  # used again: in-process, and a server starts afterwards
    try:
        _wait_server(r)
        yield r
    finally:
        ids = dy(r, "ps", "-aq", check=False).out.split()
        if ids:
            dy(r, "rm", "-f", *ids, check=False)
        stop_server(r)


def _server_pid(root: Path) -> int | None:
    try:
        pid = int((root / "cli.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _wait_server(root: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _server_pid(root)
        if pid and (root / "cli.sock").exists():
            return pid
        time.sleep(0.05)
    raise AssertionError(f"no command server came up for {root}")


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still alive")
        time.sleep(0.02)


_CLIENT = f"""
import sys
from dockyard import launcher
rc = launcher._via_server(sys.argv[1], sys.argv[2:])
sys.exit({SERVED} if rc is None else rc)
"""


def _served(
    root: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    """Run a command through the server only (exit code SERVED when no server took it).

    A server refuses work when Dockyard's source changed under it (say, while someone edits the
    tree during the test run); then a fresh one is started and the command is tried again."""
    sock = str(root / "cli.sock")
    for _attempt in range(3):
        p = subprocess.run(
            [_python(), "-c", _CLIENT, sock, "--root", str(root), *args],
            input=input, capture_output=True, timeout=60, env=env, cwd=cwd,
        )  # fmt: skip
        if p.returncode != SERVED or not (root / "cli.sock").parent.exists():
            return p
        _respawn(root)
    return p


def _respawn(root: Path) -> None:
    old = _server_pid(root)
    if old:
        _wait_gone(old)
    dy(root, "version")
    _wait_server(root)


def _python() -> str:
    # the interpreter the server runs (the console script's), so it accepts our requests
    # (without the shebang's flags: `dockyard.fastscripts` writes `#!PYTHON -S`)
    return Path(DOCKYARD).read_text().splitlines()[0].removeprefix("#!").split()[0]


def test_output_input_and_exit_code_pass_through(root: Path) -> None:
    p = _served(root, "run", "--rm", "--network", "none", "busybox", "echo", "hello")
    assert (p.returncode, p.stdout) == (0, b"hello\n"), p.stderr
    p = _served(root, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "exit 7")
    assert p.returncode == 7, p.stderr
    p = _served(root, "run", "--rm", "-i", "--network", "none", "busybox", "cat", input=b"in\n")
    assert (p.returncode, p.stdout) == (0, b"in\n")
    p = _served(root, "nosuch")
    assert p.returncode == 1 and b"is not a dockyard command" in p.stderr
    p = _served(root, "run", "--badflag")
    assert p.returncode == 125 and b"See 'dockyard run --help'" in p.stderr


def test_environment_cwd_and_umask_are_the_callers(root: Path, tmp_path: Path) -> None:
    env = dict(os.environ, GREETING="from-the-caller")
    p = _served(
        root, "run", "--rm", "--network", "none", "-e", "GREETING", "busybox",
        "sh", "-c", "echo $GREETING", env=env,
    )  # fmt: skip
    assert p.stdout == b"from-the-caller\n", p.stderr
    old = os.umask(0o077)
    try:
        p = _served(root, "save", "-o", "rel.tar", "busybox", cwd=tmp_path)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "rel.tar").stat().st_mode & 0o777 == 0o600


def test_console_script_uses_the_server(root: Path) -> None:
    pid = _wait_server(root)
    p = subprocess.run(
        [DOCKYARD, "--root", str(root), "run", "--rm", "--network", "none", "busybox",
         "cat", "/proc/1/status"],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 0 and b"Name:" in p.stdout
    assert _server_pid(root) == pid  # still the same server


def test_a_dead_caller_takes_its_worker_along(root: Path) -> None:
    dy(root, "run", "-d", "--name", "sleeper", "--network", "none", "busybox", "sleep", "60")
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(root / "cli.sock"))
        from dockyard import launcher

        body = launcher.encode_request(["--root", str(root), "wait", "sleeper"])
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            fds = [devnull] * 3
            s.sendmsg(
                [len(body).to_bytes(4, "big") + body],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b"".join(
                    fd.to_bytes(4, sys.byteorder) for fd in fds))],
            )  # fmt: skip
        finally:
            os.close(devnull)
        line = s.makefile("rb").readline()
        if line.startswith(b"R"):
            pytest.skip("the server runs another interpreter than this test")
        assert line.startswith(b"P"), line
        worker = int(line[1:])
        assert Path(f"/proc/{worker}").exists()
        s.close()  # the caller is gone
        _wait_gone(worker)
    finally:
        dy(root, "rm", "-f", "sleeper")


def test_signals_reach_the_worker(root: Path) -> None:
    dy(root, "run", "-d", "--name", "waiter", "--network", "none", "busybox", "sleep", "60")
    try:
        p = subprocess.Popen(
            [DOCKYARD, "--root", str(root), "wait", "waiter"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=20) == 130
    finally:
        dy(root, "rm", "-f", "waiter")


def test_changed_code_is_never_served(root: Path) -> None:
    pid = _wait_server(root)
    import dockyard.cli.version as mod

    src = Path(mod.__file__)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # an attribute change: "it changed"
    p = subprocess.run(
        [_python(), "-c", _CLIENT, str(root / "cli.sock"), "--root", str(root), "version"],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == SERVED  # refused: the caller runs it itself
    _wait_gone(pid)
    r = dy(root, "version")  # in-process, and starts a fresh server
    assert "Dockyard" in r.out
    assert _wait_server(root) != pid


def test_no_server_when_disabled(tmp_path: Path) -> None:
    r = tmp_path / "root"
    env = dict(os.environ, DOCKYARD_SERVER="0")
    p = subprocess.run(
        [DOCKYARD, "--root", str(r), "images"], capture_output=True, timeout=60, env=env
    )
    assert p.returncode == 0, p.stderr
    time.sleep(1.0)
    assert not (r / "cli.sock").exists() and _server_pid(r) is None


def test_server_leaves_with_its_owner(tmp_path: Path) -> None:
    r = tmp_path / "root"
    owner = subprocess.Popen(["sleep", "60"])
    try:
        env = dict(os.environ, DOCKYARD_SERVER_OWNER=str(owner.pid))
        for _ in range(2):
            p = subprocess.run(
                [DOCKYARD, "--root", str(r), "images"], capture_output=True, timeout=60, env=env
            )
            assert p.returncode == 0, p.stderr
        pid = _wait_server(r)
        assert _served(r, "version").returncode == 0
    finally:
        owner.kill()
        owner.wait()
    _wait_gone(pid)
    assert not (r / "cli.sock").exists()


def test_server_leaves_when_its_root_is_removed(tmp_path: Path) -> None:
    r = tmp_path / "root"
    for _ in range(2):  # a root's second command starts its server
        dy(r, "images")
    pid = _wait_server(r)
    # Let the spare and its supervisor finish warming up first: a warm-up opens the root's
    # databases (it skips a root whose meta.db is gone), and an rmtree running through the
    # directory at that very moment could find a -wal file made again behind it.
    _wait_spare(pid)
    time.sleep(1.0)
    import shutil

    shutil.rmtree(r)
    _wait_gone(pid, timeout=15)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _wait_spare(server: int, timeout: float = 20.0, other_than: int = 0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [k for k in _children(server) if k != other_than]
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise AssertionError("no spare worker")


def _raw_request(root: Path, *args: str, body: bytes | None = None) -> tuple[socket.socket, bytes]:
    from dockyard import launcher

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(root / "cli.sock"))
    if body is None:
        body = launcher.encode_request(["--root", str(root), *args])
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        fds = b"".join(devnull.to_bytes(4, sys.byteorder) for _ in range(3))
        s.sendmsg(
            [len(body).to_bytes(4, "big") + body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
        )
    finally:
        os.close(devnull)
    return s, s.makefile("rb").readline()


def test_a_spare_worker_takes_the_next_command(root: Path) -> None:
    server = _wait_server(root)
    spare = _wait_spare(server)
    s, line = _raw_request(root, "version")
    try:
        if line.startswith(b"R"):
            pytest.skip("the server runs another interpreter than this test")
        assert line == f"P{spare}\n".encode()  # the spare became the worker
    finally:
        s.close()
    assert _wait_spare(server, other_than=spare)  # and another one waits already


def test_spare_dies_with_its_server(tmp_path: Path) -> None:
    r = tmp_path / "root"
    for _ in range(2):
        dy(r, "images")
    server = _wait_server(r)
    spare = _wait_spare(server)
    os.kill(server, signal.SIGKILL)
    _wait_gone(server)
    _wait_gone(spare)  # PR_SET_PDEATHSIG: no orphan keeps the socket


def test_no_spare_when_disabled(tmp_path: Path) -> None:
    r = tmp_path / "root"
    env = dict(os.environ, DOCKYARD_SERVER_SPARE="0")
    for _ in range(2):
        subprocess.run([DOCKYARD, "--root", str(r), "images"], capture_output=True, env=env)
    server = _wait_server(r)
    p = _served(r, "version")
    assert p.returncode == 0
    time.sleep(0.5)
    assert _children(server) == []
    stop_server(r)


@pytest.mark.parametrize("spare", ["1", "0"])
def test_a_malformed_request_is_refused_and_the_server_stays(tmp_path: Path, spare: str) -> None:
    r = tmp_path / "root"
    env = dict(os.environ, DOCKYARD_SERVER_SPARE=spare)
    for _ in range(2):
        subprocess.run([DOCKYARD, "--root", str(r), "images"], capture_output=True, env=env)
    server = _wait_server(r)
    s, line = _raw_request(r, body=b"NOT-A-REQUEST\0x")
    s.close()
    assert line == b"R\n"  # "run it yourself"
    assert _served(r, "version").returncode == 0
    assert _server_pid(r) == server
    stop_server(r)
