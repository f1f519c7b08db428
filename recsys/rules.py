"""Business rules applied after scoring: which candidates may be pushed today, and why a pick is made.

Hard filters (each configurable in `RuleConfig`):
- in stock only (`in_stock_only`);
- not pushed to this group in the last `no_repeat_days` days, unless a repurchase is due
  (the group's usual cycle for the category has elapsed);
- no item whose price moved by more than `max_price_change` (a share, both directions) over the
  last `price_window_days` days: a price jump angers buyers, a fresh cut is often a pricing error.
Caps and the category decay of the diversity re-rank live in `recsys.picks`.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from contracts.config import RuleConfig

# Reason codes a pick can carry, strongest source first; labels are what a seller sees.
REASON_LABELS: dict[str, str] = {
    "group_buys_category": "群里常买这一类",
    "repurchase_due": "到了回购周期",
    "similar_to_past": "和群里买过的相似",
    "trending": "最近卖得火",
    "segment_popular": "同类群都在买",
    "high_rating": "好评率高",
    "coupon": "有券",
    "presale": "预售",
    "new_product": "新品",
}
FLAGS: tuple[str, ...] = ("presale", "coupon")


def _bool(cols: Mapping[str, np.ndarray], name: str, n: int, default: bool) -> np.ndarray:
    if name not in cols:
        return np.full(n, default)
    values = np.asarray(cols[name])
    if values.dtype == bool:
        return values
    return np.array([default if v is None or v != v else bool(v) for v in values], dtype=bool)


def _float(cols: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
    if name not in cols:
        return np.full(n, np.nan)
    return np.asarray(cols[name], dtype=float)


def eligible_mask(cols: Mapping[str, np.ndarray], rules: RuleConfig) -> np.ndarray:
    """True for candidates that pass every hard filter (missing columns pass that filter)."""
    n = len(cols["product_id"])
    keep = np.ones(n, dtype=bool)
    if rules.in_stock_only:
        keep &= _bool(cols, "in_stock", n, True)
    if rules.no_repeat_days > 0:
        days = _float(cols, "days_since_push", n)
        recent = np.nan_to_num(days, nan=np.inf) < rules.no_repeat_days
        keep &= ~recent | _bool(cols, "repurchase_due", n, False)
    change = _float(cols, "price_change_7d", n)
    keep &= ~(np.abs(np.nan_to_num(change, nan=0.0)) > rules.max_price_change)
    return keep


def parse_reasons(value: Any) -> list[str]:
    """Reason codes stored as a JSON list (or a list already); unknown codes are dropped."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else []
        except ValueError:
            value = [value]
    return [str(code) for code in value if str(code) in REASON_LABELS]


def pick_flags(presale: Any, coupon: Any) -> list[str]:
    """`presale` and `coupon` flags of one pick."""
    flags: list[str] = []
    if presale is not None and presale == presale and bool(presale):
        flags.append("presale")
    if coupon is not None and coupon == coupon and float(coupon) > 0:
        flags.append("coupon")
    return flags


def pick_reasons(stored: Any, rating: Any, repurchase_due: Any, flags: list[str], rules: RuleConfig) -> list[str]:
    """Stored source reasons first (strongest first), then feature reasons; no duplicates."""
    reasons = parse_reasons(stored)
    if repurchase_due is not None and repurchase_due == repurchase_due and bool(repurchase_due):
        reasons.insert(0, "repurchase_due")
    if rating is not None and rating == rating and float(rating) >= rules.high_rating:
        reasons.append("high_rating")
    reasons.extend(flags)
    return list(dict.fromkeys(reasons))
