"""Feedback endpoints: validation like the loaders, idempotent retries, partial acceptance, export for the daily job."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.loading import load_table
from serving.app import create_app
from serving.feedback import export_feedback
from serving.storage.factory import open_store
from serving.testing import make_keys, service_config
from cli.main import main as cli

CST = timezone(timedelta(hours=8))


@pytest.fixture
def world(tmp_path, artifacts):
    """App on a small artifact (seller S0 runs G0 and G1), its store, and a client posting with S0's key."""
    config = service_config(tmp_path, artifact_dir=str(artifacts), max_batch_events=5)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store), headers={"X-API-Key": keys["seller0"]}) as client:
        yield client, store
    store.close()


def push(event_id, group="G0", product="P1", at="2024-05-01T09:30:00+08:00", **extra):
    return {"event_id": event_id, "group_id": group, "product_id": product, "pushed_at": at, **extra}


def order(event_id, order_id, **extra):
    return {"event_id": event_id, "order_id": order_id, "group_id": "G1", "product_id": "P2",
            "ordered_at": "2024-05-01T10:02:00+08:00", "quantity": 2, "paid": 79.8, **extra}


def test_a_retried_batch_stores_nothing_twice(world):
    client, store = world
    batch = {"events": [push("e1", price_at_push=39.9), push("e2", at="2024-05-01 10:00")]}
    first = client.post("/v1/feedback/pushes", json=batch)
    assert first.status_code == 200
    assert first.json() == {"received": 2, "stored": 2, "duplicates": 0, "rejected": []}
    again = client.post("/v1/feedback/pushes", json=batch)
    assert again.json() == {"received": 2, "stored": 0, "duplicates": 2, "rejected": []}
    rows = store.events("pushes")
    assert [r["event_id"] for r in rows] == ["e1", "e2"]
    # A naive time is read in Asia/Shanghai, as the loaders read it.
    assert rows[0]["pushed_at"] == datetime(2024, 5, 1, 9, 30, tzinfo=CST)
    assert rows[1]["pushed_at"] == datetime(2024, 5, 1, 10, 0, tzinfo=CST)
    assert rows[0]["price_at_push"] == 39.9 and rows[1]["price_at_push"] is None


def test_orders_repeat_by_order_id_or_inside_a_batch_count_as_duplicates(world):
    client, store = world
    response = client.post("/v1/feedback/orders", json={"events": [order("o1", "O1"), order("o1", "O1")]})
    assert response.json() == {"received": 2, "stored": 1, "duplicates": 1, "rejected": []}
    response = client.post("/v1/feedback/orders", json={"events": [order("o2", "O1"), order("o3", "O2", refunded=True)]})
    assert response.json() == {"received": 2, "stored": 1, "duplicates": 1, "rejected": []}
    rows = store.events("orders")
    assert [(r["event_id"], r["order_id"], r["refunded"]) for r in rows] == [("o1", "O1", False), ("o3", "O2", True)]
    assert rows[0]["quantity"] == 2 and rows[0]["paid"] == 79.8 and rows[0]["commission"] is None


BAD = [
    (push("b1", price_at_push=-1), "price_at_push '-1.0': must be > 0"),
    (push("b2", group="G404"), "group_id 'G404': unknown group_id (not in groups)"),
    (push("b3", product="P404"), "product_id 'P404': unknown product_id (not in products)"),
    (push("b4", at="yesterday"), "pushed_at 'yesterday': unparseable timestamp"),
    ({"group_id": "G0", "product_id": "P1", "pushed_at": "2024-05-01"}, "event_id: required"),
    (push("b6", colour="red"), "unknown fields ['colour']"),
    (push("b7", product=["P1"]), "product_id: must be a single value"),
    (push("b8", at=(datetime.now(CST) + timedelta(days=2)).isoformat()), "is in the future"),
    ("not an event", "an event must be a JSON object"),
]


@pytest.mark.parametrize("bad,reason", BAD)
def test_a_bad_event_refuses_the_batch_with_its_index_and_reason(world, bad, reason):
    client, store = world
    response = client.post("/v1/feedback/pushes", json={"events": [push("ok1"), bad, push("ok2")]})
    assert response.status_code == 422
    rejected = response.json()["rejected"]
    assert len(rejected) == 1 and rejected[0]["index"] == 1 and reason in rejected[0]["reason"]
    assert store.events("pushes") == []


def test_partial_acceptance_keeps_the_good_events(world):
    client, store = world
    events = [push("ok1"), push("bad", group="G404"), order("x", "O9"), push("ok2", group="G1")]
    response = client.post("/v1/feedback/pushes", json={"events": events, "partial": True})
    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["stored"], body["duplicates"]) == (4, 2, 0)
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(1, "bad"), (2, "x")]
    assert "unknown fields" in body["rejected"][1]["reason"]
    assert [r["event_id"] for r in store.events("pushes")] == ["ok1", "ok2"]


