"""The advertising-law check: what must hit (in every disguise), what must not, spans, categories, articles,
the overlap-safe allow list and the safe rewrite."""

from __future__ import annotations

import json

import pytest

from recsys.promo.adlaw import (
    LEXICON_PATH,
    Hit,
    category_article,
    category_label,
    check,
    fold,
    is_clean,
    lexicon_version,
    safe_rewrite,
)


def _terms(text: str) -> list[str]:
    return [h.term for h in check(text)]


@pytest.mark.parametrize(
    ("text", "term", "category"),
    [
        ("这款锅最好用", "最好用", "absolute"),
        ("说是最好的选择", "最好", "absolute"),
        ("行业公认第一品牌", "第一品牌", "absolute"),
        ("喝了100%有效", "100%有效", "efficacy"),
        ("国家级原料", "国家级", "absolute"),
        ("全网最便宜", "最便宜", "absolute"),
        ("顶级工艺打造", "顶级工艺", "absolute"),
        ("机关特供好酒", "特供", "authority"),
        ("专家推荐的枕头", "专家推荐", "citation"),
        ("坚持喝能降血压", "降血压", "medical"),
        ("无副作用放心吃", "无副作用", "efficacy"),
        ("戴上旺夫又招财", "旺夫", "superstition"),
        ("恭喜获奖，点击领奖", "恭喜获奖", "prize_lure"),
        ("最后一波，错过不再", "最后一波", "urgency"),
        ("出厂价直供", "出厂价", "fake_pricing"),
        ("销量全国第一的款", "全国第一", "absolute"),
        ("排第一的那款", "第一", "absolute"),
        ("百分百安全", "百分百", "guarantee"),
        ("考试包过", "包过", "education"),
        ("买了稳赚", "稳赚", "investment"),
        ("下单免费赠送围裙", "免费赠送", "gift"),
        ("国家专利设计", "专利", "patent"),
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
    assert hit.article == category_article(category)


# Terms issue 16 found missed, each with the category and the article it must name.
@pytest.mark.parametrize(
    ("text", "term", "category", "article"),
    [
        ("老字号，驰名商标", "驰名商标", "trademark", "商标法第十四条第五款"),
        ("这款洗面奶祛痘", "祛痘", "medical", "广告法第十七条"),
        ("生姜生发洗发水", "生发", "medical", "广告法第十七条"),
        ("防脱发洗发水", "防脱发", "medical", "广告法第十七条"),
        ("抗过敏面霜", "抗过敏", "medical", "广告法第十七条"),
        ("医用级硅胶奶嘴", "医用级", "medical", "广告法第十七条"),
        ("每天一包调节免疫力", "调节免疫力", "health_function", "广告法第十八条"),
        ("坚持用7天见效", "7天见效", "efficacy", "广告法第十六条第一款第一项"),
        ("三天见效", "三天见效", "efficacy", "广告法第十六条第一款第一项"),
        ("温和无任何副作用", "无任何副作用", "efficacy", "广告法第十六条第一款第一项"),
        ("今晚限时秒杀", "限时秒杀", "urgency", "广告法第八条第一款"),
        ("品牌荣获金奖", "荣获", "citation", "广告法第十一条第二款"),
        ("专利设计，安心用", "专利", "patent", "广告法第十二条"),
        ("戴上能辟邪", "辟邪", "superstition", "广告法第九条第九项"),
        ("国家机关专供", "国家机关专供", "authority", "广告法第九条第二项"),
        ("跳楼价清仓", "跳楼价", "fake_pricing", "广告法第二十八条第二款第二项"),
        ("浙江省著名商标", "著名商标", "trademark", "广告法第二十八条"),
    ],
)
def test_missed_terms_are_caught_and_name_their_article(text: str, term: str, category: str, article: str) -> None:
    hits = [h for h in check(text) if h.term == term]
    assert hits, (text, check(text))
    assert (hits[0].category, hits[0].article) == (category, article)


def test_every_category_names_an_article_of_a_law() -> None:
    data = json.loads(LEXICON_PATH.read_text("utf-8"))
    for category, spec in data["categories"].items():
        article = category_article(category)
        assert article == spec["article"]
        assert article.startswith(("广告法第", "商标法第")) and "条" in article, category
        assert category_label(category) == spec["label"]


# Each disguise of a banned term, and the term the span must show in the original text.
@pytest.mark.parametrize(
    ("text", "term"),
    [
        # digits in any form
        ("年度第1名", "第1名"),
        ("销量排名第1", "排名第1"),
        ("全网第１", "全网第１"),
        ("品质NO1", "NO1"),
        ("品质No.1", "No.1"),
        ("品质no 1", "no 1"),
        ("热卖TOP1", "TOP1"),
        ("热卖Top 1", "Top 1"),
        # full width
        ("热卖ＴＯＰ１", "ＴＯＰ１"),
        ("１００％有效", "１００％有效"),
        ("品质ＮＯ．１", "ＮＯ．１"),
        # spacing and punctuation between characters
        ("这款锅最 好 用", "最 好 用"),
        ("这款锅最·好", "最·好"),
        ("这款锅最-好-用", "最-好-用"),
        ("这款锅最，好，用", "最，好，用"),
        ("这款锅最🔥好用", "最🔥好用"),
        ("国 家 级原料", "国 家 级"),
        ("驰 名 商 标", "驰 名 商 标"),
        # traditional forms
        ("國家級原料", "國家級"),
        ("絕對好用", "絕對"),
        ("無副作用", "無副作用"),
        ("防脫髮洗髮水", "防脫髮"),
        ("限時秒殺", "限時秒殺"),
    ],
)
def test_variants_are_caught_with_the_original_span(text: str, term: str) -> None:
    hits = check(text)
    assert term in [h.term for h in hits], (text, hits)
    hit = next(h for h in hits if h.term == term)
    assert text[hit.start : hit.end] == term


def test_folding_reads_width_case_traditional_separators_and_a_lone_one() -> None:
    assert fold("ＴＯＰ１ 國家級·最 好") == "top一国家级最好"
    # A gap between two digits stays a boundary (the mark |), a point between digits a decimal point.
    assert fold("第1次，TOP10，1.5米，99.5%") == "第一次top10|1.5米99.5%"
    assert fold("1 0 0 %有效") == "100%有效"
    assert _terms("热卖TOP1，7天见效") == ["TOP1", "7天见效"]


@pytest.mark.parametrize(
    "text",
    [
        "最近群里好多人问",
        "第一次下单的看这里",
        "第1次下单的看这里",
        "最后一次下单时间是晚上八点",
        "最后一天发货，之后放假",
        "唯一的缺点是有点重",
        "好评率100%，3562条评价",
        "好评率１００％",
        "100%纯棉面料",
        "第一时间发货",
        "最新款到货了",
        "这款最大的亮点在于收腰",
        "整件衬衫最吸睛的就是领口",
        "最多可装10斤",
        "推荐给需要的邻居",
        "选用优质面料，安全扣设计",
        "榜单TOP10都在这",
        "1.5米的床",
        "优惠券7天有效",
        "产生发热，冬天暖和",
        "学生发型也好打理",
        "经典格纹永不过时",
        "《王牌特工》同款风衣",
        "治愈系的小摆件",
        "满99免费送货上门",
    ],
)
def test_ordinary_words_do_not_hit(text: str) -> None:
    assert check(text) == []
    assert is_clean(text)


def test_an_allowed_phrase_suppresses_only_hits_it_wholly_covers() -> None:
    # 高矮胖瘦 (0-4) and 胖瘦身 (2-5) overlap; the second covers 瘦身 (3-5), so the text is clean, which a
    # left-to-right allow scan that skips overlapping occurrences got wrong.
    assert check("高矮胖瘦身型都能穿") == []
    # 高矮胖瘦 covers none of this 瘦身.
    assert _terms("高矮胖瘦都能穿，瘦身效果好") == ["瘦身"]
    # 最后一天 is allowed, but it covers only part of 最后一天抢.
    assert _terms("最后一天抢") == ["最后一天抢"]
    # A book title is allowed whole; the same word outside it is not.
    assert _terms("《王牌特工》同款，减龄王牌单品") == ["王牌"]
    assert _terms("瘦身型腰带") == ["瘦身"]


def test_overlapping_hits_merge_into_the_longest() -> None:
    hits = check("第一品牌")
    assert [(h.start, h.end, h.term) for h in hits] == [(0, 4, "第一品牌")]


def test_every_hit_is_reported_in_reading_order() -> None:
    text = "最好的锅，国家级工艺，100%有效"
    assert [h.term for h in check(text)] == ["最好", "国家级", "100%有效"]


def test_matching_ignores_case_but_reports_the_original_text() -> None:
    hits = check("品质No.1")
    assert [(h.term, h.start) for h in hits] == [("No.1", 2)]


def test_hit_keeps_its_five_field_constructor() -> None:
    hit = Hit(0, 2, "最好", "absolute", "很好")
    assert (hit.article, hit.rewrite) == ("", None)


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("这款锅最好用", "这款锅好用"),
        ("这款锅最 好 用，煮粥不粘", "这款锅好用，煮粥不粘"),
        ("透气性极佳，最适合夏天", "透气性很好，适合夏天"),
        ("绝对好用，顶级工艺", "好用，精湛工艺"),
        ("销量第一的保温杯", "销量不错的保温杯"),
        ("今天到货，放心买", "今天到货，放心买"),
    ],
)
def test_safe_rewrite_softens_or_drops_the_offending_term(text: str, rewritten: str) -> None:
    assert safe_rewrite(text) == rewritten
    assert is_clean(rewritten)


@pytest.mark.parametrize(
    "text",
    ["坚持喝能降血压", "年度第1名", "无任何副作用", "限时秒杀", "就是最！", "中国驰名商标", "最好用，7天见效"],
)
def test_safe_rewrite_gives_up_when_no_mechanical_rewrite_is_safe(text: str) -> None:
    assert safe_rewrite(text) is None


def test_lexicon_is_versioned_and_every_category_catches_something() -> None:
    data = json.loads(LEXICON_PATH.read_text("utf-8"))
    assert lexicon_version() == data["version"]
    expected = {"absolute", "authority", "citation", "patent", "medical", "efficacy", "health_function", "guarantee",
                "education", "investment", "superstition", "prize_lure", "gift", "urgency", "fake_pricing", "trademark"}
    assert set(data["categories"]) == expected
    for category, spec in data["categories"].items():
        sample = next(iter(spec["terms"]), "专利")
        assert any(h.category == category for h in check(f"这款{sample}的好物")), category
