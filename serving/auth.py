"""API keys with roles, deny by default: creation, hashing, lookup, scope checks and per-key rate limits.

A key reads `qx_<key_id>_<secret>`: the key id is public (listed, revoked by it), the secret is
32 random bytes. Only HMAC-SHA256(pepper, key) is stored; the pepper is a server-side secret
(`QUANXUAN_KEY_PEPPER`) kept out of the database, so a leaked table cannot be matched against keys.
The keys carry 256 bits of randomness, so a slow hash (scrypt) would add latency without adding safety.

What each role may do (anything not listed is refused):

| action | seller | brand | ops | admin |
|---|---|---|---|---|
| read a group's or seller's picks | own seller's groups | — | any | any |
| post push / order feedback | own seller's groups | — | — | — |
| read a brand's products (brand reach, later) | — | own brand | any | any |
| read ops weights and their audit | — | — | yes | yes |
| change ops weights | — | — | yes | — |
| check a text against the advertising law | yes | yes | yes | yes |
| manage keys, reload the artifact | — | — | — | yes |
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from serving.storage.base import ROLES, Cache, KeyRecord, Store

KEY_PATTERN = re.compile(r"^qx_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")

# Action -> roles allowed; ownership (own seller, own brand) is checked separately.
PERMISSIONS: dict[str, frozenset[str]] = {
    "picks:read": frozenset({"seller", "ops", "admin"}),
    "feedback:write": frozenset({"seller"}),
    "brand:read": frozenset({"brand", "ops", "admin"}),
    "weights:read": frozenset({"ops", "admin"}),
    "weights:write": frozenset({"ops"}),
    "copy:check": frozenset(ROLES),
    "keys:manage": frozenset({"admin"}),
    "artifact:reload": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, role and the tenant it is bound to."""

    key_id: str
    role: str
    seller_id: str | None = None
    brand: str | None = None
    rate_per_minute: int | None = None
    name: str = ""

    @classmethod
    def from_record(cls, record: KeyRecord) -> "Principal":
        """The principal a stored key stands for."""
        return cls(record.key_id, record.role, record.seller_id, record.brand, record.rate_per_minute, record.name)


def hash_key(key: str, pepper: str) -> str:
    """HMAC-SHA256 of the key under the server's pepper, hex."""
    return hmac.new(pepper.encode("utf-8"), key.encode("utf-8"), hashlib.sha256).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key_id, key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"qx_{key_id}_{secrets.token_urlsafe(32)}"


def check_binding(role: str, seller_id: str | None, brand: str | None) -> str | None:
    """Why a role/tenant combination is invalid, or None: seller keys need a seller, brand keys a brand, others neither."""
    if role not in ROLES:
        return f"unknown role {role!r}; one of {', '.join(ROLES)}"
    if role == "seller" and not seller_id:
        return "a seller key needs a seller_id"
    if role == "brand" and not brand:
        return "a brand key needs a brand"
    if role != "seller" and seller_id:
        return f"a {role} key cannot be bound to a seller"
    if role != "brand" and brand:
        return f"a {role} key cannot be bound to a brand"
    return None


def create_key(
    store: Store,
    pepper: str,
    role: str,
    seller_id: str | None = None,
    brand: str | None = None,
    name: str = "",
    rate_per_minute: int | None = None,
) -> tuple[str, KeyRecord]:
    """Create and store a key; returns (the key, shown only now, and its record). ValueError for a bad binding."""
    problem = check_binding(role, seller_id, brand)
    if problem:
        raise ValueError(problem)
    key_id, key = new_key()
    record = KeyRecord(
        key_id=key_id, key_hash=hash_key(key, pepper), role=role, seller_id=seller_id or None, brand=brand or None,
        name=name, rate_per_minute=rate_per_minute, created_at=datetime.now(timezone.utc),
    )
    store.add_key(record)
    return key, record


def allowed(principal: Principal, action: str) -> bool:
    """Whether the principal's role may perform the action at all (unknown actions are refused)."""
    return principal.role in PERMISSIONS.get(action, frozenset())


def may_read_seller(principal: Principal, seller_id: str) -> bool:
    """Whether the principal may read picks of this seller's groups."""
    if not allowed(principal, "picks:read"):
        return False
    return principal.role != "seller" or principal.seller_id == seller_id


def may_write_feedback(principal: Principal, seller_id: str) -> bool:
    """Whether the principal may post feedback for a group run by this seller."""
    return allowed(principal, "feedback:write") and principal.seller_id == seller_id


def may_read_brand(principal: Principal, brand: str) -> bool:
    """Whether the principal may read products of this brand (brand keys: only their own)."""
    if not allowed(principal, "brand:read"):
        return False
    return principal.role != "brand" or principal.brand == brand


class KeyResolver:
    """Turns a presented key into a Principal, reusing store lookups for `ttl_seconds`."""

    def __init__(self, store: Store, pepper: str, ttl_seconds: float) -> None:
        self.store = store
        self.pepper = pepper
        self.ttl_seconds = ttl_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def cached(self, key: str) -> Principal | None:
        """The principal of a key looked up less than `ttl_seconds` ago, without touching the store.

        When the entry has just expired, the first caller gets None (and must call `resolve`); callers
        arriving while that refresh runs keep the previous answer instead of all querying the store.
        """
        digest = hash_key(key, self.pepper)
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None:
                return None
            if time.monotonic() - hit[0] < self.ttl_seconds or digest in self._refreshing:
                return hit[1]
            self._refreshing.add(digest)
            return None

    def resolve(self, key: str | None) -> Principal | None:
        """The principal of an active key, or None for a missing, malformed, unknown or revoked key."""
        if not key or not KEY_PATTERN.match(key):
            return None
        digest = hash_key(key, self.pepper)
        try:
            record = self.store.key_by_hash(digest)
        finally:
            with self._lock:
                self._refreshing.discard(digest)
        if record is None or not record.active:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        principal = Principal.from_record(record)
        if self.ttl_seconds > 0:
            with self._lock:
                if len(self._cache) > 100_000:  # bounded: only real keys get here
                    self._cache.clear()
                self._cache[digest] = (time.monotonic(), principal)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop a key from this replica's cache at once (after revoking it here)."""
        with self._lock:
            for digest in [d for d, (_, p) in self._cache.items() if p.key_id == key_id]:
                del self._cache[digest]


class RateLimiter:
    """Per-key token buckets: `per_minute` requests a minute on average, bursts of ten seconds' worth."""

    def __init__(self, cache: Cache, default_per_minute: int) -> None:
        self.cache = cache
        self.default_per_minute = default_per_minute

    def bucket(self, principal: Principal) -> tuple[int, float]:
        """(capacity, tokens per second) of the key's bucket."""
        per_minute = principal.rate_per_minute or self.default_per_minute
        return max(1, math.ceil(per_minute / 6)), per_minute / 60.0

    def wait_seconds(self, principal: Principal) -> float:
        """0 when the request may go ahead, else the seconds until the key's next token."""
        return self.cache.take_token(principal.key_id, *self.bucket(principal))
