"""The daily job end to end on a tiny sample world: artifact contents, picks, and a crash that keeps the old one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import training.daily as daily
from features.sample_world import generate
from recsys.config import Config
from recsys.picks import pick_for_group
from recsys.rules import REASON_LABELS
from training.artifact import latest_artifact, load_artifact
from training.cli import main


@pytest.fixture(scope="module")
def world():
    return generate(seed=3, groups=80, products=120, days=40)


def _cfg(**ranker) -> Config:
    cfg = Config()
    cfg.ranker = cfg.ranker.model_copy(update={"n_estimators": 40, "min_child_samples": 20, **ranker})
    cfg.candidates = cfg.candidates.model_copy(update={"per_source": 30, "union_size": 40, "als_iterations": 3})
    return cfg


def test_daily_job_writes_a_complete_artifact(world, tmp_path: Path):
    result = daily.run_daily(world, _cfg(), tmp_path, evaluate=False, log=lambda _: None)
    art = load_artifact(result.artifact)
    assert latest_artifact(tmp_path) == result.artifact
    m = art.manifest
    assert m["pick_date"] == "2025-07-01"
    assert m["data_window"]["end"].startswith("2025-06-30")
    assert 0.0 <= m["metrics"]["ranker"]["calibrated"]["ece"] <= 1.0
    assert set(m["files"]) >= {"ranker.txt", "candidates.parquet", "picks.parquet"}
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


def test_crash_keeps_previous_artifact(world, tmp_path: Path, monkeypatch):
    first = daily.run_daily(world, _cfg(), tmp_path, evaluate=False, log=lambda _: None).artifact

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(daily, "segment_components", boom)
    with pytest.raises(RuntimeError, match="killed"):
        daily.run_daily(world, _cfg(), tmp_path, evaluate=False, log=lambda _: None)
    assert latest_artifact(tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_candidate_examples_mode_labels_a_snapshot(world):
    cfg = _cfg(examples="candidates", label_window_days=7)
    examples = daily.ranker_examples(world, pd_now(world), cfg, log=lambda _: None)
    assert examples["at"].nunique() == 1 and examples["label"].isin([0, 1]).all()
    assert 0 < examples["label"].sum() < len(examples)
    assert {"score__als", "rank__als", "category_share", "seller_type"} <= set(examples.columns)


def pd_now(world):
    import pandas as pd

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
