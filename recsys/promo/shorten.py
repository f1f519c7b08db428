"""Short titles: brand + one or two key attributes + the product word, from a long listing title.

`羚跑商务背包双肩包男士防盗多功能出差韩版休闲15.6寸电脑包皮潮` becomes `羚跑商务双肩包`. Tokens come from
jieba with the catalogue lexicon and our own word lists (title_words.json); model numbers, sizes,
years, keyword stuffing and advertising-law terms are dropped. The product word is a listed word, or
a noun ending in a product head (…包, …机, …霜); jieba's splits of rarer compounds are merged back
(固态/硬盘, 棉/拖鞋, 图书/籍). The anchor is chosen by general rules: a listed word beats a guessed
one, a gift (赠…) is not the product, the product word a title repeats wins, and since Chinese noun
phrases are head-final, a later product word glued on within a few words (维生素运动饮料) is the head.
Titles without any product word keep their leading words plus their last plain noun. When the brand
is known (given, or a lexicon brand in the title) the short title is brand + at most two modifiers
nearest the product word + the product word. When it is not, the brand is kept by position: a Taobao
title nearly always names its brand before its first product word, usually first, so the leading
word, Latin words and words jieba does not know outrank ordinary modifiers when the title must be cut.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from recsys.promo.adlaw import check
from recsys.promo.tokenize import cut_pos, vocabulary, word_frequency


def is_claim(word: str) -> bool:
    """A health or efficacy claim (the selling-point module's list), never part of a short title."""
    from recsys.promo.selling_points import is_claim as claim

    return claim(word)

_SEGMENT = re.compile(r"[^\s,，、/\\|+＋;；:：!！?？。．·•~～—_＿*＊#＃&＠@【】\[\]()（）《》<>「」『』\"'“”‘’]+")
_HAS_DIGIT = re.compile(r"\d")
_PART_BREAK = re.compile(r"[,，、/\\|;；!！?？。【】\[\]()（）《》「」]")
_LATIN = re.compile(r"^[a-z][a-z'.]*$")
_SIZES = {"s", "m", "l", "xl", "xxl", "xxxl", "xs", "cm", "mm", "ml", "kg", "g", "w", "v", "a", "mah", "gb", "tb"}
_PRODUCT_FLAGS = {"n", "nz", "ng", "x", "vn", "eng"}
# jieba tags many three-character product words oddly (留声机/l, 一体机/d); only names and function words are ruled out.
_NOT_PRODUCT_FLAGS = {"ns", "nt", "t", "m", "q", "r", "p", "c", "u", "uj", "f", "v"}
# From three characters a word ending in a product head is a product whatever jieba's dictionary tags it
# (越野车/nt, 调味料/v, 玩具狗/i); only places, times, numbers and function words are ruled out.
_NOT_LONG_PRODUCT_FLAGS = {"ns", "t", "m", "q", "r", "p", "c", "u", "uj", "f", "d"}
_FUNCTION_FLAGS = {"uj", "ul", "c", "p", "r", "d", "m", "q", "y", "e", "o", "x", "zg", "f"}
_NUMERALS = set("一二三四五六七八九十两百千万几半")
_NEGATORS = frozenset({"不", "无", "非", "没", "没有", "不会", "不易"})
_KNOWN_BRAND_MODIFIERS = 2  # "one or two key attributes"
_BLIND_MODIFIERS = 3  # one more, since the brand may hide among them


@dataclass
class _Token:
    text: str  # as written in the title
    key: str  # lower-cased
    kind: str  # brand | product | attr | latin | unknown | other | noise
    start: int
    end: int
    index: int = 0
    flag: str = ""  # jieba's part of speech
    known: bool = False  # a product word from a word list, not guessed from its last character
    segment: int = 0  # which punctuation-separated part of the title (spaces do not separate parts)


def _classify(word: str, flag: str, brand: str | None) -> str:
    vocab = vocabulary()
    if brand and word == brand:
        return "brand"
    if not any(ch.isalnum() for ch in word):
        return "noise"
    if _HAS_DIGIT.search(word) or word in _SIZES or word in vocab.stuffing:
        return "noise"
    if word in vocab.brands:
        return "other" if brand else "brand"
    if word in vocab.product_words:
        return "product"
    if word in vocab.attributes or (len(word) == 2 and word.endswith("色") and flag != "v"):
        return "attr"  # a colour (绿色, 酒红色) says how the product looks, never what it is
    if word in vocab.resale or word in vocab.wanted:
        return "noise"
    if _LATIN.match(word):
        return "latin" if len(word) >= 2 else "noise"
    if (
        len(word) >= 2
        and word not in vocab.not_product_words
        and word.endswith(vocab.product_suffixes)
        and (flag in _PRODUCT_FLAGS or (len(word) >= 3 and flag not in _NOT_LONG_PRODUCT_FLAGS))
    ):
        return "product"
    if len(word) >= 2 and word_frequency(word) == 0:
        return "unknown"
    if len(word) == 1 and flag in _FUNCTION_FLAGS:
        return "noise"
    if (flag in {"m", "mq", "q"} and word[0] in _NUMERALS) or (word[0] == "第" and word[1:2] in _NUMERALS):
        return "noise"  # 一台, 两件, 第七十七: a quantity or ordinal is a spec, never a word of the name
    return "other"


def _raw_tokens(text: str, brand: str | None) -> list[_Token]:
    tokens: list[_Token] = []
    for seg in _SEGMENT.finditer(text):
        start, segment = seg.start(), seg.group(0)
        # Keep a known brand whole even when jieba would split an unfamiliar name.
        parts = re.split(f"({re.escape(brand)})", segment) if brand and brand in segment else [segment]
        for part in parts:
            if not part:
                continue
            if part == brand:
                tokens.append(_Token(part, part, "brand", start, start + len(part)))
            else:
                pos = start
                for word, flag in cut_pos(part):
                    if word.strip():
                        kind = _classify(word, flag, brand)
                        known = kind == "product" and word in vocabulary().product_words
                        tokens.append(_Token(word, word, kind, pos, pos + len(word), flag=flag, known=known))
                    pos += len(word)
            start += len(part)
    return tokens


def _drop_model_numbers(tokens: list[_Token]) -> None:
    # A Latin word glued to digits or a hyphen (fcd-215sea, sw-2000) is a model number, not a brand.
    for i, tok in enumerate(tokens):
        if tok.kind != "latin" and not (tok.kind == "product" and _LATIN.match(tok.key)):
            continue
        for j in (i - 1, i + 1):
            if 0 <= j < len(tokens):
                other = tokens[j]
                glued = other.end == tok.start or tok.end == other.start
                if glued and (_HAS_DIGIT.search(other.key) or other.key in {"-", "."}):
                    tok.kind = "noise"


_COMPATIBLE_AFTER = frozenset({"通用", "适用", "专用", "兼容", "适配", "可用", "款通用"})
_COMPATIBLE_BEFORE = frozenset({"适用", "适用于", "兼容", "适配", "for", "适合", "用于", "专用"})


def _compatible_brand(tokens: list[_Token], brand: str) -> bool:
    """True when the given brand names what the product fits (雪铁龙新爱丽舍专用, 三星苹果通用), not its maker."""
    for i, tok in enumerate(tokens):
        if tok.key != brand:
            continue
        if i > 0 and tokens[i - 1].key in _COMPATIBLE_BEFORE and tokens[i - 1].end == tok.start:
            return True
        # A model or another brand may sit between the brand and the marker (新 爱丽舍, 苹果).
        for nxt in tokens[i + 1 : i + 4]:
            if nxt.key in _COMPATIBLE_AFTER:
                return True
            if nxt.kind not in {"brand", "unknown", "latin", "other"} and nxt.key not in vocabulary().brands:
                break
    return False


def _drop_compatible_brands(tokens: list[_Token]) -> None:
    # 三星苹果通用 or 适用华为: the brand names what the product fits, not who made it, so it is no
    # brand and no word of the short title. A run of brands (三星 苹果) before 通用 all go.
    for i, tok in enumerate(tokens):
        if tok.key in _COMPATIBLE_AFTER | _COMPATIBLE_BEFORE:
            tok.kind = "noise"  # 适用 / 通用 never belong in a short title either
        if tok.key in _COMPATIBLE_AFTER:
            j, models = i - 1, 0
            while j >= 0:
                other = tokens[j]
                if other.kind == "brand" or other.key in vocabulary().brands:
                    other.kind = "noise"
                elif other.kind in {"unknown", "latin", "other"} and models < 2 and any(
                        t.kind == "brand" or t.key in vocabulary().brands for t in tokens[max(0, j - 2) : j]):
                    other.kind = "noise"  # 雪铁龙 新爱丽舍 专用: the model of what it fits goes too
                    models += 1
                else:
                    break
                j -= 1
        if tok.key in _COMPATIBLE_BEFORE:
            j = i + 1
            while j < len(tokens) and (tokens[j].kind == "brand" or tokens[j].key in vocabulary().brands):
                tokens[j].kind = "noise"
                j += 1


def _merge_heads(tokens: list[_Token]) -> list[_Token]:
    # jieba splits unfamiliar compounds (亲子/鞋): a one-character product head glued to the word
    # before it makes the product word (亲子鞋).
    suffixes = set(vocabulary().product_suffixes)
    out: list[_Token] = []
    for i, tok in enumerate(tokens):
        prev = out[-1] if out else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        # 手机壳 带 挂绳: a character that starts the next product word's phrase is no end of this one.
        leads_on = nxt is not None and nxt.start == tok.end and nxt.kind == "product"
        if (
            prev is not None
            and prev.end == tok.start
            and len(tok.key) == 1
            and tok.key in suffixes
            and prev.kind in {"other", "unknown", "attr", "product"}
            and not (prev.kind == "product" and leads_on and tok.flag in {"v", "p", "d", "c"})
            and len(prev.key) <= 4
        ):
            out[-1] = _Token(prev.text + tok.text, prev.key + tok.key, "product", prev.start, tok.end)
        else:
            out.append(tok)
    for i, tok in enumerate(out):
        tok.index = i
    return out


_NOUN_FLAGS = {"n", "ng"}
_HEAD_REACH = 3  # a head product word at most this many glued tokens after another
_HEAD_FLAGS = {"n", "vn", "nz", "ng"}
_GIFT_WORDS = {"送", "赠", "赠送", "加送", "送的", "附赠"}
# One-character nouns that follow a product word without being part of it (羽绒服男, 外套秋).
_NOT_HEAD_CHARS = set("男女款装码版色式型号童春夏秋冬季新大小中潮送用件个只双套全")
_COMPOUND_MAX = 6


def _starts_next(tokens: list[_Token], tok: _Token) -> bool:
    # 记事本 手 帐本: a character glued to the Chinese word after it begins that word, it ends no other.
    at = next((i for i, t in enumerate(tokens) if t is tok), -1)
    nxt = tokens[at + 1] if 0 <= at < len(tokens) - 1 else None
    return (nxt is not None and nxt.start == tok.end and "\u4e00" <= nxt.key[:1] <= "\u9fff"
            # 龙/年 is one word and 手 begins 手帐本; 船 before 快艇 ends 钓鱼船.
            and (word_frequency(tok.key + nxt.key[:1]) > 0 or len(nxt.key) == 1 or nxt.kind == "product"))


def _after_number(out: list[_Token]) -> bool:
    # 第二 版 / 200 粒: a lone character right after a number is its measure word, not part of a name.
    left = out[-1]
    before = out[-2] if len(out) > 1 else None
    return (len(left.key) == 1 and before is not None and before.end == left.start
            and (bool(_HAS_DIGIT.search(before.key)) or before.flag in {"m", "mq"}))


def _merge_compounds(tokens: list[_Token]) -> list[_Token]:
    # jieba cuts rarer product compounds in two: 固态/硬盘, 棉/拖鞋, 图书/籍, 葡式蛋/挞. Chinese nouns are
    # head-final, so plain nouns glued before a product word belong to it, and so does a glued
    # one-character noun after it.
    vocab = vocabulary()
    out: list[_Token] = []
    for tok in tokens:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.kind == "product"
            and prev.end == tok.start
            and len(tok.key) == 1
            and tok.kind in {"other", "unknown"}
            and tok.flag in {"n", "ng", "g"}
            and tok.key not in _NOT_HEAD_CHARS
            and len(prev.key) + 1 <= _COMPOUND_MAX
            and not _starts_next(tokens, tok)
        ) or (
            prev is not None
            and prev.kind == "product"
            and prev.end == tok.start
            and len(tok.key) == 2
            and tok.kind == "other"
            and tok.flag == "n"
            # Only a noun that is itself a head (棉/拖鞋 style) continues the product: 内衣 圆领 or
            # 护理液 女性 are a product and a modifier after it, not one word.
            and (tok.key.endswith(vocab.product_suffixes) or tok.key[-1] in "子儿")
            and tok.key not in vocab.not_product_words
            and tok.key not in vocab.brands  # 眼镜 苹果: a brand after the product names what it fits
            and len(prev.key) + 2 <= _COMPOUND_MAX
        ):
            out[-1] = _Token(prev.text + tok.text, prev.key + tok.key, "product", prev.start, tok.end, flag="n", known=prev.known)
            continue
        if tok.kind == "product":
            merged = 0
            while (
                merged < 2
                and out
                and out[-1].end == tok.start
                and out[-1].kind == "other"
                and out[-1].flag in _NOUN_FLAGS
                and len(out[-1].key) <= 2
                and out[-1].key not in vocab.not_product_words
                and len(out[-1].key) + len(tok.key) <= _COMPOUND_MAX
                and not _after_number(out)
            ):
                left = out.pop()
                tok = _Token(left.text + tok.text, left.key + tok.key, "product", left.start, tok.end, flag="n", known=tok.known)
                merged += 1
        out.append(tok)
    for i, tok in enumerate(out):
        tok.index = i
    return out


