"""`dockyard logs`: a container's stdout/stderr from its json-file log."""

from __future__ import annotations

import argparse
import sys
import time

from dockyard.cli import Context

HELP = "Fetch the logs of a container"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--details", action="store_true")


def _when(text: str | None) -> float | None:
    """Docker's --since/--until: RFC 3339, unix seconds, or a duration like 10m."""
    from dockyard.errors import InvalidArgument
    from dockyard.units import parse_time

    if not text:
        return None
    if text.replace(".", "", 1).isdigit():
        return float(text)
    units = {"s": 1, "m": 60, "h": 3600}
    if text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    dt = parse_time(text)
    if dt is None:
        raise InvalidArgument(f'invalid value for "since": {text}')
    return dt.timestamp()


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.container.logs import follow, read_logs

    svc = ctx.engine.containers
    c = svc.get(args.container)
    path = svc.dir(c.id) / f"{c.id}-json.log"
    tail = None if args.tail == "all" else int(args.tail)
    out, err = sys.stdout.buffer, sys.stderr.buffer

    def emit(stream: str, data: bytes, ts: str) -> None:
        sink = err if stream == "stderr" else out
        if args.timestamps:
            sink.write(ts.encode() + b" ")
        sink.write(data)
        sink.flush()

    for line in read_logs(path, tail=tail, since=_when(args.since), until=_when(args.until)):
        emit(line.stream, line.data, line.time)
    if args.follow:
        for line in follow(path, lambda: svc.supervisor_alive(c.id)):
            emit(line.stream, line.data, line.time)
    return 0
