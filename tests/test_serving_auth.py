"""API keys, roles and tenant scopes: every cross-tenant path is refused; rate limits and body limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving import auth
from serving.app import create_app
from serving.storage.factory import open_store
from serving.testing import PEPPER, make_keys, service_config, write_small_artifact

PUSH = {"event_id": "e1", "group_id": "G2", "product_id": "P1", "pushed_at": "2024-05-01T09:30:00+08:00"}
WEIGHTS = {"default": {"conversion": 1, "earnings": 1, "rating": 2, "order_value": 0, "diversity": 1}, "overrides": {}}


@pytest.fixture
def world(tmp_path, artifacts):
    """A served app on a small artifact, its store and one key per role."""
    config = service_config(tmp_path, artifact_dir=str(artifacts))
    store = open_store(config.service.db_url)
    keys = make_keys(store)
    with TestClient(create_app(config, store=store)) as client:
        yield client, store, keys
    store.close()


def call(client, method, path, key=None, **kwargs):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.request(method, path, headers=headers, **kwargs)


# Every protected endpoint with a request that would succeed for the right key.
ENDPOINTS = [
    ("GET", "/v1/groups/G0/picks", {}),
    ("GET", "/v1/sellers/S0/picks", {}),
    ("POST", "/v1/feedback/pushes", {"json": {"events": []}}),
    ("POST", "/v1/feedback/orders", {"json": {"events": []}}),
    ("GET", "/v1/ops/weights", {}),
    ("PUT", "/v1/ops/weights", {"json": WEIGHTS}),
    ("GET", "/v1/ops/weights/audit", {}),
    ("POST", "/v1/copy/check", {"json": {"text": "好用"}}),
    ("POST", "/v1/admin/keys", {"json": {"role": "ops"}}),
    ("GET", "/v1/admin/keys", {}),
    ("DELETE", "/v1/admin/keys/000000000000", {}),
    ("POST", "/v1/admin/reload", {}),
]


@pytest.mark.parametrize("method,path,kwargs", ENDPOINTS)
def test_missing_wrong_or_revoked_key_is_401(world, method, path, kwargs):
    client, store, keys = world
    assert call(client, method, path, **kwargs).status_code == 401
    assert call(client, method, path, "qx_000000000000_" + "A" * 43, **kwargs).status_code == 401
    assert call(client, method, path, "not-a-key", **kwargs).status_code == 401
    tampered = keys["ops"][:-1] + ("B" if keys["ops"][-1] != "B" else "C")
    assert call(client, method, path, tampered, **kwargs).status_code == 401
    response = client.request(method, path, headers={"X-API-Key": keys["seller1"]}, **kwargs)
    assert response.status_code != 401  # the alternative header works too
    record = next(k for k in store.keys() if k.name == "S1 app")
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    assert client.delete(f"/v1/admin/keys/{record.key_id}", headers=admin).status_code == 204
    assert client.request(method, path, headers={"X-API-Key": keys["seller1"]}, **kwargs).status_code == 401


# (key, method, path, kwargs) that must be refused with 403: other tenants and other roles.
REFUSED = [
    ("seller0", "GET", "/v1/sellers/S1/picks", {}),
    ("seller0", "GET", "/v1/sellers/S2/picks", {}),
    ("seller0", "GET", "/v1/sellers/nobody/picks", {}),
    ("seller0", "POST", "/v1/feedback/pushes", {"json": {"events": [PUSH]}}),
    ("seller0", "POST", "/v1/feedback/pushes", {"json": {"events": [PUSH], "partial": True}}),
    ("seller0", "POST", "/v1/feedback/orders", {"json": {"events": [{
        "event_id": "o1", "order_id": "O1", "group_id": "G3", "product_id": "P1",
        "ordered_at": "2024-05-01T10:00:00+08:00", "quantity": 1, "paid": 9.9}], "partial": True}}),
    ("seller1", "GET", "/v1/sellers/S0/picks", {}),
    *[(s, m, p, kw) for s in ("seller0", "seller1", "brand") for m, p, kw in ENDPOINTS[4:7]],
    *[(s, m, p, kw) for s in ("seller0", "brand", "ops") for m, p, kw in ENDPOINTS[8:]],
    ("brand", "GET", "/v1/groups/G0/picks", {}),
    ("brand", "GET", "/v1/sellers/S0/picks", {}),
    ("brand", "POST", "/v1/feedback/pushes", {"json": {"events": []}}),
    ("ops", "POST", "/v1/feedback/pushes", {"json": {"events": []}}),
    ("admin", "POST", "/v1/feedback/orders", {"json": {"events": []}}),
    ("admin", "PUT", "/v1/ops/weights", {"json": WEIGHTS}),
]


@pytest.mark.parametrize("who,method,path,kwargs", REFUSED)
def test_keys_outside_their_scope_get_403_and_change_nothing(world, who, method, path, kwargs):
    client, store, keys = world
    before = (store.events("pushes"), store.events("orders"), store.audit(), len(store.keys()))
    response = call(client, method, path, keys[who], **kwargs)
    assert response.status_code == 403, response.text
    assert (store.events("pushes"), store.events("orders"), store.audit(), len(store.keys())) == before


def test_a_seller_mixing_own_and_foreign_events_stores_nothing(world):
    client, store, keys = world
    own = {**PUSH, "event_id": "mine", "group_id": "G0"}
    response = call(client, "POST", "/v1/feedback/pushes", keys["seller0"], json={"events": [own, PUSH], "partial": True})
    assert response.status_code == 403
    assert "[1]" in response.json()["detail"]
    assert store.events("pushes") == []


ALLOWED = [
    ("seller0", "POST", "/v1/feedback/pushes", {"json": {"events": [{**PUSH, "group_id": "G0"}]}}, 200),
    ("seller1", "POST", "/v1/feedback/pushes", {"json": {"events": [PUSH]}}, 200),
    ("ops", "GET", "/v1/ops/weights", {}, 200),
    ("admin", "GET", "/v1/ops/weights/audit", {}, 200),
    ("ops", "PUT", "/v1/ops/weights", {"json": WEIGHTS}, 200),
    ("brand", "POST", "/v1/copy/check", {"json": {"text": "好用"}}, 200),
    ("seller0", "POST", "/v1/copy/check", {"json": {"text": "好用"}}, 200),
    ("admin", "GET", "/v1/admin/keys", {}, 200),
    ("admin", "POST", "/v1/admin/keys", {"json": {"role": "brand", "brand": "舒肤佳"}}, 201),
    ("admin", "POST", "/v1/admin/reload", {}, 200),
]


@pytest.mark.parametrize("who,method,path,kwargs,status", ALLOWED)
def test_keys_inside_their_scope_succeed(world, who, method, path, kwargs, status):
    client, _, keys = world
    response = call(client, method, path, keys[who], **kwargs)
    assert response.status_code == status, response.text


def test_admin_creates_lists_and_revokes_keys(world):
    client, store, keys = world
    response = call(client, "POST", "/v1/admin/keys", keys["admin"], json={"role": "seller", "seller_id": "S2", "name": "新人"})
    assert response.status_code == 201
    created = response.json()
    assert auth.KEY_PATTERN.match(created["key"]) and created["seller_id"] == "S2" and created["role"] == "seller"
    # Only the HMAC of the key is stored, never the key.
    record = store.key_by_hash(auth.hash_key(created["key"], PEPPER))
    assert record.key_id == created["key_id"]
    assert all(created["key"] not in str(vars(r)) for r in store.keys())
    listed = call(client, "GET", "/v1/admin/keys", keys["admin"]).json()["keys"]
    assert [k["key_id"] for k in listed][-1] == created["key_id"] and all("key" not in k for k in listed)
    assert call(client, "GET", "/v1/sellers/S2/picks", created["key"]).status_code != 401
    assert call(client, "DELETE", f"/v1/admin/keys/{created['key_id']}", keys["admin"]).status_code == 204
    assert call(client, "DELETE", f"/v1/admin/keys/{created['key_id']}", keys["admin"]).status_code == 404
    assert call(client, "GET", "/v1/sellers/S2/picks", created["key"]).status_code == 401


@pytest.mark.parametrize("body", [
    {"role": "seller"}, {"role": "brand"}, {"role": "ops", "seller_id": "S1"}, {"role": "admin", "brand": "x"},
    {"role": "root"}, {"role": "seller", "seller_id": "S1", "extra": 1},
])
def test_bad_key_bindings_are_refused(world, body):
    client, store, keys = world
    before = len(store.keys())
    assert call(client, "POST", "/v1/admin/keys", keys["admin"], json=body).status_code == 422
    assert len(store.keys()) == before


def test_brand_scope_helper():
    brand = auth.Principal("k", "brand", brand="好孩子")
    assert auth.may_read_brand(brand, "好孩子") and not auth.may_read_brand(brand, "舒肤佳")
    assert auth.may_read_brand(auth.Principal("k", "ops"), "舒肤佳")
    assert not auth.may_read_brand(auth.Principal("k", "seller", seller_id="S1"), "好孩子")
    assert not auth.allowed(auth.Principal("k", "admin"), "no-such-action")


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    write_small_artifact(tmp_path / "artifacts")
    config = service_config(tmp_path, rate_limit_per_minute=60)
    store = open_store(config.service.db_url)
    slow, _ = auth.create_key(store, PEPPER, "ops", rate_per_minute=6)  # bucket of 1, one token per 10 s
    usual, _ = auth.create_key(store, PEPPER, "ops")  # the default 60/min: bucket of 10, one token a second
    reader, _ = auth.create_key(store, PEPPER, "seller", seller_id="S0", rate_per_minute=6)
    prober, _ = auth.create_key(store, PEPPER, "seller", seller_id="S0", rate_per_minute=6)
    with TestClient(create_app(config, store=store)) as client:
        assert call(client, "GET", "/v1/ops/weights", slow).status_code == 200
        refused = call(client, "GET", "/v1/ops/weights", slow)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
        assert [call(client, "GET", "/v1/ops/weights", usual).status_code for _ in range(10)] == [200] * 10
        assert call(client, "GET", "/v1/ops/weights", usual).status_code == 429
        # The picks endpoint spends tokens too, refused requests included.
        assert call(client, "GET", "/v1/groups/G0/picks", reader).status_code == 200
        assert call(client, "GET", "/v1/groups/G0/picks", reader).status_code == 429
        assert call(client, "GET", "/v1/groups/G2/picks", prober).status_code == 404  # another seller's: as unknown
        assert call(client, "GET", "/v1/groups/G0/picks", prober).status_code == 429
    store.close()


def test_large_bodies_are_refused_with_413(world):
    client, _, keys = world
    headers = {"Authorization": f"Bearer {keys['ops']}", "Content-Type": "application/json"}
    big = b'{"text": "' + b"a" * 1_000_100 + b'"}'
    assert client.post("/v1/copy/check", content=big, headers=headers).status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"text": "'
        for _ in range(200):
            yield b"a" * 10_000
        yield b'"}'

    response = client.post("/v1/copy/check", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert client.post("/v1/copy/check", json={"text": "a" * 100}, headers=headers).status_code == 200


def test_key_lookups_are_reused_and_refreshed_by_one_caller(tmp_path, monkeypatch):
    store = open_store(f"sqlite:///{tmp_path / 'keys.sqlite3'}")
    key, record = auth.create_key(store, PEPPER, "seller", seller_id="S1")
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    resolver = auth.KeyResolver(store, PEPPER, ttl_seconds=1.0)
    assert resolver.cached(key) is None  # never looked up
    assert resolver.resolve(key).seller_id == "S1"
    assert resolver.cached(key).key_id == record.key_id
    store.revoke_key(record.key_id)
    clock[0] += 0.5
    assert resolver.cached(key) is not None  # still within the refresh period
    clock[0] += 1.0
    assert resolver.cached(key) is None  # stale: this caller refreshes...
    assert resolver.cached(key) is not None  # ...while the others keep the previous answer
    assert resolver.resolve(key) is None  # the refresh sees the revocation
    assert resolver.cached(key) is None
    store.close()
