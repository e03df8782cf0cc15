"""`dockyard inspect` / `dockyard image inspect`: Docker-shaped JSON or a Go template."""

from __future__ import annotations

import argparse
from typing import Any

from dockyard.cli import Context
from dockyard.cli._output import print_json, print_template

HELP = "Return low-level information on Docker objects"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    p.add_argument("-f", "--format", help="Format output using a custom template")
    p.add_argument("--type", choices=["image", "container", "network", "volume"], default=None)
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")


def _find(ctx: Context, name: str, kind: str | None) -> dict[str, Any]:
    from dockyard.errors import NotFound
    from dockyard.image.inspect import inspect_image

    if kind in (None, "container"):
        from dockyard.container.view import inspect_container

        try:
            c = ctx.engine.containers.get(name)
            return inspect_container(c, str(ctx.engine.root))
        except NotFound:
            if kind == "container":
                raise
    img = ctx.engine.images.resolve(name)
    return inspect_image(img, manifest_size=ctx.engine.content.size(img.manifest_digest))


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import NotFound

    group = ctx.command.split()[0] if " " in ctx.command else ""
    if args.type is None and group in ("image", "container"):
        args.type = group  # `image inspect` looks at images only, `container inspect` likewise
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for n in args.names:
        try:
            found.append(_find(ctx, n, args.type))
        except NotFound:
            missing.append(n)
    if args.format:
        print_template(ctx.out, args.format, found)
    else:
        print_json(ctx.out, found)
    for n in missing:
        if args.type == "image":
            ctx.err.write(f"Error response from daemon: No such image: {n}\n")
        else:
            ctx.err.write(f"Error: No such object: {n}\n")
    return 1 if missing else 0
