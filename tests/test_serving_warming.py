"""Today's picks are prepared in the background: the first request of a group's day is a cache read, and a
weights change prepares them again."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.storage.factory import open_store
from serving.testing import make_keys, service_config, write_small_artifact

CST = timezone(timedelta(hours=8))


def _wait_prepared(services, tag_before: str | None = None, seconds: float = 60.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = services.warmer.done_for
        if done is not None and done != tag_before:
            return done
        time.sleep(0.05)
    pytest.fail("the picks were not prepared in time")


def _cache_counts(metrics: str) -> tuple[float, float]:
    hit = float(re.search(r'quanxuan_picks_cache_total\{result="hit"\} (\S+)', metrics).group(1))
    miss = float(re.search(r'quanxuan_picks_cache_total\{result="miss"\} (\S+)', metrics).group(1))
    return hit, miss


@pytest.fixture
def world(tmp_path):
    write_small_artifact(tmp_path / "artifacts")
    config = service_config(tmp_path, prepare_picks=True)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    app = create_app(config, store=store)
    app.state.services.warmer.poll_seconds = 0.1
    with TestClient(app) as client:
        yield client, app.state.services, keys, store
    store.close()


def test_the_first_request_of_the_day_is_a_cache_read(world):
    client, services, keys, store = world
    _wait_prepared(services)
    today = datetime.now(CST).date()
    # Every group of the artifact got its copy of the day, seller by seller.
    assert all(store.copy_history(g, today, today + timedelta(days=1))
               for g in services.holder.current.groups if services.holder.current.artifact.picks_of(g) is not None)
    response = client.get("/v1/groups/G0/picks", headers={"X-API-Key": keys["seller0"]})
    assert response.status_code == 200
    assert _cache_counts(client.get("/metrics").text) == (1.0, 0.0)
    # Preparing again finds nothing to do.
    assert services.warmer.prepare_once() == 0


def test_a_weights_change_prepares_the_day_again(world):
    client, services, keys, _ = world
    before = _wait_prepared(services)
    ops = {"X-API-Key": keys["ops"]}
    current = client.get("/v1/ops/weights", headers=ops).json()
    update = {"default": {**current["weights"]["default"], "rating": 3.0}, "overrides": current["weights"]["overrides"]}
    update["version"] = current["version"]
    update["reason"] = "测试：提高好评率权重"
    assert client.put("/v1/ops/weights", json=update, headers=ops).status_code == 200
    after = _wait_prepared(services, tag_before=before)
    assert after != before
    body = client.get("/v1/groups/G1/picks", headers={"X-API-Key": keys["seller0"]}).json()
    assert body["weights_hash"] in after
    assert _cache_counts(client.get("/metrics").text) == (1.0, 0.0)
