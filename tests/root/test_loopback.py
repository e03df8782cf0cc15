"""linux/loopback.py: `lo` up in a fresh network namespace by ioctl (as runc does), and a clear
error for an interface that does not exist."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.root

_CODE = """
import subprocess
from dockyard.linux import loopback
before = subprocess.run(["ip", "-o", "link", "show", "lo"], capture_output=True, text=True).stdout
loopback.up()
after = subprocess.run(["ip", "-o", "link", "show", "lo"], capture_output=True, text=True).stdout
print("UP" in before.split(">")[0], "UP" in after.split(">")[0])
try:
    loopback.up("nosuch0")
except OSError as e:
    print("error", e.errno)
"""


def test_lo_up_in_a_new_network_namespace() -> None:
    p = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", _CODE], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "False True"
    assert lines[1] == "error 19"  # ENODEV
