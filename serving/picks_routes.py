"""Picks: a group's ranked picks with copy, and every group of a seller in one call (the hot path of the service)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from serving import auth, schemas
from serving.artifacts import Served
from serving.picking import dumps
from serving.problems import Problem
from serving.routing import GuardedRoute, authenticate, check_wait, identify, offload, require, requires
from serving.services import ERRORS, Services, served_now, today

JSON = "application/json"
router = APIRouter(route_class=GuardedRoute)

PICKS_QUERY = [
    {"name": "date", "in": "query", "required": False, "description": "Day of the picks (Asia/Shanghai); default today.",
     "schema": {"type": "string", "format": "date"}, "example": "2024-05-01"},
    {"name": "k", "in": "query", "required": False, "description": "Number of picks, 1–200; default rules.top_k.",
     "schema": {"type": "integer", "minimum": 1, "maximum": 200}, "example": 10},
]


# Picks are for the days around today or around the day the artifact was made for: further days would only
# render uncached copy and fill the copy history with days nobody will see.
PICK_DAYS_AROUND = 7
_K_PATTERN = re.compile(r"[0-9]{1,3}")


def check_day(day: date, served: Served | None) -> date:
    """The day if picks may be asked for it, else 422 naming the days that may."""
    anchors = [today()]
    if served is not None and served.pick_day is not None:
        anchors.append(served.pick_day)
    if any(abs((day - anchor).days) <= PICK_DAYS_AROUND for anchor in anchors):
        return day
    spans = " or ".join(f"{a - timedelta(days=PICK_DAYS_AROUND)}…{a + timedelta(days=PICK_DAYS_AROUND)}" for a in anchors)
    raise Problem(422, f"date: {day.isoformat()} is too far from today and from the artifact's day (use {spans})",
                  code="invalid_request")


def picks_query(request: Request, default_k: int, served: Served | None) -> tuple[date, int]:
    """`date` and `k` of a picks request (documented in PICKS_QUERY); 422 naming the bad one."""
    params = request.query_params
    raw_day, raw_k = params.get("date"), params.get("k")
    try:
        day = date.fromisoformat(raw_day) if raw_day else today()
    except ValueError:
        raise Problem(422, f"date: {raw_day!r} is not a date (YYYY-MM-DD)") from None
    day = check_day(day, served)
    if raw_k is None:
        return day, default_k
    # ASCII digits only: str.isdigit also accepts ² and other scripts' digits, which int() then refuses.
    if not _K_PATTERN.fullmatch(raw_k) or not 1 <= int(raw_k) <= 200:
        raise Problem(422, f"k: {raw_k!r} is not an integer from 1 to 200")
    return day, int(raw_k)


@router.get("/v1/groups/{group_id}/picks", response_model=schemas.GroupPicks, tags=["picks"],
         openapi_extra={"parameters": PICKS_QUERY},
         responses={**ERRORS, 404: {"description": "Unknown group."}, 422: {"description": "Bad date or k."},
                    503: {"description": "No artifact loaded."}})
async def group_picks(group_id: Annotated[str, Path(max_length=128, examples=["G1"])], request: Request) -> Response:
    """A group's ranked picks with component scores, reasons and promo copy, blended with the current ops weights."""
    # The hot path, kept lean on purpose: async, the key checked and the query read by hand (FastAPI's
    # dependency and parameter machinery costs more than a cached answer), and only store, Redis and
    # rendering work sent to the thread pool.
    principal = await identify(request)
    services: Services = request.app.state.services
    try:
        require(principal, "picks:read")
        served = served_now(services)
        the_day, the_k = picks_query(request, services.config.rules.top_k, served)
        seller = served.group_seller(group_id)
        # A seller hears the same for another seller's group as for no group: ids of others stay unknown.
        if seller is None or not auth.may_read_seller(principal, seller):
            raise Problem(404, f"unknown group {group_id!r}", code="unknown_group")
    except Problem:
        # Refused requests spend a token too (a 429 then takes precedence over the refusal).
        check_wait(await offload(services.cache.blocking, services.limiter.wait_seconds, principal))
        raise
    weights = services.weights.fresh() or await run_in_threadpool(services.weights.current)
    key = services.picks.cache_key(served, group_id, the_day, the_k, weights)
    # The token and the cached answer in one call: a single thread hop when the cache is Redis.
    wait, body = await offload(services.cache.blocking, services.picks.limited_lookup, services.limiter, principal, key)
    check_wait(wait)
    if body is None:
        body = await run_in_threadpool(services.picks.build, served, group_id, the_day, the_k, weights, key)
    return Response(body, media_type=JSON)

@router.get("/v1/sellers/{seller_id}/picks", response_model=schemas.SellerPicks, tags=["picks"],
         openapi_extra={"parameters": PICKS_QUERY},
         responses={**ERRORS, 404: {"description": "Unknown seller."}, 422: {"description": "Bad date or k."},
                    503: {"description": "No artifact loaded."}})
@requires("picks:read")
async def seller_picks(seller_id: Annotated[str, Path(max_length=128, examples=["S0"])], request: Request) -> Response:
    """Picks of every group of a seller in one call."""
    # Lean like group_picks: cached answers are joined without a thread hop; only misses render in the pool.
    principal = await authenticate(request)
    services: Services = request.app.state.services
    if not auth.may_read_seller(principal, seller_id):
        raise Problem(403, "a seller key reads only its own seller's groups")
    served = served_now(services)
    group_ids = served.seller_groups.get(seller_id)
    if not group_ids:
        raise Problem(404, f"unknown seller {seller_id!r}: no groups in artifact {served.version}")
    the_day, the_k = picks_query(request, services.config.rules.top_k, served)
    weights = services.weights.fresh() or await run_in_threadpool(services.weights.current)
    keys = [services.picks.cache_key(served, g, the_day, the_k, weights) for g in group_ids]
    parts = await offload(services.cache.blocking, services.picks.cached_many, keys)
    if any(part is None for part in parts):
        parts = await run_in_threadpool(services.picks.complete, served, group_ids, the_day, the_k, weights, keys, parts)
    head = dumps({"seller_id": seller_id, "date": the_day.isoformat()})[:-1]
    return Response(head + b',"groups":[' + b",".join(parts) + b"]}", media_type=JSON)