def test_order_rules_of_the_contract_apply(world):
    client, store = world
    events = [order("q0", "O1", quantity=0), order("q1", "O2", quantity=1.5), order("q2", "O3", paid="abc"),
              order("q3", "O4", refunded="maybe"), order("q4", "O5", quantity="3", refunded="是")]
    body = client.post("/v1/feedback/orders", json={"events": events, "partial": True}).json()
    assert [r["index"] for r in body["rejected"]] == [0, 1, 2, 3]
    assert "quantity" in body["rejected"][0]["reason"] and "not an integer" in body["rejected"][1]["reason"]
    assert "not a number" in body["rejected"][2]["reason"] and "not a boolean" in body["rejected"][3]["reason"]
    (row,) = store.events("orders")
    assert (row["order_id"], row["quantity"], row["refunded"]) == ("O5", 3, True)


def test_batches_over_the_limit_are_413(world):
    client, store = world
    response = client.post("/v1/feedback/pushes", json={"events": [push(f"e{i}") for i in range(6)]})
    assert response.status_code == 413
    assert store.events("pushes") == []


def test_export_writes_contract_csvs_the_loader_reads(world, tmp_path):
    client, store = world
    client.post("/v1/feedback/pushes", json={"events": [push("e1", price_at_push=39.9), push("e2", group="G1")]})
    client.post("/v1/feedback/orders", json={"events": [order("o1", "O1", buyer_id="b1", commission=3.5)]})
    out = tmp_path / "export"
    assert export_feedback(store, out) == {"pushes": 2, "orders": 1}
    pushes = load_table(out / "pushes.csv", "pushes")
    orders = load_table(out / "orders.csv", "orders")
    assert pushes["group_id"].tolist() == ["G0", "G1"]
    assert pushes["pushed_at"].tolist() == [pd.Timestamp("2024-05-01 09:30", tz="Asia/Shanghai")] * 2
    assert pushes["price_at_push"].iloc[0] == 39.9 and pd.isna(pushes["price_at_push"].iloc[1])
    assert orders[["order_id", "quantity", "paid", "commission", "buyer_id", "refunded"]].values.tolist() == \
        [["O1", 2, 79.8, 3.5, "b1", False]]
    # Only events received after a time, through the command line.
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert cli(["feedback", "--db-url", f"sqlite:///{store.path}", "export", str(tmp_path / "none"),
                "--since", later.isoformat()]) == 0
    assert len(load_table(tmp_path / "none" / "pushes.csv", "pushes")) == 0


def test_sellers_never_collide_on_event_or_order_ids(world, tmp_path):
    """Seller 1 reusing seller 0's ids stores her own events and leaves seller 0's alone (no loss, no oracle)."""
    client, store = world
    seller1 = {"X-API-Key": make_keys(store)["seller1"]}
    assert client.post("/v1/feedback/pushes", json={"events": [push("e1")]}).json()["stored"] == 1
    assert client.post("/v1/feedback/orders", json={"events": [order("o1", "O1")]}).json()["stored"] == 1
    theirs = client.post("/v1/feedback/pushes", json={"events": [push("e1", group="G2")]}, headers=seller1)
    assert theirs.json() == {"received": 1, "stored": 1, "duplicates": 0, "rejected": []}
    theirs = client.post("/v1/feedback/orders", json={"events": [{**order("o1", "O1"), "group_id": "G2"}]}, headers=seller1)
    assert theirs.json() == {"received": 1, "stored": 1, "duplicates": 0, "rejected": []}
    # Her own retry is still a duplicate.
    again = client.post("/v1/feedback/orders", json={"events": [{**order("o9", "O1"), "group_id": "G2"}]}, headers=seller1)
    assert again.json()["duplicates"] == 1
    assert sorted((r["seller_id"], r["group_id"]) for r in store.events("pushes")) == [("S0", "G0"), ("S1", "G2")]
    # The export keeps both orders and stays loadable: a shared id is qualified by its seller.
    export_feedback(store, tmp_path / "export")
    orders = load_table(tmp_path / "export" / "orders.csv", "orders")
    assert sorted(orders["order_id"]) == ["O1@S0", "O1@S1"]


@pytest.mark.parametrize("field, value", [("quantity", 1e30), ("quantity", 2**63), ("paid", 1e30), ("commission", 1e300)])
def test_numbers_beyond_the_contract_bounds_are_refused_and_the_export_stays_loadable(world, tmp_path, field, value):
    client, store = world
    body = client.post("/v1/feedback/orders", json={"events": [order("big", "O9", **{field: value}), order("ok", "O1")],
                                                     "partial": True}).json()
    assert [r["index"] for r in body["rejected"]] == [0] and field in body["rejected"][0]["reason"]
    export_feedback(store, tmp_path / "export")
    assert load_table(tmp_path / "export" / "orders.csv", "orders")["order_id"].tolist() == ["O1"]
