"""rtnetlink message encoding (pure) of linux.netlink."""

from __future__ import annotations

import struct

from dockyard.linux import netlink


def test_attr_padding() -> None:
    a = netlink._str(netlink.IFLA_IFNAME, "eth0")
    assert len(a) % 4 == 0
    length, kind = struct.unpack_from("=HH", a)
    assert (length, kind) == (4 + 5, netlink.IFLA_IFNAME)
    assert a[4:9] == b"eth0\0" and a[9:] == b"\0\0\0"


def test_u32_and_mac() -> None:
    assert netlink._u32(netlink.IFLA_MTU, 1500) == struct.pack("=HHI", 8, netlink.IFLA_MTU, 1500)
    assert netlink._mac("02:42:0a:59:00:02") == bytes([2, 0x42, 10, 0x59, 0, 2])


def test_ifinfo_layout() -> None:
    raw = netlink._ifinfo(7, netlink.IFF_UP, netlink.IFF_UP)
    assert len(raw) == 16
    assert struct.unpack("=BxHiII", raw) == (0, 0, 7, 1, 1)
