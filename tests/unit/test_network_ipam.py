"""Subnet choice and address leases, including concurrent allocation from several processes."""

from __future__ import annotations

import multiprocessing
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from dockyard.errors import Conflict, FailedPrecondition, InvalidArgument
from dockyard.network import db
from dockyard.network.ipam import Ipam, candidates, parse_subnet, pick_subnet

NET = IPv4Network("10.201.0.0/29")  # hosts .1-.6; .1 is the gateway


def test_pick_subnet_skips_used_and_podman() -> None:
    used = ["192.0.2.0/24", "10.89.0.0/16", "10.90.3.0/24", "10.255.255.53/32"]
    assert pick_subnet(used, 16) == IPv4Network("10.91.0.0/16")
    assert pick_subnet(used, 24, start=IPv4Address("10.90.3.0")) == IPv4Network("10.90.4.0/24")
    assert pick_subnet([], 16, start=IPv4Address("10.88.0.0")) == IPv4Network("10.89.0.0/16")


def test_pick_subnet_exhausted() -> None:
    with pytest.raises(FailedPrecondition, match="pass --subnet"):
        pick_subnet(["10.0.0.0/8"], 24)


def test_candidates_from_start() -> None:
    got = list(candidates(IPv4Network("10.0.0.0/22"), 24, IPv4Address("10.0.1.77")))
    assert got == [IPv4Network(f"10.0.{i}.0/24") for i in (1, 2, 3)]


def test_parse_subnet() -> None:
    assert parse_subnet("10.5.0.9/24") == IPv4Network("10.5.0.0/24")
    with pytest.raises(InvalidArgument):
        parse_subnet("nope")
    with pytest.raises(InvalidArgument):
        parse_subnet("10.0.0.0/31")


def _ipam(tmp_path: Path) -> Ipam:
    ipam = Ipam(db.connect(tmp_path / "n.db"))
    ipam.add_pool("n1", NET, IPv4Address("10.201.0.1"))
    return ipam


def test_sequential_no_reuse_then_wrap(tmp_path: Path) -> None:
    ipam = _ipam(tmp_path)
    got = [str(ipam.allocate("n1", f"o{i}")) for i in range(5)]
    assert got == [f"10.201.0.{i}" for i in range(2, 7)]
    with pytest.raises(FailedPrecondition, match="no available IPv4 addresses"):
        ipam.allocate("n1", "o9")
    ipam.release("n1", "10.201.0.3")
    ipam.release_owner("o0")  # 10.201.0.2
    assert str(ipam.allocate("n1", "x")) == "10.201.0.2"  # wraps round after .6
    assert str(ipam.allocate("n1", "y")) == "10.201.0.3"
    assert ipam.leases("n1")["10.201.0.2"] == "x"


def test_requested_address(tmp_path: Path) -> None:
    ipam = _ipam(tmp_path)
    assert str(ipam.allocate("n1", "a", "10.201.0.5")) == "10.201.0.5"
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate("n1", "b", "10.201.0.5")
    with pytest.raises(Conflict):
        ipam.allocate("n1", "b", "10.201.0.1")  # the gateway
    with pytest.raises(InvalidArgument):
        ipam.allocate("n1", "b", "10.201.0.7")  # broadcast
    with pytest.raises(InvalidArgument):
        ipam.add_pool("n2", NET, IPv4Address("10.9.9.9"))
    assert str(ipam.allocate("n1", "c")) == "10.201.0.6"  # continues after the last one


def _worker(path: str, n: int, out: multiprocessing.Queue[list[str]]) -> None:
    ipam = Ipam(db.connect(Path(path)))
    out.put(
        [
            str(ipam.allocate("big", f"{multiprocessing.current_process().pid}-{i}"))
            for i in range(n)
        ]
    )


def test_concurrent_processes_never_share_an_address(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    Ipam(db.connect(path)).add_pool("big", IPv4Network("10.202.0.0/24"), IPv4Address("10.202.0.1"))
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(path), 25, q)) for _ in range(6)]
    for p in procs:
        p.start()
    got: list[str] = []
    for _ in procs:
        got += q.get(timeout=60)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(got) == 150
    assert len(set(got)) == 150
    assert len(Ipam(db.connect(path)).leases("big")) == 150
