"""One contract suite for every storage backend, over real connections: SQLite and PostgreSQL stores,
in-process, SQLite and Redis caches. PostgreSQL and Redis tests skip when no server answers (fail under CI=true)."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from serving.storage.base import KeyRecord
from serving.storage.factory import open_cache, open_store
from serving.storage.memory_cache import MemoryCache
from serving.testing import require_postgres, require_redis, unique_name

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """A database URL of a fresh, empty store; PostgreSQL gets a unique schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite3'}"
        return
    schema = unique_name()
    url = f"{require_postgres()}?schema={schema}"
    yield url
    store = open_store(url, init=False)
    store.drop_schema()


@pytest.fixture
def store(store_url):
    """An opened store; closed after the test."""
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def cache(request, tmp_path):
    """A cache under a unique key prefix; emptied after the test."""
    if request.param == "memory":
        c = MemoryCache()
        yield c
        return
    base = f"sqlite:///{tmp_path / 'cache.sqlite3'}" if request.param == "sqlite" else require_redis()
    c = open_cache(f"{base}?prefix={unique_name()}:")
    yield c
    c.clear()
    c.close()


def push(event_id: str, minutes: int = 0, price: float | None = 39.9, seller: str = "S1") -> dict:
    return {"event_id": event_id, "seller_id": seller, "group_id": "G1", "product_id": "P1", "pushed_at": T0 + timedelta(minutes=minutes),
            "price_at_push": price, "submitted_by": "k1"}


def order(event_id: str, order_id: str, seller: str = "S1") -> dict:
    return {"event_id": event_id, "seller_id": seller, "order_id": order_id, "group_id": "G1", "product_id": "P1", "ordered_at": T0,
            "quantity": 2, "paid": 79.8, "commission": None, "buyer_id": None, "refunded": False, "submitted_by": "k1"}


def test_events_are_stored_once_by_event_id(store):
    assert store.add_events("pushes", [push("e1"), push("e2", 5, None)]) == ["e1", "e2"]
    # A retried batch stores nothing twice; a mixed one stores only the new event.
    assert store.add_events("pushes", [push("e1"), push("e2", 5, None)]) == []
    assert store.add_events("pushes", [push("e2", 5, None), push("e3", 9)]) == ["e3"]
    rows = store.events("pushes")
    assert [r["event_id"] for r in rows] == ["e1", "e2", "e3"]
    assert rows[0]["pushed_at"] == T0 and rows[0]["price_at_push"] == 39.9 and rows[0]["group_id"] == "G1"
    assert rows[1]["price_at_push"] is None and rows[1]["pushed_at"] == T0 + timedelta(minutes=5)
    assert rows[0]["submitted_by"] == "k1" and rows[0]["received_at"].tzinfo is not None


def test_orders_are_unique_by_event_id_and_order_id(store):
    assert store.add_events("orders", [order("e1", "O1")]) == ["e1"]
    assert store.add_events("orders", [order("e2", "O1"), order("e3", "O2")]) == ["e3"]
    rows = store.events("orders")
    assert [(r["event_id"], r["order_id"]) for r in rows] == [("e1", "O1"), ("e3", "O2")]
    assert rows[0]["quantity"] == 2 and rows[0]["paid"] == 79.8 and rows[0]["refunded"] is False
    assert rows[0]["commission"] is None and rows[0]["ordered_at"] == T0


def test_ids_are_unique_per_seller_not_across_sellers(store):
    # Seller B reusing seller A's event or order id must neither be dropped nor erase A's event.
    assert store.add_events("pushes", [push("e1", seller="S1")]) == ["e1"]
    assert store.add_events("pushes", [push("e1", seller="S2")]) == ["e1"]
    assert store.add_events("orders", [order("e1", "O1", seller="S1")]) == ["e1"]
    assert store.add_events("orders", [order("e2", "O1", seller="S2")]) == ["e2"]
    assert store.add_events("orders", [order("e3", "O1", seller="S2")]) == []  # S2's own order id, again
    assert sorted((r["seller_id"], r["event_id"]) for r in store.events("pushes")) == [("S1", "e1"), ("S2", "e1")]
    assert sorted((r["seller_id"], r["order_id"]) for r in store.events("orders")) == [("S1", "O1"), ("S2", "O1")]


def test_events_since_filters_by_receipt_time(store):
    old = datetime(2024, 1, 1, tzinfo=timezone.utc)
    store.add_events("pushes", [{**push("old"), "received_at": old}])
    store.add_events("pushes", [push("new")])
    assert [r["event_id"] for r in store.events("pushes", since=old + timedelta(days=1))] == ["new"]
    assert [r["event_id"] for r in store.events("pushes", since=old)] == ["old", "new"]


