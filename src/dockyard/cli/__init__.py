"""The docker-compatible command line (layer L6).

`main()` parses only the global flags and the command name, then imports the one module that
implements the command (the table below), so `dockyard ps` pays for `ps` alone. A command
module exposes:

    HELP: str                                   one line for `dockyard --help`
    def configure(p: argparse.ArgumentParser)   its flags, named as Docker names them
    def run(args, ctx: Context) -> int          translate arguments, call the engine, print

Commands hold no business logic. Errors: a `DockyardError` prints as Docker prints daemon errors
(`Error response from daemon: ...` on stderr) and exits with the error's exit code; usage errors
exit 125 for run/create/exec style commands and 1 elsewhere, as Docker's CLI does.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from dockyard.engine import Engine

# command name -> module under dockyard.cli
COMMANDS: dict[str, str] = {
    "images": "images",
    "image ls": "images",
    "image list": "images",
    "inspect": "inspect",
    "image inspect": "inspect",
    "history": "history",
    "image history": "history",
    "tag": "tag",
    "image tag": "tag",
    "rmi": "rmi",
    "image rm": "rmi",
    "image remove": "rmi",
    "image prune": "image_prune",
    "import": "import_",
    "image import": "import_",
    "save": "save",
    "image save": "save",
    "load": "load",
    "image load": "load",
    "system df": "system_df",
    "version": "version",
    "run": "run",
    "container run": "run",
    "create": "create",
    "container create": "create",
    "start": "start",
    "container start": "start",
    "stop": "stop",
    "container stop": "stop",
    "restart": "restart",
    "container restart": "restart",
    "kill": "kill",
    "container kill": "kill",
    "rm": "rm",
    "container rm": "rm",
    "container remove": "rm",
    "pause": "pause",
    "container pause": "pause",
    "unpause": "pause",
    "container unpause": "pause",
    "wait": "wait",
    "container wait": "wait",
    "rename": "rename",
    "container rename": "rename",
    "logs": "logs",
    "container logs": "logs",
    "ps": "ps",
    "container ls": "ps",
    "container list": "ps",
    "container ps": "ps",
    "container inspect": "inspect",
    "exec": "exec",
    "container exec": "exec",
    "pull": "pull",
    "image pull": "pull",
    "push": "push",
    "image push": "push",
    "login": "login",
    "logout": "logout",
    "manifest inspect": "manifest_inspect",
    "volume create": "volume_create",
    "volume ls": "volume_ls",
    "volume list": "volume_ls",
    "volume inspect": "volume_inspect",
    "volume rm": "volume_rm",
    "volume remove": "volume_rm",
    "volume prune": "volume_prune",
    "network create": "network_create",
    "network ls": "network_ls",
    "network list": "network_ls",
    "network inspect": "network_inspect",
    "network rm": "network_rm",
    "network remove": "network_rm",
    "network prune": "network_prune",
    "network connect": "network_connect",
    "network disconnect": "network_disconnect",
    "port": "port",
    "container port": "port",
    "cp": "cp",
    "container cp": "cp",
    "diff": "diff",
    "container diff": "diff",
    "commit": "commit",
    "container commit": "commit",
    "export": "export",
    "container export": "export",
    "top": "top",
    "container top": "top",
    "stats": "stats",
    "container stats": "stats",
    "attach": "attach",
    "container attach": "attach",
    "container prune": "container_prune",
    "build": "build",
    "image build": "build",
    "builder prune": "builder_prune",
}
# groups whose first argument is a subcommand
GROUPS = ("image", "system", "container", "network", "volume", "builder", "manifest")


class Context:
    """What a command needs besides its arguments: the engine and the output streams."""

    def __init__(
        self, root: str | None, out: IO[str], err: IO[str], early: object = None, command: str = ""
    ) -> None:
        self.root = root
        self.command = command  # as typed, e.g. "image inspect", "unpause"
        self.out = out
        self.err = err
        self.early = early  # what `_early` started for the command (run: its supervisor)

    @cached_property
    def engine(self) -> Engine:
        from dockyard.engine import Engine

        return Engine.open(self.root)


def _parser(prog: str, description: str | None, usage_exit: int) -> argparse.ArgumentParser:
    """argparse with Docker's exit code for bad usage (125 for run/create/exec style commands,
    1 for others: the command module's USAGE_EXIT) and Docker's error layout. argparse loads
    here, not at import: `run` forks its supervisor before (see `_early`)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            sys.stderr.write(f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")
            sys.exit(usage_exit)

    return Parser(prog=prog, description=description, add_help=False)


def _early(modname: str, root: str | None) -> object:
    """Work a command starts before its module and argparse load. `run`: its supervisor, forked
    now so that it loads the start path on the other core while this process parses flags,
    looks up the image and creates the container — or already forked and warm, when a command
    server's spare worker made one ahead (`container.prefork`); any other command lets that
    one go."""
    prefork = sys.modules.get("dockyard.container.prefork")
    ready = prefork.take_ready() if prefork is not None else None
    if modname == "run":
        if ready is not None:
            return ready
        from dockyard.container.prefork import Prefork

        return Prefork(root)
    if ready is not None:
        ready.close(wait=False)
    return None


def _split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    if not argv:
        return None, []
    if argv[0] in GROUPS and len(argv) > 1 and f"{argv[0]} {argv[1]}" in COMMANDS:
        return f"{argv[0]} {argv[1]}", argv[2:]
    return argv[0], argv[1:]


def _usage(out: IO[str]) -> None:
    out.write("Usage:  dockyard [OPTIONS] COMMAND\n\nA container engine with Docker's commands\n\n")
    out.write("Options:\n      --root string   State root (default /var/lib/dockyard)\n\n")
    out.write("Commands:\n")
    for name in sorted({k for k in COMMANDS if " " not in k}):
        out.write(f"  {name}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    root: str | None = None
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a == "--root" and args:
            root = args.pop(0)
        elif a.startswith("--root="):
            root = a.split("=", 1)[1]
        elif a in ("-h", "--help"):
            _usage(sys.stdout)
            return 0
        elif a in ("-v", "--version"):
            from dockyard import __version__

            print(f"Dockyard version {__version__}")
            return 0
        elif a in ("-D", "--debug"):
            os.environ["DOCKYARD_DEBUG"] = "1"
        else:
            sys.stderr.write(f"unknown flag: {a}\nSee 'dockyard --help'.\n")
            return 125
    name, rest = _split_command(args)
    if name is None:
        _usage(sys.stdout)
        return 0
    modname = COMMANDS.get(name)
    if modname is None:
        sys.stderr.write(f"dockyard: '{name}' is not a dockyard command.\nSee 'dockyard --help'\n")
        return 1
    early = _early(modname, root)
    mod, parser = parser_for(name)
    ns = parser.parse_args(rest)
    ctx = Context(root, sys.stdout, sys.stderr, early, command=name)
    return run_command(mod.run, ns, ctx)


_PARSERS: dict[str, tuple[Any, argparse.ArgumentParser]] = {}


def parser_for(name: str) -> tuple[Any, argparse.ArgumentParser]:
    """The module of command `name` and its argument parser, built once per process (the
    command server builds them all before it forks workers)."""
    hit = _PARSERS.get(name)
    if hit is not None:
        return hit
    mod = importlib.import_module(f"dockyard.cli.{COMMANDS[name]}")
    parser = _parser(f"dockyard {name}", getattr(mod, "HELP", None), getattr(mod, "USAGE_EXIT", 1))
    parser.add_argument("--help", action="help", help="Print usage")
    mod.configure(parser)
    _PARSERS[name] = (mod, parser)
    return mod, parser


def run_command(fn: object, ns: argparse.Namespace, ctx: Context) -> int:
    from dockyard.errors import DockyardError

    try:
        rc = fn(ns, ctx)  # type: ignore[operator]
        return int(rc or 0)
    except DockyardError as e:
        ctx.out.flush()
        ctx.err.write(f"Error response from daemon: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if "engine" in ctx.__dict__:
            ctx.engine.close()
