"""Promo copy quality: paste-blocking defects, law hits, exact numbers, punctuation, short-title retention, diversity and speed.

Paste-blocking defects (issue 16) are judged by the reader's rules in this file, apart from the
renderer's product facts: on 350 random Taobao titles × 7 seller types × a weekday, a weekend day
and 春节, and on every pick of an artifact rendered through the service's picks path (with the
seller's other groups as history), with distinct-2 of each seller's day:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/copy_quality.py runs/copy_report.md --defects-only \
        --artifact runs/demo/artifacts --read runs/copy_read.txt

`--read` writes 100 random copies (70 Taobao, 30 artifact) with their detected defects, to read by hand.

Prints every figure and writes a Markdown report (default runs/copy_report.md) with the AdvertiseGen
hits listed one by one and ten sample copies per seller type.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/copy_quality.py runs/copy_report.md

Template repeats are counted exactly as the rule says: two copies with the same template id reaching
the same group less than 7 days apart. Copies without a template (the bare fact line, only when every
fitting template was used) are counted separately.

Data: the sample world (features.sample_world.generate) and, when ../shared/data is present, the
7,998 Taobao titles, the community banned-word list and the 1,070 AdvertiseGen ads.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from features.tagged_titles import normalised, read_tagged_titles

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CARRIERS = ("这款{}的好物今天到了，需要的私我。", "大家看看，{}，家里用着挺方便。", "{}", "商品详情写着{}，我先收藏了。")
_MONEY = re.compile(r"(\d+(?:\.\d+)?)元")
_RATE = re.compile(r"好评率(\d+(?:\.\d+)?)%")


def numbers_exact(copy, product) -> bool:
    """Every amount and rate in the text equals the product's own numbers (price, coupon price, coupon, rate)."""
    from recsys.promo.render import rating_percent

    allowed = {round(product.price, 2)}
    if 0 < product.coupon < product.price:
        allowed |= {round(product.price - product.coupon, 2), round(product.coupon, 2)}
    amounts = [float(a) for a in _MONEY.findall(copy.text)]
    if not amounts or any(a not in allowed for a in amounts):
        return False
    if "price" in copy.numbers and copy.numbers["price"] != round(product.price, 2):
        return False
    if "final_price" in copy.numbers and copy.numbers["final_price"] != round(product.price - product.coupon, 2):
        return False
    rates = [float(r) for r in _RATE.findall(copy.text)]
    if rates and (product.rating is None or rates != [rating_percent(product.rating)]):
        return False
    return True


def distinct_2(texts: list[str]) -> float:
    """Unique character bigrams over all bigrams, bigrams taken within each text."""
    grams = [t[i : i + 2] for t in texts for i in range(len(t) - 1)]
    return len(set(grams)) / max(1, len(grams))


def audit(copies_and_products) -> dict[str, float]:
    """Law hits, exact numbers, punctuation and length over (copy, product) pairs."""
    from recsys.promo.adlaw import check
    from recsys.promo.render import punctuation_problems

    n = hits = exact = punct = 0
    longest = 0
    for copy, product in copies_and_products:
        n += 1
        hits += bool(check(copy.text))
        exact += numbers_exact(copy, product)
        punct += bool(punctuation_problems(copy.text))
        longest = max(longest, len(copy.text))
    return {"copies": n, "law_hit_copies": hits, "exact_numbers": exact / max(1, n), "punctuation_problems": punct, "max_chars": longest}


def count_repeats(deliveries: list[tuple[str, str, date]], days: int = 7) -> int:
    """The rule as stated: pairs of copies with the same template id reaching the same group less than `days` apart.

    Copies without a template (empty id: the bare fact line when none is left) are not template uses.
    """
    by_group_template: dict[tuple[str, str], list[date]] = defaultdict(list)
    for group, template_id, day in deliveries:
        if template_id:
            by_group_template[(group, template_id)].append(day)
    repeats = 0
    for dates in by_group_template.values():
        dates.sort()
        for i, first in enumerate(dates):
            repeats += sum(1 for later in dates[i + 1 :] if (later - first).days < days)
    return repeats


def _world(seed: int, groups: int, products: int):
    from features.sample_world import generate
    from recsys.promo import ProductInfo

    world = generate(seed=seed, groups=groups, products=products, days=30)
    catalogue = [
        ProductInfo(r.product_id, r.title, r.category, r.brand, float(r.price), float(r.coupon),
                    None if r.rating != r.rating else float(r.rating), int(r.review_count), bool(r.presale))
        for r in world.products.itertuples()
    ]
    seller_type = dict(zip(world.sellers.seller_id, world.sellers.seller_type))
    groups_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in world.groups.itertuples():
        groups_of[r.seller_id].append((r.group_id, r.theme if isinstance(r.theme, str) else ""))
    return catalogue, seller_type, groups_of


REASON_CODES = ["group_buys_category", "repurchase_due", "similar_to_past", "trending", "segment_popular",
                "high_rating", "coupon", "presale", "new_product"]


