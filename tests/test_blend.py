"""The ops blend: the formula, zero handling, and weights that change the order as they say."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.blend import blend_log_scores, blend_scores, weights_hash
from contracts.config import BlendWeights


def _components() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "p_conv": [0.10, 0.02, 0.05],
            "commission_yuan": [1.0, 12.0, 3.0],
            "rating": [0.9, 0.8, 1.0],
            "order_value": [20.0, 150.0, 40.0],
        }
    )


def test_default_weights_give_expected_earnings_times_rating_squared():
    scores = blend_scores(_components(), BlendWeights())
    assert scores == pytest.approx([0.10 * 1.0 * 0.81, 0.02 * 12.0 * 0.64, 0.05 * 3.0 * 1.0])


def test_every_exponent_applies():
    w = BlendWeights(conversion=2.0, earnings=0.5, rating=1.0, order_value=1.0, diversity=3.0)
    comps = {**{c: v.to_numpy() for c, v in _components().items()}, "diversity_penalty": np.array([0.0, 0.5, 0.2])}
    expected = [
        0.10**2 * 1.0**0.5 * 0.9 * 20.0 * 1.0,
        0.02**2 * 12.0**0.5 * 0.8 * 150.0 * 0.5**3,
        0.05**2 * 3.0**0.5 * 1.0 * 40.0 * 0.8**3,
    ]
    assert blend_scores(comps, w) == pytest.approx(expected)
    assert blend_log_scores(comps, w) == pytest.approx(np.log(expected))


def test_zero_weight_ignores_component_and_zero_value_gives_tiny_score():
    comps = {"p_conv": np.array([0.0, 0.3]), "commission_yuan": np.array([5.0, 0.0]), "rating": np.array([1.0, 1.0])}
    only_conv = BlendWeights(conversion=1.0, earnings=0.0, rating=0.0)
    assert blend_scores(comps, only_conv)[1] == pytest.approx(0.3)
    assert blend_scores(comps, only_conv)[0] < 1e-8
    both = blend_scores(comps, BlendWeights())
    assert np.all(np.isfinite(blend_log_scores(comps, BlendWeights())))
    assert both[0] < 1e-7 and both[1] < 1e-8


def test_missing_component_with_weight_is_an_error_naming_it():
    with pytest.raises(KeyError, match="order_value"):
        blend_scores({"p_conv": np.array([0.1]), "commission_yuan": np.array([1.0]), "rating": np.array([1.0])},
                     BlendWeights(order_value=1.0))


def test_earnings_weight_moves_high_commission_up():
    comps = _components()
    by_conversion = np.argsort(-blend_scores(comps, BlendWeights(earnings=0.0, rating=0.0)))
    assert by_conversion.tolist() == [0, 2, 1]
    by_earnings = np.argsort(-blend_scores(comps, BlendWeights(earnings=2.0, rating=0.0)))
    assert by_earnings.tolist() == [1, 2, 0]


def test_weights_hash_is_stable_and_changes_with_weights():
    assert weights_hash(BlendWeights()) == weights_hash(BlendWeights())
    assert weights_hash(BlendWeights()) != weights_hash(BlendWeights(earnings=1.5))
    assert len(weights_hash(BlendWeights())) == 12
    assert math.isclose(blend_scores({"p_conv": np.array([0.5])}, BlendWeights(earnings=0, rating=0))[0], 0.5)


def test_absent_commission_and_rating_leave_the_order_of_p_conv():
    # Data without a commission column (every commission 0) nor ratings (NaN): the default blend ranks by p_conv alone.
    comps = pd.DataFrame({"p_conv": [0.2, 0.5, 0.1, 0.3], "commission_yuan": 0.0, "rating": np.nan,
                          "order_value": [5.0, 1.0, 9.0, 2.0], "adoption": 1.0})
    log_scores = blend_log_scores(comps, BlendWeights())
    assert np.argsort(-log_scores).tolist() == [1, 3, 0, 2]
    # The absent factors shift every score by the same amount: the differences are p_conv's.
    assert np.allclose(np.diff(log_scores), np.diff(np.log(comps["p_conv"].to_numpy())))
