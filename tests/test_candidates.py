"""Candidate sources: a shared behavioural suite over every source, filters, and known answers per source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.interactions import build_train_data
from recsys.candidates import (
    ALSSource, BlendRecommender, ContentSource, EASESource, GlobalPopular, ItemKNNSource, OwnTopItems, RandomSource,
    RatingCommissionRule, RepurchaseSource, SegmentPopular, TrendingSource, top_k, union_candidates,
)
from contracts.config import FeatureConfig

NOW = pd.Timestamp("2024-06-01")
N_GROUPS, N_ITEMS = 20, 20
HALF = N_ITEMS // 2


def world(in_stock: np.ndarray | None = None) -> tuple:
    """A checkerboard: groups 0–9 (宝妈 sellers) buy only items 0–9 (食品), groups 10–19 (学生) only items 10–19 (3C).

    Each group bought every item of its half except two; items repeat on a 10-day cycle.
    """
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(N_ITEMS)],
        "title": [("零食饼干" if i < HALF else "蓝牙耳机") + str(i) for i in range(N_ITEMS)],
        "category": ["食品/零食" if i < HALF else "3C/耳机" for i in range(N_ITEMS)],
        "brand": "", "price": 10.0 + np.arange(N_ITEMS), "commission_rate": 0.1,
        "rating": np.linspace(0.9, 0.99, N_ITEMS),
        "in_stock": np.ones(N_ITEMS, dtype=bool) if in_stock is None else in_stock,
    })
    sellers = pd.DataFrame({"seller_id": ["s0", "s1"], "seller_type": ["宝妈", "学生"], "city_tier": [1, 2]})
    groups = pd.DataFrame({"group_id": [f"g{g}" for g in range(N_GROUPS)],
                           "seller_id": ["s0" if g < N_GROUPS // 2 else "s1" for g in range(N_GROUPS)], "member_count": 80})
    rows = []
    for g in range(N_GROUPS):
        start = 0 if g < N_GROUPS // 2 else HALF
        skip = {start + g % HALF, start + (g + 3) % HALF}
        for i in range(start, start + HALF):
            if i in skip:
                continue
            for age in (35, 25, 15, 5):
                rows.append((f"g{g}", f"p{i}", NOW - pd.Timedelta(days=age + (i % 3) * 0.1)))
    orders = pd.DataFrame(rows, columns=["group_id", "product_id", "ordered_at"])
    orders.insert(0, "order_id", [f"o{n}" for n in range(len(orders))])
    orders["quantity"] = 1
    orders["paid"] = 10.0
    return products, sellers, groups, orders


def train_data(in_stock: np.ndarray | None = None):
    """TrainData of the checkerboard world."""
    products, sellers, groups, orders = world(in_stock)
    return build_train_data(products, sellers, groups, None, orders, FeatureConfig(half_life_days=30), now=NOW)


ALL_SOURCES = {
    "als": lambda: ALSSource(factors=8, iterations=15, regularization=0.01),
    "bpr": lambda: ALSSource(factors=8, iterations=200, algorithm="bpr", learning_rate=0.05),
    "knn_cosine": lambda: ItemKNNSource(neighbours=20),
    "knn_bm25": lambda: ItemKNNSource(neighbours=20, weighting="bm25"),
    "ease": lambda: EASESource(lam=5.0),
    "content": lambda: ContentSource(),
    "repurchase": lambda: RepurchaseSource(),
    "segment_popular": lambda: SegmentPopular(shrink=0.0),
    "own_top": lambda: OwnTopItems(),
    "popular": lambda: GlobalPopular(),
    "rating_commission": lambda: RatingCommissionRule(),
    "random": lambda: RandomSource(seed=3),
    "trending": lambda: TrendingSource(days=10, baseline_days=20),
}
# Sources that personalise: on the checkerboard each must stay inside the group's own half.
PERSONAL = ["als", "bpr", "knn_cosine", "knn_bm25", "ease", "content", "repurchase", "segment_popular", "own_top"]
# Sources that can propose items the group never bought (the new-pairs test).
DISCOVERING = ["als", "bpr", "knn_cosine", "knn_bm25", "ease", "content", "segment_popular"]


@pytest.fixture(scope="module")
def data():
    return train_data()


@pytest.mark.parametrize("name", list(ALL_SOURCES))
def test_shapes_padding_and_determinism(name, data):
    source = ALL_SOURCES[name]().fit(data)
    groups = np.array([0, 5, 12])
    ids, scores = source.recommend(groups, 25)
    assert ids.shape == scores.shape == (3, 25)
    assert ids.dtype == np.int64
    # More slots than items: the tail is padded, and padding is -1 / -inf together.
    assert (ids[:, N_ITEMS:] == -1).all()
    assert ((ids == -1) == np.isneginf(scores)).all()
    valid_scores = np.where(ids >= 0, scores, np.nan)
    assert (np.diff(valid_scores, axis=1)[~np.isnan(np.diff(valid_scores, axis=1))] <= 1e-6).all()
    again, _ = source.recommend(groups, 25)
    assert (again == ids).all()


@pytest.mark.parametrize("name", PERSONAL)
def test_checkerboard_stays_in_the_groups_half(name, data):
    source = ALL_SOURCES[name]().fit(data)
    ids, _ = source.recommend(np.arange(N_GROUPS), 5)
    top = ids[:, :5]
    left, right = top[: N_GROUPS // 2], top[N_GROUPS // 2:]
    assert (left[left >= 0] < HALF).all() and (left >= 0).any()
    assert (right[right >= 0] >= HALF).all() and (right >= 0).any()


@pytest.mark.parametrize("name", DISCOVERING)
def test_new_pairs_are_the_two_skipped_items(name, data):
    source = ALL_SOURCES[name]().fit(data)
    groups = np.arange(N_GROUPS)
    ids, _ = source.recommend(groups, 2, exclude=data.bought[groups])
    for g in groups:
        start = 0 if g < N_GROUPS // 2 else HALF
        assert set(ids[g].tolist()) == {start + g % HALF, start + (g + 3) % HALF}, (name, g, ids[g])


@pytest.mark.parametrize("name", list(ALL_SOURCES))
def test_out_of_stock_exclusions_and_allowed_items(name):
    in_stock = np.ones(N_ITEMS, dtype=bool)
    in_stock[[1, 2, 11, 12]] = False
    data = train_data(in_stock)
    source = ALL_SOURCES[name]().fit(data)
    groups = np.arange(N_GROUPS)
    ids, _ = source.recommend(groups, N_ITEMS)
    assert not np.isin(ids, [1, 2, 11, 12]).any()
    exclude = sp.csr_matrix((np.ones(N_GROUPS), (groups, np.full(N_GROUPS, 5))), shape=(N_GROUPS, N_ITEMS))
    ids, _ = source.recommend(groups, N_ITEMS, exclude=exclude)
    assert not (ids == 5).any()
    allowed = np.array([0, 3, 13, 2])  # 2 is out of stock, so it still never comes back
    ids, _ = source.recommend(groups, N_ITEMS, allowed_items=allowed)
    assert set(ids[ids >= 0].tolist()) <= {0, 3, 13}


def test_recommend_validates_arguments(data):
    source = GlobalPopular().fit(data)
    with pytest.raises(ValueError, match="one row per requested group"):
        source.recommend(np.array([0, 1]), 3, exclude=data.bought)
    with pytest.raises(ValueError, match="group index"):
        source.recommend(np.array([N_GROUPS]), 3)
    with pytest.raises(RuntimeError, match="not fitted"):
        GlobalPopular().recommend(np.array([0]), 3)


def test_top_k_orders_and_pads():
    ids, vals = top_k(np.array([[0.1, 0.5, -np.inf, 0.3]], dtype=np.float32), 5)
    assert ids.tolist() == [[1, 3, 0, -1, -1]]
    assert vals[0, :3].tolist() == pytest.approx([0.5, 0.3, 0.1])


def test_popularity_counts_orders_and_decays():
    data = train_data()
    counts = np.bincount(data.events["i"].to_numpy(), minlength=N_ITEMS)
    pop = GlobalPopular().fit(data)
    assert pop.popularity_.tolist() == counts.astype(np.float32).tolist()
    recent = GlobalPopular(half_life_days=5).fit(data)
    # Items i%3==0 were bought 0.1 days more recently than i%3==1 with the same counts: they rank first.
    assert recent.popularity_[0] > recent.popularity_[1]


def test_rating_commission_rule_sorts_by_rating_times_commission_yuan():
    data = train_data()
    ids, scores = RatingCommissionRule().fit(data).recommend(np.array([0]), 3)
    # price and rating both rise with the index, commission rate is flat: the last items win.
    assert ids.tolist() == [[19, 18, 17]]
    assert scores[0, 0] == pytest.approx(0.99 * 29.0 * 0.1, rel=1e-5)


def test_trending_poisson_z_score():
    products, sellers, groups, orders = world()
    extra = pd.DataFrame({"order_id": ["t1", "t2", "t3"], "group_id": "g0", "product_id": ["p7", "p7", "p7"],
                          "ordered_at": NOW - pd.Timedelta(hours=5), "quantity": 1, "paid": 1.0})
    data = build_train_data(products, sellers, groups, None, pd.concat([orders, extra]), now=NOW)
    trend = TrendingSource(days=1, baseline_days=3).fit(data)
    # p7: 3 orders today, none in the 3 days before → z = 3 / √1; nothing else was ordered today.
    assert trend.z_[7] == pytest.approx(3.0)
    assert np.isneginf(np.delete(trend.z_, 7)).all()
    # Against a 7-day baseline the checkerboard's orders 5 days ago (8 groups buy p7) are expected: 8 / 7 per day.
    wide = TrendingSource(days=1, baseline_days=7).fit(data)
    assert wide.z_[7] == pytest.approx((3 - 8 / 7) / np.sqrt(8 / 7 + 1), rel=1e-5)


def test_repurchase_is_due_on_the_cycle():
    products, sellers, groups, orders = world()
    data = build_train_data(products, sellers, groups, None, orders, now=NOW + pd.Timedelta(days=5))
    source = RepurchaseSource(category_weight=0.0).fit(data)
    # Group 0 bought item 1 at ages 40, 30, 20, 10 (days, on that clock): cycle 10, last 10 days ago → due ratio ≈ 1.
    score = source.item_due_[0].toarray()[0]
    assert score[1] == pytest.approx(np.sqrt(3) * np.exp(-0.5 * (np.log(10.5 / 10) / 1.0) ** 2), rel=1e-3)
    early = RepurchaseSource(category_weight=0.0).fit(train_data())  # 5 days after the last: not yet due
    assert early.item_due_[0].toarray()[0, 1] < score[1]


def test_ease_matches_the_closed_form():
    data = train_data()
    source = EASESource(lam=5.0).fit(data)
    x = data.bought.toarray()[:, source.items_]
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)
    np.testing.assert_allclose(source.weights_, b, atol=1e-4)


def test_own_top_and_content_know_the_group():
    data = train_data()
    own, _ = OwnTopItems().fit(data).recommend(np.array([0]), N_ITEMS)
    assert sorted(own[0][own[0] >= 0].tolist()) == [i for i in range(HALF) if i not in (0, 3)]
    content = ContentSource().fit(data)
    scores = content.score(np.array([0, 15]))
    assert scores[0, :HALF].min() > scores[0, HALF:].max()
    assert scores[1, HALF:].min() > scores[1, :HALF].max()


def test_als_folds_in_cold_groups_from_their_seller():
    products, sellers, groups, orders = world()
    groups = pd.concat([groups, pd.DataFrame({"group_id": ["new"], "seller_id": ["s1"], "member_count": [10]})])
    data = build_train_data(products, sellers, groups, None, orders, now=NOW)
    ids, _ = ALSSource(factors=8, regularization=0.01).fit(data).recommend(np.array([N_GROUPS]), 5)
    assert (ids[0] >= HALF).all()


def test_union_shape_and_provenance(data):
    sources = {"pop": GlobalPopular().fit(data), "own": OwnTopItems().fit(data)}
    frame = union_candidates(sources, data, np.array([0, 12]), per_source=3, union_size=4)
    assert list(frame.columns) == ["group_id", "product_id", "score__pop", "rank__pop", "score__own", "rank__own", "sources"]
    assert frame.groupby("group_id").size().to_dict() == {"g0": 4, "g12": 4}
    both = frame[frame["sources"] == "pop,own"]
    assert both[["rank__pop", "rank__own"]].notna().all().all()
    only_pop = frame[frame["sources"] == "pop"]
    assert only_pop["rank__own"].isna().all()
    # Items proposed by both sources come first within a group, then by best rank.
    n_sources = frame["sources"].str.count(",") + 1
    assert all((np.diff(n_sources[frame["group_id"] == g].to_numpy()) <= 0).all() for g in ("g0", "g12"))
    pop_ids, _ = sources["pop"].recommend(np.array([12]), 3)
    own_ids, _ = sources["own"].recommend(np.array([12]), 3)
    expected = set(data.items.id_of(np.r_[pop_ids[0], own_ids[0]]))
    assert set(frame.loc[frame["group_id"] == "g12", "product_id"]) <= expected


def test_blend_with_one_weight_reproduces_that_source(data):
    knn = ItemKNNSource(neighbours=20).fit(data)
    pop = GlobalPopular().fit(data)
    blend = BlendRecommender({"knn": knn, "pop": pop}, {"knn": 1.0, "pop": 0.0}, per_source=N_ITEMS).fit(data)
    groups = np.arange(N_GROUPS)
    assert (blend.recommend(groups, 5)[0] == knn.recommend(groups, 5)[0]).all()
    mixed = BlendRecommender({"knn": knn, "pop": pop}, {"knn": 1.0, "pop": 1.0}, per_source=5).fit(data)
    ids, _ = mixed.recommend(groups, 8)
    assert ids.shape == (N_GROUPS, 8)


def test_content_in_svd_dimensions_keeps_cosines_of_low_rank_vectors() -> None:
    from dataclasses import replace

    data = train_data()
    rng = np.random.default_rng(3)
    # Item vectors of rank 3 in 12 dimensions: a 3-dimensional projection is an isometry of their span.
    vectors = (rng.standard_normal((N_ITEMS, 3)) @ rng.standard_normal((3, 12))).astype(np.float32)
    data = replace(data, item_vectors=vectors)
    groups = np.arange(N_GROUPS)
    exact = ContentSource(dims=0).fit(data).score(groups)
    projected = ContentSource(dims=3).fit(data).score(groups)
    np.testing.assert_allclose(projected, exact, atol=1e-4)
    # Fewer dimensions than the rank lose information: the scores move.
    assert np.abs(ContentSource(dims=1).fit(data).score(groups) - exact).max() > 0.05


def test_dense_scores_of_a_group_do_not_depend_on_its_block() -> None:
    """A group's float32 scores do not depend on the rest of its block or the block's length (BLAS picks kernels by
    product shape, so products run in fixed 64-row chunks); some CPUs also round by a row's position in the chunk
    (AMD EPYC with OpenBLAS 0.3.31: positions 6–11 mod 12), so elsewhere they agree to float32 rounding."""
    from dataclasses import replace

    data = train_data()
    vectors = np.random.default_rng(1).standard_normal((N_ITEMS, 24)).astype(np.float32)
    data = replace(data, item_vectors=vectors)
    groups = np.arange(N_GROUPS)
    others = np.random.default_rng(2).permutation(np.tile(groups, 5))
    for source in (ALSSource(factors=8, iterations=3).fit(data), ContentSource().fit(data)):
        name = type(source).__name__
        own = source.score(groups)
        # The same positions in other chunks of a longer block, among other groups: bit-identical.
        block = np.r_[groups, others[:64 - N_GROUPS], groups, others]
        scored = source.score(block)
        assert np.array_equal(scored[:N_GROUPS], own), name
        assert np.array_equal(scored[64:64 + N_GROUPS], own), name
        alone = np.vstack([source.score(np.array([g])) for g in groups])
        finite = np.isfinite(own)
        np.testing.assert_array_equal(finite, np.isfinite(alone), err_msg=name)
        np.testing.assert_allclose(alone[finite], own[finite], rtol=2e-6, atol=1e-6, err_msg=name)


def test_repurchase_cut_category_lists_recommend_exactly_the_full_lists():
    """`recommend` reads each due category's list only down to where no later item can rank: bit-identical to the
    full sparse product, with stock, allowed items, exclusions, tied shares and scores that round to ties."""
    from recsys.candidates.base import allowed_mask

    rng = np.random.default_rng(5)
    n_groups, n_items = 60, 300
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(n_items)], "title": "商品",
        "category": [f"类目{c}" for c in rng.integers(0, 5, n_items)],
        "brand": "", "price": 10.0, "commission_rate": 0.1, "rating": 0.9, "in_stock": rng.random(n_items) > 0.1,
    })
    sellers = pd.DataFrame({"seller_id": ["s0"], "seller_type": ["宝妈"], "city_tier": [1]})
    groups = pd.DataFrame({"group_id": [f"g{g}" for g in range(n_groups)], "seller_id": "s0", "member_count": 80})
    # Zipf items on random days: most items share a popularity of 1 or 2, and groups rebuy items and categories.
    n_orders = 5000
    orders = pd.DataFrame({
        "order_id": [f"o{n}" for n in range(n_orders)],
        "group_id": [f"g{g}" for g in rng.integers(0, n_groups, n_orders)],
        "product_id": [f"p{i}" for i in rng.zipf(1.5, n_orders) % n_items],
        "ordered_at": NOW - pd.to_timedelta(rng.integers(1, 60, n_orders), unit="D"), "quantity": 1, "paid": 10.0,
    })
    data = build_train_data(products, sellers, groups, None, orders, now=NOW,
                            item_vectors=np.zeros((n_items, 1), dtype=np.float32))
    picked = rng.permutation(n_groups)[:40]
    exclude = (sp.csr_matrix(data.bought[picked])
               + sp.random(len(picked), n_items, density=0.05, random_state=1, format="csr")).tocsr()
    allowed = np.sort(rng.choice(n_items, 2 * n_items // 3, replace=False))

    def assert_exact(source: RepurchaseSource, group_idx: np.ndarray, ks: tuple[int, ...]) -> None:
        for k in ks:
            for ex, allow in ((None, None), (exclude, None), (exclude, allowed)):
                ex = None if ex is None or len(group_idx) != len(picked) else ex
                source._cuts = None
                ids, scores = source.recommend(group_idx, k, ex, allow)
                mask = allowed_mask(source.n_items_, source.in_stock_, allow)
                full_ids, full_scores = source._recommend_sparse(group_idx, k, ex, mask, source._sparse_scores)
                assert np.array_equal(ids, full_ids), (k, ex is not None, allow is not None)
                assert np.array_equal(scores.view(np.int32), full_scores.view(np.int32)), k
                assert np.array_equal(ids, source.recommend_dense(group_idx, k, ex, allow)[0]), k

    source = RepurchaseSource().fit(data)
    assert source.category_due_.nnz > n_groups
    assert_exact(source, picked, (1, 3, 10, 40))

    # Subnormal due scores and shares a bit apart round to equal scores across the cut: the lower item must still win.
    q = np.float32(0.25)
    source.category_due_.data[rng.random(source.category_due_.nnz) < 0.6] = np.float32(3e-42)
    source.category_items_.data[:] = rng.choice(
        np.array([q, np.nextafter(q, np.float32(1)), np.nextafter(q, np.float32(0)), 0.5, 1.0], dtype=np.float32),
        source.category_items_.nnz)
    assert_exact(source, picked, (1, 3, 10))

    # One category, one group: a cut item of lower share but equal score and lower index beats the last kept one
    # (item 2 over 5), and a cut item tied in share beats a kept one of higher share rounded to the same score (4 over 9).
    for shares, k in (({5: np.nextafter(q, np.float32(1)), 2: q}, 1), ({9: np.nextafter(q, np.float32(1)), 3: q, 4: q}, 2)):
        tiny = RepurchaseSource().fit(data)
        items = np.array(sorted(shares))
        tiny.category_items_ = sp.csr_matrix(
            (np.array([shares[i] for i in items], dtype=np.float32), (np.zeros(len(items), dtype=np.int64), items)),
            shape=(1, n_items))
        tiny.category_due_ = sp.csr_matrix(np.full((n_groups, 1), 3e-42, dtype=np.float32))
        tiny.item_due_ = sp.csr_matrix((n_groups, n_items), dtype=np.float32)
        tiny.in_stock_ = np.ones(n_items, dtype=bool)
        ids, _ = tiny.recommend(np.array([0]), k)
        # Every item of the category rounds to the same score: the lowest indices win.
        assert ids[0].tolist() == items[:k].tolist()
        assert_exact(tiny, np.array([0]), (1, 2))


def test_content_projection_is_memoised_per_catalogue_text() -> None:
    """Fitting content twice on one catalogue reuses the projection; another title or dimension computes a new one."""
    from dataclasses import replace

    from recsys.candidates import content

    data = replace(train_data(), item_vectors=None)  # the TF-IDF path: no title embeddings
    content._PROJECTIONS.clear()
    first = ContentSource(dims=3).fit(data)
    again = ContentSource(dims=3).fit(data)
    assert len(content._PROJECTIONS) == 1
    np.testing.assert_array_equal(first.vectors_, again.vectors_)
    renamed = data.item_frame.assign(title=data.item_frame["title"].astype(str) + "新")
    other = ContentSource(dims=3).fit(replace(data, item_frame=renamed))
    ContentSource(dims=2).fit(data)
    assert len(content._PROJECTIONS) == 2  # at most two kept: the oldest went
    assert not np.array_equal(other.vectors_, first.vectors_)


class _FixedList:
    """A stand-in source that proposes the same list (best first) to every group."""

    def __init__(self, items: list[int]) -> None:
        self.items = np.asarray(items, dtype=np.int64)

    def recommend(self, group_idx, k, exclude=None, allowed_items=None):
        ids = np.tile(self.items[:k], (len(group_idx), 1))
        return ids, np.tile(-np.arange(ids.shape[1], dtype=np.float32), (len(group_idx), 1))


def test_union_reserves_each_sources_top_before_the_consensus(data):
    # A and B agree on items 0, 1, 2; C alone proposes 5, 6, 7, 8.
    sources = {"a": _FixedList([0, 1, 2, 3]), "b": _FixedList([0, 1, 2, 4]), "c": _FixedList([5, 6, 7, 8])}
    plain = union_candidates(sources, data, np.array([0]), per_source=4, union_size=4)
    # By consensus: 0, 1, 2 (two sources), then the single-source item of best rank, 5 (C's first).
    assert plain["product_id"].tolist() == ["p0", "p1", "p2", "p5"]
    kept = union_candidates(sources, data, np.array([0]), per_source=4, union_size=4, reserved=2)
    # Each source's top 2 first: 0, 1 (A and B), then 5, 6 (C's); item 2 of the consensus is cut.
    assert kept["product_id"].tolist() == ["p0", "p1", "p5", "p6"]
    assert kept["rank__c"].tolist()[2:] == [1.0, 2.0]
