"""`attach`'s stdin relay and detach keys, and `--init`'s spec, without root."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import stat
from pathlib import Path

import pytest

from dockyard.cli.attach import EscapeFilter, detach_keys
from dockyard.container import attachserve, spec
from dockyard.container.model import Container
from dockyard.errors import InvalidArgument

# -- detach keys -----------------------------------------------------------------------------


def test_detach_keys_in_docker_s_syntax() -> None:
    assert detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert detach_keys("a,ctrl-@,ctrl-[,ctrl-_") == b"a\x00\x1b\x1f"
    assert detach_keys("CTRL-A") == b"\x01"
    for bad in ("ctrl-1", "foo", "ctrl-", ""):
        with pytest.raises(InvalidArgument, match="Invalid escape keys"):
            detach_keys(bad)


def test_escape_filter_passes_everything_but_a_complete_sequence() -> None:
    f = EscapeFilter(b"\x10\x11")
    assert f.feed(b"ab\x10c") == b"ab\x10c"  # a broken prefix goes on as typed
    assert f.feed(b"x\x10") == b"x"  # held: maybe the start of the sequence
    assert f.feed(b"\x10") == b"\x10"  # broken, but the new byte starts it again
    assert not f.detached
    assert f.feed(b"\x11rest") == b""
    assert f.detached


# -- the stdin relay -------------------------------------------------------------------------


def _pump(sel: selectors.BaseSelector, relay: attachserve.StdinRelay, rounds: int = 20) -> None:
    for _ in range(rounds):
        for key, mask in sel.select(0.01):
            assert key.data is relay
            relay.on_event(key.fd, mask)


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_relay_copies_clients_to_the_stdin_and_closes_it_once(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    relay = attachserve.StdinRelay(w, tmp_path, once=True)
    sel = selectors.DefaultSelector()
    relay.register(sel)
    try:
        assert stat.S_IMODE((tmp_path / attachserve.SOCKET).stat().st_mode) == 0o600
        client = attachserve.connect(tmp_path)
        assert client is not None
        client.sendall(b"hello ")
        _pump(sel, relay)
        client.sendall(b"world")
        client.shutdown(socket.SHUT_WR)  # StdinOnce: the container's stdin ends with it
        _pump(sel, relay)
        assert _drain(r) == b"hello world"
        assert os.read(r, 10) == b""  # EOF: the relay closed the write end
        client.close()
    finally:
        relay.close()
        sel.close()
        os.close(r)
    assert not (tmp_path / attachserve.SOCKET).exists()
    assert attachserve.connect(tmp_path) is None


def test_relay_never_blocks_on_a_full_stdin(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    relay = attachserve.StdinRelay(w, tmp_path, once=False)
    sel = selectors.DefaultSelector()
    relay.register(sel)
    payload = bytes(range(256)) * 2048  # 512 KiB: far more than a pipe holds
    client = attachserve.connect(tmp_path)
    assert client is not None
    client.setblocking(False)
    got = b""
    sent = 0
    try:
        for i in range(2000):
            if sent < len(payload):
                with contextlib.suppress(BlockingIOError):
                    sent += client.send(payload[sent : sent + 65536])
            _pump(sel, relay, rounds=1)  # returns although nobody reads the pipe yet
            if i % 3 == 0:
                got += _drain(r)  # the container reads now and then
            if len(got) == len(payload):
                break
        assert got == payload
        client.close()
        _pump(sel, relay)
        assert _drain(r) == b""  # not StdinOnce: the stdin stays open (no EOF)
    finally:
        relay.close()
        sel.close()
        os.close(r)


def test_relay_for_a_container_without_stdin(tmp_path: Path) -> None:
    class Run:
        tty = False
        stdin_w = -1
        stdout = -1

    assert attachserve.for_run(tmp_path, Run(), {"OpenStdin": True}, -1) is None


# -- --init ----------------------------------------------------------------------------------


def _exe(path: Path) -> str:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_init_binary_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tini = _exe(tmp_path / "tini-static")
    monkeypatch.setattr(spec, "INIT_CANDIDATES", (str(tmp_path / "docker-init"), tini))
    assert spec.init_binary({"Init": False}, {}) is None
    assert spec.init_binary({"Init": None}, {}) is None
    assert spec.init_binary({"Init": True}, {}) == tini
    assert spec.init_binary({}, {"init": True}) == tini  # the daemon default (config.json)
    assert spec.init_binary({"Init": False}, {"init": True}) is None
    mine = _exe(tmp_path / "my-init")
    assert spec.init_binary({"Init": True}, {"init-path": mine}) == mine
    with pytest.raises(InvalidArgument, match="/nope/init"):
        spec.init_binary({"Init": True}, {"init-path": "/nope/init"})
    monkeypatch.setattr(spec, "INIT_CANDIDATES", (str(tmp_path / "none"),))
    with pytest.raises(InvalidArgument, match="tini"):
        spec.init_binary({"Init": True}, {})


def test_spec_runs_the_command_under_the_init(tmp_path: Path) -> None:
    c = Container(
        id="c" * 64, name="x", image="bb", image_id="sha256:" + "0" * 64, created="",
        config={"Entrypoint": ["/ep"], "Cmd": ["a", "b"], "User": "0"},
        host_config={"Init": True},
    )  # fmt: skip
    s = spec.build_spec(c, {}, tmp_path, netns=None, init="/usr/bin/tini-static")
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "/ep", "a", "b"]
    m = next(m for m in s["mounts"] if m["destination"] == "/sbin/docker-init")
    assert m["source"] == "/usr/bin/tini-static" and "ro" in m["options"]
    plain = spec.build_spec(c, {}, tmp_path, netns=None)
    assert plain["process"]["args"] == ["/ep", "a", "b"]
    assert all(m["destination"] != "/sbin/docker-init" for m in plain["mounts"])
