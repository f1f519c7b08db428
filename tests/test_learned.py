"""Category affinity, attribute segments, the vectorised random source and the learned (LightGBM) blend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.interactions import build_train_data
from recsys.candidates import GlobalPopular, RandomSource, SegmentPopular
from recsys.candidates.category import CategoryAffinitySource
from recsys.candidates.learned import LearnedBlend
from training.evaluate import Frames, build_validation, EvalOptions, relevance, time_split
from contracts.config import Config, FeatureConfig

NOW = pd.Timestamp("2024-06-01")


def tiny() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Items a1–a3 in category A, b1–b2 in B; g0 buys a1 on two days and a2, g1 buys b1 and a1."""
    products = pd.DataFrame({"product_id": ["a1", "a2", "a3", "b1", "b2"], "category": ["A", "A", "A", "B", "B"],
                             "price": 10.0, "commission_rate": 0.1})
    groups = pd.DataFrame({"group_id": ["g0", "g1"], "seller_id": ["s0", "s1"], "member_count": 50,
                           "area": ["north", "south"]})
    rows = [("g0", "a1", 1.0), ("g0", "a1", 2.0), ("g0", "a1", 2.1), ("g0", "a2", 1.0), ("g1", "b1", 1.0), ("g1", "a1", 1.0)]
    orders = pd.DataFrame({"order_id": [f"o{n}" for n in range(len(rows))], "group_id": [r[0] for r in rows],
                           "product_id": [r[1] for r in rows], "ordered_at": [NOW - pd.Timedelta(days=r[2]) for r in rows],
                           "quantity": 1, "paid": 10.0})
    return products, groups, orders


def tiny_data():
    """TrainData of the tiny world (no sellers table)."""
    products, groups, orders = tiny()
    return build_train_data(products, None, groups, None, orders, FeatureConfig(), now=NOW)


def test_category_affinity_is_smoothed_share_times_share_within_category():
    data = tiny_data()
    source = CategoryAffinitySource(half_life_days=None, item_half_life_days=None, prior=1.0).fit(data)
    scores = source.score(np.array([0, 1]))
    # g0: 3 (item, day) choices in A, none in B; overall mix A 4/5, B 1/5 → affinity A 0.95, B 0.05.
    # Distinct buyers: a1 2, a2 1, b1 1 → shares within category a1 2/3, a2 1/3, b1 1.
    np.testing.assert_allclose(scores[0], [0.95 * 2 / 3, 0.95 / 3, -np.inf, 0.05, -np.inf], rtol=1e-5)
    np.testing.assert_allclose(scores[1], [0.6 * 2 / 3, 0.6 / 3, -np.inf, 0.4, -np.inf], rtol=1e-5)
    with pytest.raises(ValueError, match="level"):
        CategoryAffinitySource(level="brand").fit(data)


def test_segment_popular_by_any_group_attribute():
    data = tiny_data()
    assert list(data.group_frame["area"]) == ["north", "south"]
    source = SegmentPopular(shrink=0.0, key="area").fit(data)
    ids, _ = source.recommend(np.array([0, 1]), 2)
    assert list(data.items.id_of(ids[0])) == ["a1", "a2"]  # g0's own area: a1 three times, a2 once
    assert set(data.items.id_of(ids[1])) == {"a1", "b1"}
    with pytest.raises(ValueError, match="no group attribute 'age'"):
        SegmentPopular(key="age").fit(data)


def test_random_source_is_reproducible_per_cell_and_uniform():
    data = tiny_data()
    a = RandomSource(seed=3).fit(data)
    b = RandomSource(seed=4).fit(data)
    first, again = a.score(np.array([0, 1])), a.score(np.array([1, 0]))
    np.testing.assert_array_equal(first, again[::-1])
    assert not np.array_equal(first, b.score(np.array([0, 1])))
    a.n_items_ = 20000
    big = a.score(np.arange(50))
    assert 0.0 <= big.min() and big.max() < 1.0 and abs(big.mean() - 0.5) < 0.01


