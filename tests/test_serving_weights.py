"""Ops weights: validated against their ranges, effective without a restart on every replica, audited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recsys.blend import weights_hash
from contracts.config import BlendWeights, OpsWeights
from serving.app import create_app
from serving.auth import create_key
from serving.storage.factory import open_store
from serving.testing import PEPPER, require_postgres, service_config, unique_name

DEFAULTS = OpsWeights().model_dump(mode="json")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A fresh shared database for the replicas of one test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    url = f"{require_postgres()}?schema={unique_name()}"
    yield url
    open_store(url, init=False).drop_schema()


@pytest.fixture
def replicas(tmp_path, artifacts, db_url):
    """Two app instances (own store connections, own caches) on one database, plus ops and seller keys."""
    config = service_config(tmp_path, artifact_dir=str(artifacts), db_url=db_url)
    stores = [open_store(db_url), open_store(db_url)]
    keys = {
        "ops": create_key(stores[0], PEPPER, "ops", name="小王")[0],
        "ops_id": stores[0].keys()[0].key_id,
        "seller": create_key(stores[0], PEPPER, "seller", seller_id="S0")[0],
    }
    with TestClient(create_app(config, store=stores[0])) as a, TestClient(create_app(config, store=stores[1])) as b:
        yield a, b, keys, stores[0]
    for s in stores:
        s.close()


def test_weights_changed_on_one_replica_are_seen_by_the_other(replicas):
    a, b, keys, store = replicas
    ops = {"X-API-Key": keys["ops"]}
    initial = b.get("/v1/ops/weights", headers=ops).json()
    assert initial["version"] == 0 and initial["weights"] == DEFAULTS and initial["updated_by"] is None
    assert initial["hashes"] == {"default": weights_hash(BlendWeights())}
    before = b.get("/v1/groups/G0/picks", headers={"X-API-Key": keys["seller"]}).json()

    new = {"default": {"conversion": 1.5, "earnings": 1.0, "rating": 2.0, "order_value": 0.5, "diversity": 2.0, "adoption": 0.5},
           "overrides": {"学生": {"conversion": 1.0, "earnings": 0.5, "rating": 2.0, "order_value": 0.0, "diversity": 1.0, "adoption": 1.0}}}
    put = a.put("/v1/ops/weights", json=new, headers=ops)
    assert put.status_code == 200 and put.json()["version"] == 1

    seen = b.get("/v1/ops/weights", headers=ops).json()
    assert seen["version"] == 1 and seen["weights"] == new and seen["updated_by"] == f"{keys['ops_id']} (小王)"
    assert seen["hashes"]["学生"] == weights_hash(BlendWeights(**new["overrides"]["学生"]))
    after = b.get("/v1/groups/G0/picks", headers={"X-API-Key": keys["seller"]}).json()
    assert before["weights_hash"] == weights_hash(BlendWeights())
    assert after["weights_hash"] == weights_hash(BlendWeights(**new["default"]))


def test_every_change_is_in_the_audit_log(replicas):
    a, b, keys, store = replicas
    ops = {"X-API-Key": keys["ops"]}
    first = {"default": {**DEFAULTS["default"], "rating": 3.0}, "overrides": {}}
    second = {"default": {**DEFAULTS["default"], "rating": 3.0}, "overrides": {"宝妈": {**DEFAULTS["default"], "diversity": 0.0}}}
    assert a.put("/v1/ops/weights", json=first, headers=ops).status_code == 200
    assert b.put("/v1/ops/weights", json=second, headers=ops).status_code == 200
    entries = a.get("/v1/ops/weights/audit", headers=ops).json()["entries"]
    assert [(e["version"], e["old"], e["new"]) for e in entries] == [(2, first, second), (1, DEFAULTS, first)]
    assert all(e["actor"] == f"{keys['ops_id']} (小王)" for e in entries)
    assert entries[0]["at"] >= entries[1]["at"]
    assert [e["version"] for e in a.get("/v1/ops/weights/audit", headers=ops, params={"limit": 1}).json()["entries"]] == [2]


@pytest.mark.parametrize("body,problem", [
    ({"default": {"rating": 11}}, "less than or equal to 10"),
    ({"default": {"conversion": -0.5}}, "greater than or equal to 0"),
    ({"default": {"earnings": 3.5}}, "less than or equal to 3"),
    ({"default": {"diversity": "lots"}}, "valid number"),
    ({"default": {}, "overrides": {"大老板": {}}}, "unknown seller types ['大老板']"),
    ({"default": {"sparkle": 1}}, "Extra inputs are not permitted"),
    ({"defaults": {}}, "default: required"),
    ({}, "default: required"),
])
def test_out_of_range_weights_are_refused_and_not_audited(replicas, body, problem):
    a, _, keys, store = replicas
    response = a.put("/v1/ops/weights", json=body, headers={"X-API-Key": keys["ops"]})
    assert response.status_code == 422 and problem in response.text
    assert store.audit() == [] and store.weights() is None


def test_omitted_fields_take_their_documented_defaults(replicas):
    a, _, keys, _ = replicas
    response = a.put("/v1/ops/weights", json={"default": {"rating": 4}}, headers={"X-API-Key": keys["ops"]})
    assert response.json()["weights"]["default"] == {**DEFAULTS["default"], "rating": 4.0}
