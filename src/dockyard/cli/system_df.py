"""`dockyard system df`: disk usage of images, containers, volumes and build cache."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._output import print_rows

HELP = "Show docker disk usage"
DEFAULT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
HEADERS = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}
VERBOSE_IMAGES = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}"
    "\t{{.UniqueSize}}\t{{.Containers}}"
)
VERBOSE_HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "Size": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "Containers": "CONTAINERS",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed information")
    p.add_argument("--format", help="Format output using a custom template")


def _reclaimable(part: int, total: int) -> str:
    from dockyard.units import human_size

    if total <= 0:
        return human_size(part)
    return f"{human_size(part)} ({int(part * 100 / total)}%)"


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.image.query import repo_tag_pairs
    from dockyard.units import human_size, since
    from dockyard.usage import disk_usage

    rows = [
        {
            "Type": u.kind,
            "TotalCount": str(u.count),
            "Active": str(u.active),
            "Size": human_size(u.size),
            "Reclaimable": _reclaimable(u.reclaimable, u.size)
            if u.kind in ("Images", "Containers", "Local Volumes")
            else human_size(u.reclaimable),
        }
        for u in disk_usage(ctx.engine)
    ]
    if not args.verbose:
        print_rows(ctx.out, args.format, rows, DEFAULT, HEADERS)
        return 0
    ctx.out.write("Images space usage:\n\n")
    irows = []
    for u in ctx.engine.images.disk_usage():
        for repo, tag, _ in repo_tag_pairs(u.image):
            irows.append(
                {
                    "Repository": repo,
                    "Tag": tag,
                    "ID": u.image.id.short,
                    "CreatedSince": since(u.image.created),
                    "Size": human_size(u.size),
                    "SharedSize": human_size(u.shared),
                    "UniqueSize": human_size(u.unique),
                    "Containers": str(u.containers),
                }
            )
    print_rows(ctx.out, None, irows, VERBOSE_IMAGES, VERBOSE_HEADERS)
    return 0
