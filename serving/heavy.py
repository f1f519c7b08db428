"""Heavy answers (brand reach, what-if, new-product forecast, ops preview) off the picks path.

They take seconds of CPU each, so they run in a bounded pool of worker processes at a lower CPU priority, never in
the process that answers picks: a what-if no longer holds the GIL the picks requests need. Each key may have
`heavy_per_key` of them in flight and the pool `heavy_workers + heavy_queue` in all; past that the answer is 429
with code `busy` and a Retry-After, so one brand key cannot starve the others. Answers are cached per artifact
version and request, as before.

A task is a module-level function of picklable arguments (the artifact's path, weights and settings as plain
dicts); the worker loads the artifact once and keeps the last two it saw.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fastapi.concurrency import run_in_threadpool

from serving.problems import Problem

RETRY_AFTER_SECONDS = 5
# Lower than the serving process: on a shared machine the picks path gets the CPU first.
WORKER_NICENESS = 19


class AnswerCache:
    """A small thread-safe LRU of computed answers."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """The cached answer, or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: str, value: Any) -> None:
        """Keep an answer, dropping the least recently used beyond `size`."""
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _worker_init() -> None:
    """Set up a pool worker: lower priority, one BLAS thread (the pool is the parallelism)."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class HeavyPool:
    """Runs heavy tasks in worker processes (or, with 0 workers, in this process's thread pool) under caps."""

    def __init__(self, workers: int, per_key: int, queue: int, timeout_seconds: float) -> None:
        self.workers = workers
        self.per_key = per_key
        self.capacity = max(1, workers) + queue
        self.timeout_seconds = timeout_seconds
        self.answers = AnswerCache()
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # spawn, not fork: the serving process has threads (uvicorn, the artifact watch, OpenMP).
                self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_worker_init)
            return self._executor

    def _claim(self, key_id: str) -> None:
        with self._lock:
            total = sum(self._in_flight.values())
            if self._in_flight.get(key_id, 0) >= self.per_key:
                raise Problem(429, f"this key already has {self.per_key} heavy request(s) running; retry when it is done",
                              code="busy", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            if total >= self.capacity:
                raise Problem(429, f"{total} heavy requests are running or queued; retry shortly", code="busy",
                              headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self._in_flight[key_id] = self._in_flight.get(key_id, 0) + 1

    def _release(self, key_id: str) -> None:
        with self._lock:
            left = self._in_flight.get(key_id, 1) - 1
            if left > 0:
                self._in_flight[key_id] = left
            else:
                self._in_flight.pop(key_id, None)

    def in_flight(self) -> int:
        """Heavy requests running or queued now."""
        with self._lock:
            return sum(self._in_flight.values())

    async def run(self, key_id: str, cache_key: str, task: Callable[..., Any], *args: Any) -> Any:
        """The cached answer, else `task(*args)` computed in a worker under the per-key and total caps."""
        cached = self.answers.get(cache_key)
        if cached is not None:
            return cached
        self._claim(key_id)
        try:
            if self.workers == 0:
                result = await run_in_threadpool(task, *args)
            else:
                future = asyncio.get_running_loop().run_in_executor(self._pool(), task, *args)
                try:
                    result = await asyncio.wait_for(future, self.timeout_seconds)
                except asyncio.TimeoutError:
                    raise Problem(503, f"the computation took over {self.timeout_seconds:g} s", code="not_ready") from None
                except BrokenProcessPool:
                    self._reset()
                    raise Problem(503, "a heavy worker died; retry", code="not_ready",
                                  headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
        finally:
            self._release(key_id)
        self.answers.put(cache_key, result)
        return result

    def _reset(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers."""
        self._reset()


# Tasks: run in a worker (or inline), from plain arguments --------------------------------------------------------

_loaded: OrderedDict[str, Any] = OrderedDict()
_loaded_lock = threading.Lock()


def _artifact_state(path: str) -> dict[str, Any]:
    """The artifact at path with its rescorer and evaluation window, loaded once per process (last two kept)."""
    from recsys.preview import EvaluationWindow
    from recsys.reach import RankerRescorer
    from contracts.artifact import load_artifact

    with _loaded_lock:
        if path in _loaded:
            _loaded.move_to_end(path)
            return _loaded[path]
    artifact = load_artifact(path)
    state = {"artifact": artifact, "rescorer": RankerRescorer.from_artifact(artifact),
             "window": EvaluationWindow.from_artifact(artifact)}
    with _loaded_lock:
        _loaded[path] = state
        while len(_loaded) > 2:
            _loaded.popitem(last=False)
    return state


def _forecaster(path: str, weights: dict[str, Any], rules: dict[str, Any], reach: dict[str, Any]) -> Any:
    from contracts.config import OpsWeights, ReachConfig, RuleConfig
    from recsys.reach import ArtifactCandidates, ReachForecaster

    state = _artifact_state(path)
    art = state["artifact"]
    return ReachForecaster(ArtifactCandidates(art), OpsWeights.model_validate(weights), RuleConfig.model_validate(rules),
                           ReachConfig.model_validate(reach), art.products, state["rescorer"])


def reach_task(path: str, weights: dict[str, Any], rules: dict[str, Any], reach: dict[str, Any],
               product_ids: list[str]) -> dict[str, Any]:
    """The brand's reach forecast."""
    return _forecaster(path, weights, rules, reach).forecast(product_ids)


def what_if_task(path: str, weights: dict[str, Any], rules: dict[str, Any], reach: dict[str, Any],
                 product_ids: list[str], change: dict[str, Any]) -> dict[str, Any]:
    """The forecast before and after a change, with what moved each product where the forecaster can tell."""
    from recsys.reach import Change

    forecaster = _forecaster(path, weights, rules, reach)
    explained = getattr(forecaster, "what_if_explained", None)
    return (explained or forecaster.what_if)(product_ids, Change(**change))


def new_product_task(path: str, weights: dict[str, Any], rules: dict[str, Any], reach: dict[str, Any],
                     new: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """The forecast of a product nobody has bought yet."""
    from features.embeddings import get_embedder
    from contracts.config import FeatureConfig
    from recsys.reach import NewProduct

    embedder = get_embedder(FeatureConfig.model_validate(features))
    return _forecaster(path, weights, rules, reach).new_product(NewProduct(**new), embedder)


def preview_task(path: str, current: dict[str, Any], proposed: dict[str, Any], rules: dict[str, Any],
                 reach: dict[str, Any], curve_weight: str, curve_values: list[float] | None) -> dict[str, Any]:
    """The ops preview of proposed weights beside the current ones."""
    from contracts.config import OpsWeights, ReachConfig, RuleConfig
    from recsys.preview import preview
    from recsys.reach import ArtifactCandidates

    state = _artifact_state(path)
    return preview(ArtifactCandidates(state["artifact"]), OpsWeights.model_validate(current),
                   OpsWeights.model_validate(proposed), RuleConfig.model_validate(rules), ReachConfig.model_validate(reach),
                   curve_weight, curve_values, state["window"])
