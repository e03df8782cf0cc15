"""The /etc files Docker writes for each container: hosts, hostname, resolv.conf.

They live in the container's directory and are bind-mounted over the image's files, so the
image never changes. resolv.conf is the host's with loopback nameservers removed (they mean
nothing inside a network namespace), as Docker does; with none left, Docker's defaults apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.container.model import Container

_DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")


def resolv_conf(host_text: str, host_network: bool) -> str:
    if host_network:
        return host_text
    lines = []
    servers = 0
    for line in host_text.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1:
            if parts[1].startswith("127.") or parts[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += [f"nameserver {s}" for s in _DEFAULT_DNS]
    return "\n".join(lines) + "\n"


def hosts(hostname: str, ip: str | None, extra: list[str]) -> str:
    out = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    for e in extra:
        name, _, addr = e.partition(":")
        out.append(f"{addr}\t{name}")
    if ip:
        out.append(f"{ip}\t{hostname}")
    return "\n".join(out) + "\n"


def write(
    d: Path, c: Container, *, host_network: bool, ip: str | None = None
) -> list[dict[str, Any]]:
    """Write the files into the container dir; return the bind mounts that place them."""
    hostname = c.config.get("Hostname") or c.id[:12]
    try:
        host_resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    files = {
        "hostname": hostname + "\n",
        "hosts": hosts(hostname, ip, c.host_config.get("ExtraHosts") or [])
        if not host_network
        else Path("/etc/hosts").read_text(),
        "resolv.conf": resolv_conf(host_resolv, host_network),
    }
    mounts = []
    for name, text in files.items():
        p = d / name
        p.write_text(text)
        mounts.append(
            {
                "destination": f"/etc/{name}",
                "type": "bind",
                "source": str(p),
                "options": ["rbind", "rprivate"],
            }
        )
    return mounts
