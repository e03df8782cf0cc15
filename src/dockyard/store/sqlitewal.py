"""Opening an SQLite database in WAL mode from several processes at once (layer L1).

Why: a new database file starts in rollback-journal mode, and switching it to WAL
(`PRAGMA journal_mode=WAL`) needs an exclusive lock. When two processes open a new file at the
same moment (two build stages' first `RUN`, ten shells' first command on a fresh root), SQLite
may refuse one of them with "database is locked" at once: it does not wait on a lock whose
holder may itself be waiting for ours, whatever the busy timeout. So the switch (and a schema
set-up, `setup`) happens under an exclusive flock on `<db>.lock`. A file already in WAL mode
(byte 18 of its header is 2) needs none of that: the common case costs one 100-byte read.

Invariant: the lock file is never the database file itself (closing any descriptor of a file
drops the process's POSIX locks on it, and SQLite's locks are POSIX locks).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path


def is_wal(path: Path) -> bool:
    """Whether the database file at `path` is in WAL mode already."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return False
    return len(header) == 100 and header[18] == 2 and header[19] == 2


def open_wal(
    path: Path,
    setup: Callable[[sqlite3.Connection], None] | None = None,
    *,
    timeout: float = 30.0,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """A connection (autocommit, WAL, synchronous=NORMAL, foreign keys, `timeout` s busy
    wait) to the database at `path`, created if missing; `setup(conn)` (migrations) runs
    under the set-up lock when the file was not in WAL mode yet, else right away."""
    if is_wal(path):
        return _configure(path, setup, timeout, check_same_thread)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _configure(path, setup, timeout, check_same_thread)
    finally:
        os.close(fd)


def _configure(
    path: Path,
    setup: Callable[[sqlite3.Connection], None] | None,
    timeout: float,
    check_same_thread: bool,
) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), timeout=timeout, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: consistent after a crash
        conn.execute("PRAGMA foreign_keys=ON")
        if setup is not None:
            setup(conn)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        raise
    return conn
