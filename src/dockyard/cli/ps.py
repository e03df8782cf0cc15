"""`dockyard ps`: list containers as `docker ps` does."""

from __future__ import annotations

import argparse
import time

from dockyard.cli import Context
from dockyard.cli._output import parse_filters, print_rows

HELP = "List containers"
DEFAULT = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "RunningFor": "CREATED",
    "CreatedAt": "CREATED AT",
    "Status": "STATUS",
    "Ports": "PORTS",
    "Names": "NAMES",
    "Size": "SIZE",
    "State": "STATE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all containers")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-f", "--filter", action="append", help="Filter output based on conditions")
    p.add_argument("--format", help="Format output using a custom template")


def _ellipsis(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.query import select
    from dockyard.container.view import command_text, port_list, ports_text, status_text
    from dockyard.gostr import go_quote
    from dockyard.units import parse_time, since

    containers = ctx.engine.containers.list_containers()
    filters = parse_filters(args.filter)
    show_all = args.all or args.latest or args.last >= 0 or "status" in filters
    if not show_all:
        containers = [
            c for c in containers if c.state.status in ("running", "paused", "restarting")
        ]
    containers = select(containers, filters, ctx.engine.containers.lookup)
    if args.latest:
        containers = containers[:1]
    elif args.last >= 0:
        containers = containers[: args.last]
    now = time.time()
    rows = []
    for c in containers:
        cmd = command_text(c)
        created = parse_time(c.created)
        labels = c.config.get("Labels") or {}
        rows.append(
            {
                "ID": c.id if args.no_trunc else c.id[:12],
                "Image": c.image,
                "Command": go_quote(cmd if args.no_trunc else _ellipsis(cmd, 20)),
                "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if created else "",
                "RunningFor": since(c.created, now),
                "Status": status_text(c, now),
                "State": c.state.status,
                "Ports": ports_text(port_list(c)),
                "Names": c.name,
                "Size": "0B",
                "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
                "Mounts": "",
                "Networks": ",".join((c.network or {}).get("Endpoints") or {})
                or c.host_config.get("NetworkMode")
                or "",
                "LocalVolumes": "0",
            }
        )
    if args.quiet and not args.format:
        for r in rows:
            ctx.out.write(r["ID"] + "\n")
        return 0
    fmt = args.format
    default = DEFAULT + ("\t{{.Size}}" if args.size else "")
    print_rows(ctx.out, fmt, rows, default, HEADERS)
    return 0
