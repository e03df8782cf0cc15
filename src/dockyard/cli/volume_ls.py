"""`dockyard volume ls`: list volumes as `docker volume ls` does (filters, -q, --format)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from dockyard.cli import Context
from dockyard.cli._output import parse_filters

if TYPE_CHECKING:
    from dockyard.volume.model import Volume

HELP = "List volumes"
DEFAULT = "table {{.Driver}}\t{{.Name}}"
HEADERS = {
    "Name": "VOLUME NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Group": "GROUP",
    "Availability": "AVAILABILITY",
    "Status": "STATUS",
}


class Row:
    """What a `--format` template sees for one volume (the Docker CLI's volumeContext; the
    field names are Docker's, hence CamelCase)."""

    def __init__(self, v: Volume) -> None:
        self.Name = v.name
        self.Driver = v.driver
        self.Scope = "local"
        self.Mountpoint = v.mountpoint
        self.Links = "N/A"
        self.Size = "N/A"
        self.Group = "N/A"
        self.Availability = "N/A"
        self.Status = "N/A"
        self._labels = v.labels

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self._labels.items()))

    def Label(self, name: str) -> str:
        return self._labels.get(name, "")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in HEADERS}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    p.add_argument("-f", "--filter", action="append", help="Provide filter values")
    p.add_argument("--format", help="Format output using a custom template")
    p.add_argument("--cluster", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.volume_common import volumes

    vols = volumes(ctx).list(parse_filters(args.filter))
    if args.quiet and not args.format:
        ctx.out.write("".join(v.name + "\n" for v in vols))
        return 0
    from dockyard.gotemplate import format_rows

    ctx.out.write(format_rows(args.format, [Row(v) for v in vols], DEFAULT, HEADERS))
    return 0
