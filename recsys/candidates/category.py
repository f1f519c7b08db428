"""Category affinity × popularity within the category: P(category | group) · P(item | category).

Grocery shoppers (and WeChat groups) come back to the same subclasses but keep trying new products in them,
so the group's category mix, shrunk towards the overall mix, times each product's recency-weighted share of
its category's orders proposes new products where the group actually shops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.interactions import TrainData, interaction_matrix
from recsys.candidates.base import Recommender
from recsys.candidates.popular import decayed_counts


class CategoryAffinitySource(Recommender):
    """Score = ((n_gc + prior·share_c) / (n_g + prior))^affinity_power · (item's share of category orders)^item_power.

    `n_gc` counts the group's distinct (item, day) purchases in category c, decayed with `half_life_days`;
    the item share uses distinct buyers, decayed with `item_half_life_days` so rising products lead.
    """

    name = "category_affinity"

    def __init__(self, half_life_days: float | None = 30.0, item_half_life_days: float | None = 14.0, prior: float = 1.0,
                 affinity_power: float = 1.0, item_power: float = 1.0, level: str = "category") -> None:
        self.half_life_days = half_life_days
        self.item_half_life_days = item_half_life_days
        self.prior = prior
        self.affinity_power = affinity_power
        self.item_power = item_power
        self.level = level

    def _fit(self, data: TrainData) -> None:
        if self.level not in ("category", "main_category"):
            raise ValueError(f"level must be 'category' or 'main_category', got {self.level!r}")
        cat_codes, cats = pd.factorize(data.item_frame[self.level])
        n_cat = len(cats)
        ev = data.events
        g, i = ev["g"].to_numpy(), ev["i"].to_numpy()
        day = np.floor(ev["age_days"].to_numpy()).astype(np.int64)
        # One count per (group, item, day): a bulk buy of one product is one choice, not many.
        first = ~pd.DataFrame({"g": g, "i": i, "d": day}).duplicated().to_numpy()
        w = decayed_counts(data, self.half_life_days)[first]
        group_cat = interaction_matrix(g[first], cat_codes[i[first]], w, (data.n_groups, n_cat))
        share = np.bincount(cat_codes[i[first]], weights=w, minlength=n_cat)
        share = share / max(share.sum(), 1e-12)
        self.group_cat_ = group_cat.tocsr()
        self.group_total_ = np.ravel(group_cat.sum(axis=1)).astype(np.float32)
        self.cat_share_ = share.astype(np.float32)
        # Item share of its category by distinct buying groups (recency-weighted).
        pairs = pd.DataFrame({"g": g, "i": i, "age": ev["age_days"].to_numpy()}).groupby(["g", "i"], sort=False)["age"].min()
        gi = pairs.index.get_level_values("i").to_numpy()
        iw = np.power(0.5, pairs.to_numpy() / self.item_half_life_days) if self.item_half_life_days else np.ones(len(pairs))
        item_pop = np.bincount(gi, weights=iw, minlength=data.n_items)
        cat_pop = np.bincount(cat_codes, weights=item_pop, minlength=n_cat)
        within = np.divide(item_pop, cat_pop[cat_codes], out=np.zeros(data.n_items), where=cat_pop[cat_codes] > 0)
        self.item_score_ = np.power(within, self.item_power).astype(np.float32)
        self.item_cat_ = cat_codes.astype(np.int64)

    def affinity(self, group_idx: np.ndarray) -> np.ndarray:
        """Smoothed category shares of these groups: (n, n_categories)."""
        counts = np.asarray(self.group_cat_[group_idx].toarray(), dtype=np.float32)
        totals = self.group_total_[group_idx][:, None]
        return (counts + self.prior * self.cat_share_) / (totals + self.prior)

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Affinity of the item's category times the item's share within it; unbought items are not proposed."""
        aff = np.power(self.affinity(np.asarray(group_idx)), self.affinity_power)
        scores = aff[:, self.item_cat_] * self.item_score_
        scores[:, self.item_score_ <= 0] = -np.inf
        return scores.astype(np.float32)

