"""TIFU-KNN (Hu et al., SIGIR 2020): repeat-aware personal item frequency, mixed with the nearest groups' frequency.

A group's baskets are its orders grouped by calendar day of `ordered_at` (a basket is the set of distinct items of
that day; on data without a real clock each order is a basket, in line order). Its t baskets, oldest first, are cut into n = min(m, t) consecutive groups (the more recent groups take
one basket more when t is not a multiple of n). With group j (1..n) holding baskets b_{j,1..x_j}:

    v_j = (1 / x_j) · Σ_i r_b^(x_j − i) · b_{j,i}        (within-group decay: the latest basket of a group weighs 1)
    u   = (1 / n)   · Σ_j r_g^(n − j)   · v_j            (group decay: the latest group weighs 1)

The score of an item is  α · u + (1 − α) · mean(u_v for the k nearest groups v)  (cosine similarity of the
u vectors by default, Euclidean distance as the authors' code). Items the group bought are proposed too: repeat
purchases are TIFU-KNN's strength; `exclude_seen` (or the caller's `exclude`) removes them.

An optional item-item term adds new items: `new_item_weight` · (u · S) restricted to items the group never bought,
S the cosine item-item similarity of the basket matrix (top `item_neighbours` per item). It is 0 in the paper.

Neighbours are found at scoring time, one block of groups at a time against every group (at most `chunk_cells`
similarity cells in memory), so fitting costs one pass over the orders and memory stays bounded.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import DAY, TrainData
from recsys.candidates.base import (
    BLOCK_CELLS, SPARSE_BLOCK_ROWS, Recommender, groups_in_blocks, minus_inf_where_zero, sparse_values, top_k,
)

Similarity = Literal["cosine", "euclidean"]


def order_days(data: TrainData) -> np.ndarray:
    """Basket key of every order event of `data`: its calendar day (local time), recovered from its age before
    `now`; on data without a real clock (line order or none) every order is a basket of its own, in event order."""
    if not getattr(data, "timed", True):
        # Ages of a synthetic clock keep the order of events and nothing else: rank them, oldest first.
        age = data.events["age_days"].to_numpy(dtype=np.float64)
        return np.argsort(np.argsort(-age, kind="stable"), kind="stable").astype(np.int64)
    now_seconds = (data.now - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
    # Whole seconds first: an order at midnight must not fall on the day before through float rounding.
    seconds = np.round(now_seconds - data.events["age_days"].to_numpy(dtype=np.float64) * (DAY / pd.Timedelta(seconds=1)))
    return np.floor_divide(seconds, 86400).astype(np.int64)


def basket_weights(group: np.ndarray, day: np.ndarray, r_b: float, r_g: float, m: int) -> np.ndarray:
    """TIFU weight of each basket (one row per distinct (group, day), sorted by group then day)."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, n])
    t = np.repeat(counts, counts)  # baskets of the basket's group
    p = np.arange(n) - np.repeat(starts, counts)  # 0-based position, oldest first
    n_groups = np.minimum(t, m)
    base = t // n_groups
    extra = t % n_groups
    # The first n − extra groups hold `base` baskets, the last `extra` hold base + 1.
    small = n_groups - extra
    in_small = p < small * base
    q = p - small * base
    j = np.where(in_small, p // base, small + q // (base + 1))
    pos = np.where(in_small, p % base, q % (base + 1))
    size = np.where(in_small, base, base + 1)
    return (np.power(r_b, size - 1 - pos) / size) * (np.power(r_g, n_groups - 1 - j) / n_groups)


def tifu_vectors(g: np.ndarray, day: np.ndarray, i: np.ndarray, shape: tuple[int, int],
                 r_b: float, r_g: float, m: int) -> sp.csr_matrix:
    """The TIFU user vectors (groups × items) of order events (group, calendar day, item)."""
    frame = pd.DataFrame({"g": g.astype(np.int64), "d": day.astype(np.int64), "i": i.astype(np.int64)})
    frame = frame.drop_duplicates()  # a basket is a set: an item bought twice the same day counts once
    baskets = frame[["g", "d"]].drop_duplicates().sort_values(["g", "d"], kind="stable")
    weight = basket_weights(baskets["g"].to_numpy(), baskets["d"].to_numpy(), r_b, r_g, m)
    key = pd.MultiIndex.from_frame(baskets)
    basket_of = key.get_indexer(pd.MultiIndex.from_frame(frame[["g", "d"]]))
    vectors = sp.csr_matrix((weight[basket_of], (frame["g"].to_numpy(), frame["i"].to_numpy())), shape=shape,
                            dtype=np.float64)
    vectors.sum_duplicates()
    vectors.eliminate_zeros()
    return vectors


def cosine_item_similarity(baskets: sp.csr_matrix, neighbours: int, chunk_cells: int = BLOCK_CELLS) -> sp.csr_matrix:
    """Cosine similarity of the item columns of a binary (group or basket) × item matrix, the top `neighbours` per
    item (ties to the lower item), no self-similarity; items × items, row = the bought item, column = the proposed
    one. Computed for blocks of items (at most `chunk_cells` dense cells at once)."""
    x = sp.csc_matrix(baskets, dtype=np.float64)
    n_items = x.shape[1]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    xt = x.T.tocsr()
    k = min(neighbours, n_items)
    step = max(1, int(chunk_cells) // max(n_items, 1))
    rows, cols, vals = [], [], []
    for lo in range(0, n_items, step):
        hi = min(n_items, lo + step)
        sim = np.asarray((xt[lo:hi] @ x).toarray(), dtype=np.float64)
        sim *= inv[lo:hi, None]
        sim *= inv[None, :]
        sim[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        sim[sim <= 0] = -np.inf
        ids, best = top_k(sim.astype(np.float32), k)
        r, c = np.nonzero(np.isfinite(best))
        rows.append(r + lo)
        cols.append(ids[r, c])
        vals.append(sim[r, ids[r, c]])
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items))


class TIFUKNNSource(Recommender):
    """TIFU-KNN: the group's time-decayed item frequency mixed with its k nearest groups' (repeats included)."""

    name = "tifu_knn"

    def __init__(self, neighbours: int = 300, within_decay: float = 0.9, group_decay: float = 0.7, groups: int = 7,
                 alpha: float = 0.7, similarity: Similarity = "cosine", exclude_seen: bool = False,
                 new_item_weight: float = 0.0, item_neighbours: int = 100,
                 chunk_cells: int = BLOCK_CELLS, pool: np.ndarray | None = None) -> None:
        if similarity not in ("cosine", "euclidean"):
            raise ValueError(f"unknown similarity {similarity!r}: expected cosine or euclidean")
        self.neighbours = neighbours
        self.within_decay = within_decay
        self.group_decay = group_decay
        self.groups = groups
        self.alpha = alpha
        self.similarity = similarity
        self.exclude_seen = exclude_seen
        self.new_item_weight = new_item_weight
        self.item_neighbours = item_neighbours
        self.chunk_cells = chunk_cells
        # Optional boolean mask of the groups that may serve as neighbours (e.g. a protocol's training users only).
        self._pool = None if pool is None else np.asarray(pool, dtype=bool)

    def _fit(self, data: TrainData) -> None:
        g = data.events["g"].to_numpy()
        i = data.events["i"].to_numpy()
        shape = (data.n_groups, data.n_items)
        self.vectors_ = tifu_vectors(g, order_days(data), i, shape, self.within_decay, self.group_decay, self.groups)
        self.vectors_t_ = self.vectors_.T.tocsr()
        self.sq_norms_ = np.asarray(self.vectors_.multiply(self.vectors_).sum(axis=1)).ravel()
        pool = self.sq_norms_ > 0
        if self._pool is not None:
            if self._pool.shape != (data.n_groups,):
                raise ValueError(f"pool has shape {self._pool.shape}, expected ({data.n_groups},)")
            pool &= self._pool
        self.pool_ = pool
        self.seen_ = (self.vectors_ > 0).astype(np.float32).tocsr()
        self.item_similarity_ = None
        if self.new_item_weight > 0:
            self.item_similarity_ = cosine_item_similarity(data.bought, self.item_neighbours, self.chunk_cells)

    def neighbour_matrix(self, group_idx: np.ndarray) -> sp.csr_matrix:
        """Rows of the neighbour-mean operator for these groups: 1/|N(g)| at each of g's (at most k) neighbours."""
        group_idx = np.asarray(group_idx, dtype=np.int64)
        n_groups = self.vectors_.shape[0]
        k = min(self.neighbours, n_groups)
        step = max(1, int(self.chunk_cells) // max(n_groups, 1))
        rows, cols = [], []
        for lo in range(0, len(group_idx), step):
            block = group_idx[lo:lo + step]
            sim = self._similarities(block)
            ids, vals = top_k(sim, k)
            found = np.isfinite(vals)
            r, c = np.nonzero(found)
            rows.append(r + lo)
            cols.append(ids[r, c])
        r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        count = np.bincount(r, minlength=len(group_idx)).astype(np.float64)
        return sp.csr_matrix((1.0 / count[r], (r, c)), shape=(len(group_idx), n_groups))

    def _similarities(self, block: np.ndarray) -> np.ndarray:
        """float32 similarity of a block of groups to every group; -inf for itself, empty groups and non-pool ones."""
        dots = np.asarray((self.vectors_[block] @ self.vectors_t_).toarray(), dtype=np.float64)
        if self.similarity == "cosine":
            norms = np.sqrt(self.sq_norms_)
            denom = np.sqrt(self.sq_norms_[block])[:, None] * norms[None, :]
            sim = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
            # No overlap means no evidence of likeness: such groups are not neighbours.
            sim[sim <= 0] = -np.inf
        else:
            # −squared distance; the block's own norm is the same along a row and does not change the ranking.
            sim = 2.0 * dots - self.sq_norms_[None, :]
        sim[:, ~self.pool_] = -np.inf
        sim[np.arange(len(block)), block] = -np.inf
        # A group without history has no vector to be near anything: it gets no neighbours (other sources serve it).
        sim[self.sq_norms_[block] == 0] = -np.inf
        return sim.astype(np.float32)

    def _sparse_scores(self, group_idx: np.ndarray) -> sp.csr_matrix:
        """α · own vector + (1 − α) · neighbours' mean vector (+ the optional new-item term) for a block of groups."""
        own = self.vectors_[group_idx]
        scores = self.alpha * own
        if self.alpha < 1:
            scores = scores + (1.0 - self.alpha) * (self.neighbour_matrix(group_idx) @ self.vectors_)
        if self.item_similarity_ is not None:
            new = (own @ self.item_similarity_).tocsr()
            # Only items the group never bought: repeats are already scored by its own frequency.
            new = new - new.multiply(self.seen_[group_idx])
            scores = scores + self.new_item_weight * new
        scores = sp.csr_matrix(scores)
        if self.exclude_seen:
            scores = scores - scores.multiply(self.seen_[group_idx])
        scores.eliminate_zeros()
        return scores

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Dense float32 TIFU-KNN scores; -inf where neither the group nor its neighbours bought the item."""
        dense = np.zeros((len(group_idx), self.n_items_), dtype=np.float32)
        for lo in range(0, len(group_idx), SPARSE_BLOCK_ROWS):
            dense[lo:lo + SPARSE_BLOCK_ROWS] = self._sparse_scores(np.asarray(group_idx[lo:lo + SPARSE_BLOCK_ROWS])).toarray()
        return minus_inf_where_zero(dense)

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The pairs' cells of each distinct group's sparse score row."""
        out = np.empty(len(g), dtype=np.float32)
        for block, sel in groups_in_blocks(g, SPARSE_BLOCK_ROWS):
            rows = self._sparse_scores(block)
            out[sel] = sparse_values(rows, np.searchsorted(block, g[sel]), i[sel])
        return minus_inf_where_zero(out)

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` straight from the sparse score rows."""
        return self._recommend_sparse(group_idx, k, exclude, mask, self._sparse_scores)


__all__ = ["TIFUKNNSource", "basket_weights", "cosine_item_similarity", "order_days", "tifu_vectors"]
