"""The network state database: one SQLite file (WAL) under the network state dir.

Responsibility: open the database, create the schema, and run transactions that serialise
writers across processes (`BEGIN IMMEDIATE`, busy timeout), so two `dockyard run` processes never
hand out one address or one host port twice.

Tables: `networks`, `endpoints` (a container's attachment to a network), `ports` (published
ports of an endpoint) and, owned by `ipam`, `ipam_pools`, `ipam_pools6` and `leases`. IPv6 is
optional per network: `networks.subnet6`/`gateway6` and `endpoints.ip6` are '' without it.
Schema version (`PRAGMA user_version`) 1 added those columns; `connect` upgrades older files.

Invariants:
- every write happens inside `tx()`; nested `tx()` calls join the outer transaction;
- the connection is in autocommit mode outside `tx()` (no implicit transactions);
- `synchronous=NORMAL` (WAL): a power loss may drop the last commits but never corrupts the
  file; what it could drop (leases, endpoints) describes namespaces a reboot destroys anyway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    bridge TEXT NOT NULL UNIQUE,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    subnet6 TEXT NOT NULL DEFAULT '',
    gateway6 TEXT NOT NULL DEFAULT '',
    internal INTEGER NOT NULL,
    builtin INTEGER NOT NULL,
    mtu INTEGER NOT NULL,
    created REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS endpoints(
    id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL,
    name TEXT NOT NULL,
    hostname TEXT NOT NULL,
    aliases TEXT NOT NULL,
    netns TEXT NOT NULL,
    ifname TEXT NOT NULL,
    veth TEXT NOT NULL UNIQUE,
    ip TEXT NOT NULL,
    ip6 TEXT NOT NULL DEFAULT '',
    mac TEXT NOT NULL,
    files_dir TEXT NOT NULL,
    UNIQUE(network_id, container_id)
);
CREATE TABLE IF NOT EXISTS ports(
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    proto TEXT NOT NULL,
    host_ip TEXT NOT NULL,
    host_port INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    UNIQUE(proto, host_ip, host_port)
);
CREATE TABLE IF NOT EXISTS ipam_pools(
    network_id TEXT PRIMARY KEY,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    next_offset INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ipam_pools6(
    network_id TEXT PRIMARY KEY,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    next_offset TEXT NOT NULL DEFAULT '0'
);
CREATE TABLE IF NOT EXISTS leases(
    network_id TEXT NOT NULL REFERENCES ipam_pools(network_id) ON DELETE CASCADE,
    ip TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY(network_id, ip)
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the network database at `path`."""
    from dockyard.store.sqlitewal import open_wal

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = open_wal(path, _set_up, check_same_thread=False)  # WAL: see store/sqlitewal.py
    conn.row_factory = sqlite3.Row
    return conn


def _set_up(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] < VERSION:
        with tx(conn):
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            _upgrade(conn)


VERSION = 1
_ADDED = (("networks", "subnet6"), ("networks", "gateway6"), ("endpoints", "ip6"))


def _upgrade(conn: sqlite3.Connection) -> None:
    """Add the columns later versions introduced to a file an older version made."""
    for table, column in _ADDED:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    conn.execute(f"PRAGMA user_version = {VERSION}")


@contextmanager
def tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken up front (`BEGIN IMMEDIATE`); joins an open one."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
