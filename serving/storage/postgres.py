"""The production backend: PostgreSQL through psycopg 3, with a small connection pool.

Several replicas share one database, so weights changed on one are read by all. An optional
schema keeps the tables apart (tests use a unique schema per run and drop it afterwards).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import psycopg

from serving.storage.sql import Cursor, SqlStore

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresStore(SqlStore):
    """Store in PostgreSQL; connections are pooled and opened lazily."""

    types = {"text": "TEXT", "ts": "TIMESTAMPTZ", "date": "DATE", "real": "DOUBLE PRECISION", "int": "INTEGER",
             "bool": "BOOLEAN", "serial": "BIGSERIAL PRIMARY KEY"}

    def __init__(self, url: str, schema: str | None = None, pool_size: int = 8, connect_timeout: float = 5.0) -> None:
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema name {schema!r} must match {_SCHEMA_NAME.pattern}")
        self.url = url
        self.schema = schema
        self.connect_timeout = connect_timeout
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False

    def _connect(self) -> psycopg.Connection:
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": max(1, int(self.connect_timeout))}
        if self.schema:
            kwargs["options"] = f"-c search_path={self.schema}"
        return psycopg.connect(self.url, **kwargs)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        if self._closed:
            raise RuntimeError("store is closed")
        self._slots.acquire()
        conn: psycopg.Connection | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            yield conn
        except psycopg.OperationalError:
            # A broken connection (server restart, network) is dropped, not returned to the pool.
            if conn is not None:
                conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                else:
                    self._idle.put(conn)
            self._slots.release()

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _lock_weights(self, cur: Cursor) -> None:
        # Two replicas changing weights at once must not both read the same old value.
        cur.execute("SELECT pg_advisory_xact_lock(727501)")

    def _table_exists(self, cur: Cursor, table: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return bool(cur.fetchone()[0])

    def init(self) -> None:
        """Create the schema (if one is set) and the tables."""
        if self.schema:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))) as conn:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        super().init()

    def drop_schema(self) -> None:
        """Drop this store's schema and everything in it (tests clean up with this)."""
        if not self.schema:
            raise RuntimeError("drop_schema needs a store opened with a schema")
        self.close()
        with psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def _local_day_sql(self, column: str) -> str:
        return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"

    def _ts_param(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry a timezone")
        return value

    def _ts_value(self, raw: Any) -> datetime:
        return raw

    def _date_param(self, value: date) -> date:
        return value

    def _date_value(self, raw: Any) -> date:
        return raw

    def close(self) -> None:
        """Close every idle connection; the store cannot be used afterwards."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
