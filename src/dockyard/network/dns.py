"""Name-resolution files for a container: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.

Responsibility: render the three files (pure functions) and write them where the engine
bind-mounts them into the container.

Design (user-defined networks): Docker answers names through an embedded DNS server at
127.0.0.11. We do the simplest robust thing instead: every container's `/etc/hosts` lists the
other members of each user-defined network it is on (name, hostname, aliases), and the network
manager rewrites the files of every member when a container attaches or detaches. No resolver
process to keep alive; the trade-off is that a name appears only once the file is rewritten and
that programs caching `/etc/hosts` see changes late. On the default bridge, as in Docker, there
is no name resolution between containers.

`--add-host` entries are kept in a file of their own beside the others (`extra-hosts`, one
`IP<TAB>NAME` line each), written once when the container starts; every rendering of `hosts`
(the first one and each rewrite when a peer joins or leaves) includes them.

Invariants:
- `resolv.conf` never lists a loopback nameserver (127.0.0.0/8, ::1): inside the container's
  netns it would point at the container itself. If none remain, Docker's fallbacks
  (8.8.8.8, 8.8.4.4) are used;
- files that already exist are rewritten in place (same inode), never replaced by rename: a bind
  mount of the file into a running container keeps pointing at the old inode otherwise. A new
  file is created by write-to-temp-and-rename.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
HOST_RESOLV = Path("/etc/resolv.conf")
SYSTEMD_RESOLV = Path("/run/systemd/resolve/resolv.conf")

_HOSTS_HEAD = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def _unique(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        if n and n not in out:
            out.append(n)
    return out


def render_hosts(
    own: Sequence[tuple[str, Sequence[str]]],
    peers: Sequence[tuple[str, Sequence[str]]] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """`/etc/hosts`: loopback lines, `--add-host` extras, own addresses, then peers' addresses.

    `own` and `peers` are (ip, names) pairs; empty name lists are skipped.
    """
    lines = [_HOSTS_HEAD]
    lines += [f"{ip}\t{name}\n" for name, ip in extra]
    for ip, names in [*own, *peers]:
        uniq = _unique(names)
        if uniq:
            lines.append(f"{ip}\t{' '.join(uniq)}\n")
    return "".join(lines)


def render_hostname(hostname: str) -> str:
    return hostname + "\n"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def render_resolv(host_text: str, dns: Sequence[str] = (), search: Sequence[str] = ()) -> str:
    """The container's `resolv.conf` from the host's: loopback nameservers dropped.

    `dns`/`search` (`--dns`, `--dns-search`) replace the host's nameservers/search lines.
    """
    out: list[str] = []
    nameservers: list[str] = []
    for line in host_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "nameserver":
            if len(fields) > 1 and not dns and not _is_loopback(fields[1]):
                nameservers.append(fields[1])
            continue
        if fields and fields[0] in ("search", "domain") and search:
            continue
        out.append(line)
    if dns:
        nameservers = list(dns)
    if not nameservers:
        nameservers = list(DEFAULT_NAMESERVERS)
    if search:
        out.append("search " + " ".join(search))
    out += [f"nameserver {ns}" for ns in nameservers]
    return "\n".join(out).strip("\n") + "\n"


def host_resolv_text() -> str:
    """The host's resolver config; systemd-resolved's upstream file when the stub is in use."""
    try:
        text = HOST_RESOLV.read_text()
    except FileNotFoundError:
        return ""
    stub_only = all(
        _is_loopback(line.split()[1])
        for line in text.splitlines()
        if line.startswith("nameserver") and len(line.split()) > 1
    )
    if stub_only and SYSTEMD_RESOLV.exists():
        return SYSTEMD_RESOLV.read_text()
    return text


def host_nameservers() -> list[str]:
    """The host's IPv4 nameservers (subnet choice avoids them)."""
    out: list[str] = []
    for line in host_resolv_text().splitlines():
        f = line.split()
        if len(f) > 1 and f[0] == "nameserver" and "." in f[1] and not _is_loopback(f[1]):
            out.append(f[1])
    return out


EXTRA_HOSTS = "extra-hosts"


def parse_extra_host(entry: str) -> tuple[str, str]:
    """`--add-host` / `ExtraHosts` entry (`name:ip` or `name=ip`; the IP may be IPv6) →
    (name, ip)."""
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    return name.strip(), ip.strip().strip("[]")


def write_extra_hosts(files_dir: Path, entries: Sequence[str]) -> None:
    """Record a container's `--add-host` entries (none: the file is removed)."""
    path = files_dir / EXTRA_HOSTS
    if not entries:
        path.unlink(missing_ok=True)
        return
    pairs = [parse_extra_host(e) for e in entries]
    write_file(path, "".join(f"{ip}\t{name}\n" for name, ip in pairs))


def read_extra_hosts(files_dir: Path) -> list[tuple[str, str]]:
    """The (name, ip) pairs `write_extra_hosts` recorded, in order."""
    try:
        text = (files_dir / EXTRA_HOSTS).read_text()
    except FileNotFoundError:
        return []
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        ip, _, name = line.partition("\t")
        if name:
            out.append((name, ip))
    return out


def write_standalone(files_dir: Path, hostname: str, host_mode: bool) -> None:
    """Files for `--network host` (the host's hosts and resolv.conf, as Docker copies them) and
    `--network none` (loopback names and the hostname; the host's resolv.conf filtered); the
    `--add-host` entries recorded in `files_dir` are included."""
    extra = read_extra_hosts(files_dir)
    if host_mode:
        try:
            hosts = Path("/etc/hosts").read_text()
            hosts += "".join(f"{ip}\t{name}\n" for name, ip in extra)
        except FileNotFoundError:
            hosts = render_hosts([], extra=extra)
        resolv = host_resolv_text()
    else:
        hosts = render_hosts([("127.0.0.1", [hostname])], extra=extra)
        resolv = render_resolv(host_resolv_text())
    write_file(files_dir / "hosts", hosts)
    write_file(files_dir / "hostname", render_hostname(hostname))
    write_file(files_dir / "resolv.conf", resolv)


def write_file(path: Path, text: str) -> None:
    """Write `text` to `path`: in place if it exists (keeps bind mounts valid), else as a new
    file. A new file has no reader yet (it is bind-mounted into a container only after it is
    written); a start that crashes half-way writes it again. Mode 0644 whatever the umask."""
    data = text.encode()
    new = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(path, new, 0o644)
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, new, 0o644)
        os.fchmod(fd, 0o644)
    else:
        os.fchmod(fd, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
