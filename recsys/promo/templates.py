"""Promo templates: loaded once from `templates/*.toml`, filtered for a pick, filled slot by slot.

A template is `text` with slots `{title}` (short title), `{points}` (selling points), `{price}`
(list price, "59.9元"), `{final}` (price − coupon), `{coupon}` (coupon amount), `{rate}` (good-review
rate, "98.5%"), `{reviews}` (review count, "3562条"), `{reason}` (a ranking reason phrase) and `{e:🌸}`
(an emoji, dropped for seller types without emoji). A part in square brackets, `[，好评率{rate}]`, is
optional: it is kept only when all its slots have values. Its `seller_types`, `themes`, `occasions` and
`categories` say where it fits ("*" = anywhere); a template is only eligible when every slot outside
the optional parts has a value, so no copy is ever shipped with an empty slot.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

TEMPLATE_DIR = Path(__file__).with_name("templates")
SLOT = re.compile(r"\{(\w+)(?::([^}]*))?\}")
OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
KNOWN_SLOTS = frozenset({"title", "points", "price", "final", "coupon", "rate", "reviews", "reason", "e"})
ANY = "*"


@dataclass(frozen=True)
class Template:
    """One promo template and where it applies."""

    id: str
    text: str
    seller_types: tuple[str, ...] = (ANY,)
    themes: tuple[str, ...] = (ANY,)
    occasions: tuple[str, ...] = (ANY,)
    categories: tuple[str, ...] = (ANY,)
    fallback: bool = False

    @cached_property
    def slots(self) -> frozenset[str]:
        """Names of the data slots the text needs, outside optional parts (emoji excluded)."""
        return frozenset(m.group(1) for m in SLOT.finditer(OPTIONAL.sub("", self.text))) - {"e"}

    def fits(self, seller_type: str, theme: str, occasions: set[str], category: str) -> bool:
        """True when seller type, theme, one of the occasions and the main category all match."""
        return (
            (ANY in self.seller_types or seller_type in self.seller_types)
            and (ANY in self.themes or theme in self.themes)
            and (ANY in self.occasions or bool(occasions & set(self.occasions)))
            and (ANY in self.categories or category in self.categories)
        )

    @cached_property
    def weight(self) -> float:
        """Preference when choosing: the seller's own voice first, then theme, festival and category fits."""
        weight = 1.0
        if ANY not in self.seller_types:
            weight += 3.0
        if ANY not in self.themes:
            weight += 2.0
        if ANY not in self.occasions:
            weight += 1.0 if set(self.occasions) <= {"weekday", "weekend", "coupon"} else 2.0
        if ANY not in self.categories:
            weight += 1.5
        return weight


def _tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value or (ANY,))  # type: ignore[arg-type]


@cache
def load_templates(folder: str | None = None) -> tuple[Template, ...]:
    """All templates of the folder's *.toml files (cached); raises ValueError on a duplicate id or unknown slot."""
    root = Path(folder) if folder else TEMPLATE_DIR
    templates: list[Template] = []
    seen: set[str] = set()
    for path in sorted(root.glob("*.toml")):
        data = tomllib.loads(path.read_text("utf-8"))
        defaults = data.get("defaults", {})
        for raw in data.get("template", []):
            spec = {**defaults, **raw}
            tpl = Template(
                id=spec["id"],
                text=spec["text"],
                seller_types=_tuple(spec.get("seller_types")),
                themes=_tuple(spec.get("themes")),
                occasions=_tuple(spec.get("occasions")),
                categories=_tuple(spec.get("categories")),
                fallback=bool(spec.get("fallback", False)),
            )
            unknown = {m.group(1) for m in SLOT.finditer(tpl.text)} - KNOWN_SLOTS
            if unknown or tpl.id in seen:
                raise ValueError(f"{path.name}: template {tpl.id!r} has unknown slots {sorted(unknown)} or a duplicate id")
            seen.add(tpl.id)
            templates.append(tpl)
    return tuple(templates)


@cache
def reason_phrases(folder: str | None = None) -> dict[str, str]:
    """Reason code -> Chinese phrase, from templates/reasons.toml."""
    root = Path(folder) if folder else TEMPLATE_DIR
    return dict(tomllib.loads((root / "reasons.toml").read_text("utf-8"))["reasons"])


@cache
def notes(folder: str | None = None) -> dict[str, str]:
    """Fixed phrases the renderer appends (the presale suffix), from templates/reasons.toml."""
    root = Path(folder) if folder else TEMPLATE_DIR
    return dict(tomllib.loads((root / "reasons.toml").read_text("utf-8"))["notes"])


def resolve(template: Template, values: dict[str, str]) -> str:
    """The text with each optional part kept (brackets removed) or dropped, by whether its slots have values."""

    def keep(m: re.Match[str]) -> str:
        names = {s.group(1) for s in SLOT.finditer(m.group(1))} - {"e"}
        return m.group(1) if names <= values.keys() else ""

    return OPTIONAL.sub(keep, template.text)


def fill(template: Template, values: dict[str, str], emoji: bool) -> str:
    """The template text with optional parts resolved and every slot replaced; emoji vanish when `emoji` is False."""

    def replace(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2)
        if name == "e":
            return (arg or "") if emoji else ""
        return values[name]

    return SLOT.sub(replace, resolve(template, values))


def used_slots(template: Template, values: dict[str, str]) -> frozenset[str]:
    """The data slots that appear in the filled text."""
    return frozenset(m.group(1) for m in SLOT.finditer(resolve(template, values))) - {"e"}
