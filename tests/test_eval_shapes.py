"""Validation shaped like the test: detecting how a test was made and carving validation from training the same way."""

from __future__ import annotations

import pandas as pd
import pytest

from contracts.config import Config
from training.evaluate import EvalOptions, Frames, build_validation, validation_shape
from training.evaluation_window import TestShape, carve, detect_test_shape

T0 = pd.Timestamp("2024-01-01")


def frames(rows: list[tuple[str, str, int]], clock: str = "line_order") -> Frames:
    """Orders (group, product, minute) with derived catalogue and groups; a push mirrors each order."""
    orders = pd.DataFrame(rows, columns=["group_id", "product_id", "minute"])
    orders["ordered_at"] = T0 + pd.to_timedelta(orders.pop("minute"), unit="min")
    orders.insert(0, "order_id", [f"o{n}" for n in range(len(orders))])
    orders["quantity"], orders["paid"] = 1, 1.0
    products = pd.DataFrame({"product_id": sorted(orders["product_id"].unique())}).assign(
        title="t", category="食品", brand="", price=1.0, commission_rate=0.1)
    groups = pd.DataFrame({"group_id": sorted(orders["group_id"].unique())}).assign(seller_id="s", member_count=1)
    sellers = pd.DataFrame({"seller_id": ["s"], "seller_type": ["其他"], "city_tier": [3]})
    pushes = orders[["group_id", "product_id"]].assign(pushed_at=orders["ordered_at"])
    return Frames(products, sellers, groups, pushes, orders, clock=clock)


TRAIN = [("g1", "a", 1), ("g1", "b", 2), ("g1", "c", 3), ("g2", "a", 4), ("g2", "d", 5), ("g3", "b", 6)]


def test_one_line_per_group_is_a_last_line_holdout():
    test = frames([("g1", "d", 10), ("g2", "b", 11)])
    shape = detect_test_shape(frames(TRAIN), test, "line_order")
    assert shape.kind == "holdout_last" and shape.test_groups == 2 and shape.lines_per_group == 1.0


def test_several_lines_per_group_is_a_random_holdout_with_the_median_share():
    # g1: 2 test lines against 3 training lines (0.4); g2: 1 against 2 (1/3); g3: 3 against 1 (0.75): median 0.4.
    test = frames([("g1", "d", 10), ("g1", "e", 11), ("g2", "b", 12), ("g3", "a", 13), ("g3", "c", 14), ("g3", "d", 15)])
    shape = detect_test_shape(frames(TRAIN), test, "line_order")
    assert shape.kind == "holdout_random" and shape.share == pytest.approx(0.4)


def test_a_real_clock_test_after_training_is_a_window_of_its_days():
    test = frames([("g1", "d", 60 * 24 * 3), ("g2", "b", 60 * 24 * 5 + 1)], clock="real")
    shape = detect_test_shape(frames(TRAIN, clock="real"), test, "real")
    assert shape.kind == "window" and shape.days == 3  # 2 days and a minute: 3 whole days
    # The same test on a synthetic clock, or overlapping training in time, is a holdout.
    assert detect_test_shape(frames(TRAIN), test, "line_order").kind == "holdout_last"
    early = frames([("g1", "d", 0), ("g2", "b", 1)], clock="real")
    assert detect_test_shape(frames(TRAIN, clock="real"), early, "real").kind == "holdout_last"


def test_last_line_holdout_takes_each_groups_latest_line_and_keeps_a_history():
    kept, held, cut = carve(frames(TRAIN), TestShape("holdout_last"), "line_order")
    # g3 has one line only: it keeps it (no group is left without history).
    assert cut is None and sorted(zip(held.orders["group_id"], held.orders["product_id"])) == [("g1", "c"), ("g2", "d")]
    assert len(kept.orders) == 4 and set(kept.orders["group_id"]) == {"g1", "g2", "g3"}
    # The pushes of the held-out lines (same group, product, time) go with them.
    assert sorted(held.pushes["product_id"]) == ["c", "d"] and len(kept.pushes) == 4
    assert kept.clock == held.clock == "line_order"


