"""Item-item nearest neighbours (cosine or BM25 weighting, implicit's all-pairs kNN)."""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from features.interactions import TrainData
from recsys.candidates.base import Recommender, minus_inf_where_zero


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
