"""Inputs a hostile or careless client sends: each is answered below 500, in the problem-details shape, and the
connection stays open. These are the explicit examples found by probing; the schema fuzzing covers the rest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.storage.factory import open_store
from serving.testing import make_keys, service_config, write_small_artifact

CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """App on a small artifact made today, its store and one key per role."""
    root = tmp_path_factory.mktemp("hostile")
    write_small_artifact(root / "artifacts")
    config = service_config(root, artifact_dir=str(root / "artifacts"), rate_limit_per_minute=100_000)
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store), raise_server_exceptions=False) as client:
        yield client, keys, store
    store.close()


def _today() -> str:
    return datetime.now(CST).date().isoformat()


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize("query", ["date=0001-01-01", "date=0001-01-07", "date=9999-12-31", "date=1900-01-01",
                                   "k=²", "k=١٢", "k=0", "k=201", "k=1e3", "date=2024-13-01"])
def test_picks_query_out_of_range_is_422(world, query):
    client, keys, _ = world
    response = client.get(f"/v1/groups/G0/picks?{query}", headers={"X-API-Key": keys["seller0"]})
    _assert_problem(response, 422)


def test_picks_of_far_days_write_no_copy_history(world):
    client, keys, store = world
    client.get("/v1/groups/G0/picks?date=9999-12-31", headers={"X-API-Key": keys["seller0"]})
    assert store.copy_history("G0", datetime(9999, 12, 24).date(), datetime(9999, 12, 31).date()) == []
    assert client.get(f"/v1/groups/G0/picks?date={_today()}", headers={"X-API-Key": keys["seller0"]}).status_code == 200


@pytest.mark.parametrize("at", ["1600-01-01T00:00:00+08:00", "0001-01-01", "1677-09-21 00:00", "2262-04-12"])
def test_feedback_timestamps_beyond_the_clock_are_rejected_not_500(world, at):
    client, keys, _ = world
    event = {"event_id": f"t-{at}", "group_id": "G0", "product_id": "P1", "pushed_at": at}
    response = client.post("/v1/feedback/pushes", json={"events": [event]}, headers={"X-API-Key": keys["seller0"]})
    assert response.status_code == 422 and "pushed_at" in response.text


@pytest.mark.parametrize("path, key, literal", [
    ("/v1/feedback/pushes", "seller0", '{"events": [{"event_id": "n1", "group_id": "G0", "product_id": "P1", '
                                       '"pushed_at": "2024-05-01", "price_at_push": NaN}]}'),
    ("/v1/feedback/orders", "seller0", '{"events": [{"event_id": "n2", "order_id": "O", "group_id": "G0", '
                                       '"product_id": "P1", "ordered_at": "2024-05-01", "quantity": 1, "paid": Infinity}]}'),
    ("/v1/ops/preview", "ops", '{"default": {"rating": NaN}}'),
    ("/v1/copy/check", "brand", '{"text": NaN}'),
    ("/v1/brands/好孩子/reach/what-if", "brand", '{"product_id": "P1", "price": -Infinity}'),
])
def test_nan_and_infinity_literals_are_422(world, path, key, literal):
    client, keys, _ = world
    response = client.post(path, content=literal.encode(), headers={"X-API-Key": keys[key], "content-type": "application/json"})
    _assert_problem(response, 422)


def test_nan_price_at_push_is_never_stored_as_missing(world):
    client, keys, store = world
    before = len(store.events("pushes"))
    body = '{"events": [{"event_id": "nan-price", "group_id": "G0", "product_id": "P1", "pushed_at": "2024-05-01", "price_at_push": NaN}], "partial": true}'
    client.post("/v1/feedback/pushes", content=body.encode(), headers={"X-API-Key": keys["seller0"], "content-type": "application/json"})
    assert len(store.events("pushes")) == before


@pytest.mark.parametrize("path, key, body", [
    ("/v1/copy/check", "brand", '{"text": "\\ud800 全网最低"}'),
    ("/v1/feedback/pushes", "seller0", '{"events": [{"event_id": "\\ud800", "group_id": "G0", "product_id": "P1", '
                                       '"pushed_at": "2024-05-01"}]}'),
    ("/v1/feedback/pushes", "seller0", '{"events": [{"event_id": "ok", "group_id": "\\udfff", "product_id": "P1", '
                                       '"pushed_at": "2024-05-01"}]}'),
])
def test_lone_surrogates_are_422(world, path, key, body):
    client, keys, _ = world
    response = client.post(path, content=body.encode(), headers={"X-API-Key": keys[key], "content-type": "application/json"})
    assert response.status_code == 422, response.text
    response.json()


def test_errors_share_one_shape(world):
    client, keys, _ = world
    unauthorised = _assert_problem(client.get("/v1/groups/G0/picks"), 401)
    forbidden = _assert_problem(client.get("/v1/ops/weights", headers={"X-API-Key": keys["seller0"]}), 403)
    invalid = _assert_problem(client.post("/v1/copy/check", json={}, headers={"X-API-Key": keys["brand"]}), 422)
    missing = _assert_problem(client.get("/v1/nowhere"), 404)
    assert len({unauthorised["code"], forbidden["code"], invalid["code"], missing["code"]}) == 4
    assert any("\u4e00" <= ch <= "\u9fff" for ch in forbidden["title"])  # a Chinese title the consoles can show
    assert invalid["errors"]


def test_a_seller_cannot_tell_a_foreign_group_from_an_unknown_one(world):
    client, keys, _ = world
    foreign = client.get("/v1/groups/G2/picks", headers={"X-API-Key": keys["seller0"]})
    unknown = client.get("/v1/groups/G-does-not-exist/picks", headers={"X-API-Key": keys["seller0"]})
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["code"] == unknown.json()["code"]
    # Ops still learns that a group is unknown.
    assert client.get("/v1/groups/G-does-not-exist/picks", headers={"X-API-Key": keys["ops"]}).status_code == 404


def test_authorisation_comes_before_body_validation(world):
    client, keys, _ = world
    response = client.post("/v1/ops/preview", json={}, headers={"X-API-Key": keys["seller0"]})
    _assert_problem(response, 403)
    response = client.put("/v1/ops/weights", content=b"not json", headers={"X-API-Key": keys["seller0"],
                                                                           "content-type": "application/json"})
    _assert_problem(response, 403)


def test_an_empty_weights_update_is_refused(world):
    client, keys, _ = world
    response = client.put("/v1/ops/weights", json={}, headers={"X-API-Key": keys["ops"]})
    _assert_problem(response, 422)


def test_metrics_do_not_grow_with_invented_methods(world):
    client, _, _ = world
    before = len(client.get("/metrics").content)
    for i in range(200):
        client.request(f"X{i:04d}", "/v1/groups/G0/picks")
    after = len(client.get("/metrics").content)
    assert after - before < 5_000


def test_responses_are_gzipped_when_asked(world):
    client, keys, _ = world
    response = client.get(f"/v1/groups/G0/picks?date={_today()}&k=20",
                          headers={"X-API-Key": keys["seller0"], "Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers.get("content-encoding") == "gzip"


def test_docs_load_without_a_cdn(world):
    client, _, _ = world
    page = client.get("/docs").text
    assert "cdn." not in page and "unpkg" not in page
    for asset in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"):
        assert client.get(asset).status_code == 200


def test_me_tells_a_client_its_role_and_tenant(world):
    client, keys, _ = world
    assert client.get("/v1/me", headers={"X-API-Key": keys["seller0"]}).json() == \
        {"role": "seller", "seller_id": "S0", "brand": None, "key_id": client.get(
            "/v1/me", headers={"X-API-Key": keys["seller0"]}).json()["key_id"]}
    assert client.get("/v1/me", headers={"X-API-Key": keys["brand"]}).json()["brand"] == "好孩子"


def test_copy_check_names_the_article_each_hit_breaks(world):
    client, keys, _ = world
    body = client.post("/v1/copy/check", json={"text": "全网第1名，最 好 用"}, headers={"X-API-Key": keys["brand"]}).json()
    assert not body["clean"] and all(hit["article"].startswith("广告法第") for hit in body["hits"])
