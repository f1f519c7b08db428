"""Prometheus metrics of one app instance: requests, latencies, the artifact version, caches, feedback.

Each app gets its own registry, so tests can build many apps in one process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's collectors in a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        # With several worker processes (PROMETHEUS_MULTIPROC_DIR set before start), each writes its values to
        # files there and a scrape adds them up, so no counter seems to go backwards between workers.
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.requests = Counter("quanxuan_http_requests", "HTTP requests by route template and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("quanxuan_http_request_duration_seconds", "Time to answer, by route template.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.artifact = Gauge("quanxuan_artifact_info", "1 for the artifact version now serving.", ["version"],
                              registry=self.registry, multiprocess_mode="livemax")
        self.artifact_loaded = Gauge("quanxuan_artifact_loaded_timestamp_seconds", "When the serving artifact was loaded.",
                                     registry=self.registry, multiprocess_mode="livemax")
        self._version: str | None = None
        self.reloads = Counter("quanxuan_artifact_reloads", "Artifact load attempts by outcome.", ["outcome"],
                               registry=self.registry)
        self.picks_cache = Counter("quanxuan_picks_cache", "Rendered-picks cache look-ups.", ["result"], registry=self.registry)
        # Looked up once: the hit counter is touched on every picks request.
        self.picks_hit = self.picks_cache.labels("hit")
        self.picks_miss = self.picks_cache.labels("miss")
        self.picks_prepared = Counter("quanxuan_picks_prepared", "Groups whose picks of the day were rendered ahead.",
                                      registry=self.registry)
        self.picks_ready = Gauge("quanxuan_picks_prepared_ready", "1 once today's picks are prepared for the artifact "
                                 "and weights in force.", registry=self.registry, multiprocess_mode="livemin")
        self.feedback = Counter("quanxuan_feedback_events", "Feedback events by table and outcome.", ["table", "outcome"],
                                registry=self.registry)

    def artifact_swapped(self, version: str) -> None:
        """Mark the new version as the one serving."""
        if self.multiprocess and self._version is not None:
            self.artifact.labels(self._version).set(0)  # clear() cannot reach values already in the files
        self.artifact.clear()
        self.artifact.labels(version).set(1)
        self._version = version
        self.artifact_loaded.set(time.time())
        self.reloads.labels("loaded").inc()

    def render(self) -> bytes:
        """The text exposition format (summed over worker processes in multiprocess mode)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def process_exiting(self) -> None:
        """Drop this process's live gauges from the shared files (multiprocess mode)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (not the raw path, to bound label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Labelled children looked up once per (method, route, status): labels() costs more than the count.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            # The method is the client's to invent: any but the standard ones would grow the exposition unbounded.
            method = scope.get("method", "")
            method = method if method in HTTP_METHODS else "other"
            children = self._children.get((method, template, status))
            if children is None:
                children = (self.metrics.requests.labels(method, template, str(status)),
                            self.metrics.latency.labels(method, template))
                if len(self._children) < 10_000:
                    self._children[(method, template, status)] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
