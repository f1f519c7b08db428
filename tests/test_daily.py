"""The daily job end to end on a tiny sample world: artifact contents, picks, and a crash that keeps the old one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import training.daily as daily
import training.day_model as day_model
from features.interactions import default_now
from features.profiles import PRICE_RANGE_FEATURE, build_profiles
from features.sample_world import generate
from contracts.config import Config
from recsys.picks import pick_for_group
from recsys.ranker import fit_and_evaluate, load_ranker, reprice_features
from recsys.rules import REASON_LABELS
from contracts.artifact import latest_artifact, load_artifact
from training.blocks import seller_blocks
from training.examples import (NON_TIMED_DROP, PUSH_FEATURES, learns_from_holdout, meaningful_features, ranker_examples,
                               sample_example_groups)
from training.tables import PRICE_MOVE, RULES_PRICE_CHANGE, _reasons, product_state
from cli.main import main


@pytest.fixture(scope="module")
def world():
    return generate(seed=3, groups=80, products=120, days=40)


def _cfg(**ranker) -> Config:
    cfg = Config()
    cfg.ranker = cfg.ranker.model_copy(update={"n_estimators": 40, "min_child_samples": 20, **ranker})
    cfg.candidates = cfg.candidates.model_copy(update={"per_source": 30, "union_size": 40, "als_iterations": 3})
    return cfg


@pytest.fixture(scope="module")
def job(world, tmp_path_factory):
    """One run of the job (exposure examples, so the exposed flag goes all the way to the artifact)."""
    root = tmp_path_factory.mktemp("artifacts")
    return root, daily.run_daily(world, _cfg(examples="exposure", unshown_share=0.5), root, evaluate=False, log=lambda _: None)


def test_daily_job_writes_a_complete_artifact(job):
    root, result = job
    art = load_artifact(result.artifact)
    assert latest_artifact(root) == result.artifact
    m = art.manifest
    assert m["pick_date"] == "2025-07-01"
    assert m["data_window"]["end"].startswith("2025-06-30")
    assert 0.0 <= m["metrics"]["ranker"]["calibrated"]["ece"] <= 1.0
    assert set(m["files"]) >= {"models/ranker.txt", "models/ranker.json", "candidates.parquet", "picks.parquet",
                               "candidate_features.parquet"}
    assert len(art.groups) == 80 and art.groups["group_id"].is_unique
    cands = art.candidates
    assert cands["p_conv"].between(0, 1).all() and cands.groupby("group_id").size().max() <= 40
    assert not set(cands["group_id"]) & set(art.groups.loc[art.groups["cold_start"], "group_id"])
    codes = {c for r in cands["reasons"] for c in json.loads(r)}
    assert codes and codes <= set(REASON_LABELS)
    assert np.allclose(cands["commission_yuan"], cands["price"] * cands["commission_rate"])
    # Every group, warm or cold, gets its picks; the stored ones match a fresh pick with the default weights.
    cfg = _cfg()
    for gid in art.group_ids():
        picks, cold = pick_for_group(art, gid, cfg.weights, cfg.rules)
        assert cold == bool(art.group(gid)["cold_start"])
        assert 1 <= len(picks) <= cfg.rules.top_k
        assert art.picks_of(gid)["product_id"].tolist() == picks["product_id"].tolist()


def test_stored_ranker_and_features_reproduce_p_conv_and_follow_a_price_change(world, job):
    _, result = job
    art = load_artifact(result.artifact)
    ranker = load_ranker(art)
    assert "exposed" in ranker.feature_names_ and ranker.calibrator_.method == "isotonic"
    feats = pd.read_parquet(result.artifact / "candidate_features.parquet")
    assert len(feats) == len(art.candidates)
    assert feats["exposed"].eq(1).all() and feats["log_price"].dtype == np.float32
    stored = art.candidates.set_index(["group_id", "product_id"])["p_conv"]
    key = pd.MultiIndex.from_frame(feats[["group_id", "product_id"]])
    # float32 storage moves a feature by ~1e-7 relative: at most a rare row may cross a split threshold.
    assert np.mean(np.isclose(ranker.predict_proba(feats), stored.reindex(key).to_numpy(), atol=1e-6)) > 0.99
    # The stored rows are the pair features of the serving snapshot (features.profiles), nothing else.
    now = pd.Timestamp(world.orders["ordered_at"].max()) + pd.Timedelta(seconds=1)
    fresh = build_profiles(world.products, world.sellers, world.groups, world.pushes, world.orders, now).pair_features(
        feats[["group_id", "product_id"]].head(50))
    for col in ("cat_affinity", "price_z", "due_ratio", "product_conv_rate", "group_orders_30d"):
        assert np.allclose(feats[col].head(50).to_numpy(float), fresh[col].to_numpy(float), rtol=1e-6, equal_nan=True), col
    # Doubling a price moves price_z by log 2 over the group's scale and changes p_conv.
    dearer = reprice_features(feats, price=2.0 * np.exp(feats["log_price"].to_numpy(float)))
    shift = (dearer["price_z"] - feats["price_z"]).to_numpy(float)
    assert np.allclose(shift, np.log(2.0) / feats["_price_z_scale"].to_numpy(float), rtol=1e-5, equal_nan=True)
    assert not np.allclose(ranker.predict_proba(dearer), ranker.predict_proba(feats))


def test_day_model_is_built_complete_and_frozen(job):
    import dataclasses

    model = job[1].model
    assert isinstance(model, day_model.DayModel)
    assert len(model.groups) == model.data.n_groups and len(model.price_scale) == model.data.n_groups
    assert len(model.segment) and len(model.profiles.push_history.key) == 0  # each block carries its own view
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.segment = model.segment  # type: ignore[misc]


def test_the_rules_price_move_is_signed_against_the_price_before_the_window():
    products = pd.DataFrame({"product_id": ["cheaper", "dearer", "unseen"], "price": [90.0, 110.0, 50.0]})
    orders = pd.DataFrame({"product_id": ["cheaper", "dearer"], "paid": [200.0, 100.0], "quantity": [2, 1],
                           "ordered_at": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    state = product_state(products, None, orders, pd.Timestamp("2026-01-20"), window_days=7)
    # Signed, unlike the ranker's price range (`PRICE_RANGE_FEATURE`) of the same artifact spelling.
    assert state[PRICE_MOVE].to_dict()["cheaper"] == pytest.approx(-0.1)
    assert state[PRICE_MOVE].to_dict()["dearer"] == pytest.approx(0.1) and np.isnan(state.loc["unseen", PRICE_MOVE])
    assert RULES_PRICE_CHANGE == PRICE_RANGE_FEATURE == "price_change_7d"  # both artifact columns keep their name


def test_crash_keeps_previous_artifact(world, job, tmp_path: Path, monkeypatch):
    first = Path(shutil.copytree(job[1].artifact, tmp_path / job[1].artifact.name))

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(day_model, "build_day_model", boom)
    with pytest.raises(RuntimeError, match="killed"):
        daily.run_daily(world, _cfg(), tmp_path, evaluate=False, log=lambda _: None)
    assert latest_artifact(tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_candidate_examples_mode_labels_a_snapshot(world):
    cfg = _cfg(examples="candidates", label_window_days=7)
    examples = ranker_examples(world, pd_now(world), cfg, log=lambda _: None)
    assert examples["at"].nunique() == 1 and examples["label"].isin([0, 1]).all()
    assert 0 < examples["label"].sum() < len(examples)
    assert {"score__als", "rank__als", "n_sources", "cat_share", "price_z", "seller_type"} <= set(examples.columns)


def test_exposure_examples_add_unshown_candidates(world):
    cfg = _cfg(examples="exposure", unshown_share=0.5)
    now = pd_now(world)
    examples = ranker_examples(world, now, cfg, log=lambda _: None)
    shown, unshown = examples[examples["exposed"] == 1], examples[examples["exposed"] == 0]
    assert len(shown) and len(unshown)
    # Shown rows are exactly the pushes of the span whose 3-day label window is complete.
    pushed_at = pd.to_datetime(world.pushes["pushed_at"])
    span = (pushed_at >= now - pd.Timedelta(days=21)) & (pushed_at + pd.Timedelta(days=3) <= now)
    assert len(shown) == int(span.sum())
    # Unshown rows sit at refresh points whose label window ends before the validation days, and none of
    # them was pushed to its group within that window.
    assert unshown["at"].max() + pd.Timedelta(days=3) <= now - pd.Timedelta(days=cfg.ranker.validation_days)
    for t, rows in unshown.groupby("at"):
        in_window = world.pushes[(pushed_at >= t) & (pushed_at < t + pd.Timedelta(days=3))]
        pushed = set(zip(in_window["group_id"], in_window["product_id"]))
        assert not pushed & set(zip(rows["group_id"], rows["product_id"]))
    # The ranker is early-stopped, calibrated and reported on shown pairs only.
    _, metrics = fit_and_evaluate(examples, cfg.ranker)
    late = examples[examples["at"] > examples["at"].max() - pd.Timedelta(days=cfg.ranker.validation_days)]
    assert metrics["rows"]["calibrate"] + metrics["rows"]["test"] == int((late["exposed"] == 1).sum())


def test_reasons_order_codes_by_best_rank():
    ranks = pd.DataFrame({"rank__als": [3.0, np.nan, 1.0], "rank__trending": [1.0, np.nan, np.nan],
                          "rank__repurchase": [2.0, 5.0, np.nan], "rank__own_top": [np.nan, np.nan, 7.0]})
    out = _reasons(ranks, cat_share=np.array([0.5, 0.0, 0.1]), due=np.array([True, False, False]),
                         launched_days=np.array([100.0, 3.0, 30.0]))
    assert [json.loads(x) for x in out] == [
        ["group_buys_category", "trending", "repurchase_due", "similar_to_past"],
        ["new_product"],  # repurchase proposed it, but it is not due
        ["similar_to_past"],
    ]


def pd_now(world):
    return pd.Timestamp(world.orders["ordered_at"].max()) + pd.Timedelta(seconds=1)


def test_train_command_on_the_sample(tmp_path: Path, capsys):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"ranker": {"n_estimators": 30}, "candidates": {"union_size": 40, "per_source": 30}}))
    rc = main(["train", "--sample", "--groups", "60", "--products", "80", "--days", "35", "--no-eval",
               "--out", str(tmp_path / "art"), "--config", str(cfg_file)])
    assert rc == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path == latest_artifact(tmp_path / "art")
    assert load_artifact(path).manifest["source"].startswith("sample world seed=7 60×80×35d")


def test_evaluated_run_stores_the_window_the_ops_preview_replays(world, tmp_path):
    from recsys.preview import WINDOW_CANDIDATES, WINDOW_ORDERS

    result = daily.run_daily(world, _cfg(), tmp_path, evaluate=True, test_days=7, log=lambda _: None)
    files = set(load_artifact(result.artifact).manifest["files"])
    assert {"evaluation.json", f"{WINDOW_CANDIDATES}.parquet", f"{WINDOW_ORDERS}.parquet"} <= files
    window = pd.read_parquet(result.artifact / f"{WINDOW_ORDERS}.parquet")
    held_out = world.orders[pd.to_datetime(world.orders["ordered_at"]) >= pd.Timestamp("2025-06-24")]
    held_out = held_out[~held_out["refunded"].astype(bool)]
    # Every held-out order is in the window, once.
    assert window["orders"].sum() == len(held_out)
    assert result.evaluation is not None and "ranker" in result.evaluation["metrics"]


def test_seller_blocks_keep_a_sellers_groups_together(world):
    from features.interactions import build_train_data

    data = build_train_data(world.products, world.sellers, world.groups, world.pushes, world.orders, Config().features)
    blocks = seller_blocks(data, 7)
    flat = np.concatenate(blocks)
    assert sorted(flat.tolist()) == list(range(data.n_groups))
    sellers = data.group_frame["seller_id"].to_numpy(object)
    owner = {s: b for b, idx in enumerate(blocks) for s in sellers[idx]}
    assert all(owner[s] == b for b, idx in enumerate(blocks) for s in sellers[idx])
    assert len(blocks) > 3 and all(len(idx) >= 7 for idx in blocks[:-1])


def _by_group_id(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows stably sorted by group id (each group's own rows keep their order)."""
    if "group_id" not in frame:
        return frame.reset_index(drop=True)
    return frame.sort_values("group_id", kind="stable").reset_index(drop=True)


