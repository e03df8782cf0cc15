from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.container.spec import resolve_user
from dockyard.errors import InvalidArgument


def test_user_lookup_follows_the_image_s_absolute_symlinks_inside_it(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd.real").write_text("app:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc" / "passwd").symlink_to("/etc/passwd.real")  # absolute: the image's file
    (tmp_path / "etc" / "group").write_text("app:x:1000:\nextra:x:2000:app\n")
    assert resolve_user(tmp_path, "app") == (1000, 1000, [2000], "/home/app")


def test_user_lookup_never_reads_the_host_s_files(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    # climbs out as far as it can: resolved in scope it names <root>/etc/shadow, not the host's
    (tmp_path / "etc" / "passwd").symlink_to("../../../../../../etc/shadow")
    with pytest.raises(InvalidArgument, match="unable to find user root"):
        resolve_user(tmp_path, "root")
