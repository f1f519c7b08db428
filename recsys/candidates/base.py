"""One interface for every candidate source: batch of group indices in, (item indices, scores) out.

Modelled on implicit's `RecommenderBase.recommend`: a source scores whole blocks of groups against the
catalogue, stock and exclusion filters are applied, and the top K per row is taken with `argpartition`
into pre-allocated outputs, so memory stays bounded whatever the number of groups.
A score of -inf means "this source does not propose the item"; such slots come back as id -1.
"""

from __future__ import annotations

import copy

import weakref
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import scipy.sparse as sp

from features.interactions import TrainData

# Scores are computed for at most this many (group, item) cells at once.
BLOCK_CELLS = 1 << 23


def block_rows(n_items: int) -> int:
    """Rows per scoring block so a block holds about BLOCK_CELLS float32 cells."""
    return int(max(1, min(8192, BLOCK_CELLS // max(n_items, 1))))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` columns of each row, best first: (indices, scores), -1 / -inf where fewer are finite."""
    n, m = scores.shape
    kk = min(k, m)
    ids = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), -np.inf, dtype=np.float32)
    if kk == 0 or n == 0:
        return ids, vals
    # One negated copy serves the selection; NaN (rare) is fixed in it only when present.
    neg = np.negative(scores)
    nan = np.isnan(neg)
    if nan.any():
        neg[nan] = np.inf
    if kk < m:
        part = np.argpartition(neg, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(m), (n, m))
    part_vals = -np.take_along_axis(neg, part, axis=1)
    # Sort by score descending, then by item index so ties are deterministic.
    order = np.lexsort((part, -part_vals), axis=1)
    best = np.take_along_axis(part, order, axis=1)
    best_vals = np.take_along_axis(part_vals, order, axis=1)
    finite = np.isfinite(best_vals)
    ids[:, :kk] = np.where(finite, best, -1)
    vals[:, :kk] = np.where(finite, best_vals, -np.inf)
    return ids, vals


def allowed_mask(n_items: int, in_stock: np.ndarray | None, allowed_items: np.ndarray | None) -> np.ndarray:
    """Boolean mask of recommendable items: in stock and, if given, in `allowed_items` (indices or a mask)."""
    mask = np.ones(n_items, dtype=bool) if in_stock is None else in_stock.astype(bool).copy()
    if allowed_items is not None:
        allowed = np.asarray(allowed_items)
        if allowed.dtype == bool:
            if allowed.shape != (n_items,):
                raise ValueError(f"allowed_items mask has shape {allowed.shape}, expected ({n_items},)")
            mask &= allowed
        else:
            if allowed.size and (allowed.min() < 0 or allowed.max() >= n_items):
                raise ValueError(f"allowed_items holds an index outside 0..{n_items - 1}")
            keep = np.zeros(n_items, dtype=bool)
            keep[allowed.astype(np.int64)] = True
            mask &= keep
    return mask


class Recommender(ABC):
    """A candidate source: `fit(data)` then `recommend(group_idx, k, exclude, allowed_items)`.

    Subclasses implement `_fit` and `score` (dense float32 scores of a block of groups against all
    items, -inf where the source has nothing to say).
    """

    name: str = "source"

    def fit(self, data: TrainData) -> "Recommender":
        """Learn from the training interactions; returns self."""
        self.n_items_ = data.n_items
        self.n_groups_ = data.n_groups
        self.in_stock_ = data.in_stock.copy()
        self._fit(data)
        self._fitted_on = weakref.ref(data)
        return self

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state (a fitted source is broadcast to Dask workers): the weak link to the data stays behind."""
        state = dict(vars(self))
        state.pop("_fitted_on", None)
        return state

    def is_fitted_on(self, data: TrainData) -> bool:
        """Whether the last fit used this very TrainData object (lets a blend reuse fitted sources)."""
        ref = getattr(self, "_fitted_on", None)
        return ref is not None and ref() is data

    @abstractmethod
    def _fit(self, data: TrainData) -> None:
        """Source-specific learning."""

    @abstractmethod
    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Dense float32 scores (len(group_idx), n_items); -inf where the item is not proposed."""

    def params(self) -> dict[str, Any]:
        """Hyper-parameters, for reports and tuning (public attributes not ending in '_')."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def _block_scores(self, group_idx: np.ndarray, exclude: sp.csr_matrix | None, mask: np.ndarray) -> np.ndarray:
        """Scores of one block with the item mask and exclusions applied."""
        scores = np.array(self.score(group_idx), dtype=np.float32, copy=True)
        if not mask.all():
            # One broadcast pass; boolean column indexing of a wide block costs several times more.
            np.copyto(scores, np.float32(-np.inf), where=~mask[None, :])
        if exclude is not None and exclude.nnz:
            rows, cols = exclude.nonzero()
            scores[rows, cols] = -np.inf
        return scores

    def recommend(
        self,
        group_idx: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        allowed_items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` items per group: (ids, scores) of shape (n, k), -1 / -inf padded.

        `exclude` has one row per requested group (as in implicit); its non-zeros are never returned.
        `allowed_items` restricts to these item indices (or boolean mask); out-of-stock items never come back.
        """
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(data) first")
        group_idx = np.asarray(group_idx, dtype=np.int64).ravel()
        if group_idx.size and (group_idx.min() < 0 or group_idx.max() >= self.n_groups_):
            raise ValueError(f"group index outside 0..{self.n_groups_ - 1}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (len(group_idx), self.n_items_):
                raise ValueError(
                    f"exclude must have one row per requested group: shape {exclude.shape}, "
                    f"expected ({len(group_idx)}, {self.n_items_})"
                )
        mask = allowed_mask(self.n_items_, self.in_stock_, allowed_items)
        n = len(group_idx)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        step = block_rows(self.n_items_)
        for start in range(0, n, step):
            stop = min(n, start + step)
            block = self._block_scores(group_idx[start:stop], None if exclude is None else exclude[start:stop], mask)
            ids[start:stop], scores[start:stop] = top_k(block, k)
        return ids, scores


def remembering_last_block(source: Recommender) -> Recommender:
    """A shallow copy of a fitted source whose `score` keeps its last block of groups, so that scoring the same
    groups twice in a row (their top lists, then their candidates' feature rows) computes the scores once."""
    twin = copy.copy(source)
    last: dict[str, Any] = {}

    def score(group_idx: np.ndarray) -> np.ndarray:
        key = np.asarray(group_idx, dtype=np.int64).tobytes()
        if last.get("key") != key:
            last["key"], last["scores"] = key, source.score(group_idx)
        return last["scores"]

    twin.score = score  # type: ignore[method-assign]
    return twin


def minus_inf_where_zero(scores: np.ndarray) -> np.ndarray:
    """Mark cells with no signal (exactly zero) as not proposed."""
    scores[scores == 0] = -np.inf
    return scores


def sparse_rows_dense(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Dense float32 copy of the selected rows of a sparse matrix."""
    return np.asarray(matrix[rows].toarray(), dtype=np.float32)
