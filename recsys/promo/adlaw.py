"""The advertising-law check: find wording that China's Advertising Law (广告法) forbids in promo copy, with
spans, categories, the article each hit breaks, a suggestion and, where one is safe, a mechanical rewrite.

The lexicon is data (`adlaw_lexicon.json`, versioned). Each category names its article: 绝对化用语 第九条第三项,
国家机关名义与特供 第九条第二项, 封建迷信 第九条第九项, 无出处的荣誉与引证 第十一条第二款, 专利 第十二条,
功效与安全性保证 第十六条第一款第一项, 疾病治疗与医疗用语 第十七条, 保健功能 第十八条, 教育培训 第二十四条,
投资回报 第二十五条, 赠送 第八条第二款, 虚假紧迫 第八条第一款, 保证、中奖诱导与虚构价格 第二十八条,
驰名商标 商标法第十四条第五款 (the Advertising Law has no article of its own for it).

Matching survives the usual disguises: the text is folded character by character (NFKC, so full-width
ＴＯＰ１ and １００％ read as TOP1 and 100%; lower case; traditional characters to simplified), spaces, symbols,
emoji and punctuation between characters are skipped (最 好 用, 最·好, 最，好，用, No.1 = NO1; a decimal point
between digits stays), and a lone digit 1 reads as 一 (第1名, 排名第1, TOP1, 第1次 stays the allowed 第一次).
Spans are always reported in the original text.

A hit that lies wholly inside an allowed span is dropped, and every occurrence of an allowed phrase counts,
overlapping ones included: in 高矮胖瘦身型 the allowed 胖瘦身 covers 瘦身, while 高矮胖瘦 (which covers only
part of it) suppresses nothing. This is how time, order and quantity words (最近, 最后一次, 第一次, 最多) and
factual phrases (好评率100%, 100%纯棉, 唯一的缺点) stay legal while 最好, 第一品牌 and 100%有效 are caught.
Decided on purpose: 最后一天 (a date fact) is allowed, the pressure phrases 最后一波 / 最后机会 are caught;
bare 推荐, 安全, 选用, 试用, 指定, 排序, 热销 are ordinary words, caught only inside an authority or guarantee
phrase (专家推荐, 绝对安全, 官方指定); 有效 after a duration (优惠券7天有效) is a validity, not an efficacy claim.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LEXICON_PATH = Path(__file__).with_name("adlaw_lexicon.json")

# % belongs to claims (100%有效); book-title marks let the allow list keep titles (《王牌特工》) whole.
_KEPT = frozenset("%《》")
_DIGITS = frozenset("0123456789")
_LONE_ONE = re.compile(r"(?<![0-9.])1(?![0-9.])")
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


@dataclass(frozen=True)
class Hit:
    """One flagged span: [start, end) in the original text, its text, category, suggestion, article and rewrite."""

    # rewrite: the safe replacement of the span, "" to drop it, None when no mechanical rewrite is safe.

    start: int
    end: int
    term: str
    category: str
    suggestion: str
    article: str = ""
    rewrite: str | None = None


@dataclass(frozen=True)
class _Entry:
    category: str
    suggestion: str
    article: str
    rewrite: str | None


@dataclass(frozen=True)
class _Lexicon:
    version: str
    terms: dict[str, _Entry]  # folded term -> entry
    term_lengths: dict[str, tuple[int, ...]]
    term_first: re.Pattern[str]
    patterns: tuple[tuple[re.Pattern[str], _Entry], ...]
    allow_terms: frozenset[str]
    allow_lengths: dict[str, tuple[int, ...]]
    allow_first: re.Pattern[str]
    allow_patterns: tuple[re.Pattern[str], ...]
    labels: dict[str, str]
    articles: dict[str, str]
    traditional: dict[str, str]


class _FoldTable(dict):
    """str.translate table that folds a character the first time it is seen (NFKC, lower case, simplified)."""

    def __init__(self, traditional: dict[str, str]) -> None:
        super().__init__()
        self.traditional = traditional

    def __missing__(self, code: int) -> str:
        out = []
        for ch in unicodedata.normalize("NFKC", chr(code)).lower():
            ch = self.traditional.get(ch, ch)
            # Punctuation, spaces, symbols, emoji and control characters between characters are skipped:
            # 最 好 用, 最·好 and 最，好，用 all read as 最好用. Reading across sentence breaks found no new hit
            # on the 1,070 AdvertiseGen ads. They become a gap mark first, because a gap between two digits
            # must stay a boundary (TOP1，7天 is not 17天) and a point between digits is a decimal point.
            if ch in _KEPT or unicodedata.category(ch)[0] not in "PZSC":
                out.append(ch)
            elif ch == "." or not out or out[-1] != _GAP_MARK:
                out.append("." if ch == "." else _GAP_MARK)
        folded = "".join(out)
        self[code] = folded
        return folded


_GAP_MARK = "\x00"
_GAPS = re.compile("[\x00.]+")
_GAP_CHARS = frozenset("\x00.")
# What a gap between two digits leaves: a mark that no term or pattern contains.
_DIGIT_BOUNDARY = "|"


def _gap(m: re.Match[str]) -> str:
    # Between two digits a lone point is a decimal point (1.5) and any other gap a boundary (TOP1，7天), except
    # inside spaced-out single digits (1 0 0 %: a one-digit number with a gap on its other side too);
    # elsewhere a gap is nothing.
    s, i, j = m.string, m.start(), m.end()
    if i == 0 or s[i - 1] not in _DIGITS or s[j : j + 1] not in _DIGITS:
        return ""
    if m.group() == ".":
        return "."
    if i >= 2 and s[i - 2] in _DIGITS:
        return _DIGIT_BOUNDARY
    spaced = i == 1 or s[i - 2] in _GAP_CHARS or (s[j + 1 : j + 2] != "" and s[j + 1] in _GAP_CHARS)
    return "" if spaced else _DIGIT_BOUNDARY


class _Folder:
    """Folds text for matching and, when asked, says where each folded character came from."""

    def __init__(self, traditional: dict[str, str]) -> None:
        self.table = _FoldTable(traditional)

    def text(self, text: str) -> str:
        """The folded text alone: one C-level translate on the hot path, where most copy has no hit."""
        folded = text.translate(self.table)
        if _GAP_MARK in folded or "." in folded:
            folded = _GAPS.sub(_gap, folded)
        return _LONE_ONE.sub("一", folded) if "1" in folded else folded

    def fold(self, text: str) -> tuple[str, list[int]]:
        """The folded text (as `text` gives it) and, per folded character, its offset in `text`."""
        chars: list[str] = []
        index: list[int] = []
        table = self.table
        for i, c in enumerate(text):
            f = table[ord(c)]
            if len(f) == 1:
                chars.append(f)
                index.append(i)
            elif f:
                chars.extend(f)
                index.extend([i] * len(f))
        joined = "".join(chars)
        pieces: list[str] = []
        kept: list[int] = []
        last = 0
        for m in _GAPS.finditer(joined):
            pieces.append(joined[last : m.start()])
            kept.extend(index[last : m.start()])
            gap = _gap(m)
            pieces.append(gap)
            kept.extend([index[m.start()]] * len(gap))
            last = m.end()
        pieces.append(joined[last:])
        kept.extend(index[last:])
        return _LONE_ONE.sub("一", "".join(pieces)), kept


def _lengths(words) -> dict[str, tuple[int, ...]]:
    # Per first character, the lengths of the words that start with it, longest first.
    by_first: dict[str, set[int]] = {}
    for w in words:
        by_first.setdefault(w[0], set()).add(len(w))
    return {c: tuple(sorted(ls, reverse=True)) for c, ls in by_first.items()}


@cache
def load_lexicon(path: str | None = None) -> _Lexicon:
    """Load and compile the lexicon (cached; pass a path to check against another version)."""
    data = json.loads(Path(path or LEXICON_PATH).read_text("utf-8"))
    pairs = data.get("traditional", "")
    traditional = {pairs[i]: pairs[i + 1] for i in range(0, len(pairs) - 1, 2)}
    folder = _Folder(traditional)
    terms: dict[str, _Entry] = {}
    patterns: list[tuple[re.Pattern[str], _Entry]] = []
    labels: dict[str, str] = {}
    articles: dict[str, str] = {}
    for category, spec in data["categories"].items():
        labels[category] = spec["label"]
        articles[category] = spec["article"]
        overrides = spec.get("articles", {})
        for term, rewrite in spec["terms"].items():
            entry = _Entry(category, _suggestion(rewrite, spec["suggestion"]), overrides.get(term, spec["article"]), rewrite)
            terms.setdefault(folder.fold(term)[0], entry)
        for pattern, rewrite in spec.get("patterns", {}).items():
            entry = _Entry(category, _suggestion(rewrite, spec["suggestion"]), spec["article"], rewrite)
            patterns.append((re.compile(pattern), entry))
    allow_terms = frozenset(folder.fold(t)[0] for t in data["allow"]["terms"])
    return _Lexicon(
        version=data["version"],
        terms=terms,
        term_lengths=_lengths(terms),
        term_first=_first_chars(_lengths(terms)),
        patterns=tuple(patterns),
        allow_terms=allow_terms,
        allow_lengths=_lengths(allow_terms),
        allow_first=_first_chars(_lengths(allow_terms)),
        allow_patterns=tuple(re.compile(p) for p in data["allow"].get("patterns", [])),
        labels=labels,
        articles=articles,
        traditional=traditional,
    )


def _suggestion(rewrite: str | None, default: str) -> str:
    # A soft word is itself the suggestion (最好用 -> 好用); a drop or an unsafe term gets the category's advice.
    return rewrite if rewrite else default


@cache
def _folder() -> _Folder:
    return _Folder(load_lexicon().traditional)


def fold(text: str) -> str:
    """The text as the matcher reads it (NFKC, lower case, simplified, separators skipped, a lone 1 as 一)."""
    return _folder().text(text)


def lexicon_version() -> str:
    """Version string of the shipped lexicon."""
    return load_lexicon().version


def _first_chars(lengths: dict[str, tuple[int, ...]]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in sorted(lengths)) + "]")


def _literal_spans(folded: str, words: frozenset[str] | dict, lengths: dict[str, tuple[int, ...]],
                   first: re.Pattern[str]) -> list[tuple[int, int]]:
    # Every (possibly overlapping) occurrence: a character-class scan in C finds where a word can start, then
    # a dictionary look-up per word length; much faster than a many-way regex alternation on short copy.
    n = len(folded)
    spans = []
    for m in first.finditer(folded):
        i = m.start()
        for length in lengths[folded[i]]:
            j = i + length
            if j <= n and folded[i:j] in words:
                spans.append((i, j))
    return spans


def _latin_bounded(folded: str, i: int, j: int) -> bool:
    # TOP1 must not match inside STOP1 or TOP10: a Latin or digit edge needs a non-alphanumeric neighbour.
    if folded[i] in _ASCII_ALNUM and i > 0 and folded[i - 1] in _ASCII_ALNUM:
        return False
    return not (folded[j - 1] in _ASCII_ALNUM and j < len(folded) and folded[j] in _ASCII_ALNUM)


def _allowed_spans(folded: str, lex: _Lexicon) -> list[tuple[int, int]]:
    spans = list(_literal_spans(folded, lex.allow_terms, lex.allow_lengths, lex.allow_first))
    for regex in lex.allow_patterns:
        # Every start position, not finditer's non-overlapping matches: an allowed span hidden inside another
        # one must still count.
        m = regex.search(folded)
        while m:
            spans.append(m.span())
            m = regex.search(folded, m.start() + 1)
    return spans


def check(text: str) -> list[Hit]:
    """Every advertising-law hit in `text`, in reading order; overlapping hits are merged into the longest."""
    lex = load_lexicon()
    folder = _folder()
    folded = folder.text(text)
    raw: list[tuple[int, int, _Entry]] = []
    for i, j in _literal_spans(folded, lex.terms, lex.term_lengths, lex.term_first):
        if _latin_bounded(folded, i, j):
            raw.append((i, j, lex.terms[folded[i:j]]))
    for regex, entry in lex.patterns:
        for m in regex.finditer(folded):
            if m.end() > m.start():  # a pattern that can match empty must not make an empty hit
                raw.append((m.start(), m.end(), entry))
    if not raw:
        return []
    index = folder.fold(text)[1]
    allowed = _allowed_spans(folded, lex)
    kept = [r for r in raw if not any(a <= r[0] and r[1] <= b for a, b in allowed)]
    # Longest first, then drop hits inside an already kept one: 第一品牌 absorbs 第一.
    kept.sort(key=lambda r: (r[0] - r[1], r[0]))
    merged: list[tuple[int, int, _Entry]] = []
    for r in kept:
        if not any(m[0] <= r[0] and r[1] <= m[1] for m in merged):
            merged.append(r)
    hits = []
    for i, j, e in sorted(merged, key=lambda r: (r[0], r[1])):
        start, end = index[i], index[j - 1] + 1
        hits.append(Hit(start, end, text[start:end], e.category, e.suggestion, e.article, e.rewrite))
    return hits


def is_clean(text: str) -> bool:
    """True when the text has no advertising-law hit."""
    return not check(text)


def category_label(category: str) -> str:
    """The Chinese label of a category (绝对化用语 …)."""
    return load_lexicon().labels.get(category, category)


def category_article(category: str) -> str:
    """The article a category's hits break, e.g. 广告法第九条第三项."""
    return load_lexicon().articles.get(category, "")