def _merge_cut_words(tokens: list[_Token]) -> list[_Token]:
    # A listed product word can swallow the end of the word before it (自行车锁 cut as 自行/车锁,
    # 摩托车锁 as 摩托/车锁): when the glued left token plus the product word's first character is a
    # dictionary word, the whole run is one product word, or the short title would start on 自行.
    out: list[_Token] = []
    vocab = vocabulary()
    for tok in tokens:
        prev = out[-1] if out else None
        if (
            prev is not None
            and tok.kind == "product"
            and prev.end == tok.start
            and prev.kind in {"other", "unknown", "attr"}
            and len(tok.key) >= 2
            and len(prev.key) + len(tok.key) <= _COMPOUND_MAX
            and (word_frequency(prev.key + tok.key[0]) > 0 or prev.key + tok.key[0] in vocab.product_words)
            # Two characters only from a lone character (杨/梅酒 is 杨梅酒); 纯棉/袜 style pairs stay apart.
            and (len(prev.key) + 1 >= 3 or (len(prev.key) == 1 and prev.flag not in _FUNCTION_FLAGS))
        ):
            out[-1] = _Token(prev.text + tok.text, prev.key + tok.key, "product", prev.start, tok.end, flag="n",
                             known=tok.known)
            continue
        out.append(tok)
    return out


