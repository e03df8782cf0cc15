"""Capability names, masks, and applying them through the recording fake kernel."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux import caps
from dockyard.linux.fake import FakeKernel
from dockyard.linux.kernel import PR_CAPBSET_DROP


def test_mask_matches_runc_default_capeff() -> None:
    names = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert caps.status_hex(caps.mask(names, 40)) == "0000000020000420"


def test_unknown_names_and_sets_are_rejected() -> None:
    with pytest.raises(InvalidArgument):
        caps.mask(["CAP_FLY"], 40)
    with pytest.raises(InvalidArgument):
        caps.masks({"bogus": []}, 40)


def test_caps_above_the_kernels_last_cap_are_skipped() -> None:
    assert caps.mask(["CAP_CHECKPOINT_RESTORE", "CAP_KILL"], 39) == 1 << 5


def test_apply_drops_bounding_then_sets_and_raises_ambient() -> None:
    fake = FakeKernel(last_cap=40)
    sets = caps.masks(
        {
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL", "CAP_CHOWN"],
        },
        40,
    )
    caps.apply(fake, sets, 40)
    dropped = [c[2] for c in fake.calls if c[0] == "prctl" and c[1] == PR_CAPBSET_DROP]
    assert 0 not in dropped and 5 not in dropped and len(dropped) == 39
    assert ("capset", 1 << 5, 1 << 5 | 1, 1 << 5) in fake.calls
    assert fake.ambient == 1 << 5  # CHOWN is not inheritable: the raise is ignored
    assert fake.bounding == 1 << 5 | 1
