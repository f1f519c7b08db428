"""Interaction matrices: id maps, decay, quantities, refunds, pushes, confidence scaling and fallback rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.interactions import (
    IdMap, aggregate_rows, bm25_scale, build_train_data, confidence, decay, with_fallback_rows,
)
from contracts.config import FeatureConfig

NOW = pd.Timestamp("2024-05-15")


def tables():
    """Two sellers, three groups, three products, a handful of orders and pushes."""
    products = pd.DataFrame({"product_id": ["a", "b", "c"], "title": ["纸巾", "奶粉", "洗衣液"],
                             "category": ["日用/纸品", "母婴/奶粉", "家清/洗衣"], "brand": "", "price": [10.0, 200.0, 30.0],
                             "commission_rate": [0.1, 0.05, 0.2], "rating": [0.9, None, 0.95], "in_stock": [True, True, False]})
    sellers = pd.DataFrame({"seller_id": ["s1", "s2"], "seller_type": ["宝妈", "学生"], "city_tier": [1, 3]})
    groups = pd.DataFrame({"group_id": ["g1", "g2", "g3"], "seller_id": ["s1", "s1", "s2"], "member_count": [30, 120, 300]})
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        "group_id": ["g1", "g1", "g2", "g1", "g1", "g1"],
        "product_id": ["a", "b", "a", "a", "c", "a"],
        "ordered_at": [NOW - pd.Timedelta(days=14), NOW - pd.Timedelta(days=28), NOW - pd.Timedelta(days=1),
                       NOW - pd.Timedelta(days=2), NOW - pd.Timedelta(days=3), NOW + pd.Timedelta(days=1)],
        "quantity": [2, 1, 1, 1, 5, 9], "paid": 1.0, "refunded": [False, False, False, False, True, False],
    })
    pushes = pd.DataFrame({"group_id": ["g3"], "product_id": ["b"], "pushed_at": [NOW - pd.Timedelta(days=14)]})
    return products, sellers, groups, pushes, orders


def test_id_map_round_trip_and_errors_name_the_id():
    ids = IdMap(["x", "y", "z", "y"], kind="group")
    assert len(ids) == 3
    assert ids.index_of(["z", "x"]).tolist() == [2, 0]
    assert ids.index_of("y").tolist() == [1]
    assert ids.id_of(np.array([1, -1])).tolist() == ["y", None]
    with pytest.raises(KeyError, match="unknown group 'q' \\(and 1 more\\)"):
        ids.index_of(["x", "q", "r"])
    assert ids.index_of(["x", "q"], missing="drop").tolist() == [0]
    assert ids.index_of(["x", "q"], missing="mark").tolist() == [0, -1]
    with pytest.raises(KeyError, match="index 5"):
        ids.id_of([5])


def test_decay_halves_every_half_life():
    assert decay(np.array([0.0, 14.0, 28.0, -3.0]), 14.0).tolist() == [1.0, 0.5, 0.25, 1.0]


def test_decay_never_underflows_and_none_or_zero_means_no_decay():
    with np.errstate(all="raise"):  # any underflow or overflow would raise here
        eight_years = decay(np.array([0.0, 2922.0, 1e9]), 14.0)
    assert eight_years.dtype == np.float64 and eight_years[0] == 1.0
    # Floored at 2^-60, far above float32's smallest normal: no weight becomes 0 in the float32 matrices.
    assert eight_years[1:].tolist() == [2.0 ** -60] * 2 and np.float32(eight_years[2]) > 0
    assert decay(np.array([5.0, 50.0]), None).tolist() == [1.0, 1.0]
    assert decay(np.array([5.0, 50.0]), 0.0).tolist() == [1.0, 1.0]


def test_no_decay_without_a_real_clock_or_a_half_life():
    products, sellers, groups, pushes, orders = tables()
    for cfg, clock in ((FeatureConfig(half_life_days=14, confidence="none"), "line_order"),
                       (FeatureConfig(half_life_days=None, confidence="none"), "real")):
        data = build_train_data(products, sellers, groups, pushes, orders, cfg, now=NOW, clock=clock)
        # g1/a: 2 units + 1 unit, undecayed.
        assert data.purchases.toarray()[0].tolist() == [3.0, 1.0, 0.0]
        assert data.clock == clock and data.timed == (clock == "real")
    orders.attrs["clock"] = "none"  # the loader's mark on the orders is the default
    assert build_train_data(products, sellers, groups, pushes, orders, now=NOW).clock == "none"
    with pytest.raises(ValueError, match="unknown clock kind 'wall'"):
        build_train_data(products, sellers, groups, pushes, orders, now=NOW, clock="wall")


def test_eight_years_of_history_keep_every_row_without_warnings():
    products, sellers, groups, pushes, orders = tables()
    orders = orders.assign(ordered_at=orders["ordered_at"] - pd.Timedelta(days=2922) * (orders.index % 2))
    with np.errstate(all="raise"):
        data = build_train_data(products, sellers, groups, pushes, orders, FeatureConfig(), now=NOW)
    assert data.purchases.nnz == data.bought.nnz and (data.purchases.data > 0).all()


def test_train_data_quantity_decay_refunds_and_future_orders():
    products, sellers, groups, pushes, orders = tables()
    cfg = FeatureConfig(half_life_days=14, confidence="none", cold_min_orders=2)
    data = build_train_data(products, sellers, groups, pushes, orders, cfg, now=NOW)
    dense = data.purchases.toarray()
    # Ages count from the newest event (g2's order, 1 day before now): it weighs 1.
    # g1/a: 2 units 13 days before it (→2·0.5^(13/14)) + 1 unit 1 day before it (→0.5^(1/14)); the refund of c and
    # the future order are out.
    assert dense[0, 0] == pytest.approx(2 * 0.5 ** (13 / 14) + 0.5 ** (1 / 14), rel=1e-6)
    assert dense[0, 1] == pytest.approx(0.5 ** (27 / 14), rel=1e-6)
    assert dense[0, 2] == 0.0
    assert dense[1, 0] == pytest.approx(1.0, rel=1e-6)
    assert data.bought.toarray().tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
    # The push to g3 counts at a tenth, decayed by 13 days.
    assert data.weights.toarray()[2, 1] == pytest.approx(0.1 * 0.5 ** (13 / 14), rel=1e-6)
    assert data.n_orders.tolist() == [3, 1, 0]
    assert data.cold.tolist() == [False, True, True]
    assert data.in_stock.tolist() == [True, True, False]
    # A missing rating takes its category's median, else the catalogue median (of 0.9 and 0.95).
    assert data.item_frame["rating"].tolist() == pytest.approx([0.9, 0.925, 0.95])
    assert data.group_frame["segment"].tolist() == ["宝妈|1", "宝妈|1", "学生|3"]
    assert data.commission_yuan.tolist() == pytest.approx([1.0, 10.0, 6.0])


def test_without_fit_inputs_empties_only_the_fitting_matrices():
    products, sellers, groups, pushes, orders = tables()
    data = build_train_data(products, sellers, groups, pushes, orders, FeatureConfig(), now=NOW)
    lean = data.without_fit_inputs()
    assert data.push_events is not None and data.weights.nnz > 0  # the original is untouched
    assert lean.push_events is None
    for name in ("weights", "confidence"):
        assert getattr(lean, name).shape == getattr(data, name).shape and getattr(lean, name).nnz == 0
    for name in ("purchases", "bought", "history", "events", "item_frame", "group_frame", "cold", "groups", "items"):
        assert getattr(lean, name) is getattr(data, name)


def test_unknown_product_in_orders_is_named():
    products, sellers, groups, pushes, orders = tables()
    orders.loc[0, "product_id"] = "zz"
    with pytest.raises(KeyError, match="unknown product 'zz'"):
        build_train_data(products, sellers, groups, pushes, orders, now=NOW)


def test_log_confidence_is_one_plus_alpha_log1p():
    m = sp.csr_matrix(np.array([[0.0, 3.0], [1.0, 0.0]], dtype=np.float32))
    out = confidence(m, FeatureConfig(confidence="log", log_alpha=2.0)).toarray()
    assert out[0, 1] == pytest.approx(1 + 2 * np.log(4.0))
    assert out[1, 0] == pytest.approx(1 + 2 * np.log(2.0))
    assert out[0, 0] == 0.0


def test_bm25_matches_the_formula_by_hand():
    # Groups × items; BM25 treats items as documents and groups as terms.
    m = sp.csr_matrix(np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=np.float32))
    k1, b = 1.2, 0.75
    out = bm25_scale(m, k1, b).toarray()
    n_docs = 2.0
    idf_g0 = np.log(n_docs) - np.log1p(1) + 1e-3  # group 0 appears in one item
    idf_g1 = np.log(n_docs) - np.log1p(2) + 0.0  # appears in both: negative idf is floored at 0
    lengths = np.array([3.0, 1.0])  # item a: 2 + 1, item b: 1
    norm = (1 - b) + b * lengths / lengths.mean()
    assert out[0, 0] == pytest.approx(2 * (k1 + 1) / (k1 * norm[0] + 2) * idf_g0, rel=1e-5)
    assert out[1, 1] == pytest.approx(1 * (k1 + 1) / (k1 * norm[1] + 1) * (max(idf_g1, 0) + 1e-3), rel=1e-5)


def test_aggregate_and_fallback_rows():
    m = sp.csr_matrix(np.array([[1.0, 3.0], [2.0, 0.0], [0.0, 0.0]], dtype=np.float32))
    agg, codes = aggregate_rows(m, np.array(["s1", "s1", "s1"], dtype=object))
    assert agg.toarray().tolist() == [[3.0, 3.0]]
    assert codes.tolist() == [0, 0, 0]
    filled = with_fallback_rows(m, [np.array(["s1", "s1", "s1"], dtype=object)], np.array([False, False, True]), [1.0])
    # Warm rows stay; the cold row gets the seller's L1-normalised row times the mean warm mass (4 + 2) / 2 = 3.
    np.testing.assert_allclose(filled.toarray(), [[1.0, 3.0], [2.0, 0.0], [1.5, 1.5]])


def test_id_map_reads_arrow_string_columns_like_object_arrays() -> None:
    ids = IdMap(["g1", "g2", "g3"], kind="group")
    column = pd.Series(["g3", "g1", "zz", "g2"], dtype="string[pyarrow]")
    assert ids.index_of(column, missing="mark").tolist() == [2, 0, -1, 1]
    assert ids.index_of(column.to_numpy(dtype=object), missing="mark").tolist() == [2, 0, -1, 1]
    assert ids.index_of(column, missing="drop").tolist() == [2, 0, 1]
    with pytest.raises(KeyError, match="unknown group 'zz'"):
        ids.index_of(column)
    # Ids that are not strings are looked up by their text.
    assert IdMap(["1", "2"]).index_of(pd.Series([2, 1, 3]), missing="mark").tolist() == [1, 0, -1]
