"""Rendered picks: blend the artifact's candidates with the current weights, render each pick's promo copy
once, and cache the finished JSON per (artifact version, group, date, k, weights hash, config)."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

from recsys.blend import weights_hash
from contracts.config import CopyConfig, OpsWeights, RuleConfig, config_hash
from recsys.picks import pick_for_group
from recsys.promo import adlaw
from recsys.promo.render import CopyContext, ProductInfo, RenderedCopy, render_copy
from recsys.rules import REASON_LABELS
from serving.artifacts import Served
from serving.auth import Principal, RateLimiter
from serving.metrics import Metrics
from serving.state import WeightsSnapshot
from serving.storage.base import Cache, Store


def _num(value: Any) -> float | None:
    """A JSON-safe float: None for missing or NaN."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def product_info(product_id: str, pick: dict[str, Any], catalogue: dict[str, Any]) -> ProductInfo:
    """What the copy may say about a pick: today's candidate numbers first, the catalogue row for the rest."""

    def first(name: str, default: Any) -> Any:
        for source in (pick, catalogue):
            value = source.get(name)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                return value
        return default

    rating = first("rating", None)
    launched = first("launched_at", None)
    # The pick carries the main category only (for diversity); the copy's product facts need the full path.
    category = _text(catalogue.get("category")) or _text(pick.get("category"))
    return ProductInfo(
        product_id=product_id, title=_text(first("title", product_id)), category=category,
        brand=_text(first("brand", "")), price=float(first("price", 0.0)), coupon=float(first("coupon", 0.0)),
        rating=None if rating is None else float(rating), review_count=int(first("review_count", 0)),
        presale=bool(first("presale", False)), launched_at=_day(launched),
    )


