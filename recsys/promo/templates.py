"""Promo templates, composed from parts: an opening line, a body with the product facts, a closing line.

Parts are data in `templates/openings.toml`, `bodies.toml` and `closings.toml`. Each file holds
families (`[[family]]`): a name, where its texts fit (`seller_types`, `themes`, `occasions`,
`categories`; "*" or absent = anywhere), the product facts it needs (`needs`: every tag present)
or avoids (`avoid`: none present; tags from recsys/promo/facts.py), and a list of `texts`. A text
may be a table `{ text = "…", needs = […], avoid = […] }` to add its own conditions to its
family's, or carry `retired = true`: a retired text keeps its id and is never used. A part's id is
`<role>.<family>.<position>` (`open.baoma.03`), so texts are only ever appended to a family, never
reordered. A template is a combination of parts and its id joins theirs with "+"
(`open.baoma.03+body.plain.07+close.coupon.02`); the no-repeat rule applies to that id.

A text has slots `{title}` (short title), `{points}` (selling points), `{price}` (list price,
"59.9元"), `{final}` (price − coupon), `{coupon}` (coupon amount), `{rate}` (good-review rate,
"98.5%"), `{reviews}` (review count, "3562条"), `{reason}` (a ranking reason phrase) and `{e:🌸}` (an
emoji, dropped for seller types without emoji). A part in square brackets, `[，好评率{rate}]`, is
optional: it is kept only when all its slots have values. Only bodies carry data slots, so a fact is
never said twice; openings end with their own punctuation and closings start with theirs, so parts
join by plain concatenation.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

TEMPLATE_DIR = Path(__file__).with_name("templates")
SLOT = re.compile(r"\{(\w+)(?::([^}]*))?\}")
OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_EMOJI_SLOT = re.compile(r"\{e(?::[^}]*)?\}")
KNOWN_SLOTS = frozenset({"title", "points", "price", "final", "coupon", "rate", "reviews", "reason", "e"})
ANY = "*"
ROLE_FILES = {"open": "openings.toml", "body": "bodies.toml", "close": "closings.toml"}
_OPEN_END = "，：！～"
_CLOSE_START = "，。！"
_PUNCT = "，。！？、；：～,.!?;:"
_FIT_WEIGHTS = {"seller_types": 3.0, "themes": 2.0, "categories": 1.5}


@dataclass(frozen=True)
class Part:
    """One opening, body or closing text and where it applies."""

    id: str
    role: str
    text: str
    seller_types: tuple[str, ...] = (ANY,)
    themes: tuple[str, ...] = (ANY,)
    occasions: tuple[str, ...] = (ANY,)
    categories: tuple[str, ...] = (ANY,)
    needs: frozenset[str] = frozenset()
    avoid: frozenset[str] = frozenset()
    retired: bool = False

    @cached_property
    def slots(self) -> frozenset[str]:
        """Names of the data slots the text needs, outside optional parts (emoji excluded)."""
        return frozenset(m.group(1) for m in SLOT.finditer(OPTIONAL.sub("", self.text))) - {"e"}

    @cached_property
    def all_slots(self) -> frozenset[str]:
        """Names of every data slot in the text, optional ones included (emoji excluded)."""
        return frozenset(m.group(1) for m in SLOT.finditer(self.text)) - {"e"}

    def fits(self, seller_type: str, theme: str, occasions: set[str], tags: str | frozenset[str] | set[str]) -> bool:
        """True when seller type, theme, one of the occasions, the main category and the product's facts all match.

        `tags` are the product's fact tags (the main category among them); a bare string is a main category.
        """
        facts = {tags} if isinstance(tags, str) else tags
        return (
            not self.retired
            and (ANY in self.seller_types or seller_type in self.seller_types)
            and (ANY in self.themes or theme in self.themes)
            and (ANY in self.occasions or bool(occasions & set(self.occasions)))
            and (ANY in self.categories or bool(facts & set(self.categories)))
            and self.needs <= facts
            and not self.avoid & facts
        )

    @cached_property
    def weight(self) -> float:
        """Preference when choosing: the seller's own voice first, then theme, festival and category fits."""
        weight = 1.0
        for name, extra in _FIT_WEIGHTS.items():
            if ANY not in getattr(self, name):
                weight += extra
        if self.needs:
            weight += 1.5
        if ANY not in self.occasions:
            weight += 1.0 if set(self.occasions) <= {"weekday", "weekend", "coupon"} else 2.0
        return weight


@dataclass(frozen=True)
class Template:
    """A combination of parts (opening, body, closing; opening and closing may be absent)."""

    parts: tuple[Part, ...]

    @cached_property
    def id(self) -> str:
        """The parts' ids joined with '+'; this is what the no-repeat rule counts."""
        return "+".join(p.id for p in self.parts)

    @cached_property
    def text(self) -> str:
        """The parts' texts concatenated (each part carries its own joining punctuation)."""
        return "".join(p.text for p in self.parts)

    @cached_property
    def slots(self) -> frozenset[str]:
        """Names of the data slots the combined text needs, outside optional parts."""
        return frozenset().union(*(p.slots for p in self.parts))


def _tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value or (ANY,))  # type: ignore[arg-type]


