"""Terminal sizes of `-t` containers: `run -it`, `run -t`, `exec -it` and `attach` give the
container's pty the size of the user's terminal from the start, and follow its changes
(SIGWINCH to the `dockyard` process, which forwards it to its worker).

The CLI runs under a pty made here (its stdin, stdout and stderr), with a window size set on
its master. Each test has its own state root with the busybox image and leaves no container
or mount behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import DOCKYARD, busybox_root, dy
from tests.ptyterm import Term

pytestmark = pytest.mark.root
NET = ("--network", "none")


def wait_for(name: str) -> str:
    """Shell code that waits until `/tmp/<name>` exists (made by `dockyard exec ... touch`)."""
    return f"while [ ! -e /tmp/{name} ]; do sleep 0.05; done"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    with busybox_root(tmp_path) as state:
        yield state


def dterm(root: Path, *args: str, rows: int, cols: int, env: dict[str, str]) -> Term:
    """`dockyard --root ROOT ARGS...` on a new pty of `rows` x `cols`."""
    return Term([DOCKYARD, "--root", str(root), *args], rows=rows, cols=cols, env=env)


@pytest.fixture(params=["server", "no-server"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    """With the command server (the launcher forwards SIGWINCH to its worker) and without."""
    return {"DOCKYARD_SERVER": "0"} if request.param == "no-server" else {}


def test_run_it_starts_with_the_terminal_size(root: Path, env: dict[str, str]) -> None:
    t = dterm(root, "run", "-it", "--rm", *NET, "bb", "stty", "size", rows=33, cols=111, env=env)
    try:
        t.expect(b"33 111")
        assert t.wait() == 0
    finally:
        t.close()
    assert dy(root, "ps", "-aq").out == ""


def test_run_t_without_i_starts_with_the_terminal_size(root: Path) -> None:
    t = dterm(root, "run", "-t", "--rm", *NET, "bb", "stty", "size", rows=20, cols=70, env={})
    try:
        t.expect(b"20 70")
        assert t.wait() == 0
    finally:
        t.close()


def test_run_it_follows_the_terminal_size(root: Path, env: dict[str, str]) -> None:
    script = f"trap 'echo size=$(stty size)' WINCH; echo ready; {wait_for('stop')}; echo bye"
    args = ("run", "-it", "--rm", *NET, "--name", "rz", "bb", "sh", "-c", script)
    t = dterm(root, *args, rows=33, cols=111, env=env)
    try:
        t.expect(b"ready")
        t.follow_sizes((40, 132), (25, 81))
        dy(root, "exec", "rz", "touch", "/tmp/stop")
        t.expect(b"bye")
        assert t.wait() == 0
    finally:
        t.close()


def test_exec_it_has_and_follows_the_terminal_size(root: Path, env: dict[str, str]) -> None:
    dy(root, "run", "-d", "-t", *NET, "--name", "ex", "bb", "sh", "-c", wait_for("end"))
    for _ in range(3):  # the size is there before the process starts: never "0 0"
        t = dterm(root, "exec", "-it", "ex", "stty", "size", rows=33, cols=111, env=env)
        try:
            assert b"0 0" not in t.expect(b"33 111")
            assert t.wait() == 0
        finally:
            t.close()
    script = f"trap 'echo size=$(stty size)' WINCH; echo ready; {wait_for('stop')}; echo bye"
    t = dterm(root, "exec", "-it", "ex", "sh", "-c", script, rows=33, cols=111, env=env)
    try:
        t.expect(b"ready")
        t.follow_sizes((44, 99))
        dy(root, "exec", "ex", "touch", "/tmp/stop")
        t.expect(b"bye")
        assert t.wait() == 0
    finally:
        t.close()
    dy(root, "rm", "-f", "ex")


def test_attach_sends_the_size_on_attach_and_on_change(root: Path, env: dict[str, str]) -> None:
    script = f"trap 'echo size=$(stty size)' WINCH; {wait_for('stop')}; echo bye"
    dy(root, "run", "-d", "-it", *NET, "--name", "at", "bb", "sh", "-c", script)
    t = dterm(root, "attach", "at", rows=30, cols=100, env=env)
    try:
        t.expect(b"size=30 100")  # a size on attaching (the pty had none: a change)
        t.follow_sizes((31, 101))
        dy(root, "exec", "at", "touch", "/tmp/stop")
        t.expect(b"bye")
        assert t.wait() == 0
    finally:
        t.close()
    dy(root, "rm", "-f", "at")
