"""Content similarity: a group's purchases, as a profile in title-embedding space, against every product.

Also proposes products nobody has bought yet. With no embeddings at hand (e.g. no model, or a catalogue
without titles) character n-gram TF-IDF of title + category stands in.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData
from recsys.candidates.base import BLOCK_CELLS, Recommender, block_rows, fixed_shape_matmul, groups_in_blocks


def text_vectors(item_frame: pd.DataFrame) -> sp.csr_matrix:
    """L2-normalised character 1–2-gram TF-IDF of each product's category (twice, to weigh it) and title."""
    return _tfidf(_item_texts(item_frame))


def _tfidf(texts: list[str]) -> sp.csr_matrix:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 2), min_df=1, sublinear_tf=True, dtype=np.float32)
    return vec.fit_transform(texts).tocsr()


def _item_texts(item_frame: pd.DataFrame) -> list[str]:
    # The category twice, to weigh it against the title.
    category, title = item_frame["category"].astype(str), item_frame["title"].astype(str)
    return (category + " " + category + " " + title).tolist()


def project(vectors: np.ndarray | sp.csr_matrix, dims: int, seed: int = 7) -> np.ndarray:
    """Item vectors projected on their top `dims` singular directions (truncated SVD, seeded).

    Scoring a group against 100k products then costs one dense product of `dims` columns, like ALS, instead of
    a sparse TF-IDF product (or 384 embedding columns) per group; cosines are kept up to the dropped directions.
    """
    from sklearn.decomposition import TruncatedSVD

    matrix = sp.csr_matrix(vectors, dtype=np.float32) if sp.issparse(vectors) else np.asarray(vectors, dtype=np.float32)
    svd = TruncatedSVD(n_components=dims, algorithm="randomized", n_iter=5, random_state=seed)
    return np.asarray(svd.fit_transform(matrix), dtype=np.float32)


# The daily job fits content twice on one catalogue (the ranker's snapshot, then today): the last few projections,
# keyed by a digest of the texts, are kept rather than recomputed (~10 s each for 100k titles on 2 cores).
_PROJECTIONS: dict[tuple[str, int, int], np.ndarray | sp.csr_matrix] = {}
_KEEP_PROJECTIONS = 2


def projected_text_vectors(item_frame: pd.DataFrame, dims: int, seed: int) -> np.ndarray | sp.csr_matrix:
    """`text_vectors` of the items, projected on `dims` SVD directions when fewer than the vocabulary (memoised)."""
    texts = _item_texts(item_frame)
    key = (hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest(), int(dims), int(seed))
    if key not in _PROJECTIONS:
        vectors = _tfidf(texts)
        if 0 < dims < vectors.shape[1]:
            vectors = project(vectors, dims, seed)
        while len(_PROJECTIONS) >= _KEEP_PROJECTIONS:
            _PROJECTIONS.pop(next(iter(_PROJECTIONS)))
        _PROJECTIONS[key] = vectors
    return _PROJECTIONS[key]


class ContentSource(Recommender):
    """Cosine between the decayed-purchase-weighted mean of a group's item vectors and each item vector
    (optionally in a `dims`-dimensional SVD projection of them: see `project`)."""

    name = "content"
    _fresh_scores = True

    def __init__(self, use_embeddings: bool = True, dims: int = 0, seed: int = 7) -> None:
        self.use_embeddings = use_embeddings
        self.dims = dims
        self.seed = seed

    def _fit(self, data: TrainData) -> None:
        if self.use_embeddings and data.item_vectors is not None:
            vectors = data.item_vectors
            if 0 < self.dims < vectors.shape[1]:
                vectors = project(vectors, self.dims, self.seed)
        else:
            vectors = projected_text_vectors(data.item_frame, self.dims, self.seed)
        if sp.issparse(vectors):
            self.vectors_ = sp.csr_matrix(vectors, dtype=np.float32)
        else:
            v = np.asarray(vectors, dtype=np.float32)
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            self.vectors_ = v / np.where(norms > 0, norms, 1.0)
        if self.vectors_.shape[0] != data.n_items:
            raise ValueError(f"item vectors have {self.vectors_.shape[0]} rows for {data.n_items} products")
        self.history_ = data.history.tocsr()

    def _profiles(self, group_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit-length dense profiles of these groups and whether each has one (a non-zero history profile)."""
        profile = self.history_[group_idx] @ self.vectors_
        if sp.issparse(profile):
            profile = profile.toarray()
        profile = np.asarray(profile, dtype=np.float32)
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        return profile / np.where(norms > 0, norms, 1.0), norms[:, 0] > 0

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Cosine similarity of the group profile to every product; -inf for groups with no history."""
        return self._score_into(group_idx, None)

    def _score_into(self, group_idx: np.ndarray, buffer: np.ndarray | None) -> np.ndarray:
        """`score`, written into `buffer` when given and the vectors are dense."""
        profile, known = self._profiles(group_idx)
        if sp.issparse(self.vectors_):  # scipy's sparse product sums each cell in one fixed order
            scores = np.asarray((self.vectors_ @ profile.T).T, dtype=np.float32)
        else:
            scores = fixed_shape_matmul(profile, self.vectors_.T, out=buffer)
        scores[~known] = -np.inf
        return scores

    def _pair_scores(self, g: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Profile · item vector per pair, profiles built for a block of distinct groups at a time."""
        out = np.empty(len(g), dtype=np.float32)
        vectors = self.vectors_
        width = int(np.diff(vectors.indptr).max(initial=1)) if sp.issparse(vectors) else vectors.shape[1]
        step = max(1, BLOCK_CELLS // max(width, 1))
        for block, sel in groups_in_blocks(g, block_rows(vectors.shape[1])):
            profile, known = self._profiles(block)
            for lo in range(0, len(sel), step):
                part = sel[lo:lo + step]
                row, item = np.searchsorted(block, g[part]), i[part]
                out[part] = np.where(known[row], _row_dots(profile, row, vectors, item), -np.inf)
        return out


def _row_dots(profile: np.ndarray, row: np.ndarray, vectors: np.ndarray | sp.csr_matrix, item: np.ndarray) -> np.ndarray:
    """profile[row[p]] · vectors[item[p]] for every p; a sparse item row is read over its non-zeros only."""
    if not sp.issparse(vectors):
        return np.einsum("ij,ij->i", profile[row], vectors[item])
    rows = vectors[item]  # scipy gathers the item rows in C
    terms = rows.data * profile[np.repeat(row, np.diff(rows.indptr)), rows.indices]
    if not terms.size:
        return np.zeros(len(item), dtype=np.float32)
    sums = np.add.reduceat(terms, np.minimum(rows.indptr[:-1], terms.size - 1))
    return np.where(np.diff(rows.indptr) > 0, sums, 0)
