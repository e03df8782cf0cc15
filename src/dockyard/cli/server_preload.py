"""What the command server does once, before it serves: import everything, build every
parser, pay first-use costs; and how it tells that the code it imported changed on disk.

Invariants: nothing here opens a file that stays open, a database, or a thread (the server
forks workers afterwards); `stamp`/`unchanged` are the fallback when inotify is unavailable.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys


def preload() -> None:
    """Import every Dockyard module (but the adapters' entry points) and build the parsers."""
    import pkgutil

    import dockyard
    from dockyard import cli

    skip = ("dockyard.cli.server", "dockyard.__main__", "dockyard.runtime.cli")
    for info in pkgutil.walk_packages(dockyard.__path__, "dockyard."):
        if info.name in skip or info.name.endswith(".__main__"):
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(info.name)
    for name in cli.COMMANDS:
        with contextlib.suppress(Exception):
            cli.parser_for(name)
    with contextlib.suppress(Exception):
        _exercise()
    import gc

    gc.collect()
    gc.freeze()  # workers' garbage collections then leave the shared pages alone


def _exercise() -> None:
    """Pay, once, the first-use costs that every worker would pay again: regular expressions
    compiled on first use (references, units, flags), argparse's lazily built state."""
    from dockyard import cli, units
    from dockyard.cli._runopts import build_config
    from dockyard.reference import parse_reference

    for ref in ("busybox", "localhost:5000/a/b:1", f"a/b@sha256:{'0' * 64}", "a:1"):
        parse_reference(ref)
    units.parse_size("512m")
    _mod, parser = cli.parser_for("run")
    sample = ["--rm", "-e", "A=B", "-p", "8080:80", "-l", "a=b", "--memory", "64m", "img", "true"]
    build_config(parser.parse_args(sample))
    import sqlite3

    sqlite3.connect(":memory:").close()  # the library's one-time set-up (no file stays open)
    # Docker's default seccomp profile for the default capabilities, rendered and compiled to
    # BPF once (libseccomp loads here: no threads); supervisors inherit the in-process memo.
    from dockyard.container.seccomp import from_security_opts
    from dockyard.container.spec import capabilities
    from dockyard.linux.seccomp import compile_filter

    profile = from_security_opts(None, capabilities({}), privileged=False)
    if profile is not None:
        compile_filter(profile)


def package_dirs() -> list[str]:
    import dockyard

    out = []
    for top in dockyard.__path__:
        for d, subdirs, _files in os.walk(top):
            subdirs[:] = [s for s in subdirs if s != "__pycache__"]
            out.append(d)
    return out


def stamp() -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and (name == "dockyard" or name.startswith("dockyard.")):
            with contextlib.suppress(OSError):
                st = os.stat(f)
                out[f] = (st.st_mtime_ns, st.st_size)
    return out


def unchanged(stamp: dict[str, tuple[int, int]]) -> bool:
    """Every file of `stamp` as it was (the fallback when inotify is not available)."""
    for f, (mtime, size) in stamp.items():
        try:
            st = os.stat(f)
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_size) != (mtime, size):
            return False
    return True


def threads() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 1


def rehearse(root: str) -> None:
    """In a spare worker: run the common start path once without effects (parse typical
    flags, open the engine on `root`, look an image up, close everything again), so that
    the first command pays none of its first-touch costs. Opens nothing that stays open."""
    from dockyard import cli

    with contextlib.suppress(Exception):
        _mod, parser = cli.parser_for("run")
        parser.parse_args(["--rm", "--network", "none", "img", "true"])
        cli.parser_for("ps")[1].parse_args(["-a"])
    from dockyard.engine import Engine

    if not os.path.exists(os.path.join(root, "meta.db")):
        return  # a root being removed (or not made yet): never make files in it
    with contextlib.suppress(Exception):
        engine = Engine.open(root)
        try:
            with contextlib.suppress(Exception):
                engine.images.lookup_id("busybox")
        finally:
            engine.close()
