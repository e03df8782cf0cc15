"""Docker-shaped views of containers (pure data): `ps` status text, `inspect` JSON."""

from __future__ import annotations

import time
from typing import Any

from dockyard.container.model import ZERO_TIME, Container
from dockyard.units import human_duration, parse_time


def _ago(ts: str, now: float) -> float:
    dt = parse_time(ts)
    return max(0.0, now - dt.timestamp()) if dt else 0.0


def status_text(c: Container, now: float | None = None) -> str:
    """`Up 2 minutes`, `Exited (0) 3 seconds ago`, `Created`, ... exactly as `docker ps`."""
    n = time.time() if now is None else now
    s = c.state
    if s.status == "running":
        hs = (s.health or {}).get("Status")
        health = f" (health: {hs})" if hs == "starting" else (f" ({hs})" if hs else "")
        return f"Up {human_duration(_ago(s.started_at, n))}{health}"
    if s.status == "paused":
        return f"Up {human_duration(_ago(s.started_at, n))} (Paused)"
    if s.status == "restarting":
        return f"Restarting ({s.exit_code}) {human_duration(_ago(s.finished_at, n))} ago"
    if s.status == "exited":
        if s.finished_at == ZERO_TIME:
            return f"Exited ({s.exit_code})"
        return f"Exited ({s.exit_code}) {human_duration(_ago(s.finished_at, n))} ago"
    if s.status == "removing":
        return "Removal In Progress"
    if s.status == "dead":
        return "Dead"
    return "Created"


def command_text(c: Container) -> str:
    return " ".join(c.command)


def inspect_container(c: Container, root: str) -> dict[str, Any]:
    s = c.state
    cmd = c.command
    d = f"{root}/containers/{c.id}"
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": cmd[0] if cmd else "",
        "Args": cmd[1:],
        "State": {
            "Status": s.status,
            "Running": s.status in ("running", "paused", "restarting"),
            "Paused": s.status == "paused",
            "Restarting": s.status == "restarting",
            "OOMKilled": s.oom_killed,
            "Dead": s.status == "dead",
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
            **({"Health": s.health} if s.health else {}),
        },
        "Image": c.image_id,
        "ResolvConfPath": f"{d}/resolv.conf",
        "HostnamePath": f"{d}/hostname",
        "HostsPath": f"{d}/hosts",
        "LogPath": f"{d}/{c.id}-json.log",
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": c.host_config,
        "GraphDriver": {
            "Data": {"UpperDir": f"{d}/upper", "WorkDir": f"{d}/work", "MergedDir": f"{d}/rootfs"},
            "Name": "overlay2",
        },
        "Mounts": c.mounts,
        "Config": c.config,
        "NetworkSettings": network_settings(c),
    }


def _live(c: Container) -> bool:
    return c.state.status in ("running", "paused")


def network_settings(c: Container) -> dict[str, Any]:
    """Docker's NetworkSettings: the live one while the container runs (with exposed but
    unpublished ports as `null`), else the networks it is connected to, without addresses."""
    net = c.network or {}
    live = net.get("Settings") if _live(c) else None
    base: dict[str, Any] = {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": {},
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": {},
    }
    if live:
        base.update(live)
        ports = dict(live.get("Ports") or {})
        mode = str(c.host_config.get("NetworkMode") or "bridge")
        if mode not in ("host", "none") and not mode.startswith("container:"):
            for key in c.config.get("ExposedPorts") or {}:
                ports.setdefault(key, None)
        base["Ports"] = ports
        first = next(iter((live.get("Networks") or {}).values()), None)
        if first and base["IPAddress"]:
            base["EndpointID"] = first.get("EndpointID", "")
        return base
    mode = str(c.host_config.get("NetworkMode") or "bridge")
    names = list(net.get("Endpoints") or {}) or ([mode] if mode in ("host", "none") else [])
    base["Networks"] = {n: _blank_endpoint(net, n) for n in names}
    return base


def _blank_endpoint(net: dict[str, Any], name: str) -> dict[str, Any]:
    cfg = (net.get("Endpoints") or {}).get(name) or {}
    return blank_endpoint(aliases=cfg.get("Aliases"), ipam=cfg.get("IPAMConfig"))


def blank_endpoint(
    network_id: str = "", aliases: list[str] | None = None, ipam: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Docker's EndpointSettings of a network the container is not (yet) attached to."""
    return {
        "IPAMConfig": ipam,
        "Links": None,
        "Aliases": aliases,
        "MacAddress": "",
        "NetworkID": network_id,
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


def port_list(c: Container) -> list[tuple[str, int, int, str]]:
    """A running container's ports as Docker's API lists them: (IP, PrivatePort, PublicPort,
    Type); exposed-only ports have IP "" and PublicPort 0. Empty when not running."""
    if not _live(c):
        return []
    out: list[tuple[str, int, int, str]] = []
    for key, bindings in (network_settings(c).get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        if not port.isdigit():
            continue
        if not bindings:
            out.append(("", int(port), 0, proto or "tcp"))
        for b in bindings or []:
            out.append((b.get("HostIp", ""), int(port), int(b.get("HostPort") or 0), proto))
    return out


def ports_text(ports: list[tuple[str, int, int, str]]) -> str:
    """`docker ps`'s PORTS column: `0.0.0.0:8080->3000/tcp, 5000-5001/tcp`.

    Docker's rules: sorted by private port, IP, public port, type; a mapping whose host port
    equals the container port joins consecutive ones of its IP/type into a range
    (`0.0.0.0:80-81->80-81/tcp`), as do exposed-only ports (`80-81/tcp`); other mappings are
    listed after the groups, one by one."""
    groups: dict[str, list[int]] = {}  # key (ip/type or type) -> [first, last], in order
    done: list[str] = []
    mappings: list[str] = []
    for ip, private, public, proto in sorted(ports, key=lambda p: (p[1], p[0], p[2], p[3])):
        if ip and public != private:
            mappings.append(f"{_join(ip, public)}->{private}/{proto}")
            continue
        key = f"{ip}/{proto}" if ip else proto
        g = groups.get(key)
        if g is not None and private == g[1] + 1:
            g[1] = private
            continue
        if g is not None:
            done.append(_group(key, g))
        groups[key] = [private, private]
    done += [_group(k, g) for k, g in groups.items()]
    return ", ".join(done + mappings)


def _join(ip: str, port: int | str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _group(key: str, g: list[int]) -> str:
    ip, _, proto = key.rpartition("/")
    ports = str(g[0]) if g[0] == g[1] else f"{g[0]}-{g[1]}"
    if ip:
        return f"{_join(ip, ports)}->{ports}/{proto}"
    return f"{ports}/{proto}"
