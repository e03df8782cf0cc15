"""`dockyard port`: list a container's published ports, or the host address of one."""

from __future__ import annotations

import argparse
import re

from dockyard.cli import Context

HELP = "List port mappings or a specific mapping for the container"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def _join(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _natural(s: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.view import network_settings

    c = ctx.engine.containers.get(args.container)
    ports = network_settings(c).get("Ports") or {}
    if args.port:
        port, _, proto = args.port.partition("/")
        key = f"{port}/{proto or 'tcp'}"
        lines = [_join(b["HostIp"], b["HostPort"]) for b in ports.get(key) or []]
        if not lines:
            ctx.err.write(f"Error: No public port '{key}' published for {args.container}\n")
            return 1
    else:
        lines = [
            f"{key} -> {_join(b['HostIp'], b['HostPort'])}"
            for key, bindings in ports.items()
            for b in bindings or []
        ]
        lines.sort(key=_natural)
    ctx.out.write("".join(line + "\n" for line in lines))
    return 0
