"""The metadata DB (layer L1): SQLite in WAL mode under the state root.

It maps names to content and holds the records the engine must not lose: images (by image ID,
the digest of the config), their tags and repo digests, leases that protect content being
written, and (later) containers. Blobs themselves live in the content store; the DB only
names them.

Invariants:
- Every multi-row change runs in one transaction (`with db.tx():`), so a crash leaves either
  the old or the new state, never a tag pointing at a missing image.
- Content is written to the content store BEFORE the rows that name it are committed; GC only
  deletes what no row (image, lease, container) reaches.
- Writers and GC exclude each other through `gc_lock` (flock: shared for writers, exclusive
  for GC), so GC never sweeps a blob that a running load has written but not yet named.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,          -- image ID: digest of the config blob
    manifest TEXT NOT NULL,       -- digest of the manifest we hold for it
    idx TEXT,                     -- digest of the index it was chosen from, if any
    created TEXT NOT NULL,        -- when the image was made (config.created)
    added REAL NOT NULL,          -- when it entered this store (unix time)
    size INTEGER NOT NULL         -- uncompressed size of its layers
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,        -- normalised reference with tag: docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id),
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS repo_digests (
    name TEXT PRIMARY KEY,        -- repository@manifest-digest
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS repo_digests_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lease_resources (
    lease TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,           -- 'blob' or 'snapshot'
    key TEXT NOT NULL,
    PRIMARY KEY (lease, kind, key)
);
"""


