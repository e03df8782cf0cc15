"""OCI layer chain IDs (layer L2, pure).

chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)) — the OCI
image spec's definition (config.md, "Layer ChainID"). A chain ID names a layer *together with
everything below it*, which is what a snapshot holds an overlay layer for.
"""

from __future__ import annotations

from dockyard.digest import Digest, sha256_bytes


def chain_ids(diff_ids: list[str]) -> list[Digest]:
    """The chain ID of each prefix of `diff_ids` (bottom layer first)."""
    out: list[Digest] = []
    for raw in diff_ids:
        diff_id = Digest.parse(raw)
        out.append(diff_id if not out else sha256_bytes(f"{out[-1]} {diff_id}".encode()))
    return out
