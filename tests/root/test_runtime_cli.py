"""dockyard-runtime's command line on the real kernel: exec (args and -p), ps, list, pause,
resume, run -d, --pid-file, kill --all, and errors with runc's exit codes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.root.bundle_helpers import Runner, make_bundle, runner_for

pytestmark = [pytest.mark.root]


@pytest.fixture
def dy(tmp_path: Path) -> Iterator[Runner]:
    runner = runner_for("dockyard", tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


def test_cli_exec_ps_list_pause(dy: Runner, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", ["sleep", "1000"])
    pid_file = tmp_path / "pid"
    dy("run", "-d", "--bundle", str(bundle), "--pid-file", str(pid_file), "cli1", check=True)
    pid = int(pid_file.read_text())
    assert dy.state("cli1")["status"] == "running"
    proc = dy("exec", "-e", "X=42", "--cwd", "/tmp", "cli1", "sh", "-c", "echo $X $(pwd); exit 4")
    assert (proc.returncode, proc.stdout) == (4, "42 /tmp\n")
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["id", "-u"], "cwd": "/", "user": {"uid": 7, "gid": 7}}))
    assert dy("exec", "-p", str(process), "cli1").stdout == "7\n"
    assert json.loads(dy("ps", "--format", "json", "cli1", check=True).stdout) == [pid]
    assert dy("list", "-q", check=True).stdout.split() == ["cli1"]
    dy("pause", "cli1", check=True)
    assert dy.state("cli1")["status"] == "paused"
    assert dy("exec", "cli1", "true").returncode == 1  # not running
    dy("resume", "cli1", check=True)
    dy("kill", "--all", "cli1", "KILL", check=True)
    deadline = time.monotonic() + 10
    while dy.state("cli1")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    dy("delete", "cli1", check=True)
    assert dy("list", "--format", "json", check=True).stdout.strip() == "[]"


def test_cli_errors_exit_1(dy: Runner, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", ["true"])
    for args in (("start", "nope"), ("kill", "nope"), ("delete", "nope"), ("create", "bad/id")):
        proc = dy(*args)
        assert proc.returncode == 1 and "dockyard-runtime:" in proc.stderr
    dy("create", "--bundle", str(bundle), "dup", check=True)
    proc = dy("create", "--bundle", str(bundle), "dup")
    assert proc.returncode == 1 and "already exists" in proc.stderr


def test_cli_run_with_terminal_proxies_a_pty(dy: Runner, tmp_path: Path) -> None:
    from tests.root.bundle_helpers import default_config

    config = default_config(["sh", "-c", "tty; read x; echo got $x; exit 5"])
    config["process"]["terminal"] = True
    bundle = make_bundle(tmp_path / "b", [], config=config)
    proc = dy("run", "--bundle", str(bundle), "tty1", input="hello\n")
    assert proc.returncode == 5, proc.stderr
    assert "/dev/pts/0" in proc.stdout and "got hello" in proc.stdout


def test_cli_exec_with_tty(dy: Runner, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", ["sleep", "1000"])
    dy("run", "-d", "--bundle", str(bundle), "tty2", check=True)
    proc = dy("exec", "-t", "tty2", "sh", "-c", "tty; exit 6", input="")
    assert proc.returncode == 6, proc.stderr
    assert "/dev/pts/" in proc.stdout
