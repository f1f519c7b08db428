"""Shared state read on every request, reused for a short while: the ops weights in force."""

from __future__ import annotations

import threading
import time

from recsys.config import OpsWeights
from serving.storage.base import Store, StoredWeights


class WeightsSource:
    """The ops weights in force: the stored ones, else the configured defaults; re-read after `ttl_seconds`."""

    def __init__(self, store: Store, default: OpsWeights, ttl_seconds: float) -> None:
        self.store = store
        self.default = default
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._value: tuple[OpsWeights, StoredWeights | None] | None = None
        self._read_at = 0.0

    def current(self) -> tuple[OpsWeights, StoredWeights | None]:
        """(weights, stored record or None while the defaults apply)."""
        now = time.monotonic()
        with self._lock:
            if self._value is not None and now - self._read_at < self.ttl_seconds:
                return self._value
        stored = self.store.weights()
        weights = OpsWeights.model_validate(stored.weights) if stored else self.default
        with self._lock:
            self._value = (weights, stored)
            self._read_at = now
        return weights, stored

    def invalidate(self) -> None:
        """Forget the cached value (after a change made by this replica)."""
        with self._lock:
            self._value = None
