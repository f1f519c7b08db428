"""Request and response models of the HTTP API, with the examples shown in the OpenAPI schema.

Feedback events stay plain objects here: each is validated on its own, like a file row, by
`serving.feedback`, so that one bad event can be reported by index instead of failing the batch.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.schema import SELLER_TYPES
from contracts.config import BlendWeights, OpsWeights

PUSH_EXAMPLE = {"event_id": "p-20240501-0001", "group_id": "G1", "product_id": "P1",
                "pushed_at": "2024-05-01T09:30:00+08:00", "price_at_push": 39.9}
ORDER_EXAMPLE = {"event_id": "o-20240501-0001", "order_id": "O1", "group_id": "G1", "product_id": "P1",
                 "ordered_at": "2024-05-01T10:02:00+08:00", "quantity": 2, "paid": 79.8, "refunded": False}


class FeedbackBatch(BaseModel):
    """A batch of events from a seller app."""

    # list[Any], not list[dict]: a non-object event is rejected by its index like any other bad event.
    events: list[Any] = Field(
        ..., json_schema_extra={"items": {"type": "object"}}, description="Events: `event_id` (client-made, at most 128 characters; a retried event is stored once) "
        "plus the columns of the contract table (see `quanxuan contract`). Each event is validated like a file row.",
    )
    partial: bool = Field(False, description="Keep the valid events when some are rejected (else nothing is stored).")


class PushBatch(FeedbackBatch):
    """Push events: the seller shared a product to a group."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [PUSH_EXAMPLE], "partial": False}]})


class OrderBatch(FeedbackBatch):
    """Order events: an order came through a seller's link in a group."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [ORDER_EXAMPLE], "partial": False}]})


class Rejected(BaseModel):
    """A refused event: its position in the batch and why."""

    index: int
    event_id: str | None = None
    reason: str


class FeedbackResult(BaseModel):
    """What happened to a batch."""

    received: int = Field(description="Events in the batch.")
    stored: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Valid events already stored by an earlier (retried) batch.")
    rejected: list[Rejected] = Field(default_factory=list)

    model_config = ConfigDict(json_schema_extra={"examples": [{"received": 2, "stored": 1, "duplicates": 1, "rejected": []}]})


class FeedbackError(BaseModel):
    """A batch refused because some events are invalid and partial acceptance was not asked for."""

    detail: str
    rejected: list[Rejected]


class PromoCopy(BaseModel):
    """The promo text to paste into the group, with how it was made."""

    text: str
    template_id: str
    short_title: str
    selling_points: list[str] = Field(default_factory=list)
    adlaw_clean: bool = Field(description="No advertising-law hit in the text.")


class Pick(BaseModel):
    """One recommended product with its component scores and copy."""

    rank: int
    product_id: str
    title: str
    category: str
    brand: str
    price: float = Field(description="Current list price (yuan).")
    coupon: float = Field(0.0, description="Coupon amount off the price (yuan).")
    p_conv: float = Field(description="Predicted probability the group orders it if pushed today.")
    commission_rate: float
    commission_yuan: float = Field(description="price × commission_rate.")
    rating: float = Field(description="Good-review rate, 0–1.")
    score: float = Field(description="Final blended score under the current ops weights.")
    reasons: list[str] = Field(description="Reason codes, strongest first.")
    reason_labels: list[str] = Field(description="The reasons in Chinese, as a seller sees them.")
    flags: list[str] = Field(default_factory=list)
    copy_: PromoCopy = Field(alias="copy")

    model_config = ConfigDict(populate_by_name=True)


PICK_EXAMPLE = {
    "rank": 1, "product_id": "P1", "title": "婴儿纯棉口水巾 10条装", "category": "母婴/喂养", "brand": "好孩子",
    "price": 39.9, "coupon": 5.0, "p_conv": 0.12, "commission_rate": 0.2, "commission_yuan": 7.98, "rating": 0.97,
    "score": 0.9, "reasons": ["group_buys_category"], "reason_labels": ["群里常买这一类"], "flags": ["coupon"],
    "copy": {"text": "宝宝口水巾10条装，纯棉吸水，券后34.9元，群里姐妹回购好几次了～", "template_id": "open.baoma.03+body.coupon.07+close.baoma.02",
             "short_title": "纯棉口水巾10条装", "selling_points": ["纯棉", "吸水"], "adlaw_clean": True},
}


class GroupPicks(BaseModel):
    """A group's ranked picks for a day."""

    group_id: str
    seller_id: str
    seller_type: str
    date: date
    cold_start: bool = Field(description="The group has no history: picks come from its segment.")
    segment: str
    artifact_version: str
    weights_hash: str = Field(description="Fingerprint of the weight profile used.")
    picks: list[Pick]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "group_id": "G1", "seller_id": "S1", "seller_type": "宝妈", "date": "2024-05-01", "cold_start": False,
        "segment": "宝妈|母婴|2", "artifact_version": "20240501T020000Z-3f2a9c1b7d10", "weights_hash": "a1b2c3d4e5f6",
        "picks": [PICK_EXAMPLE],
    }]})


