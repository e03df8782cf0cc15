"""The iptables fallback of `firewall`, used only when nftables is not installed.

Responsibility: the same state as the nft table (isolation, internal networks, outbound NAT,
DNAT for published ports from other hosts and from the host itself, loopback and hairpin
masquerade) expressed as chains of our own — `<PREFIX>-FORWARD` in `filter`,
`<PREFIX>-PREROUTING`, `-OUTPUT`, `-POSTROUTING`, `-PORTS` in `nat`, PREFIX = the table name in
capitals (`DOCKYARD`) — loaded with `iptables-restore --noflush`, so other chains stay untouched.
Our chains are hooked in by one jump rule each from the built-in chains (FORWARD, PREROUTING,
OUTPUT, POSTROUTING), added once and removed with the chains.

Invariants: a load re-declares (flushes) only our chains, in one `iptables-restore` run per
call; `delete` removes the jumps and then the chains; a missing chain is not an error there.
"""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.network import iproute
from dockyard.network.firewall import BridgeNet, Dnat

_JUMPS = (
    ("filter", "FORWARD", "FORWARD"),
    ("nat", "PREROUTING", "PREROUTING"),
    ("nat", "OUTPUT", "OUTPUT"),
    ("nat", "POSTROUTING", "POSTROUTING"),
)


def chain(prefix: str, name: str) -> str:
    return f"{prefix.upper()}-{name}"


def _forward(prefix: str, bridges: Sequence[BridgeNet]) -> list[str]:
    c = chain(prefix, "FORWARD")
    rules: list[str] = []
    for b in bridges:
        rules += [f"-A {c} -i {b.bridge} -o {o.bridge} -j DROP" for o in bridges if o is not b]
        if b.internal:
            rules.append(f"-A {c} -i {b.bridge} ! -o {b.bridge} -j DROP")
            rules.append(f"-A {c} -o {b.bridge} ! -i {b.bridge} -j DROP")
    return rules


def _ports(prefix: str, dnats: Sequence[Dnat]) -> list[str]:
    c = chain(prefix, "PORTS")
    rules: list[str] = []
    for d in dnats:
        dst = "" if d.host_ip in ("", "0.0.0.0") else f"-d {d.host_ip}/32 "
        rules.append(
            f"-A {c} {dst}-p {d.proto} -m {d.proto} --dport {d.host_port} "
            f"-j DNAT --to-destination {d.container_ip}:{d.container_port}"
        )
    return rules


def _postrouting(prefix: str, bridges: Sequence[BridgeNet]) -> list[str]:
    c = chain(prefix, "POSTROUTING")
    rules: list[str] = []
    for b in bridges:
        if b.internal:
            continue
        rules.append(f"-A {c} -s {b.subnet} ! -o {b.bridge} -j MASQUERADE")
        rules.append(f"-A {c} -s 127.0.0.0/8 -o {b.bridge} -j MASQUERADE")
        rules.append(
            f"-A {c} -s {b.subnet} -o {b.bridge} -m conntrack --ctstate DNAT -j MASQUERADE"
        )
    return rules


def render(prefix: str, bridges: Sequence[BridgeNet], dnats: Sequence[Dnat]) -> str:
    """`iptables-restore --noflush` input that replaces the contents of our chains."""
    pre, out, ports = chain(prefix, "PREROUTING"), chain(prefix, "OUTPUT"), chain(prefix, "PORTS")
    lines = ["*filter", f":{chain(prefix, 'FORWARD')} - [0:0]", *_forward(prefix, bridges)]
    lines += ["COMMIT", "*nat"]
    lines += [f":{chain(prefix, n)} - [0:0]" for n in ("PREROUTING", "OUTPUT", "POSTROUTING")]
    lines += [f":{ports} - [0:0]"]
    lines += [f"-A {c} -m addrtype --dst-type LOCAL -j {ports}" for c in (pre, out)]
    lines += _ports(prefix, dnats) + _postrouting(prefix, bridges) + ["COMMIT"]
    return "\n".join(lines) + "\n"


def render_ports(prefix: str, dnats: Sequence[Dnat]) -> str:
    ports = chain(prefix, "PORTS")
    return "\n".join(["*nat", f":{ports} - [0:0]", *_ports(prefix, dnats), "COMMIT"]) + "\n"


def _restore(cmd: str, text: str) -> None:
    iproute.run([f"{cmd}-restore", "--noflush", "--wait"], text)


def _has_jump(cmd: str, table: str, builtin: str, target: str) -> bool:
    out = iproute.run([cmd, "--wait", "-t", table, "-S", builtin], check=False)
    return f"-A {builtin} -j {target}" in out.splitlines()


def apply(
    prefix: str, bridges: Sequence[BridgeNet], dnats: Sequence[Dnat], cmd: str = "iptables"
) -> None:
    _restore(cmd, render(prefix, bridges, dnats))
    for table, builtin, ours in _JUMPS:
        target = chain(prefix, ours)
        if not _has_jump(cmd, table, builtin, target):
            iproute.run([cmd, "--wait", "-t", table, "-I", builtin, "1", "-j", target])


def apply_ports(
    prefix: str, bridges: Sequence[BridgeNet], dnats: Sequence[Dnat], cmd: str = "iptables"
) -> None:
    _restore(cmd, render_ports(prefix, dnats))


def delete(prefix: str, cmd: str = "iptables") -> None:
    for table, builtin, ours in _JUMPS:
        target = chain(prefix, ours)
        while _has_jump(cmd, table, builtin, target):
            iproute.run([cmd, "--wait", "-t", table, "-D", builtin, "-j", target], check=False)
    for table, names in (
        ("filter", ["FORWARD"]),
        ("nat", ["PREROUTING", "OUTPUT", "PORTS", "POSTROUTING"]),
    ):
        for name in names:
            iproute.run([cmd, "--wait", "-t", table, "-F", chain(prefix, name)], check=False)
            iproute.run([cmd, "--wait", "-t", table, "-X", chain(prefix, name)], check=False)


def exists(prefix: str, cmd: str = "iptables") -> bool:
    out = iproute.run([cmd, "--wait", "-t", "nat", "-S"], check=False)
    return f"-N {chain(prefix, 'PORTS')}" in out.splitlines()
