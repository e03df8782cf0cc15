from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.store.meta import ImageRow, MetaDB


def _row(i: str) -> ImageRow:
    return ImageRow(id=i, manifest="sha256:m", index=None, created="", added=1.0, size=0)


def test_tags_and_transactions(tmp_path: Path) -> None:
    db = MetaDB(tmp_path)
    with db.tx():
        db.put_image(_row("sha256:a"))
        assert db.set_tag("docker.io/library/x:latest", "sha256:a", 1.0) is None
    with db.tx():
        db.put_image(_row("sha256:b"))
        assert db.set_tag("docker.io/library/x:latest", "sha256:b", 2.0) == "sha256:a"
    assert db.tag("docker.io/library/x:latest") == "sha256:b"
    with pytest.raises(RuntimeError), db.tx():
        db.delete_image("sha256:b")
        raise RuntimeError("crash")
    assert db.image("sha256:b") is not None  # rolled back
    db.close()
    assert MetaDB(tmp_path).tag("docker.io/library/x:latest") == "sha256:b"


def test_prefix_lookup(tmp_path: Path) -> None:
    db = MetaDB(tmp_path)
    with db.tx():
        db.put_image(_row("sha256:abc1"))
        db.put_image(_row("sha256:abd2"))
    assert db.images_by_prefix("ab") == ["sha256:abc1", "sha256:abd2"]
    assert db.images_by_prefix("abc") == ["sha256:abc1"]


def test_leases_of_live_processes_protect_content(tmp_path: Path) -> None:
    db = MetaDB(tmp_path)
    with db.lease() as lid:
        db.lease_add(lid, "blob", "sha256:x")
        assert db.leased("blob") == {"sha256:x"}
    assert db.leased("blob") == set()


def test_lease_of_dead_process_is_dropped(tmp_path: Path) -> None:
    db = MetaDB(tmp_path)
    with db.tx() as c:
        c.execute("INSERT INTO leases(id, pid, created) VALUES ('dead', 999999999, 0)")
        c.execute("INSERT INTO lease_resources VALUES ('dead', 'blob', 'sha256:y')")
    assert db.leased("blob") == set()
