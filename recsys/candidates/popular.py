"""Non-personal and simple personal baselines: global and segment popularity, the platform's rating × commission
rule, the group's own past top items, and random."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData, decay, interaction_matrix
from recsys.candidates.base import Recommender, SharedRowRecommender, sparse_rows_dense, sparse_values


def decayed_counts(data: TrainData, half_life_days: float | None, use_quantity: bool = False) -> np.ndarray:
    """Per-event weight: 1 (or the quantity), times time decay when a half-life is given."""
    w = data.events["quantity"].to_numpy(dtype=np.float64) if use_quantity else np.ones(len(data.events))
    if half_life_days:
        w = w * decay(data.events["age_days"].to_numpy(), half_life_days)
    return w


class GlobalPopular(SharedRowRecommender):
    """Most-ordered products across all groups, optionally recency-weighted."""

    name = "popular"

    def __init__(self, half_life_days: float | None = None, use_quantity: bool = False) -> None:
        self.half_life_days = half_life_days
        self.use_quantity = use_quantity

    def _fit(self, data: TrainData) -> None:
        w = decayed_counts(data, self.half_life_days, self.use_quantity)
        pop = np.bincount(data.events["i"].to_numpy(), weights=w, minlength=data.n_items).astype(np.float32)
        self.popularity_ = np.where(pop > 0, pop, -np.inf).astype(np.float32)

    def _row(self) -> np.ndarray:
        """Popularity per item."""
        return self.popularity_


class SegmentPopular(Recommender):
    """Popularity within the group's segment (seller type × city tier, or any `key` column of the group frame),
    shrunk towards global popularity."""

    name = "segment_popular"

    def __init__(self, shrink: float = 0.1, half_life_days: float | None = None, key: str = "segment") -> None:
        self.shrink = shrink
        self.half_life_days = half_life_days
        self.key = key

    def _fit(self, data: TrainData) -> None:
        if self.key not in data.group_frame:
            raise ValueError(f"no group attribute {self.key!r}; known: {sorted(data.group_frame.columns)}")
        codes, uniques = pd.factorize(data.group_frame[self.key])
        w = decayed_counts(data, self.half_life_days)
        seg = interaction_matrix(codes[data.events["g"].to_numpy()], data.events["i"].to_numpy(), w, (len(uniques), data.n_items))
        seg_share = np.asarray(seg.toarray(), dtype=np.float32)
        totals = seg_share.sum(axis=1, keepdims=True)
        seg_share /= np.where(totals > 0, totals, 1.0)
        glob = np.bincount(data.events["i"].to_numpy(), weights=w, minlength=data.n_items)
        glob = (glob / max(glob.sum(), 1e-12)).astype(np.float32)
        table = seg_share + self.shrink * glob
        self.table_ = np.where(table > 0, table, -np.inf).astype(np.float32)
        self.segment_ = codes.astype(np.int64)

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """The row of the group's segment."""
        return self.table_[self.segment_[group_idx]]

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The item's cell in the group's segment row."""
        return self.table_[self.segment_[g], i]

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One top list per segment."""
        shared = self._recommend_shared(group_idx, k, exclude, mask, self.table_, self.segment_[group_idx])
        return shared if shared is not None else super()._recommend(group_idx, k, exclude, mask)


class RatingCommissionRule(SharedRowRecommender):
    """Today's platform rule: sort the catalogue by good-review rate × commission in yuan."""

    name = "rating_commission"

    def _fit(self, data: TrainData) -> None:
        rating = data.item_frame["rating"].to_numpy(dtype=np.float64)
        self.scores_ = (rating * data.commission_yuan).astype(np.float32)

    def _row(self) -> np.ndarray:
        """Rating × commission per item."""
        return self.scores_


class OwnTopItems(Recommender):
    """The group's own most-ordered products (recency-weighted when a half-life is given)."""

    name = "own_top"

    def __init__(self, half_life_days: float | None = None) -> None:
        self.half_life_days = half_life_days

    def _fit(self, data: TrainData) -> None:
        w = decayed_counts(data, self.half_life_days)
        self.counts_ = interaction_matrix(data.events["g"].to_numpy(), data.events["i"].to_numpy(), w, (data.n_groups, data.n_items))

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Past order counts; -inf for products the group never ordered."""
        scores = sparse_rows_dense(self.counts_, group_idx)
        scores[scores == 0] = -np.inf
        return scores

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The pair's order count; -inf where the group never ordered the item."""
        values = sparse_values(self.counts_, g, i).astype(np.float32)
        values[values == 0] = -np.inf
        return values

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` straight from the group's sparse counts."""
        return self._recommend_sparse(group_idx, k, exclude, mask, lambda block: self.counts_[block])


class RandomSource(Recommender):
    """Uniformly random scores, reproducible for a given seed, group and item (a counter-based hash, no loop)."""

    name = "random"
    _fresh_scores = True

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed

    def _fit(self, data: TrainData) -> None:
        self.fitted_ = True

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """splitmix64 of (seed, group, item) mapped to [0, 1): the same cell always gets the same score."""
        return self._hash(np.asarray(group_idx)[:, None], np.arange(self.n_items_)[None, :])

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The hash of each pair."""
        return self._hash(g, i)

    def _hash(self, group_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """splitmix64 of (seed, group, item) in [0, 1), for arrays of groups and items that broadcast together."""
        g = np.asarray(group_idx, dtype=np.uint64)
        i = np.asarray(item_idx, dtype=np.uint64)
        with np.errstate(over="ignore"):
            x = (g * np.uint64(self.n_items_) + i) ^ (np.uint64(self.seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15))
            x = x + np.uint64(0x9E3779B97F4A7C15)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
        # The top 24 bits give floats exactly representable in float32.
        return ((x >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)).astype(np.float32)