_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS layer_variants (
    diff_id TEXT NOT NULL,        -- digest of the uncompressed layer tar
    media_type TEXT NOT NULL,     -- media type of the variant, e.g. ...tar+gzip
    digest TEXT NOT NULL,         -- digest of the variant blob in the content store
    size INTEGER NOT NULL,
    PRIMARY KEY (diff_id, media_type)
);
"""

# Each entry is one schema version; append, never edit a released one.
_MIGRATIONS = (_SCHEMA, _SCHEMA_V2)


@dataclass(frozen=True)
class ImageRow:
    id: str
    manifest: str
    index: str | None
    created: str
    added: float
    size: int


class MetaDB:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "meta.db"
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _migrate(self) -> None:
        (v,) = self.conn.execute("PRAGMA user_version").fetchone()
        for version, script in enumerate(_MIGRATIONS, start=1):
            if v < version:
                # executescript commits on its own; each step is one transaction.
                self.conn.executescript(
                    f"BEGIN IMMEDIATE;{script}PRAGMA user_version={version}; COMMIT;"
                )

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of failing late)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def gc_lock(self, exclusive: bool = False) -> Iterator[None]:
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # images -----------------------------------------------------------------------------

    def put_image(self, row: ImageRow) -> None:
        self.conn.execute(
            "INSERT INTO images(id, manifest, idx, created, added, size) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET manifest=excluded.manifest, idx=excluded.idx",
            (row.id, row.manifest, row.index, row.created, row.added, row.size),
        )

    def image(self, image_id: str) -> ImageRow | None:
        r = self.conn.execute(
            "SELECT id, manifest, idx, created, added, size FROM images WHERE id=?", (image_id,)
        ).fetchone()
        return ImageRow(*r) if r else None

    def images(self) -> list[ImageRow]:
        rows = self.conn.execute(
            "SELECT id, manifest, idx, created, added, size FROM images ORDER BY created DESC, id"
        ).fetchall()
        return [ImageRow(*r) for r in rows]

    def images_by_prefix(self, hex_prefix: str) -> list[str]:
        like = "sha256:" + hex_prefix.replace("%", "").replace("_", "") + "%"
        return [r[0] for r in self.conn.execute("SELECT id FROM images WHERE id LIKE ?", (like,))]

    def delete_image(self, image_id: str) -> None:
        self.conn.execute("DELETE FROM tags WHERE image_id=?", (image_id,))
        self.conn.execute("DELETE FROM repo_digests WHERE image_id=?", (image_id,))
        self.conn.execute("DELETE FROM images WHERE id=?", (image_id,))

    # names ------------------------------------------------------------------------------

    def set_tag(self, name: str, image_id: str, now: float) -> str | None:
        """Point `name` at `image_id`; return the image it pointed at before, if another."""
        r = self.conn.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
        self.conn.execute(
            "INSERT INTO tags(name, image_id, updated) VALUES (?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id, updated=excluded.updated",
            (name, image_id, now),
        )
        return r[0] if r and r[0] != image_id else None

    def tag(self, name: str) -> str | None:
        r = self.conn.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
        return r[0] if r else None

    def delete_tag(self, name: str) -> None:
        self.conn.execute("DELETE FROM tags WHERE name=?", (name,))

    def tags_of(self, image_id: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM tags WHERE image_id=? ORDER BY updated, name", (image_id,)
        )
        return [r[0] for r in rows]

    def all_tags(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, iid in self.conn.execute(
            "SELECT name, image_id FROM tags ORDER BY updated, name"
        ):
            out.setdefault(iid, []).append(name)
        return out

    def set_repo_digest(self, name: str, image_id: str) -> None:
        self.conn.execute(
            "INSERT INTO repo_digests(name, image_id) VALUES (?,?) "
            "ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id",
            (name, image_id),
        )

    def repo_digest(self, name: str) -> str | None:
        r = self.conn.execute("SELECT image_id FROM repo_digests WHERE name=?", (name,)).fetchone()
        return r[0] if r else None

    def repo_digests_of(self, image_id: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM repo_digests WHERE image_id=? ORDER BY name", (image_id,)
        )
        return [r[0] for r in rows]

    def all_repo_digests(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, iid in self.conn.execute("SELECT name, image_id FROM repo_digests ORDER BY name"):
            out.setdefault(iid, []).append(name)
        return out

    # layer variants: a layer compressed once (at push) is kept and reused -------------------

    def put_layer_variant(self, diff_id: str, media_type: str, digest: str, size: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO layer_variants(diff_id, media_type, digest, size) "
            "VALUES (?,?,?,?)",
            (diff_id, media_type, digest, size),
        )

    def layer_variant(self, diff_id: str, media_type: str) -> tuple[str, int] | None:
        r = self.conn.execute(
            "SELECT digest, size FROM layer_variants WHERE diff_id=? AND media_type=?",
            (diff_id, media_type),
        ).fetchone()
        return (r[0], r[1]) if r else None

    def layer_variant_digests(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT digest FROM layer_variants")}

    # leases -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        """Protect content written inside the block from GC until the block ends."""
        lid = os.urandom(8).hex()
        with self.tx() as c:
            c.execute(
                "INSERT INTO leases(id, pid, created) VALUES (?,?,strftime('%s'))",
                (lid, os.getpid()),
            )
        try:
            yield lid
        finally:
            with self.tx() as c:
                c.execute("DELETE FROM lease_resources WHERE lease=?", (lid,))
                c.execute("DELETE FROM leases WHERE id=?", (lid,))

    def lease_add(self, lease: str, kind: str, key: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO lease_resources(lease, kind, key) VALUES (?,?,?)",
            (lease, kind, key),
        )

    def leased(self, kind: str) -> set[str]:
        """Keys protected by leases of live processes; leases of dead processes are dropped."""
        live: set[str] = set()
        dead: list[str] = []
        for lid, pid in self.conn.execute("SELECT id, pid FROM leases").fetchall():
            if _alive(pid):
                live.add(lid)
            else:
                dead.append(lid)
        if dead:
            with self.tx() as c:
                for lid in dead:
                    c.execute("DELETE FROM lease_resources WHERE lease=?", (lid,))
                    c.execute("DELETE FROM leases WHERE id=?", (lid,))
        rows = self.conn.execute("SELECT lease, key FROM lease_resources WHERE kind=?", (kind,))
        return {k for lease, k in rows if lease in live}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
