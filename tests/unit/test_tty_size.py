"""Terminal sizes without root: the pty helpers, the supervisor's resize socket, the spec's
`process.consoleSize` and the runtime's application of it."""

from __future__ import annotations

import os
import selectors
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.container import attachserve, spec
from dockyard.container.model import Container
from dockyard.linux import pty
from dockyard.runtime import init


@pytest.fixture
def pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


# -- linux.pty -------------------------------------------------------------------------------


def test_winsize_round_trip(pair: tuple[int, int]) -> None:
    master, slave = pair
    assert pty.get_winsize(slave) is None  # a fresh pty: 0x0, unknown
    pty.set_winsize(master, 33, 111)
    assert pty.get_winsize(slave) == (33, 111)
    assert pty.get_winsize(master) == (33, 111)
    pty.set_winsize(slave, 24, 80)  # either side sets the same size
    assert pty.get_winsize(master) == (24, 80)
    assert pty.terminal_size((slave,)) == (24, 80)


def test_winsize_of_no_terminal_and_bad_sizes(pair: tuple[int, int]) -> None:
    r, w = os.pipe()
    try:
        assert pty.get_winsize(r) is None
        assert pty.terminal_size((r, w)) is None
        with pytest.raises(OSError):
            pty.set_winsize(w, 10, 10)
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises(ValueError):
        pty.set_winsize(pair[0], 70000, 10)
    with pytest.raises(ValueError):
        pty.set_winsize(pair[0], 10, -1)


def test_watch_winsize_follows_sigwinch(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = iter([(10, 20), (10, 20), (30, 40), (30, 40)])
    monkeypatch.setattr(pty, "terminal_size", lambda fds=(1, 0): next(sizes))
    seen: list[tuple[int, int]] = []
    before = signal.getsignal(signal.SIGWINCH)
    stop = pty.watch_winsize(lambda rows, cols: seen.append((rows, cols)))
    try:
        assert seen == [(10, 20)]  # the size at once
        os.kill(os.getpid(), signal.SIGWINCH)
        assert seen == [(10, 20), (30, 40)]
    finally:
        stop()
    assert signal.getsignal(signal.SIGWINCH) == before


def test_watch_winsize_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pty, "terminal_size", lambda fds=(1, 0): None)
    before = signal.getsignal(signal.SIGWINCH)
    stop = pty.watch_winsize(lambda rows, cols: pytest.fail("no terminal, no size"))
    assert signal.getsignal(signal.SIGWINCH) == before
    stop()


# -- the supervisor's resize socket ----------------------------------------------------------


def _pump(sel: selectors.BaseSelector, relay: attachserve.StdinRelay) -> None:
    for _ in range(5):
        for key, mask in sel.select(0.01):
            assert key.data is relay
            relay.on_event(key.fd, mask)


def test_relay_sets_sizes_on_the_pty(tmp_path: Path, pair: tuple[int, int]) -> None:
    master, slave = pair
    relay = attachserve.StdinRelay(os.dup(master), tmp_path, attach=False, tty=True)
    sel = selectors.DefaultSelector()
    relay.register(sel)
    try:
        assert not (tmp_path / attachserve.SOCKET).exists()  # no -i: no stdin to serve
        path = tmp_path / attachserve.RESIZE_SOCKET
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert attachserve.send_size(tmp_path, 33, 111)
        _pump(sel, relay)
        assert pty.get_winsize(slave) == (33, 111)
        # The last well-formed size of a burst wins; garbage is dropped.
        assert attachserve.send_size(tmp_path, 40, 100)
        assert attachserve.send_size(tmp_path, 50, 120)
        _send_raw(tmp_path, b"not a size")
        _send_raw(tmp_path, b"99999 1")
        _pump(sel, relay)
        assert pty.get_winsize(slave) == (50, 120)
    finally:
        relay.close()
        sel.close()
    assert not (tmp_path / attachserve.RESIZE_SOCKET).exists()
    assert not attachserve.send_size(tmp_path, 1, 1)  # nobody serves it now


def _send_raw(directory: Path, data: bytes) -> None:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        attachserve._at(directory, s.connect, attachserve.RESIZE_SOCKET)
        s.send(data)


def test_for_run_serves_the_size_of_any_tty(tmp_path: Path, pair: tuple[int, int]) -> None:
    class Run:
        tty = True
        stdin_w = -1
        stdout = pair[0]

    relay = attachserve.for_run(tmp_path, Run(), {"OpenStdin": False}, -1)
    assert relay is not None
    try:
        assert (tmp_path / attachserve.RESIZE_SOCKET).exists()
        assert not (tmp_path / attachserve.SOCKET).exists()
    finally:
        relay.close()
    relay = attachserve.for_run(tmp_path, Run(), {"OpenStdin": True}, -1)
    assert relay is not None
    try:
        assert (tmp_path / attachserve.RESIZE_SOCKET).exists()
        assert (tmp_path / attachserve.SOCKET).exists()
    finally:
        relay.close()
    os.fstat(pair[0])  # the relay closed its dup, not the master


def test_stdin_relay_without_tty_has_no_resize_socket(tmp_path: Path) -> None:
    r, w = os.pipe()
    relay = attachserve.StdinRelay(w, tmp_path, once=True)
    try:
        assert (tmp_path / attachserve.SOCKET).exists()
        assert not (tmp_path / attachserve.RESIZE_SOCKET).exists()
        assert not attachserve.send_size(tmp_path, 10, 10)
    finally:
        relay.close()
        os.close(r)


# -- spec and runtime ------------------------------------------------------------------------


def _container(tty: bool, size: object) -> Container:
    return Container(
        id="c" * 64, name="x", image="bb", image_id="sha256:" + "0" * 64, created="",
        config={"Cmd": ["sh"], "User": "0", "Tty": tty},
        host_config={"ConsoleSize": size},
    )  # fmt: skip


def test_spec_console_size_from_host_config(tmp_path: Path) -> None:
    s = spec.build_spec(_container(True, [33, 111]), {}, tmp_path, netns=None)
    assert s["process"]["consoleSize"] == {"height": 33, "width": 111}
    for tty, size in ((False, [33, 111]), (True, [0, 0]), (True, None), (True, [1, "x"])):
        s = spec.build_spec(_container(tty, size), {}, tmp_path, netns=None)
        assert "consoleSize" not in s["process"]


def test_runtime_applies_console_size(pair: tuple[int, int]) -> None:
    master, slave = pair
    init._console_size(master, {"terminal": True})
    assert pty.get_winsize(slave) is None
    init._console_size(master, {"terminal": True, "consoleSize": {"height": 33, "width": 111}})
    assert pty.get_winsize(slave) == (33, 111)
