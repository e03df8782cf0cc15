"""The /etc files Docker gives each container: hosts, hostname, resolv.conf.

The network library writes them (`network.dns`, per network mode: the container's own files in
its directory, the host's copies for `--network host`, the other container's for
`container:`); this module gives it the `--add-host` entries to record (`extra_hosts`: the
network library renders them into every version of the hosts file, including the rewrites when
a peer joins or leaves a user network), applies `--dns`/`--dns-search` to resolv.conf, and
returns the bind mounts that place the files over the image's, so the image never changes.

Invariants: files are rewritten in place (`dns.write_file`), so a bind mount into a running
container keeps seeing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.container.model import Container
    from dockyard.network.setup import ContainerNetwork


def extra_hosts(c: Container) -> list[str]:
    """The `--add-host` entries (`ExtraHosts`: "name:ip") for the network library to record."""
    return [str(e) for e in c.host_config.get("ExtraHosts") or []]


def apply_flags(c: Container, net: ContainerNetwork) -> None:
    """`--dns`/`--dns-search` in resolv.conf (`--add-host`: see `extra_hosts`)."""
    from dockyard.network import dns

    if net.mode.kind == "container":  # the other container's files: not ours to change
        return
    servers = c.host_config.get("Dns") or []
    search = c.host_config.get("DnsSearch") or []
    if servers or search:
        text = dns.render_resolv(dns.host_resolv_text(), dns=servers, search=search)
        dns.write_file(net.resolv_path, text)


def mounts(net: ContainerNetwork) -> list[dict[str, Any]]:
    """Bind mounts placing the network's hosts, hostname and resolv.conf in /etc."""
    out = []
    for name, path in (
        ("hosts", net.hosts_path),
        ("hostname", net.hostname_path),
        ("resolv.conf", net.resolv_path),
    ):
        if path.exists():
            out.append(
                {
                    "destination": f"/etc/{name}",
                    "type": "bind",
                    "source": str(path),
                    "options": ["rbind", "rprivate"],
                }
            )
    return out
