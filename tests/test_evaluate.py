"""The evaluation harness: leak-free time split, relevance, evaluate_models, tuning, the report and the command."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.interactions import build_train_data
from recsys.candidates import GlobalPopular, ItemKNNSource, OwnTopItems, RandomSource
from contracts.config import Config
from cli.main import build_parser
from recsys.candidates.registry import make_source
from training.evaluate import (
    EvalOptions, Frames, evaluate_models, member_relevance, relevance, run_evaluation, time_split, tune_blend, build_validation,
)
from training.report import write_report

START = pd.Timestamp("2024-03-01")
CATS = ["食品", "母婴", "日用", "美妆", "3C"]


def small_world(n_groups: int = 60, n_items: int = 40, days: int = 28, seed: int = 0) -> Frames:
    """Groups with a favourite main category buy mostly from it, every day; pushes mirror the orders."""
    rng = np.random.default_rng(seed)
    cat = np.arange(n_items) % len(CATS)
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(n_items)], "title": [f"{CATS[c]}好物{i}" for i, c in enumerate(cat)],
        "category": [f"{CATS[c]}/其他" for c in cat], "brand": "", "price": 10.0 + np.arange(n_items),
        "commission_rate": 0.1, "rating": 0.95, "in_stock": True,
    })
    sellers = pd.DataFrame({"seller_id": ["s0", "s1", "s2"], "seller_type": ["宝妈", "学生", "导购"], "city_tier": [1, 2, 3]})
    groups = pd.DataFrame({"group_id": [f"g{g}" for g in range(n_groups)], "seller_id": [f"s{g % 3}" for g in range(n_groups)],
                           "member_count": [30 + 10 * g for g in range(n_groups)]})
    favourite = np.arange(n_groups) % len(CATS)
    rows = []
    for d in range(days):
        for g in range(n_groups):
            own = np.flatnonzero(cat == favourite[g])
            for i in rng.choice(own, 2, replace=False):
                rows.append((f"g{g}", f"p{i}", START + pd.Timedelta(days=d, hours=int(rng.integers(8, 22)))))
    orders = pd.DataFrame(rows, columns=["group_id", "product_id", "ordered_at"])
    orders.insert(0, "order_id", [f"o{n}" for n in range(len(orders))])
    orders["quantity"] = 1
    orders["paid"] = 10.0
    orders["refunded"] = False
    pushes = orders[["group_id", "product_id"]].assign(pushed_at=orders["ordered_at"] - pd.Timedelta(hours=1))
    truth = pd.DataFrame({"group_id": groups["group_id"].repeat(len(CATS)).to_numpy(), "category": CATS * n_groups,
                          "share": [0.8 if c == favourite[g] else 0.05 for g in range(n_groups) for c in range(len(CATS))]})
    return Frames(products, sellers, groups, pushes, orders, truth)


def test_time_split_has_no_leakage():
    frames = small_world()
    train, test, cutoff = time_split(frames, test_days=7)
    assert cutoff == pd.Timestamp("2024-03-22")
    assert train.orders["ordered_at"].max() < cutoff <= test.orders["ordered_at"].min()
    assert test.orders["ordered_at"].max() < cutoff + pd.Timedelta(days=7)
    assert train.pushes["pushed_at"].max() < cutoff
    assert len(train.orders) + len(test.orders) == len(frames.orders)
    assert not set(train.orders["order_id"]) & set(test.orders["order_id"])
    data = build_train_data(train.products, train.sellers, train.groups, train.pushes, train.orders, now=cutoff)
    assert data.events["age_days"].min() > 0


def test_relevance_drops_refunds_and_old_pairs_when_asked():
    frames = small_world()
    train, test, cutoff = time_split(frames, 7)
    test.orders.loc[0, "refunded"] = True
    # g0 favours 食品 (p0, p5, …) and bought all of them in training; p1 is a new pair.
    extra = test.orders.iloc[[1]].assign(order_id="new", group_id="g0", product_id="p1")
    test.orders = pd.concat([test.orders, extra], ignore_index=True)
    data = build_train_data(train.products, train.sellers, train.groups, train.pushes, train.orders, now=cutoff)
    rel = relevance(test.orders, data, new_pairs_only=False)
    kept = test.orders.iloc[1:]
    pairs = set(zip(kept["group_id"], kept["product_id"]))
    g, i = rel.nonzero()
    assert set(zip(data.groups.id_of(g), data.items.id_of(i))) == pairs
    new = relevance(test.orders, data, new_pairs_only=True)
    g, i = new.nonzero()
    assert list(zip(data.groups.id_of(g), data.items.id_of(i))) == [("g0", "p1")]


def test_member_relevance_judges_a_group_list_by_its_buyers():
    products = pd.DataFrame({"product_id": ["p0", "p1", "p2", "p3"], "title": "t", "category": "食品", "brand": "",
                             "price": 1.0, "commission_rate": 0.1})
    groups = pd.DataFrame({"group_id": ["g0", "g1"], "seller_id": ["g0", "g1"], "member_count": [3, 1]})
    train = pd.DataFrame({"order_id": ["o0"], "group_id": ["g0"], "product_id": ["p0"], "ordered_at": [START],
                          "quantity": 1, "paid": 1.0})
    data = build_train_data(products, None, groups, None, train, now=START + pd.Timedelta(days=1))
    test = pd.DataFrame({"group_id": ["g0", "g0", "g0", "g1", "g0"], "product_id": ["p0", "p1", "p2", "p3", "p3"],
                         "buyer_id": ["a", "a", "b", "c", None]})
    rel, member_group = member_relevance(test, data, np.array([0]), new_pairs_only=True)
    # a's p0 is not new to g0; c's group is not evaluated; the order without a buyer names no member.
    assert rel.toarray().tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]] and member_group.tolist() == [0, 0]
    rel_all, _ = member_relevance(test, data, np.array([0]), new_pairs_only=False)
    assert rel_all.toarray().tolist() == [[1, 1, 0, 0], [0, 0, 1, 0]]


def test_member_validation_rows_are_members_and_targets_filter_them():
    frames = small_world(n_groups=12, days=21)
    frames.orders["buyer_id"] = np.where(np.arange(len(frames.orders)) % 3 == 0, "a", "b")
    train, _, _ = time_split(frames, test_days=7)
    window = time_split(train, test_days=7)[1].orders
    options = EvalOptions(validation_days=7, tune_metric="member_hr@10")
    val = build_validation(train, Config(), options)
    members = window[["group_id", "buyer_id"]].drop_duplicates()
    assert val.rel.shape[0] == len(val.groups) == len(members)
    assert sorted(val.data.groups.id_of(val.groups)) == sorted(members["group_id"])
    only_a = build_validation(train, Config(), replace(options, validation_targets=lambda o: (o["buyer_id"] == "a").to_numpy()))
    assert len(only_a.groups) == (members["buyer_id"] == "a").sum()


def test_evaluate_models_ranks_personal_above_random():
    frames = small_world()
    train, test, cutoff = time_split(frames, 7)
    models = {"random": RandomSource(seed=1), "own_top": OwnTopItems(), "popular": GlobalPopular(), "knn": ItemKNNSource(neighbours=20)}
    result = evaluate_models(train, test, models, Config(), EvalOptions(ks=(5, 10)), model_name="knn", cutoff=cutoff)
    m = result.metrics
    assert set(m) == set(models)
    # Every group buys 2 of its favourite category's 8 items a day: the personal lists hold all 8 in their top 10.
    assert m["own_top"]["hr@10"] == 1.0 and m["knn"]["recall@10"] == pytest.approx(1.0)
    assert max(m["random"]["ndcg@10"], m["popular"]["ndcg@10"]) < m["own_top"]["ndcg@10"]
    assert result.split["eval_groups"] == 60
    assert set(result.breakdowns["size_band"]) == {"<50", "50–200", ">200"}
    assert result.breakdowns["size_band"]["<50"]["knn"]["groups"] == 2  # 30 and 40 members
    assert result.spearman["own_top"] > 0.5 > result.spearman["random"]
    assert result.best_baseline("ndcg@10")[0] in {"own_top", "popular", "random"}


def test_blend_tuning_prefers_the_informative_source():
    frames = small_world()
    train, _, _ = time_split(frames, 7)
    cfg = Config()
    options = EvalOptions(validation_days=7)
    val = build_validation(train, cfg, options)
    sources = {"random": make_source("random", {}, cfg).fit(val.data), "own_top": make_source("own_top", {}, cfg).fit(val.data)}
    weights, _, trials = tune_blend(sources, val, per_source=10, metric="ndcg@10")
    assert weights["own_top"] > 0 and weights["random"] == 0.0
    assert len(trials) > 2


def test_run_evaluation_writes_json_markdown_and_plots(tmp_path):
    frames = small_world(n_groups=30, n_items=25, days=21)
    train, test, cutoff = time_split(frames, 7)
    options = EvalOptions(baselines=("random", "popular", "own_top"), blend_sources=("popular", "own_top", "exposure"))
    result = run_evaluation(train, test, Config(), options, dataset="toy", cutoff=cutoff, log=lambda _: None)
    assert "blend" in result.metrics and result.tuning["blend"]
    path = write_report(result, tmp_path)
    text = path.read_text("utf-8")
    assert "| **blend** |" in text and "best other" in text and "pair_hr@10" in text
    saved = json.loads((tmp_path / "result.json").read_text("utf-8"))
    assert saved["metrics"]["blend"]["ndcg@10"] == pytest.approx(result.metrics["blend"]["ndcg@10"])
    assert saved["config"]["candidates"]["per_source"] == 100
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "breakdown_history.png", "breakdown_seller_type.png", "breakdown_size_band.png",
        "models_hr_at_10.png", "models_ndcg_at_10.png", "models_recall_at_20.png"]


def test_evaluate_command_is_registered():
    args = build_parser("evaluate").parse_args(["evaluate", "sample", "--test-days", "5", "--new-pairs-only"])
    assert args.test_days == 5 and args.new_pairs_only and args.data == "sample"
