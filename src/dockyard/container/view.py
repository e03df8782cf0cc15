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
        "NetworkSettings": c.network
        or {"Networks": {}, "Ports": {}, "IPAddress": "", "Gateway": "", "MacAddress": ""},
    }