def _day(value: Any) -> date | None:
    """A launch timestamp as a date (None when absent or unreadable)."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON (Chinese stays readable)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class PicksService:
    """Builds and caches the picks answer of a group."""

    def __init__(self, store: Store, cache: Cache, rules: RuleConfig, copy_cfg: CopyConfig,
                 cache_seconds: int, metrics: Metrics | None = None) -> None:
        self.store = store
        self.cache = cache
        self.rules = rules
        self.copy_cfg = copy_cfg
        self.cache_seconds = cache_seconds
        self.metrics = metrics
        # Replicas with different rules or copy settings must not share cached answers.
        self.config_tag = config_hash(rules)[:6] + config_hash(copy_cfg)[:6]

    def cache_key(self, served: Served, group_id: str, day: date, k: int, weights: WeightsSnapshot) -> str:
        """Where a group's rendered picks are cached: everything the answer depends on is in the key."""
        profile = weights.hash_for(str(served.groups[group_id].get("seller_type", "")))
        return f"picks:{served.version}:{self.config_tag}:{profile}:{day.isoformat()}:{k}:{group_id}"

    def cached(self, key: str) -> bytes | None:
        """A cached answer, counted as a hit or a miss."""
        body = self.cache.get(key)
        if self.metrics:
            (self.metrics.picks_miss if body is None else self.metrics.picks_hit).inc()
        return body

    def cached_many(self, keys: list[str]) -> list[bytes | None]:
        """Cached answers of several keys (None where absent), each counted as a hit or a miss."""
        return [self.cached(key) for key in keys]

    def complete(self, served: Served, group_ids: list[str], day: date, k: int, weights: WeightsSnapshot,
                 keys: list[str], parts: list[bytes | None]) -> list[bytes]:
        """Render the missing answers of a seller's groups, in her groups' order (each sees the copies before it)."""
        return [part if part is not None else self.build(served, g, day, k, weights, key)
                for g, key, part in zip(group_ids, keys, parts)]

    def limited_lookup(self, limiter: RateLimiter, principal: Principal, key: str) -> tuple[float, bytes | None]:
        """Take the caller's rate-limit token, then look the answer up: (wait seconds, cached answer or None)."""
        wait, body = self.cache.take_token_and_get(principal.key_id, *limiter.bucket(principal), key)
        if wait == 0 and self.metrics:
            (self.metrics.picks_miss if body is None else self.metrics.picks_hit).inc()
        return wait, body

    def build(self, served: Served, group_id: str, day: date, k: int, weights: WeightsSnapshot, key: str) -> bytes:
        """Render an answer and cache it under `key`."""
        body = dumps(self.render(served, group_id, day, k, weights.weights))
        self.cache.set(key, body, self.cache_seconds)
        return body

    def seller_day_history(self, served: Served, group_id: str, day: date) -> list[tuple[str, str, date]]:
        """The copies the seller's other groups received on `day`, so that her day reads varied across groups.

        They count towards the day's variety only; the no-repeat rule stays per group (render.py).
        """
        seller = served.group_seller(group_id)
        others = [g for g in served.seller_groups.get(seller or "", []) if g != group_id]
        end = day + timedelta(days=1)
        return [(other, template_id, when) for other in others for template_id, when in self.store.copy_history(other, day, end)]

    def render(self, served: Served, group_id: str, day: date, k: int, weights: OpsWeights) -> dict[str, Any]:
        """Blend, rank and write copy for one group (no cache); records the templates used in the copy history."""
        artifact = served.artifact
        group = artifact.group(group_id)
        seller_type = str(group.get("seller_type", ""))
        profile = weights.for_seller_type(seller_type)
        picks, cold = pick_for_group(artifact, group_id, weights, self.rules, k)
        start = day - timedelta(days=self.copy_cfg.no_repeat_template_days)
        history = [(group_id, template_id, when) for template_id, when in self.store.copy_history(group_id, start, day)]
        history += self.seller_day_history(served, group_id, day)
        out: list[dict[str, Any]] = []
        used: list[str] = []
        for row in picks.to_dict("records"):
            product = served.product(str(row["product_id"])) or {}
            reasons = [str(r) for r in (row.get("reasons") or [])]
            context = CopyContext(group_id=group_id, seller_type=seller_type, theme=_text(group.get("theme")),
                                  day=day, reasons=reasons)
            copy: RenderedCopy = render_copy(product_info(str(row["product_id"]), row, product), context, history,
                                             self.copy_cfg)
            # Later picks of the same answer avoid templates used by earlier ones.
            history.append((group_id, copy.template_id, day))
            if copy.template_id:  # an exhausted copy has no template to remember
                used.append(copy.template_id)
            out.append({
                "rank": int(row["rank"]),
                "product_id": str(row["product_id"]),
                "title": _text(product.get("title")),
                "category": _text(row.get("category", product.get("category"))),
                "brand": _text(row.get("brand", product.get("brand"))),
                "price": _num(row.get("price", product.get("price"))),
                "coupon": _num(row.get("coupon")) or 0.0,
                "p_conv": _num(row.get("p_conv")),
                "commission_rate": _num(row.get("commission_rate")),
                "commission_yuan": _num(row.get("commission_yuan")),
                "rating": _num(row.get("rating")),
                "score": _num(row.get("score")),
                "reasons": reasons,
                "reason_labels": [REASON_LABELS.get(r, r) for r in reasons],
                "flags": [str(f) for f in (row.get("flags") or [])],
                "copy": {
                    "text": copy.text,
                    "template_id": copy.template_id,
                    "short_title": copy.short_title,
                    "selling_points": list(copy.selling_points),
                    "adlaw_clean": not adlaw.check(copy.text),
                },
            })
        if used:
            self.store.record_copy(group_id, day, used)
        return {
            "group_id": group_id,
            "seller_id": str(group.get("seller_id", "")),
            "seller_type": seller_type,
            "date": day.isoformat(),
            "cold_start": bool(cold),
            "segment": _text(group.get("segment")),
            "artifact_version": served.version,
            "weights_hash": weights_hash(profile),
            "picks": out,
        }