def _drop_resale_marker(tokens: list[_Token]) -> None:
    # 出一辆自行车, 【转卖】金丝玉: a private seller's 出 (sell) in front of the goods is no word of the goods.
    first = next((t for t in tokens if t.kind != "noise"), None)
    if first is not None and first.key == "出" and first.start <= 1:
        first.kind = "noise"


def _tokens(title: str, brand: str | None) -> list[_Token]:
    text = title.lower()
    # Lower-casing keeps offsets for the titles we see; tokens then show the title's own casing.
    source = title if len(title) == len(text) else text
    tokens = _raw_tokens(text, brand.lower() if brand else None)
    for tok in tokens:
        tok.text = source[tok.start : tok.end]
    _drop_model_numbers(tokens)
    _drop_compatible_brands(tokens)
    # Advertising-law terms in the title (顶级, 特供 …) must never reach the short title.
    bad = [(h.start, h.end) for h in check(text)]
    for tok in tokens:
        if any(s < tok.end and tok.start < e for s, e in bad):
            tok.kind = "noise"
    _drop_resale_marker(tokens)
    merged = _merge_compounds(_merge_heads(_merge_cut_words(tokens)))
    part, end = 0, 0
    for tok in merged:
        if _PART_BREAK.search(text[end : tok.start]):
            part += 1
        tok.segment, end = part, tok.end
    return merged


