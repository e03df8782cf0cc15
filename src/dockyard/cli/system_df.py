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

    usage = ctx.engine.images.disk_usage()
    total = ctx.engine.images.total_size()
    active = [u for u in usage if u.containers]
    active_size = sum(u.unique for u in active)
    rows = [
        {
            "Type": "Images",
            "TotalCount": str(len(usage)),
            "Active": str(len(active)),
            "Size": human_size(total),
            "Reclaimable": _reclaimable(total - active_size, total),
        },
        _containers_row(ctx),
        _volumes_row(ctx),
        _build_cache_row(ctx),
    ]
    if not args.verbose:
        print_rows(ctx.out, args.format, rows, DEFAULT, HEADERS)
        return 0
    ctx.out.write("Images space usage:\n\n")
    irows = []
    for u in usage:
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


def _containers_row(ctx: Context) -> dict[str, str]:
    from dockyard.container.fsops import upper_size
    from dockyard.units import human_size

    svc = ctx.engine.containers
    cs = svc.list_containers()
    sizes = {c.id: upper_size(svc, c.id) for c in cs}
    total = sum(sizes.values())
    stopped = sum(sizes[c.id] for c in cs if not c.state.running)
    active = sum(1 for c in cs if c.state.running)
    return {
        "Type": "Containers",
        "TotalCount": str(len(cs)),
        "Active": str(active),
        "Size": human_size(total),
        "Reclaimable": _reclaimable(stopped, total),
    }


def _volumes_row(ctx: Context) -> dict[str, str]:
    from dockyard.units import human_size

    vs = ctx.engine.volumes
    vols = vs.list()
    sizes = {v.name: vs.size(v.name) for v in vols}
    used = {v.name for v in vols if ctx.engine.containers.users_of_volume(v.name)}
    total = sum(sizes.values())
    free = sum(n for name, n in sizes.items() if name not in used)
    return {
        "Type": "Local Volumes",
        "TotalCount": str(len(vols)),
        "Active": str(len(used)),
        "Size": human_size(total),
        "Reclaimable": _reclaimable(free, total),
    }


def _build_cache_row(ctx: Context) -> dict[str, str]:
    """Build-cache entries and the bytes only they keep alive (layers no image uses)."""
    from dockyard.units import human_size

    eng = ctx.engine
    count = eng.meta.build_cache_count()
    _blobs, snaps = eng.meta.build_cache_roots()
    in_images = {str(c) for img in eng.images.list_images() for c in img.chain}
    size = sum(eng.snapshots.usage(c) for c in snaps - in_images if eng.snapshots.has(c))
    return {
        "Type": "Build Cache",
        "TotalCount": str(count),
        "Active": "0",
        "Size": human_size(size),
        "Reclaimable": human_size(size),
    }
