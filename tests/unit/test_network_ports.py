"""`-p`/`-P` parsing: Docker's accepted forms and its exact error texts."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network.ports import PortBinding, parse_port_spec, parse_port_specs, publish_all


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortBinding(80)]),
        ("8080:80", [PortBinding(80, host_port=8080)]),
        ("127.0.0.1:8080:80", [PortBinding(80, "tcp", "127.0.0.1", 8080)]),
        ("127.0.0.1::80/udp", [PortBinding(80, "udp", "127.0.0.1", 0)]),
        ("53:53/UDP", [PortBinding(53, "udp", "", 53)]),
        ("80/", [PortBinding(80)]),
        (
            "8080-8081:80-81",
            [PortBinding(80, host_port=8080), PortBinding(81, host_port=8081)],
        ),
        ("8000-8010:80", [PortBinding(80, host_port=8000, host_port_end=8010)]),
        ("[::1]:8080:80", [PortBinding(80, "tcp", "::1", 8080)]),
        ("80-81", [PortBinding(80), PortBinding(81)]),
    ],
)
def test_accepted(spec: str, expected: list[PortBinding]) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no port specified: <empty>"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("abc", "invalid containerPort: abc"),
        ("abc:80", "invalid hostPort: abc"),
        ("70000:80", "invalid hostPort: 70000"),
        ("80:70000", "invalid containerPort: 70000"),
        ("81-80", "invalid containerPort: 81-80"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("80/icmp", "invalid proto: icmp"),
        (
            "8080-8082:80-81",
            "invalid ranges specified for container and host Ports: 80-81 and 8080-8082",
        ),
    ],
)
def test_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_port_spec(spec)
    assert str(e.value) == message


def test_specs_deduplicate() -> None:
    assert parse_port_specs(["80", "80", "8080:80"]) == [
        PortBinding(80),
        PortBinding(80, host_port=8080),
    ]


def test_publish_all() -> None:
    got = publish_all(["80/tcp", "53/udp", "8000-8001", "80"])
    assert got == [
        PortBinding(80),
        PortBinding(53, "udp"),
        PortBinding(8000),
        PortBinding(8001),
    ]
    assert got[1].key == "53/udp"