def sample_world_run(seed: int, groups: int, products: int, days: int = 7):
    """Render `days` days of 10–20 picks per seller over her groups on the sample world; return copies and figures."""
    from recsys.promo import CopyContext, render_copy

    catalogue, seller_type, groups_of = _world(seed, groups, products)
    rng = random.Random(seed)
    start = date(2025, 6, 9)
    history: dict[str, list[tuple[str, str, date]]] = defaultdict(list)
    deliveries: list[tuple[str, str, date]] = []
    pairs, per_seller_day, exhausted = [], [], 0
    samples: dict[str, list[str]] = defaultdict(list)
    for d in range(days):
        day = start + timedelta(days=d)
        for seller, glist in groups_of.items():
            picks = rng.randint(10, 20)
            texts = []
            for k in range(picks):
                gid, theme = glist[k % len(glist)]
                product = rng.choice(catalogue)
                ctx = CopyContext(gid, seller_type[seller], theme, day, rng.sample(REASON_CODES, 2))
                # The seller's copies to all her groups: the rule is per group, variety per seller.
                copy = render_copy(product, ctx, history[seller])
                exhausted += bool(copy.exhausted)
                history[seller].append((gid, copy.template_id, day))
                deliveries.append((gid, copy.template_id, day))
                pairs.append((copy, product))
                texts.append(copy.text)
                if len(samples[seller_type[seller]]) < 10 and d == 0:
                    samples[seller_type[seller]].append(f"[{theme or '无主题'}/{copy.template_id}] {copy.text}")
            per_seller_day.append(distinct_2(texts))
    figures = audit(pairs)
    figures["template_repeats_within_7_days"] = count_repeats(deliveries)
    figures["copies_without_template"] = exhausted
    figures["distinct_template_ids"] = len({t for _, t, _ in deliveries if t})
    figures["distinct2_mean"] = sum(per_seller_day) / len(per_seller_day)
    figures["distinct2_min"] = min(per_seller_day)
    return figures, samples, catalogue


def per_group_run(seed: int, groups: int, products: int, days: int, per_day: int) -> dict[str, float]:
    """Every group gets exactly `per_day` picks a day for `days` days: repeats, bare copies and Distinct-2 per group-day."""
    from recsys.promo import CopyContext, render_copy

    catalogue, seller_type, groups_of = _world(seed, groups, products)
    rng = random.Random(seed + 1)
    start = date(2025, 6, 9)
    history: dict[str, list[tuple[str, str, date]]] = defaultdict(list)
    deliveries: list[tuple[str, str, date]] = []
    per_group_day, exhausted = [], 0
    for d in range(days):
        day = start + timedelta(days=d)
        for seller, glist in groups_of.items():
            for gid, theme in glist:
                texts = []
                for product in rng.sample(catalogue, per_day):
                    ctx = CopyContext(gid, seller_type[seller], theme, day, rng.sample(REASON_CODES, 2))
                    copy = render_copy(product, ctx, history[seller])
                    exhausted += bool(copy.exhausted)
                    history[seller].append((gid, copy.template_id, day))
                    deliveries.append((gid, copy.template_id, day))
                    texts.append(copy.text)
                per_group_day.append(distinct_2(texts))
    return {"copies": len(deliveries), "template_repeats_within_7_days": count_repeats(deliveries),
            "copies_without_template": exhausted, "distinct2_min_group_day": min(per_group_day),
            "distinct2_mean_group_day": sum(per_group_day) / len(per_group_day)}


def taobao_run(folder: Path, seed: int):
    """Short-title retention (brand given / blind) and copy audit over the real Taobao titles."""
    from recsys.promo import CopyContext, ProductInfo, render_copy, short_title
    from contracts.schema import GROUP_THEMES, SELLER_TYPES

    titles = [(t.title, list(t.brands), list(t.products)) for t in read_tagged_titles(folder)]
    rng = random.Random(seed)
    retention = {}
    for mode in ("given", "blind"):
        kb = kp = kj = nb = np_ = nj = 0
        for title, brands, products in titles:
            short = normalised(short_title(title, brands[0] if (mode == "given" and brands) else None))
            has_b = any(normalised(b) in short for b in brands)
            has_p = any(normalised(p) in short for p in products)
            if brands:
                nb += 1
                kb += has_b
            if products:
                np_ += 1
                kp += has_p
            if brands and products:
                nj += 1
                kj += has_b and has_p
        retention[mode] = {"brand": kb / nb, "product": kp / np_, "both": kj / nj, "titles_with_both": nj}
    pairs = []
    day = date(2025, 11, 5)
    for i, (title, brands, _) in enumerate(titles):
        price = round(rng.uniform(5, 800), rng.choice([0, 1, 2]))
        coupon = float(rng.choice([0, 0, 3, 5, 10, 20]))
        product = ProductInfo(f"t{i}", title, "", brands[0] if brands else "", price, coupon if coupon < price else 0.0,
                              round(rng.uniform(0.85, 1.0), 3), rng.randint(0, 50000), rng.random() < 0.05)
        ctx = CopyContext(f"g{i % 97}", rng.choice(SELLER_TYPES), rng.choice(GROUP_THEMES), day, ["trending"])
        pairs.append((render_copy(product, ctx), product))
    return retention, audit(pairs), len(titles)


def coverage_run(path: Path):
    """Share of community-list entries caught in every carrier sentence, and of (entry, carrier) pairs."""
    from recsys.promo.adlaw import check

    words = list(dict.fromkeys(w.strip() for w in path.read_text("utf-8").splitlines() if w.strip()))
    all_caught = pair_caught = 0
    missed = []
    for word in words:
        caught = 0
        for carrier in CARRIERS:
            text = carrier.format(word)
            a = carrier.index("{}")
            b = a + len(word)
            caught += any(h.start < b and a < h.end for h in check(text))
        pair_caught += caught
        all_caught += caught == len(CARRIERS)
        if caught < len(CARRIERS):
            missed.append(f"{word} ({caught}/{len(CARRIERS)})")
    return {"entries": len(words), "caught_everywhere": all_caught / len(words),
            "pairs_caught": pair_caught / (len(words) * len(CARRIERS))}, missed


def advertisegen_run(path: Path):
    """Every hit on the real ads, with its context, for a reader to judge."""
    from recsys.promo.adlaw import check

    ads = [json.loads(line)["summary"] for line in path.read_text("utf-8").splitlines() if line.strip()]
    rows = []
    flagged = 0
    for i, ad in enumerate(ads):
        hits = check(ad)
        flagged += bool(hits)
        for h in hits:
            rows.append((i, h.term, h.category, ad[max(0, h.start - 12) : h.end + 12].replace("|", "｜")))
    return len(ads), flagged, rows


