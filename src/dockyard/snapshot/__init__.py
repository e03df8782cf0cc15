"""Snapshots (L2): one directory per layer chain ID, unpacked once and shared.

`SnapshotStore` keeps each layer's content as an overlayfs layer keyed by its chain ID and
returns mount *descriptions* (`Mount`) for a container's rootfs; it never mounts anything.
`chain_ids` computes OCI chain IDs from diff IDs.
"""

from __future__ import annotations
