"""A container's network as the container service sees it (layer L4 glue over `network/`).

Responsibility: check the network part of `create` (mode, target container, published ports,
aliases) and record it; give a container its network before the runtime creates it (a netns to
put in the spec, the /etc files to bind-mount, the host-port reservations, which stay open in
the calling process — the supervisor — until `release`); release it after the container exits;
connect and disconnect networks (`network connect/disconnect`).

Record layout (`Container.network`, JSON in the container record):
    {"Endpoints": {network name: {"Aliases": [...] | None, "IPAMConfig": {...} | None}},
     "Settings": Docker's NetworkSettings while the container runs ({} before its first start)}
`Endpoints` lists, in order, the networks of a container in `bridge` or user-network mode
(empty for `host`, `none`, `container:`); the first one takes the published ports and the
default route. `HostConfig.NetworkMode` stays as given (`container:<full id>` once resolved).

Published ports belong to the first network's endpoint (as Docker publishes through an
endpoint): `network disconnect` of that network frees them. The reservations live in the
supervisor, so the disconnecting process, after detaching, sends the supervisor
`PORTS_SIGNAL`; `attach` installed a handler there that closes the reservations of endpoints
gone from the database (`NetworkManager.release_detached`). The signal's default action is to
ignore it, so a process without the handler is not harmed. `disconnect` returns once the ports
can be bound again (or after a short wait).

Invariants: `attach` leaves nothing behind when it fails (the library's `setup_container`
undoes its own steps, and the extra networks are detached here); `release` is idempotent and
safe to call from any process (the CLI's reconcile after a supervisor died, or the supervisor).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound

if TYPE_CHECKING:
    from dockyard.container.model import Container
    from dockyard.engine import Engine
    from dockyard.network.model import Endpoint, NetworkMode
    from dockyard.network.portmap import PortMapping
    from dockyard.network.ports import PortBinding

PORTS_SIGNAL = signal.SIGURG  # "drop the reservations of detached endpoints"; default: ignored


@dataclass
class Attached:
    """What `attach` gives the service: the spec's netns and the files' bind mounts."""

    netns: str | None  # a path to join, "" for a new one (the runtime's), None for the host's
    mounts: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)


def mode_text(host_config: dict[str, Any]) -> str:
    mode = str(host_config.get("NetworkMode") or "")
    return "bridge" if mode in ("", "default") else mode


def mode_of(c: Container) -> NetworkMode:
    from dockyard.network.model import NetworkMode

    return NetworkMode.parse(mode_text(c.host_config))


# ---- create ---------------------------------------------------------------------------------


def prepare(
    engine: Engine,
    lookup: Callable[[str], str],
    config: dict[str, Any],
    host_config: dict[str, Any],
) -> dict[str, Any]:
    """Validate the network part of a create request (editing `config`/`host_config` in place:
    `container:NAME` → `container:<id>`, published ports added to `ExposedPorts`, the API's
    `NetworkingConfig` popped from `config`); return the record's `network` value."""
    networking = config.pop("NetworkingConfig", None) or {}
    host_config["NetworkMode"] = mode_text(host_config)
    kind, target = _parse_mode(host_config["NetworkMode"])
    bindings = port_bindings(host_config)
    if bindings:
        exposed = dict(config.get("ExposedPorts") or {})
        for b in bindings:
            exposed.setdefault(b.key, {})
        config["ExposedPorts"] = exposed
    wanted: dict[str, Any] = dict(networking.get("EndpointsConfig") or {})
    if kind == "container":
        if bindings or host_config.get("PublishAllPorts"):
            raise InvalidArgument(
                "conflicting options: port publishing and the container type network mode"
            )
        host_config["NetworkMode"] = f"container:{lookup(target)}"
    if kind == "network":
        engine.networks.get(target)  # NotFound: "network NAME not found"
    for name, ep in wanted.items():
        aliases = (ep or {}).get("Aliases")
        ipam = (ep or {}).get("IPAMConfig") or {}
        ip = ipam.get("IPv4Address") or ipam.get("IPv6Address")
        if kind != "network" and aliases:
            raise InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        if kind != "network" and ip:
            raise InvalidArgument(
                "user specified IP address is supported on user defined networks only"
            )
        if name != target and name != host_config["NetworkMode"]:
            raise InvalidArgument(f"network {name} is not the container's network mode")
    if kind not in ("bridge", "network"):
        return {"Endpoints": {}, "Settings": {}}
    first = wanted.get(target) or wanted.get(host_config["NetworkMode"]) or {}
    return {"Endpoints": {target: _endpoint_config(first)}, "Settings": {}}


