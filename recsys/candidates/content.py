"""Content similarity: a group's purchases, as a profile in title-embedding space, against every product.

Also proposes products nobody has bought yet. With no embeddings at hand (e.g. no model, or a catalogue
without titles) character n-gram TF-IDF of title + category stands in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData
from recsys.candidates.base import Recommender


def text_vectors(item_frame: pd.DataFrame) -> sp.csr_matrix:
    """L2-normalised character 1–2-gram TF-IDF of each product's category (twice, to weigh it) and title."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = (item_frame["category"].astype(str) + " " + item_frame["category"].astype(str) + " " + item_frame["title"].astype(str))
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 2), min_df=1, sublinear_tf=True, dtype=np.float32)
    return vec.fit_transform(texts.tolist()).tocsr()


class ContentSource(Recommender):
    """Cosine between the decayed-purchase-weighted mean of a group's item vectors and each item vector."""

    name = "content"

    def __init__(self, use_embeddings: bool = True) -> None:
        self.use_embeddings = use_embeddings

    def _fit(self, data: TrainData) -> None:
        vectors = data.item_vectors if self.use_embeddings and data.item_vectors is not None else text_vectors(data.item_frame)
        if sp.issparse(vectors):
            self.vectors_ = sp.csr_matrix(vectors, dtype=np.float32)
        else:
            v = np.asarray(vectors, dtype=np.float32)
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            self.vectors_ = v / np.where(norms > 0, norms, 1.0)
        if self.vectors_.shape[0] != data.n_items:
            raise ValueError(f"item vectors have {self.vectors_.shape[0]} rows for {data.n_items} products")
        self.history_ = data.history.tocsr()

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Cosine similarity of the group profile to every product; -inf for groups with no history."""
        profile = self.history_[group_idx] @ self.vectors_
        if sp.issparse(profile):
            profile = profile.toarray()
        profile = np.asarray(profile, dtype=np.float32)
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        profile = profile / np.where(norms > 0, norms, 1.0)
        scores = self.vectors_ @ profile.T
        scores = np.asarray(scores.T if not sp.issparse(scores) else scores.T.toarray(), dtype=np.float32)
        scores[norms[:, 0] == 0] = -np.inf
        return scores
