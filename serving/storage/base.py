"""The storage contract every backend fulfils: feedback events, ops weights and their audit, API keys, copy history.

Two kinds of backend: a `Store` (durable state: SQLite embedded, PostgreSQL in production) and a `Cache`
(rendered picks and rate-limit buckets: in-process by default, Redis when replicas must share them).
One contract test suite (tests/test_storage_contract.py) runs against each of them over real connections.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

EventTable = Literal["pushes", "orders"]
Role = Literal["seller", "brand", "ops", "admin"]
ROLES: tuple[str, ...] = ("seller", "brand", "ops", "admin")

# Feedback ids are the seller's own: one seller's `event_id` or `order_id` never collides with another's,
# so every stored event carries the seller running its group (its tenant) and ids are unique per seller.
EVENT_KEY = ("seller_id", "event_id")
# Stored columns of each feedback table besides the key: the data-contract columns first
# (what `export_feedback` writes), then bookkeeping.
EVENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "pushes": ("group_id", "product_id", "pushed_at", "price_at_push"),
    "orders": ("order_id", "group_id", "product_id", "ordered_at", "quantity", "paid", "commission", "buyer_id", "refunded"),
}
BOOKKEEPING = ("received_at", "submitted_by")


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored: never the key itself, only its hash."""

    key_id: str
    key_hash: str
    role: str
    seller_id: str | None = None
    brand: str | None = None
    name: str = ""
    rate_per_minute: int | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key may still be used."""
        return self.revoked_at is None


@dataclass(frozen=True)
class AuditEntry:
    """One change of the ops weights: who, when, the profile before and after."""

    id: int
    at: datetime
    actor: str
    old: dict[str, Any]
    new: dict[str, Any]
    version: int
    reason: str = ""
    reverts: int | None = None  # the audit entry id this change undid, if it was a revert


class VersionConflict(Exception):
    """The weights moved since the client read them: it edited `expected`, the store holds `current`."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"the weights are at version {current}, not {expected}")
        self.expected = expected
        self.current = current


@dataclass(frozen=True)
class StoredWeights:
    """The current ops weights as stored, with a version that grows by one per change."""

    weights: dict[str, Any]
    version: int
    updated_at: datetime | None
    updated_by: str


class Store(ABC):
    """Durable service state shared by every replica."""

    @abstractmethod
    def init(self) -> None:
        """Create the tables if they are missing (idempotent)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # Feedback events -------------------------------------------------------------------------
    @abstractmethod
    def add_events(self, table: EventTable, events: list[dict[str, Any]]) -> list[str]:
        """Store events keyed by (`seller_id`, `event_id`); an id (or order id) the same seller already stored is
        skipped. Returns the event ids stored now."""

    @abstractmethod
    def events(self, table: EventTable, since: datetime | None = None) -> list[dict[str, Any]]:
        """Stored events (received at or after `since`), oldest first, as dicts of EVENT_KEY + EVENT_COLUMNS + BOOKKEEPING."""

    # Ops weights -----------------------------------------------------------------------------
    @abstractmethod
    def weights(self) -> StoredWeights | None:
        """The current weights, or None while nobody has changed the configured defaults."""

    @abstractmethod
    def set_weights(self, new: dict[str, Any], actor: str, default: dict[str, Any], reason: str = "",
                    expected_version: int | None = None, reverts: int | None = None) -> AuditEntry:
        """Replace the weights and append the change to the audit log in one transaction.

        `default` is recorded as the old value when nothing was stored before. With `expected_version`
        (0 = nothing stored yet) the change is made only if the stored version is still that one, else
        `VersionConflict` is raised and nothing is written (optimistic concurrency).
        """

    @abstractmethod
    def audit(self, limit: int = 100) -> list[AuditEntry]:
        """The latest weight changes, newest first."""

    @abstractmethod
    def audit_entry(self, entry_id: int) -> AuditEntry | None:
        """One audit entry by its id, or None."""

    @abstractmethod
    def event_counts(self, table: EventTable, since: datetime) -> dict[date, int]:
        """Events received at or after `since`, counted per day of receipt in Asia/Shanghai (UTC+8)."""

    # API keys --------------------------------------------------------------------------------
    @abstractmethod
    def add_key(self, record: KeyRecord) -> None:
        """Store a new key record (its key_id and hash must be new)."""

    @abstractmethod
    def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key with this hash, revoked or not, or None."""

    @abstractmethod
    def keys(self) -> list[KeyRecord]:
        """Every key record, oldest first."""

    @abstractmethod
    def revoke_key(self, key_id: str) -> bool:
        """Mark a key revoked; False when no active key has this id."""

    # Copy history ----------------------------------------------------------------------------
    @abstractmethod
    def record_copy(self, group_id: str, day: date, template_ids: list[str]) -> None:
        """Remember which copy templates a group was shown on a day (repeats are ignored)."""

    @abstractmethod
    def copy_history(self, group_id: str, start: date, end: date) -> list[tuple[str, date]]:
        """(template_id, day) pairs of a group with start <= day < end, oldest first."""


class Cache(ABC):
    """Short-lived shared state: rendered picks and per-key token buckets."""

    # Whether calls wait on the network; the service then runs them off the event loop.
    blocking: bool = True

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The cached value, or None when absent or expired."""

    @abstractmethod
    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Cache a value for ttl_seconds."""

    @abstractmethod
    def take_token(self, bucket: str, capacity: int, per_second: float, now: float | None = None) -> float:
        """Take one token from a token bucket; returns 0 when allowed, else the seconds until a token is due.

        A new bucket starts full; it refills `per_second` tokens a second up to `capacity`.
        `now` (seconds) is for tests; backends use their own clock when it is None.
        """

    def take_token_and_get(self, bucket: str, capacity: int, per_second: float, key: str) -> tuple[float, bytes | None]:
        """`take_token`, then `get(key)` when allowed: (wait seconds, value or None). Redis does both in one round trip."""
        wait = self.take_token(bucket, capacity, per_second)
        return (wait, None) if wait > 0 else (0.0, self.get(key))

    @abstractmethod
    def clear(self) -> None:
        """Drop everything this cache holds (its own keys only)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