def test_block_size_does_not_change_the_artifact(world, tmp_path):
    """Scoring in blocks of a few sellers gives the candidates and picks of scoring every group in one block."""
    runs = []
    for size in (10_000, 9):
        cfg = _cfg()
        cfg.cluster = cfg.cluster.model_copy(update={"block_groups": size})
        runs.append(load_artifact(daily.run_daily(world, cfg, tmp_path / str(size), evaluate=False, log=lambda _: None).artifact))
    one, many = runs
    # Blocks are written in block order (a seller's groups together), so tables are compared group by group.
    for name in ("candidates", "picks", "segment_candidates", "groups"):
        pd.testing.assert_frame_equal(_by_group_id(getattr(one, name)), _by_group_id(getattr(many, name)), check_exact=True,
                                      obj=name)
    feats = [_by_group_id(pd.read_parquet(a.path / "candidate_features.parquet")) for a in runs]
    # float32 matrix products may round the last bit differently for other block shapes (OpenBLAS kernels), so
    # source scores are equal to float32 precision; every other feature is exactly equal.
    pd.testing.assert_frame_equal(*feats, check_exact=False, rtol=1e-6, atol=1e-6)


def test_ranker_examples_come_from_a_seeded_sample_of_whole_groups() -> None:
    examples = pd.DataFrame({"group_id": [f"g{n % 10}" for n in range(50)], "product_id": [f"p{n}" for n in range(50)]})
    few = sample_example_groups(examples, 3, seed=7)
    assert few["group_id"].nunique() == 3
    # Whole groups: every example of a kept group stays.
    assert len(few) == examples["group_id"].isin(few["group_id"].unique()).sum()
    pd.testing.assert_frame_equal(few, sample_example_groups(examples, 3, seed=7))
    assert sample_example_groups(examples, 10, seed=7) is examples


