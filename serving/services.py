"""What every route of the service shares: the services built once per app, the caller and the artifact serving now.

Routes (serving.app, serving.reach_routes, serving.console_routes) import this module and none imports another,
so the app includes the routers without an import circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from contracts.schema import TIMEZONE
from contracts.config import Config
from serving import auth, schemas
from serving.artifacts import ArtifactHolder, Served
from serving.heavy import HeavyPool
from serving.metrics import Metrics
from serving.picking import PicksService
from serving.problems import Problem
from serving.routing import authenticate
from serving.state import WeightsSource
from serving.storage.base import Cache, Store
from serving.storage.factory import open_cache, open_store
from serving.warming import PicksWarmer

TZ = ZoneInfo(TIMEZONE)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, malformed, unknown or revoked API key."},
    403: {"description": "The key's role or tenant does not cover this resource."},
    429: {"description": "The key's rate limit is exhausted; see Retry-After."},
}


@dataclass
class Services:
    """Everything a request handler needs; built once per app."""

    config: Config
    store: Store
    cache: Cache
    holder: ArtifactHolder
    metrics: Metrics
    keys: auth.KeyResolver
    limiter: auth.RateLimiter
    weights: WeightsSource
    picks: PicksService
    heavy: HeavyPool
    warmer: PicksWarmer
    owned: list[Any] = field(default_factory=list)  # backends this app opened and must close


def build_services(config: Config, store: Store | None = None, cache: Cache | None = None,
                   holder: ArtifactHolder | None = None, metrics: Metrics | None = None) -> Services:
    """Open whatever was not passed in, from the settings."""
    s = config.service
    pepper = s.key_pepper.get_secret_value()
    if not pepper:
        raise ValueError("QUANXUAN_KEY_PEPPER is empty: set the server-side secret of the API-key hashes "
                         "(the same for every replica and for `quanxuan keys`); `quanxuan demo` makes one for you")
    metrics = metrics or Metrics()
    owned: list[Any] = []
    if store is None:
        store = open_store(s.db_url)
        owned.append(store)
    if cache is None:
        cache = open_cache(s.cache_url)
        owned.append(cache)
    if holder is None:
        holder = ArtifactHolder(s.artifact_dir)
    holder.on_swap = lambda served: metrics.artifact_swapped(served.version)
    holder.on_refuse = lambda reason: metrics.reloads.labels("refused").inc()
    if holder.current is not None:
        metrics.artifact_swapped(holder.current.version)
    picks = PicksService(store, cache, config.rules, config.copy_, s.picks_cache_seconds, metrics)
    weights = WeightsSource(store, config.weights, s.state_refresh_seconds)
    return Services(
        config=config, store=store, cache=cache, holder=holder, metrics=metrics,
        keys=auth.KeyResolver(store, pepper, s.state_refresh_seconds),
        limiter=auth.RateLimiter(cache, s.rate_limit_per_minute),
        weights=weights,
        picks=picks,
        warmer=PicksWarmer(holder, weights, picks, config.rules.top_k, today, metrics),
        heavy=HeavyPool(s.heavy_workers, s.heavy_per_key, s.heavy_queue, s.heavy_timeout_seconds),
        owned=owned,
    )


async def get_services(request: Request) -> Services:
    """The app's services, built by create_app from what it was given (stores, cache, holder) and the settings."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


PrincipalDep = Annotated[auth.Principal, Depends(authenticate)]


def served_now(services: Services) -> Served:
    """The artifact serving now; 503 before one is loaded."""
    served = services.holder.current
    if served is None:
        raise Problem(503, "no artifact loaded yet")
    return served


def today() -> date:
    """Today in Asia/Shanghai, the day picks are for."""
    return datetime.now(TZ).date()


def weights_state(services: Services) -> schemas.WeightsState:
    """The ops weights in force with their version, as the API shows them."""
    snapshot = services.weights.current()
    stored = snapshot.stored
    return schemas.WeightsState(weights=snapshot.weights, version=stored.version if stored else 0,
                                updated_at=stored.updated_at if stored else None,
                                updated_by=stored.updated_by if stored else None, hashes=snapshot.hashes)