def _parse_mode(text: str) -> tuple[str, str]:
    """(kind, target) as `NetworkMode.parse` gives them, without loading the network model
    for the everyday modes (so `run` starts faster)."""
    if text == "bridge":
        return "bridge", "bridge"  # the default network's name
    if text in ("host", "none"):
        return text, ""
    from dockyard.network.model import NetworkMode

    m = NetworkMode.parse(text)
    return m.kind, m.target


def _endpoint_config(ep: dict[str, Any]) -> dict[str, Any]:
    aliases = [str(a) for a in ep.get("Aliases") or []]
    ipam = ep.get("IPAMConfig") or {}
    addrs = {k: str(ipam[k]) for k in ("IPv4Address", "IPv6Address") if ipam.get(k)}
    return {"Aliases": aliases or None, "IPAMConfig": addrs or None}


def _ips(cfg: dict[str, Any]) -> tuple[str | None, str | None]:
    """The requested (IPv4, IPv6) addresses of an endpoint config."""
    ipam = cfg.get("IPAMConfig") or {}
    return ipam.get("IPv4Address") or None, ipam.get("IPv6Address") or None


def _host_port_text(b: PortBinding) -> str:
    if not b.host_port:
        return ""
    if b.host_port_end > b.host_port:
        return f"{b.host_port}-{b.host_port_end}"
    return str(b.host_port)


def port_bindings_shape(specs: list[str]) -> dict[str, list[dict[str, str]]]:
    """`-p` values → Docker's `HostConfig.PortBindings` (`{"80/tcp": [{HostIp, HostPort}]}`)."""
    from dockyard.network.ports import parse_port_specs

    out: dict[str, list[dict[str, str]]] = {}
    for b in parse_port_specs(specs):
        out.setdefault(b.key, []).append({"HostIp": b.host_ip, "HostPort": _host_port_text(b)})
    return out


def port_bindings(host_config: dict[str, Any]) -> list[PortBinding]:
    """`HostConfig.PortBindings` (Docker's shape) → the network library's bindings."""
    from dockyard.network.ports import parse_port_spec

    out: list[PortBinding] = []
    for key, entries in (host_config.get("PortBindings") or {}).items():
        for e in entries or [{}]:
            ip = str((e or {}).get("HostIp") or "")
            port = str((e or {}).get("HostPort") or "")
            host = f"[{ip}]" if ":" in ip else ip
            spec = f"{host}:{port}:{key}" if host else (f"{port}:{key}" if port else key)
            for b in parse_port_spec(spec):
                if b not in out:
                    out.append(b)
    return out


def _wanted_ports(c: Container) -> list[PortBinding]:
    from dockyard.network.ports import publish_all

    out = port_bindings(c.host_config)
    if c.host_config.get("PublishAllPorts"):
        bound = {b.key for b in out}
        exposed = [k for k in (c.config.get("ExposedPorts") or {}) if k not in bound]
        out += publish_all(exposed)
    return out


# ---- start and exit -------------------------------------------------------------------------


