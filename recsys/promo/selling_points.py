"""Selling points: one or two factual attributes taken from the title itself, never invented.

Candidates are the title's attribute words (the catalogue lexicon's attributes and our generic list)
plus function words shaped like attributes (防滑, 免打孔, 加厚, 可折叠 …); advertising-law terms were
already dropped by the tokenizer. Lexicon attributes come first, then rarer words by jieba's IDF,
so 大容量 beats 简约, and style words (韩版, 简约) only fill in last. Words already in the short title are skipped.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from recsys.promo.tokenize import tokenizer, vocabulary

_ATTRIBUTE_SHAPE = re.compile(r"^(?:防|免|加|可|耐|抗|速|静|超|双|轻|大|小|无)[\u4e00-\u9fff]{1,3}$")
# Style words are attributes but say little about the product; they only fill in when nothing else does.
_WEAK = frozenset({"韩版", "简约", "休闲", "时尚", "百搭", "复古", "可爱", "创意", "商务", "运动", "户外", "潮流", "个性"})


@cache
def _idf() -> tuple[dict[str, float], float]:
    import jieba.analyse

    extractor = jieba.analyse.TFIDF()
    extractor.tokenizer = tokenizer()
    freq = extractor.idf_freq
    return freq, extractor.median_idf


def _rank(word: str, from_lexicon: bool) -> tuple[int, int, float]:
    idf, median = _idf()
    return (1 if word in _WEAK else 0, 0 if from_lexicon else 1, -idf.get(word, median))


@lru_cache(maxsize=100_000)
def selling_points(title: str, brand: str | None = None, short: str = "", max_points: int = 2) -> tuple[str, ...]:
    """Up to `max_points` attribute words from the title, best first, none repeated from `short`."""
    from features import lexicon
    from recsys.promo.shorten import title_tokens

    catalogue = {a.lower() for a in lexicon.all_attributes()}
    vocab = vocabulary()
    candidates: dict[str, tuple[int, int, float]] = {}
    for word, kind in title_tokens(title, brand):
        key = word.lower()
        if kind == "noise" or key in candidates or key in short.lower() or len(key) < 2:
            continue
        if kind == "attr" or key in vocab.attributes or (kind in {"other", "unknown"} and _ATTRIBUTE_SHAPE.match(key)):
            candidates[word] = _rank(key, key in catalogue)
    ranked = sorted(candidates, key=lambda w: candidates[w])
    return tuple(ranked[:max_points])
