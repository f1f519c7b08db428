"""EASE (Steck 2019): a closed-form item-item linear model, B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from features.interactions import TrainData
from recsys.candidates.base import Recommender, block_rows, exclusion_keys, top_k
from recsys.device import cpu_cores


def cholesky_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite float64 matrix through its Cholesky factor (overwrites it)."""
    factor, info = scipy.linalg.lapack.dpotrf(matrix, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Gram matrix not positive definite (potrf info {info})")
    inverse, info = scipy.linalg.lapack.dpotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky inverse failed (potri info {info})")
    # potri fills the lower triangle only.
    upper = np.triu_indices_from(inverse, k=1)
    inverse[upper] = inverse.T[upper]
    return inverse


# Bytes per entry of the n × n matrices a fit holds at its peak: the float64 Gram matrix (inverted in place), the
# float64 weights computed from it and their float32 copy.
EASE_BYTES_PER_ENTRY = 8 + 8 + 4


def available_memory() -> int:
    """Bytes of memory available to new allocations now (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


def auto_max_items(n_bought: int, memory_share: float, available: int | None = None) -> int:
    """Every bought product when EASE's dense matrices fit in `memory_share` of the available memory, else as many as fit."""
    budget = memory_share * (available_memory() if available is None else available)
    return int(max(1, min(n_bought, np.floor(np.sqrt(budget / EASE_BYTES_PER_ENTRY)))))


class EASESource(Recommender):
    """EASE over the bought products, or the most-bought `max_items` of them (the Gram matrix is dense).

    `max_items="auto"` (the default) takes every bought product when the n × n float64 Gram matrix, its inverse's
    weights and their float32 copy (20 n² bytes) fit in `memory_share` of the memory available at fit time. When
    they do not, the approximation is EASE restricted to the most bought products that fit: the other products are
    neither proposed by EASE nor used as evidence (a group's purchases of them are ignored). The fit costs O(n³)
    (about a minute at 20,000 products on two cores).
    """

    name = "ease"

    def __init__(self, lam: float = 250.0, max_items: int | str = "auto", binary: bool = True, threads: int = 1,
                 memory_share: float = 0.25) -> None:
        if not (max_items == "auto" or (isinstance(max_items, (int, np.integer)) and max_items >= 1)):
            raise ValueError(f"EASE max_items must be 'auto' or a positive integer, got {max_items!r}")
        self.lam = lam
        self.max_items = max_items
        self.binary = binary
        self.threads = threads  # BLAS threads for the Gram matrix and its inverse; 0 = every core
        self.memory_share = memory_share

    def _fit(self, data: TrainData) -> None:
        x = data.bought if self.binary else data.purchases
        counts = np.ravel(data.bought.sum(axis=0))
        support = np.flatnonzero(counts > 0)
        limit = auto_max_items(support.size, self.memory_share) if self.max_items == "auto" else int(self.max_items)
        self.max_items_ = limit
        if support.size > limit:
            support = support[np.argsort(-counts[support], kind="stable")[:limit]]
        support = np.sort(support)
        self.items_ = support
        if not support.size:  # nothing bought yet (an early snapshot): EASE proposes nothing
            self.weights_ = np.zeros((0, 0), dtype=np.float32)
            self.history_ = sp.csr_matrix((data.n_groups, 0), dtype=np.float32)
            return
        xs = x.tocsc()[:, support].tocsr().astype(np.float64)
        gram = np.asarray((xs.T @ xs).toarray())
        gram[np.diag_indices_from(gram)] += self.lam
        # Cholesky inverse: the Gram matrix plus λI is symmetric positive definite. The O(n³) steps are the ones
        # BLAS threads speed up; inverting from the factor (potri, n³/3 + n³/3 flops) costs a third of solving
        # against the identity (2n³).
        with threadpool_limits(limits=self.threads or cpu_cores(), user_api="blas"):
            p = cholesky_inverse(gram)
        weights = -p / np.diag(p)
        weights[np.diag_indices_from(weights)] = 0.0
        self.items_ = support
        self.weights_ = weights.astype(np.float32)
        # Scoring uses the decayed history, so recent purchases weigh more and cold groups use their fallback rows.
        # float32 like B: a float64 history would make every block's product upcast (copy) the whole of B first.
        self.history_ = data.history.tocsc()[:, support].tocsr().astype(np.float32)

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """History × B over the supported items; groups with no history and unsupported items get -inf."""
        out = np.full((len(group_idx), self.n_items_), -np.inf, dtype=np.float32)
        out[:, self.items_] = self._support_scores(group_idx)
        return out

    def _support_scores(self, group_idx: np.ndarray) -> np.ndarray:
        """History × B on the support columns only; -inf rows for groups with no history."""
        hist = self.history_[group_idx]
        part = np.asarray(hist @ self.weights_, dtype=np.float32)
        part[np.diff(hist.indptr) == 0] = -np.inf
        return part

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Σ over the group's history h of history[g, h] · B[h, i], summed in the order of the sparse product."""
        out = np.full(len(g), -np.inf, dtype=np.float32)
        pos = np.clip(np.searchsorted(self.items_, i), 0, max(len(self.items_) - 1, 0))
        hist = self.history_
        lengths = np.diff(hist.indptr)[g]
        live = np.flatnonzero((self.items_[pos] == i) & (lengths > 0)) if len(self.items_) else np.zeros(0, dtype=np.int64)
        if not live.size:
            return out
        # Longest histories first, so the pairs still summing at slot t are a prefix.
        live = live[np.argsort(-lengths[live], kind="stable")]
        start, lengths, col = hist.indptr[g[live]], lengths[live], pos[live]
        active = np.searchsorted(-lengths, -np.arange(int(lengths[0])), side="left")  # pairs with more than t slots
        # One step per history slot: slot t of every pair at once, accumulated like scipy's row loop.
        acc = np.zeros(live.size, dtype=np.result_type(hist.dtype, self.weights_.dtype))
        for t, n_on in enumerate(active):
            entry = start[:n_on] + t
            acc[:n_on] += hist.data[entry] * self.weights_[hist.indices[entry], col[:n_on]]
        out[live] = acc
        return out

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` over the support columns only (sorted, so ties still go to the lower item)."""
        n, support = len(group_idx), len(self.items_)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if not support:
            return ids, scores
        blocked = ~mask[self.items_]
        step = block_rows(support)
        for start in range(0, n, step):
            stop = min(n, start + step)
            part = self._support_scores(group_idx[start:stop])
            if blocked.any():
                np.copyto(part, np.float32(-np.inf), where=blocked[None, :])
            if exclude is not None and exclude.nnz:
                keys = exclusion_keys(exclude[start:stop], self.n_items_)
                rows, items = keys // self.n_items_, keys % self.n_items_
                pos = np.minimum(np.searchsorted(self.items_, items), support - 1)
                hit = self.items_[pos] == items
                part[rows[hit], pos[hit]] = -np.inf
            best, scores[start:stop] = top_k(part, k)
            ids[start:stop] = np.where(best >= 0, self.items_[np.maximum(best, 0)], -1)
        return ids, scores
