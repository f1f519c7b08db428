"""The advertising-law check: find absolute, authority, medical, guarantee, superstition, prize-lure,
urgency and fake-pricing wording in a text, with spans, categories and suggested rewrites.

The lexicon is data (`adlaw_lexicon.json`, versioned). Matching is case-insensitive. A hit that lies
wholly inside an allowed span is dropped: this is how time and sequence words (最近, 最后一次, 第一次,
第一时间) and factual phrases (好评率100%, 100%纯棉, 唯一的缺点) stay legal while 最好, 第一品牌 and
100%有效 are caught. Decided on purpose: 最后一天 (a date fact, e.g. 最后一天发货) is allowed, while the
pressure phrases 最后一波 / 最后机会 are caught; 最多 / 最少 / 最快 describe quantities and delivery and
are allowed; bare 推荐, 安全, 选用, 试用 are ordinary words and only caught inside authority or
guarantee phrases (专家推荐, 绝对安全).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LEXICON_PATH = Path(__file__).with_name("adlaw_lexicon.json")


@dataclass(frozen=True)
class Hit:
    """One flagged span of a text: [start, end) character offsets, the matched term, its category and a rewrite."""

    start: int
    end: int
    term: str
    category: str
    suggestion: str


@dataclass(frozen=True)
class _Lexicon:
    version: str
    terms: dict[str, tuple[str, str]]  # lower-cased term -> (category, suggestion)
    term_lengths: tuple[int, ...]
    first_chars: frozenset[str]
    patterns: tuple[tuple[re.Pattern[str], str, str], ...]  # (regex, category, suggestion)
    allow_re: re.Pattern[str]
    labels: dict[str, str]


def _alternation(words: list[str]) -> str:
    # Longest first so that the regex engine prefers 第一品牌 over 第一 at the same position.
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


@cache
def load_lexicon(path: str | None = None) -> _Lexicon:
    """Load and compile the lexicon (cached; pass a path to check against another version)."""
    data = json.loads(Path(path or LEXICON_PATH).read_text("utf-8"))
    terms: dict[str, tuple[str, str]] = {}
    patterns: list[tuple[re.Pattern[str], str, str]] = []
    labels: dict[str, str] = {}
    for category, spec in data["categories"].items():
        labels[category] = spec["label"]
        for term, suggestion in spec["terms"].items():
            terms.setdefault(term.lower(), (category, suggestion or spec["suggestion"]))
        for pattern, suggestion in spec.get("patterns", {}).items():
            patterns.append((re.compile(pattern, re.IGNORECASE), category, suggestion or spec["suggestion"]))
    allow = data["allow"]
    allow_parts = [_alternation([t.lower() for t in allow["terms"]])] + list(allow.get("patterns", []))
    return _Lexicon(
        version=data["version"],
        terms=terms,
        term_lengths=tuple(sorted({len(t) for t in terms}, reverse=True)),
        first_chars=frozenset(t[0] for t in terms),
        patterns=tuple(patterns),
        allow_re=re.compile("|".join(f"(?:{p})" for p in allow_parts if p), re.IGNORECASE),
        labels=labels,
    )


def lexicon_version() -> str:
    """Version string of the shipped lexicon."""
    return load_lexicon().version


def _term_spans(lowered: str, lex: _Lexicon) -> list[tuple[int, int]]:
    # Every (possibly overlapping) literal occurrence, by dictionary look-up of each substring length:
    # much faster than a 300-way regex alternation on short copy.
    spans = []
    n = len(lowered)
    for i in range(n):
        if lowered[i] not in lex.first_chars:
            continue
        for length in lex.term_lengths:
            if i + length <= n and lowered[i : i + length] in lex.terms:
                spans.append((i, i + length))
    return spans


def check(text: str) -> list[Hit]:
    """Every advertising-law hit in `text`, in reading order; overlapping hits are merged into the longest."""
    lex = load_lexicon()
    allowed = [m.span() for m in lex.allow_re.finditer(text)]
    raw: list[Hit] = []
    lowered = text.lower()
    for start, end in _term_spans(lowered, lex):
        term = text[start:end]
        category, suggestion = lex.terms[lowered[start:end]]
        raw.append(Hit(start, end, term, category, suggestion))
    for regex, category, suggestion in lex.patterns:
        for m in regex.finditer(text):
            raw.append(Hit(m.start(), m.end(), m.group(0), category, suggestion))
    kept = [h for h in raw if not any(a <= h.start and h.end <= b for a, b in allowed)]
    # Longest first, then drop hits inside an already kept one: 第一品牌 absorbs 第一.
    kept.sort(key=lambda h: (-(h.end - h.start), h.start))
    merged: list[Hit] = []
    for hit in kept:
        if not any(m.start <= hit.start and hit.end <= m.end for m in merged):
            merged.append(hit)
    merged.sort(key=lambda h: (h.start, h.end))
    return merged


def is_clean(text: str) -> bool:
    """True when the text has no advertising-law hit."""
    return not check(text)


def category_label(category: str) -> str:
    """The Chinese label of a category (绝对化用语 …)."""
    return load_lexicon().labels.get(category, category)
