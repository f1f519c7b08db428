"""The advertising-law check: what must hit, what must not, spans, categories and suggestions."""

from __future__ import annotations

import json

import pytest

from recsys.promo.adlaw import LEXICON_PATH, check, is_clean, lexicon_version


@pytest.mark.parametrize(
    ("text", "term", "category"),
    [
        ("这款锅最好用", "最好用", "absolute"),
        ("说是最好的选择", "最好", "absolute"),
        ("行业公认第一品牌", "第一品牌", "absolute"),
        ("喝了100%有效", "100%有效", "guarantee"),
        ("国家级原料", "国家级", "absolute"),
        ("全网最便宜", "最便宜", "absolute"),
        ("顶级工艺打造", "顶级", "absolute"),
        ("机关特供好酒", "特供", "authority"),
        ("专家推荐的枕头", "专家推荐", "authority"),
        ("坚持喝能降血压", "降血压", "medical"),
        ("无副作用放心吃", "无副作用", "guarantee"),
        ("戴上旺夫又招财", "旺夫", "superstition"),
        ("恭喜获奖，点击领奖", "恭喜获奖", "prize_lure"),
        ("最后一波，错过不再", "最后一波", "urgency"),
        ("出厂价直供", "出厂价", "fake_pricing"),
        ("销量全国第一的款", "全国第一", "absolute"),
        ("排第一的那款", "第一", "absolute"),
        ("百分百安全", "百分百", "guarantee"),
    ],
)
def test_claims_are_caught_with_span_and_category(text: str, term: str, category: str) -> None:
    hits = check(text)
    match = [h for h in hits if h.term == term]
    assert match, f"{term!r} not caught in {text!r}: {hits}"
    hit = match[0]
    assert text[hit.start : hit.end] == term
    assert hit.category == category
    assert hit.suggestion


@pytest.mark.parametrize(
    "text",
    [
        "最近群里好多人问",
        "第一次下单的看这里",
        "最后一次下单时间是晚上八点",
        "最后一天发货，之后放假",
        "唯一的缺点是有点重",
        "好评率100%，3562条评价",
        "100%纯棉面料",
        "第一时间发货",
        "最新款到货了",
        "这款最大的亮点在于收腰",
        "最多可装10斤",
        "推荐给需要的邻居",
        "选用优质面料，安全扣设计",
    ],
)
def test_ordinary_words_do_not_hit(text: str) -> None:
    assert check(text) == []
    assert is_clean(text)


def test_overlapping_hits_merge_into_the_longest() -> None:
    hits = check("第一品牌")
    assert [(h.start, h.end, h.term) for h in hits] == [(0, 4, "第一品牌")]


def test_every_hit_is_reported_in_reading_order() -> None:
    text = "最好的锅，国家级工艺，100%有效"
    assert [h.term for h in check(text)] == ["最好", "国家级", "100%有效"]


def test_matching_ignores_case_but_reports_the_original_text() -> None:
    hits = check("品质No.1")
    assert [(h.term, h.start) for h in hits] == [("No.1", 2)]


def test_lexicon_is_versioned_and_every_category_has_terms() -> None:
    data = json.loads(LEXICON_PATH.read_text("utf-8"))
    assert lexicon_version() == data["version"]
    expected = {"absolute", "authority", "medical", "guarantee", "superstition", "prize_lure", "urgency", "fake_pricing"}
    assert set(data["categories"]) == expected
    for category, spec in data["categories"].items():
        term = next(iter(spec["terms"]))
        assert any(h.category == category for h in check(f"这款{term}的好物")), category