def test_random_holdout_takes_the_share_of_each_group_and_leaves_one():
    rows = [("g1", p, n) for n, p in enumerate("abcdefghij")] + [("g2", "a", 20), ("g2", "b", 21)]
    _, held, _ = carve(frames(rows), TestShape("holdout_random", share=0.3), "line_order", seed=3)
    counts = held.orders["group_id"].value_counts().to_dict()
    assert counts == {"g1": 3, "g2": 1}  # 0.3 × 10 = 3; 0.3 × 2 rounds to 1, at least 1 and at most n − 1
    _, again, _ = carve(frames(rows), TestShape("holdout_random", share=0.3), "line_order", seed=3)
    assert again.orders["order_id"].tolist() == held.orders["order_id"].tolist()  # seeded


def test_validation_rows_are_groups_with_history_carved_like_the_test():
    options = EvalOptions(shape=TestShape("holdout_last"), new_pairs_only=False)
    val = build_validation(frames(TRAIN), Config(), options)
    assert sorted(val.data.groups.id_of(val.groups)) == ["g1", "g2"]
    assert val.rel.nnz == 2 and (val.data.n_orders[val.groups] > 0).all()
    # A window validation lasts as long as the test unless validation_days says otherwise.
    assert validation_shape(frames(TRAIN, clock="real"), EvalOptions(shape=TestShape("window", days=3), validation_days=None)).days == 3
    assert validation_shape(frames(TRAIN, clock="real"), EvalOptions(shape=TestShape("window", days=3), validation_days=5)).days == 5
    with pytest.raises(ValueError, match="time-window test on a 'line_order' clock"):
        validation_shape(frames(TRAIN), EvalOptions(shape=TestShape("window")))
    with pytest.raises(ValueError, match="unknown test shape 'weekly'"):
        carve(frames(TRAIN), TestShape("weekly"), "line_order")


def with_failed_launch(f: Frames, group: str, product: str, minute: int) -> Frames:
    """The frames plus a push of `group` that is no purchase line (a failed group-buy launch)."""
    extra = pd.DataFrame({"group_id": [group], "product_id": [product], "pushed_at": [T0 + pd.Timedelta(minutes=minute)]})
    return Frames(f.products, f.sellers, f.groups, pd.concat([f.pushes, extra], ignore_index=True), f.orders, clock=f.clock)


def test_a_push_of_its_own_is_history_enough_to_hold_out_a_single_line():
    # g3 bought b once and launched a (failed) group buy of c after the last order: its one line can be held out,
    # and the failed launch stays in training with it; g1 and g2 keep their other lines as before.
    f = with_failed_launch(frames(TRAIN), "g3", "c", 100)
    kept, held, _ = carve(f, TestShape("holdout_last"), "line_order")
    assert sorted(zip(held.orders["group_id"], held.orders["product_id"])) == [("g1", "c"), ("g2", "d"), ("g3", "b")]
    assert set(kept.orders["group_id"]) == {"g1", "g2"}
    assert ("g3", "c") in set(zip(kept.pushes["group_id"], kept.pushes["product_id"]))
    # The push that mirrors g3's order is that order's push, no history of its own: without the launch g3 keeps its line.
    _, held, _ = carve(frames(TRAIN), TestShape("holdout_last"), "line_order")
    assert "g3" not in set(held.orders["group_id"])
    # A random holdout may likewise take a group's every purchase line when a push of its own remains.
    _, held, _ = carve(f, TestShape("holdout_random", share=0.5), "line_order", seed=1)
    assert held.orders["group_id"].value_counts().get("g3") == 1


def test_validation_counts_a_group_known_from_its_pushes():
    # The failed launch comes after the last order on the line clock: still history (a synthetic clock has no after).
    f = with_failed_launch(frames(TRAIN), "g3", "c", 100)
    val = build_validation(f, Config(), EvalOptions(shape=TestShape("holdout_last"), new_pairs_only=False))
    assert sorted(val.data.groups.id_of(val.groups)) == ["g1", "g2", "g3"]
    g3 = val.data.groups.index_of(["g3"])[0]
    assert val.data.n_orders[g3] == 0 and val.data.has_history[g3]
    assert val.data.weights[g3, val.data.items.index_of(["c"])[0]] > 0
