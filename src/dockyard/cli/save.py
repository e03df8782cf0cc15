"""`dockyard save [-o FILE] IMAGE [IMAGE...]`: Docker's `save`, flags, messages and exit codes.

Without `-o` the archive streams to stdout, which must not be a terminal. With `-o` it is
written to a temporary file beside FILE and renamed into place when complete (Docker's
CopyToFile), so a failed save never leaves a half archive under FILE.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile

from dockyard.cli import Context

HELP = "Save one or more images to a tar archive (streamed to STDOUT by default)"
_TERMINAL = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.image import archive_save

    if not args.output:
        out = getattr(ctx.out, "buffer", None)
        if out is None or ctx.out.isatty():
            ctx.err.write(_TERMINAL + "\n")
            return 1
        ctx.out.flush()
        archive_save.save(ctx.engine.images, args.images, out)
        return 0
    parent = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(parent):
        ctx.err.write(
            f'failed to save image: invalid output path: directory "{parent}" does not exist\n'
        )
        return 1
    items = archive_save.select_images(ctx.engine.images, args.images)
    fd, tmp = tempfile.mkstemp(prefix=".dockyard_temp_", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            archive_save.write_archive(ctx.engine.images, items, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return 0
