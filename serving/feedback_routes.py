"""Feedback from seller apps: push and order events, validated like file rows, stored once per seller's id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving import auth, schemas
from serving.feedback import check_events
from serving.problems import Problem
from serving.routing import GuardedRoute, requires
from serving.services import ERRORS, PrincipalDep, Services, ServicesDep, served_now

router = APIRouter(route_class=GuardedRoute)

def _feedback(table: str, batch: schemas.FeedbackBatch, principal: auth.Principal, services: Services) -> Any:
    if len(batch.events) > services.config.service.max_batch_events:
        raise Problem(413, f"at most {services.config.service.max_batch_events} events per batch", code="batch_too_large")
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

@router.post("/v1/feedback/pushes", response_model=schemas.FeedbackResult, tags=["feedback"], responses=feedback_responses)
@requires("feedback:write")
def feedback_pushes(batch: schemas.PushBatch, principal: PrincipalDep, services: ServicesDep) -> Any:
    """Store push events from a seller app, idempotent by event_id."""
    return _feedback("pushes", batch, principal, services)

@router.post("/v1/feedback/orders", response_model=schemas.FeedbackResult, tags=["feedback"], responses=feedback_responses)
@requires("feedback:write")
def feedback_orders(batch: schemas.OrderBatch, principal: PrincipalDep, services: ServicesDep) -> Any:
    """Store order events from a seller app, idempotent by event_id (and order_id)."""
    return _feedback("orders", batch, principal, services)