def _is_gift(tokens: list[_Token], product: _Token) -> bool:
    # 送/赠 within the glued words just before the product word: 赠防烫手套, 送收纳袋.
    start = product.start
    for tok in reversed(tokens[max(0, product.index - 4) : product.index]):
        if tok.end != start:
            return False
        if tok.key in _GIFT_WORDS or tok.key[:1] in {"送", "赠"}:
            return True  # also when jieba glued the gift word to the next one (赠防/烫手套)
        start = tok.start
    return False


def _anchor(tokens: list[_Token]) -> _Token | None:
    products = [t for t in tokens if t.kind == "product"]
    if not products:
        return None
    # A head a title repeats three times or more (驱蚊贴 防蚊贴 避蚊贴) is what is sold, listed or not.
    stuffed = Counter(t.key[-1] for t in products if not _is_gift(tokens, t))
    if stuffed and max(stuffed.values()) >= 3:
        top_char = stuffed.most_common(1)[0][0]
        products = [t for t in products if t.key[-1] == top_char]
    # A listed product word beats one guessed from its last character (鳄鱼, 全球 and 有线 end like products).
    if any(t.known for t in products):
        products = [t for t in products if t.known]
    # A product named after 送/赠 is a free gift, not what is sold.
    gifts = {t.index for t in products if _is_gift(tokens, t)}
    if len(gifts) < len(products):
        products = [t for t in products if t.index not in gifts]
    # Keyword stuffing repeats the real product word (广告机 … 广告机): the most repeated head wins.
    heads = Counter(t.key[-1] for t in products)
    top = max(heads.values())
    if top > 1:
        products = [t for t in products if heads[t.key[-1]] == top]
    brand_at = next((t.index for t in tokens if t.kind == "brand"), None)
    anchor = products[0]
    if brand_at is not None:
        after = [t for t in products if t.index > brand_at]
        if after and after[0].index - brand_at <= 6:
            anchor = after[0]
    anchor = _past_host(tokens, anchor)
    # Chinese noun phrases are head-final: in 黑胶唱片机, 背包双肩包 or 维生素运动饮料 the later
    # product word, glued on with at most a couple of modifiers between, is the head.
    for _ in range(3):
        head = _later_head(tokens, anchor)
        # The later word is only the head when it is as credible: a listed word does not give way to a
        # guessed one (笔记本电脑 有线, 熨斗 烫衣服), nor the title's repeated head to a one-off (…板 塑料).
        if head is None or (anchor.known and not head.known) or heads[head.key[-1]] < heads.get(anchor.key[-1], 0):
            break
        if head.index == anchor.index + 1 and head.key[-1] == anchor.key[-1]:
            anchor.kind = "noise"  # 背包 双肩包: the same head twice is keyword stuffing
        anchor = head
    return _service_head(tokens, anchor) or anchor