def speed_run(catalogue, n: int = 20000) -> tuple[float, float]:
    """Copies per second on one core: cold (first sight of each product) and warm (cached titles)."""
    from recsys.promo import CopyContext, render_copy
    from recsys.promo.render import _title_parts

    _title_parts.cache_clear()
    ctxs = [CopyContext(f"g{i}", "宝妈", "母婴", date(2025, 7, 9) + timedelta(days=i % 30), ["trending"]) for i in range(n)]
    t0 = time.perf_counter()
    for product in catalogue:
        render_copy(product, ctxs[0])
    cold = len(catalogue) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i, ctx in enumerate(ctxs):
        render_copy(catalogue[i % len(catalogue)], ctx)
    warm = n / (time.perf_counter() - t0)
    return cold, warm


# ---------------------------------------------------------------------------------------------------
# Paste-blocking defects: what stops a seller pasting the copy, judged by rules written here, apart
# from the renderer's own product facts (so that the renderer cannot pass by agreeing with itself).
# The word lists below are the reader's: what a person checking the copy would look for.

_ALCOHOL_WORDS = ("白酒", "啤酒", "红酒", "葡萄酒", "黄酒", "米酒", "清酒", "果酒", "洋酒", "威士忌", "伏特加", "白兰地",
                  "朗姆", "鸡尾酒", "香槟", "干红", "干白", "酱香型", "浓香型", "茅台", "五粮液", "二锅头", "汾酒",
                  "泸州老窖", "梅酒", "烧酒", "高粱酒", "药酒", "起泡酒", "精酿", "洋河", "郎酒", "劲酒")
_NOT_ALCOHOL = ("酒杯", "酒柜", "酒架", "酒具", "醒酒", "开瓶", "酒精", "酒店", "酒红", "酒窝", "酒瓶", "酒壶", "红酒杯",
                "酒袋", "酒盒", "酒吧", "酒水单", "冰酒器", "酒塞", "酒标", "啤酒杯", "啤酒肚", "啤酒开")
_ADULT_WORDS = ("成人用品", "情趣", "避孕套", "安全套", "延时", "飞机杯", "跳蛋", "香烟", "电子烟", "烟弹", "烟油", "性感内衣")
_CHILD_GOODS = ("儿童", "宝宝", "婴儿", "婴幼儿", "幼儿", "童装", "童鞋", "童车", "孩子", "小学生", "绘本", "玩具", "奶瓶",
                "纸尿裤", "尿不湿", "拉拉裤", "辅食", "母婴", "亲子", "新生儿", "早教", "积木", "学步", "奶嘴", "婴童",
                "男童", "女童", "中大童", "小童", "宝贝", "童", "少儿", "幼儿园", "小孩", "学生", "吸奶器", "孕妇", "产妇",
                "哺乳", "月子", "拼图", "益智", "点读", "识字", "拼音")
_HEALTH_FOOD = ("保健食品", "保健品", "维生素", "钙片", "鱼油", "蛋白粉", "益生菌", "胶原蛋白", "玛咖", "褪黑素", "氨糖",
                "葡萄籽", "螺旋藻", "辅酶", "叶酸", "软胶囊", "咀嚼片", "牡蛎", "蓝帽", "膳食营养", "营养补充", "磷脂",
                "蜂胶", "灵芝孢子", "复合维生素", "钙尔奇", "汤臣倍健", "善存", "健力多", "斯利安", "swisse")
# What the copy claims about the product's user (beyond addressing the group).
_CHILD_CLAIMS = ("给娃", "给宝宝", "宝宝用", "有娃的", "孩子住校", "给孩子", "陪娃", "宝宝用品", "小零件", "月龄", "适读年龄",
                 "适用年龄", "带娃", "娃用", "小朋友")
_STUDENT_CLAIMS = ("宿舍", "同学", "学生党", "室友", "上课", "校园", "住校", "开学")
_DRINKING = ("饮酒", "喝酒", "不喝酒")
_EATING = ("食用", "保质期", "嘴馋", "吃完", "不能代替药物", "零食柜")
_SHOP_WORDS = ("当天发货", "包邮", "现货", "囤货装", "以旧换新", "正品", "旗舰店", "官方", "特价", "促销", "清仓", "顺丰",
               "秒杀", "热卖", "爆款", "批发", "厂家", "直销", "代发", "一件代发", "新款", "实惠装", "全国", "专柜")
_FRAGMENT_START = tuple("的了和与及之款只件买送赠这那等或")
_FRAGMENT_END = tuple("的和与及之或是在为送赠")
_COMPATIBLE = re.compile(r"(通用|适用|专用|兼容|配件|适配)")
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u2B06\u2934\u2935\u3030\u303D\u3297\u3299]\ufe0f?")
_CHILD_EMOJI = ("👶", "🍼", "🧸")
_CJK3 = re.compile(r"[\u4e00-\u9fff]{3}")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NEW_WORDS = ("上新", "上架", "新品", "新到")
_PLACES = ("北京", "上海", "天津", "重庆", "广东", "广州", "深圳", "浙江", "杭州", "江苏", "苏州", "福建", "山东", "河北",
           "河南", "湖南", "湖北", "四川", "云南", "贵州", "广西", "海南", "陕西", "山西", "甘肃", "宁夏", "新疆", "西藏",
           "青海", "内蒙", "辽宁", "吉林", "黑龙江", "东北", "安徽", "江西", "台湾", "香港", "澳门", "日本", "韩国", "美国",
           "英国", "法国", "德国", "意大利", "泰国", "澳洲", "澳大利亚", "新西兰", "进口", "义乌", "景德镇", "云南")
