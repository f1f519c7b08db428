"""Typed product facts for the copy: who a product is for, what kind of thing it is, what must be said about it.

The facts come from the category path when the catalogue gives one, and from the title otherwise
(and for audience, gift and pack words always): the title's head product word (what is sold,
from the short-title code) decides the kind, so 凉茶 is a drink and 酒杯 is not liquor, while
audience words (婴儿, 儿童, 中老年) count anywhere in the title. Every template part declares the
tags it needs or avoids (templates.py), and the renderer only uses parts whose tags the facts carry,
so baby wording never lands on 茅台 and a drinking notice never on 凉茶.

Tags: the main category (食品, 3C …) and alcohol, drink, food, edible, health_food, health_device,
medical_device, adult_only, baby, child, kid (baby or child), maternity (孕妇, 产后), elderly, install, gift, pack, stockup,
pet, skin, makeup, hair, oral, body, beauty (any of the five), book, toy, household (fitted or used about the
home), pricey (over 300 yuan) and
new (launched within 30 days of the copy's day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

NEW_DAYS = 30  # 上新 / 上架 wording only this long after the launch
PRICEY_YUAN = 300.0  # above this, stock-up and pocket-money wording stop fitting
STOCKUP_MAX_YUAN = 200.0

# Category path (main, or main/sub) -> tags it implies.
_CATEGORY_TAGS: dict[str, tuple[str, ...]] = {
    "食品": ("food", "edible"),
    "食品/饮料": ("drink", "edible"),
    "食品/饮料冲调": ("drink", "edible"),
    "生鲜": ("food", "edible"),
    "母婴": ("baby",),
    "母婴/奶粉辅食": ("baby", "edible"),
    "日用": ("daily",),
    "家清": ("daily",),
    "个护/洗发护发": ("hair",),
    "个护/口腔护理": ("oral",),
    "个护/身体护理": ("body",),
    "美妆/护肤": ("skin",),
    "美妆/防晒卸妆": ("skin",),
    "美妆/彩妆": ("makeup",),
    "家电": ("appliance",),
    "家电/大家电": ("appliance", "install"),
    "家居/灯具五金": ("install",),
    "宠物": ("pet",),
    "酒水": ("alcohol", "edible", "adult_only"),  # unless the head word is a drink (see title_facts)
    "保健/营养补充": ("health_food", "edible"),
    "保健/传统滋补": ("health_food", "edible"),
    "保健/健康器械": ("health_device",),
    "图书": ("book",),
    "图书/童书": ("book", "child"),
    "玩具": ("toy", "child"),
}
# Title tags that say which main category an uncategorised product belongs to.
_MAIN_OF_TAG: tuple[tuple[str, str], ...] = (
    ("alcohol", "酒水"), ("drink", "食品"), ("health_food", "保健"), ("health_device", "保健"), ("food", "食品"),
    ("skin", "美妆"), ("makeup", "美妆"), ("hair", "个护"), ("oral", "个护"), ("body", "个护"), ("pet", "宠物"),
    ("baby", "母婴"),
)
# Tags read off the head product word only (the kind of thing sold).
_HEAD_TAGS = ("alcohol", "drink", "food", "health_device", "skin", "makeup", "hair", "oral", "body", "install", "pet")
# Tags read off the whole title (who it is for, how it is sold).
_TITLE_TAGS = ("baby", "child", "maternity", "elderly", "adult_only", "gift", "pack", "health_food", "medical_device")
_REFINED = frozenset({"食品", "保健", "美妆", "个护", "酒水"})
_BEAUTY = frozenset({"skin", "makeup", "hair", "oral", "body"})


@dataclass(frozen=True)
class ProductFacts:
    """What a product is, for whom, and what its copy must or must not say."""

    main: str  # main category, given or inferred ("" when unknown)
    kind: str  # the finest tag that decides wording: alcohol, drink, health_food, skin … or the main category
    audience: str  # 婴童, 儿童, 成人, 老人 or any
    tags: frozenset[str]

    @property
    def edible(self) -> bool:
        """Eaten or drunk by people."""
        return "edible" in self.tags

    @property
    def alcoholic(self) -> bool:
        """Liquor, wine or beer."""
        return "alcohol" in self.tags

    @property
    def health_food(self) -> bool:
        """A health food (保健食品): its copy must say 本品不能代替药物."""
        return "health_food" in self.tags

    @property
    def medical_device(self) -> bool:
        """A medical device: its copy must point to the instructions."""
        return "medical_device" in self.tags

    @property
    def needs_installing(self) -> bool:
        """Fitted in the home (空调, 花洒, 门锁)."""
        return "install" in self.tags

    @property
    def gift(self) -> bool:
        """Sold as a gift (礼盒, 送礼)."""
        return "gift" in self.tags

    @property
    def stock_up(self) -> bool:
        """A cheap consumable one stocks up on."""
        return "stockup" in self.tags

    @property
    def pack(self) -> bool:
        """A multi-pack or set (整箱, 家庭装, 套装)."""
        return "pack" in self.tags


def _has(text: str, tag: str) -> bool:
    from features.lexicon import FACT_WORDS, NOT_FACT_WORDS

    low = text.lower()
    cleaned = low
    for look_alike in NOT_FACT_WORDS.get(tag, ()):
        cleaned = cleaned.replace(look_alike, "□")
    # One-character words (茶, 米, 橙) only count as the very end of a head word.
    return any((w in cleaned) if len(w) > 1 else cleaned.endswith(w) for w in FACT_WORDS[tag])


def _head_is_liquor(head: str) -> bool:
    # 回沙酒, 米香酒: a head word ending in 酒 is liquor unless it is a look-alike (酒杯 ends otherwise).
    from features.lexicon import NOT_FACT_WORDS

    return head.endswith("酒") and not any(n in head for n in NOT_FACT_WORDS["alcohol"])


def _brand_category(brand: str) -> str:
    # The lexicon's category of the brand field (a brand the title merely mentions may be what it fits).
    from features.lexicon import all_brands

    brands = {b.lower(): c for b, c in all_brands().items()}
    return brands.get((brand or "").strip().lower(), "")


@lru_cache(maxsize=100_000)
def title_facts(title: str, category: str = "", brand: str = "") -> ProductFacts:
    """The facts a title and category path give (price and launch come in `product_facts`)."""
    from features.lexicon import all_product_words
    from recsys.promo.shorten import book_title, head_word

    path = (category or "").strip()
    main = path.split("/")[0] if path and path != "未知" else ""
    tags: set[str] = set()
    for key in (main, path):
        tags.update(_CATEGORY_TAGS.get(key, ()))
    head = head_word(title, brand or None)
    for tag in _TITLE_TAGS:
        if _has(title, tag):
            tags.add(tag)
    if not main or main in _REFINED:
        # Without a category the head word decides the kind; inside a broad category it refines it
        # (a 凉茶 listed under 酒水 is a drink).
        head_tags = {t for t in _HEAD_TAGS if _has(head, t)} if head else set()
        if head and _head_is_liquor(head):
            head_tags.add("alcohol")
        if main == "酒水" and "drink" in head_tags and "alcohol" not in head_tags:
            tags -= {"alcohol", "adult_only"}
        if not main:
            tags |= head_tags
            main = next((m for t, m in _MAIN_OF_TAG if t in tags), "")
            if not main and not head:
                # No product word: a catalogue brand still says what kind of goods it makes (怡宝 water).
                path_of = _brand_category(brand)
                main = path_of.split("/")[0] if path_of else ""
                tags |= (set(_CATEGORY_TAGS.get(main, ())) | set(_CATEGORY_TAGS.get(path_of, ()))) - {"baby", "child"}
            if not main and book_title(title):
                main = "图书"  # 编著, 出版社, an ISBN: a book, whatever words its title is made of
                tags.update(_CATEGORY_TAGS["图书"])
            if not main and head:
                # The lexicon's category of the head word gives the kind, not the audience: a 保温杯 is
                # listed under 母婴 but an uncategorised one is no baby product unless its title says so.
                path_of = all_product_words().get(head)
                main = path_of.split("/")[0] if path_of else ""
                implied = set(_CATEGORY_TAGS.get(main, ())) | set(_CATEGORY_TAGS.get(path_of or "", ()))
                tags |= implied - {"baby", "child"}
        else:
            tags |= head_tags & {"drink", "alcohol", "health_device", "skin", "makeup", "hair", "oral", "body"}
    if tags & _BEAUTY or "health_device" in tags:
        tags.discard("health_food")  # 酵素粉底液 is make-up, whatever its title says
    if "alcohol" in tags:
        tags |= {"edible", "adult_only"}
        tags -= {"food", "drink", "baby", "child"}
    if "drink" in tags:
        tags.discard("food")
    if "health_device" in tags:
        tags -= {"food", "edible", "health_food"}
    if tags & {"food", "drink", "health_food"}:
        tags.add("edible")
    if "medical_device" in tags and "health_device" not in tags and not tags & {"edible"}:
        tags.add("health_device")
    if "adult_only" in tags:
        tags -= {"baby", "child"}
    if tags & {"baby", "child"}:
        tags.add("kid")
    if tags & _BEAUTY:
        tags.add("beauty")
    if main:
        tags.add(main)
    if "install" in tags or main in {"家居", "家电", "日用", "家清"}:
        tags.add("household")
    audience = ("成人" if "adult_only" in tags else "婴童" if "baby" in tags else "儿童" if "child" in tags
                else "老人" if "elderly" in tags else "any")
    kind = next((t for t in ("alcohol", "drink", "health_food", "health_device", "skin", "makeup", "hair", "oral",
                             "body", "food") if t in tags), main)
    return ProductFacts(main, kind, audience, frozenset(tags))


@lru_cache(maxsize=100_000)
def product_facts(title: str, category: str, brand: str, price: float, launched_at: date | None, day: date) -> ProductFacts:
    """The title's facts plus those of the price (pricey, stock-up) and of the launch date on `day` (new)."""
    base = title_facts(title, category or "", brand or "")
    tags = set(base.tags)
    if price > PRICEY_YUAN:
        tags.add("pricey")
    consumable = bool(tags & {"edible", "daily", "oral", "body", "hair", "pet"}) or "尿裤" in (category or "")
    if consumable and price <= STOCKUP_MAX_YUAN and "alcohol" not in tags:
        tags.add("stockup")
    if launched_at is not None and 0 <= (day - launched_at).days <= NEW_DAYS:
        tags.add("new")
    return ProductFacts(base.main, base.kind, base.audience, frozenset(tags))
