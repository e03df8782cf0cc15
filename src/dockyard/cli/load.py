"""`dockyard load [-i FILE] [-q]`: Docker's `load`, flags, messages and exit codes.

Reads a Docker or OCI image archive (plain, gzip or zstd) from FILE or stdin and prints, as
Docker does, `Loaded image: NAME` per name and `Loaded image ID: sha256:…` per unnamed image
(and a note when a name moved away from another image). `-q` is accepted for compatibility:
no progress is drawn either way.
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from dockyard.cli import Context

HELP = "Load an image from a tar archive or STDIN"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", default="", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.image import archive_load

    stream: BinaryIO
    if args.input:
        try:
            stream = open(args.input, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            ctx.err.write(f"open {args.input}: {(e.strerror or str(e)).lower()}\n")
            return 1
    else:
        if sys.stdin is None or sys.stdin.isatty():
            ctx.err.write("requested load from stdin, but stdin is empty\n")
            return 1
        stream = sys.stdin.buffer
    try:
        loaded = archive_load.load(ctx.engine.images, stream)
    finally:
        if args.input:
            stream.close()
    for item in loaded:
        for ref in item.names:
            old = item.replaced.get(ref.string())
            if old is not None:
                ctx.out.write(
                    f"The image {ref.familiar_string()} already exists, renaming the old one "
                    f"with ID {old} to empty string\n"
                )
            ctx.out.write(f"Loaded image: {ref.familiar_string()}\n")
        if not item.names:
            ctx.out.write(f"Loaded image ID: {item.image_id}\n")
    return 0
