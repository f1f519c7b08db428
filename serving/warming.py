"""Today's picks prepared before sellers ask: the first request of a group's day is then a cache read.

A background thread renders every group's picks (default k, today in Asia/Shanghai, the weights in force) once
per (artifact version, day, weights) and starts over when any of the three changes: a new artifact, midnight, or
an ops change of weights. Groups go seller by seller, so each seller's copies of the day vary across her groups
as they do when she asks. A group already in the cache (rendered by a request, or by another replica sharing
Redis) is skipped, so the copy a seller has seen is never rendered again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from serving.polling import Poller

log = logging.getLogger("quanxuan.serving")


class PicksWarmer:
    """Prepares the picks of every group for the current (artifact, day, weights) in a daemon thread."""

    def __init__(self, holder: Any, weights: Any, picks: Any, top_k: int, today: Callable[[], date],
                 metrics: Any = None, poll_seconds: float = 5.0, pause_seconds: float = 0.0) -> None:
        self.holder = holder
        self.weights = weights
        self.picks = picks
        self.top_k = top_k
        self.today = today
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        # A pause between groups hands the GIL to request threads: the picks path comes first.
        self.pause_seconds = pause_seconds
        self.prepared = 0
        self.done_for: str | None = None
        self._poller = Poller("quanxuan-picks-warmer", self.prepare_once, "preparing picks")

    def _state(self) -> tuple[str, Any, date, Any] | None:
        """(tag, served artifact, day, weights snapshot) of what should be prepared now, or None without an artifact."""
        served = self.holder.current
        if served is None:
            return None
        snapshot = self.weights.current()
        day = self.today()
        tag = f"{served.version}|{day.isoformat()}|{json.dumps(snapshot.hashes, sort_keys=True)}"
        return tag, served, day, snapshot

    def prepare_once(self) -> int:
        """Render what the cache lacks for the current state; returns the groups rendered (0 when up to date)."""
        state = self._state()
        if state is None or state[0] == self.done_for:
            return 0
        tag, served, day, snapshot = state
        if self.metrics is not None:
            self.metrics.picks_ready.set(0)
        rendered = 0
        for seller in sorted(served.seller_groups):
            for group_id in served.seller_groups[seller]:
                if self._poller.stopping:
                    return rendered
                key = self.picks.cache_key(served, group_id, day, self.top_k, snapshot)
                if self.picks.cache.get(key) is None:
                    self.picks.build(served, group_id, day, self.top_k, snapshot, key)
                    rendered += 1
                    self.prepared += 1
                    if self.metrics is not None:
                        self.metrics.picks_prepared.inc()
                    if self.pause_seconds:
                        time.sleep(self.pause_seconds)
            current = self._state()
            if current is None or current[0] != tag:
                return rendered  # the artifact, day or weights moved: start over for the new state
        self.done_for = tag
        if self.metrics is not None:
            self.metrics.picks_ready.set(1)
        log.info("prepared picks of %d groups for %s", rendered, tag)
        return rendered

    def start(self) -> None:
        """Run `prepare_once` now and every `poll_seconds` in a daemon thread."""
        self._poller.start(self.poll_seconds, first_now=True)

    def stop(self) -> None:
        """Stop the thread."""
        self._poller.stop()
