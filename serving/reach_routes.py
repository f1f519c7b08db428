"""Brand reach, what-if and ops preview endpoints (included by `serving.app`; the console pages are in
`serving.console_routes`).

The reach answers come from `recsys.reach` on the artifact serving now and the ops weights in force; they take
seconds, so `serving.heavy` computes them in worker processes under per-key caps and caches them per (artifact
version, weights, request).
A brand key reads only its own brand; ops and admin keys read any brand.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.config import BlendWeights, OpsWeights
from recsys.preview import CURVE_WEIGHTS
from recsys.reach import Change, NewProduct, brand_products
from serving import auth, heavy
from serving.services import ERRORS, PrincipalDep, Services, ServicesDep, served_now
from serving.problems import Problem
from serving.routing import GuardedRoute, requires


router = APIRouter(route_class=GuardedRoute)


class WhatIf(BaseModel):
    """A change to try on some of the brand's products (all of them when product_ids is empty)."""

    model_config = ConfigDict(extra="forbid")
    product_ids: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=500)
    price: float | None = Field(None, gt=0, le=1e6, description="New list price in yuan.")
    commission_rate: float | None = Field(None, ge=0, le=1, description="New commission rate (0–1).")
    coupon: float | None = Field(None, ge=0, le=1e6, description="New coupon amount in yuan (below the price).")

    @model_validator(mode="after")
    def _coupon_below_price(self) -> "WhatIf":
        if self.price is not None and self.coupon is not None and self.coupon >= self.price:
            raise ValueError("coupon must be below the price")
        return self


class NewProductRequest(BaseModel):
    """A product nobody has bought yet."""

    model_config = ConfigDict(extra="forbid")
    product_id: str = Field("NEW", min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0, le=1e6)
    commission_rate: float = Field(ge=0, le=1)
    coupon: float = Field(0.0, ge=0, le=1e6, description="Coupon in yuan (below the price).")

    @model_validator(mode="after")
    def _coupon_below_price(self) -> "NewProductRequest":
        if self.coupon >= self.price:
            raise ValueError("coupon must be below the price")
        return self


class PreviewRequest(BaseModel):
    """Weights to try, and which default weight the trade-off curve moves."""

    model_config = ConfigDict(extra="forbid")
    weights: OpsWeights
    curve_weight: str = Field("earnings", description="One of " + ", ".join(CURVE_WEIGHTS) + ".")
    curve_values: list[Annotated[float, Field(ge=0, le=10)]] | None = Field(None, min_length=2, max_length=41)


def _weights_in_force(services: Services) -> OpsWeights:
    value = services.weights.current()
    # A snapshot object (weights, stored, hashes) or, in older services, a (weights, stored) pair.
    return value.weights if hasattr(value, "weights") else value[0]


def _task_inputs(services: Services) -> tuple[list[Any], str]:
    """What every heavy task starts from (artifact path, weights in force, rules, reach settings) and its cache tag."""
    served = served_now(services)
    weights = _weights_in_force(services).model_dump(mode="json")
    inputs = [str(served.artifact.path), weights, services.config.rules.model_dump(mode="json"),
              services.config.reach.model_dump(mode="json")]
    return inputs, f"{served.version}:{json.dumps(weights, sort_keys=True)}"


def _brand_ids(principal: auth.Principal, services: Services, brand: str, wanted: list[str]) -> list[str]:
    if not auth.may_read_brand(principal, brand):
        raise Problem(403, "a brand key reads only its own brand")
    ids = brand_products(served_now(services).artifact.products, brand)
    if not ids:
        raise Problem(404, f"no product of brand {brand!r} in the artifact")
    if wanted:
        foreign = sorted(set(wanted) - set(ids))
        if foreign:
            raise Problem(422, f"products {foreign[:10]} are not of brand {brand!r}")
        return list(dict.fromkeys(wanted))
    return ids


def _titles(services: Services, ids: list[str]) -> dict[str, str]:
    served = served_now(services)
    return {pid: str((served.product(pid) or {}).get("title", "")) for pid in ids}


def _check_coupon_below_price(services: Services, ids: list[str], change: Change) -> None:
    """422 when the coupon would reach the price of a product (a coupon at or over the price gives it away)."""
    if change.price is None and change.coupon is None:
        return
    served = served_now(services)
    for pid in ids:
        row = served.product(pid) or {}
        price = float(change.price if change.price is not None else row.get("price") or 0.0)
        coupon = float(change.coupon if change.coupon is not None else row.get("coupon") or 0.0)
        if price > 0 and coupon >= price:
            field = "coupon" if change.coupon is not None else "price"
            reason = f"coupon {coupon:g} must be below the price {price:g} of product {pid}"
            raise Problem(422, f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


BrandPath = Annotated[str, Path(min_length=1, max_length=128)]
BRAND_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"description": "The brand has no product in the artifact."},
                                                 422: {"description": "A product is not of this brand."},
                                                 503: {"description": "No artifact loaded."}}


