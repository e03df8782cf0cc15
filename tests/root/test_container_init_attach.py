"""`run --init` (tini as PID 1) and `attach` forwarding stdin, as a user types them.

Each test has its own state root with the busybox image and leaves no container, mount or
process behind. `--init` needs Debian's `tini` package (scripts/setup.sh installs it).
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import DOCKYARD, busybox_root, dy

pytestmark = pytest.mark.root
NET = ("--network", "none")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    with busybox_root(tmp_path) as state:
        yield state


@pytest.fixture
def tini() -> None:
    if not any(os.access(p, os.X_OK) for p in ("/usr/bin/docker-init", "/usr/bin/tini-static")):
        pytest.skip("no static init binary: apt-get install tini")


def _ps(out: str) -> dict[int, str]:
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    return {int(r[0]): r[1] for r in rows}


# -- --init ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("tini")
def test_init_runs_tini_as_pid_1_with_the_command_as_its_child(root: Path) -> None:
    procs = _ps(dy(root, "run", "--rm", *NET, "--init", "bb", "ps", "-o", "pid,comm").out)
    assert procs[1] == "docker-init"
    assert "ps" in procs.values() and procs.get(1) != "ps"
    r = dy(root, "run", "--rm", *NET, "--init", "bb", "sh", "-c", "exit 7", check=False)
    assert r.rc == 7
    # without --init the command itself is PID 1
    assert _ps(dy(root, "run", "--rm", *NET, "bb", "ps", "-o", "pid,comm").out)[1] == "ps"


@pytest.mark.usefixtures("tini")
def test_init_shows_in_inspect_and_works_with_a_tty(root: Path) -> None:
    dy(root, "create", *NET, "--init", "--name", "wi", "bb", "true")
    info = json.loads(dy(root, "inspect", "wi").out)[0]
    assert info["HostConfig"]["Init"] is True
    out = dy(root, "run", "--rm", *NET, "--init", "-t", "bb", "ps", "-o", "pid,comm").out
    procs = _ps(out.replace("\r", ""))
    assert procs[1] == "docker-init" and "ps" in procs.values()
    r = dy(root, "run", "--rm", *NET, "--init", "-t", "bb", "sh", "-c", "exit 4", check=False)
    assert r.rc == 4


@pytest.mark.usefixtures("tini")
def test_stop_reaches_the_command_through_tini(root: Path) -> None:
    script = 'trap "echo got-term; exit 3" TERM; while true; do sleep 0.1; done'
    dy(root, "run", "-d", *NET, "--init", "--name", "st", "bb", "sh", "-c", script)
    time.sleep(0.3)
    t0 = time.monotonic()
    dy(root, "stop", "st")
    assert time.monotonic() - t0 < 5  # the TERM reached sh: no 10 s wait for the KILL
    assert dy(root, "inspect", "-f", "{{.State.ExitCode}}", "st").out.strip() == "3"
    assert "got-term" in dy(root, "logs", "st").out


def test_init_without_an_init_binary_says_what_to_install(root: Path) -> None:
    (root / "config.json").write_text(json.dumps({"init-path": "/nonexistent/docker-init"}))
    r = dy(root, "run", *NET, "--init", "--name", "ni", "bb", "true", check=False)
    assert r.rc == 125
    assert "/nonexistent/docker-init" in r.err and "init-path" in r.err
    assert dy(root, "inspect", "-f", "{{.State.Status}}", "ni").out.strip() != "running"


# -- attach with stdin -----------------------------------------------------------------------


def _read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not seen in {buf!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the pty's other side closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"EOF before {needle!r}: {buf!r}")
            buf += chunk
    return buf


def test_attach_forwards_piped_stdin_to_an_interactive_container(root: Path) -> None:
    dy(root, "run", "-d", "-i", *NET, "--name", "ca", "bb", "cat")
    sock = next((root / "containers").glob("*/attach.sock"))
    assert sock.stat().st_mode & 0o777 == 0o600
    p = subprocess.Popen(
        [DOCKYARD, "--root", str(root), "attach", "ca"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(b"hello attach\n")
        p.stdin.flush()
        _read_until(p.stdout.fileno(), b"hello attach\n")
        p.stdin.write(b"second line\n")
        p.stdin.close()  # no StdinOnce with -d: cat keeps running, attach keeps following
        _read_until(p.stdout.fileno(), b"second line\n")
        assert p.poll() is None
        dy(root, "kill", "ca")
        assert p.wait(timeout=20) == 137
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert dy(root, "logs", "ca").out == "hello attach\nsecond line\n"


def test_attach_with_stdin_once_closes_the_containers_stdin_at_eof(root: Path) -> None:
    dy(root, "create", "-i", *NET, "--name", "so", "bb", "sh", "-c", "cat; echo done-$?")
    dy(root, "start", "so")
    r = dy(root, "attach", "so", input=b"one\ntwo\n")
    assert r.rc == 0 and r.out == "one\ntwo\ndone-0\n"
    assert dy(root, "inspect", "-f", "{{.State.Status}}", "so").out.strip() == "exited"


def test_attach_without_interactive_relays_output_only(root: Path) -> None:
    dy(root, "run", "-d", *NET, "--name", "no", "bb", "sh", "-c", "sleep 0.5; echo out")
    assert not list((root / "containers").glob("*/attach.sock"))
    r = dy(root, "attach", "no", input=b"ignored\n")
    assert r.rc == 0 and "ignored" not in r.out


def test_detach_keys_leave_a_tty_container_running(root: Path) -> None:
    dy(root, "run", "-d", "-it", *NET, "--name", "tt", "bb", "sh")
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [DOCKYARD, "--root", str(root), "attach", "tt"],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(slave)
    try:
        time.sleep(0.3)
        os.write(master, b"echo mark$((6*7))\r")
        _read_until(master, b"mark42")
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q
        assert p.wait(timeout=20) == 1
        assert p.stderr is not None and b"read escape sequence" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert dy(root, "inspect", "-f", "{{.State.Status}}", "tt").out.strip() == "running"
    # custom keys, piped input; a ctrl-p alone goes through
    keys = ("--detach-keys", "ctrl-a,ctrl-b")
    r = dy(root, "attach", *keys, "tt", input=b"echo x\x10y\n\x01\x02", check=False)
    assert r.rc == 1 and "read escape sequence" in r.err
    assert dy(root, "inspect", "-f", "{{.State.Status}}", "tt").out.strip() == "running"
    r = dy(root, "attach", "tt", input=b"exit 5\n", check=False)
    assert r.rc == 5