_HEALTH_CLAIMS = ("免疫", "速效", "防身", "壮阳", "美白", "祛斑", "减肥", "瘦身", "降压", "降糖", "降脂", "抗癌",
                  "抗衰", "防脱", "生发", "祛痘", "助眠", "安神", "补肾", "养胃", "护肝", "排毒", "养颜", "治疗", "消炎",
                  "抗过敏", "增高", "丰胸", "延时", "壮腰", "补气", "补血", "明目", "降火")
_NEGATORS = ("非", "不", "无", "没有", "免", "不带", "不含")


@dataclass
class Truth:
    """What a reader knows about a product: its title's tagged words, audience and kind, launch date."""

    title: str
    brands: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    category: str = ""
    launched_at: date | None = None

    @property
    def alcohol(self) -> bool:
        words = self.products or (self.title,)
        if self.category.startswith("酒水") and not any(w in self.title for w in ("凉茶", "矿泉水", "苏打水", "气泡水")):
            return True
        return any((any(a in w for a in _ALCOHOL_WORDS) or w.endswith("酒")) and not any(n in w for n in _NOT_ALCOHOL)
                   for w in words) or (
            any(a in self.title for a in _ALCOHOL_WORDS) and not any(n in self.title for n in _NOT_ALCOHOL))

    @property
    def adult(self) -> bool:
        return any(w in self.title for w in _ADULT_WORDS)

    @property
    def child(self) -> bool:
        return self.category.split("/")[0] in {"母婴", "玩具"} or self.category == "图书/童书" or any(
            w in self.title for w in _CHILD_GOODS)

    @property
    def health_food(self) -> bool:
        return (self.category.startswith("保健") and "器械" not in self.category) if self.category else any(
            w in self.title.lower() for w in _HEALTH_FOOD)


def _without(text: str, *spans: str) -> str:
    for span in sorted((s for s in spans if s), key=len, reverse=True):
        text = text.replace(span, "□")
    return text


def possible_rate(pct: float, n: int) -> bool:
    """True when some k ≤ n good reviews give a rate that floors to `pct` (one decimal)."""
    if n <= 0:
        return False
    lo = math.ceil(pct / 100 * n - 1e-9)
    return lo <= n and lo / n < (pct + 0.1) / 100 - 1e-12


@lru_cache(maxsize=50_000)
def _boundaries(title: str) -> frozenset[int]:
    # Where a reader would say the title's words start and end, as offsets into normalised(title):
    # separators, changes between Chinese, Latin and digits, and jieba's own dictionary (not the
    # renderer's tokenizer) inside each Chinese run.
    import jieba

    runs = re.findall(r"[一-鿿]+|[a-z]+|[0-9]+", title.lower())
    cuts, at = {0}, 0
    for run in runs:
        if run[0] >= "一":
            for word in jieba.cut(run, HMM=False):
                at += len(word)
                cuts.add(at)
        else:
            at += len(run)
            cuts.add(at)
    return frozenset(cuts)


def cut_inside_a_word(short: str, title: str, tagged: tuple[str, ...] = ()) -> bool:
    """True when a piece of the short title starts or ends inside one of the title's words (自行 of 自行车).

    The title's tagged words (product words, brands) are words too, whatever jieba makes of their neighbours.
    """
    s, t = normalised(short), normalised(title)
    cuts = set(_boundaries(title))
    for word in (normalised(w) for w in tagged):
        for k in (k for k in range(len(t)) if word and t.startswith(word, k)):
            cuts |= {k, k + len(word)}
    i = 0
    while i < len(s):
        # The longest next piece that the title has between two word boundaries; a piece the title has
        # only across a boundary is a fragment, a character it lacks (the brand field) is skipped.
        found = seen = False
        for j in range(len(s), i, -1):
            piece = s[i:j]
            starts = [k for k in range(len(t)) if t.startswith(piece, k)]
            seen = seen or bool(starts)
            if any(k in cuts and k + len(piece) in cuts for k in starts):
                i, found = j, True
                break
        if not found:
            if seen:
                return True
            i += 1
    return False


_LISTING_WORDS = ("求购", "收购", "转卖", "转让", "出售", "闲置", "出租", "回收")


_SERVICE_WORDS = ("清洗", "维修", "安装", "保洁", "租赁", "出租", "回收", "搬家", "检测", "保养", "服务")


def _service_head(short: str, pieces: set[str]) -> bool:
    """A service listing's short title: the tagged goods, then the service done to them (地毯清洗)."""
    return any(short.endswith(w) for w in _SERVICE_WORDS) and any(p in short for p in pieces)


def _compatible_head(short: str, title: str) -> bool:
    """The short title ends on a word the title follows with 适用/专用/通用: what the product fits, not the product."""
    # Punctuation ends the phrase: in 手柄,兼容pc the marker belongs to what comes after it.
    t = re.sub(r"[\s]", "", title.lower())
    for k in range(len(short) - 1, max(-1, len(short) - 6), -1):
        tail = short[k:]
        if len(tail) >= 2 and any(t[m + len(tail): m + len(tail) + 2] in ("适用", "专用", "通用", "兼容")
                                  for m in range(len(t)) if t.startswith(tail, m)):
            return True
    return False


def _stacked(short: str, heads: list[str]) -> bool:
    """The short title names the product more than once (证件包牛皮驾照夹卡包)."""
    found = sorted({h for h in heads if h in short}, key=len, reverse=True)
    kept: list[str] = []
    for h in found:
        if not any(h in k for k in kept):
            kept.append(h)
    # Three product words, or two with the same head (项坠…吊坠, 证件包…卡包): the same thing named twice.
    # Two different heads are usually a modifier and its head (电视机遥控器, 台式机内存).
    return len(kept) >= 3 or (len(kept) == 2 and kept[0][-1] == kept[1][-1])


