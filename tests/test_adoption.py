"""Adoption (the chance a seller pushes a pick) and its place in the blend, on hand-checkable data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.interactions import build_train_data
from recsys.adoption import SellerAdoption
from recsys.blend import blend_log_scores
from recsys.candidates.exposure import ExposureSource
from contracts.config import BlendWeights, FeatureConfig

NOW = pd.Timestamp("2024-06-01")


def tiny(with_pushes: bool = True):
    """Two groups, categories A (p0, p1) and B (p2, p3); g0 pushed p0 p0 p1 p2, g1 pushed p2 p2 p3."""
    products = pd.DataFrame({"product_id": ["p0", "p1", "p2", "p3"], "title": ["饼干", "薯片", "耳机", "音箱"],
                             "category": ["食品/零食", "食品/零食", "3C/耳机", "3C/耳机"], "price": 10.0,
                             "commission_rate": 0.1})
    sellers = pd.DataFrame({"seller_id": ["s0"], "seller_type": ["宝妈"], "city_tier": [1]})
    groups = pd.DataFrame({"group_id": ["g0", "g1"], "seller_id": ["s0", "s0"], "member_count": 80})
    pushed = [("g0", "p0"), ("g0", "p0"), ("g0", "p1"), ("g0", "p2"), ("g1", "p2"), ("g1", "p2"), ("g1", "p3")]
    pushes = pd.DataFrame({"group_id": [g for g, _ in pushed], "product_id": [p for _, p in pushed],
                           "pushed_at": [NOW - pd.Timedelta(days=d + 1) for d in range(len(pushed))]})
    orders = pd.DataFrame({"order_id": ["o0"], "group_id": ["g0"], "product_id": ["p0"],
                           "ordered_at": [NOW - pd.Timedelta(days=1)], "quantity": [1], "paid": [10.0]})
    return build_train_data(products, sellers, groups, pushes if with_pushes else None, orders, FeatureConfig(),
                            now=NOW, item_vectors=np.zeros((4, 2), dtype=np.float32))


def test_adoption_is_category_mix_times_product_share() -> None:
    data = tiny()
    adoption = SellerAdoption(data, prior_pushes=0.0)
    g = np.array([0, 0, 1, 1])
    i = np.array([0, 3, 1, 2])
    # Product shares with one pseudo-push each: p0 (2+1)/(3+2), p3 (1+1)/(4+2), p1 (1+1)/(3+2), p2 (3+1)/(4+2).
    # Category mix: g0 pushed A 3 of 4 times, B 1 of 4; g1 pushed only B.
    expected = [0.75 * 0.6, 0.25 * (1 / 3), 0.0, 1.0 * (2 / 3)]
    np.testing.assert_allclose(adoption.pairs(g, i), expected)


def test_adoption_shrinks_a_group_towards_the_platform_mix() -> None:
    data = tiny()
    # With 20 pseudo-pushes at the platform mix (A 3/7, B 4/7), g1's unseen category A is no longer impossible.
    value = SellerAdoption(data, prior_pushes=20.0).pairs(np.array([1]), np.array([1]))[0]
    assert value == pytest.approx((0 + 20 * 3 / 7) / (3 + 20) * 0.4)


def test_adoption_without_pushes_is_neutral() -> None:
    data = tiny(with_pushes=False)
    np.testing.assert_array_equal(SellerAdoption(data).pairs(np.array([0, 1]), np.array([2, 3])), [1.0, 1.0])


def test_exposure_pair_scores_match_its_dense_scores() -> None:
    data = tiny()
    source = ExposureSource(prior_pushes=5.0).fit(data)
    dense = source.score(np.array([0, 1]))
    g, i = np.meshgrid(np.arange(2), np.arange(4), indexing="ij")
    pairs = source.pair_scores(g.ravel(), i.ravel()).reshape(2, 4)
    finite = np.isfinite(dense)
    np.testing.assert_allclose(pairs[finite], dense[finite], rtol=1e-5)


def test_adoption_weight_moves_the_blend_and_a_missing_column_is_neutral() -> None:
    comps = pd.DataFrame({"p_conv": [0.10, 0.05], "commission_yuan": [1.0, 1.0], "rating": [0.95, 0.95],
                          "adoption": [0.01, 0.5]})
    ignore = BlendWeights(adoption=0.0)
    follow = BlendWeights(adoption=1.0)
    assert np.argmax(blend_log_scores(comps, ignore)) == 0  # converts better
    assert np.argmax(blend_log_scores(comps, follow)) == 1  # the seller is 50 × as likely to push it
    np.testing.assert_allclose(blend_log_scores(comps.drop(columns="adoption"), follow), blend_log_scores(comps, ignore))


def test_a_missing_adoption_value_is_neutral() -> None:
    comps = pd.DataFrame({"p_conv": [0.1, 0.1], "commission_yuan": [1.0, 1.0], "rating": [0.9, 0.9], "adoption": [np.nan, 1.0]})
    scores = blend_log_scores(comps, BlendWeights(adoption=2.0))
    assert scores[0] == pytest.approx(scores[1])
