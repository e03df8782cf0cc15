"""`dockyard manifest inspect`: print an image's manifest or index from its registry, as
`docker manifest inspect` does (the registry's JSON, tab-indented)."""

from __future__ import annotations

import argparse

from dockyard.cli import Context

HELP = "Display an image manifest, or manifest list"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME")
    p.add_argument("--insecure", action="store_true", help="Allow an insecure registry")
    p.add_argument("-v", "--verbose", action="store_true", help="(accepted, not implemented)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    import json

    from dockyard.errors import NotFound
    from dockyard.image.distribution import docker_wording, registry_clients
    from dockyard.reference import parse_reference
    from dockyard.registry.client import RegistryClient
    from dockyard.registry.credentials import CredentialStore
    from dockyard.registry.errors import RegistryError, RegistryNotFound

    ref = parse_reference(args.name).pinned()
    if args.insecure:
        client = RegistryClient(ref.domain, insecure=True, credentials=CredentialStore())
    else:
        client = registry_clients(ctx.engine, ref)[-1]
    try:
        fetched = client.get_manifest(ref.path, ref.digest or ref.tag or "latest")
    except RegistryNotFound:
        raise NotFound(f"no such manifest: {ref.familiar_string()}") from None
    except RegistryError as e:
        raise type(e)(docker_wording(e), status=e.status, codes=e.codes) from None
    finally:
        client.close()
    doc = json.loads(fetched.data)
    ctx.out.write(json.dumps(doc, indent="\t", ensure_ascii=False) + "\n")
    return 0