@router.get("/v1/brands/{brand}/reach", tags=["brands"], responses=BRAND_ERRORS)
@requires("brand:read")
async def brand_reach(brand: BrandPath, principal: PrincipalDep, services: ServicesDep,
                      product_id: Annotated[list[str], Query(max_length=500)] = []) -> dict[str, Any]:  # noqa: B006 - FastAPI reads it
    """Groups, members, orders, GMV and commission the brand's products get from the programme (day and week,
    80 % intervals, by seller type and city tier); `product_id` narrows to some of its products."""
    ids = _brand_ids(principal, services, brand, product_id)
    inputs, tag = _task_inputs(services)
    result = await services.heavy.run(principal.key_id, f"reach:{tag}:{brand}:{ids}", heavy.reach_task, *inputs, ids)
    return {"brand": brand, "artifact_version": served_now(services).version, "titles": _titles(services, ids), **result}


@router.post("/v1/brands/{brand}/reach/what-if", tags=["brands"], responses=BRAND_ERRORS)
@requires("brand:read")
async def brand_what_if(brand: BrandPath, body: WhatIf, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """The reach forecast before and after a new price, commission rate or coupon, re-scored and re-picked."""
    ids = _brand_ids(principal, services, brand, body.product_ids)
    change = Change(price=body.price, commission_rate=body.commission_rate, coupon=body.coupon)
    if change.is_empty():
        raise Problem(422, "give at least one of price, commission_rate, coupon",
                      errors=[{"field": "body", "reason": "give at least one of price, commission_rate, coupon"}])
    _check_coupon_below_price(services, ids, change)
    inputs, tag = _task_inputs(services)
    result = await services.heavy.run(principal.key_id, f"whatif:{tag}:{brand}:{ids}:{change}", heavy.what_if_task,
                                      *inputs, ids, dataclasses.asdict(change))
    return {"brand": brand, "artifact_version": served_now(services).version, "titles": _titles(services, ids), **result}


@router.post("/v1/brands/{brand}/reach/new-product", tags=["brands"], responses=BRAND_ERRORS)
@requires("brand:read")
async def brand_new_product(brand: BrandPath, body: NewProductRequest, principal: PrincipalDep,
                            services: ServicesDep) -> dict[str, Any]:
    """Forecast for a product nobody has bought yet, placed where its nearest products by title embedding sit."""
    if not auth.may_read_brand(principal, brand):
        raise Problem(403, "a brand key reads only its own brand")
    inputs, tag = _task_inputs(services)
    new = NewProduct(body.product_id, body.title, body.category, body.price, body.commission_rate, brand, body.coupon)
    result = await services.heavy.run(principal.key_id, f"new:{tag}:{brand}:{new}", heavy.new_product_task, *inputs,
                                      dataclasses.asdict(new), services.config.features.model_dump(mode="json"))
    return {"brand": brand, "artifact_version": served_now(services).version, **result}


@router.post("/v1/ops/preview", tags=["ops"], responses={**ERRORS, 422: {"description": "Unknown curve weight."},
                                                          503: {"description": "No artifact loaded."}})
@requires("weights:read")
async def ops_preview(body: PreviewRequest, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Replay the artifact's candidates with proposed weights beside the current ones, plus a conversion–earnings curve;
    `window` replays the last evaluation window with realised orders and commission (null when the artifact lacks it)."""
    if body.curve_weight not in CURVE_WEIGHTS:
        raise Problem(422, f"curve_weight must be one of {', '.join(CURVE_WEIGHTS)}")
    served = served_now(services)
    current = _weights_in_force(services)
    key = json.dumps([served.version, current.model_dump(mode="json"), body.model_dump(mode="json")], sort_keys=True)
    result = await services.heavy.run(principal.key_id, "preview:" + key, heavy.preview_task, str(served.artifact.path),
                                      current.model_dump(mode="json"), body.weights.model_dump(mode="json"),
                                      services.config.rules.model_dump(mode="json"),
                                      services.config.reach.model_dump(mode="json"), body.curve_weight, body.curve_values)
    return {"artifact_version": served.version, "weights_fields": list(BlendWeights.model_fields), **result}
