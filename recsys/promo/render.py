"""The public entry point: render the forwarding text (转发语) for one pick in one group on one day.

A template is an opening + body + closing combination (see templates.py). The parts that fit the
seller type, group theme, day, product category and the product's known facts are each put in order:
parts this group saw least today first, then least in the no-repeat window (relative to how specific
the part is), then by a hash draw of (group, product, day) weighted towards specific parts. The
combinations are tried in that order, full ones first, then without opening or closing for tight
length limits; the first whose id this group has not received within `no_repeat_template_days`, that
fits `max_chars`, reads cleanly and passes the advertising-law check is used. So the choice is
deterministic for (group, product, day, history) and a template id never reaches a group twice in the
window. The history may also hold the seller's other groups: their copies of the day then count
towards today's variety (not towards the rule), so one seller's day reads varied across her groups. If every fitting combination was used (or none fits the length), no template is applied: the
copy is the bare fact line "short title，price" with an empty `template_id` and `exhausted` saying
why. Copy that fails the law check is never returned.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from itertools import chain

import numpy as np

from contracts.config import CopyConfig
from recsys.promo import adlaw
from recsys.promo.adlaw import check
from recsys.promo.facts import ProductFacts, product_facts
from recsys.promo.occasions import occasions_for
from recsys.promo.selling_points import selling_points
from recsys.promo.shorten import book_title, head_word, short_title, wanted_listing
from recsys.promo.templates import Part, Template, benefits, fill, load_parts, notes, notices, reason_phrases, used_slots

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
    launched_at: date | None = None  # 上新 wording only within facts.NEW_DAYS of it


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
    exhausted: str = ""  # why no template was applied ("" when one was): "no_fresh_template" or "no_template_fits"


def format_yuan(amount: float) -> str:
    """A yuan amount with at most two decimals and no trailing zeros: 59.90 -> '59.9', 59.0 -> '59'."""
    text = f"{round(amount + 1e-9, 2):.2f}".rstrip("0").rstrip(".")
    return text or "0"


def rating_percent(rating: float) -> float:
    """Good-review rate as a percentage floored to one decimal (never rounded up: 0.9996 -> 99.9)."""
    return math.floor(rating * 1000 + 1e-6) / 10


MIN_REVIEWS_FOR_RATE = 20


def rate_is_possible(pct: float, reviews: int) -> bool:
    """True when some whole number k ≤ reviews of good reviews gives a rate shown as `pct` (floored to 0.1 %)."""
    if reviews <= 0:
        return False
    k = math.ceil(pct / 100 * reviews - 1e-9)
    return k <= reviews and k / reviews < (pct + 0.1) / 100 - 1e-12


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


@dataclass
class _Recent:
    """What the group received within the no-repeat window (template ids, part counts) and the parts sent today."""

    ids: set[str]
    today: Counter[str]
    window: Counter[str]


def _recent(history: Iterable[tuple[str, str, date]], group_id: str, day: date, days: int) -> _Recent:
    # The rule and the window counts are the group's own; today's part counts also include the
    # seller's other groups when the caller passes their copies, so one seller's day reads varied.
    recent = _Recent(set(), Counter(), Counter())
    for gid, template_id, when in history:
        if not template_id:
            continue
        d = _as_date(when)
        parts = template_id.split("+")
        if d == day:
            recent.today.update(parts)
        if gid == group_id and abs((day - d).days) < days:
            recent.ids.add(template_id)
            recent.window.update(parts)
    return recent


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser on uint64 arrays (multiplication wraps mod 2**64): a cheap, well-spread hash.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _part_key(part_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(part_id.encode(), digest_size=8).digest(), "big")


def _seed(group_id: str, product_id: str, day: date) -> int:
    return int.from_bytes(hashlib.blake2b(f"{group_id}|{product_id}|{day.isoformat()}".encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class _Parts:
    """The parts of one role that fit a pick, with their hash keys and weights as arrays."""

    parts: tuple[Part, ...]
    keys: np.ndarray  # uint64
    weights: np.ndarray  # float64


@lru_cache(maxsize=16384)
def _eligible(role: str, seller_type: str, theme: str, occasions: frozenset[str], tags: frozenset[str],
              slots: frozenset[str]) -> _Parts:
    # A body must say the selling point when there is one (one or two in every copy).
    parts = tuple(p for p in load_parts()[role] if p.slots <= slots and p.fits(seller_type, theme, set(occasions), tags)
                  and (role != "body" or "points" not in slots or "points" in p.all_slots))
    keys = np.array([_part_key(p.id) for p in parts], dtype=np.uint64)
    return _Parts(parts, keys, np.array([p.weight for p in parts], dtype=np.float64))


def _ordered(fitting: _Parts, seed: int, recent: _Recent) -> list[Part]:
    # Efraimidis–Spirakis weighted sampling driven by a hash of (group, product, day) instead of a
    # random generator: deterministic, uniform across parts, biased towards specific ones. Parts the
    # group saw least come first, today before the week, so one day's copies vary as much as they can.
    with np.errstate(over="ignore"):
        u = (_mix(fitting.keys ^ np.uint64(seed)).astype(np.float64) + 1.0) / (2.0**64 + 2.0)
    draw = u ** (1.0 / fitting.weights)
    if not recent.window and not recent.today:
        return [fitting.parts[i] for i in np.argsort(-draw, kind="stable")]
    today = np.array([recent.today[p.id] for p in fitting.parts], dtype=np.float64)
    window = np.array([recent.window[p.id] for p in fitting.parts], dtype=np.float64) / fitting.weights
    return [fitting.parts[i] for i in np.lexsort((-draw, window, today))]


def fallback_title(brand: str, category: str, max_chars: int = 16, title: str = "") -> str:
    """What the copy calls a product whose title has no confident head: brand + the category's generic noun (美妆好物)."""
    main = (category or "").split("/")[0].strip()
    if main and main != "未知":
        noun = "图书" if main == "图书" else f"{main}好物"
    else:
        noun = "图书" if title and book_title(title) else "好物"
    # A brand field written with separators (cole,haan) is shown as words.
    name = " ".join(re.findall(r"[0-9A-Za-z\u4e00-\u9fff]+", brand or ""))
    text = f"{name}{noun}" if name else noun
    return text if len(text) <= max_chars else noun