def _is_host(tok: _Token) -> bool:
    return any(tok.key == h or (len(h) > 1 and tok.key.endswith(h)) for h in vocabulary().hosts)


def _is_spec(tokens: list[_Token], tok: _Token) -> bool:
    # 内存16g, 512g固态: a part named beside its size is a spec of the device, not the goods.
    near = [t for t in tokens[max(0, tok.index - 1) : tok.index + 2] if t is not tok]
    return any(_HAS_DIGIT.search(t.key) and (t.end == tok.start or t.start == tok.end) for t in near)


def _past_host(tokens: list[_Token], anchor: _Token) -> _Token:
    # A device word (电脑, 手机, 汽车) before another product word names what the goods are for, as
    # 适用 would (台式机内存, 手机钢化膜, 智能电脑…饭煲): the goods are the later product word.
    if not _is_host(anchor):
        return anchor
    later = [t for t in tokens[anchor.index + 1 :] if t.kind == "product" and not _is_host(t) and t.segment == anchor.segment
             and not _is_gift(tokens, t) and not _is_spec(tokens, t)]
    if not later:
        return anchor
    return next((t for t in later if t.known), later[0])


def _service_head(tokens: list[_Token], anchor: _Token | None) -> _Token | None:
    # A service listing sells the service (地毯清洗, 空调维修): a service word glued right after the
    # product word, or after a noun glued to it, is the head, with the noun it applies to.
    services = vocabulary().services
    if anchor is not None:
        nxt = tokens[anchor.index + 1] if anchor.index + 1 < len(tokens) else None
        if nxt is not None and nxt.start == anchor.end and nxt.key in services:
            return _Token(anchor.text + nxt.text, anchor.key + nxt.key, "product", anchor.start, nxt.end, index=anchor.index,
                          flag="vn", known=True, segment=anchor.segment)
        return None
    # Without any product word, the first service word with the noun glued before it (甲醛检测), or a
    # service phrase that says it all (上门服务).
    for tok in tokens:
        if tok.key in services and len(tok.key) >= 4:
            return _Token(tok.text, tok.key, "product", tok.start, tok.end, index=tok.index, flag="vn", known=True,
                          segment=tok.segment)
        if tok.key in services and tok.index > 0:
            obj = tokens[tok.index - 1]
            if obj.end == tok.start and obj.kind in {"other", "unknown", "attr"} and obj.flag in _HEAD_FLAGS and len(obj.key) >= 2:
                return _Token(obj.text + tok.text, obj.key + tok.key, "product", obj.start, tok.end, index=obj.index,
                              flag="vn", known=True)
    return None