class SellerPicks(BaseModel):
    """Every group of a seller in one answer."""

    seller_id: str
    date: date
    groups: list[GroupPicks]


REASON_MAX = 200


def _check_seller_types(overrides: dict[str, BlendWeights]) -> dict[str, BlendWeights]:
    unknown = sorted(set(overrides) - set(SELLER_TYPES))
    if unknown:
        raise ValueError(f"unknown seller types {unknown}; one of {', '.join(SELLER_TYPES)}")
    return overrides


class WeightsUpdate(OpsWeights):
    """New ops weights: the default profile and any per-seller-type overrides (each a full profile), with the
    version they were edited from (refused with 409 `conflict` when the weights have moved since) and why."""

    version: int | None = Field(None, ge=0, description="The version the client edited (GET /v1/ops/weights); "
                                "when given, a change made meanwhile by someone else is refused with 409 conflict.")
    reason: str = Field("", max_length=REASON_MAX, description="Why the weights change, for the audit log.")

    @model_validator(mode="before")
    @classmethod
    def _whole_profile(cls, value: Any) -> Any:
        # A missing default would silently reset every weight to the configured one.
        if isinstance(value, dict) and "default" not in value:
            raise ValueError("default: required — send the whole profile (GET /v1/ops/weights gives the one in force)")
        return value

    @field_validator("overrides")
    @classmethod
    def _known_seller_types(cls, value: dict[str, BlendWeights]) -> dict[str, BlendWeights]:
        return _check_seller_types(value)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "default": {"conversion": 1.0, "earnings": 1.0, "rating": 2.0, "order_value": 0.0, "diversity": 1.0, "adoption": 1.0},
        "overrides": {"学生": {"conversion": 1.0, "earnings": 0.5, "rating": 2.0, "order_value": 0.0, "diversity": 1.5, "adoption": 1.0}},
        "version": 3, "reason": "学生群佣金敏感，降低收益权重",
    }]})


class WeightsState(BaseModel):
    """The ops weights in force."""

    weights: OpsWeights
    version: int = Field(description="0 while the configured defaults apply; +1 per change.")
    updated_at: datetime | None
    updated_by: str | None
    hashes: dict[str, str] = Field(description="weights_hash of the default profile ('default') and of each override.")


class AuditRecord(BaseModel):
    """One weight change."""

    id: int
    at: datetime
    actor: str = Field(description="Key id (and name) of the ops key that made the change.")
    version: int
    old: dict[str, Any]
    new: dict[str, Any]
    reason: str = Field("", description="Why the change was made, as typed by its author.")
    reverts: int | None = Field(None, description="Id of the audit entry this change undid, when it was a revert.")


class AuditLog(BaseModel):
    """Weight changes, newest first."""

    entries: list[AuditRecord]


class Me(BaseModel):
    """The calling key as the service sees it."""

    key_id: str
    role: Literal["seller", "brand", "ops", "admin"]
    seller_id: str | None = Field(None, description="The seller a seller key is bound to.")
    brand: str | None = Field(None, description="The brand a brand key is bound to.")


class CopyCheckRequest(BaseModel):
    """A text to check against the advertising law."""

    text: str = Field(..., max_length=5000)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "全网最低价，国家级品质，无效退款！"}]})


class AdlawHit(BaseModel):
    """One flagged span: [start, end) character offsets, the term, its category, the article it breaks and a rewrite."""

    start: int
    end: int
    term: str
    category: str
    category_label: str
    article: str = Field(description="The article of the law the term breaks, e.g. 广告法第九条第三项.")
    suggestion: str


class CopyCheckResult(BaseModel):
    """The check's verdict."""

    clean: bool
    hits: list[AdlawHit]


class KeyCreate(BaseModel):
    """A new API key: its role and the tenant it is bound to."""

    role: Literal["seller", "brand", "ops", "admin"]
    seller_id: str | None = Field(None, min_length=1, max_length=128, description="Required for (and only for) seller keys.")
    brand: str | None = Field(None, min_length=1, max_length=128, description="Required for (and only for) brand keys.")
    name: str = Field("", max_length=200, description="Who holds the key, for the audit log.")
    rate_per_minute: int | None = Field(None, ge=1, le=1_000_000, description="This key's rate limit; default from settings.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "seller", "seller_id": "S1", "name": "S1 app"}]})


class KeyInfo(BaseModel):
    """A key as listed: never its secret."""

    key_id: str
    role: str
    seller_id: str | None
    brand: str | None
    name: str
    rate_per_minute: int | None
    created_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyInfo):
    """A created key; `key` is shown this once and never stored."""

    key: str


class KeyList(BaseModel):
    """Every key."""

    keys: list[KeyInfo]


class ReloadResult(BaseModel):
    """Outcome of an artifact reload."""

    swapped: bool = Field(description="A newer artifact is now serving.")
    version: str | None = Field(description="The version serving after the call.")
    previous_version: str | None
    reason: str = Field(description="Why nothing was swapped, or 'loaded'.")


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    artifact_version: str | None = None
    reason: str | None = None
