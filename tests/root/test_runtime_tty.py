"""`dockyard-runtime run` of a `process.terminal` bundle without a console socket proxies a pty
to its own terminal and, like `runc run`, gives that pty its terminal's size on SIGWINCH."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.ptyterm import Term
from tests.root.bundle_helpers import cleanup_runtime, default_config, dockyard_runtime, make_bundle

pytestmark = pytest.mark.root


def test_the_foreground_console_follows_the_terminal_size(tmp_path: Path) -> None:
    script = (
        "trap 'echo size=$(stty size)' WINCH; trap 'exit 3' TERM; echo ready; "
        "while :; do sleep 0.05; done"
    )
    config = default_config(["sh", "-c", script])
    config["process"]["terminal"] = True
    bundle = make_bundle(tmp_path / "bundle", [], config)
    runtime = [*dockyard_runtime(), "--root", str(tmp_path / "state")]
    t = Term([*runtime, "run", "--bundle", str(bundle), "tty1"], rows=30, cols=100, env={})
    try:
        t.expect(b"ready")
        t.follow_sizes((40, 132), (25, 81))
        t.p.send_signal(signal.SIGTERM)  # forwarded to the container, whose shell exits 3
        assert t.wait(timeout=20) == 3
    finally:
        t.close()
        cleanup_runtime(runtime, "tty1")
