"""`dockyard builder prune`: drop the build cache, then collect what only it kept alive."""

from __future__ import annotations

import argparse

from dockyard.cli import Context
from dockyard.cli._output import confirm

HELP = "Remove build cache"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused build cache")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", help="Provide filter values")
    p.add_argument("--keep-storage", help="Amount of disk space to keep for cache")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.build.cache import BuildCache
    from dockyard.units import human_size

    if not args.force:
        what = "all build cache" if args.all else "all dangling build cache"
        if not confirm(
            f"WARNING! This will remove {what}.\nAre you sure you want to continue?", ctx.out
        ):
            return 0
    engine = ctx.engine
    BuildCache(engine.meta).prune()
    freed = _remove_dir_contents(engine.root / "build" / "cache-mounts")
    if args.all:
        freed += _remove_dir_contents(engine.root / "build" / "build-hashcache")
    freed += engine.images.gc()
    ctx.out.write(f"Total reclaimed space: {human_size(freed)}\n")
    return 0


def _remove_dir_contents(path: object) -> int:
    import contextlib
    import os
    import shutil
    from pathlib import Path

    base = Path(str(path))
    if not base.is_dir():
        return 0
    total = 0
    for name in os.listdir(base):
        p = base / name
        for dirpath, _dirs, files in os.walk(p):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return total
