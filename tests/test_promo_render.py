"""Rendering promo copy: template coverage, exact numbers, no repeats, determinism, length, emoji."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from itertools import islice

import pytest

from contracts.schema import GROUP_THEMES, SELLER_TYPES
from contracts.config import CopyConfig
from recsys.promo import CopyContext, ProductInfo, check, render_copy, render_for_group
from recsys.promo.render import candidate_templates, format_count, format_yuan, punctuation_problems, rating_percent
from recsys.promo.templates import ANY, Part, fill, load_parts, reason_phrases, template_by_id

DAYS = {
    "weekday": date(2025, 7, 9),
    "weekend": date(2025, 7, 12),
    "618": date(2025, 6, 10),
    "双11": date(2025, 11, 5),
    "春节": date(2026, 2, 10),
    "开学": date(2025, 8, 28),
}
REASONS = ["group_buys_category", "trending"]


def _product(**overrides) -> ProductInfo:
    base = dict(
        product_id="p1",
        title="羚跑商务背包双肩包男士防盗多功能出差韩版休闲15.6寸电脑包皮潮",
        category="服饰/箱包",
        brand="羚跑",
        price=159.9,
        coupon=20.0,
        rating=0.987,
        review_count=3562,
        presale=False,
    )
    base.update(overrides)
    return ProductInfo(**base)


def _values() -> dict[str, str]:
    return {"title": "羚跑商务双肩包", "points": "防盗、多功能", "price": "159.9元", "final": "139.9元",
            "coupon": "20元", "rate": "98.7%", "reviews": "3562条", "reason": "群里最近常买同类"}


def test_parts_cover_every_seller_theme_occasion_and_category() -> None:
    parts = load_parts()
    for role in ("open", "close"):
        for seller in SELLER_TYPES:
            assert sum(seller in p.seller_types for p in parts[role]) >= 6, (role, seller)
        for theme in GROUP_THEMES:
            assert sum(theme in p.themes for p in parts[role]) >= 2, (role, theme)
        for occasion in [*DAYS, "presale", "coupon"]:
            assert sum(occasion in p.occasions for p in parts[role]) >= 2, (role, occasion)
        from features.lexicon import CATEGORIES
        from recsys.promo.facts import title_facts

        for category, spec in CATEGORIES.items():
            # Parts written for the category's products (by category or by product fact), that fit its first product.
            sub, words = next(iter(spec.subcategories.items()))
            tags = title_facts(words[0], f"{category}/{sub}").tags
            specific = [p for p in parts[role] if ANY not in p.categories or p.needs]
            assert sum(p.fits(p.seller_types[0], p.themes[0], set(p.occasions), tags) for p in specific) >= 2, (role, category)
    assert sum(ANY in p.occasions for p in parts["body"]) >= 12
    assert sum("coupon" in p.occasions for p in parts["body"]) >= 6


@pytest.mark.parametrize("emoji", [True, False])
@pytest.mark.parametrize("slots", ["all", "title_price", "title_price_final"])
def test_every_part_fills_cleanly_and_passes_the_law_check(emoji: bool, slots: str) -> None:
    keep = {"all": set(_values()), "title_price": {"title", "price"}, "title_price_final": {"title", "price", "final", "coupon"}}[slots]
    values = {k: v for k, v in _values().items() if k in keep}
    parts = load_parts()
    plain_body = fill(parts["body"][0], values, emoji)
    bodies = [p for p in parts["body"] if p.slots <= values.keys()]
    assert len(bodies) >= 8
    texts = [fill(b, values, emoji) for b in bodies]
    texts += [fill(o, values, emoji) + plain_body for o in parts["open"]]
    texts += [plain_body + fill(c, values, emoji) for c in parts["close"]]
    for text in texts:
        assert "[" not in text and "]" not in text, text
        assert punctuation_problems(text) == [], text
        assert check(text) == [], text
    longest = max(map(len, (fill(p, values, emoji) for p in parts["open"])))
    longest += max(map(len, (fill(p, values, emoji) for p in bodies)))
    longest += max(map(len, (fill(p, values, emoji) for p in parts["close"])))
    assert longest <= 90  # even the longest opening, body and closing together fit the default limit
    assert all(check(phrase) == [] for phrase in reason_phrases().values())


def test_template_ids_join_part_ids_and_name_their_template() -> None:
    tpl = template_by_id("open.baoma.01+body.plain.01+close.plain.01")
    assert tpl is not None and [p.role for p in tpl.parts] == ["open", "body", "close"]
    assert tpl.text == "{e:🌸}姐妹们，{title}[，{points}]，{price}，需要的朋友看看"
    assert fill(tpl, {"title": "杯子", "price": "9.9元"}, False) == "姐妹们，杯子，9.9元，需要的朋友看看"
    assert template_by_id("open.baoma.99+body.plain.01") is None
    assert template_by_id("") is None


def test_bad_part_data_is_refused(tmp_path) -> None:
    from recsys.promo.templates import ROLE_FILES

    good = {"open": 'texts = ["你好，"]', "body": 'texts = ["{title}，{price}"]', "close": 'texts = ["，看看"]'}
    bad = {"open": 'texts = ["你好"]', "body": 'texts = ["{title}，好评率{rate}"]', "close": 'texts = ["，{price}"]'}
    for role in ROLE_FILES:
        folder = tmp_path / role
        folder.mkdir()
        for other, filename in ROLE_FILES.items():
            body = bad[other] if other == role else good[other]
            (folder / filename).write_text(f'[[family]]\nname = "x"\n{body}\n', "utf-8")
        with pytest.raises(ValueError):
            load_parts(str(folder))
    ok = tmp_path / "ok"
    ok.mkdir()
    for role, filename in ROLE_FILES.items():
        (ok / filename).write_text(f'[[family]]\nname = "x"\n{good[role]}\n', "utf-8")
    assert [p.id for p in load_parts(str(ok))["open"]] == ["open.x.01"]


@pytest.mark.parametrize("seller", SELLER_TYPES)
def test_every_group_has_well_over_a_week_of_full_templates(seller: str) -> None:
    # 20 copies a day for 7 days need 140 distinct ids; the leanest case is a product with no coupon,
    # rating or reviews on a plain weekday.
    product = _product(coupon=0.0, rating=None, review_count=0, category="其他类目")
    for theme in ["", *GROUP_THEMES]:
        first = list(islice(candidate_templates(product, CopyContext("g1", seller, theme, DAYS["weekday"])), 140))
        assert len(first) == 140 and all(len(t.parts) == 3 for t in first), theme
        assert len({t.id for t in first}) == 140


def test_optional_parts_appear_only_with_their_values() -> None:
    tpl = Part(id="t", role="body", text="{title}[，好评率{rate}]，{price}")
    assert tpl.slots == {"title", "price"}
    assert fill(tpl, {"title": "杯子", "price": "9.9元", "rate": "98%"}, True) == "杯子，好评率98%，9.9元"
    assert fill(tpl, {"title": "杯子", "price": "9.9元"}, True) == "杯子，9.9元"


def test_every_family_renders_for_every_seller_type_theme_and_occasion() -> None:
    used: set[Part] = set()
    for seller in SELLER_TYPES:
        for theme in GROUP_THEMES:
            for occasion, day in DAYS.items():
                for i, presale in enumerate((False, True)):
                    ctx = CopyContext(f"g-{seller}-{theme}", seller, theme, day, REASONS)
                    product = _product(product_id=f"p{i}", presale=presale)
                    copy = render_copy(product, ctx)
                    assert check(copy.text) == [] and punctuation_problems(copy.text) == []
                    assert len(copy.text) <= 90
                    assert copy.exhausted == "" and len(copy.template_id.split("+")) == 3
                    used.update(template_by_id(copy.template_id).parts)
                    if presale:
                        assert "预售" in copy.text
    for seller in SELLER_TYPES:
        assert any(seller in p.seller_types for p in used), seller
    for theme in GROUP_THEMES:
        assert any(theme in p.themes for p in used), theme
    for occasion in [*DAYS, "presale", "coupon"]:
        assert any(occasion in p.occasions for p in used), occasion


def test_numbers_are_exact() -> None:
    product = _product(price=59.9, coupon=10.0, rating=0.9876, review_count=81)  # 80 of 81 good: 98.7 %
    seen_final = seen_rate = False
    for g in range(40):
        copy = render_copy(product, CopyContext(f"g{g}", "导购", "同事", DAYS["weekday"], REASONS))
        text = copy.text
        if "price" in copy.numbers:
            assert "59.9元" in text and copy.numbers["price"] == 59.9
        if "final_price" in copy.numbers:
            seen_final = True
            assert "49.9元" in text and copy.numbers["final_price"] == 49.9
        if "rating_pct" in copy.numbers:
            seen_rate = True
            assert re.search(r"好评率98\.7%", text) and copy.numbers["rating_pct"] == 98.7
        for amount in re.findall(r"(\d+(?:\.\d+)?)元", text):
            assert float(amount) in {59.9, 49.9, 10.0}
    assert seen_final and seen_rate


def test_coupon_openings_and_closings_come_with_the_price_after_the_coupon() -> None:
    product = _product(price=59.9, coupon=10.0)
    history: list[tuple[str, str, date]] = []
    coupon_talk = 0
    for i in range(60):
        copy = render_copy(product, CopyContext("g1", "其他", "福利", DAYS["weekday"], REASONS), history)
        history.append(("g1", copy.template_id, DAYS["weekday"]))
        parts = template_by_id(copy.template_id).parts
        if any(p.role != "body" and "coupon" in p.occasions for p in parts):
            coupon_talk += 1
            assert "49.9元" in copy.text, copy.text
    assert coupon_talk > 0


def test_number_formats() -> None:
    assert [format_yuan(x) for x in (59.9, 59.0, 12.5, 0.99, 199.999)] == ["59.9", "59", "12.5", "0.99", "200"]
    assert [rating_percent(x) for x in (0.987, 0.9996, 1.0, 0.95)] == [98.7, 99.9, 100.0, 95.0]
    assert [format_count(x) for x in (12, 9999, 12345, 250000)] == ["12", "9999", "1.2万+", "25万+"]


def test_no_coupon_and_low_rating_are_never_mentioned() -> None:
    product = _product(coupon=0.0, rating=0.62, review_count=0)
    for g in range(30):
        copy = render_copy(product, CopyContext(f"g{g}", "宝妈", "母婴", DAYS["weekday"], ["coupon", "high_rating"]))
        assert "券" not in copy.text and "好评" not in copy.text and "评价" not in copy.text
        assert set(copy.numbers) == {"price"}


def test_choice_is_deterministic_for_group_product_and_day() -> None:
    ctx = CopyContext("g1", "快递员", "邻里", DAYS["weekday"], REASONS)
    first = render_copy(_product(), ctx)
    assert render_copy(_product(), ctx) == first
    others = {render_copy(_product(), CopyContext(f"g{i}", "快递员", "邻里", DAYS["weekday"], REASONS)).template_id for i in range(20)}
    assert len(others) > 3  # different groups get different templates


def _repeats(history: list[tuple[str, str, date]]) -> int:
    """Pairs of copies with the same template id to the same group less than 7 days apart."""
    return sum(
        1
        for i, (g, tid, day) in enumerate(history)
        for g2, tid2, day2 in history[i + 1 :]
        if tid and g2 == g and tid2 == tid and abs((day2 - day).days) < 7
    )


def test_same_template_never_reaches_a_group_twice_within_seven_days() -> None:
    # 20 copies a day to one group for three weeks: 140 a week, far more than any fixed template list.
    history: list[tuple[str, str, date]] = []
    start = date(2025, 7, 7)
    for d in range(21):
        day = start + timedelta(days=d)
        products = [_product(product_id=f"p{(d * 20 + i) % 37}", coupon=20.0 if i % 3 else 0.0) for i in range(20)]
        copies = render_for_group(products, CopyContext("g1", "快递员", "邻里", day, REASONS), history)
        assert all(c.template_id and not c.exhausted for c in copies)
        history.extend(("g1", c.template_id, day) for c in copies)
        # Within a day no opening or closing repeats while fresh ones are left.
        for role in (0, 2):
            counts = Counter(c.template_id.split("+")[role] for c in copies)
            assert max(counts.values()) == 1, (day, counts)
    assert _repeats(history) == 0
    assert _repeats(history + [("g1", history[0][1], start + timedelta(days=6))]) == 1  # the counter can fail


def test_a_sellers_other_groups_vary_her_day_but_do_not_block_the_rule() -> None:
    day = DAYS["weekday"]
    products = [_product(product_id=f"p{i}") for i in range(6)]
    # Without the seller's other groups each group orders parts on its own; with them, her day
    # shares no opening across the two groups.
    seller_day: list[tuple[str, str, date]] = []
    for gid in ("g1", "g2"):
        for copy in render_for_group(products, CopyContext(gid, "宝妈", "母婴", day, REASONS), seller_day):
            seller_day.append((gid, copy.template_id, day))
    openings = Counter(tid.split("+")[0] for _, tid, _ in seller_day)
    assert max(openings.values()) == 1
    # Another group's template of the day is still free for this group (the rule is per group):
    # when every other fitting template reached this group, g1's is taken.
    ctx = CopyContext("g3", "宝妈", "母婴", day, REASONS)
    taken = seller_day[0][1]
    every = [("g3", t.id, day - timedelta(days=1)) for t in candidate_templates(products[0], ctx) if t.id != taken]
    assert render_copy(products[0], ctx, [*seller_day, *every]).template_id == taken


def test_when_every_fitting_template_was_used_the_copy_has_no_template() -> None:
    product = _product()
    ctx = CopyContext("g1", "学生", "学习", DAYS["weekday"], REASONS)
    yesterday = ctx.day - timedelta(days=1)
    every = [("g1", t.id, yesterday) for t in candidate_templates(product, ctx)]
    assert len(every) > 1000
    copy = render_copy(product, ctx, every)
    assert (copy.template_id, copy.exhausted) == ("", "no_fresh_template")
    assert copy.text == "羚跑商务双肩包，防盗、多功能，159.9元" and copy.numbers == {"price": 159.9}
    assert render_copy(product, ctx, every) == copy  # deterministic, never a silent reuse
    # One template freed up (used 7 days ago) is taken again.
    freed = every[:5] + [("g1", every[5][1], ctx.day - timedelta(days=7))] + every[6:]
    assert render_copy(product, ctx, freed).template_id == every[5][1]
    # A limit no template fits gives the bare line too, for another reason.
    tight = render_copy(product, ctx, cfg=CopyConfig(max_chars=20))
    assert (tight.template_id, tight.exhausted, tight.text) == ("", "no_template_fits", "羚跑商务双肩包，159.9元")


def test_history_of_other_groups_and_old_days_does_not_block() -> None:
    ctx = CopyContext("g1", "学生", "学习", DAYS["weekday"], REASONS)
    chosen = render_copy(_product(), ctx).template_id
    # Another group's copy from yesterday neither blocks the template nor changes the order.
    other_group = [("g2", chosen, DAYS["weekday"] - timedelta(days=1))]
    week_ago = [("g1", chosen, DAYS["weekday"] - timedelta(days=7))]
    yesterday = [("g1", chosen, DAYS["weekday"] - timedelta(days=1))]
    assert render_copy(_product(), ctx, other_group).template_id == chosen
    assert render_copy(_product(), ctx, week_ago).template_id == chosen
    assert render_copy(_product(), ctx, yesterday).template_id != chosen


def test_length_limit_is_configurable() -> None:
    cfg = CopyConfig(max_chars=30)
    for g in range(30):
        copy = render_copy(_product(), CopyContext(f"g{g}", "导购", "福利", DAYS["weekday"], REASONS), cfg=cfg)
        assert len(copy.text) <= 30
        assert check(copy.text) == []


_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u23F3]")


def test_emoji_follow_the_seller_type() -> None:
    with_emoji = CopyConfig(emoji_seller_types=["微商"])
    for g in range(20):
        ctx_ws = CopyContext(f"g{g}", "微商", "福利", DAYS["weekday"], REASONS)
        ctx_kd = CopyContext(f"g{g}", "快递员", "邻里", DAYS["weekend"], REASONS)
        assert not _EMOJI.search(render_copy(_product(), ctx_kd, cfg=with_emoji).text)
        assert not _EMOJI.search(render_copy(_product(), ctx_ws, cfg=CopyConfig(emoji_seller_types=[])).text)
    texts = [render_copy(_product(), CopyContext(f"g{g}", "微商", "福利", DAYS["weekday"], REASONS), cfg=with_emoji).text for g in range(20)]
    assert any(_EMOJI.search(t) for t in texts)


def test_banned_words_in_the_title_never_reach_the_copy() -> None:
    product = _product(title="顶级特供极品大红袍茶叶礼盒装全网最低价", brand="", category="酒水")
    for g in range(20):
        copy = render_copy(product, CopyContext(f"g{g}", "其他", "亲友", DAYS["春节"], ["trending", "unknown_code"]))
        assert check(copy.text) == []
        assert "顶级" not in copy.text and "特供" not in copy.text


def test_reason_codes_map_to_phrases_and_unknown_codes_are_ignored() -> None:
    phrases = reason_phrases()
    assert phrases["group_buys_category"] == "群里最近常买同类"
    texts = [render_copy(_product(), CopyContext(f"g{g}", "其他", "", DAYS["weekday"], ["nonsense", "trending"])).text for g in range(40)]
    assert any("这两天好多群在买" in t for t in texts)
    assert not any("nonsense" in t for t in texts)


def test_templates_without_a_theme_only_when_the_group_has_none() -> None:
    for g in range(20):
        copy = render_copy(_product(), CopyContext(f"g{g}", "其他", "", DAYS["weekday"], REASONS))
        assert all(ANY in p.themes for p in template_by_id(copy.template_id).parts)
