"""Conversion ranker: labels, sampled negatives, calibration metrics and the time-split fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.calibration import Calibrator, auc, expected_calibration_error, log_loss
from contracts.config import RankerConfig
from recsys.ranker import (
    ConversionRanker,
    fit_and_evaluate,
    load_ranker,
    order_labels_with_sampled_negatives,
    popularity_rate,
    push_labels,
    reprice_features,
)


def test_push_labels_window_refunds_and_cut_off():
    pushes = pd.DataFrame({
        "group_id": ["g1", "g1", "g1", "g2", "g2"],
        "product_id": ["a", "b", "c", "a", "a"],
        "pushed_at": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 09:00", "2024-01-01 09:00",
                                     "2024-01-02 10:00", "2024-01-09 10:00"]),
    })
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4"],
        "group_id": ["g1", "g1", "g1", "g2"],
        "product_id": ["a", "b", "c", "a"],
        "ordered_at": pd.to_datetime(["2024-01-03 20:00", "2024-01-04 09:01", "2024-01-01 12:00", "2024-01-01 10:00"]),
        "refunded": [False, False, True, False],
    })
    labels = push_labels(pushes, orders, window_days=3)
    # a: ordered 2.5 days later; b: 3 days + 1 minute (outside); c: refunded; g2 a: order came before the push.
    assert labels["label"].tolist() == [1, 0, 0, 0, 0]
    assert labels["at"].tolist() == pushes["pushed_at"].tolist()
    cut = push_labels(pushes, orders, window_days=3, data_end=pd.Timestamp("2024-01-10"))
    assert len(cut) == 4  # the 01-09 push has no full window yet


def test_sampled_negatives_count_exclusion_and_seed():
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3"], "group_id": ["g1", "g1", "g2"], "product_id": ["a", "a", "b"],
        "ordered_at": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 18:00", "2024-01-02 09:00"]),
    })
    catalogue = ["a", "b"] + [f"x{i}" for i in range(200)]
    out = order_labels_with_sampled_negatives(orders, catalogue, negatives_per_positive=4, seed=3)
    pos = out[out["label"] == 1]
    assert sorted(zip(pos["group_id"], pos["product_id"])) == [("g1", "a"), ("g2", "b")]
    neg = out[out["label"] == 0]
    assert 6 <= len(neg) <= 8
    assert not ((neg["group_id"] == "g1") & (neg["product_id"] == "a")).any()
    assert not ((neg["group_id"] == "g2") & (neg["product_id"] == "b")).any()
    again = order_labels_with_sampled_negatives(orders, catalogue, negatives_per_positive=4, seed=3)
    pd.testing.assert_frame_equal(out, again)


def test_ece_definition_on_a_hand_computed_case():
    y = np.array([1, 0, 0, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.05, 0.95, 0.95, 1.0])
    # bin 0: mean p 0.05, rate 1/3 → gap 0.2833 × 3/6; bin 14: mean p 0.9667, rate 1 → 0.0333 × 3/6
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * (1 / 3 - 0.05) + 0.5 * (1 - 2.9 / 3))
    assert expected_calibration_error(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        expected_calibration_error(np.array([0, 1]), np.array([0.5, 1.5]))
    assert log_loss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    assert auc(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3])) == 1.0


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_fixes_an_overconfident_score(method):
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.0, 0.3, 20000)
    y = (rng.random(20000) < truth).astype(int)
    score = np.sqrt(truth)  # monotone but badly scaled
    cal = Calibrator(method).fit(score[:10000], y[:10000])
    before = expected_calibration_error(y[10000:], score[10000:])
    after = expected_calibration_error(y[10000:], cal.predict(score[10000:]))
    assert before > 0.15 and after < 0.02


def _world(n_days: int = 28, per_day: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_days * per_day
    affinity = rng.normal(size=n)
    price = rng.uniform(5, 200, n)
    seller = rng.choice(["宝妈", "快递员", "学生"], n)
    boost = np.where(seller == "宝妈", 0.8, 0.0)
    logit = -2.5 + 1.2 * affinity - 0.01 * price + boost
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    at = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.repeat(np.arange(n_days), per_day), unit="D")
    return pd.DataFrame({"group_id": rng.choice([f"g{i}" for i in range(50)], n),
                         "product_id": rng.choice([f"p{i}" for i in range(80)], n),
                         "at": at, "affinity": affinity, "price": price, "seller_type": seller, "label": y})


def test_fit_and_evaluate_beats_popularity_and_is_calibrated():
    cfg = RankerConfig(n_estimators=150, min_child_samples=20, validation_days=10)
    ranker, metrics = fit_and_evaluate(_world(), cfg)
    cal, raw, pop = metrics["calibrated"], metrics["uncalibrated"], metrics["popularity_rate"]
    assert cal["auc"] > pop["auc"] + 0.15
    assert cal["log_loss"] < pop["log_loss"]
    assert cal["ece"] <= 0.03
    assert metrics["rows"]["train"] == 18 * 400 and metrics["rows"]["test"] + metrics["rows"]["calibrate"] == 10 * 400
    assert set(ranker.categories_) == {"seller_type"}
    assert list(ranker.feature_importance())[0] == "affinity"
    # Unknown categories and missing values still score.
    probe = pd.DataFrame({"affinity": [2.0, -2.0, np.nan], "price": [10.0, 10.0, 10.0], "seller_type": ["宝妈", "宝妈", "外星人"]})
    p = ranker.predict_proba(probe)
    assert p.shape == (3,) and p[0] > p[1] and np.all((p > 0) & (p < 1))


def test_single_class_and_missing_feature_are_errors():
    world = _world(n_days=2, per_day=50)
    with pytest.raises(ValueError, match="single class"):
        ConversionRanker(RankerConfig(n_estimators=5)).fit(world, np.zeros(len(world)))
    ranker = ConversionRanker(RankerConfig(n_estimators=5, min_child_samples=5)).fit(world, world["label"].to_numpy())
    with pytest.raises(KeyError, match="price"):
        ranker.predict_proba(world.drop(columns="price"))
    assert popularity_rate(pd.Series(["a", "a", "b"]), np.array([1, 1, 0]), pd.Series(["a", "z"]), strength=1.0) == \
        pytest.approx([(2 + 2 / 3) / 3, 2 / 3])


@pytest.mark.parametrize("method", ["isotonic", "platt", "none"])
def test_calibrator_round_trips_through_json(method):
    rng = np.random.default_rng(1)
    score = rng.uniform(0.01, 0.6, 2000)
    y = (rng.random(2000) < score / 2).astype(int)
    cal = Calibrator(method).fit(score, y)
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    probe = np.linspace(0.0, 1.0, 101)
    assert np.array_equal(cal.predict(probe), again.predict(probe))
    if method == "isotonic":
        assert np.all(np.diff(cal.predict(probe)) >= 0)


def test_saved_ranker_predicts_the_same_and_reads_float_categories(tmp_path):
    world = _world(n_days=20, per_day=300)
    tier = np.where(world["affinity"] > 0, 1.0, 3.0)
    tier[::7] = np.nan
    # A float-coded category, as features.profiles.pair_features gives the city tier.
    world["city_tier"] = pd.Categorical(tier, categories=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    cfg = RankerConfig(n_estimators=60, min_child_samples=20, validation_days=6)
    ranker, _ = fit_and_evaluate(world, cfg)
    assert ranker.categories_["city_tier"] == ["1.0", "3.0"]
    paths = ranker.save(tmp_path / "models")
    assert [p.name for p in paths] == ["ranker.txt", "ranker.json"]
    loaded = load_ranker(tmp_path)
    assert loaded.feature_names_ == ranker.feature_names_ and loaded.best_iteration_ == ranker.best_iteration_
    assert np.array_equal(loaded.predict_proba(world), ranker.predict_proba(world))
    # The tier is used as a category: text or float spellings of it score alike, an unknown tier as missing.
    as_text = world.assign(city_tier=[None if v != v else str(v) for v in tier])
    assert np.array_equal(loaded.predict_proba(as_text), ranker.predict_proba(world))
    with pytest.raises(FileNotFoundError, match="ranker.txt"):
        load_ranker(tmp_path / "elsewhere")


def test_reprice_features_rewrites_price_commission_and_coupon():
    rows = pd.DataFrame({"log_price": [np.log(50.0), np.log(10.0)], "price_z": [0.5, -1.0], "_price_z_scale": [0.5, 0.25],
                         "commission_rate": [0.2, 0.1], "commission_yuan": [10.0, 1.0], "coupon": [0.0, 2.0],
                         "cat_share": [0.3, 0.6]})
    out = reprice_features(rows, price=[100.0, 10.0], coupon=5.0)
    assert out["log_price"].tolist() == pytest.approx([np.log(100.0), np.log(10.0)])
    assert out["price_z"].tolist() == pytest.approx([0.5 + np.log(2.0) / 0.5, -1.0])
    assert out["commission_yuan"].tolist() == pytest.approx([20.0, 1.0])
    assert out["coupon"].tolist() == [5.0, 5.0] and out["cat_share"].tolist() == [0.3, 0.6]
    cheaper = reprice_features(rows, commission_rate=np.array([0.3, 0.3]))
    assert cheaper["commission_yuan"].tolist() == pytest.approx([15.0, 3.0])
    assert cheaper["price_z"].tolist() == rows["price_z"].tolist() and rows["commission_rate"].tolist() == [0.2, 0.1]


def test_categorical_features_read_the_same_from_categoricals_and_from_text() -> None:
    """A categorical column (as pair features give) maps to the ranker's categories like the same values as text."""
    from recsys.ranker import ConversionRanker

    ranker = ConversionRanker()
    ranker.feature_names_ = ["city_tier", "x"]
    ranker.categories_ = {"city_tier": ["1.0", "2.0", "3.0"]}
    values = [1.0, None, 3.0, 4.0, 2.0]
    as_categorical = pd.DataFrame({"city_tier": pd.Categorical(values, categories=[1.0, 2.0, 3.0, 4.0]), "x": range(5)})
    as_text = pd.DataFrame({"city_tier": pd.Series(values, dtype=object), "x": range(5)})
    a, b = ranker._matrix(as_categorical), ranker._matrix(as_text)
    pd.testing.assert_frame_equal(a, b)
    assert a["city_tier"].isna().tolist() == [False, True, False, True, False]


