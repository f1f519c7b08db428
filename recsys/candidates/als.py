"""Matrix factorisation source: implicit's ALS (or BPR) on the confidence-scaled group × product matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from features.interactions import TrainData
from recsys.candidates.base import BLOCK_CELLS, Recommender, allowed_mask, fixed_shape_matmul
from recsys.device import factor_top_k, implicit_gpu_available, resolve_device


class ALSSource(Recommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky) or BPR; cold groups are folded in from their seller/segment rows."""

    name = "als"
    _fresh_scores = True

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 1.0,
        algorithm: str = "als",
        learning_rate: float = 0.01,
        seed: int = 7,
        threads: int = 1,
        device: str = "cpu",
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.algorithm = algorithm
        self.learning_rate = learning_rate
        self.seed = seed
        self.threads = threads
        self.device = device  # 'cpu', 'cuda' or 'auto' (recsys.device)

    def _fit(self, data: TrainData) -> None:
        self.device_ = resolve_device(self.device)
        if self.device_ == "cuda" and implicit_gpu_available():
            from implicit.gpu.als import AlternatingLeastSquares
            from implicit.gpu.bpr import BayesianPersonalizedRanking
        else:
            from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[assignment]
            from implicit.cpu.bpr import BayesianPersonalizedRanking  # type: ignore[assignment]

        if self.algorithm == "als":
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, random_state=self.seed, num_threads=self.threads,
            )
        elif self.algorithm == "bpr":
            model = BayesianPersonalizedRanking(
                factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
                iterations=self.iterations, random_state=self.seed, num_threads=self.threads,
            )
        else:
            raise ValueError(f"unknown algorithm {self.algorithm!r}: expected 'als' or 'bpr'")
        # implicit's README: multithreaded BLAS fights its own threads and slows ALS badly.
        with threadpool_limits(limits=1, user_api="blas"):
            model.fit(data.confidence.tocsr(), show_progress=False)
        if hasattr(model, "to_cpu") and not isinstance(getattr(model, "user_factors", None), np.ndarray):
            model = model.to_cpu()  # a GPU model's factors come back as numpy arrays
        group_factors = np.asarray(model.user_factors, dtype=np.float32)
        item_factors = np.asarray(model.item_factors, dtype=np.float32)
        has_rows = np.diff(data.confidence.indptr) > 0
        # Fold cold groups in by ridge regression of their fallback history on the item factors.
        cold = ~has_rows & (np.diff(data.history.indptr) > 0)
        if cold.any():
            y = item_factors
            gram = y.T @ y + max(self.regularization, 1e-3) * np.eye(y.shape[1], dtype=np.float32)
            rhs = np.asarray(data.history[np.flatnonzero(cold)] @ y, dtype=np.float32)
            group_factors[cold] = np.linalg.solve(gram, rhs.T).T
        self.group_factors_ = group_factors
        self.item_factors_ = item_factors
        self.known_ = has_rows | cold

    def recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
                  allowed_items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` items per group; on a CUDA device the dot products and the top-K run there (recsys.device)."""
        if getattr(self, "device_", "cpu") != "cuda":
            return super().recommend(group_idx, k, exclude, allowed_items)
        group_idx = np.asarray(group_idx, dtype=np.int64).ravel()
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        mask = allowed_mask(self.n_items_, self.in_stock_, allowed_items)
        excl = None if exclude is None else sp.csr_matrix(exclude)
        return factor_top_k(self.group_factors_[group_idx], self.item_factors_, k, mask, self.known_[group_idx], excl,
                            self.device_)

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Dot products of group and item factors; -inf for groups with no history at all."""
        return self._score_into(group_idx, None)

    def _score_into(self, group_idx: np.ndarray, buffer: np.ndarray | None) -> np.ndarray:
        """`score`, written into `buffer` when given."""
        scores = fixed_shape_matmul(self.group_factors_[group_idx], self.item_factors_.T, out=buffer)
        scores[~self.known_[group_idx]] = -np.inf
        return scores

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Row-wise dot products of the pairs' factors, a slice of pairs at a time; -inf for unknown groups."""
        out = np.empty(len(g), dtype=np.float32)
        step = max(1, BLOCK_CELLS // max(self.group_factors_.shape[1], 1))
        for lo in range(0, len(g), step):
            gg, ii = g[lo:lo + step], i[lo:lo + step]
            out[lo:lo + step] = np.einsum("ij,ij->i", self.group_factors_[gg], self.item_factors_[ii])
        out[~self.known_[g]] = -np.inf
        return out