def _runs(short: str, title: str) -> list[tuple[str, list[int]]]:
    """The short title as its longest pieces found whole in the title, each with where the title has it."""
    out, i = [], 0
    while i < len(short):
        for j in range(len(short), i, -1):
            starts = [k for k in range(len(title)) if title.startswith(short[i:j], k)]
            if starts:
                out.append((short[i:j], starts))
                i = j
                break
        else:
            out.append((short[i], []))  # a character the title lacks (the brand field)
            i += 1
    return out


def _orphan_character(short: str, title: str) -> bool:
    """A lone Chinese character taken out of the title's words: 可 of 欧式可电动, 卡 of 徕卡, 电 of 电压力.

    The short title's longest pieces found whole in the title are read; a piece of one character
    that the title never has apart from other Chinese characters was cut out of a word.
    """
    s, t = normalised(short), normalised(title)
    runs = _runs(s, t)
    for i, (piece, starts) in enumerate(runs):
        if len(piece) != 1 or not "一" <= piece <= "鿿" or not starts:
            continue
        before = runs[i - 1][0] if i > 0 else ""
        after = runs[i + 1][0] if i + 1 < len(runs) else ""
        if (before and before[-1] + piece in t) or (after and piece + after[0] in t):
            continue  # the character reads with its neighbour as the title has them (快充/头 of 快充头)
        raw = title.lower()
        alone = [k for k in range(len(raw)) if raw[k] == piece
                 and not ("一" <= raw[k - 1:k] <= "鿿" if k > 0 else False)
                 and not ("一" <= raw[k + 1:k + 2] <= "鿿" if k + 1 < len(raw) else False)]
        if not alone:
            return True
    return False


@lru_cache(maxsize=50_000)
def _hmm_inner(title: str) -> frozenset[int]:
    # Offsets inside a word of the title by jieba with its HMM on (it joins unknown compounds: 手帐本).
    import jieba

    inner, at = set(), 0
    for run in re.findall(r"[一-鿿]+|[a-z]+|[0-9]+", title.lower()):
        if run[0] >= "一":
            for word in jieba.cut(run, HMM=True):
                inner |= set(range(at + 1, at + len(word)))
                at += len(word)
        else:
            at += len(run)
    return frozenset(inner)


def _ends_inside_a_word(short: str, title: str, tagged: tuple[str, ...]) -> bool:
    """The short title stops inside one of the title's words (记事本手 of 手帐本), wherever the title has its ending."""
    s, t = normalised(short), normalised(title)
    if not s or any(s.endswith(normalised(w)) for w in tagged if len(normalised(w)) >= 1):
        return False
    pieces = _runs(s, t)
    last, starts = pieces[-1]
    if not starts or len(last) < 1:
        return False
    inner = _hmm_inner(title)
    return all(k + len(last) in inner for k in starts)


def _starts_on_function_word(short: str) -> bool:
    """The short title opens on a function word (的, 和, 送 …) standing alone, not on a word that begins with it (和田玉)."""
    import jieba

    if short[:1] not in _FRAGMENT_START:
        return False
    first = next(iter(jieba.cut(short, HMM=False)), "")
    return len(first) == 1


def short_title_defects(short: str, truth: Truth, fallback: bool = False) -> list[str]:
    """Why a short title is broken: no product word, the wrong head, a compatible-with brand, shop words, a fragment."""
    out = []
    s = normalised(short)
    title = truth.title.lower()
    if len(s) < 2:
        return ["short: empty"]
    if fallback:
        # Brand + the category's generic noun, said when the title has no confident head: no fragment
        # and no wrong head, but no product word either; counted on its own line, not hidden.
        return ["fallback: generic noun"]
    heads = [normalised(p) for p in truth.products if len(normalised(p)) >= 2]
    # A product word is kept when two or more characters of a tagged one are (西装 of 西装套装); it
    # heads the short title only when the short title ends on the tagged word's own end (Chinese
    # compounds are head-final: 金丝 of 金丝玉 or 电脑 of 电脑包 is no head).
    pieces = {h[i:j] for h in heads for i in range(len(h)) for j in range(i + 2, len(h) + 1)}
    endings = {h[i:] for h in heads for i in range(len(h) - 1)}
    # A one-character tagged product (包, 灯) heads the short title when it ends it.
    endings |= {normalised(p) for p in truth.products if len(normalised(p)) == 1}
    if heads and not any(p in s for p in pieces):
        out.append("short: no product word")
    elif heads and not any(s.endswith(p) for p in endings) and not _service_head(s, pieces):
        out.append("short: head is not what is sold")
    elif _compatible_head(s, truth.title):
        out.append("short: head is what the product fits")
    if _stacked(s, heads):
        out.append("short: stacked product words")
    if any(w in short for w in _LISTING_WORDS):
        out.append("short: listing word")
    if _orphan_character(short, truth.title) or _ends_inside_a_word(short, truth.title, truth.products + truth.brands):
        out.append("short: fragment")
    for b in truth.brands:
        nb = normalised(b)
        if nb and nb in s:
            at = title.find(b.lower())
            after = title[at + len(b): at + len(b) + 8] if at >= 0 else ""
            before = title[max(0, at - 3): at] if at >= 0 else ""
            # The brand names what the product fits when a marker follows it (after other brands, 三星苹果通用)
            # or comes right before it (适用华为).
            others = sorted((o.lower() for o in truth.brands if o != b), key=len, reverse=True)
            stripped = after.lstrip(" ,/")
            for o in others:
                if stripped.startswith(o):
                    stripped = stripped[len(o):].lstrip(" ,/")
            if _COMPATIBLE.match(stripped) or re.search(r"(适用|兼容|适配|for|用于)\s*$", before):
                out.append("short: compatible-with brand")
    if any(w in short for w in _SHOP_WORDS):
        out.append("short: shop words")
    if _starts_on_function_word(short) or short[-1:] in _FRAGMENT_END or cut_inside_a_word(short, truth.title, truth.products + truth.brands):
        out.append("short: fragment")
    return out


