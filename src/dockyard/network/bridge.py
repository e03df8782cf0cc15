"""Linux bridges and veth pairs: the data path of a bridge network.

Responsibility: create/delete a network's bridge (with the gateway address, MTU,
`route_localnet`), and plug/unplug a container: a veth pair whose host end (`<prefix><hash>`,
at most 15 characters) joins the bridge and whose other end moves into the container's netns,
renamed (`eth0`, `eth1`, ...), addressed, brought up, with the default route via the gateway.
On an IPv6 network the bridge also holds the IPv6 gateway and the container end an IPv6 address
(without duplicate address detection, so it is usable at once) and an IPv6 default route; both
ends get their link-local address from the kernel when they come up.

Plugging and unplugging use in-process rtnetlink (`linux.netlink`): no process is started per
container (a process start costs more than the kernel work). Bridges, made once per network,
are made with `ip`.

Invariants:
- names are derived from ids by hashing, so the same (container, network) always maps to the
  same veth name and repair can find it;
- `unplug` deletes the host end only; the kernel deletes the peer with it (and deletes both when
  the namespace goes away);
- on failure `plug` removes what it made before raising.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from dockyard.errors import Conflict
from dockyard.network import firewall, iproute

IFNAMSIZ = 15


def veth_name(prefix: str, container_id: str, network_id: str) -> str:
    """The host end's name for a container on a network (at most 15 characters)."""
    h = hashlib.sha256(f"{container_id}\0{network_id}".encode()).hexdigest()
    return f"{prefix}{h[: IFNAMSIZ - len(prefix)]}"


def mac_for(ip: IPv4Address) -> str:
    """Docker's scheme: 02:42 followed by the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


def ensure_bridge(
    name: str,
    subnet: IPv4Network,
    gateway: IPv4Address,
    mtu: int,
    v6: tuple[IPv6Network, IPv6Address] | None = None,
) -> bool:
    """Create the bridge if missing, with the gateway address(es); True if it was created now.

    `v6`: the IPv6 (subnet, gateway) of an IPv6 network.

    A link of that name that does not carry our gateway address is not ours (another state
    root's network with the same bridge name, or the host's): Conflict. Using it would put our
    containers on a subnet the host has no route for, and their traffic would leave by the
    default route."""
    if iproute.link_exists(name):
        have = iproute.addresses(4, dev=name)
        if f"{gateway}/{subnet.prefixlen}" not in have:
            raise Conflict(
                f"bridge {name} exists with {', '.join(have) or 'no IPv4 address'}, not this "
                f"network's {gateway}/{subnet.prefixlen}: another state root (or the host) uses "
                'that name; give this root its own network names (config.json "network", '
                "or DOCKYARD_NETWORK_TAG)"
            )
        return False
    cmds = [
        ["link", "add", "name", name, "mtu", str(mtu), "type", "bridge"],
        ["addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", name],
    ]
    if v6 is not None:
        cmds.append(["addr", "add", f"{v6[1]}/{v6[0].prefixlen}", "dev", name, "nodad"])
    cmds.append(["link", "set", "dev", name, "up"])
    if v6 is not None:
        # the link must exist for its sysctl (IPv6 may be off by default on new links)
        iproute.ip_batch(cmds[:1])
        iproute.write_sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "0")
        cmds = cmds[1:]
    iproute.ip_batch(cmds)
    firewall.set_route_localnet(name)
    return True


def delete_bridge(name: str) -> None:
    iproute.delete_link(name)


@dataclass(frozen=True)
class Plug:
    """Everything needed to plug one container interface into a bridge."""

    bridge: str
    veth: str
    netns: Path
    ifname: str
    ip: IPv4Address
    prefixlen: int
    gateway: IPv4Address
    mac: str
    mtu: int
    default_route: bool = True
    ip6: IPv6Address | None = None  # on an IPv6 network: the address, prefix and gateway
    prefixlen6: int = 0
    gateway6: IPv6Address | None = None


def plug(p: Plug) -> None:
    """Create the veth pair with its peer directly in the netns, and configure both ends.

    In-process rtnetlink (no `ip` process): host end enslaved and up; inside the namespace (on
    a thread that joined it) `lo` and the interface up, the address, the default route.
    """
    from dockyard.linux import netlink

    if iproute.link_exists(p.veth):  # the name is derived from ids: a leftover is stale
        unplug(p.veth)
    fd = os.open(p.netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with netlink.Rtnl() as rt:
            rt.add_veth(p.veth, p.ifname, fd, p.mtu, p.mac, rt.index(p.bridge))
    finally:
        os.close(fd)
    try:
        # Hairpin: a container may reach its own published port via a host address.
        Path(f"/sys/class/net/{p.veth}/brport/hairpin_mode").write_text("1")
        netlink.in_netns(str(p.netns), lambda: _configure_inside(p))
    except BaseException:
        unplug(p.veth)
        raise


def _configure_inside(p: Plug) -> None:
    from dockyard.linux import netlink

    with netlink.Rtnl() as rt:
        rt.set_up(1)  # lo is ifindex 1 in every network namespace
        idx = rt.index(p.ifname)
        rt.add_addr(idx, p.ip, p.prefixlen)
        if p.ip6 is not None:
            iproute.write_sysctl(f"net.ipv6.conf.{p.ifname}.disable_ipv6", "0")
            rt.add_addr(idx, p.ip6, p.prefixlen6)
        rt.set_up(idx)
        if p.default_route:
            rt.add_default_route(p.gateway, idx)
            if p.gateway6 is not None:
                rt.add_default_route(p.gateway6, idx)


def unplug(veth: str) -> None:
    """Delete the host end (the kernel deletes the peer); a missing link is not an error."""
    from dockyard.linux import netlink

    with netlink.Rtnl() as rt:
        try:
            rt.del_link(veth)
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise


def loopback_up(netns: Path) -> None:
    """`--network none`: the namespace keeps only `lo`, brought up."""
    from dockyard.linux import netlink

    def up() -> None:
        with netlink.Rtnl() as rt:
            rt.set_up(1)

    netlink.in_netns(str(netns), up)
