"""`dockyard images`: list images as `docker images` does."""

from __future__ import annotations

import argparse
import time

from dockyard.cli import Context
from dockyard.cli._output import parse_filters, print_rows

HELP = "List images"
DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Digest": "DIGEST",
    "Containers": "CONTAINERS",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="Show all images")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-f", "--filter", action="append", help="Filter output")
    p.add_argument("--format", help="Format output using a custom template")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.image.query import repo_tag_pairs, select
    from dockyard.units import human_size, parse_time, since

    svc = ctx.engine.images
    filters = parse_filters(args.filter)
    if args.repository:
        filters.setdefault("reference", []).append(args.repository)
    imgs = select(svc.list_images(), filters, svc.resolve)
    imgs.sort(key=lambda i: (i.created, i.added), reverse=True)
    now = time.time()
    rows = []
    for img in imgs:
        iid = str(img.id) if args.no_trunc else img.id.short
        created = parse_time(img.created)
        for repo, tag, digest in repo_tag_pairs(img):
            rows.append(
                {
                    "Containers": "N/A",
                    "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if created else "",
                    "CreatedSince": since(img.created, now),
                    "Digest": digest,
                    "ID": iid,
                    "Repository": repo,
                    "SharedSize": "N/A",
                    "Size": human_size(img.size),
                    "Tag": tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human_size(img.size),
                }
            )
    if args.quiet and not args.format:
        for r in rows:
            ctx.out.write(r["ID"] + "\n")
        return 0
    print_rows(ctx.out, args.format, rows, DIGESTS if args.digests else DEFAULT, HEADERS)
    return 0
