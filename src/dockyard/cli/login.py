"""`dockyard login`: check credentials against a registry and store them as Docker does
(`~/.docker/config.json` or a credential helper)."""

from __future__ import annotations

import argparse
import sys

from dockyard.cli import Context

HELP = "Log in to a registry"
DEFAULT_SERVER = "docker.io"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.add_argument("-u", "--username", help="Username")
    p.add_argument("-p", "--password", help="Password")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.registry.credentials import CredentialStore

    if args.password is not None and args.password_stdin:
        ctx.err.write("--password and --password-stdin are mutually exclusive\n")
        return 1
    password = args.password
    if args.password_stdin:
        if not args.username:
            ctx.err.write("Must provide --username with --password-stdin\n")
            return 1
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        ctx.err.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    username = args.username
    if not username or password is None:
        prompted = _prompt(ctx, username)
        if prompted is None:
            return 1
        username, password = prompted
    server = args.server or DEFAULT_SERVER
    host = server.split("://", 1)[-1].split("/", 1)[0].lower()
    insecure = host in {h.lower() for h in ctx.engine.config.insecure_registries}
    CredentialStore().login(server, username, password or "", insecure=insecure)
    ctx.out.write("Login Succeeded\n")
    return 0


def _prompt(ctx: Context, username: str | None) -> tuple[str, str] | None:
    """Ask for what is missing on the terminal, as Docker does; refuse without one."""
    import getpass

    if not sys.stdin.isatty():
        ctx.err.write("Error: Cannot perform an interactive login from a non TTY device\n")
        return None
    if not username:
        ctx.out.write("Username: ")
        ctx.out.flush()
        username = sys.stdin.readline().strip()
        if not username:
            ctx.err.write("Error: Non-null Username Required\n")
            return None
    return username, getpass.getpass("Password: ")
