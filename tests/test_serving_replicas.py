"""Several replicas on one PostgreSQL database and one Redis: shared keys, rate limits and rendered picks."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.auth import create_key
from serving.storage.factory import open_cache, open_store
from serving.testing import PEPPER, require_postgres, require_redis, service_config, unique_name, write_small_artifact


@pytest.fixture
def replicas(tmp_path):
    """Two apps sharing PostgreSQL (unique schema) and Redis (unique prefix), as production replicas do."""
    write_small_artifact(tmp_path / "artifacts", when=datetime(2024, 5, 1, 0, 30, tzinfo=timezone.utc))
    db_url = f"{require_postgres()}?schema={unique_name()}"
    cache_url = f"{require_redis()}?prefix={unique_name()}:"
    config = service_config(tmp_path, db_url=db_url, cache_url=cache_url)
    stores = [open_store(db_url), open_store(db_url)]
    caches = [open_cache(cache_url), open_cache(cache_url)]
    apps = [create_app(config, store=s, cache=c) for s, c in zip(stores, caches)]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        yield a, b, stores[0]
    caches[0].clear()
    for backend in (*stores, *caches):
        backend.close()
    open_store(db_url, init=False).drop_schema()


def test_rate_limits_are_shared_through_redis(replicas):
    a, b, store = replicas
    key, _ = create_key(store, PEPPER, "ops", rate_per_minute=6)  # a bucket of one request
    assert a.get("/v1/ops/weights", headers={"X-API-Key": key}).status_code == 200
    refused = b.get("/v1/ops/weights", headers={"X-API-Key": key})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"


def test_a_key_made_on_one_replica_works_on_the_other_until_revoked(replicas):
    a, b, store = replicas
    admin, _ = create_key(store, PEPPER, "admin")
    made = a.post("/v1/admin/keys", json={"role": "seller", "seller_id": "S0"}, headers={"X-API-Key": admin}).json()
    assert b.get("/v1/groups/G0/picks", headers={"X-API-Key": made["key"]}).status_code == 200
    assert a.delete(f"/v1/admin/keys/{made['key_id']}", headers={"X-API-Key": admin}).status_code == 204
    # state_refresh_seconds is 0 in these tests: the other replica re-reads the key at once.
    assert b.get("/v1/groups/G0/picks", headers={"X-API-Key": made["key"]}).status_code == 401


def test_picks_rendered_on_one_replica_are_served_from_redis_by_the_other(replicas):
    a, b, store = replicas
    seller, _ = create_key(store, PEPPER, "seller", seller_id="S0")
    first = a.get("/v1/groups/G1/picks", headers={"X-API-Key": seller}, params={"date": "2024-05-01"})
    second = b.get("/v1/groups/G1/picks", headers={"X-API-Key": seller}, params={"date": "2024-05-01"})
    assert first.status_code == second.status_code == 200 and first.content == second.content
    metrics = b.get("/metrics").text
    assert 'quanxuan_picks_cache_total{result="hit"} 1.0' in metrics
    assert 'quanxuan_picks_cache_total{result="miss"} 0.0' in metrics
