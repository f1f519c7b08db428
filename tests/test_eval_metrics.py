"""Metrics per test pair against per group, the accounting of dropped test rows, the lists and the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import metrics as M
from recsys.candidates import GlobalPopular, OwnTopItems
from contracts.config import Config
from training.evaluate import EvalOptions, Frames, evaluate_models
from training.report import write_report

T0 = pd.Timestamp("2024-01-01")


def test_per_pair_and_per_group_averages_on_a_hand_computed_case():
    # g0 has three test items and finds one at rank 1; g1 has one and finds it at rank 2.
    rel = sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=np.float32))
    ids = np.array([[0, 4, -1], [4, 3, -1]])
    hr, recall, ndcg = M.hit_rate_at_k(ids, rel, 3), M.recall_at_k(ids, rel, 3), M.ndcg_at_k(ids, rel, 3)
    assert hr.mean() == 1.0 and recall.tolist() == pytest.approx([1 / 3, 1.0])
    # Per pair: 2 of the 4 test pairs are found, whatever the groups.
    assert M.pair_hit_rate_at_k(ids, rel, 3) == 0.5 == M.pair_mean(recall, rel)
    g0 = 1.0 / (1.0 + 1.0 / np.log2(3) + 0.5)  # one hit at rank 1 over the ideal DCG of three hits
    g1 = 1.0 / np.log2(3)
    assert ndcg.tolist() == pytest.approx([g0, g1])
    assert ndcg.mean() == pytest.approx((g0 + g1) / 2)
    assert M.pair_mean(ndcg, rel) == pytest.approx((3 * g0 + g1) / 4)
    with pytest.raises(ValueError, match="3 per-group values for 2 relevance rows"):
        M.pair_mean(np.ones(3), rel)


def world() -> tuple[Frames, Frames]:
    """g0 and g1 bought a and b, g2 bought c twice and d; a test with one counted pair in g0 and g1 and one row of
    each dropped kind."""
    products = pd.DataFrame({"product_id": ["a", "b", "c", "d"], "title": "t", "category": "食品", "brand": "",
                             "price": 1.0, "commission_rate": 0.1})
    groups = pd.DataFrame({"group_id": ["g0", "g1", "g2"], "seller_id": "s", "member_count": 5})
    sellers = pd.DataFrame({"seller_id": ["s"], "seller_type": ["其他"], "city_tier": [3]})

    def orders(rows: list[tuple[str, str, int, bool]]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["group_id", "product_id", "day", "refunded"])
        frame["ordered_at"] = T0 + pd.to_timedelta(frame.pop("day"), unit="D")
        frame.insert(0, "order_id", [f"o{n}" for n in range(len(frame))])
        return frame.assign(quantity=1, paid=1.0)

    train = orders([("g0", "a", 0, False), ("g0", "b", 1, False), ("g1", "a", 0, False), ("g1", "b", 1, False),
                    ("g2", "c", 0, False), ("g2", "c", 1, False), ("g2", "d", 2, False)])
    test = orders([("g0", "c", 5, False), ("g0", "c", 5, False), ("g1", "d", 5, False), ("g0", "a", 5, False),
                   ("g1", "c", 5, True), ("g9", "c", 5, False), ("g1", "zz", 5, False)])
    return (Frames(products, sellers, groups, None, train), Frames(products, sellers, groups, None, test))


def test_dropped_test_rows_are_counted_by_reason_and_lists_are_kept(tmp_path):
    train, test = world()
    models = {"popular": GlobalPopular(), "own_top": OwnTopItems()}
    options = EvalOptions(ks=(2, 10), new_pairs_only=True, keep_lists=True)
    result = evaluate_models(train, test, models, Config(), options, model_name="popular")
    d = result.dropped
    assert d == {"test_rows": 7, "refunded": 1, "unknown_group": 1, "unknown_product": 1, "seen_in_training": 1,
                 "kept_rows": 3, "repeated_pair_rows": 1, "test_pairs": 2, "evaluated_groups": 2, "evaluated_pairs": 2}
    lists = result.lists
    assert list(lists.columns) == ["model", "group_id", "rank", "product_id", "score"]
    # Popularity over unseen items is c then d for both groups; own_top has nothing new to offer (no rows).
    assert set(lists["model"]) == {"popular"} and lists["product_id"].tolist() == ["c", "d", "c", "d"]
    assert lists["group_id"].tolist() == ["g0", "g0", "g1", "g1"] and lists["rank"].tolist() == [1, 2, 1, 2]
    assert (lists["score"].to_numpy()[[0, 2]] > lists["score"].to_numpy()[[1, 3]]).all()
    assert result.metrics["popular"]["pair_hr@2"] == 1.0 and result.metrics["own_top"]["pair_hr@2"] == 0.0
    write_report(result, tmp_path)
    text = (tmp_path / "report.md").read_text("utf-8")
    assert "7 test rows: 3 kept as 2 test pairs" in text and "1 group unknown to training" in text
    saved = json.loads((tmp_path / "result.json").read_text("utf-8"))
    assert "lists" not in saved and saved["dropped"]["seen_in_training"] == 1 and "pair_ndcg@2" in saved["metrics"]["popular"]