def test_groups_sampled_before_labelling_give_the_examples_sampled_after(world):
    """Sampling whole groups before the pushes are labelled (the job at a million groups) keeps exactly the rows that
    sampling the labelled examples would keep."""
    now = pd.to_datetime(world.orders["ordered_at"]).max() + pd.Timedelta(seconds=1)
    everything = ranker_examples(world, now, _cfg(max_example_groups=10_000), log=lambda _: None)
    few = ranker_examples(world, now, _cfg(max_example_groups=12), log=lambda _: None)
    assert few["group_id"].nunique() == 12
    expected = sample_example_groups(everything, 12, seed=_cfg().ranker.seed)
    cols = ["group_id", "product_id", "at", "label"]
    pd.testing.assert_frame_equal(few[cols].reset_index(drop=True), expected[cols].reset_index(drop=True))


def test_today_model_frees_the_fitting_matrices_before_the_profiles(world, monkeypatch):
    import weakref

    cfg = _cfg()
    seen: dict[str, object] = {}
    build = day_model.build_train_data

    def remembered(*args, **kwargs):
        data = build(*args, **kwargs)
        seen["full"] = weakref.ref(data)
        seen["confidence"] = weakref.ref(data.confidence)
        return data

    profiles_at = day_model.profiles_at

    def check_then_profile(frames, as_of, config, history_groups=None):
        seen["alive_at_profiles"] = seen["full"]() is not None or seen["confidence"]() is not None
        return profiles_at(frames, as_of, config, history_groups)

    monkeypatch.setattr(day_model, "build_train_data", remembered)
    monkeypatch.setattr(day_model, "profiles_at", check_then_profile)
    trained = day_model.train_ranker(world, default_now(world.orders), cfg, log=lambda _: None)
    timings: dict[str, float] = {}
    model = day_model.today_model(world, cfg, trained, timings, log=lambda _: None)
    assert seen["alive_at_profiles"] is False
    assert model.data.confidence.nnz == 0 and model.data.push_events is None
    assert model.data.purchases.nnz > 0 and "features" in timings
    # The fitted sources and the adoption still score from what they kept.
    groups = np.flatnonzero(~model.data.cold)[:5]
    assert (model.sources["als"].recommend(groups, 5)[0] >= 0).all()
    assert np.isfinite(model.adoption.pairs(groups, np.zeros(len(groups), dtype=np.int64))).all()


