"""The /etc files Docker gives each container: hosts, hostname, resolv.conf.

The network library writes them (`network.dns`, per network mode: the container's own files in
its directory, the host's copies for `--network host`, the other container's for
`container:`); this module adds what the run flags ask for (`--add-host` lines, `--dns`,
`--dns-search`) and returns the bind mounts that place them over the image's files, so the
image never changes.

Invariants: files are rewritten in place (`dns.write_file`), so a bind mount into a running
container keeps seeing them. Known limit: on a user network the manager rewrites a member's
hosts file when a peer joins or leaves, and the `--add-host` lines are lost until the container
restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.container.model import Container
    from dockyard.network.setup import ContainerNetwork


def apply_flags(c: Container, net: ContainerNetwork) -> None:
    """`--add-host` lines appended to hosts; `--dns`/`--dns-search` in resolv.conf."""
    from dockyard.network import dns

    if net.mode.kind == "container":  # the other container's files: not ours to change
        return
    extra = c.host_config.get("ExtraHosts") or []
    if extra:
        lines = []
        for e in extra:
            name, _, addr = str(e).partition(":")
            lines.append(f"{addr}\t{name}\n")
        dns.write_file(net.hosts_path, net.hosts_path.read_text() + "".join(lines))
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
