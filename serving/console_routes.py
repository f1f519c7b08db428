"""The web console: its pages and static files, and the API calls only the console needs (included by `serving.app`).

- `GET /v1/console/limits` — the bounds of every number the console lets a person type (weights, what-if,
  new product, reasons), read from the very models the API validates with, so page and API agree;
- `GET /v1/console/status` — artifact age and data window, the last run's headline metrics beside its
  baselines, feedback received per day, the weights version;
- `GET /v1/console/groups` — the groups a key may open in the group view (a seller: her own);
- `POST /v1/ops/weights/audit/{entry_id}/revert` — take back one audit entry's change.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts.schema import SELLER_TYPES
from contracts.config import BlendWeights, OpsWeights
from serving import auth, schemas
from serving.services import ERRORS, TZ, PrincipalDep, Services, ServicesDep, served_now, today, weights_state
from serving.problems import Problem
from recsys.reach import brand_products
from serving.reach_routes import NewProductRequest, WhatIf
from serving.routing import GuardedRoute, requires
from serving.storage.base import VersionConflict

CONSOLE = FilePath(__file__).parent / "console"
PAGES = {"ops": "ops.html", "brand": "brand.html", "group": "group.html", "status": "status.html"}
STATIC = {"console.css": "text/css", "console.js": "text/javascript", "charts.js": "text/javascript"}
FEEDBACK_DAYS = 14
# Headline metrics of the evaluation (training.evaluate): the pipeline against its baselines.
HEADLINE = ("ndcg@10", "recall@10", "hr@10", "commission_realised@10")
OURS = ("ranker", "ranker_conversion", "ranker_ops", "candidates")

router = APIRouter(route_class=GuardedRoute)


# Limits ----------------------------------------------------------------------------------------


def _bounds(model: type[BaseModel], name: str) -> dict[str, Any]:
    """min / max (and whether each is exclusive) and the default of a model field, from its pydantic metadata."""
    info = model.model_fields[name]
    out: dict[str, Any] = {}
    for item in info.metadata:
        for attr, key, exclusive in (("ge", "min", False), ("gt", "min", True), ("le", "max", False), ("lt", "max", True)):
            value = getattr(item, attr, None)
            if value is not None:
                out[key] = value
                out[key + "_exclusive"] = exclusive
        if getattr(item, "max_length", None) is not None:
            out["max_length"] = item.max_length
        if getattr(item, "min_length", None) is not None:
            out["min_length"] = item.min_length
    if info.default is not None and not callable(info.default) and type(info.default).__name__ != "PydanticUndefinedType":
        out["default"] = info.default
    if info.description:
        out["description"] = info.description
    return out


@router.get("/v1/console/limits", tags=["console"])
def console_limits(services: ServicesDep) -> dict[str, Any]:
    """The bounds the API checks, for the console to check the same in the page (no key needed: nothing secret)."""
    rules = services.config.rules
    served = services.holder.current
    categories: list[str] = []
    if served is not None and "category" in served.artifact.products:
        main = served.artifact.products["category"].dropna().astype(str).str.split("/", n=1).str[0]
        categories = sorted(set(main) - {""})
    return {
        "categories": categories,
        "weights": {name: _bounds(BlendWeights, name) for name in BlendWeights.model_fields},
        "configured_weights": services.config.weights.model_dump(mode="json"),
        "what_if": {name: _bounds(WhatIf, name) for name in ("price", "commission_rate", "coupon")},
        "new_product": {name: _bounds(NewProductRequest, name)
                        for name in ("title", "category", "price", "commission_rate", "coupon")},
        "reason_max": schemas.REASON_MAX,
        "seller_types": list(SELLER_TYPES),
        "rules": {"max_price_change": rules.max_price_change, "price_window_days": rules.price_window_days,
                  "top_k": rules.top_k},
    }


# Status ----------------------------------------------------------------------------------------


def _evaluation(served: Any) -> dict[str, Any] | None:
    """The artifact's evaluation.json when present, else the evaluation metrics in its manifest."""
    path = FilePath(served.artifact.path) / "evaluation.json"
    if path.is_file():
        try:
            return json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            pass
    metrics = (served.artifact.manifest.get("metrics") or {}).get("evaluation")
    return {"metrics": metrics} if metrics else None


