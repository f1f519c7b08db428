"""Item-item nearest neighbours (cosine or BM25 weighting, implicit's all-pairs kNN)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from features.interactions import TrainData
from recsys.candidates.base import SPARSE_BLOCK_ROWS, Recommender, groups_in_blocks, minus_inf_where_zero, sparse_values


class ItemKNNSource(Recommender):
    """Scores an item by the similarity-weighted history of the group: history @ S (top-`neighbours` S per item)."""

    name = "item_knn"

    def __init__(self, neighbours: int = 100, weighting: str = "cosine", k1: float = 1.2, b: float = 0.75, threads: int = 1) -> None:
        self.neighbours = neighbours
        self.weighting = weighting
        self.k1 = k1
        self.b = b
        self.threads = threads

    def _fit(self, data: TrainData) -> None:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

        if self.weighting == "cosine":
            model = CosineRecommender(K=self.neighbours, num_threads=self.threads)
        elif self.weighting == "bm25":
            model = BM25Recommender(K=self.neighbours, K1=self.k1, B=self.b, num_threads=self.threads)
        elif self.weighting == "tfidf":
            model = TFIDFRecommender(K=self.neighbours, num_threads=self.threads)
        else:
            raise ValueError(f"unknown weighting {self.weighting!r}: expected cosine, bm25 or tfidf")
        # implicit warns that its own weighting hands itself a COO matrix; nothing to act on.
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data.bought.tocsr().astype(np.float32), show_progress=False)
        self.similarity_ = model.similarity.tocsr().astype(np.float32)
        self.history_ = data.history.tocsr()

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Similarity-weighted sum over the group's (decayed) purchases."""
        scores = np.asarray((self.history_[group_idx] @ self.similarity_).toarray(), dtype=np.float32)
        return minus_inf_where_zero(scores)

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The pairs' cells of each distinct group's sparse score row (the same sums as `score`)."""
        out = np.empty(len(g), dtype=np.float32)
        for block, sel in groups_in_blocks(g, SPARSE_BLOCK_ROWS):
            rows = self.history_[block] @ self.similarity_
            out[sel] = sparse_values(rows, np.searchsorted(block, g[sel]), i[sel])
        return minus_inf_where_zero(out)

    def _recommend(self, group_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None,
                   mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` straight from the sparse product history · similarity."""
        return self._recommend_sparse(group_idx, k, exclude, mask, lambda block: self.history_[block] @ self.similarity_)
