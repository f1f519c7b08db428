"""Ops preview: the figures of a day's picks, current against proposed weights, the trade-off curve and the endpoint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from contracts.config import BlendWeights, OpsWeights, ReachConfig, RuleConfig
from recsys.preview import EvaluationWindow, pick_figures, preview, realised_figures
from recsys.reach import ArtifactCandidates
from contracts.artifact import Artifact

RULES = RuleConfig(top_k=1, max_per_brand=50, max_per_category=50, category_decay=0.0)


def _tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Groups, products and candidate rows of two groups with two candidates each: X converts better, Y pays more."""
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
    return groups, products, pd.DataFrame(rows)


def _source() -> ArtifactCandidates:
    """The two groups of `_tables` as an artifact's candidates."""
    groups, products, rows = _tables()
    segs = rows.head(2).assign(segment="宝妈|1").drop(columns="group_id")
    art = Artifact(Path("."), {}, groups, products, rows, segs,
                   pd.DataFrame(columns=["group_id", "rank", "product_id", "score", "weights_hash"]))
    return ArtifactCandidates(art)


# Held-out orders: G1 bought Y twice (200 yuan each, 10 % commission), G2 bought X once; a pair never proposed too.
WINDOW = pd.DataFrame({"group_id": ["G1", "G2", "G2"], "product_id": ["Y", "X", "Z"], "orders": [2, 1, 5],
                       "quantity": [2.0, 1.0, 5.0], "paid": [400.0, 10.0, 50.0], "commission": [40.0, 1.0, 5.0]})


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


def test_realised_figures_count_the_window_orders_of_the_picked_pairs():
    picks = pd.DataFrame({"group_id": ["G1", "G1", "G2"], "product_id": ["X", "Y", "Y"]})
    f = realised_figures(picks, WINDOW, scale=2.0)
    assert f == {"realised_orders": 4.0, "realised_gmv": 800.0, "realised_commission": 80.0, "hit_rate": round(1 / 3, 4)}
    assert realised_figures(picks.head(0), WINDOW)["realised_orders"] == 0.0


def test_preview_replays_the_last_evaluation_window_with_realised_figures():
    groups, products, rows = _tables()
    window = EvaluationWindow.from_tables(groups, rows, WINDOW, products)
    result = preview(_source(), _weights(), _weights(earnings=1), RULES, ReachConfig(), curve_weight="earnings",
                     curve_values=[0.0, 1.0], window=window)
    replayed = result["window"]
    assert replayed["groups_replayed"] == 2
    # Conversion only: both pick X; only G2 bought X (1 line, 10 yuan, 1 yuan commission).
    now = replayed["current"]
    assert now["expected_orders"] == pytest.approx(0.8) and now["seller_earnings"] == pytest.approx(0.8)
    assert (now["realised_orders"], now["realised_gmv"], now["realised_commission"], now["hit_rate"]) == (1.0, 10.0, 1.0, 0.5)
    # With earnings both pick Y; only G1 bought Y (2 lines, 400 yuan, 40 yuan commission).
    new = replayed["proposed"]
    assert (new["realised_orders"], new["realised_gmv"], new["realised_commission"], new["hit_rate"]) == (2.0, 400.0, 40.0, 0.5)
    assert replayed["delta"]["realised_commission"] == pytest.approx(39.0)
    assert [p["realised_commission"] for p in replayed["curve"]] == [1.0, 40.0]
    assert preview(_source(), _weights(), _weights(), RULES, ReachConfig())["window"] is None
    with pytest.raises(ValueError):
        EvaluationWindow.from_tables(groups, rows, WINDOW.drop(columns="paid"))


def test_evaluation_tables_of_the_daily_jobs_evaluation(tmp_path):
    """The window tables built from the real evaluation of a tiny sample world, replayed by the preview."""
    from features.sample_world import generate
    from contracts.config import Config
    from training.daily import evaluate_pipeline
    from training.evaluate import Frames, time_split
    from training.evaluation_window import evaluation_tables

    cfg = Config()
    cfg.ranker = cfg.ranker.model_copy(update={"n_estimators": 40, "min_child_samples": 20})
    cfg.candidates = cfg.candidates.model_copy(update={"per_source": 30, "union_size": 40, "als_iterations": 3})
    world = generate(seed=3, groups=80, products=120, days=40)
    models: dict = {}
    evaluate_pipeline(world, cfg, 7, log=lambda _: None, max_eval_groups=20, models_out=models)
    tables = evaluation_tables(models["ranker"], world, cfg, 7)
    cands, window = tables["evaluation_candidates"], tables["evaluation_window"]
    _, test, cutoff = time_split(Frames.of(world), 7)
    kept = test.orders[~test.orders["refunded"]]
    assert window["orders"].sum() == len(kept) and window["paid"].sum() == pytest.approx(kept["paid"].sum())
    assert not cands.duplicated(["group_id", "product_id"]).any() and cands["p_conv"].between(0, 1).all()
    assert set(cands["group_id"]) == set(world.groups["group_id"])  # cold groups hold their segment's list
    groups = world.groups.assign(seller_type="宝妈", city_tier=1, cold_start=False, segment="")
    groups["member_count"] = 50
    win = EvaluationWindow.from_tables(groups, cands, window)
    result = preview(_source(), _weights(), _weights(earnings=1), RuleConfig(top_k=5), ReachConfig(preview_groups=1000),
                     curve_values=[0.0], window=win)["window"]
    assert result["groups_replayed"] == 80
    # The realised orders are those of the picked pairs: check against a plain merge of the replayed picks.
    from recsys.reach import simulate_placements

    picks = simulate_placements(win.candidates, sorted(cands["group_id"].unique()), _weights(), RuleConfig(top_k=5), days=1)
    hits = picks[["group_id", "product_id"]].merge(window, on=["group_id", "product_id"])
    assert result["current"]["realised_orders"] == hits["orders"].sum() > 0


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
