"""Group, product, cycle, segment and pair feature tables on tiny hand-built frames with exact values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.profiles import (
    CAT_SHARE_PREFIX,
    PAIR_CATEGORICAL,
    PAIR_FEATURES,
    PRICE_RANGE,
    PRICE_RANGE_FEATURE,
    PushHistory,
    _push_columns,
    _push_history,
    build_profiles,
    group_brand_shares,
    group_category_cycle,
    group_profile,
    pair_features,
    product_profile,
    segment_aggregates,
)
from contracts.config import FeatureConfig

TZ = "Asia/Shanghai"


def day(d: float, hour: int = 10) -> pd.Timestamp:
    """Day d of January 2024 at `hour`, Shanghai time."""
    return pd.Timestamp(2024, 1, 1, hour, tz=TZ) + pd.Timedelta(days=d - 1)


AS_OF = day(31, 0)  # midnight starting 31 January


def products_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": ["snack", "rice", "diaper", "wine"],
        "title": ["坚果", "大米", "纸尿裤", "红酒"],
        "category": ["食品/零食", "食品/粮油", "母婴/纸尿裤", "酒水/红酒"],
        "brand": ["良品铺子", "", "帮宝适", "张裕"],
        "price": [20.0, 50.0, 100.0, 80.0],
        "commission_rate": [0.10, 0.20, 0.05, 0.30],
        "rating": [0.90, np.nan, 0.96, np.nan],
        "review_count": [10, 0, 50, 0],
        "launched_at": [day(1, 0), pd.NaT, pd.NaT, pd.NaT],
    })


def sellers_frame() -> pd.DataFrame:
    return pd.DataFrame({"seller_id": ["s1", "s2"], "seller_type": ["宝妈", "快递员"], "city_tier": [2, 3]})


def groups_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "group_id": ["g1", "g2", "g3"], "seller_id": ["s1", "s1", "s2"],
        "member_count": [100, 200, 50], "theme": ["母婴", "邻里", ""],
    })


def orders_frame() -> pd.DataFrame:
    rows = [
        # g1 buys food on days 1, 15 and 29 (twice on day 15), one diaper, and a refunded wine.
        ("o1", "g1", "snack", day(1), 1, 20.0, False),
        ("o2", "g1", "rice", day(15), 2, 100.0, False),
        ("o3", "g1", "snack", day(15, 20), 1, 20.0, False),
        ("o4", "g1", "snack", day(29), 1, 18.0, False),
        ("o5", "g1", "diaper", day(20), 1, 100.0, False),
        ("o6", "g1", "wine", day(25), 1, 80.0, True),
        # g2 buys diapers on days 10 and 20.
        ("o7", "g2", "diaper", day(10), 1, 100.0, False),
        ("o8", "g2", "diaper", day(20), 2, 180.0, False),
    ]
    return pd.DataFrame(rows, columns=["order_id", "group_id", "product_id", "ordered_at", "quantity", "paid", "refunded"])


def pushes_frame() -> pd.DataFrame:
    rows = [
        ("g1", "snack", day(1, 9), 20.0),
        ("g1", "snack", day(28), 18.0),
        ("g1", "rice", day(15, 9), np.nan),
        ("g2", "diaper", day(10, 8), 100.0),
        ("g3", "rice", day(25), 50.0),
        ("g3", "wine", day(26), 80.0),
    ]
    return pd.DataFrame(rows, columns=["group_id", "product_id", "pushed_at", "price_at_push"])


def tables() -> dict[str, pd.DataFrame]:
    return {"products": products_frame(), "sellers": sellers_frame(), "groups": groups_frame(),
            "pushes": pushes_frame(), "orders": orders_frame()}


def build(t: dict[str, pd.DataFrame], as_of: pd.Timestamp = AS_OF, cfg: FeatureConfig | None = None):
    return build_profiles(t["products"], t["sellers"], t["groups"], t["pushes"], t["orders"], as_of, cfg)


# --------------------------------------------------------------------------- cycles


def test_cycle_is_median_gap_between_purchase_days():
    cycles = group_category_cycle(orders_frame(), products_frame(), AS_OF).set_index(["group_id", "category"])
    food = cycles.loc[("g1", "食品")]
    assert food["n_purchases"] == 4  # two orders on day 15 ...
    assert food["n_purchase_days"] == 3  # ... are one purchase day
    assert food["cycle_days"] == 14.0 and food["cycle_source"] == "group"
    assert food["last_bought_at"] == day(29)
    assert food["days_since_last"] == pytest.approx(1 + 14 / 24)  # day 29 10:00 -> day 31 00:00
    assert food["due_ratio"] == pytest.approx((1 + 14 / 24) / 14)
    assert cycles.loc[("g2", "母婴"), "cycle_days"] == 10.0
    # g1 bought diapers once: it gets the category's median cycle, from g2.
    assert cycles.loc[("g1", "母婴"), "cycle_days"] == 10.0
    assert cycles.loc[("g1", "母婴"), "cycle_source"] == "category"
    assert ("g1", "酒水") not in cycles.index  # refunded orders are not purchases


def test_cycle_fallbacks_to_all_categories_then_default():
    orders = orders_frame()
    orders = orders[orders["order_id"] != "o6"]
    extra = pd.DataFrame([("o9", "g3", "wine", day(5), 1, 80.0, False)], columns=orders.columns)
    cycles = group_category_cycle(pd.concat([orders, extra]), products_frame(), AS_OF).set_index(["group_id", "category"])
    wine = cycles.loc[("g3", "酒水")]
    assert wine["cycle_source"] == "all" and wine["cycle_days"] == 12.0  # median of g1 food 14 and g2 diapers 10

    single = orders_frame().iloc[[0]]
    alone = group_category_cycle(single, products_frame(), AS_OF, FeatureConfig(default_cycle_days=21))
    assert alone["cycle_source"].tolist() == ["default"] and alone["cycle_days"].tolist() == [21.0]
    empty = group_category_cycle(single.iloc[:0], products_frame(), AS_OF)
    assert len(empty) == 0 and "due_ratio" in empty.columns


# --------------------------------------------------------------------------- groups


def test_group_profile_values():
    t = tables()
    prof = group_profile(t["orders"], t["pushes"], t["groups"], t["sellers"], t["products"], AS_OF,
                         FeatureConfig(conversion_prior_strength=4, cold_min_orders=3))
    g1, g2, g3 = prof.loc["g1"], prof.loc["g2"], prof.loc["g3"]
    assert list(prof.index) == ["g1", "g2", "g3"]
    assert (g1["seller_type"], g1["city_tier"], g1["segment"], g3["segment"]) == ("宝妈", 2.0, "宝妈|2", "快递员|3")
    assert (g1["n_orders"], g2["n_orders"], g3["n_orders"]) == (5, 2, 0)  # refunded wine excluded
    assert (g1["orders_7d"], g1["orders_30d"]) == (1, 5)  # day 29; day 1 10:00 is 29.6 days back
    assert g1["days_since_last_order"] == pytest.approx(1 + 14 / 24)
    assert math.isnan(g3["days_since_last_order"])
    assert (g1["n_pushes"], g2["n_pushes"], g3["n_pushes"]) == (3, 1, 2)
    # orders per push smoothed with 4 pseudo-pushes at the overall 7 orders / 6 pushes
    prior = 7 / 6
    assert g1["conv_rate"] == pytest.approx((5 + 4 * prior) / (3 + 4))
    assert g3["conv_rate"] == pytest.approx((0 + 4 * prior) / (2 + 4))
    # g2 paid 100 and 90 per unit: median log(95); IQR of two values = half their log gap
    assert g2["log_price_median"] == pytest.approx(np.median(np.log([100.0, 90.0])))
    assert g2["log_price_iqr"] == pytest.approx(0.5 * (np.log(100.0) - np.log(90.0)))
    # g1's branded purchases: 良品铺子 ×3, 帮宝适 ×1 (rice is unbranded)
    assert g1["top_brand"] == "良品铺子" and g1["top_brand_share"] == pytest.approx(0.75)
    assert g1["brand_hhi"] == pytest.approx(0.75**2 + 0.25**2)
    assert pd.isna(g3["top_brand"]) and math.isnan(g3["brand_hhi"])
    assert g1[CAT_SHARE_PREFIX + "食品"] == pytest.approx(0.8) and g1[CAT_SHARE_PREFIX + "母婴"] == pytest.approx(0.2)
    assert g1[CAT_SHARE_PREFIX + "酒水"] == 0.0 and g3[CAT_SHARE_PREFIX + "食品"] == 0.0
    assert (g1["is_cold"], g2["is_cold"], g3["is_cold"]) == (False, True, True)


def test_brand_shares_long_table():
    brands = group_brand_shares(orders_frame(), products_frame(), AS_OF)
    assert brands.to_dict("records") == [
        {"group_id": "g1", "brand": "良品铺子", "n_orders": 3, "share": 0.75},
        {"group_id": "g1", "brand": "帮宝适", "n_orders": 1, "share": 0.25},
        {"group_id": "g2", "brand": "帮宝适", "n_orders": 2, "share": 1.0},
    ]


# --------------------------------------------------------------------------- products


def test_product_profile_values():
    t = tables()
    prof = product_profile(t["products"], t["orders"], t["pushes"], AS_OF, FeatureConfig(conversion_prior_strength=0))
    snack, rice, diaper, wine = (prof.loc[p] for p in ["snack", "rice", "diaper", "wine"])
    assert snack["main_category"] == "食品" and snack["commission_yuan"] == pytest.approx(2.0)
    # rice has no rating: the median of its main category (食品: snack's 0.90); wine's category has
    # none at all: the catalogue median of 0.90 and 0.96.
    assert rice["rating"] == pytest.approx(0.90) and bool(rice["rating_imputed"])
    assert wine["rating"] == pytest.approx(0.93) and not bool(snack["rating_imputed"])
    assert (snack["n_orders"], snack["orders_7d"], snack["orders_30d"]) == (3, 1, 3)
    assert (diaper["units_30d"], wine["n_orders"]) == (4.0, 0)  # wine's only order was refunded
    assert snack["conv_rate"] == pytest.approx(3 / 2)  # no smoothing with strength 0
    # snack's push prices in the last 7 days: only 18 (day 28): no change; over all history 20 and 18.
    assert snack["price_range_7d"] == 0.0
    assert snack["log_price_std"] == pytest.approx(np.std(np.log([20.0, 18.0])))
    # diaper's only push price (day 10) and its order prices (days 10, 20) are all outside the window
    assert math.isnan(diaper["price_range_7d"]) and diaper["log_price_std"] == 0.0
    assert rice["price_range_7d"] == 0.0  # one push price (day 25) in the window; the day-15 push had none
    assert snack["age_days"] == 30.0  # launched_at day 1 00:00
    assert rice["age_days"] == pytest.approx(16 - 9 / 24)  # first seen: its push on day 15 09:00
    assert diaper["age_days"] == pytest.approx(21 - 8 / 24)  # first seen: push day 10 08:00


def test_price_change_uses_push_prices_then_order_prices():
    t = tables()
    pushes = pd.concat([t["pushes"], pd.DataFrame([("g1", "snack", day(30), 22.5)], columns=t["pushes"].columns)])
    prof = product_profile(t["products"], t["orders"], pushes, AS_OF)
    assert prof.loc["snack", "price_range_7d"] == pytest.approx(22.5 / 18 - 1)
    # without push prices, the order unit prices of the window judge it: diaper paid 100 then 90 per unit
    no_price = t["pushes"].drop(columns="price_at_push")
    prof = product_profile(t["products"], t["orders"], no_price, AS_OF, price_window_days=12)
    assert prof.loc["diaper", "price_range_7d"] == pytest.approx(100 / 90 - 1)


def test_the_ranker_reads_the_price_range_under_its_format_name():
    t = tables()
    t["pushes"] = pd.concat([t["pushes"], pd.DataFrame([("g1", "snack", day(30), 22.5)], columns=t["pushes"].columns)])
    prof = build(t)
    rows = prof.pair_features(pd.DataFrame({"group_id": ["g1"], "product_id": ["snack"]}))
    assert PRICE_RANGE_FEATURE == "price_change_7d" and PRICE_RANGE_FEATURE in PAIR_FEATURES  # the ranker format's name
    assert rows[PRICE_RANGE_FEATURE].iloc[0] == pytest.approx(prof.products.loc["snack", PRICE_RANGE]) and PRICE_RANGE != PRICE_RANGE_FEATURE
    assert rows[PRICE_RANGE_FEATURE].iloc[0] == pytest.approx(22.5 / 18 - 1)


# --------------------------------------------------------------------------- segments and pairs


def test_segment_aggregates():
    t = tables()
    groups = group_profile(t["orders"], t["pushes"], t["groups"], t["sellers"], t["products"], AS_OF)
    seg = segment_aggregates(groups, t["orders"], t["products"], AS_OF, top_n=2)
    mama = seg.segment_shares.loc["宝妈|2"]
    assert (mama["n_groups"], mama["n_orders"]) == (2, 7)
    assert mama[CAT_SHARE_PREFIX + "食品"] == pytest.approx(4 / 7)
    assert mama[CAT_SHARE_PREFIX + "母婴"] == pytest.approx(3 / 7)
    assert seg.segment_shares.loc["快递员|3", "n_orders"] == 0
    assert seg.seller_shares.loc["s1", "n_orders"] == 7
    # last 30 days: diaper 3 orders (4 units), snack 3 orders (3 units), rice 1; ties go to units; top 2 kept
    pop = seg.segment_popularity
    assert pop[["segment", "product_id", "n_orders", "rank"]].values.tolist() == [
        ["宝妈|2", "diaper", 3, 1], ["宝妈|2", "snack", 3, 2]]
    narrow = segment_aggregates(groups, t["orders"], t["products"], AS_OF, window_days=12).segment_popularity
    assert narrow["product_id"].tolist() == ["diaper", "snack"] and narrow["n_orders"].tolist() == [2, 1]


def test_pair_features_values_and_order():
    t = tables()
    cfg = FeatureConfig(share_prior_strength=5)
    prof = build(t, cfg=cfg)
    pairs = pd.DataFrame({"group_id": ["g3", "g1", "g1", "g2", "nobody"],
                          "product_id": ["snack", "snack", "rice", "snack", "snack"]})
    rows = prof.pair_features(pairs)
    assert list(rows.columns) == ["group_id", "product_id", *PAIR_FEATURES]
    assert rows["group_id"].tolist() == pairs["group_id"].tolist()
    g3, g1_snack, g1_rice, g2, nobody = (rows.iloc[i] for i in range(5))

    # g1: 4/5 food; segment 宝妈|2 pooled 4/7 food (7 orders), shrunk to the overall 4/7 → 4/7.
    assert g1_snack["cat_share"] == pytest.approx(0.8)
    assert g1_snack["segment_cat_share"] == pytest.approx(4 / 7)
    assert g1_snack["cat_affinity"] == pytest.approx((5 * 0.8 + 5 * 4 / 7) / (5 + 5))
    # g3 (no orders, 快递员|3 has none either): its segment share is the overall share.
    assert g3["cat_share"] == 0.0 and g3["segment_cat_share"] == pytest.approx(4 / 7)
    assert g3["cat_affinity"] == pytest.approx(4 / 7)
    assert g1_snack["brand_share"] == pytest.approx(0.75) and g1_snack["brand_bought"] == 1.0
    assert math.isnan(g1_rice["brand_share"])  # unbranded
    assert g2["brand_share"] == 0.0 and g2["brand_bought"] == 0.0
    assert g1_snack["days_since_push"] == pytest.approx(2 + 14 / 24) and g1_snack["times_pushed"] == 2
    assert math.isnan(g2["days_since_push"]) and g2["times_pushed"] == 0
    assert g1_snack["cat_cycle_days"] == 14.0 and g1_snack["due_ratio"] == pytest.approx((1 + 14 / 24) / 14)
    assert g1_snack["repurchase_due"] == 0.0 and math.isnan(g2["due_ratio"])
    assert g1_snack["member_count"] == 100 and g1_snack["seller_type"] == "宝妈" and g1_snack["city_tier"] == 2
    assert g1_snack["rating"] == pytest.approx(0.90) and g1_snack["commission_yuan"] == pytest.approx(2.0)
    # an unknown group: group features are missing, product features are there
    assert math.isnan(nobody["cat_affinity"]) and math.isnan(nobody["member_count"])
    assert nobody["log_price"] == pytest.approx(np.log(20.0))
    for name in PAIR_CATEGORICAL:
        assert isinstance(rows[name].dtype, pd.CategoricalDtype), name


def test_price_z_against_group_band():
    t = tables()
    prof = build(t, cfg=FeatureConfig(share_prior_strength=0, min_log_price_scale=0.01))
    rows = prof.pair_features(pd.DataFrame({"group_id": ["g2"], "product_id": ["wine"]}))
    median = np.median(np.log([100.0, 90.0]))
    scale = 0.5 * (np.log(100.0) - np.log(90.0)) / 1.349
    assert rows["price_z"].iloc[0] == pytest.approx((np.log(80.0) - median) / scale)


def test_standalone_pair_features_match_bundle():
    t = tables()
    prof = build(t)
    pairs = pd.DataFrame({"group_id": ["g1", "g2"], "product_id": ["diaper", "snack"]})
    direct = pair_features(pairs, prof.groups, prof.products, prof.cycles, t["pushes"], AS_OF, brands=prof.brands)
    pd.testing.assert_frame_equal(direct, prof.pair_features(pairs))


def test_push_history_hand_computed():
    prof = build(tables())
    h = prof.push_history
    groups, products = list(prof.groups.index), list(prof.products.index)
    n = len(products)
    assert (h.n_groups, h.n_products) == (3, 4)
    entries = {(groups[k // n], products[k % n]): (int(t), float(a)) for k, t, a in zip(h.key, h.times, h.last_age)}
    assert list(h.key) == sorted(h.key)
    assert entries.keys() == {("g1", "snack"), ("g1", "rice"), ("g2", "diaper"), ("g3", "rice"), ("g3", "wine")}
    assert entries[("g1", "snack")] == (2, pytest.approx(2 + 14 / 24))  # day 1 09:00 and day 28 10:00
    assert entries[("g1", "rice")] == (1, pytest.approx(15 + 15 / 24))  # day 15 09:00
    assert entries[("g2", "diaper")] == (1, pytest.approx(20 + 16 / 24))  # day 10 08:00
    assert entries[("g3", "wine")] == (1, pytest.approx(4 + 14 / 24))  # day 26 10:00
    # A push at or after as_of is no history.
    t = tables()
    t["pushes"] = pd.concat([t["pushes"], pd.DataFrame([("g2", "snack", AS_OF, 20.0)], columns=t["pushes"].columns)])
    assert len(build(t).push_history.key) == 5


def test_push_history_matches_raw_pushes():
    # Random pushes, some to unknown groups or products, some after as_of.
    rng = np.random.default_rng(3)
    t = tables()
    k = 400
    t["pushes"] = pd.DataFrame({
        "group_id": rng.choice(["g1", "g2", "g3", "ghost"], k),
        "product_id": rng.choice(["snack", "rice", "diaper", "wine", "gone"], k),
        "pushed_at": AS_OF - pd.to_timedelta(rng.uniform(-3, 30, k), unit="D"),
        "price_at_push": rng.uniform(10, 100, k),
    })
    prof = build(t)
    products = ["snack", "rice", "diaper", "wine", "gone"]
    pairs = pd.DataFrame([(g, p) for g in ["g1", "g2", "g3", "ghost"] for p in products], columns=["group_id", "product_id"])
    rows = prof.pair_features(pairs)
    raw = pair_features(pairs, prof.groups, prof.products, prof.cycles, t["pushes"], AS_OF, brands=prof.brands,
                        segment_shares=prof.segments.segment_shares, overall_shares=prof.segments.overall_shares)
    pd.testing.assert_frame_equal(rows, raw, check_exact=True)
    # Reference: pushes before as_of grouped by pair, computed with pandas.
    before = t["pushes"][t["pushes"]["pushed_at"] < AS_OF]
    ref = before.groupby(["group_id", "product_id"])["pushed_at"].agg(["size", "max"])
    for (g, p), row in zip(pairs.itertuples(index=False), rows.itertuples(index=False)):
        if g == "ghost":
            assert math.isnan(row.times_pushed) and math.isnan(row.days_since_push)
        elif (g, p) in ref.index and p != "gone":
            assert row.times_pushed == ref.loc[(g, p), "size"]
            assert row.days_since_push == (AS_OF - ref.loc[(g, p), "max"]) / pd.Timedelta(days=1)
        else:
            assert row.times_pushed == 0 and math.isnan(row.days_since_push)
    # Aggregating group range by group range gives the same history as all at once.
    push = _push_columns(t["pushes"], AS_OF, group_index=prof.groups.index, product_index=prof.products.index)
    chunked = _push_history(push, 3, 4, chunk=20)
    for name in ("key", "times", "last_age"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(prof.push_history, name))


def test_split_views_give_the_whole_pair_features():
    t = tables()
    prof = build(t)
    pairs = pd.DataFrame([(g, p) for g in ["g1", "g2", "g3"] for p in ["snack", "rice", "diaper", "wine"]],
                         columns=["group_id", "product_id"])
    whole = prof.pair_features(pairs)
    # Blocks by id (an unknown id is ignored) and by profile row (g2 is row 1).
    views = prof.split([np.array(["g3", "g1", "nobody"], dtype=object), np.array([1])])
    assert [sorted(set(v.brands["group_id"]) | set(v.cycles["group_id"])) for v in views] == [["g1"], ["g2"]]
    groups_of = [sorted({prof.groups.index[k // 4] for k in v.push_history.key}) for v in views]
    assert groups_of == [["g1", "g3"], ["g2"]]
    for view, mine in zip(views, [["g1", "g3"], ["g2"]]):
        assert view.groups is prof.groups and view.products is prof.products and view.segments is prof.segments
        sel = pairs["group_id"].isin(mine).to_numpy()
        pd.testing.assert_frame_equal(view.pair_features(pairs[sel]), whole[sel], check_exact=True)
    one = prof.for_groups(["g1"])
    pd.testing.assert_frame_equal(one.pair_features(pairs.iloc[:4]), whole.iloc[:4], check_exact=True)
    # A view knows nothing of other groups' pushes.
    assert one.pair_features(pairs.iloc[9:10])["times_pushed"].iloc[0] == 0 != whole["times_pushed"].iloc[9]  # g3 rice
    bare = prof.without_group_tables()
    assert len(bare.push_history.key) == len(bare.brands) == len(bare.cycles) == 0 and bare.groups is prof.groups
    with pytest.raises(IndexError):
        prof.for_groups(np.array([3]))
    assert isinstance(bare.push_history, PushHistory)


def test_history_of_some_groups_gives_their_pair_features():
    """Profiles built with the push history of a few groups give those groups' pair features exactly; others read
    no pushes."""
    from features.profiles import build_profiles

    t = tables()
    whole = build(t)
    some = build_profiles(t["products"], t["sellers"], t["groups"], t["pushes"], t["orders"], AS_OF,
                          history_groups=["g3", "g1", "nobody"])
    pairs = pd.DataFrame([(g, p) for g in ["g1", "g2", "g3"] for p in ["snack", "rice", "diaper", "wine"]],
                         columns=["group_id", "product_id"])
    mine = pairs["group_id"].isin(["g1", "g3"]).to_numpy()
    full = whole.pair_features(pairs)
    pd.testing.assert_frame_equal(some.pair_features(pairs[mine]), full[mine], check_exact=True)
    assert {whole.groups.index[k // whole.push_history.n_products] for k in some.push_history.key} == {"g1", "g3"}
    assert (full.loc[~mine, "times_pushed"] > 0).any() and (some.pair_features(pairs[~mine])["times_pushed"] == 0).all()


def test_pairs_of_a_few_groups_get_the_rows_of_all_groups():
    # Pairs naming few of the profile's groups read only those groups' rows: same values as a call naming all.
    t = tables()
    extra = pd.DataFrame({"group_id": ["g4", "g5", "g6", "g7"], "seller_id": ["s2", "s2", "s1", "s1"],
                          "member_count": [10, 20, 30, 40], "theme": ["母婴", "", "邻里", ""]})
    t["groups"] = pd.concat([t["groups"], extra], ignore_index=True)
    prof = build(t)
    groups = prof.groups.index.tolist()
    pairs = pd.DataFrame([(g, p) for g in [*groups, "nobody"] for p in ["snack", "rice", "diaper", "wine"]],
                         columns=["group_id", "product_id"])
    every = prof.pair_features(pairs)
    for few in (["g1"], ["g2", "g3"], ["g7", "nobody"]):
        sel = pairs["group_id"].isin(few).to_numpy()
        pd.testing.assert_frame_equal(prof.pair_features(pairs[sel]), every[sel], check_exact=True)
        pd.testing.assert_frame_equal(prof.for_groups(few).pair_features(pairs[sel]), every[sel], check_exact=True)


def test_no_leakage_from_events_at_or_after_as_of():
    t = tables()
    before = build(t)
    late = tables()
    late_orders = pd.DataFrame([
        ("x1", "g3", "wine", AS_OF, 1, 80.0, False),  # exactly at as_of: excluded
        ("x2", "g1", "snack", AS_OF + pd.Timedelta(days=2), 3, 30.0, False),
    ], columns=late["orders"].columns)
    late_pushes = pd.DataFrame([("g3", "wine", AS_OF, 99.0), ("g2", "snack", AS_OF + pd.Timedelta(hours=1), 5.0)],
                               columns=late["pushes"].columns)
    late["orders"] = pd.concat([late["orders"], late_orders], ignore_index=True)
    late["pushes"] = pd.concat([late["pushes"], late_pushes], ignore_index=True)
    after = build(late)
    pd.testing.assert_frame_equal(before.groups, after.groups)
    pd.testing.assert_frame_equal(before.products, after.products)
    pd.testing.assert_frame_equal(before.cycles, after.cycles)
    pd.testing.assert_frame_equal(before.brands, after.brands)
    pd.testing.assert_frame_equal(before.segments.segment_popularity, after.segments.segment_popularity)
    pairs = pd.DataFrame({"group_id": ["g1", "g2", "g3"], "product_id": ["snack", "snack", "wine"]})
    pd.testing.assert_frame_equal(before.pair_features(pairs), after.pair_features(pairs))
    # ... while moving as_of past them does change things
    later = build(late, as_of=AS_OF + pd.Timedelta(days=3))
    assert later.groups.loc["g1", "n_orders"] == 6 and later.groups.loc["g3", "n_orders"] == 1


def test_cold_flag_follows_config():
    t = tables()
    for threshold, expected in [(0, [False, False, False]), (2, [False, False, True]), (6, [True, True, True])]:
        prof = group_profile(t["orders"], t["pushes"], t["groups"], t["sellers"], t["products"], AS_OF,
                             FeatureConfig(cold_min_orders=threshold))
        assert prof["is_cold"].tolist() == expected


def test_partial_frames_get_contract_defaults():
    t = tables()
    products = t["products"].drop(columns=["rating", "review_count", "launched_at"])
    orders = t["orders"].drop(columns=["refunded"])
    prof = product_profile(products, orders, t["pushes"].drop(columns="price_at_push"), AS_OF)
    assert prof["rating"].isna().all() and (prof["review_count"] == 0).all()
    assert prof.loc["wine", "n_orders"] == 1  # without the column, nothing counts as refunded
    assert prof.loc["snack", "age_days"] == pytest.approx(30 - 9 / 24)  # first push day 1 09:00
