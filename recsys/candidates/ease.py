"""EASE (Steck 2019): a closed-form item-item linear model, B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from features.interactions import TrainData
from recsys.candidates.base import Recommender


class EASESource(Recommender):
    """EASE on the most-bought `max_items` products (the Gram matrix is dense); other items are not proposed."""

    name = "ease"

    def __init__(self, lam: float = 250.0, max_items: int = 6000, binary: bool = True) -> None:
        self.lam = lam
        self.max_items = max_items
        self.binary = binary

    def _fit(self, data: TrainData) -> None:
        x = data.bought if self.binary else data.purchases
        counts = np.ravel(data.bought.sum(axis=0))
        support = np.flatnonzero(counts > 0)
        if support.size > self.max_items:
            support = support[np.argsort(-counts[support], kind="stable")[: self.max_items]]
        support = np.sort(support)
        xs = x.tocsc()[:, support].tocsr().astype(np.float64)
        gram = np.asarray((xs.T @ xs).toarray())
        gram[np.diag_indices_from(gram)] += self.lam
        # Cholesky inverse: the Gram matrix plus λI is symmetric positive definite.
        chol = scipy.linalg.cho_factor(gram, overwrite_a=True, check_finite=False)
        p = scipy.linalg.cho_solve(chol, np.eye(len(support)), overwrite_b=True, check_finite=False)
        weights = -p / np.diag(p)
        weights[np.diag_indices_from(weights)] = 0.0
        self.items_ = support
        self.weights_ = weights.astype(np.float32)
        # Scoring uses the decayed history, so recent purchases weigh more and cold groups use their fallback rows.
        self.history_ = data.history.tocsc()[:, support].tocsr()

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """History × B over the supported items; groups with no history and unsupported items get -inf."""
        out = np.full((len(group_idx), self.n_items_), -np.inf, dtype=np.float32)
        hist = self.history_[group_idx]
        part = np.asarray(hist @ self.weights_, dtype=np.float32)
        empty = np.diff(hist.indptr) == 0
        part[empty] = -np.inf
        out[:, self.items_] = part
        return out
