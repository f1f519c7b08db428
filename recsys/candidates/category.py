"""Category affinity × popularity within the category: P(category | group) · P(item | category).

Grocery shoppers (and WeChat groups) come back to the same subclasses but keep trying new products in them,
so the group's category mix, shrunk towards the overall mix, times each product's recency-weighted share of
its category's orders proposes new products where the group actually shops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.interactions import TrainData, interaction_matrix
from recsys.candidates.base import Recommender, sparse_values
from recsys.candidates.popular import decayed_counts


class CategoryAffinitySource(Recommender):
    """Score = affinity(g, c)^affinity_power · buyers(i) / buyers(c)^category_power, c the item's category.

    affinity = (n_gc + prior·share_c) / (n_g + prior), where `n_gc` counts the group's distinct (item, day)
    purchases in c, decayed with `half_life_days`; buyers counts distinct buying groups, decayed with
    `item_half_life_days` by each group's latest purchase. category_power 1 gives P(c | g)·P(i | c); 0 gives
    popularity re-weighted by the group's category affinity.
    """

    name = "category_affinity"

    def __init__(self, half_life_days: float | None = None, item_half_life_days: float | None = None, prior: float = 1.0,
                 affinity_power: float = 1.0, category_power: float = 1.0, level: str = "category") -> None:
        self.half_life_days = half_life_days
        self.item_half_life_days = item_half_life_days
        self.prior = prior
        self.affinity_power = affinity_power
        self.category_power = category_power
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
        pairs = pd.DataFrame({"g": g, "i": i, "age": ev["age_days"].to_numpy()}).groupby(["g", "i"], sort=False)["age"].min()
        gi = pairs.index.get_level_values("i").to_numpy()
        iw = np.power(0.5, pairs.to_numpy() / self.item_half_life_days) if self.item_half_life_days else np.ones(len(pairs))
        buyers = np.bincount(gi, weights=iw, minlength=data.n_items)
        cat_buyers = np.bincount(cat_codes, weights=buyers, minlength=n_cat)
        denominator = np.power(np.maximum(cat_buyers[cat_codes], 1e-12), self.category_power)
        self.item_score_ = np.where(buyers > 0, buyers / denominator, 0.0).astype(np.float32)
        self.item_cat_ = cat_codes.astype(np.int64)

    def affinity(self, group_idx: np.ndarray) -> np.ndarray:
        """Smoothed category shares of these groups: (n, n_categories)."""
        counts = np.asarray(self.group_cat_[group_idx].toarray(), dtype=np.float32)
        totals = self.group_total_[group_idx][:, None]
        return (counts + self.prior * self.cat_share_) / (totals + self.prior)

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Affinity of the item's category (to a power) times the item's weight; unbought items are not proposed."""
        aff = np.power(self.affinity(np.asarray(group_idx)), self.affinity_power)
        scores = aff[:, self.item_cat_] * self.item_score_
        scores[:, self.item_score_ <= 0] = -np.inf
        return scores.astype(np.float32)

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The same product per pair, from the group's count in the item's category alone."""
        c = self.item_cat_[i]
        counts = sparse_values(self.group_cat_, g, c).astype(np.float32)
        aff = (counts + self.prior * self.cat_share_[c]) / (self.group_total_[g] + self.prior)
        scores = (np.power(aff, self.affinity_power) * self.item_score_[i]).astype(np.float32)
        scores[self.item_score_[i] <= 0] = -np.inf
        return scores
