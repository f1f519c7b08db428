"""The cache that the worker processes of one machine share without Redis: a SQLite file holding rendered picks
and token buckets, so `quanxuan serve --workers N` keeps one rate limit per key (not N) and one rendering of a
group's day (the copy history would otherwise make two workers render two different copies).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

from serving.storage.base import Cache
from serving.storage.sqlite import write_transaction


class SqliteCache(Cache):
    """Cache in a SQLite file (WAL, no fsync: losing it loses nothing but warm answers); safe across processes."""

    def __init__(self, path: str | Path, prefix: str = "") -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.prefix = prefix
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._lock = threading.Lock()
        with self._transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS cache_values (key TEXT PRIMARY KEY, expires REAL NOT NULL, "
                        "value BLOB NOT NULL)")
            cur.execute("CREATE TABLE IF NOT EXISTS cache_buckets (bucket TEXT PRIMARY KEY, tokens REAL NOT NULL, "
                        "ts REAL NOT NULL)")

    def _transaction(self) -> AbstractContextManager[sqlite3.Cursor]:
        return write_transaction(self._conn, self._lock)

    def _get(self, cur: sqlite3.Cursor, key: str) -> bytes | None:
        cur.execute("SELECT value, expires FROM cache_values WHERE key = ?", [self.prefix + key])
        row = cur.fetchone()
        if row is None or row[1] <= time.time():
            return None
        return bytes(row[0])

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                return self._get(cur, key)
            finally:
                cur.close()

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store a value with an expiry; expired rows are swept now and then."""
        if ttl_seconds <= 0:
            return
        now = time.time()
        with self._transaction() as cur:
            cur.execute("INSERT INTO cache_values (key, expires, value) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                        "SET expires = excluded.expires, value = excluded.value", [self.prefix + key, now + ttl_seconds, value])
            if hash(key) % 256 == 0:
                cur.execute("DELETE FROM cache_values WHERE expires <= ?", [now])

    def _take(self, cur: sqlite3.Cursor, bucket: str, capacity: int, per_second: float, now: float) -> float:
        cur.execute("SELECT tokens, ts FROM cache_buckets WHERE bucket = ?", [self.prefix + bucket])
        row = cur.fetchone()
        tokens, last = (float(capacity), now) if row is None else (float(row[0]), float(row[1]))
        tokens = min(float(capacity), tokens + max(0.0, now - last) * per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / per_second
        cur.execute("INSERT INTO cache_buckets (bucket, tokens, ts) VALUES (?, ?, ?) ON CONFLICT (bucket) DO UPDATE "
                    "SET tokens = excluded.tokens, ts = excluded.ts", [self.prefix + bucket, tokens, now])
        return wait

    def take_token(self, bucket: str, capacity: int, per_second: float, now: float | None = None) -> float:
        """Token bucket updated in one write transaction, so concurrent processes never both take the last token."""
        with self._transaction() as cur:
            return self._take(cur, bucket, capacity, per_second, time.time() if now is None else now)

    def take_token_and_get(self, bucket: str, capacity: int, per_second: float, key: str) -> tuple[float, bytes | None]:
        """Token bucket and cache look-up in one transaction."""
        with self._transaction() as cur:
            wait = self._take(cur, bucket, capacity, per_second, time.time())
            return (wait, None) if wait > 0 else (0.0, self._get(cur, key))

    def clear(self) -> None:
        """Drop this cache's rows (those under its prefix)."""
        with self._transaction() as cur:
            for table, column in (("cache_values", "key"), ("cache_buckets", "bucket")):
                cur.execute(f"DELETE FROM {table} WHERE substr({column}, 1, ?) = ?", [len(self.prefix), self.prefix])

    def close(self) -> None:
        """Close the file."""
        self._conn.close()
