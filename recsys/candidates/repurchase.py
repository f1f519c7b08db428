"""Repurchase-due: products (and categories) a group buys on a cycle whose next purchase is due about now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData
from recsys.candidates.base import Recommender, canonical_csr, exclusion_keys, minus_inf_where_zero, sparse_values

# Truncated category lists kept per allowed-items mask (one per list depth asked for).
MAX_CACHED_DEPTHS = 4


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


@dataclass
class CategoryRanking:
    """The allowed items of each category, best first (share descending, then item index)."""

    mask: np.ndarray  # the allowed-items mask this ranking is for
    item_cat: np.ndarray  # category of each item, -1 when it has no share
    item_share: np.ndarray  # float32 share of each item in its category
    rank: np.ndarray  # position of each allowed item in its category's list, -1 when not allowed or no share
    share: np.ndarray  # float32 shares in list order, category after category
    starts: np.ndarray  # list of category c: positions starts[c]:starts[c + 1]
    run_start: np.ndarray  # first position of the run of equal shares (same category) holding each position
    run_end: np.ndarray  # one past the last position of that run


@dataclass
class CategoryCut:
    """Each category's list cut after `depth` items, and the shares around the cut that decide whether it is exact."""

    depth: int
    kept: np.ndarray  # items still in a list
    matrix: sp.csr_matrix  # `category_items_` holding only the kept items
    cut: np.ndarray  # categories that lost items
    last: np.ndarray  # share of the last kept item
    hi: np.ndarray  # lowest share above `last` (the kept item just before the run of items sharing `last`)
    has_hi: np.ndarray
    lo: np.ndarray  # first share below `last` after the cut
    has_lo: np.ndarray
    tie: np.ndarray  # items sharing `last` were cut too


def category_ranking(category_items: sp.csr_matrix, mask: np.ndarray) -> CategoryRanking:
    """Rank the allowed items of every category of `category_items` (categories × items, one share per item)."""
    n_cats, n_items = category_items.shape
    cats = np.repeat(np.arange(n_cats), np.diff(category_items.indptr))
    items = category_items.indices.astype(np.int64)
    shares = category_items.data.astype(np.float32)
    item_cat = np.full(n_items, -1, dtype=np.int64)
    item_share = np.zeros(n_items, dtype=np.float32)
    item_cat[items], item_share[items] = cats, shares
    live = mask[items]
    cats, items, shares = cats[live], items[live], shares[live]
    # Ties in share go to the lower item, as top_k breaks ties in score.
    order = np.lexsort((items, -shares, cats))
    cats, items, shares = cats[order], items[order], shares[order]
    starts = np.searchsorted(cats, np.arange(n_cats + 1))
    rank = np.full(n_items, -1, dtype=np.int64)
    rank[items] = np.arange(len(items)) - starts[cats]
    new_run = np.ones(len(items), dtype=bool)
    new_run[1:] = (cats[1:] != cats[:-1]) | (shares[1:] != shares[:-1])
    run_first = np.flatnonzero(new_run)
    run_id = np.cumsum(new_run) - 1
    run_stop = np.append(run_first[1:], len(items))
    return CategoryRanking(mask.copy(), item_cat, item_share, rank, shares, starts, run_first[run_id], run_stop[run_id])


def cut_categories(category_items: sp.csr_matrix, ranking: CategoryRanking, depth: int) -> CategoryCut:
    """Keep the first `depth` allowed items of each category's list."""
    n_cats = category_items.shape[0]
    kept = (ranking.rank >= 0) & (ranking.rank < depth)
    entries = kept[category_items.indices]
    entry_cat = np.repeat(np.arange(n_cats), np.diff(category_items.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(entry_cat[entries], minlength=n_cats))])
    matrix = sp.csr_matrix((category_items.data[entries], category_items.indices[entries], indptr),
                           shape=category_items.shape)
    starts, stops = ranking.starts[:-1], ranking.starts[1:]
    cut = stops - starts > depth
    last_pos = np.where(cut, starts + depth - 1, 0)
    # Padded like `share` below: with no allowed item the run arrays are empty.
    run_start = np.append(ranking.run_start, 0)[last_pos]
    run_end = np.append(ranking.run_end, 0)[last_pos]
    has_hi = cut & (run_start > starts)
    has_lo = cut & (run_end < stops)
    # A trailing zero keeps every position read below valid, also for categories that were not cut.
    share = np.append(ranking.share, np.float32(0))
    zero = np.float32(0)
    return CategoryCut(
        depth=depth, kept=kept, matrix=matrix, cut=cut,
        last=np.where(cut, share[last_pos], zero),
        hi=np.where(has_hi, share[np.maximum(run_start - 1, 0)], zero), has_hi=has_hi,
        lo=np.where(has_lo, share[run_end], zero), has_lo=has_lo,
        tie=cut & (run_end > last_pos + 1),
    )


