"""The sample catalogue: products with Taobao-style titles, prices, commissions and latent taste vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.lexicon import BRAND_WORDS, CATEGORIES, SUB_PRICE_RANGES, fits_word

# Dimensions of the latent taste space shared by groups (u) and products (v).
FACTORS = 8

# How much of the catalogue each main category holds (relative; unknown categories get 4).
_CATALOGUE_SHARE: dict[str, float] = {
    "食品": 12, "生鲜": 6, "母婴": 8, "日用": 8, "个护": 7, "美妆": 8, "家清": 6, "家电": 6, "3C": 6,
    "家居": 6, "服饰": 9, "宠物": 4, "酒水": 4, "保健": 4, "图书": 4, "运动户外": 4, "玩具": 4,
}

CATEGORY_NAMES: tuple[str, ...] = tuple(CATEGORIES)

# Shop words any listing may carry, on top of the category's own fillers.
_SHOP_FILLERS: tuple[str, ...] = ("包邮", "现货", "当天发货", "官方旗舰店", "新品", "实惠装", "正品", "顺丰")


@dataclass
class Catalogue:
    """Products as parallel arrays (index = product number) plus the text columns."""

    title: list[str]
    category: list[str]  # "主类/子类"
    brand: list[str]
    cat: np.ndarray  # main-category index into CATEGORY_NAMES
    price: np.ndarray  # list price at the end of the window
    price_before: np.ndarray  # list price before the change (equal to price when it never changed)
    change_day: np.ndarray  # day of the window the price changed; -1 if it never did
    commission_rate: np.ndarray
    rating: np.ndarray
    review_count: np.ndarray
    self_run: np.ndarray  # bool: 自营
    in_stock: np.ndarray
    coupon: np.ndarray
    presale: np.ndarray
    launch_day: np.ndarray  # float days relative to the window start (negative: launched before)
    price_z: np.ndarray  # log price standardised within the main category
    quality: np.ndarray  # latent appeal from rating and popularity
    popularity: np.ndarray  # latent popularity (lognormal)
    factors: np.ndarray  # (P, FACTORS) latent taste vectors, float32

    def __len__(self) -> int:
        return len(self.title)

    def price_on(self, p: np.ndarray, day: np.ndarray) -> np.ndarray:
        """List price of products `p` on window days `day` (the change takes effect at the start of its day)."""
        changed = (self.change_day[p] >= 0) & (day >= self.change_day[p])
        return np.where(changed, self.price[p], self.price_before[p])


def _shop_price(raw: np.ndarray) -> np.ndarray:
    """Round raw prices the way shops do: 29.9, 199, 6.8."""
    out = np.where(raw >= 200, np.round(raw / 10) * 10 - 1, np.round(raw) - 0.1)
    out = np.where(raw < 10, np.round(raw, 1), out)
    return np.maximum(out, 1.9)


def build_catalogue(rng: np.random.Generator, n: int, days: int) -> Catalogue:
    """Draw `n` products: category, brand, words, title, economics and latent factors."""
    specs = [CATEGORIES[name] for name in CATEGORY_NAMES]
    share = np.array([_CATALOGUE_SHARE.get(s.name, 4.0) for s in specs])
    cat = rng.choice(len(specs), size=n, p=share / share.sum())

    # Random draws made up front, vectorised, so that composing a title only indexes into them.
    u_sub, u_word, u_word2, u_brand, u_spec = rng.random((5, n))
    n_attr = rng.choice([1, 2, 3, 4], size=n, p=[0.15, 0.35, 0.3, 0.2])
    attr_keys = rng.random((n, 16))
    n_fill = rng.choice([0, 1, 2, 3], size=n, p=[0.1, 0.35, 0.35, 0.2])
    fill_draw = rng.random((n, 3))
    unbranded = rng.random(n) < 0.08
    second_word = rng.random(n) < 0.2
    template = rng.choice(3, size=n, p=[0.55, 0.25, 0.20])
    no_space = rng.random(n) < 0.3

    # A per-word price level: an air conditioner and a kettle are both 家电 but not the same price.
    word_level = {w: float(rng.normal(0.0, 0.6)) for s in specs for words in s.subcategories.values() for w in words}
    # Brands carry taste (groups that like one like it everywhere) and popularity (Zipf by listed order).
    brand_vec = {b: rng.standard_normal(FACTORS) for s in specs for b in s.brands}
    brand_pop = {b: 1.0 / (rank + 1) ** 0.8 for s in specs for rank, b in enumerate(s.brands)}

    # Choose words, brand, attributes and size per subcategory, vectorised over its products.
    n_subs = np.array([len(sp.parts) for sp in specs])
    sub = np.minimum((u_sub * n_subs[cat]).astype(np.int64), n_subs[cat] - 1)
    word = np.empty(n, dtype=object)
    extra = np.full(n, "", dtype=object)
    brand = np.full(n, "", dtype=object)
    size = np.empty(n, dtype=object)
    attrs = np.full((n, 4), "", dtype=object)
    path = np.empty(n, dtype=object)
    for c, spec in enumerate(specs):
        for k, (sub_name, part) in enumerate(spec.parts.items()):
            idx = np.flatnonzero((cat == c) & (sub == k))
            if len(idx) == 0:
                continue
            words = np.array(part.words, dtype=object)
            w_i = np.minimum((u_word[idx] * len(words)).astype(np.int64), len(words) - 1)
            word[idx] = words[w_i]
            if len(words) > 1:
                # The stuffed-in word is the same word's synonym or nothing: a sibling product word
                # (空调 … 洗衣机, 钢化膜 … 老人机) would make the title name two products.
                x_i = (w_i + 1 + (u_word2[idx] * (len(words) - 1)).astype(np.int64)) % len(words)
                extra[idx] = np.where(second_word[idx] & (words[x_i] == words[w_i]), words[x_i], "")
            weights = np.array([brand_pop[b] for b in part.brands])
            b_i = np.minimum(np.searchsorted(np.cumsum(weights) / weights.sum(), u_brand[idx]), len(weights) - 1)
            brand[idx] = np.where(unbranded[idx], "", np.array(part.brands, dtype=object)[b_i])
            # A brand that makes only some of the words sells one of those (格力 makes no washing machine).
            for j in idx:
                allowed = [w for w in BRAND_WORDS.get(brand[j], ()) if w in part.words]
                if allowed and word[j] not in allowed:
                    word[j] = allowed[min(int(u_word[j] * len(allowed)), len(allowed) - 1)]
            sizes = np.array(part.specs, dtype=object)
            size[idx] = sizes[np.minimum((u_spec[idx] * len(sizes)).astype(np.int64), len(sizes) - 1)]
            for j in idx:
                if not fits_word(word[j], size[j]):
                    fitting = [x for x in part.specs if fits_word(word[j], x)]
                    size[j] = fitting[min(int(u_spec[j] * len(fitting)), len(fitting) - 1)] if fitting else ""
            order = np.argsort(attr_keys[idx, : len(part.attributes)], axis=1)[:, :4]
            chosen = np.array(part.attributes, dtype=object)[order]
            keep = np.arange(order.shape[1])[None, :] < n_attr[idx, None]
            attrs[idx, : order.shape[1]] = np.where(keep, chosen, "")
            path[idx] = f"{spec.name}/{sub_name}"

    titles: list[str] = []
    for i in range(n):
        pool = specs[cat[i]].fillers + _SHOP_FILLERS
        fills = list(dict.fromkeys(pool[int(fill_draw[i, k] * len(pool))] for k in range(n_fill[i])))
        a = [x for x in attrs[i] if x and fits_word(word[i], x)]  # no 降噪 on a data cable
        head = [brand[i]] if brand[i] else []
        more = [extra[i]] if extra[i] else []  # a sibling word stuffed in, as sellers do ("暖手宝暖水袋")
        spec = [size[i]] if size[i] else []
        if template[i] == 0:
            tokens = head + a[:1] + [word[i]] + more + a[1:] + spec + fills
        elif template[i] == 1:
            tokens = head + [word[i]] + a + more + spec + fills
        else:
            tokens = fills[:1] + head + [word[i]] + more + a + spec + fills[1:]
        titles.append(("" if no_space[i] else " ").join(tokens))
    paths: list[str] = path.tolist()
    brands: list[str] = brand.tolist()
    levels = np.array([word_level[w] for w in word])
    bvec = np.array([brand_vec.get(b, np.zeros(FACTORS)) for b in brands]).reshape(n, FACTORS)
    bpop = np.array([brand_pop.get(b, 0.3) for b in brands])

    # A subcategory with its own range (a phone film is not a phone) is priced within it.
    sub_range = [SUB_PRICE_RANGES.get(p) for p in path.tolist()]
    lo = np.array([r[0] if r else specs[c].price_range[0] for r, c in zip(sub_range, cat)])
    hi = np.array([r[1] if r else specs[c].price_range[1] for r, c in zip(sub_range, cat)])
    spread = (np.log(hi) - np.log(lo)) / 6
    log_mid = (np.log(lo) + np.log(hi)) / 2
    log_price = np.clip(log_mid + spread * (levels + rng.normal(0.0, 0.8, n)), np.log(lo), np.log(hi))
    price_before = _shop_price(np.exp(log_price))

    # Some products change price once inside the window, by 10-30 % either way.
    changes = rng.random(n) < 0.12
    change_day = np.where(changes, rng.integers(1, max(days, 2), n), -1)
    ratio = np.where(rng.random(n) < 0.5, rng.uniform(0.7, 0.9, n), rng.uniform(1.1, 1.3, n))
    price = np.where(changes, _shop_price(price_before * ratio), price_before)

    price_z = np.zeros(n)
    lp = np.log(price_before)
    for c in range(len(specs)):
        m = cat == c
        if m.sum() > 1:
            price_z[m] = (lp[m] - lp[m].mean()) / (lp[m].std() + 1e-9)

    clo = np.array([s.commission_range[0] for s in specs])[cat]
    chi = np.array([s.commission_range[1] for s in specs])[cat]
    commission = np.round(rng.uniform(clo, chi), 2)
    rating = np.round(0.995 - 0.145 * rng.beta(2.0, 12.0, n), 3)
    popularity = np.exp(rng.normal(0.0, 0.8, n)) * (0.5 + bpop)

    launched_in_window = rng.random(n) < 0.07
    launch_day = np.where(launched_in_window, rng.uniform(0, days, n), -rng.uniform(1, 900, n))
    age = np.clip(-launch_day + days, 1, None)
    review_count = np.floor(popularity * np.exp(rng.normal(3.5, 1.2, n)) * np.minimum(age / 180, 1.0)).astype(np.int64)

    self_run = rng.random(n) < np.where(bpop > 0.6, 0.45, 0.2)
    in_stock = rng.random(n) >= 0.03
    coupon_steps = np.array([3, 5, 10, 20, 30, 50, 100, 200])
    has_coupon = rng.random(n) < 0.3
    pick = np.floor(rng.random(n) * np.searchsorted(coupon_steps, price_before * 0.25, side="right")).astype(int)
    coupon = np.where(has_coupon & (price_before >= 15), coupon_steps[np.clip(pick, 0, len(coupon_steps) - 1)], 0).astype(float)
    coupon = np.minimum(coupon, np.floor(np.minimum(price, price_before) * 0.3))
    presale = rng.random(n) < 0.03

    quality = 4.0 * (rating - 0.95) + 0.3 * np.log(popularity)
    quality = quality - quality.mean()
    factors = (0.75 * bvec + 0.66 * rng.standard_normal((n, FACTORS))) * (0.9 / np.sqrt(FACTORS))

    return Catalogue(
        title=titles, category=paths, brand=brands, cat=cat.astype(np.int16), price=price, price_before=price_before,
        change_day=change_day.astype(np.int32), commission_rate=commission, rating=rating, review_count=review_count,
        self_run=self_run, in_stock=in_stock, coupon=coupon, presale=presale, launch_day=launch_day,
        price_z=price_z, quality=quality, popularity=popularity, factors=factors.astype(np.float32),
    )