@lru_cache(maxsize=100_000)
def _title_parts(title: str, brand: str, short_chars: int, max_points: int, category: str = "") -> tuple[str, tuple[str, ...]]:
    short = short_title(title, brand or None, short_chars)
    if not short:
        # Junk, brand-only or colour-only titles and 求购 listings: nothing is made up from the title.
        fallback = fallback_title(brand, category, short_chars, title)
        points = () if wanted_listing(title) else selling_points(title, brand or None, fallback, max_points)
        return fallback, points
    points = selling_points(title, brand or None, short, max_points)
    if not points and max_points > 0:
        # Every attribute went into the short title: move one out, so that the copy says what is
        # special about the product beside what it is (天然红亚光圆珠手串 -> 红亚光圆珠手串, 天然).
        head = head_word(title, brand or None)
        for word in selling_points(title, brand or None, "", 1):
            rest = short.replace(word, "", 1)
            if word in short and len(rest) >= 2 and head and rest.lower().endswith(head[-2:]) and not short.startswith(word * 2):
                return rest, (word,)
    return short, points


def benefit_line(title: str, brand: str, facts: ProductFacts, product_id: str) -> str:
    """The category benefit line said when the title has no selling point ('' when none fits)."""
    if wanted_listing(title):
        return ""  # 求购: nobody sells what the title names
    table = benefits()
    options: tuple[str, ...] = ()
    for tag in table:
        if not tag.startswith("~") and tag in facts.tags:
            options = table[tag]
            break
    if not options:
        # By the head word's last character. The head is a whole product word (listed, or a noun ending
        # in a product head: never a piece such as 金丝 of 金丝玉, which has no head and no line).
        head = head_word(title, brand or None)
        options = (table.get(f"~{head}") or table.get(f"~{head[-1:]}", ())) if head else ()
    if not options:
        return ""
    pick = int.from_bytes(hashlib.blake2b(product_id.encode(), digest_size=4).digest(), "big")
    return options[pick % len(options)]


def facts_of(product: ProductInfo, day: date) -> ProductFacts:
    """The product's typed facts on a day (category, title, price and launch)."""
    launched = _as_date(product.launched_at) if product.launched_at else None
    return product_facts(product.title, product.category or "", product.brand or "", product.price, launched, day)


