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


# Short titles read right on real-looking titles: each class below was seen on real catalogue titles
# (the titles here are written for the tests).

@pytest.mark.parametrize(
    ("title", "head"),
    [
        ("戴尔台式机内存条ddr4高速", "内存条"),  # a device before the goods names what they fit
        ("智能电脑板预约电饭煲4升", "电饭煲"),
        ("笔记本电脑专用散热器静音", "散热器"),
        ("华为手机钢化膜高清防爆", "钢化膜"),
    ],
)
def test_the_head_is_what_is_sold_not_what_it_fits(title: str, head: str) -> None:
    assert short_title(title).endswith(head)


def test_a_service_listing_is_headed_by_the_service() -> None:
    assert short_title("北京空调维修上门服务专业师傅").endswith("空调维修")
    assert short_title("家政保洁上门服务").endswith("保洁")


@pytest.mark.parametrize(
    ("title", "whole", "piece"),
    [
        ("山地自行车锁防盗钢缆锁", "自行车锁", "自行山地"),  # jieba's 自行/车锁 is one word
        ("宿舍烘鞋器家用", "烘鞋器", ""),  # 烘/鞋器
        ("某某牌,复方风痛宁片,100片/瓶", "风痛宁片", ""),  # a drug name jieba does not know
    ],
)
def test_no_fragments_of_cut_words(title: str, whole: str, piece: str) -> None:
    short = short_title(title)
    assert whole in short
    assert not piece or piece not in short


def test_the_product_word_is_never_cut() -> None:
    assert short_title("家用大容量电饭煲", max_chars=4) == "电饭煲"
    assert short_title("家用大容量电饭煲", "九阳", max_chars=5) == "九阳电饭煲"
    assert short_title("家用大容量电饭煲", "九阳", max_chars=4) == "电饭煲"  # the brand goes before the head is cut


def test_stacked_names_collapse_to_one_head() -> None:
    short = short_title("真皮钱包卡包证件夹女士")
    assert sum(w in short for w in ("钱包", "卡包", "证件夹")) == 1
    assert short_title("木质收纳盒储物盒桌面整理").count("盒") == 1


def test_no_lone_characters_negations_claims_quantities_or_gifts() -> None:
    assert not short_title("复古风可升降吧台椅子").startswith("可")
    assert "脱色" not in short_title("持久不脱色口红女")  # 不 dropped would say the opposite
    assert "持久" not in short_title("持久不脱色口红女")
    assert short_title("出一台闲置跑步机九成新") == "跑步机"  # resale marker and quantity are no words of it
    assert short_title("北欧电烤箱家用赠防烫手套").endswith("电烤箱")
    assert short_title("新疆红枣礼盒送长辈").endswith("红枣")  # packaging is no head


@pytest.mark.parametrize("title", ["gucci,九成新", "vivo玫瑰金色", "[求购]二手钢琴一台", "型号ab1234,质量保证"])
def test_no_confident_head_gives_no_short_title(title: str) -> None:
    assert short_title(title) == ""


def test_without_a_head_the_copy_names_brand_and_category() -> None:
    from datetime import date

    from recsys.promo import CopyContext, ProductInfo, render_copy
    from recsys.promo.render import fallback_title

    assert fallback_title("gucci", "服饰/箱包") == "gucci服饰好物"
    assert fallback_title("cole,haan", "") == "cole haan好物"
    assert fallback_title("", "", title="二手正版,某某著,某某出版社") == "图书"
    product = ProductInfo("p1", "gucci,九成新", "服饰/箱包", "gucci", 899.0, 0.0, 0.97, 300)
    copy = render_copy(product, CopyContext("g1", "宝妈", "", date(2025, 11, 19), ["trending"]))
    assert "gucci服饰好物" in copy.text and copy.selling_points and check(copy.text) == []
    wanted = ProductInfo("p2", "[求购]二手钢琴一台", "", "", 100.0, 0.0, 0.97, 300)
    assert render_copy(wanted, CopyContext("g1", "宝妈", "", date(2025, 11, 19), [])).short_title == "好物"


def test_the_benchmark_reader_sees_fragments_wrong_heads_stacks_and_fallbacks() -> None:
    from benchmarks.copy_quality import Truth, short_title_defects

    def defects(short: str, title: str, products: tuple[str, ...] = (), fallback: bool = False) -> list[str]:
        return short_title_defects(short, Truth(title, (), products), fallback=fallback)

    assert "short: fragment" in defects("可吧台椅子", "复古风可升降吧台椅子", ("吧台椅子",))  # 可 of 可升降
    assert "short: fragment" in defects("台式机内存条高", "戴尔台式机内存条高速", ("内存条",))  # 高 of 高速
    assert "short: no product word" in defects("台式机", "戴尔台式机内存条高速", ("内存条",))
    assert "short: head is not what is sold" in defects("金丝", "天然金丝玉手镯", ("金丝玉",))
    assert "short: stacked product words" in defects("证件包驾照夹卡包", "牛皮证件包驾照夹卡包", ("证件包", "驾照夹", "卡包"))
    assert defects("台式机内存条", "戴尔台式机内存条高速", ("台式机", "内存条")) == []
    assert defects("好物", "型号ab1234,质量保证", fallback=True) == ["fallback: generic noun"]


def test_no_slogans_ordinals_measure_words_or_shop_names_in_the_name() -> None:
    assert "说了算" not in short_title("气质百搭你说了算立领小外套")
    assert short_title("第三版纪念币龙年5元") == "纪念币"  # 第三 and its 版 are no part of it
    assert "新华书店" not in short_title("某某著,新华书店正版畅销图书籍")
    assert "专营店" not in short_title("某某旅行社第九专营店电子券")


def test_a_wanted_listing_gets_no_selling_point() -> None:
    from datetime import date

    from recsys.promo import CopyContext, ProductInfo, render_copy

    copy = render_copy(ProductInfo("p1", "[求购]演唱会门票两张", "", "", 100.0, 0.0, 0.97, 300),
                       CopyContext("g1", "宝妈", "", date(2025, 11, 19), []))
    assert copy.short_title == "好物" and copy.selling_points == []