def test_weights_changes_are_audited_in_order(store):
    default = {"default": {"rating": 2.0}, "overrides": {}}
    first = {"default": {"rating": 3.0}, "overrides": {}}
    second = {"default": {"rating": 3.0}, "overrides": {"学生": {"rating": 1.0}}}
    assert store.weights() is None
    e1 = store.set_weights(first, "ops-a", default)
    e2 = store.set_weights(second, "ops-b", default)
    assert (e1.version, e1.old, e1.new, e1.actor) == (1, default, first, "ops-a")
    assert (e2.version, e2.old, e2.new, e2.actor) == (2, first, second, "ops-b")
    current = store.weights()
    assert (current.weights, current.version, current.updated_by) == (second, 2, "ops-b")
    audit = store.audit()
    assert [(a.version, a.actor, a.old, a.new) for a in audit] == [(2, "ops-b", first, second), (1, "ops-a", default, first)]
    assert [a.version for a in store.audit(limit=1)] == [2]
    assert audit[0].at >= audit[1].at


def test_concurrent_weight_changes_form_one_chain(store_url):
    stores = [open_store(store_url) for _ in range(4)]
    default = {"n": -1}

    def change(i: int) -> None:
        for j in range(5):
            stores[i].set_weights({"n": i * 10 + j}, f"w{i}", default)

    threads = [threading.Thread(target=change, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    audit = list(reversed(stores[0].audit(limit=100)))
    assert [a.version for a in audit] == list(range(1, 21))
    # Each change saw the previous one as its old value: no lost update.
    assert audit[0].old == default
    assert all(later.old == earlier.new for earlier, later in zip(audit, audit[1:]))
    assert stores[1].weights().weights == audit[-1].new
    for s in stores:
        s.close()


def test_two_stores_on_one_database_share_state(store_url):
    a, b = open_store(store_url), open_store(store_url)
    a.set_weights({"x": 1}, "ops", {})
    assert b.weights().weights == {"x": 1}
    b.add_events("pushes", [push("e1")])
    assert [r["event_id"] for r in a.events("pushes")] == ["e1"]
    a.close()
    b.close()


def test_keys_are_found_by_hash_and_revoked(store):
    created = datetime(2024, 5, 1, tzinfo=timezone.utc)
    store.add_key(KeyRecord("k1", "h1", "seller", seller_id="S1", name="app", created_at=created))
    store.add_key(KeyRecord("k2", "h2", "ops", rate_per_minute=60, created_at=created + timedelta(seconds=1)))
    k1 = store.key_by_hash("h1")
    assert (k1.key_id, k1.role, k1.seller_id, k1.brand, k1.name, k1.created_at, k1.active) == \
        ("k1", "seller", "S1", None, "app", created, True)
    assert store.key_by_hash("nope") is None
    assert [k.key_id for k in store.keys()] == ["k1", "k2"]
    assert store.keys()[1].rate_per_minute == 60
    assert store.revoke_key("k1") is True
    assert store.revoke_key("k1") is False
    assert store.revoke_key("missing") is False
    revoked = store.key_by_hash("h1")
    assert revoked.active is False and revoked.revoked_at is not None


def test_copy_history_window_and_repeats(store):
    d = date(2024, 5, 10)
    store.record_copy("G1", d - timedelta(days=8), ["t0"])
    store.record_copy("G1", d - timedelta(days=2), ["t1", "t2", "t1"])
    store.record_copy("G1", d - timedelta(days=2), ["t2"])
    store.record_copy("G1", d, ["t3"])
    store.record_copy("G2", d - timedelta(days=1), ["t9"])
    assert store.copy_history("G1", d - timedelta(days=7), d) == [("t1", d - timedelta(days=2)), ("t2", d - timedelta(days=2))]
    assert store.copy_history("G1", d, d + timedelta(days=1)) == [("t3", d)]
    assert store.copy_history("G3", d - timedelta(days=30), d) == []


def test_cache_get_set_and_expiry(cache):
    assert cache.get("a") is None
    cache.set("a", "群里好物".encode(), 60)
    assert cache.get("a") == "群里好物".encode()
    cache.set("b", b"x", 0)  # a zero lifetime caches nothing
    assert cache.get("b") is None
    cache.set("c", b"y", 1)
    time.sleep(1.2)
    assert cache.get("c") is None
    assert cache.get("a") == "群里好物".encode()


def test_token_bucket_refills_at_its_rate(cache):
    now = 1_000_000.0
    assert [cache.take_token("k", 3, 1.0, now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert cache.take_token("k", 3, 1.0, now) == pytest.approx(1.0)
    assert cache.take_token("k", 3, 1.0, now + 0.5) == pytest.approx(0.5)
    assert cache.take_token("k", 3, 1.0, now + 1.0) == 0.0
    assert cache.take_token("k", 3, 1.0, now + 1.0) == pytest.approx(1.0)
    # Buckets are per key, and a long pause refills only up to the capacity.
    assert cache.take_token("other", 3, 1.0, now) == 0.0
    assert [cache.take_token("k", 3, 1.0, now + 100) for _ in range(4)][-1] == pytest.approx(1.0)


def test_clear_drops_only_this_caches_keys(cache):
    cache.set("a", b"1", 60)
    cache.clear()
    assert cache.get("a") is None
    if hasattr(cache, "prefix"):
        neighbour = open_cache(f"{cache.url}?prefix={unique_name()}:")
        neighbour.set("a", b"2", 60)
        cache.clear()
        assert neighbour.get("a") == b"2"
        neighbour.clear()
        neighbour.close()


def test_token_and_get_in_one_call(cache):
    cache.set("answer", b"picks", 60)
    assert cache.take_token_and_get("k", 2, 0.001, "answer") == (0.0, b"picks")
    assert cache.take_token_and_get("k", 2, 0.001, "absent") == (0.0, None)
    wait, value = cache.take_token_and_get("k", 2, 0.001, "answer")  # the bucket is empty now
    assert wait > 900 and value is None


def test_feedback_tables_of_the_unscoped_version_are_rekeyed_per_seller(store_url):
    """A store written when ids were unique store-wide keeps its events, attributed to the submitting seller key."""
    old = open_store(store_url)
    old.add_key(KeyRecord("k1", "h1", "seller", seller_id="S1", name="app", created_at=T0))
    with old._transaction() as cur:  # type: ignore[attr-defined]
        for table in ("pushes", "orders"):
            cur.execute(f"DROP TABLE feedback_{table}")
        t = old.types  # type: ignore[attr-defined]
        cur.execute(f"CREATE TABLE feedback_pushes (event_id TEXT PRIMARY KEY, group_id TEXT, product_id TEXT, "
                    f"pushed_at {t['ts']}, price_at_push REAL, received_at {t['ts']}, submitted_by TEXT)")
        cur.execute("CREATE INDEX feedback_pushes_received ON feedback_pushes (received_at)")
        cur.execute(f"CREATE TABLE feedback_orders (event_id TEXT PRIMARY KEY, order_id TEXT, group_id TEXT, "
                    f"product_id TEXT, ordered_at {t['ts']}, quantity INTEGER, paid REAL, commission REAL, buyer_id TEXT, "
                    f"refunded {t['bool']}, received_at {t['ts']}, submitted_by TEXT, UNIQUE (order_id))")
        stamp = old._ts_param(T0)  # type: ignore[attr-defined]
        for event_id, key in (("e1", "k1"), ("e2", "ops-key")):
            cur.execute(old._sql("INSERT INTO feedback_pushes VALUES (?, 'G1', 'P1', ?, 9.9, ?, ?)"),  # type: ignore[attr-defined]
                        [event_id, stamp, stamp, key])
    old.close()
    migrated = open_store(store_url)
    rows = migrated.events("pushes")
    assert [(r["seller_id"], r["event_id"]) for r in rows] == [("", "e2"), ("S1", "e1")]
    assert migrated.add_events("pushes", [push("e1", seller="S2")]) == ["e1"]
    assert migrated.add_events("pushes", [push("e1", seller="S1")]) == []
    assert migrated.add_events("orders", [order("e1", "O1", seller="S1"), order("e2", "O1", seller="S2")]) == ["e1", "e2"]
    migrated.close()
    assert open_store(store_url).events("orders")[0]["order_id"] == "O1"  # a second init leaves the new tables alone


def test_a_sqlite_cache_is_one_rate_limit_for_every_process(tmp_path):
    """Worker processes of one machine open the same file: a bucket of two tokens serves two requests in all."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'cache.sqlite3'}"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        waits = pool.starmap(_take_tokens, [(url, 4)] * 3)
    granted = sum(w == 0.0 for batch in waits for w in batch)
    assert granted == 2


def _take_tokens(url: str, n: int) -> list[float]:
    cache = open_cache(url)
    try:
        return [cache.take_token("key", 2, 0.0001) for _ in range(n)]
    finally:
        cache.close()