def test_compiled_ranker_predicts_what_lightgbm_predicts_and_survives_pickling() -> None:
    import pickle

    world = _world(n_days=20, per_day=300)
    tier = np.where(world["affinity"] > 0, 1.0, 3.0)
    tier[::7] = np.nan
    world["city_tier"] = pd.Categorical(tier, categories=[1.0, 2.0, 3.0])
    world.loc[world.index[::11], "price"] = np.nan
    ranker, _ = fit_and_evaluate(world, RankerConfig(n_estimators=80, min_child_samples=20, validation_days=6))
    # Missing values, an unknown category and a missing category all take LightGBM's paths in the compiled trees too.
    probe = pd.concat([world, world.head(50).assign(seller_type="外星人", city_tier=np.nan)], ignore_index=True)
    expected = ranker.predict_raw(probe)
    compiled = ranker.compile().predict_raw(probe)
    assert ranker.compiled_ is not None
    np.testing.assert_allclose(compiled, expected, rtol=0, atol=1e-12)
    assert len(np.unique(expected)) > 50  # the probe reaches many leaves
    again = pickle.loads(pickle.dumps(ranker))
    assert again.compiled_ is not None and again.compiled_ is not ranker.compiled_
    assert np.array_equal(again.predict_raw(probe), compiled)
