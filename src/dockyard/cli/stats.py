"""`dockyard stats`: a live (or, with --no-stream, one-shot) table of containers' resource use."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from dockyard.cli import Context
from dockyard.cli._output import print_rows

if TYPE_CHECKING:
    from dockyard.container.stats import Usage

HELP = "Display a live stream of container(s) resource usage statistics"
DEFAULT = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t"
    "{{.BlockIO}}\t{{.PIDs}}"
)
HEADERS = {
    "ID": "CONTAINER ID",
    "Container": "CONTAINER",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers")
    p.add_argument("--no-stream", action="store_true", help="Disable streaming stats")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("--format", help="Format output using a custom template")


def row(u: Usage, shown: str, no_trunc: bool) -> dict[str, Any]:
    from dockyard.units import bytes_size, human_size

    return {
        "ID": u.id if no_trunc else u.id[:12],
        "Container": shown,
        "Name": u.name,
        "CPUPerc": f"{u.cpu_percent:.2f}%",
        "MemUsage": f"{bytes_size(u.mem_usage)} / {bytes_size(u.mem_limit)}",
        "MemPerc": f"{u.mem_percent:.2f}%",
        "NetIO": f"{human_size(u.net_rx)} / {human_size(u.net_tx)}",
        "BlockIO": f"{human_size(u.block_read)} / {human_size(u.block_write)}",
        "PIDs": str(u.pids),
    }


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.stats import sample

    svc = ctx.engine.containers
    while True:
        if args.containers:
            chosen = [(svc.get(n), n) for n in args.containers]
        else:
            chosen = [
                (c, c.id[:12])
                for c in svc.list_containers()
                if args.all or c.state.status in ("running", "paused", "restarting")
            ]
        usages = sample([c for c, _ in chosen])
        rows = [row(u, shown, args.no_trunc) for u, (_, shown) in zip(usages, chosen, strict=True)]
        if not args.no_stream:
            ctx.out.write("\033[2J\033[H")  # clear the screen, as Docker's live view does
        print_rows(ctx.out, args.format, rows, DEFAULT, HEADERS)
        if args.no_stream:
            return 0
        ctx.out.flush()
        try:
            time.sleep(0.9)
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            return 0
