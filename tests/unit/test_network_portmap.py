"""Host-port reservation: random ports, ranges, Docker's error, all-or-nothing (loopback only)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dockyard.errors import Conflict, InvalidArgument
from dockyard.network import portmap
from dockyard.network.ports import PortBinding


@pytest.fixture
def busy_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


def _can_bind(port: int) -> bool:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        s.close()
    return True


def test_random_port_is_held_then_released() -> None:
    maps, socks = portmap.reserve(
        [PortBinding(80, "tcp", "127.0.0.1"), PortBinding(53, "udp")], default_host_ip="127.0.0.1"
    )
    try:
        assert [m.container_port for m in maps] == [80, 53]
        assert maps[0].host_port > 0 and maps[1].proto == "udp"
        assert not _can_bind(maps[0].host_port)
        assert str(maps[0]) == f"127.0.0.1:{maps[0].host_port}->80/tcp"
    finally:
        portmap.release(socks)
    assert _can_bind(maps[0].host_port)


def test_busy_port_clear_error_and_nothing_held(busy_port: int) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    free_port = int(free.getsockname()[1])
    free.close()
    with pytest.raises(Conflict) as e:
        portmap.reserve(
            [
                PortBinding(81, host_ip="127.0.0.1", host_port=free_port),
                PortBinding(80, host_ip="127.0.0.1", host_port=busy_port),
            ]
        )
    assert str(e.value) == f"Bind for 127.0.0.1:{busy_port} failed: port is already allocated"
    assert _can_bind(free_port)  # the first reservation was given back


def test_range_skips_busy(busy_port: int) -> None:
    end = min(busy_port + 20, 65535)
    maps, socks = portmap.reserve([PortBinding(80, "tcp", "127.0.0.1", busy_port, end)])
    portmap.release(socks)
    assert busy_port < maps[0].host_port <= end


def test_bad_addresses() -> None:
    with pytest.raises(InvalidArgument, match="cannot assign requested address"):
        portmap.reserve([PortBinding(80, host_ip="203.0.113.254")])
    with pytest.raises(InvalidArgument, match="IPv6"):
        portmap.reserve([PortBinding(80, host_ip="::1")])
