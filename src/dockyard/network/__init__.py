"""Container networking (layer L3): namespaces, bridges, IPAM, firewall, published ports, DNS files.

Entry point: `manager.NetworkManager`. Modules: `netns` (persistent namespaces), `bridge` (bridge
and veth data path), `ipam` (subnets and leases), `firewall` (our nftables table), `ports`
(`-p`/`-P` parsing), `portmap` (host-port reservation), `dns` (hosts/hostname/resolv.conf),
`db` (the SQLite state), `iproute` (the only place running `ip`/`nsenter`/`nft`), `model` (data).
Importing this package imports nothing.
"""
