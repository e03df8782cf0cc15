"""The pure parts of cp/commit (no root needed): Docker's cp destination rules, the CLI's
CONTAINER:PATH split, path cleaning, and the tar filter commit uses to leave out the init-layer
mount points."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from dockyard.cli.cp import split_arg
from dockyard.container.commit import _DropEntries
from dockyard.container.fsops import _parts, plan_copy
from dockyard.errors import InvalidArgument, NotFound
from dockyard.layer import tarwrite as tw


def _st(mode: int) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, 0, 0, 0, 0, 0, 0))


DIR = _st(stat.S_IFDIR | 0o755)
FILE = _st(stat.S_IFREG | 0o644)


def test_plan_copy_follows_docker_rules() -> None:
    assert plan_copy(True, False, "src", "/tmp", DIR) == (True, "src")  # nests
    assert plan_copy(True, True, "src", "/tmp", DIR) == (True, "")  # /. copies contents
    assert plan_copy(False, False, "a", "/etc/", DIR) == (True, "a")  # file into dir
    assert plan_copy(False, False, "a", "/tmp/b", FILE) == (False, "b")  # overwrite a file
    assert plan_copy(False, False, "a", "/tmp/new", None) == (False, "new")  # rename
    assert plan_copy(True, False, "src", "/newdir", None) == (False, "newdir")
    assert plan_copy(True, False, "", "/tmp", DIR) == (True, "")  # the root: its contents
    with pytest.raises(InvalidArgument):
        plan_copy(True, False, "src", "/tmp/b", FILE)
    with pytest.raises(NotFound):
        plan_copy(False, False, "a", "/missing/", None)


def test_split_arg() -> None:
    assert split_arg("web:/etc/hosts") == ("web", "/etc/hosts")
    assert split_arg("web:relative") == ("web", "relative")
    assert split_arg("/abs:colon") == (None, "/abs:colon")
    assert split_arg("./file:name") == (None, "./file:name")
    assert split_arg("plain") == (None, "plain")
    assert split_arg("-") == (None, "-")


def test_parts_are_lexically_clean() -> None:
    assert _parts("/etc/../../..//x/./y/") == ("x", "y")
    assert _parts("relative/path") == ("relative", "path")
    assert _parts("/") == ()
    with pytest.raises(InvalidArgument):
        _parts("a\0b")


def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, data in entries:
        if name.endswith("/"):
            out += tw.header(name, b"5", mode=0o755)
        else:
            out += tw.header(name, b"0", size=len(data)) + data + tw.pad(len(data))
    return out + tw.END_OF_ARCHIVE


@pytest.mark.parametrize("chunk", [1, 7, 512, 100000])
def test_drop_entries_filters_a_tar_stream(chunk: int) -> None:
    long_name = "d/" + "x" * 150  # needs a PAX path record
    raw = _tar(
        [
            ("etc/", b""),
            ("etc/hosts", b""),
            ("etc/keep", b"keep me" * 100),
            ("d/", b""),
            (long_name, b"long"),
            (long_name + "-gone", b"bye" * 300),
            ("z", b"z"),
        ]
    )
    out = io.BytesIO()
    f = _DropEntries(out, {"etc/hosts", long_name + "-gone", "d"})
    for i in range(0, len(raw), chunk):
        f.write(raw[i : i + chunk])
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert tf.getnames() == ["etc", "etc/keep", long_name, "z"]
        member = tf.extractfile(long_name)
        assert member is not None and member.read() == b"long"
        keep = tf.extractfile("etc/keep")
        assert keep is not None and keep.read() == b"keep me" * 100
    assert out.getvalue().endswith(tw.END_OF_ARCHIVE)
    assert len(out.getvalue()) % tw.BLOCK == 0
