"""The in-process cache: an LRU with expiry and token buckets, for a single replica."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from serving.storage.base import Cache


class MemoryCache(Cache):
    """LRU cache of at most `max_items` values plus token buckets, all in this process."""

    blocking = False

    def __init__(self, max_items: int = 50_000) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store a value, evicting the least recently used beyond max_items."""
        if ttl_seconds <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + ttl_seconds, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def take_token(self, bucket: str, capacity: int, per_second: float, now: float | None = None) -> float:
        """Token bucket in a dict: (tokens, last refill time) per bucket."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(bucket, (float(capacity), now))
            tokens = min(float(capacity), tokens + max(0.0, now - last) * per_second)
            if tokens >= 1.0:
                self._buckets[bucket] = (tokens - 1.0, now)
                return 0.0
            self._buckets[bucket] = (tokens, now)
            return (1.0 - tokens) / per_second

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()
            self._buckets.clear()

    def close(self) -> None:
        """Nothing to release."""
