"""The conversion ranker trained through `lightgbm.dask` on a LocalCluster beside the single-process one.

The daily job trains its ranker once on the client (the cluster path must give the single-process picks); this
measures what `training.distributed.fit_ranker_on_cluster` — the same settings through `lightgbm.dask`, for example
sets that outgrow one machine — would change: AUC and log loss of both (uncalibrated) on the held-out pushes, and
the rank correlation of their predictions.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/dask_ranker.py [--groups 2000 --products 2000 --days 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import spearmanr

from features.sample_world import generate
from recsys.calibration import probability_metrics
from contracts.config import Config
from recsys.ranker import LABEL, ConversionRanker, time_split
from cli.commands import add_sample_world_options
from training.examples import ranker_examples
from training.distributed import cluster_client, fit_ranker_on_cluster


def main() -> None:
    """Examples from the sample world, both fits, figures side by side."""
    parser = add_sample_world_options(argparse.ArgumentParser())
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cfg = Config()
    cfg.features.title_embeddings = "off"
    world = generate(args.seed, args.groups, args.products, args.days)
    now = world.orders["ordered_at"].max()
    examples = ranker_examples(world, now, cfg, log=lambda _: None)
    train, test = time_split(examples, cfg.ranker.validation_days)
    y = test[LABEL].to_numpy()
    t0 = time.perf_counter()
    # The single-process model with the cluster's settings: every tree, no early stopping, no calibration.
    single = ConversionRanker(cfg.ranker).fit(train, train[LABEL].to_numpy())
    single_s = time.perf_counter() - t0
    p_single = single.predict_raw(test)
    with cluster_client("local", args.workers) as client:
        t0 = time.perf_counter()
        model = fit_ranker_on_cluster(client, single, train)
        dask_s = time.perf_counter() - t0
        p_dask = model.to_local().predict_proba(single._matrix(test))[:, 1]
    print(f"{len(train):,} training rows, {len(test):,} held-out pushes (positive rate {y.mean():.4f})")
    for name, p, secs in (("single process", p_single, single_s), (f"lightgbm.dask, {args.workers} workers", p_dask, dask_s)):
        m = probability_metrics(y, p)
        print(f"{name:<28} AUC {m['auc']:.4f}  log loss {m['log_loss']:.4f}  ECE {m['ece']:.4f}  fit {secs:.1f}s")
    print(f"Spearman between the two models' predictions: {spearmanr(p_single, p_dask).statistic:.4f}; "
          f"mean |Δp| {np.abs(p_single - p_dask).mean():.5f}")


if __name__ == "__main__":
    main()
