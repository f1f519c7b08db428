"""The public entry point: render the forwarding text (转发语) for one pick in one group on one day.

The template is chosen deterministically from (group, product, day): every eligible template gets a
hash-based draw weighted towards more specific templates (seller type, theme, occasion, category), and
the first one in that order that was not used by this group within `no_repeat_template_days`, fits in
`max_chars`, has clean punctuation and passes the advertising-law check is used. When every eligible
template was used recently, the least recently used one is taken (the rule then bends instead of
shipping nothing); the short fallback templates come last. Copy that fails the law check is never
returned.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from recsys.config import CopyConfig
from recsys.promo.adlaw import check
from recsys.promo.occasions import occasions_for
from recsys.promo.selling_points import selling_points
from recsys.promo.shorten import short_title
from recsys.promo.templates import Template, fill, load_templates, notes, reason_phrases, used_slots

OTHER_SELLER = "其他"
_SLOT_OF = {"price": "price", "final_price": "final", "coupon": "coupon", "rating_pct": "rate", "review_count": "reviews"}
_DEFAULT_CFG = CopyConfig()


@dataclass
class ProductInfo:
    """What the copy may say about a product; every number shown comes from here."""

    product_id: str
    title: str
    category: str
    brand: str
    price: float
    coupon: float = 0.0
    rating: float | None = None
    review_count: int = 0
    presale: bool = False


@dataclass
class CopyContext:
    """Who forwards the copy, to which group, on which day, and why the ranker picked the product."""

    group_id: str
    seller_type: str
    theme: str
    day: date
    reasons: list[str] = field(default_factory=list)


@dataclass
class RenderedCopy:
    """The text to paste plus what went into it (numbers as shown, for auditing)."""

    text: str
    template_id: str
    short_title: str
    selling_points: list[str]
    numbers: dict[str, float]


def format_yuan(amount: float) -> str:
    """A yuan amount with at most two decimals and no trailing zeros: 59.90 -> '59.9', 59.0 -> '59'."""
    text = f"{round(amount + 1e-9, 2):.2f}".rstrip("0").rstrip(".")
    return text or "0"


def rating_percent(rating: float) -> float:
    """Good-review rate as a percentage floored to one decimal (never rounded up: 0.9996 -> 99.9)."""
    return math.floor(rating * 1000 + 1e-6) / 10


def format_count(count: int) -> str:
    """Review count as shown: exact below 10,000, else floored to 0.1万 with a plus ('1.2万+')."""
    if count < 10_000:
        return str(count)
    return f"{format_yuan(math.floor(count / 1000) / 10)}万+"


_DOUBLE_PUNCT = re.compile(r"[，。！？、；：,.!?;:]{2,}")
_PAIRS = {"（": "）", "【": "】", "「": "」", "《": "》", "(": ")", "[": "]"}


def punctuation_problems(text: str) -> list[str]:
    """What is wrong with the text's punctuation or slots (empty when it reads cleanly)."""
    problems = []
    if _DOUBLE_PUNCT.search(text):
        problems.append("doubled punctuation")
    if re.match(r"^[，。！？、；：,.!?;:）】」》]", text):
        problems.append("leading punctuation")
    if re.search(r"[，、：；,:;（【「《]$", text):
        problems.append("dangling punctuation at the end")
    if "{" in text or "}" in text or re.search(r"\b(?:None|nan)\b", text):
        problems.append("unfilled slot")
    stack: list[str] = []
    for ch in text:
        if ch in _PAIRS:
            stack.append(_PAIRS[ch])
        elif ch in _PAIRS.values():
            if not stack or stack.pop() != ch:
                problems.append("unbalanced brackets")
                break
    else:
        if stack:
            problems.append("unbalanced brackets")
    if "  " in text:
        problems.append("double space")
    return problems


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _recent_uses(history: Iterable[tuple[str, str, date]], group_id: str, day: date, days: int) -> dict[str, date]:
    used: dict[str, date] = {}
    for gid, template_id, when in history:
        if gid != group_id:
            continue
        d = _as_date(when)
        if abs((day - d).days) < days and (template_id not in used or d > used[template_id]):
            used[template_id] = d
    return used


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    # splitmix64 finaliser: a cheap, well-spread 64-bit hash step.
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


@lru_cache(maxsize=None)
def _template_key(template_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(template_id.encode(), digest_size=8).digest(), "big")


def _seed(group_id: str, product_id: str, day: date) -> int:
    return int.from_bytes(hashlib.blake2b(f"{group_id}|{product_id}|{day.isoformat()}".encode(), digest_size=8).digest(), "big")


def _draw(seed: int, template: Template) -> float:
    # Efraimidis–Spirakis weighted sampling driven by a hash instead of a random generator:
    # deterministic for (group, product, day), uniform across templates, biased towards specific ones.
    u = (_mix(seed ^ _template_key(template.id)) + 1) / (2**64 + 2)
    return u ** (1.0 / template.weight)


