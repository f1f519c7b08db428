"""Exposure × conversion: where the seller's own push habits meet what converts.

In social e-commerce an order almost always follows a push, so the products a group will buy are those its
seller is likely to push (the seller's category mix for the group, and which products of a category sellers
reach for) that also convert. Score = P̂(push g, i) × conv̂(i)^β × conv̂(g, category)^γ, all smoothed counts:
  P̂(push) = share of the group's pushes in the item's category (shrunk to the global mix)
            × the item's share of all pushes in its category (optionally with pseudo-pushes per item);
  conv̂(i) = orders per push of the item, shrunk to the catalogue rate;
  conv̂(g, c) = the group's orders per push in the category, shrunk to the item-level rate.
Groups without pushes fall back to the global category mix; the source needs a pushes table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.interactions import TrainData, decay, interaction_matrix
from recsys.candidates.base import Recommender, sparse_values


class ExposureSource(Recommender):
    """Expected orders through the seller's push habits; see the module docstring for the formula."""

    name = "exposure"

    def __init__(self, conversion_weight: float = 1.0, group_weight: float = 1.0, half_life_days: float | None = None,
                 prior_pushes: float = 20.0, item_prior_pushes: float = 0.0) -> None:
        self.conversion_weight = conversion_weight
        # Pseudo-pushes per item: > 0 gives products nobody has pushed yet a small share of their category.
        self.item_prior_pushes = item_prior_pushes
        self.group_weight = group_weight
        self.half_life_days = half_life_days
        self.prior_pushes = prior_pushes

    def _fit(self, data: TrainData) -> None:
        if data.push_events is None or not len(data.push_events):
            raise ValueError("ExposureSource needs pushes: the training data has none")
        cat_codes, cats = pd.factorize(data.item_frame["category"])
        n_cat = len(cats)
        pe = data.push_events
        pw = decay(pe["age_days"].to_numpy(), self.half_life_days) if self.half_life_days else np.ones(len(pe))
        pg, pi = pe["g"].to_numpy(), pe["i"].to_numpy()
        pc = cat_codes[pi]
        item_pushes = np.bincount(pi, weights=pw, minlength=data.n_items)
        cat_pushes = np.bincount(pc, weights=pw, minlength=n_cat)
        global_mix = cat_pushes / max(cat_pushes.sum(), 1e-12)
        # Group × category counts stay sparse (a million groups); score() densifies one block at a time.
        group_cat = interaction_matrix(pg, pc, pw, (data.n_groups, n_cat))
        self.group_cat_ = group_cat
        self.group_total_ = np.ravel(group_cat.sum(axis=1))
        self.global_mix_ = global_mix
        a = self.item_prior_pushes
        items_in_cat = np.bincount(cat_codes, minlength=n_cat)
        denominator = cat_pushes[cat_codes] + a * items_in_cat[cat_codes]
        within = np.divide(item_pushes + a, denominator, out=np.zeros(data.n_items), where=denominator > 0)
        ev = data.events
        ow = decay(ev["age_days"].to_numpy(), self.half_life_days) if self.half_life_days else np.ones(len(ev))
        item_orders = np.bincount(ev["i"].to_numpy(), weights=ow, minlength=data.n_items)
        base_rate = item_orders.sum() / max(item_pushes.sum(), 1e-12)
        conv_item = (item_orders + self.prior_pushes * base_rate) / (item_pushes + self.prior_pushes)
        self.group_orders_ = interaction_matrix(ev["g"].to_numpy(), cat_codes[ev["i"].to_numpy()], ow, (data.n_groups, n_cat))
        self.cat_rate_ = np.divide(np.bincount(cat_codes[ev["i"].to_numpy()], weights=ow, minlength=n_cat), cat_pushes,
                                   out=np.full(n_cat, base_rate), where=cat_pushes > 0)
        self.item_score_ = (within * np.power(np.maximum(conv_item, 1e-12), self.conversion_weight)).astype(np.float32)
        self.item_cat_ = cat_codes.astype(np.int64)

    def _mix_and_relative(self, pushes: np.ndarray, totals: np.ndarray, orders: np.ndarray, global_mix: np.ndarray,
                          cat_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The group's category mix shrunk towards the global mix by `prior_pushes` pseudo-pushes, and its conversion
        in the category relative to the category's rate (shrunk the same way); arrays broadcast together."""
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 only without a prior, where the weight is 0
            mix = (pushes + self.prior_pushes * global_mix) / (totals + self.prior_pushes)
            conv_group = (orders + self.prior_pushes * cat_rate) / (pushes + self.prior_pushes)
            return mix, conv_group / np.maximum(cat_rate, 1e-12)

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The same score for given (group, item) pairs, without densifying a row per group."""
        c = self.item_cat_[i]
        mix, relative = self._mix_and_relative(sparse_values(self.group_cat_, g, c), self.group_total_[g],
                                               sparse_values(self.group_orders_, g, c), self.global_mix_[c],
                                               self.cat_rate_[c])
        scores = (mix * np.power(relative, self.group_weight) * self.item_score_[i]).astype(np.float32)
        scores[self.item_score_[i] <= 0] = -np.inf
        return scores

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Push propensity × conversion for every item; items nobody pushed are not proposed."""
        mix, relative = self._mix_and_relative(self.group_cat_[group_idx].toarray(), self.group_total_[group_idx][:, None],
                                               self.group_orders_[group_idx].toarray(), self.global_mix_, self.cat_rate_)
        mix, relative = mix.astype(np.float32), relative.astype(np.float32)
        mix = mix[:, self.item_cat_]
        conv = np.power(relative[:, self.item_cat_], self.group_weight)
        scores = mix * conv * self.item_score_
        scores[:, self.item_score_ <= 0] = -np.inf
        return scores.astype(np.float32)
