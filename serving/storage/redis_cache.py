"""The shared cache: Redis holds rendered picks and the token buckets, so every replica sees the same ones."""

from __future__ import annotations

import time
import uuid

import redis

from serving.storage.base import Cache

# Atomic token bucket: KEYS[1] hash {tokens, ts}; ARGV capacity, per_second, now. Returns the wait
# in seconds as a string (0 when allowed). Idle buckets expire once they would be full again.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""

# The same bucket, then GET KEYS[2] when a token was taken: one round trip for the picks hot path.
_TAKE_AND_GET = _TAKE.replace(
    "return tostring(wait)",
    "if wait > 0 then return {tostring(wait), false} end\nreturn {tostring(wait), redis.call('GET', KEYS[2])}",
)


class RedisCache(Cache):
    """Cache in Redis under a key prefix (so several deployments or test runs can share one server)."""

    def __init__(self, url: str, prefix: str = "quanxuan:") -> None:
        self.url = url
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._take = self._client.register_script(_TAKE)
        self._take_and_get = self._client.register_script(_TAKE_AND_GET)

    def ping(self) -> bool:
        """Whether the server answers."""
        return bool(self._client.ping())

    def get(self, key: str) -> bytes | None:
        """The value, or None."""
        return self._client.get(self.prefix + "c:" + key)

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store a value with an expiry."""
        if ttl_seconds > 0:
            self._client.set(self.prefix + "c:" + key, value, ex=ttl_seconds)

    def take_token(self, bucket: str, capacity: int, per_second: float, now: float | None = None) -> float:
        """Token bucket evaluated atomically inside Redis (a Lua script)."""
        now = time.time() if now is None else now
        wait = self._take(keys=[self.prefix + "rl:" + bucket], args=[capacity, per_second, repr(float(now))])
        return float(wait)

    def take_token_and_get(self, bucket: str, capacity: int, per_second: float, key: str) -> tuple[float, bytes | None]:
        """Token bucket and cache look-up in one Lua script."""
        wait, value = self._take_and_get(keys=[self.prefix + "rl:" + bucket, self.prefix + "c:" + key],
                                         args=[capacity, per_second, repr(time.time())])
        return float(wait), value

    def clear(self) -> None:
        """Delete every key under this cache's prefix."""
        batch = list(self._client.scan_iter(match=self.prefix + "*", count=500))
        for start in range(0, len(batch), 500):
            self._client.delete(*batch[start : start + 500])

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def unique_prefix(base: str = "quanxuan-test") -> str:
    """A fresh key prefix, for tests and benchmarks that must not touch anyone else's keys."""
    return f"{base}:{uuid.uuid4().hex[:12]}:"
