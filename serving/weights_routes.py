"""Ops weights: the profile in force, its audited changes (optimistic by version, with a reason)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from contracts.config import OpsWeights
from serving import schemas
from serving.problems import Problem
from serving.routing import GuardedRoute, requires
from serving.services import ERRORS, PrincipalDep, ServicesDep, weights_state
from serving.storage.base import VersionConflict

router = APIRouter(route_class=GuardedRoute)

@router.get("/v1/ops/weights", response_model=schemas.WeightsState, tags=["ops"], responses=ERRORS)
@requires("weights:read")
def get_weights(principal: PrincipalDep, services: ServicesDep) -> schemas.WeightsState:
    """The default weight profile and per-seller-type overrides in force."""
    return weights_state(services)

@router.put("/v1/ops/weights", response_model=schemas.WeightsState, tags=["ops"],
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
        services.store.set_weights(new, actor, default=services.config.weights.model_dump(mode="json"),
                                   reason=update.reason.strip(), expected_version=update.version)
    except VersionConflict as exc:
        raise Problem(409, f"the weights are at version {exc.current}, not {exc.expected}; reload and retry",
                      code="conflict", current_version=exc.current) from None
    services.weights.invalidate()
    return weights_state(services)

@router.get("/v1/ops/weights/audit", response_model=schemas.AuditLog, tags=["ops"], responses=ERRORS)
@requires("weights:read")
def weights_audit(principal: PrincipalDep, services: ServicesDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> schemas.AuditLog:
    """Every weight change, newest first: who, when, why, old and new."""
    entries = services.store.audit(limit)
    return schemas.AuditLog(entries=[schemas.AuditRecord(id=e.id, at=e.at, actor=e.actor, version=e.version,
                                                         old=e.old, new=e.new, reason=e.reason, reverts=e.reverts)
                                     for e in entries])
