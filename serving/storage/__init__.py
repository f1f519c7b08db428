"""Storage backends of the service: a durable Store (SQLite or PostgreSQL) and a Cache (in-process or Redis)."""

from serving.storage.base import AuditEntry, Cache, KeyRecord, Store, StoredWeights
from serving.storage.factory import open_cache, open_store

__all__ = ["AuditEntry", "Cache", "KeyRecord", "Store", "StoredWeights", "open_cache", "open_store"]
