"""The daily job on a Dask LocalCluster (2 worker processes) gives the single-process artifact: same candidates,
same feature rows, same picks."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("distributed")

import training.daily as daily  # noqa: E402
from features.sample_world import generate  # noqa: E402
from contracts.config import Config  # noqa: E402
from contracts.artifact import load_artifact  # noqa: E402


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



def test_lightgbm_dask_ranker_agrees_with_the_single_process_one() -> None:
    import numpy as np
    from scipy.stats import spearmanr

    from contracts.config import RankerConfig
    from recsys.ranker import ConversionRanker
    from training.distributed import cluster_client, fit_ranker_on_cluster

    rng = np.random.default_rng(0)
    n = 4000
    x = rng.standard_normal((n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 1] - 1)))).astype(int)
    examples = pd.DataFrame({"group_id": [f"g{k % 50}" for k in range(n)], "product_id": [f"p{k % 70}" for k in range(n)],
                             "f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], "label": y})
    single = ConversionRanker(RankerConfig(n_estimators=40, min_child_samples=20, monotone_increasing=[])).fit(examples, y)
    with cluster_client("local", 2) as client:
        model = fit_ranker_on_cluster(client, single, examples)
    p_dask = model.to_local().predict_proba(single._matrix(examples))[:, 1]
    # Different histograms across workers, so not identical, but the same model of the data.
    assert spearmanr(single.predict_raw(examples), p_dask).statistic > 0.9
