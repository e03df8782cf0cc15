"""`dockyard history`: the layers of an image, newest first."""

from __future__ import annotations

import argparse
import time

from dockyard.cli import Context
from dockyard.cli._output import print_rows

HELP = "Show the history of an image"
DEFAULT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-H", "--human", default="true", help="Print sizes and dates in human format")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--format", help="Format output using a custom template")


def _ellipsis(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.image.inspect import history_rows
    from dockyard.units import human_size, parse_time, since

    img = ctx.engine.images.resolve(args.image)
    human = str(args.human).lower() not in ("false", "0")
    now = time.time()
    rows = []
    for r in history_rows(img):
        rid = r["Id"]
        if rid != "<missing>" and not args.no_trunc:
            rid = rid[7:19]
        created = parse_time(r["Created"])
        created_by = r["CreatedBy"].replace("\t", " ")
        rows.append(
            {
                "ID": rid,
                "CreatedSince": since(r["Created"], now) if human else r["Created"],
                "CreatedAt": created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else "",
                "CreatedBy": created_by if args.no_trunc else _ellipsis(created_by, 45),
                "Size": human_size(r["Size"]) if human else str(r["Size"]),
                "Comment": r["Comment"],
            }
        )
    if args.quiet and not args.format:
        for row in rows:
            ctx.out.write(row["ID"] + "\n")
        return 0
    print_rows(ctx.out, args.format, rows, DEFAULT, HEADERS)
    return 0
