"""`dockyard logout`: forget a registry's stored credentials, as Docker does."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Log out from a registry"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", metavar="SERVER")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.registry.credentials import CredentialStore, server_key

    key = server_key(args.server or "docker.io")
    store = CredentialStore()
    if store.get(key) is None:
        ctx.out.write(f"Not logged in to {key}\n")
        return 0
    ctx.out.write(f"Removing login credentials for {key}\n")
    store.logout(key)
    return 0