def _values(product: ProductInfo, ctx: CopyContext, cfg: CopyConfig) -> tuple[dict[str, str], dict[str, float], list[str]]:
    short, points = _title_parts(product.title, product.brand or "", cfg.short_title_chars, cfg.max_selling_points,
                                 product.category or "")
    facts = facts_of(product, ctx.day)
    if not points and cfg.max_selling_points > 0:
        line = benefit_line(product.title, product.brand or "", facts, product.product_id)
        points = (line,) if line else ()
    values = {"title": short, "price": f"{format_yuan(product.price)}元"}
    numbers = {"price": round(product.price, 2)}
    has_coupon = 0 < product.coupon < product.price
    if has_coupon:
        final = round(product.price - product.coupon, 2)
        values["final"] = f"{format_yuan(final)}元"
        values["coupon"] = f"{format_yuan(product.coupon)}元"
        numbers["final_price"] = final
        numbers["coupon"] = round(product.coupon, 2)
    # A rate is only quoted on enough reviews, and only when it can be k/n for the review count.
    pct = rating_percent(product.rating) if product.rating is not None else 0.0
    if (product.rating is not None and product.rating >= cfg.min_rating_to_show
            and product.review_count >= MIN_REVIEWS_FOR_RATE and rate_is_possible(pct, product.review_count)):
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
    if "new" not in facts.tags:
        unsupported.add("new_product")
    phrases = reason_phrases()
    reason = next((phrases[r] for r in ctx.reasons if r in phrases and r not in unsupported), None)
    if reason:
        values["reason"] = reason
    return values, numbers, list(points)


def _fitting_parts(product: ProductInfo, ctx: CopyContext, slots: frozenset[str]) -> dict[str, _Parts]:
    seller = ctx.seller_type if ctx.seller_type else OTHER_SELLER
    occasions = set(occasions_for(ctx.day))
    if product.presale:
        occasions.add("presale")
    if {"final", "coupon"} <= slots:
        occasions.add("coupon")
    key = (seller, ctx.theme or "", frozenset(occasions), facts_of(product, ctx.day).tags, slots)
    return {role: _eligible(role, *key) for role in ("open", "body", "close")}


def _coherent(combo: tuple[Part, ...]) -> bool:
    # An opening or closing about the coupon (省钱提醒, 记得先领券) only goes with a body that shows
    # the price after it.
    body = next(p for p in combo if p.role == "body")
    return "final" in body.slots or not any(p.role != "body" and "coupon" in p.occasions for p in combo)


def _combinations(parts: dict[str, _Parts], seed: int, recent: _Recent) -> Iterator[tuple[Part, ...]]:
    opens, bodies, closes = (_ordered(parts[r], seed, recent) for r in ("open", "body", "close"))
    full = ((o, b, c) for o in opens for b in bodies for c in closes)
    # Shorter combinations only matter under a tight length limit.
    shorter = chain(((b, c) for b in bodies for c in closes), ((o, b) for o in opens for b in bodies), ((b,) for b in bodies))
    return (combo for combo in chain(full, shorter) if _coherent(combo))


def candidate_templates(
    product: ProductInfo,
    ctx: CopyContext,
    history: Iterable[tuple[str, str, date]] = (),
    cfg: CopyConfig | None = None,
) -> Iterator[Template]:
    """Every template that fits the pick, in the order render_copy tries them (used ones included)."""
    cfg = cfg or _DEFAULT_CFG
    values, _, _ = _values(product, ctx, cfg)
    recent = _recent(history, ctx.group_id, ctx.day, cfg.no_repeat_template_days)
    seed = _seed(ctx.group_id, product.product_id, ctx.day)
    for combo in _combinations(_fitting_parts(product, ctx, frozenset(values)), seed, recent):
        yield Template(combo)


_CJK3 = re.compile(r"(?=([\u4e00-\u9fff]{3}))")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def repetition_problems(text: str, title: str = "") -> list[str]:
    """Phrases (three Chinese characters or more) or numbers said twice, outside the short title itself."""
    own = text.replace(title, "□") if title else text
    problems = []
    numbers = _NUMBER.findall(own)
    if len(numbers) != len(set(numbers)):
        problems.append("a number twice")
    seen: dict[str, int] = {}
    for m in _CJK3.finditer(text):
        gram = m.group(1)
        if gram in seen and m.start() >= seen[gram] + 3:
            problems.append(f"{gram} twice")
            break
        seen.setdefault(gram, m.start())
    if ("预订" in text or "预售中" in text) and "（预售）" in text:
        problems.append("presale twice")
    return problems


def _acceptable(text: str, cfg: CopyConfig, title: str = "") -> bool:
    return (len(text) <= cfg.max_chars and not punctuation_problems(text) and not repetition_problems(text, title)
            and not check(text))


_CHILD_EMOJI = frozenset({"👶", "🍼", "🧸"})


def _emoji_fits(emoji: str, facts: ProductFacts, occasions: list[str]) -> bool:
    # Baby emoji only on goods for children, the red packet only at the Spring Festival.
    if emoji in _CHILD_EMOJI:
        return "kid" in facts.tags
    if emoji == "🧧":
        return "春节" in occasions
    return True