def _orders_only(world, clock: str):
    """The sample world's orders (no pushes) on another clock: the line-order adapter's kind of data."""
    from training.evaluate import Frames

    return Frames(world.products, world.sellers, world.groups, None, world.orders.copy(), None, clock)


def test_orders_only_examples_come_from_a_holdout_of_each_groups_last_line(world):
    from training.evaluation_window import TestShape, carve

    frames = _orders_only(world, "line_order")
    cfg = _cfg(candidate_negatives=5, holdout_depth=1)
    assert learns_from_holdout(frames, cfg) and not learns_from_holdout(world, cfg)
    examples = ranker_examples(frames, pd_now(world), cfg, log=lambda _: None)
    # One snapshot; a positive is a held-out line (each group's last), at most 5 negatives per group.
    assert examples["at"].nunique() == 1 and examples["label"].sum() >= 1
    _, held, _ = carve(frames, TestShape("holdout_last"), "line_order", cfg.ranker.seed)
    held_pairs = set(zip(held.orders["group_id"].astype(str), held.orders["product_id"].astype(str)))
    positives = examples[examples["label"] == 1]
    assert set(zip(positives["group_id"], positives["product_id"])) <= held_pairs
    assert (examples[examples["label"] == 0].groupby("group_id").size() <= 5).all()
    # Features of days (a line-order clock) and of pushes (there are none) are left out; the sources' stay.
    assert not set(examples.columns) & (NON_TIMED_DROP | PUSH_FEATURES)
    assert {"score__ease", "rank__ease", "score__item_knn_cosine", "cat_share"} <= set(examples.columns)
    assert not {"score__trending", "score__repurchase"} & set(examples.columns)
    # TIFU-KNN reads only the order of lines: there when the configuration lets it run on a line-order clock.
    assert ("score__tifu_knn" in examples.columns) == ("tifu_knn" in cfg.candidates.line_order_sources)
    # Deeper: the carve repeated holds out each group's last 3 lines, and more of them are found.
    deeper = ranker_examples(frames, pd_now(world), _cfg(candidate_negatives=5, holdout_depth=3), log=lambda _: None)
    assert deeper["label"].sum() > examples["label"].sum()


