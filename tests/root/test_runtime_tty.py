"""`dockyard-runtime run` of a `process.terminal` bundle without a console socket proxies a pty
to its own terminal and, like `runc run`, gives that pty its terminal's size on SIGWINCH."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dockyard.linux.pty import set_winsize
from tests.root.bundle_helpers import cleanup_runtime, default_config, dockyard_runtime, make_bundle

pytestmark = pytest.mark.root


def _read_until(master: int, needle: bytes, seen: bytearray, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in {bytes(seen)!r}"
        ready, _, _ = select.select([master], [], [], left)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"EOF before {needle!r}: {bytes(seen)!r}"
            seen += chunk


def test_the_foreground_console_follows_the_terminal_size(tmp_path: Path) -> None:
    script = (
        "trap 'echo size=$(stty size)' WINCH; trap 'exit 3' TERM; echo ready; "
        "while :; do sleep 0.05; done"
    )
    config = default_config(["sh", "-c", script])
    config["process"]["terminal"] = True
    bundle = make_bundle(tmp_path / "bundle", [], config)
    runtime = [*dockyard_runtime(), "--root", str(tmp_path / "state")]
    master, slave = os.openpty()
    set_winsize(master, 30, 100)
    p = subprocess.Popen(
        [*runtime, "run", "--bundle", str(bundle), "tty1"],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"ready", seen)
        set_winsize(master, 40, 132)
        p.send_signal(signal.SIGWINCH)  # as the terminal (emulator) would
        _read_until(master, b"size=40 132", seen)
        set_winsize(master, 25, 81)
        p.send_signal(signal.SIGWINCH)
        _read_until(master, b"size=25 81", seen)
        p.send_signal(signal.SIGTERM)  # forwarded to the container, whose shell exits
        assert p.wait(timeout=20) == 3
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        cleanup_runtime(runtime, "tty1")