def _later_head(tokens: list[_Token], anchor: _Token) -> _Token | None:
    end = anchor.end
    for tok in tokens[anchor.index + 1 : anchor.index + 1 + _HEAD_REACH]:
        # A verb or an adverb between them (熨斗 烫 衣服, 烘鞋器 快速 干鞋) ends the noun phrase.
        if tok.start != end or tok.kind in {"noise", "brand"} or (tok.kind != "product" and tok.flag in {"v", "d"}):
            return None
        if tok.kind == "product":
            return tok
        end = tok.end
    return None


def _priority(tok: _Token, anchor: _Token, first: _Token | None, brand_known: bool) -> float:
    base = {"product": 60.0, "attr": 50.0, "other": 30.0, "noise": 0.0, "brand": 200.0,
            "latin": 40.0 if brand_known else 70.0, "unknown": 40.0 if brand_known else 65.0}[tok.kind]
    if not brand_known and tok is first:
        base += 40.0  # the leading word of a title is most often its brand
    return base - abs(anchor.index - tok.index) * 0.5


def _is_cjk_char(tok: _Token) -> bool:
    return len(tok.key) == 1 and "\u4e00" <= tok.key <= "\u9fff"


def _modifier_ok(tokens: list[_Token], tok: _Token, anchor: _Token, brand_known: bool) -> bool:
    # Only whole words modify the head: a single character left by a jieba split (韩式/色, 可 of
    # 可电动, 红 of 南红) or a word glued to such a character (洽洽 of 洽洽鸟) would make a fragment,
    # and another product word would stack heads (证件包 驾照夹 卡包); a device glued right before the
    # head says what it is for (手机 支架) and stays.
    vocab = vocabulary()
    if tok.kind == "product":
        return _is_host(tok) and tok.end == anchor.start
    if len(tok.key) >= 2 and tok.key[-1] == anchor.key[-1] and tok.key[-1] in vocab.product_suffixes:
        return False  # 洁肤水 卸妆水, 钢琴谱 乐谱: the same head named twice
    if is_claim(tok.key):
        return False  # 持久, 速效: an efficacy claim is no attribute of the name
    before = tokens[tok.index - 1] if tok.index > 0 else None
    if before is not None and before.end == tok.start and before.key in _NEGATORS:
        return False  # 不/脱色: without its negator the word says the opposite
    if _is_cjk_char(tok):
        return tok.key in vocab.attributes
    if tok.kind in {"unknown", "latin"} and (brand_known or tok is not _first_word(tokens)):
        return False  # an unknown word only stands in for a brand as the title's leading word
    if tok.flag == "v" and tok.end != anchor.start:
        return False
    if tok.flag in {"l", "i"} and tok.kind != "attr":
        return False  # an idiom or set phrase (说了算) is a slogan, not an attribute
    for j in (tok.index - 1, tok.index + 1):
        if 0 <= j < len(tokens) and tokens[j] is not anchor:
            other = tokens[j]
            glued = other.end == tok.start or tok.end == other.start
            if glued and _is_cjk_char(other) and other.kind in {"other", "unknown"} and other.flag not in _FUNCTION_FLAGS:
                return False
    return True


