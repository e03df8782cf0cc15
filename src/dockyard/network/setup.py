"""A container's whole network, per `--network` mode, in one call for the engine.

Responsibility: map a mode onto the manager's primitives and return what the runtime needs
(`spec_netns`: the netns path to put in the OCI spec, "" for a new one the runtime makes, or
None for `host`) and what the engine needs (the
files to bind-mount at /etc/hosts, /etc/hostname, /etc/resolv.conf; the port reservations to
hand to the supervisor):

- `bridge` or a user network: a new netns (`run_dir/<id>`) with lo and eth0 on the network;
  hosts (with the peers on user networks), hostname, resolv.conf of its own;
- `none`: no netns made here: the runtime makes a new one (CLONE_NEWNET) and brings `lo` up in
  it, as runc and crun do; localhost-only hosts, hostname, filtered resolv.conf. Nothing else:
  no namespace to create and mount, no database work;
- `host`: no netns of its own (the runtime leaves the network namespace out of the spec);
  copies of the host's hosts and resolv.conf;
- `container:<id>`: the other container's netns and files (its own must be running); `join`
  gives its namespace when it has no netns of ours (a `none` container: `/proc/PID/ns/net`).

`--add-host` entries (`extra_hosts`) are recorded in the container's files dir first, so the
hosts file has them from the start and keeps them whenever the manager rewrites it.

Invariants: `setup_container` leaves nothing behind when it fails (the netns it made is deleted);
`teardown_container` is idempotent and never deletes a netns it does not own (`container:`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import FailedPrecondition, InvalidArgument
from dockyard.network import dns, netns
from dockyard.network.manager import NetworkManager
from dockyard.network.model import Endpoint, EtcFiles, NetworkMode
from dockyard.network.ports import PortBinding


@dataclass(frozen=True)
class ContainerNetwork(EtcFiles):
    mode: NetworkMode
    netns: Path | None
    files_dir: Path
    endpoints: tuple[Endpoint, ...] = ()
    reservations: tuple[socket.socket, ...] = field(default=(), compare=False, repr=False)

    @property
    def spec_netns(self) -> str | None:
        """The OCI spec's network namespace: a path to join, "" for a new one (`none`), None
        for the host's."""
        if self.netns is not None:
            return str(self.netns)
        return "" if self.mode.kind == "none" else None


def files_dir(mgr: NetworkManager, container_id: str) -> Path:
    return mgr.state_dir / "containers" / container_id


def setup_container(
    mgr: NetworkManager,
    container_id: str,
    mode: NetworkMode | str,
    *,
    name: str = "",
    hostname: str = "",
    aliases: Iterable[str] = (),
    ports: Sequence[PortBinding] = (),
    ip: str | None = None,
    ip6: str | None = None,
    extra_hosts: Sequence[str] = (),
    join: Path | None = None,
) -> ContainerNetwork:
    """Give a container its network before its first process starts."""
    m = mode if isinstance(mode, NetworkMode) else NetworkMode.parse(mode)
    fdir = files_dir(mgr, container_id)
    host = hostname or container_id[:12]
    if m.kind != "container":
        dns.write_extra_hosts(fdir, extra_hosts)
    if m.kind == "host":
        dns.write_standalone(fdir, host, host_mode=True)
        return ContainerNetwork(m, None, fdir)
    if m.kind == "container":
        if ports:
            raise InvalidArgument(
                "conflicting options: port publishing and the container type network mode"
            )
        path = join or mgr.netns_path(m.target)
        if not (netns.is_netns(path) or (join and path.exists())):
            raise FailedPrecondition(f"cannot join network of a non running container: {m.target}")
        return ContainerNetwork(m, path, files_dir(mgr, m.target))
    if m.kind == "none":
        dns.write_standalone(fdir, host, host_mode=False)
        return ContainerNetwork(m, None, fdir)
    path = mgr.create_netns(container_id)
    try:
        ep = mgr.attach(
            container_id,
            path,
            m.target,
            aliases=aliases,
            ports=ports,
            hostname=host,
            name=name,
            ip=ip,
            files_dir=fdir,
            ip6=ip6,
        )
    except BaseException:
        mgr.detach(container_id)
        netns.delete(path)
        raise
    return ContainerNetwork(m, path, fdir, (ep,), ep.reservations)


def teardown_container(mgr: NetworkManager, container_id: str) -> None:
    """Detach from every network and delete the container's own netns (if it has one)."""
    mgr.detach(container_id)
    mgr.delete_netns(container_id)
