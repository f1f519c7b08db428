"""Short titles and selling points from long listing titles."""

from __future__ import annotations


import pytest

from features.tagged_titles import normalised, read_tagged_titles
from recsys.promo.adlaw import check
from recsys.promo.selling_points import selling_points
from recsys.promo.render import fallback_title
from recsys.promo.shorten import short_title

EXAMPLE = "羚跑商务背包双肩包男士防盗多功能出差韩版休闲15.6寸电脑包皮潮"


def test_issue_example_keeps_brand_attribute_and_product_word() -> None:
    assert short_title(EXAMPLE) == "羚跑商务双肩包"
    assert short_title(EXAMPLE, brand="羚跑") == "羚跑商务双肩包"


@pytest.mark.parametrize(
    ("title", "brand", "expected"),
    [
        ("2024新款三只松鼠每日坚果独立小包装750g/30包混合果仁孕妇零食", None, "三只松鼠每日坚果"),
        ("美的空气炸锅家用5L大容量智能预约无涂层MF-KZE5004", "美的", "美的空气炸锅"),
        ("顶级特供小米智能手机5G全网通256GB老人学生", "小米", "小米智能手机"),
        ("正品包邮韩版女装2017秋季新款宽松卫衣学生", None, "韩版女装宽松卫衣"),
    ],
)
def test_short_titles_drop_models_sizes_stuffing_and_banned_words(title: str, brand: str | None, expected: str) -> None:
    assert short_title(title, brand) == expected


def test_length_limit_is_respected_and_keeps_brand_and_product() -> None:
    title = "帮宝适超薄透气纸尿裤L码54片男女通用"
    assert short_title(title, "帮宝适") == "帮宝适超薄透气纸尿裤"
    assert short_title(title, "帮宝适", max_chars=8) == "帮宝适透气纸尿裤"
    assert len(short_title(EXAMPLE, max_chars=4)) <= 4


def test_brand_missing_from_the_title_is_put_in_front() -> None:
    assert short_title("家用大容量电饭煲4L", brand="九阳") == "九阳家用大容量电饭煲"


def test_short_title_never_contains_an_advertising_law_term() -> None:
    for title in ("极品顶级大红袍茶叶礼盒", "全网最低价纯天然蜂蜜", "国家级非遗手工月饼礼盒"):
        assert check(short_title(title)) == []


def test_selling_points_come_from_the_title_only() -> None:
    short = short_title(EXAMPLE)
    points = selling_points(EXAMPLE, None, short)
    assert points == ("防盗", "多功能")
    assert all(p in EXAMPLE for p in points)
    # Attributes already in the short title are not repeated; style words only fill in last.
    assert selling_points("美的空气炸锅家用5L大容量智能预约无涂层", "美的", "美的空气炸锅") == ("智能预约", "无涂层")
    assert selling_points("普通杯子", None, "普通杯子") == ()








@pytest.mark.realdata
def test_real_taobao_titles_keep_brand_and_product_word(shared_data) -> None:
    titles = [(t.title, list(t.brands), list(t.products)) for t in read_tagged_titles(shared_data("taobao_title_ner"))]
    assert len(titles) == 7998
    # Brand and product word together: every title with both, brand passed in as the catalogue does.
    both = [(t, b, p) for t, b, p in titles if b and p]
    kept_brand = kept_both = 0
    for title, brands, products in both:
        # What the copy names: the short title, or brand + generic noun when the title has no confident head.
        short = normalised(short_title(title, brands[0]) or fallback_title(brands[0], ""))
        assert len(short) <= 16
        has_brand = any(normalised(b) in short for b in brands)
        kept_brand += has_brand
        kept_both += has_brand and any(normalised(p) in short for p in products)
    # The product word alone: every dev and test title that has one (the rules were tuned on train
    # misses, so this is the held-out check; all 7,998 titles are measured by the benchmark).
    held_out = [(t, b, p) for t, b, p in titles[6000:] if p]
    kept_product = sum(
        any(normalised(p) in normalised(short_title(title, brands[0] if brands else None)) for p in products)
        for title, brands, products in held_out
    )
    assert (len(both), len(held_out)) == (2544, 1901)
    # Measured 0.992 brand, 0.877 both and 0.874 product word (substring counts). These were 0.994,
    # 0.927 and 0.943 while a title without a confident head kept its leading words or its last plain
    # noun (colehaan新, 路虎卫士硬汉, 绿色): that last noun was the tagged product in 31 % of the train
    # titles it was used on, so such titles (about 7 %) now get brand + generic noun instead, which this
    # substring count reads as a loss; stacked synonyms (项坠…吊坠) now keep one of the tagged words.
    assert kept_brand / len(both) >= 0.98
    assert kept_both / len(both) >= 0.87
    assert kept_product / len(held_out) >= 0.87
