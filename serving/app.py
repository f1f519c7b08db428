"""The HTTP service: picks with copy, feedback, ops weights, the advertising-law check, keys and health.

`create_app(config, store=..., cache=..., holder=...)` builds an app; anything not passed is opened
from the settings (`QUANXUAN_DB_URL`, `QUANXUAN_CACHE_URL`, `QUANXUAN_ARTIFACT_DIR`) in the lifespan,
which also loads the newest complete artifact and starts the file watch. Every dependency is
reached through `serving.services.get_services`, so tests can override it; the reach and console routers
share that module with this one and import neither.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Annotated, Any

import swagger_ui_bundle
from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from fastapi.openapi.utils import get_openapi

from contracts.config import Config, OpsWeights
from recsys.promo import adlaw
from serving import auth, schemas
from serving.artifacts import ArtifactHolder, Served
from serving.console_routes import router as console_router
from serving.feedback import check_events
from serving.limits import BodyLimitMiddleware
from serving.metrics import Metrics, MetricsMiddleware
from serving.picking import dumps
from serving.problems import Problem
from serving.problems import install as install_problems
from serving.reach_routes import router as reach_router
from serving.routing import GuardedRoute, authenticate, check_wait, identify, offload, require, requires
from serving.services import (
    ERRORS, PrincipalDep, Services, ServicesDep, build_services, served_now, today, weights_state,
)
from serving.storage.base import Cache, KeyRecord, Store, VersionConflict

log = logging.getLogger("quanxuan.serving")
JSON = "application/json"

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
    pick_date = served.artifact.manifest.get("pick_date") if served is not None else None
    if pick_date:
        anchors.append(date.fromisoformat(str(pick_date)))
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


SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key made by `quanxuan keys create` or POST /v1/admin/keys."},
    "bearer": {"type": "http", "scheme": "bearer", "description": "The same API key as `Authorization: Bearer <key>`."},
}


def _key_info(record: KeyRecord) -> schemas.KeyInfo:
    return schemas.KeyInfo(key_id=record.key_id, role=record.role, seller_id=record.seller_id, brand=record.brand,
                           name=record.name, rate_per_minute=record.rate_per_minute, created_at=record.created_at,
                           revoked_at=record.revoked_at)


def create_app(config: Config | None = None, *, store: Store | None = None, cache: Cache | None = None,
               holder: ArtifactHolder | None = None, watch: bool = True) -> FastAPI:
    """The FastAPI app; pass backends to share them (tests, several replicas on one DB), else they come from settings."""
    config = config or Config.load(os.environ.get("QUANXUAN_CONFIG") or None)
    settings = config.service
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services: Services = app.state.services
        if services.holder.current is None:
            services.holder.load_initial()
        if watch:
            services.holder.start_watch(settings.artifact_poll_seconds)
        if settings.prepare_picks:
            services.warmer.start()
        try:
            yield
        finally:
            services.holder.stop_watch()
            services.warmer.stop()
            services.heavy.close()
            services.metrics.process_exiting()
            for backend in services.owned:
                backend.close()

    app = FastAPI(
        title="Quanxuan 圈选",
        version="1",
        summary="What each WeChat group seller should push today, with the promo text to paste.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    # Every route checks its caller before reading the body, and reads bodies as strict JSON.
    app.router.route_class = GuardedRoute
    app.state.services = build_services(config, store, cache, holder, metrics)

    def openapi() -> dict[str, Any]:
        """The generated schema plus the API-key schemes, required by every operation that documents a 401."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if "401" in operation.get("responses", {}):
                        operation["security"] = [{"apiKey": []}, {"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_problems(app)

    # Swagger UI from its Python package, so /docs works on a machine with no internet.
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """Swagger UI over /openapi.json, with its scripts served by this service."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} — API",
                                   swagger_js_url="/docs/static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/static/swagger-ui.css",
                                   swagger_favicon_url="/docs/static/favicon-32x32.png")

    @app.get("/v1/me", response_model=schemas.Me, tags=["health"], responses=ERRORS)
    def me(principal: PrincipalDep) -> schemas.Me:
        """The calling key: its id, role and the seller or brand it is bound to (for clients to adapt their screens)."""
        return schemas.Me(key_id=principal.key_id, role=principal.role, seller_id=principal.seller_id,
                          brand=principal.brand)

    # Health ------------------------------------------------------------------------------------
    @app.get("/healthz", response_model=schemas.Health, tags=["health"])
    def healthz() -> schemas.Health:
        """Liveness: the process answers."""
        return schemas.Health(status="ok")

    @app.get("/readyz", response_model=schemas.Health, tags=["health"],
             responses={503: {"model": schemas.Health, "description": "No artifact loaded."}})
    def readyz(services: ServicesDep) -> Any:
        """Readiness: an artifact is loaded."""
        version = services.holder.version
        if version is None:
            return JSONResponse(schemas.Health(status="not ready", reason=services.holder.last_error).model_dump(),
                                status_code=503)
        return schemas.Health(status="ready", artifact_version=version)

    @app.get("/metrics", tags=["health"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}})
    def prometheus() -> Response:
        """Prometheus metrics: request counts and latencies by route, artifact version, cache and feedback counters."""
        return Response(metrics.render(), media_type=metrics.content_type)

    # Picks -------------------------------------------------------------------------------------
    @app.get("/v1/groups/{group_id}/picks", response_model=schemas.GroupPicks, tags=["picks"],
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
            the_day, the_k = picks_query(request, config.rules.top_k, served)
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

    @app.get("/v1/sellers/{seller_id}/picks", response_model=schemas.SellerPicks, tags=["picks"],
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
        the_day, the_k = picks_query(request, config.rules.top_k, served)
        weights = services.weights.fresh() or await run_in_threadpool(services.weights.current)
        keys = [services.picks.cache_key(served, g, the_day, the_k, weights) for g in group_ids]
        parts = await offload(services.cache.blocking, services.picks.cached_many, keys)
        if any(part is None for part in parts):
            parts = await run_in_threadpool(services.picks.complete, served, group_ids, the_day, the_k, weights, keys, parts)
        head = dumps({"seller_id": seller_id, "date": the_day.isoformat()})[:-1]
        return Response(head + b',"groups":[' + b",".join(parts) + b"]}", media_type=JSON)

    # Feedback ----------------------------------------------------------------------------------
    def _feedback(table: str, batch: schemas.FeedbackBatch, principal: auth.Principal, services: Services) -> Any:
        if len(batch.events) > settings.max_batch_events:
            raise Problem(413, f"at most {settings.max_batch_events} events per batch", code="batch_too_large")
        served = served_now(services)
        checked = check_events(
            table, batch.events, served.group_seller, served.product_rows.keys(), served.artifact.group_ids(),
            lambda seller: auth.may_write_feedback(principal, seller),
        )
        if checked.foreign:
            raise Problem(403, f"events {checked.foreign[:20]} are for groups of another seller; nothing stored")
        if checked.rejected and not batch.partial:
            services.metrics.feedback.labels(table, "batch_refused").inc(len(batch.events))
            raise Problem(422, f"{len(checked.rejected)} invalid event(s); nothing stored "
                          "(send partial=true to keep the valid ones)", code="invalid_events",
                          rejected=[r.model_dump() for r in checked.rejected])
        for event in checked.valid:
            event["submitted_by"] = principal.key_id
        stored = services.store.add_events(table, checked.valid)  # type: ignore[arg-type]
        duplicates = len(checked.valid) - len(stored) + checked.repeats
        services.metrics.feedback.labels(table, "stored").inc(len(stored))
        services.metrics.feedback.labels(table, "duplicate").inc(duplicates)
        services.metrics.feedback.labels(table, "rejected").inc(len(checked.rejected))
        return schemas.FeedbackResult(received=len(batch.events), stored=len(stored), duplicates=duplicates,
                                      rejected=checked.rejected)

    feedback_responses: dict[int | str, dict[str, Any]] = {
        **ERRORS, 413: {"description": "Body or batch too large."},
        422: {"model": schemas.FeedbackError, "description": "Some events are invalid and partial was false."},
        503: {"description": "No artifact loaded (events cannot be checked)."},
    }

    @app.post("/v1/feedback/pushes", response_model=schemas.FeedbackResult, tags=["feedback"], responses=feedback_responses)
    @requires("feedback:write")
    def feedback_pushes(batch: schemas.PushBatch, principal: PrincipalDep, services: ServicesDep) -> Any:
        """Store push events from a seller app, idempotent by event_id."""
        return _feedback("pushes", batch, principal, services)

    @app.post("/v1/feedback/orders", response_model=schemas.FeedbackResult, tags=["feedback"], responses=feedback_responses)
    @requires("feedback:write")
    def feedback_orders(batch: schemas.OrderBatch, principal: PrincipalDep, services: ServicesDep) -> Any:
        """Store order events from a seller app, idempotent by event_id (and order_id)."""
        return _feedback("orders", batch, principal, services)

    # Ops weights -------------------------------------------------------------------------------
    @app.get("/v1/ops/weights", response_model=schemas.WeightsState, tags=["ops"], responses=ERRORS)
    @requires("weights:read")
    def get_weights(principal: PrincipalDep, services: ServicesDep) -> schemas.WeightsState:
        """The default weight profile and per-seller-type overrides in force."""
        return weights_state(services)

    @app.put("/v1/ops/weights", response_model=schemas.WeightsState, tags=["ops"],
             responses={**ERRORS, 409: {"description": "The weights moved since `version` (code conflict)."}})
    @requires("weights:write")
    def put_weights(update: schemas.WeightsUpdate, principal: PrincipalDep, services: ServicesDep) -> schemas.WeightsState:
        """Replace the ops weights; effective at once on every replica (after state_refresh_seconds), audited with
        the reason. With `version`, a change made meanwhile is refused (409); a change to the weights in force is a
        no-op (no new version, no audit entry)."""
        new = OpsWeights.model_validate(update.model_dump(exclude={"version", "reason"})).model_dump(mode="json")
        actor = principal.key_id + (f" ({principal.name})" if principal.name else "")
        services.weights.invalidate()
        state = weights_state(services)
        if update.version is not None and update.version != state.version:
            raise Problem(409, f"the weights are at version {state.version}, not {update.version}; reload and retry",
                          code="conflict", current_version=state.version)
        if new == state.weights.model_dump(mode="json"):
            return state
        try:
            services.store.set_weights(new, actor, default=config.weights.model_dump(mode="json"),
                                       reason=update.reason.strip(), expected_version=update.version)
        except VersionConflict as exc:
            raise Problem(409, f"the weights are at version {exc.current}, not {exc.expected}; reload and retry",
                          code="conflict", current_version=exc.current) from None
        services.weights.invalidate()
        return weights_state(services)

    @app.get("/v1/ops/weights/audit", response_model=schemas.AuditLog, tags=["ops"], responses=ERRORS)
    @requires("weights:read")
    def weights_audit(principal: PrincipalDep, services: ServicesDep,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> schemas.AuditLog:
        """Every weight change, newest first: who, when, why, old and new."""
        entries = services.store.audit(limit)
        return schemas.AuditLog(entries=[schemas.AuditRecord(id=e.id, at=e.at, actor=e.actor, version=e.version,
                                                             old=e.old, new=e.new, reason=e.reason, reverts=e.reverts)
                                         for e in entries])

    # Copy check --------------------------------------------------------------------------------
    @app.post("/v1/copy/check", response_model=schemas.CopyCheckResult, tags=["copy"], responses=ERRORS)
    @requires("copy:check")
    def copy_check(request: schemas.CopyCheckRequest, principal: PrincipalDep) -> schemas.CopyCheckResult:
        """Check any text against the advertising law: flagged spans with categories and suggested rewrites."""
        hits = adlaw.check(request.text)
        return schemas.CopyCheckResult(clean=not hits, hits=[
            schemas.AdlawHit(start=h.start, end=h.end, term=h.term, category=h.category,
                             category_label=adlaw.category_label(h.category), article=h.article,
                             suggestion=h.suggestion)
            for h in hits
        ])

    # Admin -------------------------------------------------------------------------------------
    @app.post("/v1/admin/keys", response_model=schemas.KeyCreated, status_code=201, tags=["admin"], responses=ERRORS)
    @requires("keys:manage")
    def create_key(body: schemas.KeyCreate, principal: PrincipalDep, services: ServicesDep) -> schemas.KeyCreated:
        """Create an API key; the key itself is in this answer only."""
        try:
            key, record = auth.create_key(services.store, settings.key_pepper.get_secret_value(), body.role, body.seller_id, body.brand,
                                          body.name, body.rate_per_minute)
        except ValueError as exc:
            raise Problem(422, str(exc)) from None
        return schemas.KeyCreated(key=key, **_key_info(record).model_dump())

    @app.get("/v1/admin/keys", response_model=schemas.KeyList, tags=["admin"], responses=ERRORS)
    @requires("keys:manage")
    def list_keys(principal: PrincipalDep, services: ServicesDep) -> schemas.KeyList:
        """Every key, revoked ones included; never the secrets."""
        return schemas.KeyList(keys=[_key_info(r) for r in services.store.keys()])

    @app.delete("/v1/admin/keys/{key_id}", status_code=204, tags=["admin"],
                responses={**ERRORS, 404: {"description": "No active key with this id."}})
    @requires("keys:manage")
    def revoke_key(key_id: Annotated[str, Path(max_length=64)], principal: PrincipalDep, services: ServicesDep) -> Response:
        """Revoke a key (at once on this replica, within state_refresh_seconds on the others)."""
        if not services.store.revoke_key(key_id):
            raise Problem(404, f"no active key {key_id!r}")
        services.keys.forget(key_id)
        return Response(status_code=204)

    @app.post("/v1/admin/reload", response_model=schemas.ReloadResult, tags=["admin"], responses=ERRORS)
    @requires("artifact:reload")
    def reload(principal: PrincipalDep, services: ServicesDep) -> schemas.ReloadResult:
        """Swap to the newest complete artifact; a corrupt one is refused and the current one keeps serving."""
        outcome = services.holder.reload(force=True)
        return schemas.ReloadResult(swapped=outcome.swapped, version=outcome.version,
                                    previous_version=outcome.previous_version, reason=outcome.reason)

    app.include_router(reach_router)
    app.include_router(console_router)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory: settings from QUANXUAN_CONFIG (a TOML/JSON file) and QUANXUAN_* variables."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app()
