"""The HTTP service: the app, its middleware, health, metrics and docs; the routes live in one router per concern
(picks, feedback, weights, admin, reach, console), all importing `serving.services` and none another.

`create_app(config, store=..., cache=..., holder=...)` builds an app; anything not passed is opened
from the settings (`QUANXUAN_DB_URL`, `QUANXUAN_CACHE_URL`, `QUANXUAN_ARTIFACT_DIR`) in the lifespan,
which also loads the newest complete artifact and starts the file watch. Every dependency is
reached through `serving.services.get_services`, so tests can override it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from contracts.config import Config
from serving import schemas
from serving.admin_routes import router as admin_router
from serving.artifacts import ArtifactHolder
from serving.console_routes import router as console_router
from serving.feedback_routes import router as feedback_router
from serving.limits import BodyLimitMiddleware
from serving.metrics import Metrics, MetricsMiddleware
from serving.picks_routes import router as picks_router
from serving.problems import install as install_problems
from serving.reach_routes import router as reach_router
from serving.routing import GuardedRoute
from serving.services import ERRORS, PrincipalDep, Services, ServicesDep, build_services
from serving.storage.base import Cache, Store
from serving.weights_routes import router as weights_router

log = logging.getLogger("quanxuan.serving")

SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key made by `quanxuan keys create` or POST /v1/admin/keys."},
    "bearer": {"type": "http", "scheme": "bearer", "description": "The same API key as `Authorization: Bearer <key>`."},
}


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

    for router in (picks_router, feedback_router, weights_router, admin_router, reach_router, console_router):
        app.include_router(router)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory: settings from QUANXUAN_CONFIG (a TOML/JSON file) and QUANXUAN_* variables."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app()
