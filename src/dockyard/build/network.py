"""The network of one RUN step (layer L4 glue over `network/`): `build --network` and
`RUN --network`.

Modes (the build's `--network`, which a `RUN --network=default` inherits):
- `default` (also `bridge`, or no flag): as Docker, the default bridge network — a netns of
  the step's own with `lo` and `eth0` on the engine's `bridge` network (an address leased from
  its IPAM, a default route via the gateway, outbound traffic NATed by the network library's
  firewall table), so a RUN can reach package registries;
- a user-defined network's name: the same on that network (Docker's classic builder allows it);
- `host`: the host's network namespace (no netns in the spec);
- `none`: a netns with `lo` only.
In every mode the step gets BuildKit's `/etc/hosts` and `/etc/resolv.conf` (hostname
`buildkitsandbox`), bind-mounted from the step's work dir, so they never enter a layer.

Invariants: `step_network` releases everything it made (endpoint and address lease, veth,
netns, files) when the step ends, failed or not; the endpoints of builds whose process died
(a crash, kill -9) are swept the next time a build attaches a step to a network, and their
container ids (`build-<pid>-<hex>`) let `live_build` tell them apart from a running build's.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.errors import InvalidArgument
from dockyard.linux.proc import exists

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.network.manager import NetworkManager

HOSTNAME = "buildkitsandbox"
_BUILD_ID = re.compile(r"^build-(\d+)-[0-9a-f]+$")
_FILES = ("hosts", "resolv.conf")


@dataclass
class StepNetwork:
    """What the RUN container's spec needs: a netns to join (None: the host's) and the
    bind mounts of its /etc files."""

    mode: str
    netns: str | None
    mounts: list[dict[str, Any]] = field(default_factory=list)


def build_mode(option: str) -> str:
    """The build's `--network` value, normalised: `default`, `host`, `none` or a network name."""
    mode = option.strip()
    if mode in ("", "default", "bridge"):
        return "default"
    if mode.startswith("container:"):
        raise InvalidArgument(f"network mode {mode!r} not supported by the builder")
    return mode


def step_mode(build_option: str, run_flag: str) -> str:
    """A RUN's effective mode: its `--network` flag unless `default`, else the build's."""
    if run_flag in ("host", "none"):
        return run_flag
    return build_mode(build_option)


def container_id() -> str:
    """A fresh id for one RUN container (names its netns, veth and endpoint)."""
    return f"build-{os.getpid()}-{os.urandom(6).hex()}"


def live_build(cid: str) -> bool:
    """True if `cid` is a RUN container id of a build whose process still runs (network
    repair must leave its endpoint alone)."""
    m = _BUILD_ID.match(cid)
    return m is not None and exists(int(m.group(1)))

    return True


@contextlib.contextmanager
def step_network(engine: Engine, mode: str, cid: str, work: Path) -> Iterator[StepNetwork]:
    """Give one RUN its network; everything is released when the block ends."""
    from dockyard.network import dns

    etc = work / "etc"
    if mode == "host":
        dns.write_standalone(etc, HOSTNAME, host_mode=True)
        yield StepNetwork(mode, None, _mounts(etc))
        return
    if mode == "none":
        with _loopback_netns(work) as path:
            dns.write_standalone(etc, HOSTNAME, host_mode=False)
            yield StepNetwork(mode, path, _mounts(etc))
        return
    with _attached(engine.networks, mode, cid, etc) as path:
        yield StepNetwork(mode, path, _mounts(etc))


@contextlib.contextmanager
def _loopback_netns(work: Path) -> Iterator[str]:
    from dockyard.network import bridge, netns

    path = netns.create(work / "netns")
    try:
        bridge.loopback_up(path)
        yield str(path)
    finally:
        netns.delete(path)


@contextlib.contextmanager
def _attached(mgr: NetworkManager, mode: str, cid: str, etc: Path) -> Iterator[str]:
    """A netns of the step's own, attached to the network (`default`: Docker's `bridge`)."""
    from dockyard.network.model import DEFAULT_NETWORK
    from dockyard.network.setup import teardown_container

    sweep_dead(mgr)
    network = DEFAULT_NETWORK if mode == "default" else mode
    try:
        path = mgr.create_netns(cid)
        mgr.attach(cid, path, network, hostname=HOSTNAME, files_dir=etc)
        yield str(path)
    finally:
        teardown_container(mgr, cid)


def sweep_dead(mgr: NetworkManager) -> list[str]:
    """Release the endpoints (and netns) of RUN steps whose build process is gone."""
    from dockyard.network.setup import teardown_container

    dead = {
        ep.container_id
        for ep in mgr.endpoints()
        if _BUILD_ID.match(ep.container_id) and not live_build(ep.container_id)
    }
    for cid in sorted(dead):
        with contextlib.suppress(OSError):
            teardown_container(mgr, cid)
    return sorted(dead)


def _mounts(etc: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in _FILES:
        path = etc / name
        if path.exists():
            out.append({"destination": f"/etc/{name}", "type": "bind", "source": str(path),
                        "options": ["rbind", "rprivate", "rw"]})  # fmt: skip
    return out
