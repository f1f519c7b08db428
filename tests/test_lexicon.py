"""The catalogue lexicon: coverage, uniqueness, economics, compliance and jieba use."""

from __future__ import annotations

import re

import pytest

from features.lexicon import CATEGORIES, all_attributes, all_brands, all_product_words, jieba_userdict_lines

REQUIRED = ("食品", "生鲜", "母婴", "日用", "个护", "美妆", "家清", "家电", "3C", "家居", "服饰", "宠物", "酒水", "保健", "图书")

# Absolute, authority and medical claims the advertising law forbids (our own short list).
ABSOLUTE_WORDS = ("最", "第一", "顶级", "100%", "国家级", "唯一", "首选", "独家", "极致", "万能", "永久", "特供",
                  "纯天然", "无副作用", "根治", "全网", "冠军", "王牌", "至尊", "绝对", "销量")


def test_at_least_fifteen_categories_including_the_required_ones() -> None:
    assert len(CATEGORIES) >= 15
    assert set(REQUIRED) <= set(CATEGORIES)


@pytest.mark.parametrize("name", list(CATEGORIES))
def test_each_category_is_complete_and_sane(name: str) -> None:
    spec = CATEGORIES[name]
    assert spec.name == name
    assert len(spec.brands) >= 8
    assert len(spec.subcategories) >= 3 and all(len(words) >= 3 for words in spec.subcategories.values())
    assert len(spec.attributes) >= 8 and len(spec.specs) >= 5
    lo, hi = spec.price_range
    assert 0 < lo < hi
    c_lo, c_hi = spec.commission_range
    assert 0.05 <= c_lo < c_hi <= 0.40
    # The per-subcategory parts are consistent with the category-level unions.
    assert set(spec.parts) == set(spec.subcategories)
    for sub, part in spec.parts.items():
        assert part.words == spec.subcategories[sub]
        assert set(part.brands) <= set(spec.brands) and set(part.attributes) <= set(spec.attributes)


def test_repurchase_cycles_of_consumables_and_durables() -> None:
    assert CATEGORIES["食品"].repurchase_days == 14
    assert CATEGORIES["日用"].repurchase_days == 30
    assert CATEGORIES["生鲜"].repurchase_days < CATEGORIES["食品"].repurchase_days
    for durable in ("家电", "3C", "家居", "图书"):
        assert CATEGORIES[durable].repurchase_days is None


def test_brands_and_product_words_are_unambiguous() -> None:
    brands = [b for s in CATEGORIES.values() for b in s.brands]
    words = [w for s in CATEGORIES.values() for ws in s.subcategories.values() for w in ws]
    assert len(brands) == len(set(brands)), "a brand must belong to one main category"
    assert len(words) == len(set(words)), "a product word must belong to one subcategory"
    assert not set(brands) & set(words)
    assert not set(words) & all_attributes()
    assert all_brands()["三只松鼠"] == "食品"
    assert all_brands()["美的"] == "家电"
    assert all_product_words()["纸尿裤"] == "母婴/尿裤湿巾"
    assert all_product_words()["空气炸锅"] == "家电/厨房电器"
    assert len(all_brands()) == len(brands) and len(all_product_words()) == len(words)


def test_no_absolute_claims_in_any_title_word() -> None:
    words = all_attributes() | set(all_brands()) | set(all_product_words())
    words |= {w for s in CATEGORIES.values() for w in s.fillers + s.specs}
    offending = sorted(w for w in words if any(bad in w for bad in ABSOLUTE_WORDS))
    assert offending == []


@pytest.mark.realdata
def test_attributes_clear_of_the_real_banned_word_list(shared_data) -> None:
    path = shared_data("ad_law_banned_words") / "es3344520_Dete.txt"
    banned = {line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()}
    assert len(banned) > 150
    words = all_attributes() | {w for s in CATEGORIES.values() for w in s.fillers}
    assert sorted(w for w in words if any(b in w for b in banned)) == []


def test_userdict_lines_have_word_freq_tag_and_cover_the_lexicon() -> None:
    lines = jieba_userdict_lines()
    pattern = re.compile(r"^\S+ \d+ (nz|n|a)$")
    assert all(pattern.match(line) for line in lines)
    entries = {line.split(" ")[0]: line.split(" ")[2] for line in lines}
    assert entries["三只松鼠"] == "nz" and entries["每日坚果"] == "n" and entries["独立小包装"] == "a"
    assert len(entries) == len(lines)
    assert set(all_brands()) | set(all_product_words()) | all_attributes() == set(entries)


def test_jieba_with_the_userdict_finds_brand_word_and_attribute(tmp_path) -> None:
    import jieba

    path = tmp_path / "userdict.txt"
    path.write_text("\n".join(jieba_userdict_lines()) + "\n", "utf-8")
    tok = jieba.Tokenizer()
    tok.load_userdict(str(path))
    tokens = set(tok.lcut("三只松鼠每日坚果独立小包装750g/30包孕妇零食"))
    assert {"三只松鼠", "每日坚果", "独立小包装"} <= tokens
    tokens = set(tok.lcut("美的空气炸锅大容量无涂层5L"))
    assert {"美的", "空气炸锅", "大容量", "无涂层"} <= tokens