def _validate(part: Part, source: str) -> None:
    unknown = {m.group(1) for m in SLOT.finditer(part.text)} - KNOWN_SLOTS
    if unknown:
        raise ValueError(f"{source}: {part.id} has unknown slots {sorted(unknown)}")
    bare = _EMOJI_SLOT.sub("", part.text)
    if part.role == "body":
        if "title" not in part.slots or not part.slots & {"price", "final"}:
            raise ValueError(f"{source}: body {part.id} must always show the title and a price")
        if bare[:1] in _PUNCT or OPTIONAL.sub("", bare)[-1:] in _PUNCT:
            raise ValueError(f"{source}: body {part.id} must not start or end with punctuation")
    else:
        # Facts live in bodies only, so that an opening or closing never repeats one.
        if part.all_slots:
            raise ValueError(f"{source}: {part.id} may only hold emoji slots")
        if part.role == "open" and bare[-1:] not in _OPEN_END:
            raise ValueError(f"{source}: opening {part.id} must end with one of {_OPEN_END}")
        if part.role == "close" and bare[:1] not in _CLOSE_START:
            raise ValueError(f"{source}: closing {part.id} must start with one of {_CLOSE_START}")


@cache
def load_parts(folder: str | None = None) -> dict[str, tuple[Part, ...]]:
    """Role ('open', 'body', 'close') -> its parts, from the folder's three files (cached); ValueError on bad data."""
    root = Path(folder) if folder else TEMPLATE_DIR
    out: dict[str, tuple[Part, ...]] = {}
    for role, filename in ROLE_FILES.items():
        data = tomllib.loads((root / filename).read_text("utf-8"))
        parts: list[Part] = []
        families: set[str] = set()
        for family in data.get("family", []):
            name = family["name"]
            if name in families or not re.fullmatch(r"[a-z0-9_]+", name):
                raise ValueError(f"{filename}: family {name!r} is duplicated or not [a-z0-9_]")
            families.add(name)
            for i, entry in enumerate(family["texts"], start=1):
                own = entry if isinstance(entry, dict) else {"text": entry}
                part = Part(
                    id=f"{role}.{name}.{i:02d}",
                    role=role,
                    text=own["text"],
                    seller_types=_tuple(family.get("seller_types")),
                    themes=_tuple(family.get("themes")),
                    occasions=_tuple(family.get("occasions")),
                    categories=_tuple(family.get("categories")),
                    needs=frozenset(family.get("needs", ())) | frozenset(own.get("needs", ())),
                    avoid=frozenset(family.get("avoid", ())) | frozenset(own.get("avoid", ())),
                    retired=bool(own.get("retired", False)),
                )
                _validate(part, filename)
                parts.append(part)
        out[role] = tuple(parts)
    return out


def part_by_id(part_id: str, folder: str | None = None) -> Part | None:
    """The part with this id, or None."""
    return _index(folder).get(part_id)


@cache
def _index(folder: str | None) -> dict[str, Part]:
    return {p.id: p for parts in load_parts(folder).values() for p in parts}


def template_by_id(template_id: str, folder: str | None = None) -> Template | None:
    """The template a combined id names, or None when any of its parts is unknown."""
    parts = [part_by_id(pid, folder) for pid in template_id.split("+")] if template_id else []
    if not parts or any(p is None for p in parts):
        return None
    return Template(tuple(parts))  # type: ignore[arg-type]


@cache
def reason_phrases(folder: str | None = None) -> dict[str, str]:
    """Reason code -> Chinese phrase, from templates/reasons.toml."""
    root = Path(folder) if folder else TEMPLATE_DIR
    return dict(tomllib.loads((root / "reasons.toml").read_text("utf-8"))["reasons"])


@cache
def notices(folder: str | None = None) -> dict[str, str]:
    """Product fact -> the notice every copy of such a product ends with, from templates/reasons.toml."""
    root = Path(folder) if folder else TEMPLATE_DIR
    return dict(tomllib.loads((root / "reasons.toml").read_text("utf-8")).get("notices", {}))


@cache
def benefits(folder: str | None = None) -> dict[str, tuple[str, ...]]:
    """Fact tag (or head-word ending) -> category benefit lines, for titles without a selling point (templates/benefits.toml)."""
    root = Path(folder) if folder else TEMPLATE_DIR
    data = tomllib.loads((root / "benefits.toml").read_text("utf-8"))
    return {k: tuple(v) for k, v in data["benefits"].items()} | {f"~{k}": tuple(v) for k, v in data["heads"].items()}


@cache
def notes(folder: str | None = None) -> dict[str, str]:
    """Fixed phrases the renderer appends (the presale suffix), from templates/reasons.toml."""
    root = Path(folder) if folder else TEMPLATE_DIR
    return dict(tomllib.loads((root / "reasons.toml").read_text("utf-8"))["notes"])


def resolve(template: Part | Template, values: dict[str, str]) -> str:
    """The text with each optional part kept (brackets removed) or dropped, by whether its slots have values."""

    def keep(m: re.Match[str]) -> str:
        names = {s.group(1) for s in SLOT.finditer(m.group(1))} - {"e"}
        return m.group(1) if names <= values.keys() else ""

    return OPTIONAL.sub(keep, template.text)


def fill(template: Part | Template, values: dict[str, str], emoji: bool | Callable[[str], bool]) -> str:
    """The text with optional parts resolved and every slot replaced; an emoji stays when `emoji` is True or says yes to it."""

    def replace(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2)
        if name == "e":
            keep = emoji(arg or "") if callable(emoji) else emoji
            return (arg or "") if keep and arg else ""
        return values[name]

    return SLOT.sub(replace, resolve(template, values))


def used_slots(template: Part | Template, values: dict[str, str]) -> frozenset[str]:
    """The data slots that appear in the filled text."""
    return frozenset(m.group(1) for m in SLOT.finditer(resolve(template, values))) - {"e"}
