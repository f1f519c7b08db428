"""Copy a seller can paste: product facts gate every phrase, notices, ratings, launches, emoji, repetition, selling points."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from contracts.schema import GROUP_THEMES, SELLER_TYPES
from recsys.promo import CopyContext, ProductInfo, render_copy, short_title
from recsys.promo.facts import title_facts
from recsys.promo.render import rate_is_possible, repetition_problems
from recsys.promo.selling_points import is_claim, selling_points
from recsys.promo.templates import load_parts

WEEKDAY, WEEKEND, SPRING, DOUBLE11 = date(2025, 11, 19), date(2025, 11, 22), date(2026, 2, 10), date(2025, 11, 5)
DAYS = (WEEKDAY, WEEKEND, SPRING, DOUBLE11)
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")


def _product(title: str, **kw) -> ProductInfo:
    base = dict(product_id="p1", title=title, category="", brand="", price=89.0, coupon=0.0, rating=0.97,
                review_count=3000, presale=False)
    base.update(kw)
    return ProductInfo(**base)


def _copies(product: ProductInfo, sellers=SELLER_TYPES, themes=(*GROUP_THEMES, ""), days=DAYS) -> list[str]:
    out = []
    for seller in sellers:
        for theme in themes:
            for day in days:
                history: list[tuple[str, str, date]] = []
                for g in range(3):
                    copy = render_copy(product, CopyContext(f"g{g}", seller, theme, day, ["trending"]), history)
                    history.append((f"g{g}", copy.template_id, day))
                    out.append(copy.text)
    return out


@pytest.mark.parametrize(("title", "category", "kind", "audience"), [
    ("茅台 飞天 53度 酱香型白酒 500ml", "", "alcohol", "成人"),
    ("金沙回沙酒红钻1988酱香53度500毫升装", "", "alcohol", "成人"),
    ("王老吉凉茶310ml*24罐整箱", "", "drink", "any"),
    ("王老吉 凉茶 0糖 整箱", "酒水/啤酒饮料", "drink", "any"),  # a drink listed under 酒水 is still a drink
    ("农夫山泉 矿泉水 550ml*24瓶", "", "drink", "any"),
    ("倍轻松颈椎按摩仪 肩颈按摩器", "", "health_device", "any"),
    ("欧姆龙 电子血压计 家用", "保健/健康器械", "health_device", "any"),
    ("汤臣倍健 维生素C咀嚼片 60片", "", "health_food", "any"),
    ("酵素净颜粉底液象牙白", "", "makeup", "any"),
    ("婴儿保温碗吸盘碗宝宝餐碗", "", "", "婴童"),
])
def test_facts_from_category_and_title(title: str, category: str, kind: str, audience: str) -> None:
    facts = title_facts(title, category)
    if kind:
        assert facts.kind == kind, sorted(facts.tags)
    assert facts.audience == audience


def test_look_alikes_are_not_what_they_contain() -> None:
    assert not title_facts("红酒杯 水晶 高脚杯 套装").alcoholic
    assert title_facts("欧姆龙 电子血压计 家用", "保健/健康器械").medical_device
    massager = title_facts("倍轻松颈椎按摩仪")
    assert not massager.health_food and not massager.edible
    assert title_facts("格力 空调 1.5匹 变频", "家电/大家电").needs_installing


def test_no_baby_or_student_wording_on_liquor() -> None:
    for price in (489.0, 2039.0):
        liquor = _product("茅台 飞天 53度 酱香型白酒 500ml", brand="茅台", price=price, review_count=97, rating=0.965)
        for text in _copies(liquor):
            assert not re.search(r"娃|宝宝|宝妈|孩子|儿童|宿舍|同学|学生党|室友|上课|校园", text), text
            assert text.endswith("理性饮酒，未成年人请勿饮酒"), text


def test_drinking_notice_only_on_alcohol_and_health_notice_only_on_health_food() -> None:
    for text in _copies(_product("王老吉凉茶310ml*24罐整箱", brand="王老吉", price=39.9, coupon=5.0)):
        assert "饮酒" not in text and "喝酒" not in text, text
    for text in _copies(_product("倍轻松颈椎按摩仪 肩颈按摩器", brand="倍轻松", price=299.0)):
        assert "食用" not in text and "不能代替药物" not in text, text
    for text in _copies(_product("汤臣倍健 维生素C咀嚼片 60片", brand="汤臣倍健", price=79.0)):
        assert text.endswith("本品不能代替药物"), text
    blood = _product("欧姆龙 电子血压计 家用", category="保健/健康器械", brand="欧姆龙", price=199.0)
    for text in _copies(blood, sellers=("宝妈", "其他"), themes=("", "母婴")):
        assert text.endswith("请仔细阅读产品说明书或者在医务人员的指导下购买和使用"), text


def test_child_claims_only_on_goods_for_children() -> None:
    camera = _product("徕卡 二手相机 镜头", brand="徕卡", price=701.0)
    for text in _copies(camera, sellers=("宝妈",)):
        assert not re.search(r"给娃|给宝宝|宝宝用得上|有娃的|带娃|给孩子", text), text
    bowl = _product("婴儿保温碗吸盘碗宝宝餐碗儿童不锈钢餐具", price=39.0)
    assert any(re.search(r"给娃|宝宝|有娃", t) for t in _copies(bowl, sellers=("宝妈",)))


def test_stock_up_wording_only_on_cheap_consumables() -> None:
    fridge = _product("海尔 冰箱 双门 一级能效", category="家电/大家电", brand="海尔", price=2999.0)
    for text in _copies(fridge):
        assert "囤" not in text and "宿舍" not in text, text


def test_no_in_store_pickup_promised_for_an_online_link() -> None:
    for text in _copies(_product("羚跑双肩包 防盗 多功能"), sellers=("导购",)):
        assert "到店自提" not in text


def test_rates_are_possible_and_need_twenty_reviews() -> None:
    assert rate_is_possible(98.7, 81) and not rate_is_possible(96.5, 97) and rate_is_possible(100.0, 20)
    assert not rate_is_possible(95.0, 0)
    for reviews, rating, shown in ((19, 0.95, False), (97, 0.965, False), (81, 0.9876, True), (20, 0.95, True)):
        texts = _copies(_product("羚跑双肩包 防盗", rating=rating, review_count=reviews), sellers=("其他", "导购"))
        assert any("好评率" in t for t in texts) is shown, (reviews, rating)
        assert all("好评率" not in t or re.search(r"好评率\d", t) or "好评率高" in t for t in texts)


def test_new_wording_only_after_a_recent_launch() -> None:
    old = _product("羚跑双肩包 防盗", launched_at=WEEKDAY - timedelta(days=200))
    recent = _product("羚跑双肩包 防盗", launched_at=WEEKDAY - timedelta(days=5))
    assert not any(re.search(r"上新|上架|新品|来啦", t) for t in _copies(old, sellers=("微商", "其他")))
    assert any(re.search(r"上新|上架|来啦", t) for t in _copies(recent, sellers=("微商", "其他"), days=(WEEKDAY,)))


def test_at_most_one_emoji_and_it_fits() -> None:
    bag = _product("羚跑双肩包 防盗 多功能")
    for text in _copies(bag, sellers=("宝妈", "微商", "学生", "导购")):
        found = EMOJI.findall(text)
        assert len(found) <= 1, text
        assert not set(found) & {"👶", "🍼", "🧸"}, text
    for text in _copies(_product("三只松鼠 每日坚果 750g", brand="三只松鼠", price=69.0), sellers=("微商", "宝妈"),
                        days=(DOUBLE11,)):
        assert "🧧" not in text, text


def test_no_phrase_or_number_twice() -> None:
    assert repetition_problems("好评率高，好评率96.8%，59元") == ["好评率 twice"]
    assert repetition_problems("59元，券后59元")[0] == "a number twice"
    assert repetition_problems("开始预订，59元（预售）") == ["presale twice"]
    assert repetition_problems("羚跑双肩包，防盗，59元", "羚跑双肩包") == []
    presale = _product("羚跑双肩包 防盗 多功能", presale=True, coupon=10.0, rating=0.99, review_count=3000)
    for text in _copies(presale, sellers=("其他", "学生")):
        assert repetition_problems(text) == [], text


def test_selling_points_never_negated_brand_place_pack_or_claim() -> None:
    assert "耐克" not in selling_points("非耐克 运动 跑步鞋 透气 减震")
    assert "加密" not in selling_points("视频教程不加密 u盘 高速")
    assert not {"日本", "进口"} & set(selling_points("日本进口 保温杯 大容量 304不锈钢"))
    points = selling_points("玛咖牡蛎锌人参片 持久 独立包装 60片")
    assert not any(w in p for p in points for w in ("持久", "60片", "免疫"))
    assert not any(re.search(r"\d", p) for p in selling_points("抽纸 24包 3层 加厚 家庭装"))


def test_every_copy_says_a_selling_point_or_a_benefit_line() -> None:
    plain = _product("某某牌 保温杯")  # the title has no attribute: the category benefit line stands in
    copies = [render_copy(plain, CopyContext(f"g{i}", "其他", "", WEEKDAY, [])) for i in range(10)]
    assert all(c.selling_points and c.selling_points[0] in c.text for c in copies)
    rich = _product("羚跑双肩包 防盗 多功能 大容量")
    copies = [render_copy(rich, CopyContext(f"g{i}", "宝妈", "母婴", WEEKDAY, [])) for i in range(10)]
    assert all(any(p in c.text for p in c.selling_points) for c in copies)


def test_short_titles_drop_compatible_brands_and_shop_words() -> None:
    assert "三星" not in short_title("韩国创意盒装耳机入耳式马卡龙三星苹果通用手机带耳机盒")
    assert "苹果" not in short_title("韩国创意盒装耳机入耳式马卡龙三星苹果通用手机带耳机盒")
    assert short_title("适用华为p30手机壳防摔硅胶").endswith("手机壳")
    for junk in ("当天发货", "囤货装", "以旧换新"):
        assert junk not in short_title(f"{junk} 美的 空调 1.5匹 变频", "美的")
    # A modifier after the product word is not glued to it (保暖内衣圆领 ended on 圆领).
    assert short_title("男士背心保暖内衣圆领加绒加厚弹力贴身打底").endswith("内衣")


def test_every_part_declares_facts_that_exist() -> None:
    known = {"alcohol", "drink", "food", "edible", "health_food", "health_device", "medical_device", "adult_only",
             "baby", "child", "kid", "maternity", "elderly", "install", "gift", "pack", "stockup", "pet", "skin", "makeup", "hair",
             "oral", "body", "beauty", "book", "toy", "household", "pricey", "new", "appliance", "daily"}
    from features.lexicon import CATEGORIES

    known |= set(CATEGORIES)
    for parts in load_parts().values():
        for part in parts:
            assert part.needs <= known and part.avoid <= known, part.id


def test_goods_for_mothers_get_no_baby_wording() -> None:
    goji = _product("宁安堡 枸杞 即食 独立包装 宁夏 30袋 孕妇", category="保健/传统滋补", brand="宁安堡", price=39.0)
    assert title_facts(goji.title, goji.category).audience == "any"
    for text in _copies(goji, sellers=("宝妈", "微商"), themes=("母婴", "")):
        assert "月龄" not in text and "给宝宝" not in text, text


def test_audience_words_are_no_selling_points() -> None:
    assert not {"大学生", "成人", "小童"} & set(selling_points("汤臣倍健成人维生素C100粒 大学生 小童 咀嚼片"))


def test_the_law_checks_safe_rewrite_comes_before_another_template(monkeypatch) -> None:
    import recsys.promo.render as render
    from recsys.promo.adlaw import Hit

    def fake_check(text: str) -> list:
        at = text.find("，")  # pretend every text's first comma is a banned term
        return [Hit(at, at + 1, "，", "test", "")] if at >= 0 and "、" not in text[: at + 1] else []

    rewritten = []

    def fake_rewrite(text: str) -> str:
        rewritten.append(text)
        return text.replace("，", "、", 1)

    monkeypatch.setattr(render, "check", fake_check)
    monkeypatch.setattr(render.adlaw, "safe_rewrite", fake_rewrite, raising=False)
    copy = render_copy(_product("羚跑双肩包 防盗 多功能"), CopyContext("g1", "其他", "", WEEKDAY, []))
    assert rewritten and copy.text == rewritten[0].replace("，", "、", 1)


def test_benefit_lines_cover_titles_without_attributes_and_claim_nothing() -> None:
    from recsys.promo.adlaw import check as law
    from recsys.promo.render import _title_parts, benefit_line, facts_of

    day = date(2025, 11, 19)
    # Guessed heads (not in any word list) get the line of their head ending; a service gets its own.
    for title in ("某某牌液压滤芯", "北京空调维修上门服务", "老式搪瓷像章", "秘制卤猪蹄"):
        product = _product(title)
        short, points = _title_parts(title, "", 16, 2, "")
        line = benefit_line(title, "", facts_of(product, day), "p1")
        assert short and not points and line, title
        assert law(line) == [] and not is_claim(line)


def test_a_book_is_a_book_and_a_brand_tells_the_kind_when_the_title_cannot() -> None:
    assert title_facts("二手正版,某某著,某某出版社").main == "图书"
    assert title_facts("某某研究文集（英）某某").main == "图书"
    assert title_facts("三只松鼠,很新", "", "三只松鼠").main == "食品"
    assert title_facts("三只松鼠,很新", "", "三只松鼠").audience == "any"


def test_no_baby_wording_from_a_brand_category() -> None:
    copies = _copies(_product("贝亲,九成新", brand="贝亲"), days=(WEEKDAY,))
    facts = title_facts("贝亲,九成新", "", "贝亲")
    assert "baby" not in facts.tags and copies
