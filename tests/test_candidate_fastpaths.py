"""Fast paths of the candidate sources against their dense references: pair scores, sparse / shared-row
recommend, and the threshold top-K, on a small random world wide enough (3,000 products) to take them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.interactions import build_train_data
from recsys.candidates import (
    ALSSource, BlendRecommender, ContentSource, EASESource, ExposureSource, GlobalPopular, ItemKNNSource, OwnTopItems,
    RandomSource, RatingCommissionRule, RepurchaseSource, SegmentPopular, TrendingSource,
)
from recsys.candidates.base import threshold_top_k, top_k, top_k_entries, top_k_reference
from recsys.candidates.category import CategoryAffinitySource
from contracts.config import FeatureConfig

NOW = pd.Timestamp("2024-06-01")
N_GROUPS, N_ITEMS = 60, 3000


def random_data():
    """60 groups (a few cold) of 3 sellers, 3,000 products in 12 categories; Zipf-popular orders and pushes."""
    rng = np.random.default_rng(11)
    cats = [f"类目{c}/子类{c % 3}" for c in range(12)]
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(N_ITEMS)],
        "title": ["".join(rng.choice(list("零食饼干蓝牙耳机牛奶纸巾洗发水面包"), 4)) for _ in range(N_ITEMS)],
        "category": [cats[c] for c in rng.integers(0, 12, N_ITEMS)],
        "brand": "", "price": 10.0, "commission_rate": 0.1,
        # Few distinct ratings: the rule's scores tie often.
        "rating": rng.choice([0.9, 0.95, 0.99], N_ITEMS),
        "in_stock": rng.random(N_ITEMS) > 0.1,
    })
    sellers = pd.DataFrame({"seller_id": ["s0", "s1", "s2"], "seller_type": ["宝妈", "学生", "宝妈"], "city_tier": [1, 2, 2]})
    groups = pd.DataFrame({"group_id": [f"g{g}" for g in range(N_GROUPS)], "seller_id": [f"s{g % 3}" for g in range(N_GROUPS)],
                           "member_count": 80})
    popular = rng.zipf(1.3, 4000) % N_ITEMS
    n_orders = 1500
    warm = rng.integers(0, N_GROUPS - 6, n_orders)  # the last six groups never order
    orders = pd.DataFrame({
        "order_id": [f"o{n}" for n in range(n_orders)], "group_id": [f"g{g}" for g in warm],
        "product_id": [f"p{i}" for i in rng.choice(popular, n_orders)],
        "ordered_at": [NOW - pd.Timedelta(days=float(d)) for d in rng.integers(1, 40, n_orders)],
        "quantity": 1, "paid": 10.0,
    })
    pushes = pd.DataFrame({
        "group_id": [f"g{g}" for g in rng.integers(0, N_GROUPS, 3000)],
        "product_id": [f"p{i}" for i in rng.choice(popular, 3000)],
        "pushed_at": [NOW - pd.Timedelta(days=float(d)) for d in rng.integers(1, 40, 3000)],
    })
    vectors = rng.standard_normal((N_ITEMS, 16)).astype(np.float32)
    return build_train_data(products, sellers, groups, pushes, orders, FeatureConfig(half_life_days=30), now=NOW,
                            item_vectors=vectors)


SOURCES = {
    "popular": lambda: GlobalPopular(),
    "popular_decayed": lambda: GlobalPopular(half_life_days=7.0),
    "trending": lambda: TrendingSource(days=10, baseline_days=20),
    "rating_commission": lambda: RatingCommissionRule(),
    "segment_popular": lambda: SegmentPopular(),
    "own_top": lambda: OwnTopItems(),
    "random": lambda: RandomSource(seed=3),
    "repurchase": lambda: RepurchaseSource(),
    "knn_cosine": lambda: ItemKNNSource(neighbours=30),
    "knn_bm25": lambda: ItemKNNSource(neighbours=30, weighting="bm25"),
    "ease": lambda: EASESource(lam=5.0, max_items=400),
    "als": lambda: ALSSource(factors=8, iterations=5),
    "content_embeddings": lambda: ContentSource(),
    "content_tfidf": lambda: ContentSource(use_embeddings=False),
    "exposure": lambda: ExposureSource(prior_pushes=5.0),
    "category_affinity": lambda: CategoryAffinitySource(half_life_days=14.0),
}
# Sources whose recommend never densifies a row: they must answer with `score` switched off.
NO_DENSE_ROWS = ["popular", "popular_decayed", "trending", "rating_commission", "segment_popular", "own_top", "repurchase",
                 "knn_cosine", "knn_bm25"]


@pytest.fixture(scope="module")
def data():
    return random_data()


@pytest.fixture(scope="module")
def fitted(data):
    return {name: make().fit(data) for name, make in SOURCES.items()}


def filters(data, groups: np.ndarray, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """An exclusion matrix (each group's purchases, random items, an explicit zero) and an allowed-items list."""
    rng = np.random.default_rng(seed)
    n = len(groups)
    extra = sp.csr_matrix((np.ones(5 * n), (np.repeat(np.arange(n), 5), rng.integers(0, N_ITEMS, 5 * n))), shape=(n, N_ITEMS))
    exclude = (sp.csr_matrix(data.bought[groups]) + extra).tocsr()
    # An explicit zero excludes nothing, in the dense path as in the fast ones.
    exclude = sp.csr_matrix((np.append(exclude.data, 0.0), (np.append(exclude.nonzero()[0], 0), np.append(exclude.nonzero()[1], 0))),
                            shape=exclude.shape)
    allowed = np.sort(rng.choice(N_ITEMS, 2 * N_ITEMS // 3, replace=False))
    return exclude, allowed


@pytest.mark.parametrize("name", list(SOURCES))
def test_pair_scores_equal_the_dense_scores(name, fitted):
    source = fitted[name]
    groups = np.array([0, 3, 17, 42, 55, 57, 59])  # 55–59 ordered nothing
    dense = source.score(groups)
    rng = np.random.default_rng(1)
    rows = np.repeat(np.arange(len(groups)), N_ITEMS)
    items = np.tile(np.arange(N_ITEMS), len(groups))
    order = rng.permutation(len(rows))
    order = np.concatenate([order, order[:500]])  # repeated pairs too
    pairs = source.pair_scores(groups[rows[order]], items[order])
    expected = dense[rows[order], items[order]]
    assert pairs.dtype == np.float32 and pairs.shape == expected.shape
    np.testing.assert_array_equal(np.isneginf(pairs), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert finite.any()
    np.testing.assert_allclose(pairs[finite], expected[finite], rtol=2e-5, atol=1e-6)


def test_pair_scores_generic_default_and_validation(fitted, data):
    blend = BlendRecommender({"knn": fitted["knn_cosine"], "pop": fitted["popular"]}, per_source=50).fit(data)
    groups = np.array([1, 2, 2, 9, 40])
    items = np.array([5, 0, 2999, 17, 33])
    np.testing.assert_array_equal(blend.pair_scores(groups, items), blend.score(np.unique(groups))[np.searchsorted(np.unique(groups), groups), items])
    assert blend.pair_scores(np.zeros(0, dtype=int), np.zeros(0, dtype=int)).shape == (0,)
    with pytest.raises(ValueError, match="item index"):
        fitted["popular"].pair_scores(np.array([0]), np.array([N_ITEMS]))
    with pytest.raises(ValueError, match="group index"):
        fitted["popular"].pair_scores(np.array([N_GROUPS]), np.array([0]))
    with pytest.raises(ValueError, match="one item per group"):
        fitted["popular"].pair_scores(np.array([0, 1]), np.array([0]))


def test_exposure_pair_scores_mark_unpushed_items_as_not_proposed(data):
    source = ExposureSource(prior_pushes=5.0, item_prior_pushes=0.0).fit(data)
    unpushed = np.flatnonzero(source.item_score_ <= 0)
    assert unpushed.size
    pairs = source.pair_scores(np.zeros(unpushed.size, dtype=int), unpushed)
    assert pairs.dtype == np.float32 and np.isneginf(pairs).all()


@pytest.mark.parametrize("name", list(SOURCES))
@pytest.mark.parametrize("k", [7, 60])
def test_recommend_equals_the_dense_path(name, k, fitted, data):
    source = fitted[name]
    groups = np.array([0, 1, 3, 3, 17, 42, 55, 59, 8, 21, 30, 44])
    exclude, allowed = filters(data, groups, seed=k)
    for kwargs in ({}, {"exclude": exclude}, {"allowed_items": allowed}, {"exclude": exclude, "allowed_items": allowed},
                   {"exclude": exclude, "allowed_items": np.isin(np.arange(N_ITEMS), allowed)}):
        ids, scores = source.recommend(groups, k, **kwargs)
        ref_ids, ref_scores = source.recommend_dense(groups, k, **kwargs)
        np.testing.assert_array_equal(ids, ref_ids, err_msg=f"{name} {sorted(kwargs)}")
        np.testing.assert_array_equal(scores, ref_scores, err_msg=f"{name} {sorted(kwargs)}")
        if not kwargs:
            assert (ids >= 0).any()


@pytest.mark.parametrize("name", ["popular", "segment_popular", "own_top", "knn_cosine", "ease", "als", "content_tfidf"])
def test_small_blocks_give_the_same_answers(name, fitted, data, monkeypatch):
    import recsys.candidates.base as base
    import recsys.candidates.knn as knn

    source = fitted[name]
    groups = np.arange(N_GROUPS)[::-1]
    exclude, allowed = filters(data, groups, seed=3)
    expected = source.recommend(groups, 25, exclude=exclude, allowed_items=allowed)
    pairs = source.pair_scores(np.repeat(groups, 40), np.tile(np.arange(0, N_ITEMS, 75), N_GROUPS))
    # One group per dense block, per shared list and per sparse block; packed blocks of a few cells.
    monkeypatch.setattr(base, "BLOCK_CELLS", 300)
    monkeypatch.setattr(base, "SPARSE_BLOCK_ROWS", 1)
    monkeypatch.setattr(knn, "SPARSE_BLOCK_ROWS", 1)
    ids, scores = source.recommend(groups, 25, exclude=exclude, allowed_items=allowed)
    dense_ids, dense_scores = source.recommend_dense(groups, 25, exclude=exclude, allowed_items=allowed)
    np.testing.assert_array_equal(ids, dense_ids)
    np.testing.assert_array_equal(scores, dense_scores)
    small_pairs = source.pair_scores(np.repeat(groups, 40), np.tile(np.arange(0, N_ITEMS, 75), N_GROUPS))
    if name == "als":
        # OpenBLAS may round a float32 product's last bit differently for another block shape.
        np.testing.assert_allclose(scores, expected[1], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(small_pairs, pairs, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(ids, expected[0])
        np.testing.assert_array_equal(scores, expected[1])
        np.testing.assert_array_equal(small_pairs, pairs)


@pytest.mark.parametrize("name", NO_DENSE_ROWS)
def test_sparse_and_shared_sources_never_densify_a_row(name, data):
    source = SOURCES[name]().fit(data)
    groups = np.arange(N_GROUPS)
    expected = source.recommend_dense(groups, 20, exclude=data.bought[groups])

    def dense(group_idx: np.ndarray) -> np.ndarray:
        raise AssertionError("the fast path called score()")

    source.score = dense  # type: ignore[method-assign]
    ids, scores = source.recommend(groups, 20, exclude=data.bought[groups])
    np.testing.assert_array_equal(ids, expected[0])
    np.testing.assert_array_equal(scores, expected[1])


def test_ties_go_to_the_lower_item_on_every_path(data):
    # Popularity counts tie a lot; the first items listed with equal scores must come in index order.
    source = GlobalPopular().fit(data)
    ids, scores = source.recommend(np.array([0, 1]), 200)
    finite = np.isfinite(scores[0])
    same = (np.diff(scores[0][finite]) == 0)
    assert same.any()
    assert (np.diff(ids[0][finite])[same] > 0).all()


def test_shared_rows_with_nan_and_plus_inf_match_the_dense_path(data):
    source = GlobalPopular().fit(data)
    pop = source.popularity_.copy()
    top = np.argsort(-np.where(np.isfinite(pop), pop, -1))[:5]
    pop[top[0]] = np.nan
    source.popularity_ = pop
    groups = np.array([0, 5, 9])
    exclude = sp.csr_matrix((np.ones(3), (np.arange(3), top[1:4])), shape=(3, N_ITEMS))
    for p in (pop, np.where(np.arange(N_ITEMS) == top[4], np.float32(np.inf), pop).astype(np.float32)):
        source.popularity_ = p
        ids, scores = source.recommend(groups, 6, exclude=exclude)
        ref = source.recommend_dense(groups, 6, exclude=exclude)
        np.testing.assert_array_equal(ids, ref[0])
        np.testing.assert_array_equal(scores, ref[1])


# ------------------------------------------------------------------------------------------ top-K


def assert_same_top_k(scores: np.ndarray, k: int) -> None:
    """top_k returns exactly top_k_reference's ids and scores."""
    ids, vals = top_k(scores, k)
    ref_ids, ref_vals = top_k_reference(scores, k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(vals, ref_vals)


@pytest.mark.parametrize("k", [1, 10, 100])
def test_top_k_equals_the_reference_on_wide_random_rows(k):
    rng = np.random.default_rng(k)
    scores = rng.standard_normal((40, 100_003)).astype(np.float32)  # a ragged last chunk
    ids, vals, done = threshold_top_k(scores, k, 32)
    assert done.all()  # the fast path answered every row
    ref_ids, ref_vals = top_k_reference(scores, k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(vals, ref_vals)
    assert_same_top_k(scores, k)


def test_top_k_equals_the_reference_with_ties_nan_and_infinities():
    rng = np.random.default_rng(5)
    n, m = 30, 6000
    # Values on a 0.01 grid: many ties, also at the k-th place.
    scores = np.round(rng.standard_normal((n, m)), 2).astype(np.float32)
    scores[0, rng.integers(0, m, 50)] = np.nan
    scores[1, rng.integers(0, m, 3)] = np.inf
    scores[2, :] = -np.inf
    scores[3, :] = -np.inf
    scores[3, [7, 4000, 5999]] = [1.0, 2.0, 1.0]  # fewer finite values than k
    scores[4, :] = np.nan
    scores[5, :] = 0.0  # all tied
    scores[6, rng.random(m) < 0.97] = -np.inf
    scores[7, :] = np.round(scores[7] / 3)  # heavy ties: more than a quarter of the chunks reach the threshold
    ids, vals, done = threshold_top_k(scores, 20, 16)
    assert done[8:].all() and not done[[0, 1, 3, 4, 5, 7]].any() and done[2]
    np.testing.assert_array_equal(ids[done], top_k_reference(scores[done], 20)[0])
    for k in (1, 20, 50, 200):
        assert_same_top_k(scores, k)
        assert_same_top_k(scores.astype(np.float64), k)
        assert_same_top_k(np.asfortranarray(scores), k)


def test_top_k_narrow_rows_and_more_slots_than_columns():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 4, (20, 15)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    for k in (1, 5, 15, 40):
        assert_same_top_k(scores, k)
    assert_same_top_k(np.zeros((0, 5000), dtype=np.float32), 10)
    wide = rng.standard_normal((3, 4096)).astype(np.float32)
    assert_same_top_k(wide, 5000)


def test_top_k_entries_equals_the_dense_top_k():
    rng = np.random.default_rng(3)
    dense = np.full((50, 700), -np.inf, dtype=np.float32)
    mask = rng.random(dense.shape) < np.linspace(0.0, 0.5, 50)[:, None]  # row 0 empty, rows up to ~350 entries
    mask[10, 3] = mask[11, 5] = True
    dense[mask] = np.round(rng.standard_normal(mask.sum()), 1)
    dense[10, 3] = np.nan
    dense[11, 5] = np.inf
    rows, cols = np.nonzero(mask)
    for k in (1, 8, 100, 800):
        ids, vals = top_k_entries(50, rows, cols, dense[rows, cols], k)
        ref_ids, ref_vals = top_k_reference(dense, k)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(vals, ref_vals)


@pytest.mark.parametrize("n_items", [50, 3000])
def test_union_group_order_matches_lexsort(n_items: int) -> None:
    """The packed-key sort of the union orders rows exactly as the four-key lexsort, ties on rank and sources included."""
    from recsys.candidates.union import _group_order

    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(40), 30)
    i = np.concatenate([rng.choice(n_items, 30, replace=False) for _ in range(40)])
    n_present = rng.integers(1, 4, len(g))
    best = rng.integers(1, 6, len(g)).astype(float)  # few ranks: many ties broken by the item
    order = _group_order(g, n_present, best, i, 3, 5, n_items)
    np.testing.assert_array_equal(order, np.lexsort((i, best, -n_present, g)))
    # Ranks beyond the list length cannot be packed: the lexsort itself answers.
    best[0] = 99.0
    np.testing.assert_array_equal(_group_order(g, n_present, best, i, 3, 5, n_items), np.lexsort((i, best, -n_present, g)))
