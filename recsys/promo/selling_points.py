"""Selling points: one or two factual attributes taken from the title itself, never invented.

Candidates are the title's attribute words (the catalogue lexicon's attributes and our generic list)
plus function words shaped like attributes (防滑, 免打孔, 加厚, 可折叠 …) and jieba's adjectives;
advertising-law terms were already dropped by the tokenizer. Lexicon attributes come first, then
rarer words by jieba's IDF, so 大容量 beats 简约, and style words (韩版, 简约) only fill in last.
A word is never a selling point when the title negates it (非耐克, 不加密), when it is a brand, a
place (产地, 进口国), an audience (大学生, 成人), a pack size or format (500g, 家庭装), or a health or efficacy claim (免疫力,
持久, 速效); words already in the short title are skipped.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from recsys.promo.tokenize import tokenizer, vocabulary

_ATTRIBUTE_SHAPE = re.compile(r"^(?:防|免|加|可|耐|抗|速|静|超|双|轻|大|小|无)[\u4e00-\u9fff]{1,3}$")
# Style words are attributes but say little about the product; they only fill in when nothing else does.
_WEAK = frozenset({"韩版", "简约", "休闲", "时尚", "百搭", "复古", "可爱", "创意", "商务", "运动", "户外", "潮流", "个性"})
_ADJECTIVE_FLAGS = frozenset({"a", "ad", "an", "b"})
_NEGATORS = ("非", "不", "无", "没", "没有", "不含", "不带", "拒绝")
# Places say where, not what the product does (and 原产地 claims need proof).
_PLACES = frozenset({
    "北京", "上海", "天津", "重庆", "广东", "广州", "深圳", "浙江", "杭州", "江苏", "苏州", "福建", "山东", "河北", "河南",
    "湖南", "湖北", "四川", "云南", "贵州", "广西", "海南", "陕西", "山西", "甘肃", "宁夏", "新疆", "西藏", "青海", "内蒙古",
    "辽宁", "吉林", "黑龙江", "东北", "安徽", "江西", "台湾", "香港", "澳门", "日本", "韩国", "美国", "英国", "法国", "德国",
    "意大利", "泰国", "澳洲", "澳大利亚", "新西兰", "进口", "原装进口", "原瓶进口", "义乌", "景德镇", "欧美", "日韩", "港版",
    "国产", "产地直发", "宁夏", "赣南", "阳澄湖",
})
# Health and efficacy words: what only a registered product may claim, and none in a title is proof.
_CLAIMS = ("免疫", "持久", "速效", "防身", "壮阳", "美白", "祛斑", "减肥", "瘦身", "降压", "降糖", "降脂", "抗癌", "抗衰",
           "防脱", "生发", "祛痘", "助眠", "安神", "补肾", "养胃", "护肝", "排毒", "养颜", "治疗", "消炎", "抗过敏", "增高",
           "丰胸", "延时", "壮腰", "补气", "补血", "明目", "降火", "根治", "疗效", "药用", "医用", "抗菌", "杀菌", "除螨",
           "抗病毒", "防癌", "燃脂", "塑形", "提神", "醒脑", "益智", "健脑", "护眼")
# Who the product is for is not what it does (大学生, 小童, 成人): audience words are no selling point.
_AUDIENCE = frozenset({
    "学生", "大学生", "小学", "小学生", "中学生", "初中", "高中", "小童", "大童", "中大童", "成人", "儿童", "男士", "女士",
    "男童", "女童", "宝宝", "婴儿", "老人", "中老年", "孕妇", "男女", "女款", "男款", "男女款", "女生", "男生", "少女",
    "青年", "中年", "老年", "幼儿", "学生党", "上班族", "情侣", "新生儿",
})
_PACK = re.compile(r"(\d|[一二三四五六七八九十两]+[装片包袋瓶支盒罐粒只双件套条]|装$|^量贩|^整箱|^套装|^礼盒)")


@cache
def _idf() -> tuple[dict[str, float], float]:
    import jieba.analyse

    extractor = jieba.analyse.TFIDF()
    extractor.tokenizer = tokenizer()
    freq = extractor.idf_freq
    return freq, extractor.median_idf


def _rank(word: str, from_lexicon: bool, shaped: bool) -> tuple[int, int, float]:
    idf, median = _idf()
    return (1 if word in _WEAK else 0, 0 if from_lexicon else 1 if shaped else 2, -idf.get(word, median))


def is_claim(word: str) -> bool:
    """A health or efficacy claim that no selling point may make."""
    return any(c in word for c in _CLAIMS)


def _negated(title: str, start: int) -> bool:
    before = title[max(0, start - 2) : start]
    return any(before.endswith(n) for n in _NEGATORS)


@lru_cache(maxsize=100_000)
def selling_points(title: str, brand: str | None = None, short: str = "", max_points: int = 2) -> tuple[str, ...]:
    """Up to `max_points` attribute words from the title, best first, none repeated from `short`."""
    from features import lexicon
    from recsys.promo.shorten import title_token_spans

    catalogue = {a.lower() for a in lexicon.all_attributes()}
    vocab = vocabulary()
    low_title = title.lower()
    brand_key = (brand or "").lower()
    candidates: dict[str, tuple[int, int, float]] = {}
    for word, kind, start, _end, flag in title_token_spans(title, brand):
        key = word.lower()
        if kind in {"noise", "brand", "latin"} or key in candidates or key in short.lower() or len(key) < 2:
            continue
        if key in vocab.brands or (brand_key and (key in brand_key or brand_key in key)):
            continue
        if flag == "ns" or key in _PLACES or key in _AUDIENCE or _PACK.search(key) or is_claim(key) or _negated(low_title, start):
            continue
        shaped = kind in {"other", "unknown"} and bool(_ATTRIBUTE_SHAPE.match(key))
        adjective = kind in {"other", "attr"} and flag in _ADJECTIVE_FLAGS and 2 <= len(key) <= 4
        if kind == "attr" or key in vocab.attributes or shaped or adjective:
            candidates[word] = _rank(key, key in catalogue, shaped or kind == "attr" or key in vocab.attributes)
    ranked = sorted(candidates, key=lambda w: candidates[w])
    return tuple(ranked[:max_points])
