"""Repurchase-due: products (and categories) a group buys on a cycle whose next purchase is due about now."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData
from recsys.candidates.base import Recommender, minus_inf_where_zero, sparse_values


def purchase_cycles(g: np.ndarray, key: np.ndarray, age_days: np.ndarray) -> pd.DataFrame:
    """Per (group, key): distinct purchase days, mean gap between them, days since the last, and due ratio."""
    day = np.floor(age_days).astype(np.int64)
    frame = pd.DataFrame({"g": g, "key": key, "day": day}).drop_duplicates()
    stats = frame.groupby(["g", "key"], sort=False)["day"].agg(["count", "min", "max"]).reset_index()
    stats = stats[stats["count"] >= 2]
    # Ages count backwards: max is the first purchase, min the latest.
    stats["cycle"] = (stats["max"] - stats["min"]) / (stats["count"] - 1)
    stats["since"] = stats["min"] + 0.5
    stats["due_ratio"] = stats["since"] / stats["cycle"].clip(lower=1.0)
    return stats


def due_score(count: np.ndarray, due_ratio: np.ndarray, width: float) -> np.ndarray:
    """Bell curve in log due-ratio, peaking at 1 (due now), wider once overdue, scaled by √(repeats)."""
    log_r = np.log(np.maximum(due_ratio, 1e-3))
    spread = np.where(log_r > 0, 2.0 * width, width)
    return np.sqrt(count - 1.0) * np.exp(-0.5 * (log_r / spread) ** 2)


class RepurchaseSource(Recommender):
    """Item cycles propose the item itself; category cycles propose the category's popular items, down-weighted."""

    name = "repurchase"

    def __init__(self, width: float = 0.5, category_weight: float = 0.3) -> None:
        self.width = width
        self.category_weight = category_weight

    def _fit(self, data: TrainData) -> None:
        g = data.events["g"].to_numpy()
        i = data.events["i"].to_numpy()
        age = data.events["age_days"].to_numpy()
        items = purchase_cycles(g, i, age)
        self.item_due_ = sp.csr_matrix(
            (due_score(items["count"].to_numpy(), items["due_ratio"].to_numpy(), self.width).astype(np.float32),
             (items["g"].to_numpy(), items["key"].to_numpy())),
            shape=(data.n_groups, data.n_items),
        )
        cat_codes, cats = pd.factorize(data.item_frame["category"])
        cycles = purchase_cycles(g, cat_codes[i], age)
        self.category_due_ = sp.csr_matrix(
            (due_score(cycles["count"].to_numpy(), cycles["due_ratio"].to_numpy(), self.width).astype(np.float32),
             (cycles["g"].to_numpy(), cycles["key"].to_numpy())),
            shape=(data.n_groups, len(cats)),
        )
        # Within a due category, items are ranked by their share of the category's orders.
        pop = np.bincount(i, minlength=data.n_items).astype(np.float64)
        cat_max = pd.Series(pop).groupby(cat_codes).transform("max").to_numpy()
        share = np.divide(pop, cat_max, out=np.zeros_like(pop), where=cat_max > 0)
        self.category_items_ = sp.csr_matrix(
            (share.astype(np.float32), (cat_codes, np.arange(data.n_items))), shape=(len(cats), data.n_items)
        )
        self.category_items_.eliminate_zeros()

    def _sparse_scores(self, group_idx: np.ndarray) -> sp.csr_matrix:
        """Item due score plus the down-weighted category due score, as a sparse block."""
        return self.item_due_[group_idx] + self.category_weight * (self.category_due_[group_idx] @ self.category_items_)

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Item due score plus the down-weighted category due score; -inf where nothing is due."""
        return minus_inf_where_zero(np.asarray(self._sparse_scores(group_idx).toarray(), dtype=np.float32))

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The same sum per pair: an item has one category, so the product has one term."""
        by_item = self.category_items_.tocsc()
        has_cat = np.diff(by_item.indptr) > 0
        first = by_item.indptr[:-1][has_cat]
        item_cat = np.zeros(self.n_items_, dtype=np.int64)
        share = np.zeros(self.n_items_, dtype=np.float32)
        item_cat[has_cat], share[has_cat] = by_item.indices[first], by_item.data[first]
        # float32 throughout and in the dense path's order: item + w · (category due · share).
        category = sparse_values(self.category_due_, g, item_cat[i]).astype(np.float32) * share[i].astype(np.float32)
        values = sparse_values(self.item_due_, g, i).astype(np.float32) + self.category_weight * category
        return minus_inf_where_zero(values.astype(np.float32))

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` straight from the sparse due scores."""
        return self._recommend_sparse(group_idx, k, exclude, mask, self._sparse_scores)
