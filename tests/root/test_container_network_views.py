"""Pure parts of container networking (no root needed, kept beside the root tests it serves):
Docker's PORTS column, `-p` ⇄ `HostConfig.PortBindings`, NetworkSettings of stopped containers."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.container.model import Container, State
from dockyard.container.networking import port_bindings, port_bindings_shape
from dockyard.container.view import network_settings, port_list, ports_text
from dockyard.errors import InvalidArgument
from dockyard.network.ports import PortBinding


def _c(status: str, network: dict[str, Any], exposed: tuple[str, ...] = ()) -> Container:
    return Container(
        id="a" * 64,
        name="x",
        image="img",
        image_id="sha256:" + "b" * 64,
        created="2026-01-01T00:00:00Z",
        config={"ExposedPorts": {k: {} for k in exposed}},
        host_config={"NetworkMode": "bridge"},
        state=State(status=status),
        network=network,
    )


def test_ports_text_as_docker_ps() -> None:
    assert ports_text([("0.0.0.0", 3000, 8080, "tcp")]) == "0.0.0.0:8080->3000/tcp"
    assert ports_text([("", 80, 0, "tcp"), ("", 81, 0, "tcp"), ("", 53, 0, "udp")]) == (
        "53/udp, 80-81/tcp"
    )
    same = [("0.0.0.0", 80, 80, "tcp"), ("0.0.0.0", 81, 81, "tcp")]
    assert ports_text(same) == "0.0.0.0:80-81->80-81/tcp"
    mixed = [("0.0.0.0", 3000, 8081, "tcp"), ("", 22, 0, "tcp"), ("127.0.0.1", 53, 5353, "udp")]
    assert ports_text(mixed) == "22/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:8081->3000/tcp"
    assert ports_text([("", 80, 0, "tcp"), ("", 82, 0, "tcp")]) == "80/tcp, 82/tcp"
    assert ports_text([]) == ""


def test_publish_flags_to_port_bindings_and_back() -> None:
    shape = port_bindings_shape(["8080:3000", "127.0.0.1::53/udp", "9000-9001:90-91", "7000"])
    assert shape == {
        "3000/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "90/tcp": [{"HostIp": "", "HostPort": "9000"}],
        "91/tcp": [{"HostIp": "", "HostPort": "9001"}],
        "7000/tcp": [{"HostIp": "", "HostPort": ""}],
    }
    back = port_bindings({"PortBindings": shape})
    assert back == [
        PortBinding(3000, "tcp", "", 8080),
        PortBinding(53, "udp", "127.0.0.1", 0),
        PortBinding(90, "tcp", "", 9000),
        PortBinding(91, "tcp", "", 9001),
        PortBinding(7000, "tcp", "", 0),
    ]
    ranged = port_bindings({"PortBindings": port_bindings_shape(["8000-8010:80"])})
    assert ranged == [PortBinding(80, "tcp", "", 8000, 8010)]
    with pytest.raises(InvalidArgument, match="invalid containerPort"):
        port_bindings_shape(["8080:x"])


def test_network_settings_running_and_stopped() -> None:
    ports = {"3000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    live: dict[str, Any] = {
        "Ports": ports,
        "IPAddress": "10.1.0.2",
        "Networks": {"bridge": {"IPAddress": "10.1.0.2", "EndpointID": "e1"}},
    }
    net = {"Endpoints": {"bridge": {"Aliases": None, "IPAMConfig": None}}, "Settings": live}
    running = _c("running", net, ("3000/tcp", "22/tcp"))
    s = network_settings(running)
    assert s["Ports"] == {**ports, "22/tcp": None}
    assert s["EndpointID"] == "e1" and s["IPAddress"] == "10.1.0.2"
    assert ports_text(port_list(running)) == "22/tcp, 0.0.0.0:8080->3000/tcp"
    stopped = _c("exited", net, ("3000/tcp",))
    s = network_settings(stopped)
    assert s["Ports"] == {} and s["IPAddress"] == ""
    assert s["Networks"]["bridge"]["IPAddress"] == "" and port_list(stopped) == []
