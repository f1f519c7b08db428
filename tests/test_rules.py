"""Business rules and the greedy diversity re-rank of one group's picks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from contracts.config import BlendWeights, RuleConfig
from recsys.picks import select_picks
from recsys.rules import eligible_mask, parse_reasons

# Only conversion counts unless a test says otherwise, so the expected order is easy to read.
CONV = BlendWeights(conversion=1.0, earnings=0.0, rating=0.0, order_value=0.0, diversity=0.0)
LOOSE = RuleConfig(max_per_brand=200, max_per_category=200, category_decay=0.0)


def _cands(n: int = 6, **columns) -> pd.DataFrame:
    base = {
        "product_id": [f"p{i}" for i in range(n)],
        "p_conv": [0.5 - 0.05 * i for i in range(n)],  # p0 best, p5 worst
        "price": [10.0] * n,
        "commission_rate": [0.1] * n,
        "commission_yuan": [1.0] * n,
        "rating": [0.9] * n,
        "order_value": [10.0] * n,
        "category": [f"c{i}" for i in range(n)],
        "brand": [f"b{i}" for i in range(n)],
        "reasons": [json.dumps(["trending"])] * n,
        "in_stock": [True] * n,
        "repurchase_due": [False] * n,
        "presale": [False] * n,
        "coupon": [0.0] * n,
        "price_change_7d": [0.0] * n,
        "days_since_push": [np.nan] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


def _ids(picks: pd.DataFrame) -> list[str]:
    return picks["product_id"].tolist()


def test_ranks_by_blend_and_keeps_top_k():
    picks = select_picks(_cands(), CONV, LOOSE, k=3)
    assert _ids(picks) == ["p0", "p1", "p2"]
    assert picks["rank"].tolist() == [1, 2, 3]
    assert picks["score"].tolist() == pytest.approx([0.5, 0.45, 0.4])


def test_out_of_stock_dropped_unless_rule_off():
    cands = _cands(in_stock=[False, True, True, True, True, True])
    assert _ids(select_picks(cands, CONV, LOOSE, k=2)) == ["p1", "p2"]
    assert _ids(select_picks(cands, CONV, LOOSE.model_copy(update={"in_stock_only": False}), k=2)) == ["p0", "p1"]


def test_recent_push_dropped_unless_repurchase_due():
    cands = _cands(days_since_push=[2.0, 3.0, 7.0, np.nan, np.nan, np.nan],
                   repurchase_due=[False, True, False, False, False, False])
    # p0 pushed 2 days ago: out; p1 pushed 3 days ago but due: kept; p2 pushed 7 days ago: not < 7, kept.
    assert _ids(select_picks(cands, CONV, LOOSE, k=3)) == ["p1", "p2", "p3"]
    assert _ids(select_picks(cands, CONV, LOOSE.model_copy(update={"no_repeat_days": 0}), k=3)) == ["p0", "p1", "p2"]
    assert _ids(select_picks(cands, CONV, LOOSE.model_copy(update={"no_repeat_days": 8}), k=2)) == ["p1", "p3"]


def test_price_change_beyond_threshold_dropped_both_ways():
    cands = _cands(price_change_7d=[0.25, -0.15, 0.10, np.nan, 0.0, 0.0])
    assert _ids(select_picks(cands, CONV, LOOSE, k=3)) == ["p2", "p3", "p4"]
    wide = LOOSE.model_copy(update={"max_price_change": 0.2})
    assert _ids(select_picks(cands, CONV, wide, k=3)) == ["p1", "p2", "p3"]


def test_brand_and_category_caps():
    cands = _cands(brand=["A", "A", "A", "", "", ""], category=["x", "y", "z", "w", "w", "w"])
    by_brand = RuleConfig(max_per_brand=2, max_per_category=200, category_decay=0.0)
    assert _ids(select_picks(cands, CONV, by_brand, k=5)) == ["p0", "p1", "p3", "p4", "p5"]
    cands = _cands(category=["食品/零食", "食品/饮料", "食品/粮油", "日用", "日用", "日用"])
    by_cat = RuleConfig(max_per_brand=200, max_per_category=2, category_decay=0.0)
    # The cap is on the main category: the three 食品/* items share it.
    assert _ids(select_picks(cands, CONV, by_cat, k=5)) == ["p0", "p1", "p3", "p4"]


def test_category_decay_only_matters_through_the_diversity_weight():
    cands = _cands(category=["x", "x", "y", "z", "w", "v"], p_conv=[0.5, 0.49, 0.45, 0.1, 0.1, 0.1])
    rules = RuleConfig(max_per_brand=200, max_per_category=200, category_decay=0.2)
    # Without diversity weight the second x item (0.49) beats y (0.45).
    assert _ids(select_picks(cands, CONV, rules, k=3)) == ["p0", "p1", "p2"]
    # With diversity 1 the second x is worth 0.49 × 0.8 = 0.392 < 0.45, so y comes first.
    diverse = CONV.model_copy(update={"diversity": 1.0})
    picks = select_picks(cands, diverse, rules, k=3)
    assert _ids(picks) == ["p0", "p2", "p1"]
    assert picks["diversity_penalty"].tolist() == pytest.approx([0.0, 0.0, 0.2])
    assert picks["score"].tolist() == pytest.approx([0.5, 0.45, 0.392])


def test_reweighting_changes_order_as_weights_say():
    cands = _cands(n=3, p_conv=[0.10, 0.05, 0.02], commission_yuan=[1.0, 4.0, 30.0])
    w0 = BlendWeights(earnings=0.0, rating=0.0, diversity=0.0)
    assert _ids(select_picks(cands, w0, LOOSE, k=3)) == ["p0", "p1", "p2"]
    w1 = BlendWeights(earnings=1.0, rating=0.0, diversity=0.0)  # 0.1, 0.2, 0.6
    assert _ids(select_picks(cands, w1, LOOSE, k=3)) == ["p2", "p1", "p0"]
    w_half = BlendWeights(earnings=0.5, rating=0.0, diversity=0.0)  # 0.1, 0.1, 0.1095
    assert _ids(select_picks(cands, w_half, LOOSE, k=1)) == ["p2"]


def test_reasons_and_flags():
    cands = _cands(n=3, presale=[True, False, False], coupon=[0.0, 5.0, 0.0], rating=[0.99, 0.9, 0.9],
                   repurchase_due=[False, False, True],
                   reasons=[json.dumps(["group_buys_category", "trending"]), json.dumps(["similar_to_past"]), "[]"])
    picks = select_picks(cands, CONV, LOOSE, k=3).set_index("product_id")
    assert picks.loc["p0", "flags"] == ["presale"]
    assert picks.loc["p0", "reasons"] == ["group_buys_category", "trending", "high_rating", "presale"]
    assert picks.loc["p1", "flags"] == ["coupon"]
    assert picks.loc["p1", "reasons"] == ["similar_to_past", "coupon"]
    assert picks.loc["p2", "reasons"] == ["repurchase_due"]
    assert parse_reasons('["trending", "made_up"]') == ["trending"]


def test_arrays_and_frame_give_the_same_picks_and_empty_input_is_fine():
    cands = _cands(category=["x", "x", "x", "y", "y", "z"])
    rules = RuleConfig()
    as_frame = select_picks(cands, BlendWeights(), rules, k=4)
    as_arrays = select_picks({c: cands[c].to_numpy() for c in cands.columns}, BlendWeights(), rules, k=4)
    pd.testing.assert_frame_equal(as_frame, as_arrays)
    assert eligible_mask({c: cands[c].to_numpy() for c in cands.columns}, rules).tolist() == [True] * 6
    empty = select_picks(cands.iloc[:0], BlendWeights(), rules, k=4)
    assert len(empty) == 0 and "product_id" in empty.columns
