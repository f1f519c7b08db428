"""The daily job's blocks on several processes of this machine, forked so that they share the day model.

Outside LightGBM's own threads and the ALS fit, the per-group work is single-threaded Python and NumPy, so one
process uses one core of the machine. Forked workers read the parent's day model (TrainData, sources,
profiles, ranker: gigabytes at a million groups) through copy-on-write pages instead of a copy each, as a Dask
worker would need; only each block's result travels back, pickled. Blocks are handed out one at a time and
come back in block order, so the artifact and the picks are those of the single-process run.

Two things a fork must respect: the parent's objects are frozen out of the cyclic garbage collector first
(a child's collection would otherwise touch, and so copy, every page holding a container), and LightGBM
predicts with one thread in the children (GNU OpenMP does not survive a fork of a process that has already
used its thread pool: a child asking for two threads hangs).
"""

from __future__ import annotations

import gc
import multiprocessing
from typing import Iterator

import numpy as np

from features.profiles import Profiles
from contracts.config import RankerConfig
from recsys.device import cpu_cores
from training.blocks import DayBlock, day_block
from training.day_model import DayModel
from training.log import Log

# What the children read: set in the parent just before the fork, so it reaches them through the fork itself.
_SHARED: tuple[DayModel, list[np.ndarray], list[Profiles]] | None = None


def worker_processes(processes: int) -> int:
    """Processes to fork for `cluster.processes` (0 = one per core this process may run on)."""
    return processes if processes > 0 else cpu_cores()


def _single_threaded_ranker() -> None:
    """In a child: LightGBM on one thread (see the module docstring)."""
    assert _SHARED is not None
    ranker = _SHARED[0].ranker
    ranker.config = (ranker.config or RankerConfig()).model_copy(update={"num_threads": 1})


def _block(k: int) -> DayBlock:
    """Block `k` of the shared list, scored in this child."""
    assert _SHARED is not None
    model, blocks, views = _SHARED
    return day_block(model, blocks[k], views[k])


def run_blocks_forked(model: DayModel, blocks: list[np.ndarray], views: list[Profiles], processes: int,
                      log: Log) -> Iterator[DayBlock]:
    """Every block on `processes` forked workers, yielded in block order as each is done."""
    global _SHARED
    if "fork" not in multiprocessing.get_all_start_methods():
        raise RuntimeError("cluster.processes > 1 needs the fork start method (Linux, macOS)")
    log(f"blocks on {processes} forked processes")
    _SHARED = (model, blocks, views)
    gc.collect()
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(processes, initializer=_single_threaded_ranker) as pool:
            yield from pool.imap(_block, range(len(blocks)), chunksize=1)
    finally:
        _SHARED = None
        gc.unfreeze()
