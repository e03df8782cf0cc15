"""The one place network code runs host tools: `ip` (iproute2), `nsenter` and `nft`.

(`nft` scripts go through libnftables in-process when the library is installed.)

Responsibility: run a tool with arguments (never a shell), feed batches on stdin, parse `-j`
JSON, and map failures to typed errors; read and write `net.*` sysctls.

Invariants:
- no shell, ever: arguments are lists; a batch is a list of argument lists joined by newlines,
  and an argument with whitespace or a newline is refused (it would split a batch line);
- a missing tool raises `Unavailable`; a failing one raises `DockyardError` carrying the tool's
  stderr; callers that clean up pass `check=False`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument, Unavailable

IP = "ip"
NSENTER = "nsenter"
NFT = "nft"


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run a tool; return its stdout. Raises on failure unless `check` is false."""
    import subprocess

    try:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise Unavailable(f"{argv[0]} is not installed (needed for container networking)") from None
    if check and proc.returncode != 0:
        what = " ".join(argv) if stdin is None else f"{' '.join(argv)} <<< {stdin.strip()!r}"
        raise DockyardError(f"{what}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    return proc.stdout


def nft(script: str, check: bool = True) -> None:
    """Load an nft script in one transaction: in-process through libnftables when present
    (`linux.netlink.nft_run`), else with the `nft` tool."""
    from dockyard.linux import netlink

    if not netlink.have_libnftables():
        run([NFT, "-f", "-"], script, check=check)
        return
    try:
        netlink.nft_run(script)
    except OSError as e:
        if check:
            raise DockyardError(f"nft -f - <<< {script.strip()!r}: {e}") from None


def _batch_line(cmd: Sequence[str]) -> str:
    for arg in cmd:
        if not arg or any(c.isspace() for c in arg):
            raise InvalidArgument(f"invalid argument for ip batch: {arg!r}")
    return " ".join(cmd)


def ip_batch(cmds: Sequence[Sequence[str]], netns: Path | None = None, check: bool = True) -> None:
    """Run `ip` commands (without the leading `ip`) in one process, optionally inside a netns.

    With `check=False` (`ip -force`) every line runs even when earlier ones fail.
    """
    if not cmds:
        return
    argv = [IP] + ([] if check else ["-force"]) + ["-batch", "-"]
    if netns is not None:
        argv = [NSENTER, f"--net={netns}", "--", *argv]
    run(argv, "\n".join(_batch_line(c) for c in cmds) + "\n", check=check)


def ip_json(args: Sequence[str], netns: Path | None = None) -> list[dict[str, Any]]:
    """`ip -j ARGS` parsed; `[]` when the output is empty."""
    argv = [IP, "-j", *args]
    if netns is not None:
        argv = [NSENTER, f"--net={netns}", "--", *argv]
    out = run(argv).strip()
    data = json.loads(out) if out else []
    return [d for d in data if isinstance(d, dict)]


def links(netns: Path | None = None) -> list[dict[str, Any]]:
    return ip_json(["-d", "link", "show"], netns)


def link_names(netns: Path | None = None) -> set[str]:
    return {str(li.get("ifname")) for li in links(netns)}


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def delete_link(name: str) -> None:
    """Delete a host link if it exists (deleting one end of a veth deletes both)."""
    if link_exists(name):
        run([IP, "link", "del", "dev", name], check=False)


def used_prefixes(version: int = 4) -> list[str]:
    """Every IPv4 (or IPv6) destination the host routes (all tables) and every local address
    prefix."""
    fam = f"-{version}"
    out: list[str] = []
    for r in ip_json([fam, "route", "show", "table", "all"]):
        dst = str(r.get("dst", ""))
        if dst and dst != "default" and r.get("type", "unicast") in ("unicast", "local"):
            out.append(dst)
    return out + addresses(version)


def addresses(version: int = 4, dev: str | None = None) -> list[str]:
    """The host's IPv4 (or IPv6) addresses as ADDR/PREFIX, of every link or of `dev`."""
    args = [f"-{version}", "addr", "show", *(["dev", dev] if dev else [])]
    out = []
    for link in ip_json(args):
        for a in link.get("addr_info", []):
            if "local" in a:
                out.append(f"{a['local']}/{a.get('prefixlen', 32)}")
    return out


def route_get_dev(addr: str) -> str:
    """The interface the host would send a packet to `addr` through."""
    routes = ip_json(["route", "get", addr])
    return str(routes[0].get("dev", "")) if routes else ""


def sysctl_path(key: str) -> Path:
    return Path("/proc/sys", key.replace(".", "/"))


def read_sysctl(key: str) -> str:
    return sysctl_path(key).read_text().strip()


def write_sysctl(key: str, value: str) -> None:
    sysctl_path(key).write_text(value + "\n")