def headline_metrics(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pipeline's headline metrics beside each baseline's and the best baseline per metric."""
    metrics = (evaluation or {}).get("metrics") or {}
    if not isinstance(metrics, dict) or not metrics:
        return None
    rows = {name: {k: v.get(k) for k in HEADLINE if isinstance(v, dict)} for name, v in metrics.items()
            if isinstance(v, dict)}
    ours = next((name for name in OURS if name in rows), None)
    baselines = [name for name in rows if name not in OURS]
    best: dict[str, dict[str, Any]] = {}
    for k in HEADLINE:
        scored = [(rows[name][k], name) for name in baselines if isinstance(rows[name].get(k), (int, float))]
        if scored:
            value, name = max(scored)
            best[k] = {"model": name, "value": value}
    return {"model": ours, "metrics": list(HEADLINE), "models": rows, "baselines": baselines, "best_baseline": best}


def _feedback_days(services: Services, days: int) -> list[dict[str, Any]]:
    start = today() - timedelta(days=days - 1)
    since = datetime(start.year, start.month, start.day, tzinfo=TZ)
    counts = {table: services.store.event_counts(table, since) for table in ("pushes", "orders")}  # type: ignore[arg-type]
    out = []
    for i in range(days):
        day = start + timedelta(days=i)
        out.append({"date": day.isoformat(), "pushes": counts["pushes"].get(day, 0), "orders": counts["orders"].get(day, 0)})
    return out


@router.get("/v1/console/status", tags=["console"],
            responses={**ERRORS, 503: {"description": "No artifact loaded."}})
@requires("weights:read")
def console_status(principal: PrincipalDep, services: ServicesDep,
                   days: Annotated[int, Query(ge=1, le=60)] = FEEDBACK_DAYS) -> dict[str, Any]:
    """What the service runs on: the artifact (age, data window, counts), the last run's headline metrics
    against its baselines, feedback received per day (Asia/Shanghai) and the weights version."""
    served = served_now(services)
    manifest = served.artifact.manifest
    created = manifest.get("created_at")
    age = None
    if created:
        try:
            age = (datetime.now(timezone.utc) - datetime.fromisoformat(str(created))).total_seconds()
        except ValueError:
            age = None
    evaluation = _evaluation(served)
    weights = weights_state(services)
    ranker = (manifest.get("metrics") or {}).get("ranker")
    held_out = (evaluation or {}).get("held_out_pushes")
    return {
        "artifact": {"version": served.version, "created_at": created, "age_seconds": age,
                     "data_window": manifest.get("data_window"), "pick_date": manifest.get("pick_date"),
                     "counts": manifest.get("counts") or {"groups": len(served.groups)}, "source": manifest.get("source", "")},
        "evaluation": headline_metrics(evaluation),
        "ranker": ranker if isinstance(ranker, dict) else None,
        "held_out_pushes": held_out if isinstance(held_out, dict) else None,
        "feedback": _feedback_days(services, days),
        "weights": {"version": weights.version, "updated_at": weights.updated_at, "updated_by": weights.updated_by,
                    "overrides": sorted(weights.weights.overrides)},
        "today": today().isoformat(),
    }


# Groups ----------------------------------------------------------------------------------------


@router.get("/v1/console/groups", tags=["console"],
            responses={**ERRORS, 503: {"description": "No artifact loaded."}})
@requires("picks:read")
def console_groups(principal: PrincipalDep, services: ServicesDep,
                   q: Annotated[str, Query(max_length=128)] = "",
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """Groups the key may open in the group view, matching `q` (group or seller id, theme, seller type): a seller
    key lists her own groups only; ops and admin any."""
    served = served_now(services)
    needle = q.strip().lower()
    if principal.role == "seller":
        ids = list(served.seller_groups.get(principal.seller_id or "", []))
    else:
        ids = list(served.groups)
    rows = []
    for gid in ids:
        row = served.groups[gid]
        text = " ".join(str(row.get(c, "")) for c in ("group_id", "seller_id", "theme", "seller_type")).lower()
        if needle and needle not in text:
            continue
        rows.append({"group_id": gid, "seller_id": row["seller_id"], "seller_type": str(row.get("seller_type", "")),
                     "city_tier": _int(row.get("city_tier")), "member_count": _int(row.get("member_count")),
                     "theme": _text(row.get("theme")), "cold_start": bool(row.get("cold_start", False))})
        if len(rows) >= limit:
            break
    total = len(ids) if not needle else None
    return {"groups": rows, "total": total, "truncated": len(rows) >= limit}


def _int(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value)


# Brand catalogue ------------------------------------------------------------------------------


@router.get("/v1/console/brands/{brand}/products", tags=["console"],
            responses={**ERRORS, 404: {"description": "The brand has no product in the artifact."},
                       503: {"description": "No artifact loaded."}})
@requires("brand:read")
def console_brand_products(brand: Annotated[str, Path(min_length=1, max_length=128)], principal: PrincipalDep,
                           services: ServicesDep) -> dict[str, Any]:
    """The brand's products as the catalogue has them now (title, category, price, commission rate, coupon), so
    the what-if form can show the current values and check a coupon against the price."""
    if not auth.may_read_brand(principal, brand):
        raise Problem(403, "a brand key reads only its own brand")
    served = served_now(services)
    ids = brand_products(served.artifact.products, brand)
    if not ids:
        raise Problem(404, f"no product of brand {brand!r} in the artifact")
    rows = []
    for pid in ids:
        row = served.product(pid) or {}
        rows.append({"product_id": pid, "title": _text(row.get("title")), "category": _text(row.get("category")),
                     "price": _float(row.get("price")), "commission_rate": _float(row.get("commission_rate")),
                     "coupon": _float(row.get("coupon")) or 0.0})
    return {"brand": brand, "products": rows}


def _float(value: Any) -> float | None:
    try:
        return None if value is None or value != value else float(value)
    except (TypeError, ValueError):
        return None


# Revert ----------------------------------------------------------------------------------------


def undo(old: dict[str, Any], new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The weights in force with one change (old → new) taken back: each default weight that change moved gets its
    old value, each seller-type override it added, removed or edited is put back as it was; the rest stays."""
    old_w, new_w = OpsWeights.model_validate(old).model_dump(mode="json"), OpsWeights.model_validate(new).model_dump(mode="json")
    out = OpsWeights.model_validate(current).model_dump(mode="json")
    for name, value in old_w["default"].items():
        if new_w["default"].get(name) != value:
            out["default"][name] = value
    for seller_type in set(old_w["overrides"]) | set(new_w["overrides"]):
        before, after = old_w["overrides"].get(seller_type), new_w["overrides"].get(seller_type)
        if before == after:
            continue
        if before is None:
            out["overrides"].pop(seller_type, None)
        else:
            out["overrides"][seller_type] = before
    return OpsWeights.model_validate(out).model_dump(mode="json")


class RevertRequest(BaseModel):
    """Undo one audit entry: the version the client saw (checked like a weights PUT) and why."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=0, description="The weights version the client is looking at; 409 conflict if it moved.")
    reason: str = Field(min_length=1, max_length=schemas.REASON_MAX, description="Why, for the audit log.")


@router.post("/v1/ops/weights/audit/{entry_id}/revert", response_model=schemas.WeightsState, tags=["ops"],
             responses={**ERRORS, 404: {"description": "No such audit entry."},
                        409: {"description": "The weights moved since `version` (code conflict)."},
                        422: {"description": "No reason given, or the weights already are the ones the entry replaced."}})
@requires("weights:write")
def revert_weights(entry_id: Annotated[int, Path(ge=1, le=2**62)], body: RevertRequest, principal: PrincipalDep,
                   services: ServicesDep) -> schemas.WeightsState:
    """Take back one audit entry's change (the weights it moved get their old values; later changes to other weights
    stay), as a new audited version that names the entry."""
    entry = services.store.audit_entry(entry_id)
    if entry is None:
        raise Problem(404, f"no audit entry {entry_id}")
    reason = body.reason.strip()
    if not reason:
        raise Problem(422, "reason: give a reason", errors=[{"field": "reason", "reason": "empty"}])
    services.weights.invalidate()
    state = weights_state(services)
    target = undo(entry.old, entry.new, state.weights.model_dump(mode="json"))
    if body.version != state.version:
        raise Problem(409, f"the weights are at version {state.version}, not {body.version}; reload and retry",
                      code="conflict", current_version=state.version)
    if target == state.weights.model_dump(mode="json"):
        raise Problem(422, f"the weights in force already are those entry {entry_id} replaced (nothing to revert)",
                      errors=[{"field": "entry_id", "reason": "nothing to revert"}])
    actor = principal.key_id + (f" ({principal.name})" if principal.name else "")
    try:
        services.store.set_weights(target, actor, default=services.config.weights.model_dump(mode="json"),
                                   reason=reason, expected_version=body.version, reverts=entry_id)
    except VersionConflict as exc:
        raise Problem(409, f"the weights are at version {exc.current}, not {exc.expected}; reload and retry",
                      code="conflict", current_version=exc.current) from None
    services.weights.invalidate()
    return weights_state(services)


# Pages -----------------------------------------------------------------------------------------


@router.get("/console", include_in_schema=False)
def console_root() -> RedirectResponse:
    """The console starts on the ops page."""
    return RedirectResponse("/console/ops")


@router.get("/console/{page}", include_in_schema=False)
def console_page(page: str) -> FileResponse:
    """A console page (static HTML; the page calls the API with the key typed into it)."""
    if page not in PAGES:
        raise Problem(404, "no such page")
    return FileResponse(CONSOLE / PAGES[page], media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get("/console/static/{name}", include_in_schema=False)
def console_static(name: str) -> FileResponse:
    """The console's own CSS and JavaScript (nothing is loaded from elsewhere)."""
    if name not in STATIC:
        raise Problem(404, "no such file")
    return FileResponse(CONSOLE / name, media_type=STATIC[name] + "; charset=utf-8", headers={"Cache-Control": "no-cache"})

