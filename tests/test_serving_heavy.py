"""Heavy answers run off the picks path: in worker processes, capped per key and in all, cached per request."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from serving.heavy import HeavyPool, preview_task, reach_task
from serving.problems import Problem
from serving.testing import write_small_artifact

GATE = threading.Event()


def _blocked(value: int) -> int:
    GATE.wait(10)
    return value


def _pid(_: int) -> int:
    return os.getpid()


def test_one_key_gets_busy_past_its_cap_while_others_go_on():
    async def scenario() -> list[object]:
        pool = HeavyPool(workers=0, per_key=1, queue=1, timeout_seconds=30)
        GATE.clear()
        first = asyncio.ensure_future(pool.run("brand-a", "a1", _blocked, 1))
        await asyncio.sleep(0.1)
        with pytest.raises(Problem) as busy:
            await pool.run("brand-a", "a2", _blocked, 2)
        other = asyncio.ensure_future(pool.run("brand-b", "b1", _blocked, 3))
        await asyncio.sleep(0.1)
        # Two in flight (one running, one queued): a third key is refused until one finishes.
        with pytest.raises(Problem) as full:
            await pool.run("brand-c", "c1", _blocked, 4)
        GATE.set()
        done = [await first, await other]
        assert pool.in_flight() == 0
        return [busy.value, full.value, done]

    busy, full, done = asyncio.run(scenario())
    assert (busy.status_code, busy.code, busy.headers["Retry-After"]) == (429, "busy", "5")
    assert full.code == "busy" and done == [1, 3]


def test_answers_are_cached_per_request_key():
    async def scenario() -> tuple[int, int]:
        pool = HeavyPool(workers=0, per_key=1, queue=0, timeout_seconds=30)
        calls = []

        def task(x: int) -> int:
            calls.append(x)
            return x * 2

        first = await pool.run("k", "same", task, 21)
        second = await pool.run("k", "same", task, 99)  # the cached answer, not a new computation
        return first + second, len(calls)

    assert asyncio.run(scenario()) == (84, 1)


def test_tasks_run_in_another_process_and_match_the_inline_answer(tmp_path):
    artifact = write_small_artifact(tmp_path / "artifacts")
    from contracts.config import Config

    cfg = Config()
    inputs = [str(artifact), cfg.weights.model_dump(mode="json"), cfg.rules.model_dump(mode="json"),
              cfg.reach.model_dump(mode="json")]
    ids = ["P0", "P1"]

    preview_args = (str(artifact), inputs[1], {**inputs[1], "default": {**inputs[1]["default"], "earnings": 2.0}},
                    inputs[2], inputs[3], "earnings", None)

    async def scenario() -> tuple[int, dict, dict, dict]:
        pool = HeavyPool(workers=1, per_key=1, queue=0, timeout_seconds=120)
        try:
            pid = await pool.run("k", "pid", _pid, 0)
            remote = await pool.run("k", "reach", reach_task, *inputs, ids)
            preview = await pool.run("k", "preview", preview_task, *preview_args)
        finally:
            pool.close()
        return pid, remote, preview, reach_task(*inputs, ids)

    pid, remote, preview, inline = asyncio.run(scenario())
    assert pid != os.getpid()
    assert remote == inline
    assert preview == preview_task(*preview_args)


def test_a_slow_task_answers_503_after_the_timeout():
    async def scenario() -> Problem:
        pool = HeavyPool(workers=1, per_key=1, queue=0, timeout_seconds=0.5)
        try:
            with pytest.raises(Problem) as slow:
                await pool.run("k", "slow", time.sleep, 5)
            return slow.value
        finally:
            pool.close()

    problem = asyncio.run(scenario())
    assert problem.status_code == 503