def _name_piece(tok: _Token) -> bool:
    # A lone character or a word jieba does not know, glued to the product word: part of its name.
    return (tok.kind in {"other", "unknown"} and tok.flag not in _FUNCTION_FLAGS and tok.key not in _GIFT_WORDS and tok.key[:1] not in {"送", "赠"}
            and ((_is_cjk_char(tok) and tok.key not in _NOT_HEAD_CHARS) or (tok.kind == "unknown" and not _LATIN.match(tok.key))))


def _name_before(tokens: list[_Token], anchor: _Token) -> list[_Token]:
    # The glued run just before the product word while it starts on a name piece; the word before a
    # lone character is the rest of that cut word (风痛 of 风痛宁), so it joins too.
    name: list[_Token] = []
    at, start = anchor.index - 1, anchor.start
    while 0 <= at < len(tokens) and len(name) < 3:
        tok = tokens[at]
        if tok.end != start or tok.kind in {"noise", "brand", "product", "latin"}:
            break
        before = tokens[at - 1] if at > 0 else None
        if (_is_cjk_char(tok) and before is not None and before.end == tok.start
                and (_HAS_DIGIT.search(before.key) or before.flag in {"m", "mq"})):
            break  # 200粒, 第二版: a character after a number is its measure word
        if not (_name_piece(tok) or (name and _is_cjk_char(name[0]) and tok.kind in {"other", "attr"})):
            break
        name.insert(0, tok)
        at, start = at - 1, tok.start
    if sum(len(t.key) for t in name) + len(anchor.key) > 8:
        return []
    return name


def _first_word(tokens: list[_Token]) -> _Token | None:
    return next((t for t in tokens if t.kind != "noise"), None)


def _whole_head(head: str, limit: int) -> str:
    # The product word is never cut inside: too long, it keeps its longest ending that is a word itself.
    if len(head) <= limit:
        return head
    vocab = vocabulary()
    for k in range(len(head) - limit, len(head) - 1):
        tail = head[k:]
        if tail in vocab.product_words or word_frequency(tail) > 0:
            return tail
    return ""


def _compose(tokens: list[_Token], max_chars: int, brand: str | None) -> str:
    anchor = _anchor(tokens) or _service_head(tokens, None)
    if anchor is None:
        return ""  # no confident head: the renderer uses its fallback form, nothing is made up
    prefix: list[_Token] = []
    for tok in tokens[: anchor.index]:
        # Each word once; a repeated anchor keeps its own place at the end.
        if tok.kind != "noise" and tok.key != anchor.key and all(t.key != tok.key for t in prefix):
            prefix.append(tok)
    brand_tok = next((t for t in prefix if t.kind == "brand"), None)
    if brand_tok is None:
        later = next((t for t in tokens if t.kind == "brand" and t.index > anchor.index), None)
        if later is not None or brand:
            brand_tok = later or _Token(brand or "", (brand or "").lower(), "brand", -1, -1)
            prefix.insert(0, brand_tok)
    prefix.append(anchor)
    brand_known = brand_tok is not None
    first = prefix[0] if prefix and prefix[0] is not anchor else None
    name = _name_before(tokens, anchor)
    if name:
        # 烘/鞋器, 风痛/宁/缓释片: pieces jieba split off the front of the product word belong to it.
        anchor = _Token("".join(t.text for t in name) + anchor.text, "".join(t.key for t in name) + anchor.key, "product",
                        name[0].start, anchor.end, index=anchor.index, flag=anchor.flag, known=anchor.known,
                        segment=anchor.segment)
        prefix = [t for t in prefix if all(t is not n for n in name)]
        prefix[-1] = anchor
    core = [t for t in (brand_tok, anchor) if t is not None]
    brand_key = brand_tok.key if brand_tok is not None else ""
    modifiers = sorted(
        (t for t in prefix if all(t is not c for c in core) and _modifier_ok(tokens, t, anchor, brand_known)
         and not (brand_key and t.key in brand_key)),
        key=lambda t: -_priority(t, anchor, first, brand_known),
    )
    limit = _KNOWN_BRAND_MODIFIERS if brand_known else _BLIND_MODIFIERS
    chosen = modifiers[:limit]
    while chosen and sum(len(t.text) for t in core + chosen) > max_chars:
        chosen.pop()
    picked = {id(t) for t in core + chosen}
    if brand_tok is not None and brand_tok.key.endswith(anchor.key) and len(brand_tok.key) > len(anchor.key):
        # The brand already says what is sold (东阿阿胶, not 东阿阿胶阿胶): modifiers, then the brand last.
        mods = "".join(t.text for t in prefix if id(t) in picked and t is not anchor and t is not brand_tok)
        text = mods + brand_tok.text
        return text if len(text) <= max_chars else brand_tok.text if len(brand_tok.text) <= max_chars else ""
    head = _whole_head(anchor.text, max_chars)
    if not head:
        return ""
    words = [t for t in prefix if id(t) in picked and t is not anchor]
    # Too long even without modifiers (a long Latin brand): the brand goes, the product word stays whole.
    while words and sum(len(t.text) for t in words) + len(head) > max_chars:
        words.pop()
    return "".join(t.text for t in words) + head


