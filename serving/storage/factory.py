"""Choose the backends by URL: `QUANXUAN_DB_URL` (sqlite:///path or postgresql://…) and `QUANXUAN_CACHE_URL` (redis://… or empty)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from serving.storage.base import Cache, Store
from serving.storage.memory_cache import MemoryCache


def redact(url: str) -> str:
    """A URL fit for an error message or a log line: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _plain(url: str | SecretStr) -> str:
    return url.get_secret_value() if isinstance(url, SecretStr) else url


def open_store(url: str | SecretStr, init: bool = True) -> Store:
    """The store a URL names; `?schema=NAME` on a PostgreSQL URL keeps the tables in that schema."""
    url = _plain(url)
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from serving.storage.sqlite import SqliteStore

        # sqlite:///relative.db, sqlite:////absolute.db, sqlite:///:memory:
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"cannot read a SQLite path from {redact(url)!r}; write sqlite:///file.sqlite3")
        store: Store = SqliteStore(path)
    elif scheme in ("postgresql", "postgres"):
        from serving.storage.postgres import PostgresStore

        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        schema = query.pop("schema", None)
        clean = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
        store = PostgresStore(clean, schema=schema)
    else:
        raise ValueError(f"unknown database URL scheme {scheme!r} in {redact(url)!r}: use sqlite:/// or postgresql://")
    if init:
        store.init()
    return store


def open_cache(url: str | SecretStr) -> Cache:
    """Redis for redis:// URLs, a shared SQLite file for sqlite:/// ones (`?prefix=NAME:` sets the key prefix of
    either), else an in-process cache."""
    url = _plain(url)
    if not url:
        return MemoryCache()
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from serving.storage.sqlite_cache import SqliteCache

        path = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"cannot read a SQLite path from {redact(url)!r}; write sqlite:///cache.sqlite3")
        return SqliteCache(path, prefix=dict(parse_qsl(parts.query)).get("prefix", ""))
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"unknown cache URL scheme {parts.scheme!r} in {redact(url)!r}: "
                         "use redis://, sqlite:/// (worker processes of one machine) or leave it empty")
    from serving.storage.redis_cache import RedisCache

    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", "quanxuan:")
    return RedisCache(urlunsplit(parts._replace(query=urlencode(query))), prefix=prefix)