def copy_defects(copy, product, ctx, truth: Truth) -> list[str]:
    """Every paste-blocking defect of one copy, by class ('class: detail')."""
    from recsys.promo.adlaw import check
    from recsys.promo.occasions import occasions_for
    from recsys.promo.render import punctuation_problems

    text = copy.text
    out: list[str] = []
    if check(text):
        out.append("law: " + ",".join(h.term for h in check(text)))
    out += [f"punctuation: {p}" for p in punctuation_problems(text)]
    if not numbers_exact(copy, product):
        out.append("numbers: not the product's")
    # The reader tells the fallback form by its generic noun (好物, 美妆好物, a 图书 the title does not say).
    generic = copy.short_title.endswith("好物") or (copy.short_title.endswith("图书") and "图书" not in truth.title)
    out += short_title_defects(copy.short_title, truth, fallback=generic)
    # The copy's own words, without the short title and selling points that come from the title itself.
    own = _without(text, copy.short_title, *copy.selling_points)
    adult = truth.alcohol or truth.adult
    if adult and any(w in own for w in _CHILD_CLAIMS + ("宝宝", "娃", "孩子", "宝妈", "儿童")):
        out.append("audience: child wording on alcohol or adult goods")
    if adult and any(w in own for w in _STUDENT_CLAIMS):
        out.append("audience: student wording on alcohol or adult goods")
    if not truth.child and not adult and any(w in own for w in _CHILD_CLAIMS):
        out.append("audience: child claim on goods not for children")
    if not truth.alcohol and any(w in own for w in _DRINKING):
        out.append("category: drinking notice on a non-alcoholic product")
    if not truth.health_food and any(w in own for w in ("不能代替药物", "按说明食用")):
        out.append("category: health-food notice on other goods")
    if truth.health_food and "本品不能代替药物" not in text:
        out.append("notice: health food without 本品不能代替药物")
    if truth.alcohol and not any(w in text for w in ("理性饮酒", "适量饮酒", "未成年人请勿饮酒")):
        out.append("notice: alcohol without a drinking notice")
    if "囤" in own and product.price > 300:
        out.append("category: stock-up wording on a ¥300+ product")
    if "到店自提" in text:
        out.append("coherence: in-store pickup for an online link")
    if any(w in own for w in _NEW_WORDS) or f"{copy.short_title}来啦" in text:
        launched = truth.launched_at
        if launched is None or not 0 <= (ctx.day - launched).days <= 30:
            out.append("coherence: 上新 without a recent launch")
    rates = _RATE.findall(text)
    if rates:
        pct = float(rates[0])
        if product.review_count < 20:
            out.append("rating: quoted on fewer than 20 reviews")
        elif not possible_rate(pct, product.review_count):
            out.append("rating: impossible for the review count")
    numbers = [n for n in _NUMBER.findall(_without(text, copy.short_title)) ]
    if len(numbers) != len(set(numbers)):
        out.append("repetition: a number twice")
    seen: dict[str, int] = {}
    for m in re.finditer(r"(?=([\u4e00-\u9fff]{3}))", text):
        g = m.group(1)
        if g in seen and m.start() >= seen[g] + 3:
            out.append(f"repetition: {g} twice")
            break
        seen.setdefault(g, m.start())
    if ("预订" in text or "预售中" in text) and "（预售）" in text:
        out.append("repetition: presale twice")
    emoji = _EMOJI.findall(text)
    if len(emoji) > 1:
        out.append("emoji: more than one")
    if any(e in text for e in _CHILD_EMOJI) and not truth.child:
        out.append("emoji: child emoji on other goods")
    if "🧧" in text and "春节" not in occasions_for(ctx.day):
        out.append("emoji: red packet outside the Spring Festival")
    for point in copy.selling_points:
        at = truth.title.find(point)
        before = truth.title[max(0, at - 2): at] if at >= 0 else ""
        if at >= 0 and any(before.endswith(n) for n in _NEGATORS):
            out.append(f"point: negated ({before}{point})")
        if any(normalised(point) == normalised(b) for b in truth.brands) or point.lower() in (product.brand or "").lower():
            out.append(f"point: a brand ({point})")
        if _NUMBER.search(point) or re.search(r"[一二三四五六七八九十两]+[装片包袋瓶支盒罐粒只双件套条]", point):
            out.append(f"point: a pack size ({point})")
        if any(w in point for w in _PLACES):
            out.append(f"point: a place ({point})")
        if any(w in point for w in _HEALTH_CLAIMS) or ("持久" in point and (truth.health_food or truth.adult)):
            out.append(f"point: a health claim ({point})")
    return out


def has_point(copy) -> bool:
    """A selling point is in the text (not only in the list)."""
    return any(p and p in copy.text for p in copy.selling_points)


PASTE_BLOCKING = ("law", "punctuation", "numbers", "short", "audience", "category", "notice", "coherence", "rating",
                  "repetition", "emoji", "point")