@lru_cache(maxsize=4096)
def _eligible(seller_type: str, theme: str, occasions: frozenset[str], category: str, slots: frozenset[str]) -> tuple[Template, ...]:
    return tuple(
        t
        for t in load_templates()
        if not t.fallback and t.slots <= slots and t.fits(seller_type, theme, set(occasions), category)
    )


@lru_cache(maxsize=100_000)
def _title_parts(title: str, brand: str, short_chars: int, max_points: int) -> tuple[str, tuple[str, ...]]:
    short = short_title(title, brand or None, short_chars)
    return short, selling_points(title, brand or None, short, max_points)


def _values(product: ProductInfo, ctx: CopyContext, cfg: CopyConfig) -> tuple[dict[str, str], dict[str, float], list[str]]:
    short, points = _title_parts(product.title, product.brand or "", cfg.short_title_chars, cfg.max_selling_points)
    values = {"title": short, "price": f"{format_yuan(product.price)}元"}
    numbers = {"price": round(product.price, 2)}
    has_coupon = 0 < product.coupon < product.price
    if has_coupon:
        final = round(product.price - product.coupon, 2)
        values["final"] = f"{format_yuan(final)}元"
        values["coupon"] = f"{format_yuan(product.coupon)}元"
        numbers["final_price"] = final
        numbers["coupon"] = round(product.coupon, 2)
    if product.rating is not None and product.rating >= cfg.min_rating_to_show:
        pct = rating_percent(product.rating)
        values["rate"] = f"{format_yuan(pct)}%"
        numbers["rating_pct"] = pct
    if product.review_count > 0:
        values["reviews"] = f"{format_count(product.review_count)}条"
        numbers["review_count"] = float(product.review_count)
    if points:
        values["points"] = "、".join(points)
    # A reason is only said when the product's own data backs it (no "有券" without a coupon).
    unsupported = {"coupon"} if not has_coupon else set()
    if not product.presale:
        unsupported.add("presale")
    if "rate" not in values:
        unsupported.add("high_rating")
    phrases = reason_phrases()
    reason = next((phrases[r] for r in ctx.reasons if r in phrases and r not in unsupported), None)
    if reason:
        values["reason"] = reason
    return values, numbers, list(points)


def _text(template: Template, values: dict[str, str], emoji: bool, presale: bool) -> str:
    text = fill(template, values, emoji).strip()
    if presale and "presale" not in template.occasions and "预售" not in text:
        text += notes()["presale_suffix"]
    return text


def _acceptable(text: str, cfg: CopyConfig) -> bool:
    return len(text) <= cfg.max_chars and not punctuation_problems(text) and not check(text)


def render_copy(
    product: ProductInfo,
    ctx: CopyContext,
    history: Iterable[tuple[str, str, date]] = (),
    cfg: CopyConfig | None = None,
) -> RenderedCopy:
    """The forwarding text for one product in one group on one day (deterministic, law-checked)."""
    cfg = cfg or _DEFAULT_CFG
    values, numbers, points = _values(product, ctx, cfg)
    seller = ctx.seller_type if ctx.seller_type else OTHER_SELLER
    occasions = set(occasions_for(ctx.day))
    if product.presale:
        occasions.add("presale")
    if "final" in values:
        occasions.add("coupon")
    category = (product.category or "").split("/")[0]
    eligible = _eligible(seller, ctx.theme or "", frozenset(occasions), category, frozenset(values))
    seed = _seed(ctx.group_id, product.product_id, ctx.day)
    order = sorted(eligible, key=lambda t: -_draw(seed, t))
    used = _recent_uses(history, ctx.group_id, ctx.day, cfg.no_repeat_template_days)
    emoji = seller in cfg.emoji_seller_types
    fresh = [t for t in order if t.id not in used]
    stale = sorted((t for t in order if t.id in used), key=lambda t: used[t.id])
    fallbacks = [t for t in load_templates() if t.fallback]
    for template in (*fresh, *stale, *fallbacks):
        text = _text(template, values, emoji, product.presale)
        if _acceptable(text, cfg):
            slots = used_slots(template, values)
            shown = {k: v for k, v in numbers.items() if _SLOT_OF[k] in slots}
            return RenderedCopy(text, template.id, values["title"], points, shown)
    # Only reachable with a tiny max_chars: the short title cut to fit beside the price.
    price = values["price"]
    title = values["title"][: max(1, cfg.max_chars - len(price) - 1)]
    return RenderedCopy(f"{title}，{price}"[: cfg.max_chars], "minimal", values["title"], points, {"price": numbers["price"]})


def render_for_group(
    products: Iterable[ProductInfo],
    ctx: CopyContext,
    history: Iterable[tuple[str, str, date]] = (),
    cfg: CopyConfig | None = None,
) -> list[RenderedCopy]:
    """Copies for several picks to one group on one day; each copy counts as history for the next."""
    past = [h for h in history if h[0] == ctx.group_id]
    copies = []
    for product in products:
        copy = render_copy(product, ctx, past, cfg)
        copies.append(copy)
        past.append((ctx.group_id, copy.template_id, ctx.day))
    return copies