def test_meaningful_features_drops_constant_columns_but_keeps_a_value_or_nothing():
    frame = pd.DataFrame({"group_id": ["g", "g", "h"], "product_id": ["a", "b", "a"], "label": [1, 0, 0],
                          "rating": [0.9, 0.9, 0.9], "coupon": [np.nan] * 3, "brand_share": [0.5, np.nan, 0.5],
                          "score__ease": [0.3, 0.1, 0.2], "age_days": [1.0, 2.0, 3.0], "times_pushed": [0, 1, 0]})

    class Untimed:
        timed = False
        push_events = None

    kept = meaningful_features(frame, Untimed())
    # rating constant, coupon empty, age_days read from a synthetic clock, times_pushed from no pushes.
    assert list(kept.columns) == ["group_id", "product_id", "label", "brand_share", "score__ease"]


def test_orders_only_ranker_trains_and_serves(world, tmp_path):
    frames = _orders_only(world, "line_order")
    cfg = _cfg(candidate_negatives=20)
    result = daily.run_daily(frames, cfg, tmp_path, evaluate=False, log=lambda _: None)
    art = load_artifact(result.artifact)
    names = load_ranker(art).feature_names_
    assert "score__ease" in names and not set(names) & (NON_TIMED_DROP | PUSH_FEATURES)
    assert len(art.candidates) and art.candidates["p_conv"].between(0, 1).all()