@lru_cache(maxsize=100_000)
def short_title(title: str, brand: str | None = None, max_chars: int = 16) -> str:
    """A short title of at most `max_chars` characters: brand, key attributes and the product word; '' without a confident head."""
    brand = (brand or "").strip() or None
    if wanted_listing(title):
        return ""  # 求购: a buyer's request names goods nobody is selling here
    tokens = _tokens(title, brand)
    if brand and _compatible_brand(_raw_tokens(title.lower(), brand.lower()), brand.lower()):
        # A brand field that only says what the product fits is no brand of the product: the tokens keep
        # it as a brand so that the compatible-with rule drops it from the title's words too.
        brand = None
    text = _compose(tokens, max_chars, brand)
    # Two clean tokens can still join into a banned term (最 + 好): cut such terms out.
    for _ in range(5):
        hits = check(text)
        if not hits:
            break
        for hit in reversed(hits):
            text = text[: hit.start] + text[hit.end :]
    return text.strip()


def title_token_spans(title: str, brand: str | None = None) -> list[tuple[str, str, int, int, str]]:
    """(word, kind, start, end, part of speech) of a title's tokens, offsets into the lower-cased title."""
    brand = (brand or "").strip() or None
    return [(t.text, t.kind, t.start, t.end, t.flag) for t in _tokens(title, brand)]


def title_tokens(title: str, brand: str | None = None) -> list[tuple[str, str]]:
    """(word, kind) pairs of a title; kinds: brand, product, attr, latin, unknown, other, noise."""
    brand = (brand or "").strip() or None
    return [(t.text, t.kind) for t in _tokens(title, brand)]


@lru_cache(maxsize=100_000)
def head_word(title: str, brand: str | None = None) -> str:
    """The title's head product word (what is sold), lower-cased; '' when the title names none."""
    brand = (brand or "").strip() or None
    tokens = _tokens(title, brand)
    anchor = _anchor(tokens) or _service_head(tokens, None)
    return anchor.key if anchor is not None else ""


_ISBN = re.compile(r"97[89]\d{10}|[(（][英美日法德俄][)）]")  # an ISBN, or a translated author's country


@lru_cache(maxsize=100_000)
def book_title(title: str) -> bool:
    """True when the title lists a book (an ISBN, 编著, 出版社, 正版图书 …), whatever its words."""
    low = title.lower()
    markers = vocabulary().book_markers
    return bool(_ISBN.search(low)) or any(m in low for m in markers)


@lru_cache(maxsize=100_000)
def wanted_listing(title: str) -> bool:
    """True for a buyer's listing (求购): the title offers nothing to sell."""
    return any(w in title for w in vocabulary().wanted)
