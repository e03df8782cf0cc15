"""Shared helpers of the `network` commands: the pre-defined `host` and `none` networks (which
have no bridge, hence no row in the network database) beside the manager's bridge networks,
in Docker's shapes; container-side connect/disconnect go through `container.networking`."""

from __future__ import annotations

import hashlib
from typing import Any

from dockyard.cli import Context

PSEUDO = {"host": "host", "none": "null"}  # name -> driver


def pseudo_id(name: str) -> str:
    return hashlib.sha256(f"dockyard-network-{name}".encode()).hexdigest()


def pseudo_inspect(name: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Id": pseudo_id(name),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": PSEUDO[name],
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": []},
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": {},
        "Labels": {},
    }


def inspect_all(ctx: Context) -> list[dict[str, Any]]:
    """Every network (the default bridge made on first use), Docker's inspect shape."""
    mgr = ctx.engine.networks
    mgr.get("bridge")
    found = [mgr.inspect(n.id) for n in mgr.list()]
    return found + [pseudo_inspect(n) for n in PSEUDO]


def inspect_one(ctx: Context, name: str) -> dict[str, Any]:
    from dockyard.errors import NotFound

    for pseudo in PSEUDO:
        if name == pseudo or (len(name) >= 12 and pseudo_id(pseudo).startswith(name)):
            return pseudo_inspect(pseudo)
    try:
        return ctx.engine.networks.inspect(name)
    except NotFound:
        raise NotFound(f"network {name} not found") from None
