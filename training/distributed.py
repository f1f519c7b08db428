"""The daily job's per-group part on a Dask cluster (dask.distributed).

The client does what is learned once — today's TrainData, every candidate source (ALS included), the
profiles and the LightGBM conversion ranker — and broadcasts that model to every worker once
(`Client.scatter(..., broadcast=True)`). Each task is then one block of whole sellers (`seller_blocks`) with
its own slice of the group-keyed profile tables: union candidates → ranker rows → p_conv → components →
picks, the very function the single-process run calls (`training.blocks.day_block`). Blocks come back to
the client in block order, and it appends each to the artifact as it arrives, so the picks are those of the
single-process run on the same data, configuration and seed.

The ranker is trained once on the client, not through `lightgbm.dask`: distributed LightGBM builds its
histograms across workers and gives a different (not bit-identical) model, and it has no early stopping,
which the ranker's calibration split relies on. Its training rows are a few days of pushes, small next to
the scoring of every group, so the cluster's work is the scoring. `fit_ranker_on_cluster` trains the same
LightGBM settings through `lightgbm.dask` for data sets that outgrow one machine; its agreement with the
single-process model is measured by `benchmarks/scale_job.py`, not assumed.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd

from features.profiles import Profiles
from training.blocks import DayBlock, day_block
from training.day_model import DayModel
from training.log import Log

if TYPE_CHECKING:
    from distributed import Client


@contextlib.contextmanager
def cluster_client(scheduler: str, local_workers: int = 2) -> Iterator["Client"]:
    """A client of the scheduler at `scheduler`, or of a LocalCluster of `local_workers` processes for 'local'."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
    else:
        with Client(scheduler) as client:
            yield client


def run_blocks_on_cluster(model: DayModel, blocks: list[np.ndarray], views: list[Profiles],
                          log: Log, client: "Client | None" = None) -> Iterator[DayBlock]:
    """Every block as one task on the cluster of `model.cfg.cluster` (or on `client`); results yielded in block
    order, each released on the cluster once taken, so the client holds one block at a time."""
    if client is None:
        with cluster_client(model.cfg.cluster.scheduler, model.cfg.cluster.local_workers) as own:
            yield from run_blocks_on_cluster(model, blocks, views, log, own)
        return
    workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    log(f"dask: {len(blocks):,} blocks on {workers} workers ({client.scheduler.address})")
    # One copy of the fitted model per worker, not one per task.
    shared = client.scatter(model, broadcast=True, hash=False)
    # Each block's profile slice goes to the cluster as data, not inlined into the task graph.
    slices = client.scatter(views, hash=False)
    futures = [client.submit(day_block, shared, idx, view, pure=False, key=f"day-block-{k}")
               for k, (idx, view) in enumerate(zip(blocks, slices))]
    try:
        for k in range(len(futures)):
            result = futures[k].result()
            # Dropping the last reference to a future frees its result (and the block's slice) on the workers.
            futures[k] = slices[k] = None
            yield result
    finally:
        client.cancel([shared, *(f for f in (*futures, *slices) if f is not None)])


def fit_ranker_on_cluster(client: "Client", ranker: Any, examples: pd.DataFrame, partitions: int = 0) -> Any:
    """The LightGBM settings of a fitted `ConversionRanker` (same features, categories and constraints) trained
    through `lightgbm.dask` on `examples` (label column `label`) for its full `n_estimators`, without early stopping
    or calibration: the distributed counterpart whose agreement with the single-process ranker is measured."""
    import dask.dataframe as dd
    import lightgbm as lgb

    from recsys.ranker import LABEL

    rc = ranker.config
    X = ranker._matrix(examples)
    n = partitions or max(len(client.scheduler_info(n_workers=-1).get("workers", {})), 1)
    dx = dd.from_pandas(X, npartitions=n)
    dy = dd.from_pandas(pd.Series(examples[LABEL].to_numpy(int), index=X.index, name=LABEL), npartitions=n)
    model = lgb.DaskLGBMClassifier(
        client=client, objective="binary", num_leaves=rc.num_leaves, learning_rate=rc.learning_rate,
        n_estimators=rc.n_estimators, min_child_samples=rc.min_child_samples, random_state=rc.seed,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, verbose=-1, n_jobs=1,
        monotone_constraints=[1 if name in rc.monotone_increasing else 0 for name in ranker.feature_names_],
    )
    return model.fit(dx, dy)
