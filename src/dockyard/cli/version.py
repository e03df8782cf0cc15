"""`dockyard version`: client and engine versions."""

from __future__ import annotations

import argparse
import platform
import sys

from dockyard.cli import Context

HELP = "Show the Dockyard version information"
API_VERSION = "1.44"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", help="Format output using a custom template")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard import __version__

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    info = {
        "Client": {
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "GoVersion": f"python{sys.version.split()[0]}",
            "Os": "linux",
            "Arch": arch,
        },
        "Server": {
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": "1.24",
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": platform.release(),
        },
    }
    if args.format:
        from dockyard.cli._output import print_template

        print_template(ctx.out, args.format, [info])
        return 0
    c, s = info["Client"], info["Server"]
    ctx.out.write(
        f"Client:\n Version:           {c['Version']}\n API version:       {c['ApiVersion']}\n"
        f" Python version:    {c['GoVersion']}\n OS/Arch:           {c['Os']}/{c['Arch']}\n\n"
        f"Server: Dockyard Engine\n Engine:\n  Version:          {s['Version']}\n"
        f"  API version:      {s['ApiVersion']} (minimum version {s['MinAPIVersion']})\n"
        f"  OS/Arch:          {s['Os']}/{s['Arch']}\n  Kernel Version:   {s['KernelVersion']}\n"
    )
    return 0
