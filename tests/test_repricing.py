"""The repricing invariant: a what-if rewrites stored ranker rows (`recsys.ranker.reprice_features`) exactly as
re-featurising the pairs from a catalogue with the new price, commission rate or coupon would
(`features.profiles`), so the reach what-if asks the ranker about the rows the daily job would have written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.profiles import build_profiles
from features.sample_world import generate
from recsys.ranker import PRICE_SCALE, reprice_features

# What a change of the catalogue's price, commission rate or coupon may move in a pair's features.
REPRICED = ("log_price", "price_z", "commission_rate", "commission_yuan", "coupon")


@pytest.fixture(scope="module")
def world():
    return generate(seed=5, groups=60, products=80, days=30)


def _features(world, products: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    now = pd.Timestamp(world.orders["ordered_at"].max()) + pd.Timedelta(seconds=1)
    profiles = build_profiles(products, world.sellers, world.groups, world.pushes, world.orders, now)
    feats = profiles.pair_features(pairs).reset_index(drop=True)
    feats[PRICE_SCALE] = profiles.price_scale_of(feats["group_id"].astype(str).to_numpy(dtype=object))
    return feats


@pytest.mark.parametrize("change", [
    {"price": 1.7}, {"commission_rate": 0.31}, {"coupon": 4.0}, {"price": 0.6, "commission_rate": 0.05, "coupon": 1.0},
])
def test_repricing_stored_rows_equals_refeaturising_the_changed_catalogue(world, change):
    pairs = world.orders[["group_id", "product_id"]].drop_duplicates().head(300).reset_index(drop=True)
    before = _features(world, world.products, pairs)
    changed = set(pairs["product_id"].drop_duplicates().head(12))
    products = world.products.copy()
    mask = products["product_id"].isin(changed)
    new_values: dict[str, np.ndarray] = {}
    for field, value in change.items():
        new = products[field].astype(float) * value if field == "price" else pd.Series(value, index=products.index)
        products.loc[mask, field] = new[mask]
        new_values[field] = products.set_index("product_id")[field].astype(float)
    after = _features(world, products, pairs)
    rows = before["product_id"].isin(changed).to_numpy()
    assert rows.sum() > 0
    repriced = reprice_features(before.loc[rows], **{f: v.reindex(before.loc[rows, "product_id"]).to_numpy()
                                                   for f, v in new_values.items()})
    expected = after.loc[rows]
    assert {"log_price", "price_z", "commission_rate", "coupon"} <= set(before.columns)
    moved = {"price": "log_price", "commission_rate": "commission_rate", "coupon": "coupon"}
    for field in change:  # the change reached the features: the check below is not vacuous
        assert not np.allclose(before.loc[rows, moved[field]].to_numpy(float), expected[moved[field]].to_numpy(float))
    for col in REPRICED:
        if col in before:
            assert np.allclose(repriced[col].to_numpy(float), expected[col].to_numpy(float), rtol=1e-9, equal_nan=True), col
    # Nothing else moves, and pairs of products that did not change keep every feature.
    others = [c for c in before.columns if c not in REPRICED and c not in ("group_id", "product_id")]
    for col in others:
        if pd.api.types.is_numeric_dtype(before[col]):
            assert np.allclose(before.loc[rows, col].to_numpy(float), expected[col].to_numpy(float), equal_nan=True), col
    unchanged = after.loc[~rows].drop(columns=[PRICE_SCALE]).reset_index(drop=True)
    pd.testing.assert_frame_equal(unchanged, before.loc[~rows].drop(columns=[PRICE_SCALE]).reset_index(drop=True))
