"""Ops preview: the figures of a day's picks, current against proposed weights, the trade-off curve and the endpoint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.config import BlendWeights, OpsWeights, ReachConfig, RuleConfig
from recsys.preview import pick_figures, preview
from recsys.reach import ArtifactCandidates
from training.artifact import Artifact

RULES = RuleConfig(top_k=1, max_per_brand=50, max_per_category=50, category_decay=0.0)


def _source() -> ArtifactCandidates:
    """Two groups, two candidates each: X converts better, Y pays more."""
    groups = pd.DataFrame({"group_id": ["G1", "G2"], "seller_id": ["S1", "S2"], "seller_type": ["宝妈", "学生"],
                           "city_tier": [1, 2], "member_count": [80, 120], "theme": ["", ""], "cold_start": [False, False],
                           "segment": ["宝妈|1", "学生|2"]})
    products = pd.DataFrame({"product_id": ["X", "Y"], "title": ["纸巾", "奶粉"], "category": ["日用", "母婴"],
                             "brand": ["", ""], "price": [10.0, 200.0], "commission_rate": [0.1, 0.1]})
    rows = []
    for gid in ("G1", "G2"):
        rows.append({"group_id": gid, "product_id": "X", "p_conv": 0.4, "price": 10.0, "commission_rate": 0.1,
                     "commission_yuan": 1.0, "rating": 0.98, "order_value": 10.0, "category": "日用", "brand": "",
                     "reasons": "[]", "in_stock": True})
        rows.append({"group_id": gid, "product_id": "Y", "p_conv": 0.1, "price": 200.0, "commission_rate": 0.1,
                     "commission_yuan": 20.0, "rating": 0.90, "order_value": 200.0, "category": "母婴", "brand": "",
                     "reasons": "[]", "in_stock": True})
    segs = pd.DataFrame([{**r, "segment": "宝妈|1"} for r in rows[:2]]).drop(columns="group_id")
    art = Artifact(Path("."), {}, groups, products, pd.DataFrame(rows), segs,
                   pd.DataFrame(columns=["group_id", "rank", "product_id", "score", "weights_hash"]))
    return ArtifactCandidates(art)


def _weights(**w: float) -> OpsWeights:
    return OpsWeights(default=BlendWeights(**{"conversion": 1, "earnings": 0, "rating": 0, "order_value": 0,
                                              "diversity": 0, **w}))


def test_pick_figures_on_a_hand_made_day():
    picks = pd.DataFrame({"group_id": ["G1", "G1", "G2"], "product_id": ["X", "Y", "X"], "p_conv": [0.4, 0.1, 0.2],
                          "commission_yuan": [1.0, 20.0, 1.0], "rating": [0.98, 0.90, 0.98],
                          "category": ["日用/纸", "母婴/奶粉", "日用/纸"]})
    f = pick_figures(picks, n_candidates=4)
    assert f["expected_orders"] == pytest.approx(0.7)
    assert f["seller_earnings"] == pytest.approx(0.4 + 2.0 + 0.2)
    assert f["mean_rating"] == pytest.approx((0.98 + 0.90 + 0.98) / 3, abs=1e-4)
    assert f["coverage"] == 0.5  # X and Y of 4 candidate products
    assert f["diversity"] == pytest.approx((2 / 2 + 1 / 1) / 2)


def test_preview_compares_proposed_with_current_and_draws_the_curve():
    src = _source()
    result = preview(src, _weights(), _weights(earnings=1), RULES, ReachConfig(), curve_weight="earnings",
                     curve_values=[0.0, 1.0])
    # Conversion only: both groups pick X (0.4); with earnings X scores 0.4 × 1, Y 0.1 × 20 = 2: both pick Y.
    assert result["current"]["expected_orders"] == pytest.approx(0.8)
    assert result["current"]["seller_earnings"] == pytest.approx(0.8)
    assert result["proposed"]["expected_orders"] == pytest.approx(0.2)
    assert result["proposed"]["seller_earnings"] == pytest.approx(4.0)
    assert result["delta"]["seller_earnings"] == pytest.approx(3.2)
    assert result["proposed"]["mean_rating"] == pytest.approx(0.90)
    points = result["curve"]["points"]
    assert [p["value"] for p in points] == [0.0, 1.0]
    assert points[0]["expected_orders"] == result["current"]["expected_orders"]
    assert points[1]["seller_earnings"] == result["proposed"]["seller_earnings"]
    with pytest.raises(ValueError):
        preview(src, _weights(), _weights(), RULES, ReachConfig(), curve_weight="price")


def test_preview_endpoint_is_for_ops(tmp_path):
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.storage.factory import open_store
    from serving.testing import make_keys, service_config, write_small_artifact

    write_small_artifact(tmp_path / "artifacts")
    config = service_config(tmp_path)
    store = open_store(config.service.db_url)
    keys = {name: {"Authorization": f"Bearer {key}"} for name, key in make_keys(store).items()}
    body = {"weights": {"default": {"conversion": 1, "earnings": 0, "rating": 2, "order_value": 0, "diversity": 1},
                        "overrides": {}}, "curve_weight": "rating", "curve_values": [0, 2, 4]}
    with TestClient(create_app(config, store=store, watch=False)) as c:
        r = c.post("/v1/ops/preview", headers=keys["ops"], json=body)
        assert r.status_code == 200
        out = r.json()
        assert out["groups_replayed"] == 6
        assert [p["value"] for p in out["curve"]["points"]] == [0.0, 2.0, 4.0]
        assert out["current"]["seller_earnings"] != out["proposed"]["seller_earnings"]
        assert c.post("/v1/ops/preview", headers=keys["brand"], json=body).status_code == 403
        assert c.post("/v1/ops/preview", headers=keys["seller0"], json=body).status_code == 403
        bad = {**body, "curve_weight": "price"}
        assert c.post("/v1/ops/preview", headers=keys["ops"], json=bad).status_code == 422
    store.close()
