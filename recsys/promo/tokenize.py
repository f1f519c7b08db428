"""jieba set up once for promo copy: a private tokenizer that knows the catalogue lexicon and our title words.

A private `jieba.Tokenizer` (not the global one) keeps our user words from changing how other modules
segment text. Words come from `features/lexicon.py` (brands, product words, attributes) and from
`title_words.json` (generic product words, attributes and keyword-stuffing words for real titles).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jieba
import jieba.posseg

WORDS_PATH = Path(__file__).with_name("title_words.json")
_LOCK = threading.Lock()

jieba.setLogLevel(logging.WARNING)


@dataclass(frozen=True)
class TitleVocabulary:
    """Word sets the short-title and selling-point code classify tokens with."""

    brands: frozenset[str]
    product_words: frozenset[str]
    product_suffixes: tuple[str, ...]
    not_product_words: frozenset[str]
    attributes: frozenset[str]
    stuffing: frozenset[str]
    hosts: frozenset[str] = frozenset()  # devices other goods are made for (手机, 电脑, 汽车)
    services: frozenset[str] = frozenset()  # what a service listing sells (清洗, 维修, 租赁)
    wanted: frozenset[str] = frozenset()  # a buyer's listing, nothing on offer (求购)
    resale: frozenset[str] = frozenset()  # a private resale marker in front of the goods (转卖, 出)
    book_markers: tuple[str, ...] = ()  # words only a book listing has (编著, 出版社)


def _lexicon_parts() -> tuple[dict[str, str], dict[str, str], set[str], list[str]]:
    # The catalogue lexicon is another module's; read it through its public API only.
    from features import lexicon

    return lexicon.all_brands(), lexicon.all_product_words(), lexicon.all_attributes(), lexicon.jieba_userdict_lines()


def _fillers() -> set[str]:
    # Audience and occasion words sellers append to titles that look like a product word (孕妇零食,
    # 办公室零食 hold 零食) name no product; plain ones (家用, 儿童) stay modifiers.
    from features import lexicon

    data = json.loads(WORDS_PATH.read_text("utf-8"))
    words = set(lexicon.all_product_words()) | set(data["product_words"])
    fillers = {w for spec in lexicon.CATEGORIES.values() for w in spec.fillers}
    return {f for f in fillers if any(len(w) > 1 and w != f and w in f for w in words)}


@cache
def vocabulary() -> TitleVocabulary:
    """The merged vocabulary (catalogue lexicon + our generic title words), lower-cased."""
    data = json.loads(WORDS_PATH.read_text("utf-8"))
    brands, products, attributes, _ = _lexicon_parts()
    low = str.lower
    # A catalogue attribute (咀嚼片, 软胶囊 are forms of a supplement) is never the product word.
    generic = [w for w in data["product_words"] if w not in attributes]
    # A word listed as no product word (礼盒, 套装: packaging) never heads a title, whoever lists it.
    never = set(map(low, data["not_product_words"]))
    return TitleVocabulary(
        brands=frozenset(map(low, brands)),
        product_words=frozenset(w for w in map(low, [*products, *generic]) if w not in never),
        product_suffixes=tuple(sorted(data["product_suffixes"], key=len, reverse=True)),
        not_product_words=frozenset(map(low, data["not_product_words"])),
        attributes=frozenset(map(low, [*attributes, *data["attributes"]])),
        stuffing=frozenset(map(low, [*data["stuffing"], *_fillers()])),
        hosts=frozenset(map(low, data.get("host_words", []))),
        services=frozenset(map(low, data.get("service_words", []))),
        wanted=frozenset(map(low, data.get("wanted_words", []))),
        resale=frozenset(map(low, data.get("resale_words", []))),
        book_markers=tuple(map(low, data.get("book_markers", []))),
    )


@cache
def _tokenizers() -> tuple[jieba.Tokenizer, jieba.posseg.POSTokenizer]:
    with _LOCK:
        tok = jieba.Tokenizer()
        tok.initialize()
        _, _, _, lines = _lexicon_parts()
        for line in lines:
            word, freq, tag = line.rsplit(" ", 2)
            tok.add_word(word.lower(), int(freq), tag)
        data = json.loads(WORDS_PATH.read_text("utf-8"))
        for word in data["product_words"]:
            tok.add_word(word.lower(), 20000, "n")
        for word in data["attributes"]:
            tok.add_word(word.lower(), 10000, "a")
        for word in [*data["stuffing"], *_fillers()]:
            if len(word) > 1:
                tok.add_word(word.lower(), 10000, "x")
        return tok, jieba.posseg.POSTokenizer(tok)


def tokenizer() -> jieba.Tokenizer:
    """The shared private jieba tokenizer (built on first use, about a second)."""
    return _tokenizers()[0]


def cut_pos(text: str) -> list[tuple[str, str]]:
    """(word, part-of-speech flag) pairs of a text, lower-cased, HMM on for unknown brands."""
    return [(p.word, p.flag) for p in _tokenizers()[1].cut(text.lower(), HMM=True)]


def word_frequency(word: str) -> int:
    """jieba's dictionary frequency of a word (0 when unknown: a hint that it is a name or brand)."""
    return int(tokenizer().FREQ.get(word, 0) or 0)
