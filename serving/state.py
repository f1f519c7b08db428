"""Shared state read on every request, reused for a short while: the ops weights in force."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from recsys.blend import weights_hash
from contracts.config import BlendWeights, OpsWeights
from serving.storage.base import Store, StoredWeights


@dataclass(frozen=True)
class WeightsSnapshot:
    """The weights in force, their stored record (None while the defaults apply) and each profile's hash."""

    weights: OpsWeights
    stored: StoredWeights | None
    hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, weights: OpsWeights, stored: StoredWeights | None) -> "WeightsSnapshot":
        """Hash every profile once, so requests only look hashes up."""
        hashes = {"default": weights_hash(weights.default)} | {t: weights_hash(w) for t, w in weights.overrides.items()}
        return cls(weights, stored, hashes)

    def profile(self, seller_type: str) -> BlendWeights:
        """The profile that applies to a seller type."""
        return self.weights.for_seller_type(seller_type)

    def hash_for(self, seller_type: str) -> str:
        """weights_hash of the profile that applies to a seller type."""
        return self.hashes.get(seller_type, self.hashes["default"])


class WeightsSource:
    """The ops weights in force: the stored ones, else the configured defaults; re-read after `ttl_seconds`."""

    def __init__(self, store: Store, default: OpsWeights, ttl_seconds: float) -> None:
        self.store = store
        self.default = default
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._value: WeightsSnapshot | None = None
        self._read_at = 0.0
        self._refreshing = False

    def fresh(self) -> WeightsSnapshot | None:
        """The snapshot if read less than `ttl_seconds` ago, without touching the store.

        When it has just gone stale, the first caller gets None (and must call `current`); callers
        arriving while that refresh runs keep the previous snapshot instead of all querying the store.
        """
        with self._lock:
            if self._value is None:
                return None
            if time.monotonic() - self._read_at < self.ttl_seconds or self._refreshing:
                return self._value
            self._refreshing = True
            return None

    def current(self) -> WeightsSnapshot:
        """The snapshot, re-read from the store when stale."""
        with self._lock:
            if self._value is not None and time.monotonic() - self._read_at < self.ttl_seconds:
                return self._value
        now = time.monotonic()
        try:
            stored = self.store.weights()
        finally:
            with self._lock:
                self._refreshing = False
        weights = OpsWeights.model_validate(stored.weights) if stored else self.default
        value = WeightsSnapshot.of(weights, stored)
        with self._lock:
            self._value = value
            self._read_at = now
        return value

    def invalidate(self) -> None:
        """Forget the cached value (after a change made by this replica)."""
        with self._lock:
            self._value = None