def favourite_world(n_groups: int = 80, n_items: int = 60, days: int = 35, seed: int = 0) -> Frames:
    """Each group buys 2 new-to-it items a day from its favourite of 4 categories, popular ones more often."""
    rng = np.random.default_rng(seed)
    cat = np.arange(n_items) % 4
    products = pd.DataFrame({"product_id": [f"p{i}" for i in range(n_items)], "category": [f"c{c}" for c in cat],
                             "price": 10.0, "commission_rate": 0.1})
    groups = pd.DataFrame({"group_id": [f"g{g}" for g in range(n_groups)], "seller_id": [f"s{g}" for g in range(n_groups)],
                           "member_count": 50})
    appeal = rng.gamma(1.0, size=n_items)
    rows = []
    for g in range(n_groups):
        own = np.flatnonzero(cat == g % 4)
        p = appeal[own] / appeal[own].sum()
        for d in range(days):
            for i in rng.choice(own, 2, replace=False, p=p):
                rows.append((f"g{g}", f"p{i}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=d, hours=10)))
    orders = pd.DataFrame(rows, columns=["group_id", "product_id", "ordered_at"])
    orders.insert(0, "order_id", [f"o{n}" for n in range(len(orders))])
    orders["quantity"] = 1
    orders["paid"] = 10.0
    return Frames(products, None, groups, None, orders)


def test_learned_blend_learns_to_use_category_affinity_over_popularity():
    frames = favourite_world()
    train, test, cutoff = time_split(frames, 7)
    options = EvalOptions(validation_days=7, max_tune_groups=1000)
    val = build_validation(train, Config(), options)
    sources = {"popular": GlobalPopular(), "category": CategoryAffinitySource()}
    model = LearnedBlend(sources, per_source=20, n_estimators=30, min_child_samples=5)
    with pytest.raises(RuntimeError, match="fit_ranker"):
        model.fit(val.data)
    model.fit_ranker(val.data, val.groups, val.rel, val.exclude)
    assert model.train_stats_["positives"] > 0 and model.train_stats_["recall_of_candidates"] == pytest.approx(1.0)
    data = build_train_data(train.products, None, train.groups, None, train.orders, now=cutoff)
    model.fit(data)
    ids, scores = model.recommend(np.arange(data.n_groups), 5)
    cats = data.item_frame["category"].to_numpy()[ids]
    favourite = np.array([f"c{g % 4}" for g in range(data.n_groups)])
    # Every pick lies in the group's favourite category, which global popularity alone cannot know.
    assert (cats == favourite[:, None]).all()
    pop_ids, _ = sources["popular"].recommend(np.arange(data.n_groups), 5)
    assert (data.item_frame["category"].to_numpy()[pop_ids] != favourite[:, None]).any()
    # Exclusions and allowed items hold for the learned blend as for every source.
    exclude = data.bought[np.arange(data.n_groups)]
    ex_ids, _ = model.recommend(np.arange(data.n_groups), 3, exclude=exclude)
    assert not np.asarray(exclude[np.repeat(np.arange(data.n_groups), 3), ex_ids.ravel().clip(0)]).ravel()[ex_ids.ravel() >= 0].any()
    assert set(model.importances()) == set(model.feature_names)
    rel = relevance(test.orders, data, new_pairs_only=False)
    assert rel.nnz > 0


def test_harness_trains_the_learned_blend_on_validation_and_prints_one_table(tmp_path):
    from training.evaluate import run_evaluation
    from training.report import table, write_report

    frames = favourite_world(n_groups=40, n_items=40, days=28)
    train, test, cutoff = time_split(frames, 7)
    options = EvalOptions(validation_days=7, model="learned", tune_metric="hr@10", baselines=("popular", "random"),
                          blend_sources=("popular", "category_affinity"), grids={"category_affinity": {"affinity_power": [0.5, 1.0]}},
                          ranker_params={"n_estimators": 20, "min_child_samples": 5, "per_source": 20})
    logs: list[str] = []
    result = run_evaluation(train, test, Config(), options, dataset="favourites", cutoff=cutoff, log=logs.append)
    assert result.model_name == "learned" and set(result.metrics) == {"popular", "random", "learned"}
    assert any(line.startswith("trained learned blend") for line in logs)
    assert result.tuning["category_affinity"] and result.tuning["learned"][0]["train"]["positives"] > 0
    # Groups only buy in their favourite category, so the learned blend must beat plain popularity.
    assert result.metrics["learned"]["ndcg@10"] > result.metrics["popular"]["ndcg@10"]
    text = table(result, "ndcg@10")
    assert text.splitlines()[2].startswith("* learned")
    assert f"×{result.lift('ndcg@10'):.3f}" in text
    assert (write_report(result, tmp_path)).exists() and (tmp_path / "models_hr_at_10.png").exists()


def test_top_per_row_keeps_the_largest_entries_of_each_row():
    import scipy.sparse as sp

    from features.interactions import top_per_row

    m = sp.csr_matrix(np.array([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]], dtype=np.float32))
    kept = top_per_row(m, 2).toarray()
    np.testing.assert_array_equal(kept, [[0, 3, 0, 2], [5, 0, 0, 0], [1, 1, 0, 0]])