def _notice(facts: ProductFacts) -> str:
    # Mandatory by product fact, said once at the end whatever the template.
    table = notices()
    said = [table[tag] for tag in ("health_food", "medical_device", "alcohol") if tag in facts.tags and tag in table]
    return "".join(f"。{n}" for n in said)


def _lawful(text: str, cfg: CopyConfig, title: str) -> str | None:
    """The text if it reads cleanly and passes the law check, else the law check's own safe rewrite of it
    (adlaw.safe_rewrite, when that module offers one) if that passes every check; None to try the next template."""
    if len(text) > cfg.max_chars or punctuation_problems(text) or repetition_problems(text, title):
        return None
    if not check(text):
        return text
    rewrite = getattr(adlaw, "safe_rewrite", None)
    if rewrite is None:
        return None
    try:
        fixed = rewrite(text)
    except Exception:  # a rewrite that fails must not fail the copy; the next template is tried
        return None
    return fixed if isinstance(fixed, str) and fixed and _acceptable(fixed, cfg, title) else None


def render_copy(
    product: ProductInfo,
    ctx: CopyContext,
    history: Iterable[tuple[str, str, date]] = (),
    cfg: CopyConfig | None = None,
) -> RenderedCopy:
    """The forwarding text for one product in one group on one day (deterministic, law-checked, never a repeat)."""
    cfg = cfg or _DEFAULT_CFG
    values, numbers, points = _values(product, ctx, cfg)
    seller = ctx.seller_type if ctx.seller_type else OTHER_SELLER
    emoji = seller in cfg.emoji_seller_types
    facts = facts_of(product, ctx.day)
    occasions = occasions_for(ctx.day)
    recent = _recent(history, ctx.group_id, ctx.day, cfg.no_repeat_template_days)
    seed = _seed(ctx.group_id, product.product_id, ctx.day)
    suffix = notes()["presale_suffix"] if product.presale else ""
    notice = _notice(facts)
    filled: dict[tuple[str, bool], str] = {}

    def text_of(part: Part, allow_emoji: bool) -> str:
        key = (part.id, allow_emoji)
        if key not in filled:
            filled[key] = fill(part, values, (lambda e: _emoji_fits(e, facts, occasions)) if allow_emoji else False)
        return filled[key]

    def join(combo: tuple[Part, ...]) -> str:
        # At most one emoji: the first part that shows a fitting one keeps it, later parts show none.
        out, shown = [], False
        for part in combo:
            piece = text_of(part, emoji and not shown)
            shown = shown or piece != text_of(part, False)
            out.append(piece)
        return "".join(out).strip()

    fresh_seen = False
    for combo in _combinations(_fitting_parts(product, ctx, frozenset(values)), seed, recent):
        template_id = "+".join(p.id for p in combo)
        if template_id in recent.ids:
            continue
        fresh_seen = True
        text = join(combo)
        if suffix and "预售" not in text:
            text += suffix
        text = _lawful(text + notice, cfg, values["title"])
        if text is not None:
            template = Template(combo)
            slots = used_slots(template, values)
            shown = {k: v for k, v in numbers.items() if _SLOT_OF[k] in slots}
            return RenderedCopy(text, template.id, values["title"], points, shown)
    # No template left: the bare fact line, under no template id, so that no template is ever reused.
    price = values["price"]
    title = values["title"][: max(1, cfg.max_chars - len(price) - 1 - len(suffix) - len(notice))]
    point = values.get("points", "")
    text = f"{title}，{price}{suffix}{notice}"
    if point and len(text) + len(point) + 1 <= cfg.max_chars:
        text = f"{title}，{point}，{price}{suffix}{notice}"
    text = text[: cfg.max_chars]
    reason = "no_template_fits" if fresh_seen else "no_fresh_template"
    return RenderedCopy(text, "", values["title"], points, {"price": numbers["price"]}, exhausted=reason)


def render_for_group(
    products: Iterable[ProductInfo],
    ctx: CopyContext,
    history: Iterable[tuple[str, str, date]] = (),
    cfg: CopyConfig | None = None,
) -> list[RenderedCopy]:
    """Copies for several picks to one group on one day; each copy counts as history for the next."""
    past = list(history)
    copies = []
    for product in products:
        copy = render_copy(product, ctx, past, cfg)
        copies.append(copy)
        past.append((ctx.group_id, copy.template_id, ctx.day))
    return copies