def with_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """`matrix` with every row not flagged in `rows` emptied (same shape)."""
    keep = np.repeat(rows, np.diff(matrix.indptr))
    counts = np.diff(matrix.indptr) * rows
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


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
        # Lists cut from a previous fit's shares would be stale.
        self._cuts: tuple[CategoryRanking, dict[int, CategoryCut]] | None = None

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

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state without the truncated lists (rebuilt on a worker's first recommend)."""
        state = super().__getstate__()
        state.pop("_cuts", None)
        return state

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` straight from the sparse due scores, each category's list cut where no item after can rank."""
        # The cut relies on every term being non-negative, so that scores rise with the share.
        if not self.category_weight > 0:
            return self._recommend_sparse(group_idx, k, exclude, mask, self._sparse_scores)
        ranking = self._ranking(mask)
        cut = self._cut(ranking, k + self._exclusion_depth(k, exclude, ranking))
        if not cut.cut.any():
            return self._recommend_sparse(group_idx, k, exclude, mask, self._sparse_scores)
        return self._recommend_sparse(group_idx, k, exclude, mask, lambda block: self._cut_scores(block, ranking, cut))

    def _ranking(self, mask: np.ndarray) -> CategoryRanking:
        """The category lists for this mask (kept from the last call with the same mask)."""
        cached = getattr(self, "_cuts", None)
        if cached is not None and np.array_equal(cached[0].mask, mask):
            return cached[0]
        ranking = category_ranking(self.category_items_, mask)
        self._cuts = (ranking, {})
        return ranking

    def _cut(self, ranking: CategoryRanking, depth: int) -> CategoryCut:
        """The lists of `ranking` cut after `depth` items (cached per depth)."""
        cached = getattr(self, "_cuts", None)
        depths = cached[1] if cached is not None and cached[0] is ranking else {}
        if depth not in depths:
            if len(depths) >= MAX_CACHED_DEPTHS:
                depths = {}
            depths[depth] = cut_categories(self.category_items_, ranking, depth)
            self._cuts = (ranking, depths)
        return depths[depth]

    def _exclusion_depth(self, k: int, exclude: sp.csr_matrix | None, ranking: CategoryRanking) -> int:
        """Extra list depth E so that no (group, category) has more than E excluded items in its first k + E."""
        if exclude is None or not exclude.nnz:
            return 0
        keys = exclusion_keys(exclude, self.n_items_)
        items = keys % self.n_items_
        rank = ranking.rank[items]
        live = rank >= 0
        pair = (keys[live] // self.n_items_) * self.category_items_.shape[0] + ranking.item_cat[items[live]]
        rank = rank[live]
        # Deeper lists hold more excluded items: grow the depth until it covers them (it settles quickly).
        extra = 0
        while True:
            inside = pair[rank < k + extra]
            most = int(np.unique(inside, return_counts=True)[1].max()) if inside.size else 0
            if most <= extra:
                return extra
            extra = most

    def _cut_scores(self, group_idx: np.ndarray, ranking: CategoryRanking, cut: CategoryCut) -> sp.csr_matrix:
        """`_sparse_scores` less entries that cannot reach the top k (depth k + E); every entry kept is bit-identical.

        A cut item scores w · due · share, no more than the last kept item of its category, which also wins the tie
        when the shares tie (lower index). Rows where rounding gives unequal shares around the cut one score (so a
        cut item could tie a kept one of higher index) use the full lists; items the group is itself due to rebuy
        keep their category term whether cut or not.
        """
        n = len(group_idx)
        item = canonical_csr(self.item_due_[group_idx])
        due = canonical_csr(self.category_due_[group_idx])
        rows = np.repeat(np.arange(n), np.diff(due.indptr))
        cats = due.indices
        last = self._category_term(due.data, cut.last[cats])
        unsure = cut.cut[cats] & (last > 0) & (
            (cut.has_lo[cats] & (self._category_term(due.data, cut.lo[cats]) == last))
            | (cut.tie[cats] & cut.has_hi[cats] & (self._category_term(due.data, cut.hi[cats]) == last))
        )
        full = np.zeros(n, dtype=bool)
        full[rows[unsure]] = True
        if full.any():
            product = with_rows(due, ~full) @ cut.matrix + with_rows(due, full) @ self.category_items_
        else:
            product = due @ cut.matrix
        # The category term of due items that the cut dropped, as the full product computes it: due · share.
        item_rows = np.repeat(np.arange(n), np.diff(item.indptr))
        items = item.indices.astype(np.int64)
        item_cat = ranking.item_cat[items]
        lost = ~cut.kept[items] & (item_cat >= 0) & ~full[item_rows]
        if lost.any():
            r, i = item_rows[lost], items[lost]
            term = sparse_values(due, r, item_cat[lost]).astype(np.float32) * ranking.item_share[i]
            # The sparse product stores no zeros: an item with a zero term keeps its due score alone.
            nonzero = term != 0
            product = product + sp.csr_matrix((term[nonzero], (r[nonzero], i[nonzero])), shape=product.shape)
        # Disjoint supports above: every entry of `product` is the full product's, then the same sum as before.
        return item + self.category_weight * product

    def _category_term(self, due: np.ndarray, share: np.ndarray) -> np.ndarray:
        """w · (due · share) as the sparse product and scaling round it, read back as float32."""
        return np.asarray(self.category_weight * (due.astype(np.float32) * share.astype(np.float32))).astype(np.float32)