def safe_rewrite(text: str) -> str | None:
    """The text made compliant by softening or dropping each hit, or None when a hit has no safe rewrite.

    A clean text comes back unchanged. Only terms whose lexicon entry carries a rewrite are touched
    (最好用 -> 好用, 极佳 -> 很好, 绝对 and the 最 of 最适合 dropped); medical, efficacy, authority, ranking,
    prize and pricing claims carry none, because removing them leaves a sentence that still makes the claim
    or no longer reads. The result is checked again and must be non-empty.
    """
    hits = check(text)
    if not hits:
        return text
    out = text
    # Right to left so that earlier offsets stay valid; hits that overlap cannot be rewritten one by one.
    for k in range(len(hits) - 1, -1, -1):
        hit = hits[k]
        if hit.rewrite is None or (k + 1 < len(hits) and hits[k + 1].start < hit.end):
            return None
        if not hit.rewrite and not _word_follows(text, hit.end):
            # A dropped adverb or prefix needs the word it modified: 就是最！ cannot just lose its 最.
            return None
        out = out[: hit.start] + hit.rewrite + out[hit.end :]
    out = out.strip()
    if not out or check(out):
        return None
    return out


def _word_follows(text: str, end: int) -> bool:
    return end < len(text) and unicodedata.category(text[end])[0] in "LN"
