"""OCI chain IDs."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.errors import InvalidArgument
from dockyard.snapshot.chain import chain_ids

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
D3 = "sha256:" + "c" * 64


def test_definition() -> None:
    c1 = D1
    c2 = "sha256:" + hashlib.sha256(f"{c1} {D2}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {D3}".encode()).hexdigest()
    assert chain_ids([D1, D2, D3]) == [c1, c2, c3]


def test_known_value() -> None:
    # Independently computed: printf '%s %s' "$D1" "$D2" | sha256sum
    assert chain_ids([D1, D2]) == [
        D1,
        "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c",
    ]


def test_empty_and_invalid() -> None:
    assert chain_ids([]) == []
    with pytest.raises(InvalidArgument):
        chain_ids(["sha256:xyz"])
