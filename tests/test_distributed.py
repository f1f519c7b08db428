"""The daily job on a Dask LocalCluster (2 worker processes) gives the single-process artifact: same candidates,
same feature rows, same picks."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("distributed")

import training.daily as daily  # noqa: E402
from features.sample_world import generate  # noqa: E402
from recsys.config import Config  # noqa: E402
from training.artifact import load_artifact  # noqa: E402


def _cfg(scheduler: str = "") -> Config:
    cfg = Config()
    cfg.ranker = cfg.ranker.model_copy(update={"n_estimators": 30, "min_child_samples": 20})
    cfg.candidates = cfg.candidates.model_copy(update={"per_source": 20, "union_size": 30, "als_iterations": 3})
    cfg.cluster = cfg.cluster.model_copy(update={"block_groups": 15, "scheduler": scheduler, "local_workers": 2})
    return cfg


@pytest.fixture(scope="module")
def world():
    return generate(seed=5, groups=70, products=90, days=35)


def test_dask_local_cluster_picks_equal_single_process(world, tmp_path):
    quiet = lambda _: None  # noqa: E731
    alone = load_artifact(daily.run_daily(world, _cfg(), tmp_path / "one", evaluate=False, log=quiet).artifact)
    lines: list[str] = []
    spread = load_artifact(daily.run_daily(world, _cfg("local"), tmp_path / "dask", evaluate=False, log=lines.append).artifact)
    assert any(line.startswith("dask:") and "on 2 workers" in line for line in lines)
    assert len(alone.groups) > 2 * 15  # several blocks, so several tasks
    for name in ("candidates", "picks", "segment_candidates", "groups"):
        pd.testing.assert_frame_equal(getattr(alone, name), getattr(spread, name), check_exact=True, obj=name)
    feats = [pd.read_parquet(a.path / "candidate_features.parquet") for a in (alone, spread)]
    pd.testing.assert_frame_equal(*feats, check_exact=True, obj="candidate_features")
    assert alone.manifest["config_hash"] == spread.manifest["config_hash"]
    assert len(alone.picks) and alone.picks["group_id"].nunique() == len(alone.groups)

