"""Sellers and their groups, with each group's latent taste: categories, brands (factors) and price band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.sample.catalogue import CATEGORY_NAMES, FACTORS
from contracts.schema import GROUP_THEMES, SELLER_TYPES

_TYPE_SHARE = {"宝妈": 0.25, "快递员": 0.10, "导购": 0.15, "安装维修": 0.08, "微商": 0.20, "学生": 0.10, "其他": 0.12}

# What each kind of seller's circle buys (relative weights on top of a floor of 0.3 per category).
_TYPE_TASTE: dict[str, dict[str, float]] = {
    "宝妈": {"母婴": 8, "食品": 4, "日用": 4, "家清": 4, "玩具": 3, "生鲜": 2, "个护": 2, "图书": 1.5},
    "快递员": {"食品": 6, "生鲜": 6, "日用": 5, "家清": 3, "酒水": 2, "个护": 1.5},
    "导购": {"个护": 2, "运动户外": 1.5, "日用": 1.5},
    "安装维修": {"家电": 9, "家居": 7, "3C": 2, "日用": 2},
    "微商": {"美妆": 5, "保健": 5, "个护": 4, "食品": 3, "酒水": 2},
    "学生": {"3C": 6, "图书": 6, "食品": 4, "服饰": 3, "运动户外": 2},
    "其他": {"食品": 3, "生鲜": 2, "日用": 2, "酒水": 2, "宠物": 1.5},
}
# A seller of this type specialises in one of these (a 导购 works a cosmetics or a clothing counter).
_TYPE_FOCUS: dict[str, tuple[str, ...]] = {
    "宝妈": ("母婴", "食品"), "快递员": ("生鲜", "食品"), "导购": ("美妆", "服饰"), "安装维修": ("家电", "家居"),
    "微商": ("美妆", "保健"), "学生": ("3C", "图书", "食品"), "其他": ("宠物", "酒水", "运动户外", "家居"),
}
_FOCUS_WEIGHT = 8.0

# Themes a seller type runs, and how a theme shifts the taste of its group.
_TYPE_THEMES: dict[str, dict[str, float]] = {
    "宝妈": {"母婴": 5, "邻里": 3, "福利": 2, "亲友": 1},
    "快递员": {"邻里": 5, "业主": 3, "福利": 2},
    "导购": {"福利": 5, "兴趣": 2, "同事": 1},
    "安装维修": {"业主": 5, "邻里": 3},
    "微商": {"福利": 4, "亲友": 3, "兴趣": 2},
    "学生": {"学习": 5, "同事": 2, "兴趣": 2},
    "其他": {"邻里": 2, "同事": 2, "亲友": 2, "兴趣": 2, "福利": 1},
}
_THEME_TASTE: dict[str, dict[str, float]] = {
    "母婴": {"母婴": 4, "玩具": 2, "图书": 1},
    "邻里": {"生鲜": 3, "食品": 2, "日用": 2},
    "同事": {"食品": 3, "3C": 1, "个护": 1},
    "福利": {"日用": 2, "家清": 2, "个护": 2, "美妆": 1},
    "学习": {"图书": 4, "3C": 1},
    "亲友": {"保健": 2, "酒水": 2, "食品": 1},
    "业主": {"家居": 3, "家电": 3},
    "兴趣": {"运动户外": 3, "宠物": 3},
}

# Lower-tier cities buy cheaper within a category and weigh price more.
_TIER_SHARE = np.array([0.08, 0.15, 0.22, 0.22, 0.18, 0.15])
_TIER_PRICE_LEVEL = np.array([0.5, 0.3, 0.1, -0.1, -0.3, -0.5])
_TIER_SENSITIVITY = np.array([0.25, 0.35, 0.45, 0.6, 0.75, 0.9])

DEAD_SHARE = 0.06
COLD_SHARE = 0.03


def _matrix(table: dict[str, dict[str, float]], rows: tuple[str, ...], cols: tuple[str, ...], floor: float) -> np.ndarray:
    """A dense rows × cols weight matrix from nested dicts, with a floor everywhere."""
    out = np.full((len(rows), len(cols)), floor)
    for i, r in enumerate(rows):
        for c, w in table.get(r, {}).items():
            if c in cols:
                out[i, cols.index(c)] += w
    return out


@dataclass
class Population:
    """Sellers and groups as parallel arrays; group g belongs to seller `seller[g]`."""

    seller_type: np.ndarray  # index into SELLER_TYPES
    city_tier: np.ndarray  # 1..6
    seller_joined_day: np.ndarray  # days relative to the window start
    inviter: np.ndarray  # seller index or -1
    seller_focus: np.ndarray  # category index the seller specialises in
    seller: np.ndarray  # (G,) seller index of each group
    member_count: np.ndarray
    theme: np.ndarray  # index into GROUP_THEMES
    created_day: np.ndarray  # days relative to the window start (may be inside the window)
    dead: np.ndarray  # bool: the group has gone quiet
    activity: np.ndarray  # multiplies pushes and purchases
    push_rate: np.ndarray  # mean pushes per day the seller makes to this group
    taste: np.ndarray  # (G, C) true category shares (Dirichlet draw), float32
    perceived: np.ndarray  # (G, C) what the seller believes the group wants, float32
    price_level: np.ndarray  # preferred standardised log price within a category
    price_sensitivity: np.ndarray
    factors: np.ndarray  # (G, FACTORS) latent brand/product taste, float32

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return len(self.seller)

    @property
    def n_sellers(self) -> int:
        """Number of sellers."""
        return len(self.seller_type)


def build_population(
    rng: np.random.Generator, n_groups: int, days: int, category_commission: np.ndarray
) -> Population:
    """Draw sellers (1-4 groups each) and `n_groups` groups with their latent tastes."""
    cats = CATEGORY_NAMES
    counts = rng.choice([1, 2, 3, 4], size=n_groups, p=[0.35, 0.35, 0.2, 0.1])
    n_sellers = int(np.searchsorted(np.cumsum(counts), n_groups) + 1)
    counts = counts[:n_sellers]
    counts[-1] -= counts.sum() - n_groups
    seller = np.repeat(np.arange(n_sellers), counts)

    types = np.array([_TYPE_SHARE[t] for t in SELLER_TYPES])
    seller_type = rng.choice(len(SELLER_TYPES), size=n_sellers, p=types / types.sum())
    city_tier = rng.choice(6, size=n_sellers, p=_TIER_SHARE) + 1
    has_inviter = (rng.random(n_sellers) < 0.6) & (np.arange(n_sellers) > 0)
    inviter = np.where(has_inviter, np.floor(rng.random(n_sellers) * np.arange(n_sellers)).astype(np.int64), -1)

    focus_options = [[cats.index(c) for c in _TYPE_FOCUS[t]] for t in SELLER_TYPES]
    focus_draw = rng.random(n_sellers)
    n_options = np.array([len(o) for o in focus_options])[seller_type]
    option_table = np.full((len(SELLER_TYPES), max(n_options)), -1)
    for i, o in enumerate(focus_options):
        option_table[i, : len(o)] = o
    seller_focus = option_table[seller_type, (focus_draw * n_options).astype(int)]

    type_taste = _matrix(_TYPE_TASTE, SELLER_TYPES, cats, floor=0.3)
    theme_taste = _matrix(_THEME_TASTE, GROUP_THEMES, cats, floor=0.0)
    type_theme = _matrix(_TYPE_THEMES, SELLER_TYPES, GROUP_THEMES, floor=0.1)
    type_theme /= type_theme.sum(axis=1, keepdims=True)

    g_type = seller_type[seller]
    theme_cdf = np.cumsum(type_theme, axis=1)[g_type]
    theme = (theme_cdf < rng.random(n_groups)[:, None]).sum(axis=1).clip(0, len(GROUP_THEMES) - 1)

    # Taste = Dirichlet around the seller type + the seller's focus + the theme; the concentration is
    # low enough that groups of the same seller type still differ (a per-group model has something to learn).
    prior = type_taste[g_type] + theme_taste[theme]
    prior[np.arange(n_groups), seller_focus[seller]] += _FOCUS_WEIGHT
    prior /= prior.sum(axis=1, keepdims=True)
    concentration = rng.uniform(2.0, 6.0, n_groups)[:, None]
    taste = rng.gamma(prior * concentration + 0.02)
    taste = np.maximum(taste, 1e-6)
    taste /= taste.sum(axis=1, keepdims=True)

    # The seller knows the type prior and roughly the group; commissions pull her toward rich categories.
    comm = category_commission / category_commission.mean()
    perceived = (0.45 * prior + 0.35 * taste + 0.2 / len(cats)) * comm[None, :] ** 1.5
    perceived /= perceived.sum(axis=1, keepdims=True)

    member_count = np.clip(np.round(np.exp(rng.normal(4.5, 0.8, n_groups))), 20, 500).astype(np.int64)
    start_day = rng.uniform(-720, -10, n_groups)
    cold = rng.random(n_groups) < COLD_SHARE
    fresh = rng.random(n_groups) < 0.05
    created_day = np.where(fresh, rng.uniform(0, days, n_groups), start_day)
    created_day = np.where(cold, days - rng.uniform(0.5, min(5.0, days), n_groups), created_day)
    dead = (rng.random(n_groups) < DEAD_SHARE) & ~cold
    activity = np.where(dead, 0.03, np.exp(rng.normal(0.0, 0.4, n_groups)))
    seller_rate = np.clip(np.exp(rng.normal(np.log(2.5), 0.5, n_sellers)), 0.5, 10.0)
    push_rate = seller_rate[seller] * np.where(dead, 0.1, 1.0)

    # Sellers joined before their first group.
    first_group = np.minimum.reduceat(created_day, np.concatenate([[0], np.cumsum(counts)[:-1]]))
    seller_joined_day = first_group - rng.uniform(0, 200, n_sellers)

    tier = city_tier[seller] - 1
    price_level = _TIER_PRICE_LEVEL[tier] + rng.normal(0.0, 0.35, n_groups)
    price_sensitivity = _TIER_SENSITIVITY[tier] * np.exp(rng.normal(0.0, 0.2, n_groups))
    factors = rng.standard_normal((n_groups, FACTORS))

    return Population(
        seller_type=seller_type.astype(np.int8), city_tier=city_tier.astype(np.int8), seller_joined_day=seller_joined_day,
        inviter=inviter, seller_focus=seller_focus.astype(np.int16), seller=seller.astype(np.int64),
        member_count=member_count, theme=theme.astype(np.int8), created_day=created_day, dead=dead, activity=activity,
        push_rate=push_rate, taste=taste.astype(np.float32), perceived=perceived.astype(np.float32),
        price_level=price_level, price_sensitivity=price_sensitivity, factors=factors.astype(np.float32),
    )
