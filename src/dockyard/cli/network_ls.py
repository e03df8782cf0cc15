"""`dockyard network ls`: list networks as `docker network ls` does (filters, -q, --format)."""

from __future__ import annotations

import argparse
from typing import Any

from dockyard.cli import Context

HELP = "List networks"
DEFAULT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}
_FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")


class Row:
    """What a `--format` template sees for one network (Docker's networkContext names)."""

    def __init__(self, info: dict[str, Any], trunc: bool) -> None:
        self.ID = info["Id"][:12] if trunc else info["Id"]
        self.Name = info["Name"]
        self.Driver = info["Driver"]
        self.Scope = info["Scope"]
        self.IPv6 = "true" if info.get("EnableIPv6") else "false"
        self.Internal = "true" if info["Internal"] else "false"
        self.CreatedAt = info["Created"]
        self._labels: dict[str, str] = info.get("Labels") or {}

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self._labels.items()))

    def Label(self, name: str) -> str:
        return self._labels.get(name, "")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")
    p.add_argument("-f", "--filter", action="append", help="Provide filter values")
    p.add_argument("--format", help="Format output using a custom template")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output")


def _check(info: dict[str, Any], key: str, v: str) -> bool:
    builtin = info["Name"] in ("bridge", "host", "none")
    if key == "driver":
        return bool(info["Driver"] == v)
    if key == "id":
        return bool(info["Id"].startswith(v))
    if key == "name":
        return v in info["Name"]
    if key == "scope":
        return bool(info["Scope"] == v)
    if key == "type":
        return (v == "builtin") == builtin
    if key == "dangling":
        return (v in ("true", "1")) == (not builtin and not info["Containers"])
    return _label_match(info.get("Labels") or {}, v)


def _match(info: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    return all(any(_check(info, k, v) for v in vals) for k, vals in filters.items())


def _label_match(labels: dict[str, str], want: str) -> bool:
    k, sep, v = want.partition("=")
    return k in labels and (not sep or labels[k] == v)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli._output import parse_filters
    from dockyard.cli.network_common import inspect_all
    from dockyard.errors import InvalidArgument
    from dockyard.gotemplate import format_rows

    filters = parse_filters(args.filter)
    for k in filters:
        if k not in _FILTERS:
            raise InvalidArgument(f"invalid filter '{k}'")
    for v in filters.get("type", []):
        if v not in ("custom", "builtin"):
            raise InvalidArgument(f"invalid filter: 'type'='{v}'")
    infos = sorted((i for i in inspect_all(ctx) if _match(i, filters)), key=lambda i: i["Name"])
    rows = [Row(i, not args.no_trunc) for i in infos]
    if args.quiet and not args.format:
        ctx.out.write("".join(r.ID + "\n" for r in rows))
        return 0
    ctx.out.write(format_rows(args.format, rows, DEFAULT, HEADERS))
    return 0