def attach(engine: Engine, c: Container, lookup: Callable[[str], str]) -> Attached:
    """Give `c` its network (before the runtime creates it). The port reservations stay open
    in this process (the supervisor) until `release`."""
    from dockyard.container import etcfiles
    from dockyard.network.setup import setup_container

    mode = mode_of(c)
    mgr = engine.networks
    hostname = str(c.config.get("Hostname") or c.id[:12])
    wanted = dict((c.network or {}).get("Endpoints") or {})
    join = None
    if mode.kind == "container":
        mode = _resolved(mode, lookup)
        join = _netns_of(engine, mode.target)
    first: str | None = None
    if mode.kind in ("bridge", "network"):
        first = next(iter(wanted), None)
        if first is None:  # disconnected from every network: loopback only, as Docker
            mode = type(mode).parse("none")
    mode_arg = mode if first is None else _mode_for(first)
    first_cfg = wanted.get(first or "", {}) or {}
    ip, ip6 = _ips(first_cfg)
    net = setup_container(
        mgr,
        c.id,
        mode_arg,
        name=c.name,
        hostname=hostname,
        aliases=first_cfg.get("Aliases") or (),
        ports=_wanted_ports(c) if mode.kind != "host" else (),
        ip=ip,
        ip6=ip6,
        extra_hosts=etcfiles.extra_hosts(c),
        join=join,
    )
    if net.reservations:
        _listen_for_port_release(engine)
    eps: list[Endpoint] = list(net.endpoints)
    try:
        for name, cfg in list(wanted.items())[1:]:
            eps.append(_connect(engine, c, name, cfg or {}))
        etcfiles.apply_flags(c, net)
    except BaseException:
        release(engine, c.id)
        raise
    return Attached(
        netns=net.spec_netns,
        mounts=etcfiles.mounts(net),
        settings=settings_of(mode_arg, net.netns, eps),
    )


def _mode_for(network: str) -> NetworkMode:
    from dockyard.network.model import NetworkMode

    return NetworkMode.parse(network)


def _resolved(mode: NetworkMode, lookup: Callable[[str], str]) -> NetworkMode:
    from dockyard.network.model import NetworkMode

    try:
        return NetworkMode("container", lookup(mode.target))
    except NotFound:
        raise NotFound(f"No such container: {mode.target}") from None


def _netns_of(engine: Engine, cid: str) -> Path | None:
    """The network namespace of running container `cid` when it is not one of ours (a `none`
    container's, made by the runtime): its init's; None otherwise (the library checks ours)."""
    from dockyard.linux.proc import start_time
    from dockyard.network import netns

    if netns.is_netns(engine.networks.netns_path(cid)):
        return None
    with contextlib.suppress(NotFound):
        st = engine.containers.get(cid).state
        if st.running and st.pid and start_time(st.pid) == st.init_start:
            return Path(f"/proc/{st.pid}/ns/net")
    return None


def _listen_for_port_release(engine: Engine) -> None:
    """In the process holding the port reservations (the supervisor): on `PORTS_SIGNAL`, close
    those of endpoints another process detached. Only the main thread may set a handler."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        with contextlib.suppress(Exception):  # never raise into whatever the process was doing
            if "networks" in engine.__dict__:
                engine.networks.release_detached()

    signal.signal(PORTS_SIGNAL, handler)


def _connect(engine: Engine, c: Container, network: str, cfg: dict[str, Any]) -> Endpoint:
    mgr = engine.networks
    ip, ip6 = _ips(cfg)
    return mgr.attach(
        c.id,
        mgr.netns_path(c.id),
        network,
        aliases=cfg.get("Aliases") or (),
        hostname=str(c.config.get("Hostname") or c.id[:12]),
        name=c.name,
        ip=ip,
        ip6=ip6,
        files_dir=mgr.state_dir / "containers" / c.id,
    )


def release(engine: Engine, cid: str) -> None:
    """Detach `cid` from every network, close its port reservations, delete its netns."""
    from dockyard.network.setup import teardown_container

    teardown_container(engine.networks, cid)


# ---- connect / disconnect -------------------------------------------------------------------


def check_connectable(c: Container) -> None:
    kind = mode_of(c).kind
    if kind == "host":
        raise Conflict("container cannot be disconnected from host network or connected to host")
    if kind in ("none", "container"):
        raise Conflict(
            "container sharing network namespace with another container or host cannot be "
            "connected to any other network"
        )


def live_settings(engine: Engine, c: Container) -> dict[str, Any]:
    mgr = engine.networks
    path = mgr.netns_path(c.id)
    return settings_of(mode_of(c), path, mgr.endpoints(c.id))


def settings_of(mode: NetworkMode, netns: Path | None, eps: list[Endpoint]) -> dict[str, Any]:
    """Docker's NetworkSettings of a running container."""
    from dockyard.network.model import network_settings

    s = network_settings(eps)
    s["SandboxKey"] = str(netns) if netns else ""
    if not eps and mode.kind in ("host", "none"):
        s["Networks"] = {mode.kind: blank_endpoint()}
    return s


