"""The Engine façade (layer L5): one object wiring the stores, the snapshotter and the services.

Everything is created lazily, so a command pays only for what it touches (`dockyard ps` never
opens the content store). State-root layout:
    <root>/content/      blobs by digest (store.content)
    <root>/meta.db       names and records (store.meta)
    <root>/snapshots/    unpacked layers by chain ID (snapshot.store)
    <root>/network.db    networks, endpoints, leases, published ports (network.manager)

Network settings (names, pools, firewall backend) come from the `network` object of
`<root>/config.json` (see `network_settings`); tests use it to run beside a production engine.
Opening `networks` repairs stale network state cheaply: endpoints whose namespace is gone (a
reboot, a crash) are dropped with their leases, rules, veths and ports.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.config import Config

if TYPE_CHECKING:
    from dockyard.container.service import ContainerService
    from dockyard.image.service import ImageService
    from dockyard.network.manager import NetworkManager, Settings
    from dockyard.snapshot.store import SnapshotStore
    from dockyard.store.content import ContentStore
    from dockyard.store.meta import MetaDB
    from dockyard.volume.service import VolumeService


class Engine:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.load()
        self.root: Path = self.config.root

    @classmethod
    def open(cls, root: str | Path | None = None) -> Engine:
        return cls(Config.load(root))

    @cached_property
    def meta(self) -> MetaDB:
        from dockyard.store.meta import MetaDB

        self.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        return MetaDB(self.root)

    @cached_property
    def content(self) -> ContentStore:
        from dockyard.store.content import ContentStore

        return ContentStore(self.root / "content")

    @cached_property
    def snapshots(self) -> SnapshotStore:
        from dockyard.snapshot.store import SnapshotStore

        return SnapshotStore(self.root / "snapshots")

    @cached_property
    def images(self) -> ImageService:
        from dockyard.image.service import ImageService

        svc = ImageService(self.content, self.meta, lambda: self.snapshots)
        svc.in_use = lambda image_id: self.containers.users_of_image(image_id)
        return svc

    @cached_property
    def containers(self) -> ContainerService:
        from dockyard.container.service import ContainerService

        return ContainerService(self)

    @cached_property
    def volumes(self) -> VolumeService:
        from dockyard.volume.service import VolumeService

        return VolumeService(self.root, self.meta, in_use=self.containers.users_of_volume)

    @cached_property
    def networks(self) -> NetworkManager:
        from dockyard.network.manager import NetworkManager

        self.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        raw = self.config.extra.get("network")
        mgr = NetworkManager(self.root, network_settings(raw, self.root))
        _repair_if_stale(mgr)
        return mgr

    def repair_networks(self) -> list[str]:
        """Full repair: reconcile every container (a dead supervisor's container releases its
        network), release endpoints of containers that no longer run or exist, then let the
        manager drop what is left over. Returns what was removed."""
        from dockyard.network.setup import teardown_container

        live = {c.id for c in self.containers.list_containers() if c.state.running}
        removed: list[str] = []
        mgr = self.networks
        from dockyard.build.network import live_build

        for ep in mgr.endpoints():
            if live_build(ep.container_id):
                continue  # a running build step's network, not a container's
            if ep.container_id not in live and not self.containers.supervisor_alive(
                ep.container_id
            ):
                teardown_container(mgr, ep.container_id)
                removed.append(ep.id)
        return removed + mgr.repair()

    def close(self) -> None:
        if "meta" in self.__dict__:
            self.meta.close()
        if "networks" in self.__dict__:
            self.__dict__.pop("networks").close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SETTING_KEYS = {
    "table": "table",
    "default-bridge": "default_bridge",
    "bridge-prefix": "bridge_prefix",
    "veth-prefix": "veth_prefix",
    "default-prefixlen": "default_prefixlen",
    "user-prefixlen": "user_prefixlen",
    "ip": "default_host_ip",
    "mtu": "mtu",
    "firewall": "firewall",
    "iptables": "iptables",
}


def network_settings(raw: Any, root: Path | None = None) -> Settings:
    """`Settings` from config.json's `network` object, e.g. `{"ip": "127.0.0.1",
    "pool-start": "10.89.0.0", "run-dir": "/run/dockyard/netns"}`; unknown keys are ignored.

    Without one, every state root but the default one (/var/lib/dockyard, which gets the
    production names `dockyard0` and table `dockyard`) gets names of its own,
    `<tag><4 hex of the root's path>`: the tag is `DOCKYARD_NETWORK_TAG` (a test session's, at
    most 5 characters; a session removes all it made by the tag), else `dy`. Two roots that
    shared a bridge or a table would break each other (one rewrites the table with its own
    networks only; the other's containers land on a subnet the host has no route for)."""
    from ipaddress import IPv4Address, IPv4Network

    from dockyard.network.manager import Settings

    if not isinstance(raw, dict):
        raw = _tagged(root)
    kw: dict[str, Any] = {}
    for key, attr in _SETTING_KEYS.items():
        if key in raw:
            kw[attr] = raw[key]
    if "pool" in raw:
        kw["pool"] = IPv4Network(str(raw["pool"]))
    if "pool-start" in raw:
        kw["pool_start"] = IPv4Address(str(raw["pool-start"]))
    if "run-dir" in raw:
        kw["run_dir"] = Path(str(raw["run-dir"]))
    return Settings(**kw)


def _tagged(root: Path | None) -> dict[str, Any]:
    import hashlib
    import os

    from dockyard.config import DEFAULT_ROOT

    if root is None:
        return {}
    tag = os.environ.get("DOCKYARD_NETWORK_TAG", "")
    if not tag:
        if Path(root).resolve() == DEFAULT_ROOT.resolve():
            return {}
        tag = "dy"
    if len(tag) > 5 or not tag.isalnum():
        from dockyard.errors import InvalidArgument

        raise InvalidArgument(f"DOCKYARD_NETWORK_TAG {tag!r}: at most 5 letters or digits")
    x = tag + hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:4]
    return {
        "table": x,
        "default-bridge": f"{x}b0",
        "bridge-prefix": f"{x}n",
        "veth-prefix": f"{x}v",
        "default-prefixlen": 24,
    }


def _repair_if_stale(mgr: NetworkManager) -> None:
    """Run the manager's repair when an endpoint's namespace is gone (cheap check: one query
    and a stat per endpoint, so every command can afford it)."""
    from dockyard.network import netns

    if any(not netns.is_netns(ep.netns) for ep in mgr.endpoints()):
        mgr.repair()
