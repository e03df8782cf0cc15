"""`store.sqlitewal.open_wal`: processes opening a new database at the same moment all get a
WAL connection; none is refused with "database is locked" (the switch to WAL is serialised)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from dockyard.store.sqlitewal import is_wal, open_wal


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (pid INTEGER)")


def test_many_processes_open_a_new_database_at_once(tmp_path: Path) -> None:
    for round_ in range(5):
        db = tmp_path / f"r{round_}.db"
        go_r, go_w = os.pipe()
        pids = []
        for _ in range(8):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                code = 1
                try:
                    os.close(go_w)
                    os.read(go_r, 1)  # all start together
                    conn = open_wal(db, _setup)
                    conn.execute("INSERT INTO t VALUES (?)", (os.getpid(),))
                    conn.close()
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        os.close(go_r)
        os.close(go_w)  # EOF: go
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
        assert codes == [0] * 8
        assert is_wal(db)
        conn = open_wal(db)
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 8
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_is_wal_reads_the_header(tmp_path: Path) -> None:
    assert not is_wal(tmp_path / "missing.db")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE x (a)").connection.commit()
    assert not is_wal(plain)
    open_wal(plain).close()
    assert is_wal(plain)