def defect_figures(rows: list[tuple[object, object, object, Truth]]) -> tuple[dict[str, float], Counter]:
    """Share of copies with any paste-blocking defect, per class, with a selling point, and adult-goods child wording."""
    by_class: Counter = Counter()
    detail: Counter = Counter()
    blocked = blocked_or_fallback = pointed = adult_child = 0
    for copy, product, ctx, truth in rows:
        found = copy_defects(copy, product, ctx, truth)
        classes = {d.split(":")[0] for d in found}
        by_class.update(classes)
        detail.update(d if d.startswith(("audience", "category", "notice", "coherence", "emoji", "short", "rating", "numbers"))
                      else d.split(":")[0] + ": " + d.split(":")[1].split("(")[0].strip() if ":" in d else d for d in found)
        blocked += bool(classes & set(PASTE_BLOCKING))
        blocked_or_fallback += bool(classes & (set(PASTE_BLOCKING) | {"fallback"}))
        pointed += has_point(copy)
        adult_child += any(d.startswith(("audience: child wording", "audience: student wording")) for d in found)
    n = max(1, len(rows))
    figures = {"copies": len(rows), "paste_blocking": blocked / n, "with_selling_point": pointed / n,
               "fallback_generic_noun": by_class["fallback"] / n,
               "paste_blocking_or_fallback": blocked_or_fallback / n,
               "child_or_student_wording_on_adult_goods": adult_child}
    figures |= {f"class {k}": by_class[k] / n for k in PASTE_BLOCKING}
    return figures, detail


TAOBAO_DAYS = (date(2025, 11, 19), date(2025, 11, 22), date(2026, 2, 10))  # weekday, weekend, 春节


def _product(pid, title, category, brand, price, coupon, rating, reviews, presale, launched):
    from recsys.promo import ProductInfo

    product = ProductInfo(pid, title, category, brand, price, coupon, rating, reviews, presale)
    if hasattr(product, "launched_at"):
        product.launched_at = launched
    return product


def taobao_copy_rows(folder: Path, seed: int, n_titles: int = 350):
    """Copies of `n_titles` random Taobao titles × every seller type × a weekday, a weekend day and 春节."""
    from contracts.schema import GROUP_THEMES, SELLER_TYPES
    from recsys.promo import CopyContext, render_copy

    tagged = read_tagged_titles(folder)
    rng = random.Random(seed)
    chosen = rng.sample(tagged, n_titles)
    rows = []
    for i, t in enumerate(chosen):
        price = round(math.exp(rng.uniform(math.log(5), math.log(2500))), rng.choice([0, 1, 2]))
        coupon = float(rng.choice([0, 0, 0, 3, 5, 10, 20]))
        reviews = rng.choice([0, 3, 12, 19, 20, 57, 97, 240, 1288, 35000])
        rating = round(rng.uniform(0.85, 1.0), 3)
        launched = TAOBAO_DAYS[0] - timedelta(days=rng.choice([3, 12, 25, 60, 200, 700]))
        product = _product(f"t{i}", t.title, "", t.brands[0] if t.brands else "", price, coupon if coupon < price else 0.0,
                           rating, reviews, rng.random() < 0.05, launched)
        truth = Truth(t.title, t.brands, t.products, "", launched)
        for seller in SELLER_TYPES:
            for day in TAOBAO_DAYS:
                ctx = CopyContext(f"g{i % 97}", seller, rng.choice(GROUP_THEMES + ("",)), day, rng.sample(REASON_CODES, 2))
                rows.append((render_copy(product, ctx), product, ctx, truth))
    return rows


def _sample_truth(row) -> Truth:
    from features.lexicon import CATEGORIES

    main, _, sub = str(row["category"]).partition("/")
    spec = CATEGORIES.get(main)
    words = spec.subcategories.get(sub, ()) if spec else ()
    found = tuple(w for w in words if w in str(row["title"]))
    launched = row.get("launched_at")
    day = None if launched is None or launched != launched else date.fromisoformat(str(launched)[:10])
    return Truth(str(row["title"]), (str(row["brand"]),) if row.get("brand") else (), found, str(row["category"]), day)


def demo_rows(artifact_dir: Path, days: list[date], k: int = 10):
    """Every pick of the artifact's groups on `days`, rendered through the service's picks path (seller history included)."""
    import tempfile

    from contracts.config import CopyConfig, OpsWeights, RuleConfig
    from recsys.promo import CopyContext
    from serving.artifacts import Served
    from serving.picking import PicksService, product_info
    from serving.storage.memory_cache import MemoryCache
    from serving.storage.factory import open_store
    from contracts.artifact import load_latest

    served = Served.of(load_latest(artifact_dir))
    tmp = tempfile.mkdtemp()
    service = PicksService(open_store(f"sqlite:///{tmp}/store.sqlite3"), MemoryCache(), RuleConfig(), CopyConfig(), 0)
    rows, per_seller_day = [], []
    for day in days:
        for seller, gids in served.seller_groups.items():
            texts = []
            for gid in gids:
                body = service.render(served, gid, day, k, OpsWeights())
                group = served.groups[gid]
                for pick in body["picks"]:
                    prod = served.product(pick["product_id"]) or {}
                    info = product_info(pick["product_id"], pick, prod)
                    c = pick["copy"]
                    copy = _Copy(c["text"], c["template_id"], c["short_title"], c["selling_points"],
                                 _shown_numbers(c["text"], info))
                    ctx = CopyContext(gid, body["seller_type"], str(group.get("theme") or ""), day, pick["reasons"])
                    rows.append((copy, info, ctx, _sample_truth(prod)))
                    texts.append(c["text"])
            if len(texts) > 1:
                per_seller_day.append(distinct_2(texts))
    return rows, per_seller_day


@dataclass
class _Copy:
    """A rendered copy as the service answers it."""

    text: str
    template_id: str
    short_title: str
    selling_points: list[str]
    numbers: dict[str, float]


def _shown_numbers(text: str, product) -> dict[str, float]:
    # The service's answer does not list the numbers; numbers_exact then checks the amounts in the text only.
    return {}


