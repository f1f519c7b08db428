"""The embedded backend: one SQLite file (WAL mode), safe for several threads and processes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from serving.storage.sql import SqlStore


@contextmanager
def write_transaction(conn: sqlite3.Connection, lock: AbstractContextManager[Any]) -> Iterator[sqlite3.Cursor]:
    """A cursor in a BEGIN IMMEDIATE transaction: writers in other processes wait (busy timeout) instead of failing
    mid-way; committed on exit, rolled back on error."""
    with lock:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()


class SqliteStore(SqlStore):
    """Store in a SQLite database file; one connection guarded by a lock (operations take microseconds)."""

    types = {"text": "TEXT", "ts": "TEXT", "date": "TEXT", "real": "REAL", "int": "INTEGER", "bool": "INTEGER",
             "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"}

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE so that
        # concurrent writers in other processes wait (busy timeout) instead of failing mid-way.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()

    def _transaction(self) -> AbstractContextManager[sqlite3.Cursor]:
        return write_transaction(self._conn, self._lock)

    def _table_exists(self, cur: Any, table: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
        return cur.fetchone() is not None

    def _local_day_sql(self, column: str) -> str:
        # Asia/Shanghai has kept UTC+8 all year since 1991.
        return f"substr(datetime({column}, '+8 hours'), 1, 10)"

    def _ts_param(self, value: datetime) -> str:
        # Fixed-width UTC text keeps lexicographic order equal to time order.
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry a timezone")
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def _ts_value(self, raw: Any) -> datetime:
        return datetime.fromisoformat(raw)

    def _date_param(self, value: date) -> str:
        return value.isoformat()

    def _date_value(self, raw: Any) -> date:
        return date.fromisoformat(raw)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