def blank_endpoint(network_id: str = "") -> dict[str, Any]:
    from dockyard.container.view import blank_endpoint as blank

    return blank(network_id)


def suppress_release(engine: Engine, cid: str) -> None:
    """`release` for cleanup paths: never raises (the manager's repair finishes the job)."""
    with contextlib.suppress(DockyardError, OSError):
        release(engine, cid)


def connect(
    engine: Engine,
    container: str,
    network: str,
    *,
    aliases: list[str] | None = None,
    ip: str | None = None,
    ip6: str | None = None,
) -> None:
    """`network connect`: attach now if the container runs; record it for its next start."""
    svc = engine.containers
    c = svc.get(container)
    check_connectable(c)
    if network in ("host", "none"):
        raise Conflict(
            "container cannot be disconnected from host network or connected to host network"
            if network == "host"
            else "container cannot be connected to multiple networks with one of the networks"
            " in private (none) mode"
        )
    n = engine.networks.get(network)
    if (aliases or ip or ip6) and n.builtin:
        raise InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks"
            if aliases
            else "user specified IP address is supported on user defined networks only"
        )
    cfg = _endpoint_config(
        {"Aliases": aliases, "IPAMConfig": {"IPv4Address": ip or "", "IPv6Address": ip6 or ""}}
    )
    if n.name in ((c.network or {}).get("Endpoints") or {}):
        raise Conflict(f"endpoint with name {c.name} already exists in network {n.name}")
    running = c.state.status in ("running", "paused")
    if running:
        _connect(engine, c, n.name, cfg)

    def update(r: Container) -> None:
        r.network = dict(r.network or {})
        r.network["Endpoints"] = {**(r.network.get("Endpoints") or {}), n.name: cfg}
        if running:
            r.network["Settings"] = live_settings(engine, r)

    svc._update(c.id, update)


def disconnect(engine: Engine, container: str, network: str) -> None:
    """`network disconnect`: detach now if the container runs, and forget the network."""
    svc = engine.containers
    c = svc.get(container)
    if mode_of(c).kind == "host" or network == "host":
        raise Conflict("container cannot be disconnected from host network or connected to host")
    n = engine.networks.get(network)
    if n.name not in ((c.network or {}).get("Endpoints") or {}):
        raise NotFound(f"container {c.id} is not connected to network {n.name}")
    running = c.state.status in ("running", "paused")
    if running:
        held = [m for e in engine.networks.endpoints(c.id) if e.network_id == n.id for m in e.ports]
        with contextlib.suppress(NotFound):
            engine.networks.detach(c.id, n.name)
        if held:
            _revoke_ports(c, held)

    def update(r: Container) -> None:
        r.network = dict(r.network or {})
        eps = dict(r.network.get("Endpoints") or {})
        eps.pop(n.name, None)
        r.network["Endpoints"] = eps
        if running:
            r.network["Settings"] = live_settings(engine, r)

    svc._update(c.id, update)


def _revoke_ports(c: Container, mappings: list[PortMapping], timeout: float = 2.0) -> None:
    """Ask the supervisor of `c` to close the reservations of its detached endpoint, and wait
    until the ports can be bound (or `timeout`: another program may have taken one)."""
    import os

    from dockyard.linux.proc import start_time

    pid = c.state.supervisor_pid
    if not pid or start_time(pid) != c.state.supervisor_start:
        return  # no supervisor (or the pid was reused): nobody holds them
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, PORTS_SIGNAL)
    deadline = time.monotonic() + timeout
    while not all(_bindable(m) for m in mappings) and time.monotonic() < deadline:
        time.sleep(0.002)


def _bindable(m: PortMapping) -> bool:
    from dockyard.network import portmap

    try:
        mappings, socks = portmap.reserve([_binding(m)])
    except DockyardError:
        return False
    portmap.release(socks)
    return bool(mappings)


def _binding(m: PortMapping) -> PortBinding:
    from dockyard.network.ports import PortBinding

    return PortBinding(m.container_port, m.proto, m.host_ip, m.host_port, m.host_port)
