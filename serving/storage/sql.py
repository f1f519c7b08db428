"""The SQL implementation of the Store contract, shared by SQLite and PostgreSQL.

Queries are written once with `?` placeholders; a backend supplies its connection handling,
its column types and how timestamps, dates and booleans cross the driver.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timezone
from typing import Any, Protocol

from serving.storage.base import (
    BOOKKEEPING,
    EVENT_COLUMNS,
    EVENT_KEY,
    AuditEntry,
    EventTable,
    KeyRecord,
    StoredWeights,
    Store,
    VersionConflict,
)

# Column -> abstract type; a backend maps abstract types to its own.
_EVENT_TYPES: dict[str, str] = {
    "event_id": "text", "seller_id": "text", "group_id": "text", "product_id": "text", "order_id": "text", "buyer_id": "text",
    "pushed_at": "ts", "ordered_at": "ts", "received_at": "ts", "price_at_push": "real", "paid": "real",
    "commission": "real", "quantity": "int", "refunded": "bool", "submitted_by": "text",
}
_KEY_COLUMNS = ("key_id", "key_hash", "role", "seller_id", "brand", "name", "rate_per_minute", "created_at", "revoked_at")


class Cursor(Protocol):
    """The slice of a DB-API cursor the queries use."""

    rowcount: int
    description: Any

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class SqlStore(Store):
    """Store over a SQL database; subclasses provide `_transaction` and the type mapping."""

    types: dict[str, str] = {}

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor inside one transaction: committed on exit, rolled back on error."""

    @abstractmethod
    def _ts_param(self, value: datetime) -> Any:
        """A timezone-aware datetime as the driver wants it."""

    @abstractmethod
    def _ts_value(self, raw: Any) -> datetime:
        """A stored timestamp back to a timezone-aware datetime."""

    @abstractmethod
    def _date_param(self, value: date) -> Any:
        """A date as the driver wants it."""

    @abstractmethod
    def _date_value(self, raw: Any) -> date:
        """A stored date back to a date."""

    def _sql(self, sql: str) -> str:
        """The driver's spelling of a query written with `?` placeholders."""
        return sql

    # Schema -------------------------------------------------------------------------------------
    def _feedback_ddl(self) -> list[str]:
        stmts = []
        for table in EVENT_COLUMNS:
            stmts.append(f"CREATE TABLE IF NOT EXISTS feedback_{table} ({self._event_table_defs(table)})")
            stmts.append(f"CREATE INDEX IF NOT EXISTS feedback_{table}_received ON feedback_{table} (received_at)")
        return stmts

    def _state_ddl(self) -> list[str]:
        t = self.types
        return [
            f"CREATE TABLE IF NOT EXISTS ops_weights (id INTEGER PRIMARY KEY, body {t['text']} NOT NULL, "
            f"version INTEGER NOT NULL, updated_at {t['ts']}, updated_by {t['text']} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS ops_weights_audit (id {t['serial']}, at {t['ts']} NOT NULL, "
            f"actor {t['text']} NOT NULL, old {t['text']} NOT NULL, new {t['text']} NOT NULL, version INTEGER NOT NULL, "
            f"reason {t['text']} NOT NULL DEFAULT '', reverts INTEGER)",
            f"CREATE TABLE IF NOT EXISTS api_keys (key_id {t['text']} PRIMARY KEY, key_hash {t['text']} NOT NULL UNIQUE, "
            f"role {t['text']} NOT NULL, seller_id {t['text']}, brand {t['text']}, name {t['text']} NOT NULL, "
            f"rate_per_minute INTEGER, created_at {t['ts']} NOT NULL, revoked_at {t['ts']})",
            f"CREATE TABLE IF NOT EXISTS copy_history (group_id {t['text']} NOT NULL, day {t['date']} NOT NULL, "
            f"template_id {t['text']} NOT NULL, PRIMARY KEY (group_id, day, template_id))",
        ]

    def _event_table_defs(self, table: str) -> str:
        """Column definitions of a feedback table: ids unique per seller, never across the whole store."""
        t = self.types
        defs = [f"{c} {t['text']} NOT NULL" for c in EVENT_KEY]
        defs += [f"{c} {t[_EVENT_TYPES[c]]}" for c in (*EVENT_COLUMNS[table], *BOOKKEEPING)]
        defs.append(f"PRIMARY KEY ({', '.join(EVENT_KEY)})")
        if table == "orders":
            defs.append("UNIQUE (seller_id, order_id)")
        return ", ".join(defs)

    @abstractmethod
    def _table_exists(self, cur: Cursor, table: str) -> bool:
        """Whether a table exists in this store's namespace."""

    def _columns(self, cur: Cursor, table: str) -> list[str]:
        """The column names of an existing table."""
        cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        return [d[0] for d in cur.description]

    def _migrate_feedback(self, cur: Cursor) -> None:
        """Re-key feedback tables written before ids were scoped per seller.

        Old rows get the seller of the key that submitted them where that was a seller key, else ''
        (past ops and admin submissions cannot be attributed); new rows always carry their group's seller.
        """
        for table in EVENT_COLUMNS:
            name = f"feedback_{table}"
            if not self._table_exists(cur, name) or "seller_id" in self._columns(cur, name):
                continue
            cols = ("event_id", *EVENT_COLUMNS[table], *BOOKKEEPING)
            cur.execute(f"ALTER TABLE {name} RENAME TO {name}_unscoped")
            # The index keeps its name on the renamed table; drop it so the new table gets its own.
            cur.execute(f"DROP INDEX IF EXISTS {name}_received")
            cur.execute(f"CREATE TABLE {name} ({self._event_table_defs(table)})")
            cur.execute(
                f"INSERT INTO {name} (seller_id, {', '.join(cols)}) SELECT "
                f"COALESCE((SELECT k.seller_id FROM api_keys k WHERE k.key_id = o.submitted_by), ''), "
                f"{', '.join('o.' + c for c in cols)} FROM {name}_unscoped o"
            )
            cur.execute(f"DROP TABLE {name}_unscoped")

    def _migrate_audit(self, cur: Cursor) -> None:
        """Give an audit table of older versions its reason and reverts columns (old entries: no reason)."""
        columns = self._columns(cur, "ops_weights_audit")
        if "reason" not in columns:
            cur.execute(f"ALTER TABLE ops_weights_audit ADD COLUMN reason {self.types['text']} NOT NULL DEFAULT ''")
        if "reverts" not in columns:
            cur.execute("ALTER TABLE ops_weights_audit ADD COLUMN reverts INTEGER")

    def init(self) -> None:
        """Create the tables if they are missing, and bring tables of older versions up to date (one transaction)."""
        with self._transaction() as cur:
            for stmt in self._state_ddl():
                cur.execute(stmt)
            self._migrate_audit(cur)
            self._migrate_feedback(cur)
            for stmt in self._feedback_ddl():
                cur.execute(stmt)

    # Feedback -----------------------------------------------------------------------------------
    def _event_param(self, column: str, value: Any) -> Any:
        if value is None:
            return None
        kind = _EVENT_TYPES[column]
        if kind == "ts":
            return self._ts_param(value)
        if kind == "bool":
            return bool(value)
        return value

    def _event_value(self, column: str, raw: Any) -> Any:
        if raw is None:
            return None
        kind = _EVENT_TYPES[column]
        if kind == "ts":
            return self._ts_value(raw)
        if kind == "bool":
            return bool(raw)
        if kind == "real":
            return float(raw)
        return raw

    def add_events(self, table: EventTable, events: list[dict[str, Any]]) -> list[str]:
        """Insert events, skipping any whose event id (or order id) the same seller already stored."""
        cols = (*EVENT_KEY, *EVENT_COLUMNS[table], *BOOKKEEPING)
        sql = self._sql(
            f"INSERT INTO feedback_{table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
            "ON CONFLICT DO NOTHING"
        )
        now = utcnow()
        stored: list[str] = []
        with self._transaction() as cur:
            for event in events:
                row = {**event, "received_at": event.get("received_at") or now}
                cur.execute(sql, [self._event_param(c, row.get(c)) for c in cols])
                if cur.rowcount == 1:
                    stored.append(event["event_id"])
        return stored

    def events(self, table: EventTable, since: datetime | None = None) -> list[dict[str, Any]]:
        """Stored events received at or after `since`, oldest first."""
        cols = (*EVENT_KEY, *EVENT_COLUMNS[table], *BOOKKEEPING)
        sql = f"SELECT {', '.join(cols)} FROM feedback_{table}"
        params: list[Any] = []
        if since is not None:
            sql += " WHERE received_at >= ?"
            params.append(self._ts_param(since))
        sql += " ORDER BY received_at, seller_id, event_id"
        with self._transaction() as cur:
            cur.execute(self._sql(sql), params)
            rows = cur.fetchall()
        return [{c: self._event_value(c, v) for c, v in zip(cols, row)} for row in rows]

    # Weights ------------------------------------------------------------------------------------
    def _lock_weights(self, cur: Cursor) -> None:
        """Serialise concurrent weight changes (a backend may need more than its transaction)."""

    def weights(self) -> StoredWeights | None:
        """The stored weights, or None before the first change."""
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT body, version, updated_at, updated_by FROM ops_weights WHERE id = 1"))
            row = cur.fetchone()
        if row is None:
            return None
        return StoredWeights(json.loads(row[0]), int(row[1]), self._ts_value(row[2]), row[3])

    def set_weights(self, new: dict[str, Any], actor: str, default: dict[str, Any], reason: str = "",
                    expected_version: int | None = None, reverts: int | None = None) -> AuditEntry:
        """Replace the weights and append an audit entry atomically; VersionConflict if `expected_version` is stale."""
        now = utcnow()
        body = json.dumps(new, sort_keys=True, ensure_ascii=False)
        with self._transaction() as cur:
            self._lock_weights(cur)
            cur.execute(self._sql("SELECT body, version FROM ops_weights WHERE id = 1"))
            row = cur.fetchone()
            current = int(row[1]) if row else 0
            if expected_version is not None and expected_version != current:
                raise VersionConflict(expected_version, current)
            old, version = (json.loads(row[0]), current + 1) if row else (default, 1)
            cur.execute(
                self._sql(
                    "INSERT INTO ops_weights (id, body, version, updated_at, updated_by) VALUES (1, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET body = excluded.body, version = excluded.version, "
                    "updated_at = excluded.updated_at, updated_by = excluded.updated_by"
                ),
                [body, version, self._ts_param(now), actor],
            )
            cur.execute(
                self._sql("INSERT INTO ops_weights_audit (at, actor, old, new, version, reason, reverts) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"),
                [self._ts_param(now), actor, json.dumps(old, sort_keys=True, ensure_ascii=False), body, version,
                 reason, reverts],
            )
            entry_id = int(cur.fetchone()[0])
        return AuditEntry(entry_id, now, actor, old, new, version, reason, reverts)

    _AUDIT_COLUMNS = "id, at, actor, old, new, version, reason, reverts"

    def _audit_entry(self, r: Sequence[Any]) -> AuditEntry:
        return AuditEntry(int(r[0]), self._ts_value(r[1]), r[2], json.loads(r[3]), json.loads(r[4]), int(r[5]),
                          r[6] or "", None if r[7] is None else int(r[7]))

    def audit(self, limit: int = 100) -> list[AuditEntry]:
        """The latest weight changes, newest first."""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {self._AUDIT_COLUMNS} FROM ops_weights_audit ORDER BY id DESC LIMIT ?"),
                        [int(limit)])
            rows = cur.fetchall()
        return [self._audit_entry(r) for r in rows]

    def audit_entry(self, entry_id: int) -> AuditEntry | None:
        """One audit entry by id, or None."""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {self._AUDIT_COLUMNS} FROM ops_weights_audit WHERE id = ?"), [int(entry_id)])
            row = cur.fetchone()
        return None if row is None else self._audit_entry(row)

    @abstractmethod
    def _local_day_sql(self, column: str) -> str:
        """SQL text of a timestamp column's day in UTC+8 as 'YYYY-MM-DD'."""

    def event_counts(self, table: EventTable, since: datetime) -> dict[date, int]:
        """Events received since `since`, counted per Asia/Shanghai day (the database groups them)."""
        if table not in EVENT_COLUMNS:
            raise ValueError(f"unknown feedback table {table!r}")
        day = self._local_day_sql("received_at")
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {day} AS d, COUNT(*) FROM feedback_{table} WHERE received_at >= ? "
                                  "GROUP BY d ORDER BY d"), [self._ts_param(since)])
            rows = cur.fetchall()
        return {date.fromisoformat(str(d)[:10]): int(n) for d, n in rows}

    # Keys ---------------------------------------------------------------------------------------
    def _key_record(self, row: Sequence[Any]) -> KeyRecord:
        values = dict(zip(_KEY_COLUMNS, row))
        values["created_at"] = self._ts_value(values["created_at"])
        values["revoked_at"] = None if values["revoked_at"] is None else self._ts_value(values["revoked_at"])
        return KeyRecord(**values)

    def add_key(self, record: KeyRecord) -> None:
        """Insert a key record."""
        values = [getattr(record, c) for c in _KEY_COLUMNS]
        values[7] = self._ts_param(record.created_at or utcnow())
        values[8] = None if record.revoked_at is None else self._ts_param(record.revoked_at)
        with self._transaction() as cur:
            cur.execute(
                self._sql(f"INSERT INTO api_keys ({', '.join(_KEY_COLUMNS)}) VALUES ({', '.join('?' for _ in _KEY_COLUMNS)})"),
                values,
            )

    def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key with this hash, or None."""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {', '.join(_KEY_COLUMNS)} FROM api_keys WHERE key_hash = ?"), [key_hash])
            row = cur.fetchone()
        return None if row is None else self._key_record(row)

    def keys(self) -> list[KeyRecord]:
        """Every key record, oldest first."""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {', '.join(_KEY_COLUMNS)} FROM api_keys ORDER BY created_at, key_id"))
            rows = cur.fetchall()
        return [self._key_record(r) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        """Revoke an active key."""
        with self._transaction() as cur:
            cur.execute(
                self._sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"),
                [self._ts_param(utcnow()), key_id],
            )
            return cur.rowcount == 1

    # Copy history -------------------------------------------------------------------------------
    def record_copy(self, group_id: str, day: date, template_ids: list[str]) -> None:
        """Remember the templates shown to a group on a day."""
        sql = self._sql("INSERT INTO copy_history (group_id, day, template_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        with self._transaction() as cur:
            for template_id in dict.fromkeys(template_ids):
                cur.execute(sql, [group_id, self._date_param(day), template_id])

    def copy_history(self, group_id: str, start: date, end: date) -> list[tuple[str, date]]:
        """Templates a group was shown with start <= day < end."""
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT template_id, day FROM copy_history WHERE group_id = ? AND day >= ? AND day < ? "
                    "ORDER BY day, template_id"
                ),
                [group_id, self._date_param(start), self._date_param(end)],
            )
            rows = cur.fetchall()
        return [(r[0], self._date_value(r[1])) for r in rows]