def defects_section(args, emit) -> None:
    """Paste-blocking defects on the Taobao titles and the artifact's picks; distinct-2 of a seller's day."""
    reading = []
    if (SHARED / "taobao_title_ner").exists():
        rows = taobao_copy_rows(SHARED / "taobao_title_ner", args.seed)
        figures, detail = defect_figures(rows)
        emit(f"## Paste-blocking defects, Taobao titles (350 titles × 7 seller types × 3 days)")
        for key, value in figures.items():
            emit(f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}")
        emit("- most frequent: " + "; ".join(f"{d} {c}" for d, c in detail.most_common(25)))
        reading += random.Random(args.seed).sample(rows, 70)
    if args.artifact:
        days = [date(2025, 11, 19), date(2025, 11, 22)]
        rows, d2 = demo_rows(Path(args.artifact), days)
        figures, detail = defect_figures(rows)
        emit(f"\n## Paste-blocking defects, every pick of {args.artifact} on {days[0]} and {days[1]} (service path)")
        for key, value in figures.items():
            emit(f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}")
        emit("- most frequent: " + "; ".join(f"{d} {c}" for d, c in detail.most_common(25)))
        emit(f"- distinct-2 of a seller's day: mean {sum(d2) / len(d2):.4f}, 10th percentile "
             f"{sorted(d2)[len(d2) // 10]:.4f}, min {min(d2):.4f} over {len(d2)} seller-days with 2+ copies")
        reading += random.Random(args.seed + 1).sample(rows, 30)
    if args.read and reading:
        out = []
        for copy, product, ctx, truth in reading:
            found = copy_defects(copy, product, ctx, truth)
            out.append(f"[{ctx.seller_type}/{ctx.theme or '无主题'}/{ctx.day}] {truth.title} | ¥{product.price} "
                       f"{product.review_count}评 | short={copy.short_title} | points={list(copy.selling_points)}\n"
                       f"    {copy.text}\n    detected: {found}")
        Path(args.read).write_text("\n".join(out) + "\n", "utf-8")


def main() -> None:
    """Run every measurement, print the figures and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", default="runs/copy_report.md")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14, help="Days rendered (the no-repeat window is 7).")
    parser.add_argument("--defects-only", action="store_true", help="Only the paste-blocking defect figures.")
    parser.add_argument("--artifact", default=None, help="Artifact root whose picks are audited (e.g. runs/demo/artifacts).")
    parser.add_argument("--read", default=None, help="Write 100 random copies with their detected defects here, to read.")
    args = parser.parse_args()
    from recsys.promo.adlaw import lexicon_version

    lines = [f"# Promo copy quality (lexicon {lexicon_version()})", ""]

    def emit(text: str = "") -> None:
        print(text)
        lines.append(text)

    defects_section(args, emit)
    if args.defects_only:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text("\n".join(lines) + "\n", "utf-8")
        return
    figures, samples, catalogue = sample_world_run(args.seed, args.groups, args.products, args.days)
    emit(f"## Sample world (seed {args.seed}, {args.groups} groups, {args.products} products, {args.days} days, "
         "10–20 picks per seller per day; Distinct-2 per seller-day)")
    for key, value in figures.items():
        emit(f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}")
    group_figures = per_group_run(args.seed, args.groups, args.products, args.days, per_day=10)
    emit(f"\n## Every group, 10 picks a day for {args.days} days")
    for key, value in group_figures.items():
        emit(f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}")
    cold, warm = speed_run(catalogue)
    emit(f"- speed, one core: {cold:,.0f} copies/s on first sight of a product, {warm:,.0f} copies/s with cached titles")

    if (SHARED / "taobao_title_ner").exists():
        retention, taobao_audit, n_titles = taobao_run(SHARED / "taobao_title_ner", args.seed)
        emit(f"\n## Taobao titles ({n_titles})")
        for mode, r in retention.items():
            emit(f"- short title, brand {mode}: brand kept {r['brand']:.3f}, product word kept {r['product']:.3f}, "
                 f"both kept {r['both']:.3f} (of {r['titles_with_both']} titles with both)")
        for key, value in taobao_audit.items():
            emit(f"- copy {key}: {value:.4f}" if isinstance(value, float) else f"- copy {key}: {value}")
    if (SHARED / "ad_law_banned_words").exists():
        cov, missed = coverage_run(SHARED / "ad_law_banned_words" / "es3344520_Dete.txt")
        emit("\n## Community banned-word list in ordinary sentences")
        emit(f"- entries: {cov['entries']}; caught in all {len(CARRIERS)} carrier sentences: {cov['caught_everywhere']:.3f}; "
             f"(entry, sentence) pairs caught: {cov['pairs_caught']:.3f}")
        emit(f"- not caught everywhere: {', '.join(missed)}")
    if (SHARED / "advertisegen_dev").exists():
        n_ads, flagged, rows = advertisegen_run(SHARED / "advertisegen_dev" / "dev.json")
        emit(f"\n## AdvertiseGen dev ({n_ads} real ads)")
        emit(f"- ads with any hit: {flagged} ({flagged / n_ads:.3%}); every hit is listed below to judge claim or not")
        lines.append("\n| ad | term | category | context |\n|---|---|---|---|")
        lines.extend(f"| {i} | {term} | {cat} | {ctx} |" for i, term, cat, ctx in rows)

    lines.append("\n## Ten sample copies per seller type (sample world, day 1)")
    for seller, texts in samples.items():
        lines.append(f"\n### {seller}")
        lines.extend(f"- {t}" for t in texts)
    out = Path(args.report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", "utf-8")
    print(f"\nreport written to {out}")


if __name__ == "__main__":
    main()
