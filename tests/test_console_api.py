"""The API calls behind the console: versioned weight changes with a reason, revert, status, groups, limits,
what-if bounds and explanations; and the store's reason/revert columns (with the migration of older tables)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from contracts.config import OpsWeights
from serving.app import create_app
from serving.storage.base import VersionConflict
from serving.storage.factory import open_store
from serving.testing import make_keys, service_config, write_small_artifact

DEFAULTS = OpsWeights().model_dump(mode="json")


@pytest.fixture
def world(tmp_path):
    """An app on a small artifact and a SQLite store; yields (client, keys, store)."""
    write_small_artifact(tmp_path / "artifacts", n_sellers=4, groups_per_seller=2)
    config = service_config(tmp_path)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store, watch=False)) as client:
        yield client, keys, store
    store.close()


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _weights(**default: float) -> dict:
    return {"default": {**DEFAULTS["default"], **default}, "overrides": {}}


def test_put_with_a_stale_version_is_refused_and_a_no_op_makes_no_version(world):
    client, keys, store = world
    ops = _h(keys["ops"])
    first = client.put("/v1/ops/weights", json={**_weights(rating=3), "version": 0, "reason": "好评更重要"}, headers=ops)
    assert first.status_code == 200 and first.json()["version"] == 1
    stale = client.put("/v1/ops/weights", json={**_weights(rating=4), "version": 0, "reason": "x"}, headers=ops)
    assert stale.status_code == 409
    assert stale.json()["code"] == "conflict" and stale.json()["current_version"] == 1
    same = client.put("/v1/ops/weights", json={**_weights(rating=3), "version": 1, "reason": "again"}, headers=ops)
    assert same.status_code == 200 and same.json()["version"] == 1
    entries = client.get("/v1/ops/weights/audit", headers=ops).json()["entries"]
    assert [(e["version"], e["reason"], e["reverts"]) for e in entries] == [(1, "好评更重要", None)]


def test_store_refuses_a_stale_expected_version(world):
    _, _, store = world
    store.set_weights({"a": 1}, "ops", {}, reason="r", expected_version=0)
    with pytest.raises(VersionConflict):
        store.set_weights({"a": 2}, "ops", {}, expected_version=0)
    assert store.weights().version == 1
    entry = store.audit()[0]
    assert store.audit_entry(entry.id) == entry and entry.reason == "r"
    assert store.audit_entry(entry.id + 99) is None


def test_revert_puts_back_the_old_weights_as_a_new_version(world):
    client, keys, _ = world
    ops = _h(keys["ops"])
    client.put("/v1/ops/weights", json={**_weights(rating=3), "version": 0, "reason": "一"}, headers=ops)
    client.put("/v1/ops/weights", json={**_weights(rating=5), "version": 1, "reason": "二"}, headers=ops)
    entries = client.get("/v1/ops/weights/audit", headers=ops).json()["entries"]
    first = entries[-1]
    assert client.post(f"/v1/ops/weights/audit/{first['id']}/revert", json={"version": 1, "reason": "回退"},
                       headers=ops).json()["code"] == "conflict"
    assert client.post(f"/v1/ops/weights/audit/{first['id']}/revert", json={"version": 2, "reason": ""},
                       headers=ops).status_code == 422
    # Undoing the first change (rating 2 → 3) while the second (3 → 5) is in force: rating goes back to 2.
    done = client.post(f"/v1/ops/weights/audit/{first['id']}/revert", json={"version": 2, "reason": "回到默认"}, headers=ops)
    assert done.status_code == 200, done.text
    assert done.json()["version"] == 3 and done.json()["weights"] == DEFAULTS
    top = client.get("/v1/ops/weights/audit", headers=ops).json()["entries"][0]
    assert (top["version"], top["reverts"], top["reason"]) == (3, first["id"], "回到默认")
    again = client.post(f"/v1/ops/weights/audit/{first['id']}/revert", json={"version": 3, "reason": "再来"}, headers=ops)
    assert again.status_code == 422
    assert client.post("/v1/ops/weights/audit/999/revert", json={"version": 3, "reason": "x"}, headers=ops).status_code == 404
    # Admin reads weights but may not change them; a brand key not even see the route.
    assert client.post(f"/v1/ops/weights/audit/{first['id']}/revert", json={"version": 3, "reason": "x"},
                       headers=_h(keys["admin"])).status_code == 403


def test_status_reports_the_artifact_feedback_per_day_and_weights(world):
    client, keys, store = world
    now = datetime.now(timezone.utc)
    store.add_events("pushes", [{"event_id": f"e{i}", "seller_id": "S0", "group_id": "G0", "product_id": "P0",
                                 "pushed_at": now, "submitted_by": "k", "received_at": now - timedelta(days=i // 2)}
                                for i in range(5)])
    body = client.get("/v1/console/status", headers=_h(keys["ops"])).json()
    assert body["artifact"]["age_seconds"] >= 0 and body["weights"]["version"] == 0
    days = body["feedback"]
    assert len(days) == 14 and sum(d["pushes"] for d in days) == 5 and days[-1]["pushes"] == 2
    assert client.get("/v1/console/status", headers=_h(keys["brand"])).status_code == 403


def test_groups_list_is_the_sellers_own_for_a_seller_key(world):
    client, keys, _ = world
    own = client.get("/v1/console/groups", headers=_h(keys["seller0"])).json()["groups"]
    assert {g["group_id"] for g in own} == {"G0", "G1"}
    every = client.get("/v1/console/groups", headers=_h(keys["ops"])).json()["groups"]
    assert len(every) == 8
    assert [g["group_id"] for g in client.get("/v1/console/groups", params={"q": "g3"},
                                              headers=_h(keys["ops"])).json()["groups"]] == ["G3"]


def test_limits_are_the_api_bounds(world):
    client, _, _ = world
    limits = client.get("/v1/console/limits").json()
    assert limits["weights"]["rating"]["max"] == 10 and limits["weights"]["rating"]["default"] == 2.0
    assert limits["what_if"]["commission_rate"] == {**limits["what_if"]["commission_rate"], "min": 0, "max": 1}
    assert limits["what_if"]["price"]["min_exclusive"] is True


def test_what_if_refuses_a_coupon_at_or_over_the_price_and_explains_itself(world):
    client, keys, _ = world
    brand = _h(keys["brand"])
    refused = client.post("/v1/brands/好孩子/reach/what-if", json={"price": 20, "coupon": 25}, headers=brand)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_request"
    too_big = client.post("/v1/brands/好孩子/reach/what-if", json={"coupon": 10_000}, headers=brand)
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "coupon"
    new = client.post("/v1/brands/好孩子/reach/new-product", headers=brand,
                      json={"title": "x", "category": "母婴", "price": 10, "commission_rate": 0.1, "coupon": 10})
    assert new.status_code == 422
    ok = client.post("/v1/brands/好孩子/reach/what-if", json={"product_ids": ["P0"], "price": 6.0}, headers=brand)
    assert ok.status_code == 200, ok.text
    (explain,) = ok.json()["explain"]
    assert explain["product_id"] == "P0" and explain["price_rule"]["days"] == 7
    total = explain["orders"]["after"] - explain["orders"]["before"]
    assert explain["from_p_conv"] + explain["from_placements"] == pytest.approx(total, abs=1e-3)
    assert explain["parts"]["commission_yuan"] < 1


def test_an_older_audit_table_gains_its_reason_column(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ops_weights_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, "
                 "actor TEXT NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO ops_weights_audit (at, actor, old, new, version) VALUES "
                 "('2024-05-01T00:00:00.000000+00:00', 'k (a)', '{}', '{\"x\": 1}', 1)")
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        (old,) = store.audit()
        assert (old.reason, old.reverts, old.new) == ("", None, {"x": 1})
        entry = store.set_weights({"x": 2}, "k", {}, reason="新", reverts=old.id)
        assert store.audit()[0] == entry and entry.reverts == old.id
    finally:
        store.close()


def test_undo_takes_back_only_what_the_entry_changed():
    from serving.console_routes import undo

    base = OpsWeights().model_dump(mode="json")
    first = {"default": {**base["default"], "earnings": 0.0}, "overrides": {"宝妈": {**base["default"], "diversity": 2.5}}}
    current = {"default": {**first["default"], "rating": 4.0}, "overrides": first["overrides"]}
    out = undo(base, first, current)
    assert out["default"] == {**base["default"], "rating": 4.0} and out["overrides"] == {}
