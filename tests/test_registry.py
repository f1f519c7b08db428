"""The registry of candidate sources: every registered source passes the same contract (as implicit's shared test
mixin does for its models), and the registry's tables name only registered sources and real configuration fields."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from contracts.config import CandidateConfig, Config, FeatureConfig
from features.interactions import TrainData, build_train_data
from recsys.candidates.registry import (
    CONFIG_OF_PARAM, FACTORIES, GRIDS, SOURCE_REASONS, TIMED_SOURCES, grid_of, make_source, source_names,
)

START = pd.Timestamp("2024-03-01")
CATS = ["食品", "母婴", "日用", "美妆", "3C"]
N_GROUPS, N_ITEMS, DAYS, K = 24, 30, 28, 5
# The registered names plus a segment variant, which the registry builds from its 'segment_popular:<column>' form.
NAMES = [*source_names(), "segment_popular:seller_type"]
CFG = Config(candidates=CandidateConfig(threads=1))


def tiny_data() -> TrainData:
    """Groups that each buy mostly from a favourite category, daily for four weeks, with a push before each order."""
    rng = np.random.default_rng(0)
    cat = np.arange(N_ITEMS) % len(CATS)
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(N_ITEMS)], "title": [f"{CATS[c]}好物{i}" for i, c in enumerate(cat)],
        "category": [f"{CATS[c]}/其他" for c in cat], "brand": "", "price": 10.0 + np.arange(N_ITEMS),
        "commission_rate": 0.1, "rating": np.linspace(0.9, 0.99, N_ITEMS), "in_stock": True,
    })
    sellers = pd.DataFrame({"seller_id": ["s0", "s1", "s2"], "seller_type": ["宝妈", "学生", "导购"], "city_tier": [1, 2, 3]})
    groups = pd.DataFrame({"group_id": [f"g{g}" for g in range(N_GROUPS)], "seller_id": [f"s{g % 3}" for g in range(N_GROUPS)],
                           "member_count": [30 + 10 * g for g in range(N_GROUPS)]})
    favourite = np.arange(N_GROUPS) % len(CATS)
    rows = []
    for d in range(DAYS):
        for g in range(N_GROUPS):
            pool = np.flatnonzero(cat == favourite[g]) if rng.random() < 0.8 else np.arange(N_ITEMS)
            for i in rng.choice(pool, 2, replace=False):
                rows.append((f"g{g}", f"p{i}", START + pd.Timedelta(days=d, hours=int(rng.integers(8, 22)))))
    orders = pd.DataFrame(rows, columns=["group_id", "product_id", "ordered_at"])
    orders.insert(0, "order_id", [f"o{n}" for n in range(len(orders))])
    orders["quantity"] = 1
    orders["paid"] = 10.0
    orders["refunded"] = False
    pushes = orders[["group_id", "product_id"]].assign(pushed_at=orders["ordered_at"] - pd.Timedelta(hours=1))
    return build_train_data(products, sellers, groups, pushes, orders, FeatureConfig(half_life_days=14),
                            now=START + pd.Timedelta(days=DAYS))


@pytest.fixture(scope="module")
def data() -> TrainData:
    return tiny_data()


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_source_meets_the_contract(name: str, data: TrainData) -> None:
    source = make_source(name, None, CFG)
    assert source.name == name
    source.fit(data)
    groups = np.arange(data.n_groups)
    ids, scores = source.recommend(groups, K)
    assert ids.shape == scores.shape == (len(groups), K)
    # k distinct known items per group, padded (-1 / -inf together) only after the proposals.
    proposed = ids >= 0
    assert proposed.any(), name
    assert (ids < data.n_items).all()
    assert ((ids == -1) == np.isneginf(scores)).all()
    assert (np.sort(proposed, axis=1)[:, ::-1] == proposed).all(), "padding only at the tail"
    for row in ids:
        known = row[row >= 0]
        assert len(set(known.tolist())) == len(known), (name, row)
    # Scores of the proposals are finite and ranked best first.
    assert np.isfinite(scores[proposed]).all()
    ranked = np.where(proposed, scores, np.nan)
    steps = np.diff(ranked, axis=1)
    assert (steps[~np.isnan(steps)] <= 1e-6).all()
    # `exclude` is honoured: the current top item of every group never comes back once excluded.
    first = np.where(ids[:, 0] >= 0, ids[:, 0], 0)
    exclude = sp.csr_matrix((np.ones(len(groups)), (groups, first)), shape=(len(groups), data.n_items))
    again, _ = source.recommend(groups, K, exclude=exclude)
    assert not (again == first[:, None]).any(), name
    # Deterministic for a seed: a second source built and fitted the same way answers the same.
    twin_ids, twin_scores = make_source(name, None, CFG).fit(data).recommend(groups, K)
    assert (twin_ids == ids).all(), name
    np.testing.assert_allclose(twin_scores[proposed], scores[proposed], rtol=1e-5)


def test_the_registry_names_only_registered_sources_and_real_config_fields() -> None:
    registered = set(FACTORIES)
    assert set(GRIDS) <= registered
    assert set(SOURCE_REASONS) <= registered
    assert set(TIMED_SOURCES) <= registered
    fields = set(CandidateConfig.model_fields)
    for (name, key), field_name in CONFIG_OF_PARAM.items():
        assert name in registered and field_name in fields, (name, key, field_name)
    assert grid_of("segment_popular:age_group") == GRIDS["segment_popular"]
    with pytest.raises(KeyError, match="unknown source"):
        make_source("no_such_source")
