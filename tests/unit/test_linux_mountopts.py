"""OCI mount options → mount(2) flags, propagation and data."""

from __future__ import annotations

from dockyard.linux import kernel as k
from dockyard.linux.mountopts import parse, statvfs_flags


def test_flags_data_and_later_options_win() -> None:
    opts = parse(["nosuid", "noexec", "ro", "rw", "mode=755", "size=65536k", "strictatime"])
    assert opts.flags == k.MS_NOSUID | k.MS_NOEXEC | k.MS_STRICTATIME
    assert opts.data == "mode=755,size=65536k"
    assert not opts.bind and opts.propagation == []


def test_bind_rbind_and_propagation() -> None:
    opts = parse(["rbind", "ro", "rprivate", "shared"])
    assert opts.bind and opts.recursive and opts.flags == k.MS_RDONLY
    assert opts.propagation == [k.MS_PRIVATE | k.MS_REC, k.MS_SHARED]
    assert parse([], "bind").bind and not parse([], "bind").recursive


def test_ignored_options_are_not_data() -> None:
    assert parse(["defaults", "tmpcopyup", "rro"]).data == ""


def test_statvfs_flags_maps_st_relatime() -> None:
    assert statvfs_flags(1 | 2 | 4096) == k.MS_RDONLY | k.MS_NOSUID | k.MS_RELATIME
