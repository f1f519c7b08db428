"""The daily job's blocks on forked processes give the single-process artifact: same candidates, feature rows, picks."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest

import training.daily as daily
from features.sample_world import generate
from contracts.config import Config
from contracts.artifact import load_artifact
from training.forked import worker_processes

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def _cfg(processes: int, inference: str = "lightgbm") -> Config:
    cfg = Config()
    # Two LightGBM threads in the parent: the children must still predict (on one thread) without hanging.
    cfg.ranker = cfg.ranker.model_copy(update={"n_estimators": 30, "min_child_samples": 20, "num_threads": 2,
                                               "inference": inference})
    cfg.candidates = cfg.candidates.model_copy(update={"per_source": 20, "union_size": 30, "als_iterations": 3})
    cfg.cluster = cfg.cluster.model_copy(update={"block_groups": 15, "processes": processes})
    return cfg


@pytest.mark.timeout(300)
@pytest.mark.parametrize("inference", ["lightgbm", "compiled"])
def test_forked_processes_give_the_single_process_artifact(tmp_path, inference: str) -> None:
    world = generate(seed=5, groups=70, products=90, days=35)
    quiet = lambda _: None  # noqa: E731
    alone = load_artifact(daily.run_daily(world, _cfg(1, inference), tmp_path / "one", evaluate=False, log=quiet).artifact)
    lines: list[str] = []
    forked = daily.run_daily(world, _cfg(2, inference), tmp_path / "two", evaluate=False, log=lines.append)
    spread = load_artifact(forked.artifact)
    assert "blocks on 2 forked processes" in lines
    assert len(alone.groups) > 2 * 15  # several blocks, so both processes work
    for name in ("candidates", "picks", "segment_candidates", "groups"):
        pd.testing.assert_frame_equal(getattr(alone, name), getattr(spread, name), check_exact=True, obj=name)
    feats = [pd.read_parquet(a.path / "candidate_features.parquet") for a in (alone, spread)]
    pd.testing.assert_frame_equal(*feats, check_exact=True, obj="candidate_features")
    assert alone.manifest["config_hash"] == spread.manifest["config_hash"]
    # The parent's ranker keeps its own thread count; only the children's copies were set to one.
    assert forked.model.ranker.config.num_threads == 2
    assert (forked.model.ranker.compiled_ is not None) == (inference == "compiled")


def test_zero_processes_means_one_per_core() -> None:
    assert worker_processes(0) >= 1
    assert worker_processes(3) == 3
