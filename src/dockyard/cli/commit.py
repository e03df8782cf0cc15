"""`dockyard commit`: a new image from a container's changes."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Create a new image from a container's changes"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", nargs="?", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--author", default="", help='Author (e.g., "John <john@a.com>")')
    p.add_argument(
        "-c", "--change", action="append", default=[], help="Apply Dockerfile instruction"
    )
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument(
        "-p",
        "--pause",
        nargs="?",
        const="true",
        default="true",
        action=_BoolFlag,
        help="Pause container during commit (default true)",
    )


_BOOLS = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}


class _BoolFlag(argparse.Action):
    """A Go-style bool flag: `-p`, `--pause=false`. A following word that is not a bool is a
    positional argument the flag swallowed; it is handed back in `pushed_back`."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        if text.lower() in _BOOLS:
            setattr(namespace, self.dest, _BOOLS[text.lower()])
            return
        setattr(namespace, self.dest, True)
        namespace.pushed_back = text


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.commit import CommitOptions, commit
    from dockyard.errors import InvalidArgument
    from dockyard.reference import repo_tag_reference

    pushed = getattr(args, "pushed_back", None)
    if pushed is not None:  # `commit -p CONTAINER [REPO]`
        if args.repository is not None:
            raise InvalidArgument('"commit" requires at least 1 and at most 2 arguments')
        args.container, args.repository = pushed, args.container
    if args.container is None:
        raise InvalidArgument('"commit" requires at least 1 and at most 2 arguments')
    ref = repo_tag_reference(args.repository) if args.repository else None
    opts = CommitOptions(
        changes=tuple(args.change),
        message=args.message,
        author=args.author,
        pause=args.pause is True or args.pause == "true",
    )
    img = commit(ctx.engine.containers, args.container, ref, opts)
    ctx.out.write(f"{img.id}\n")
    return 0
