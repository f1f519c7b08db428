"""Admin: API keys (made, listed, revoked; never shown twice), the artifact reload, and the copy check any key may use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from recsys.promo import adlaw
from serving import auth, schemas
from serving.problems import Problem
from serving.routing import GuardedRoute, requires
from serving.services import ERRORS, PrincipalDep, ServicesDep
from serving.storage.base import KeyRecord

router = APIRouter(route_class=GuardedRoute)


def _key_info(record: KeyRecord) -> schemas.KeyInfo:
    return schemas.KeyInfo(key_id=record.key_id, role=record.role, seller_id=record.seller_id, brand=record.brand,
                           name=record.name, rate_per_minute=record.rate_per_minute, created_at=record.created_at,
                           revoked_at=record.revoked_at)


@router.post("/v1/copy/check", response_model=schemas.CopyCheckResult, tags=["copy"], responses=ERRORS)
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


@router.post("/v1/admin/keys", response_model=schemas.KeyCreated, status_code=201, tags=["admin"], responses=ERRORS)
@requires("keys:manage")
def create_key(body: schemas.KeyCreate, principal: PrincipalDep, services: ServicesDep) -> schemas.KeyCreated:
    """Create an API key; the key itself is in this answer only."""
    try:
        key, record = auth.create_key(services.store, services.config.service.key_pepper.get_secret_value(), body.role, body.seller_id, body.brand,
                                      body.name, body.rate_per_minute)
    except ValueError as exc:
        raise Problem(422, str(exc)) from None
    return schemas.KeyCreated(key=key, **_key_info(record).model_dump())

@router.get("/v1/admin/keys", response_model=schemas.KeyList, tags=["admin"], responses=ERRORS)
@requires("keys:manage")
def list_keys(principal: PrincipalDep, services: ServicesDep) -> schemas.KeyList:
    """Every key, revoked ones included; never the secrets."""
    return schemas.KeyList(keys=[_key_info(r) for r in services.store.keys()])

@router.delete("/v1/admin/keys/{key_id}", status_code=204, tags=["admin"],
            responses={**ERRORS, 404: {"description": "No active key with this id."}})
@requires("keys:manage")
def revoke_key(key_id: Annotated[str, Path(max_length=64)], principal: PrincipalDep, services: ServicesDep) -> Response:
    """Revoke a key (at once on this replica, within state_refresh_seconds on the others)."""
    if not services.store.revoke_key(key_id):
        raise Problem(404, f"no active key {key_id!r}")
    services.keys.forget(key_id)
    return Response(status_code=204)

@router.post("/v1/admin/reload", response_model=schemas.ReloadResult, tags=["admin"], responses=ERRORS)
@requires("artifact:reload")
def reload(principal: PrincipalDep, services: ServicesDep) -> schemas.ReloadResult:
    """Swap to the newest complete artifact; a corrupt one is refused and the current one keeps serving."""
    outcome = services.holder.reload(force=True)
    return schemas.ReloadResult(swapped=outcome.swapped, version=outcome.version,
                                previous_version=outcome.previous_version, reason=outcome.reason)
