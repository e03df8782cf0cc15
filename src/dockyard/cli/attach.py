"""`dockyard attach`: follow a running container's output until it exits; exit with its code.

Output comes from the container's json log (what the supervisor records), from the moment of
attaching, on stdout and stderr as the container wrote them. Signals received are forwarded
to the container (`--sig-proxy`, default true). Standard input is not attached: the supervisor
owns the container's stdin once it runs (`--no-stdin` is accepted and is what happens).
"""

from __future__ import annotations

import argparse
import sys

from dockyard.cli import Context

HELP = "Attach local standard input, output, and error streams to a running container"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", help="Proxy all received signals to the process")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.cli.run import _proxy_signals
    from dockyard.container.logs import follow
    from dockyard.errors import Conflict

    svc = ctx.engine.containers
    c = svc.get(args.container)
    if c.state.status == "paused":
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if not c.state.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    if str(args.sig_proxy).lower() not in ("false", "0") and not c.config.get("Tty"):
        _proxy_signals(ctx, c.id)
    path = svc.dir(c.id) / f"{c.id}-json.log"
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for line in follow(path, lambda: svc.supervisor_alive(c.id)):
        sink = err if line.stream == "stderr" else out
        sink.write(line.data)
        sink.flush()
    return svc.wait(c.id)
