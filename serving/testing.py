"""Helpers shared by the service's tests and benchmark: real backend discovery and a small artifact."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from contracts.schema import SELLER_TYPES

PG_URL = os.environ.get("QUANXUAN_TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("QUANXUAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(what: str, exc: Exception) -> None:
    import pytest

    message = f"{what} does not answer ({type(exc).__name__}: {exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI the backend tests must run, not skip")
    pytest.skip(message)


def require_postgres() -> str:
    """The test PostgreSQL URL; skips the test (fails under CI=true) when no server answers."""
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to connect means the server is not usable
        _unavailable(f"PostgreSQL at {PG_URL}", exc)
    return PG_URL


def require_redis() -> str:
    """The test Redis URL; skips the test (fails under CI=true) when no server answers."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


def unique_name(prefix: str = "qx_test") -> str:
    """A fresh schema name or key prefix for one test run."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


CATEGORIES = ("母婴/喂养", "食品/零食", "个护/洗护", "家居/收纳", "美妆/护肤")
BRANDS = ("好孩子", "三只松鼠", "舒肤佳", "", "百雀羚")
TITLES = ("婴儿纯棉口水巾10条装", "每日坚果混合果仁750g", "舒肤佳香皂6块装", "可折叠收纳箱大号3个装", "补水保湿面霜50g")


def small_world(n_sellers: int = 3, groups_per_seller: int = 2, n_products: int = 30, candidates_per_group: int = 20,
                cold_groups: int = 1, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The five artifact tables of a small made-up world; the last `cold_groups` groups have no history."""
    rng = np.random.default_rng(seed)
    products = pd.DataFrame({
        "product_id": [f"P{i}" for i in range(n_products)],
        "title": [TITLES[i % len(TITLES)] for i in range(n_products)],
        "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(n_products)],
        "brand": [BRANDS[i % len(BRANDS)] for i in range(n_products)],
        "price": np.round(rng.uniform(9.9, 199.0, n_products), 1),
        "commission_rate": np.round(rng.uniform(0.05, 0.3, n_products), 2),
        "rating": np.round(rng.uniform(0.85, 0.99, n_products), 3),
        "coupon": np.where(np.arange(n_products) % 4 == 0, 5.0, 0.0),
        "presale": np.arange(n_products) % 7 == 0,
        "in_stock": True,
    })
    rows = []
    n_groups = n_sellers * groups_per_seller
    for s in range(n_sellers):
        for g in range(groups_per_seller):
            gi = s * groups_per_seller + g
            seller_type = SELLER_TYPES[s % len(SELLER_TYPES)]
            rows.append({"group_id": f"G{gi}", "seller_id": f"S{s}", "seller_type": seller_type, "city_tier": 1 + s % 6,
                         "member_count": 50 + 10 * gi, "theme": "母婴" if s % 2 == 0 else "邻里",
                         "cold_start": gi >= n_groups - cold_groups, "segment": f"{seller_type}|{1 + s % 6}"})
    groups = pd.DataFrame(rows)

    n = min(candidates_per_group, n_products)
    price = products["price"].to_numpy()
    rate = products["commission_rate"].to_numpy()

    def candidates(key: str, values: list[str], offsets: list[int]) -> pd.DataFrame:
        # Product j of an owner is (offset + 7j) mod n_products; 7 is coprime with the default 30, so no repeats.
        idx = (np.asarray(offsets)[:, None] + 7 * np.arange(n)[None, :]).ravel() % n_products
        j = np.tile(np.arange(n), len(values))
        return pd.DataFrame({
            key: np.repeat(values, n), "product_id": products["product_id"].to_numpy()[idx],
            "p_conv": np.round(rng.uniform(0.01, 0.3, len(idx)), 4), "price": price[idx], "commission_rate": rate[idx],
            "commission_yuan": np.round(price[idx] * rate[idx], 2), "rating": products["rating"].to_numpy()[idx],
            "order_value": price[idx] * 1.2, "category": products["category"].to_numpy()[idx],
            "brand": products["brand"].to_numpy()[idx],
            "reasons": np.where(j % 2 == 0, '["group_buys_category"]', '["trending"]'),
            "in_stock": True, "coupon": products["coupon"].to_numpy()[idx], "presale": products["presale"].to_numpy()[idx],
            "repurchase_due": j == 3, "price_change_7d": 0.0, "days_since_push": np.nan,
        })

    warm = groups[~groups["cold_start"]]
    cands = candidates("group_id", warm["group_id"].tolist(), [int(i) for i in warm.index])
    segments = sorted(set(groups["segment"]))
    segs = candidates("segment", segments, [7 * si + 1 for si in range(len(segments))])
    picks = pd.DataFrame({"group_id": ["G0"], "rank": [1], "product_id": ["P0"], "score": [0.5], "weights_hash": ["x"]})
    return {"groups": groups, "products": products, "candidates": cands, "segment_candidates": segs, "picks": picks}


def write_small_artifact(root: str | Path, when: datetime | None = None, **world: int) -> Path:
    """Write `small_world(**world)` as a complete artifact under root with the real artifact writer."""
    from contracts.artifact import write_artifact

    when = when or datetime.now(timezone.utc)
    return write_artifact(root, small_world(**world), {"config_hash": "test", "pick_date": when.date().isoformat()}, now=when)


PEPPER = "test-pepper"


def service_config(tmp_path: Path, **service: object):
    """A Config whose service state lives under tmp_path; state is re-read on every request unless told otherwise."""
    from contracts.config import Config, ServiceSettings

    settings = {"artifact_dir": str(tmp_path / "artifacts"), "db_url": f"sqlite:///{tmp_path / 'state.sqlite3'}",
                "key_pepper": PEPPER, "state_refresh_seconds": 0, "artifact_poll_seconds": 0,
                # Tests render picks when they ask for them; tests/test_serving_warming.py runs the warmer.
                "prepare_picks": False, **service}
    return Config(service=ServiceSettings.model_validate(settings))


def make_keys(store, pepper: str = PEPPER) -> dict[str, str]:
    """One key per role and tenant used by the tests: seller0 (groups G0, G1), seller1 (G2, G3), brand, ops, admin."""
    from serving.auth import create_key

    specs = {
        "seller0": dict(role="seller", seller_id="S0", name="S0 app"),
        "seller1": dict(role="seller", seller_id="S1", name="S1 app"),
        "brand": dict(role="brand", brand="好孩子", name="brand team"),
        "ops": dict(role="ops", name="小王"),
        "admin": dict(role="admin", name="root"),
    }
    return {name: create_key(store, pepper, **spec)[0] for name, spec in specs.items()}
