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

from dockyard.linux.proc import exists
from dockyard.store.sqlitewal import open_wal

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

_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,          -- 64 hex digits
    name TEXT NOT NULL UNIQUE,    -- without the leading '/'
    image_id TEXT NOT NULL,
    created REAL NOT NULL,
    record TEXT NOT NULL          -- the container's JSON record (config, host config, state)
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
"""

_SCHEMA_VOLUMES = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,        -- [a-zA-Z0-9][a-zA-Z0-9_.-]+ (64 hex digits when anonymous)
    driver TEXT NOT NULL,         -- 'local'
    created TEXT NOT NULL,        -- RFC 3339, UTC
    labels TEXT NOT NULL,         -- JSON object
    options TEXT NOT NULL,        -- JSON object: the local driver's type/device/o
    used INTEGER NOT NULL DEFAULT 0  -- 1 once a container mounted it (copy-up is over)
);
"""

_SCHEMA_BUILD_CACHE = """
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,         -- sha256 of the parent key and the step's inputs
    state TEXT NOT NULL,          -- JSON: the image state (config, layers, history) after the step
    blobs TEXT NOT NULL,          -- space-separated blob digests the state's layers need
    snapshots TEXT NOT NULL,      -- space-separated chain IDs of the state's snapshots
    created REAL NOT NULL,
    used REAL NOT NULL
);
"""

# Each entry is one schema version; append, never edit a released one.
_MIGRATIONS = (_SCHEMA, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_VOLUMES, _SCHEMA_BUILD_CACHE)


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
        self.conn = open_wal(self.path, self._migrate_on)  # several processes: sqlitewal.py

    def _connect(self) -> sqlite3.Connection:
        return open_wal(self.path)

    @contextlib.contextmanager
    def closed_for_fork(self) -> Iterator[None]:
        """Fork inside this block: the connection is closed meanwhile and opened anew after.

        A child must not inherit an open SQLite connection: it would share the parent's
        in-memory lock bookkeeping (and the -shm mapping) and could see "database is locked"
        for locks nobody holds, or release the parent's. Use outside any transaction."""
        self.conn.close()
        try:
            yield
        finally:
            self.conn = self._connect()

    @staticmethod
    def _migrate_on(conn: sqlite3.Connection) -> None:
        (v,) = conn.execute("PRAGMA user_version").fetchone()
        for version, script in enumerate(_MIGRATIONS, start=1):
            if v < version:
                # executescript commits on its own; each step is one transaction.
                conn.executescript(
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

    # containers ---------------------------------------------------------------------------

    def put_container(
        self, cid: str, name: str, image_id: str, created: float, record: str
    ) -> None:
        """Insert a container; `sqlite3.IntegrityError` when the id or name is taken."""
        self.conn.execute(
            "INSERT INTO containers(id, name, image_id, created, record) VALUES (?,?,?,?,?)",
            (cid, name, image_id, created, record),
        )

    def update_container(self, cid: str, record: str, name: str | None = None) -> None:
        if name is None:
            self.conn.execute("UPDATE containers SET record=? WHERE id=?", (record, cid))
        else:
            self.conn.execute(
                "UPDATE containers SET record=?, name=? WHERE id=?", (record, name, cid)
            )

    def container(self, cid: str) -> str | None:
        r = self.conn.execute("SELECT record FROM containers WHERE id=?", (cid,)).fetchone()
        return r[0] if r else None

    def container_by_name(self, name: str) -> str | None:
        r = self.conn.execute("SELECT id FROM containers WHERE name=?", (name,)).fetchone()
        return r[0] if r else None

    def containers_by_prefix(self, prefix: str) -> list[str]:
        like = prefix.replace("%", "").replace("_", "") + "%"
        return [
            r[0] for r in self.conn.execute("SELECT id FROM containers WHERE id LIKE ?", (like,))
        ]

    def containers(self) -> list[str]:
        rows = self.conn.execute("SELECT record FROM containers ORDER BY created DESC, id")
        return [r[0] for r in rows]

    def containers_of_image(self, image_id: str) -> list[str]:
        rows = self.conn.execute("SELECT record FROM containers WHERE image_id=?", (image_id,))
        return [r[0] for r in rows]

    def delete_container(self, cid: str) -> None:
        self.conn.execute("DELETE FROM containers WHERE id=?", (cid,))

    # build cache: step key -> image state after the step (GC roots: its blobs, snapshots) --

    def put_build_cache(
        self, key: str, state: str, blobs: list[str], snapshots: list[str], now: float
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO build_cache(key, state, blobs, snapshots, created, used) "
            "VALUES (?,?,?,?,?,?)",
            (key, state, " ".join(blobs), " ".join(snapshots), now, now),
        )

    def build_cache(self, key: str) -> str | None:
        r = self.conn.execute("SELECT state FROM build_cache WHERE key=?", (key,)).fetchone()
        return r[0] if r else None

    def build_cache_count(self) -> int:
        (n,) = self.conn.execute("SELECT COUNT(*) FROM build_cache").fetchone()
        return int(n)

    def build_cache_roots(self) -> tuple[set[str], set[str]]:
        """(blob digests, chain IDs) that build-cache entries keep alive."""
        blobs: set[str] = set()
        snaps: set[str] = set()
        for b, s in self.conn.execute("SELECT blobs, snapshots FROM build_cache"):
            blobs.update(b.split())
            snaps.update(s.split())
        return blobs, snaps

    def delete_build_cache(self) -> int:
        """Drop every build-cache entry; return how many there were."""
        cur = self.conn.execute("DELETE FROM build_cache")
        return int(cur.rowcount)

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
            if exists(pid):
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
