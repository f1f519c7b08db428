"""`greedy_picks_batch`: every group of a block picked at once, exactly as `greedy_picks` picks each group alone."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.blend import EPS, blend_log_scores
from contracts.config import BlendWeights, RuleConfig
from recsys.picks import _codes, _main_category, greedy_picks, greedy_picks_batch
from recsys.rules import eligible_mask

PROFILES = [
    BlendWeights(),
    BlendWeights(conversion=1.0, earnings=0.0, rating=0.0, order_value=0.0, diversity=0.0, adoption=0.0),
    BlendWeights(conversion=2.0, earnings=0.5, rating=4.0, order_value=1.0, diversity=3.0, adoption=0.5),
]
CATEGORIES = ["食品/零食", "食品/饮料", "美妆/面膜", "美妆", "家居/收纳", "母婴/奶粉/一段"]
BRANDS = ["", "", "三只松鼠", "良品铺子", "百草味", "完美日记"]


def _table(rng: np.random.Generator, n: int, odd_values: bool = False) -> dict[str, np.ndarray]:
    """Candidate columns shaped like the stored ones, with coarse values so that scores tie often."""
    cols = {
        "product_id": np.array([f"p{i}" for i in range(n)], dtype=object),
        "p_conv": rng.choice([0.0, 0.05, 0.1, 0.2], n),
        "commission_yuan": rng.choice([1.0, 2.0, 5.0], n),
        "rating": rng.choice([0.8, 0.9, 1.0, np.nan], n),
        "order_value": rng.choice([10.0, 30.0], n),
        "adoption": rng.choice([0.5, 1.0, np.nan], n),
        "category": rng.choice(np.array(CATEGORIES, dtype=object), n),
        "brand": rng.choice(np.array(BRANDS, dtype=object), n),
        "in_stock": rng.random(n) < 0.9,
        "repurchase_due": rng.random(n) < 0.2,
        "days_since_push": rng.choice([np.nan, np.nan, 2.0, 30.0], n),
        "price_change_7d": rng.choice([0.0, 0.0, 0.05, -0.3, np.nan], n),
        "diversity_penalty": rng.choice([0.0, 0.0, 0.2, 0.5, np.nan, 1.5, -0.1], n),
    }
    if odd_values:  # missing brands and categories, and a non-text category
        cols["brand"] = np.where(rng.random(n) < 0.2, None, cols["brand"])
        cols["category"] = np.where(rng.random(n) < 0.1, None, cols["category"])
        cols["category"][rng.random(n) < 0.1] = np.nan
        cols["category"][rng.random(n) < 0.05] = 7
    return cols


def reference_greedy_picks(cols, w, rules, k=None):
    """The greedy re-rank of one group written step by step (the service's implementation before the batch one):
    the independent reference both `greedy_picks` and `greedy_picks_batch` must match."""
    k = rules.top_k if k is None else int(k)
    if "product_id" not in cols:
        raise KeyError("candidates need a product_id column")
    keep = np.flatnonzero(eligible_mask(cols, rules))
    sub = {c: np.asarray(v)[keep] for c, v in cols.items()}
    m = len(keep)
    base = blend_log_scores(sub, w, diversity_penalty=np.zeros(m))
    penalty0 = np.clip(np.nan_to_num(np.asarray(sub.get("diversity_penalty", np.zeros(m)), float)), 0.0, 1.0)
    cat, n_cat = _codes(_main_category(sub["category"]) if "category" in sub else np.zeros(m, object), False)
    brand, n_brand = _codes(sub["brand"] if "brand" in sub else np.full(m, "", object), True)
    cat_count = np.zeros(n_cat, dtype=np.int64)
    brand_count = np.zeros(n_brand + 1, dtype=np.int64)  # last slot counts unbranded goods, never capped
    brand_slot = np.where(brand < 0, n_brand, brand)
    available = np.ones(m, dtype=bool)
    chosen: list[int] = []
    scores: list[float] = []
    penalties: list[float] = []
    for _ in range(min(k, m)):
        allowed = available & (cat_count[cat] < rules.max_per_category)
        allowed &= (brand < 0) | (brand_count[brand_slot] < rules.max_per_brand)
        if not allowed.any():
            break
        penalty = np.minimum(penalty0 + rules.category_decay * cat_count[cat], 1.0)
        score = base + w.diversity * np.log(np.maximum(1.0 - penalty, EPS))
        score = np.where(allowed, score, -np.inf)
        j = int(np.argmax(score))
        chosen.append(j)
        scores.append(float(np.exp(score[j])))
        penalties.append(float(penalty[j]))
        available[j] = False
        cat_count[cat[j]] += 1
        brand_count[brand_slot[j]] += 1
    return keep[np.asarray(chosen, dtype=np.int64)], np.asarray(scores, float), np.asarray(penalties, float)


def _per_group(cols, lo, hi, weights, rules, k):
    """The reference: `reference_greedy_picks` on each group's slice."""
    rows, scores, penalties, group = [], [], [], []
    for r, (a, b) in enumerate(zip(lo, hi)):
        idx, s, p = reference_greedy_picks({c: v[a:b] for c, v in cols.items()}, weights[r], rules, k)
        rows.append(idx + a)
        scores.append(s)
        penalties.append(p)
        group.append(np.full(len(idx), r))
    return tuple(np.concatenate(x) for x in (rows, scores, penalties, group))


def _assert_same(batch, expected):
    for got, want in zip(batch, expected):
        np.testing.assert_array_equal(got, want)


RULES = [
    RuleConfig(),
    RuleConfig(max_per_category=1, max_per_brand=1, category_decay=0.4),  # caps reached early
    RuleConfig(max_per_category=200, max_per_brand=200, category_decay=1.0, in_stock_only=False, no_repeat_days=0),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("k", [None, 3, 60])
@pytest.mark.parametrize("odd_values", [False, True])
def test_batch_matches_per_group_greedy_picks(seed, rules, k, odd_values):
    rng = np.random.default_rng(seed)
    sizes = np.r_[0, 1, 2, rng.integers(0, 60, 20), 0, 45]
    bounds = np.r_[0, np.cumsum(sizes)]
    cols = _table(rng, int(bounds[-1]), odd_values)
    weights = [PROFILES[i] for i in rng.integers(0, len(PROFILES), len(sizes))]
    expected = _per_group(cols, bounds[:-1], bounds[1:], weights, rules, k)
    assert len(expected[0]) > 0
    _assert_same(greedy_picks_batch(cols, bounds, weights, rules, k), expected)


def test_lo_hi_bounds_skip_rows_and_one_profile_for_all():
    rng = np.random.default_rng(5)
    cols = _table(rng, 300)
    # Groups in any order, gaps between them, an empty group: the (G, 2) form.
    lo = np.array([200, 0, 50, 50, 120, 299])
    hi = np.array([260, 30, 50, 110, 121, 300])
    w = PROFILES[2]
    rules = RuleConfig(max_per_category=2)
    expected = _per_group(cols, lo, hi, [w] * len(lo), rules, None)
    _assert_same(greedy_picks_batch(cols, np.column_stack([lo, hi]), w, rules), expected)


def test_equal_profiles_in_distinct_objects_and_missing_columns():
    rng = np.random.default_rng(6)
    cols = _table(rng, 120)
    for name in ("brand", "category", "diversity_penalty", "adoption"):
        cols.pop(name)
    bounds = np.array([0, 40, 40, 100, 120])
    weights = [BlendWeights(diversity=2.0) for _ in range(4)]
    rules = RuleConfig(max_per_category=4, category_decay=0.2)
    expected = _per_group(cols, bounds[:-1], bounds[1:], weights, rules, 8)
    _assert_same(greedy_picks_batch(cols, bounds, weights, rules, 8), expected)


def test_small_block_by_hand():
    # Group 0: a beats b, but both are 食品 and only one per category is allowed, so c follows a.
    # Group 1: d is out of stock; e and f tie, so the first row wins.
    cols = {
        "product_id": np.array(["a", "b", "c", "d", "e", "f"], dtype=object),
        "p_conv": np.array([0.5, 0.4, 0.1, 0.9, 0.3, 0.3]),
        "category": np.array(["食品/零食", "食品/饮料", "美妆", "家居", "家居", "家居"], dtype=object),
        "brand": np.array(["", "", "", "", "x", "x"], dtype=object),
        "in_stock": np.array([True, True, True, False, True, True]),
    }
    conv = BlendWeights(conversion=1.0, earnings=0.0, rating=0.0, order_value=0.0, diversity=0.0, adoption=0.0)
    rows, scores, penalties, group = greedy_picks_batch(
        cols, np.array([0, 3, 6]), conv, RuleConfig(max_per_category=1), k=5)
    assert rows.tolist() == [0, 2, 4]
    assert group.tolist() == [0, 0, 1]
    assert scores == pytest.approx([0.5, 0.1, 0.3])
    assert penalties.tolist() == [0.0, 0.0, 0.0]


def test_no_groups_no_rows_and_bad_input():
    cols = _table(np.random.default_rng(7), 10)
    for bounds in (np.array([0]), np.array([0, 0, 0])):
        rows, scores, penalties, group = greedy_picks_batch(cols, bounds, BlendWeights(), RuleConfig())
        assert len(rows) == len(scores) == len(penalties) == len(group) == 0
    with pytest.raises(ValueError):
        greedy_picks_batch(cols, np.array([0, 5, 10]), [BlendWeights()], RuleConfig())
    for missing in ("product_id", "p_conv"):  # p_conv: a weighted component, as `greedy_picks` requires
        with pytest.raises(KeyError):
            greedy_picks_batch({c: v for c, v in cols.items() if c != missing}, np.array([0, 10]), BlendWeights(), RuleConfig())


@pytest.mark.parametrize("seed", range(6))
def test_greedy_picks_of_one_group_match_the_step_by_step_reference(seed):
    rng = np.random.default_rng(100 + seed)
    cols = _table(rng, int(rng.integers(0, 60)), odd_values=bool(seed % 2))
    rules = RuleConfig(max_per_category=2, max_per_brand=1)
    for w in PROFILES:
        _assert_same(greedy_picks(cols, w, rules, 8), reference_greedy_picks(cols, w, rules, 8))
