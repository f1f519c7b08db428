"""Title keywords: jieba tokens (with the project lexicon as user dictionary) and a TF-IDF vector per product.

A content-similarity fallback that needs no model: sparse, L2-normalised rows whose dot products are
cosines, and the heaviest words of a title for copy or explanations. The tokenizer is a private
`jieba.Tokenizer`, so loading the lexicon never changes jieba's global state for other code.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

# A token is kept when it holds a CJK character, a letter or a digit (drops spaces and punctuation).
_WORDLIKE = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbfA-Za-z0-9]")


def lexicon_lines() -> list[str]:
    """The project lexicon as jieba user-dictionary lines, or [] when features.lexicon is unavailable."""
    try:
        from features.lexicon import jieba_userdict_lines
    except ImportError:
        return []
    return list(jieba_userdict_lines())


_base_lock = threading.Lock()
_base: Any = None


def _fresh_jieba() -> Any:
    """A new jieba.Tokenizer holding a copy of the main dictionary.

    Loading jieba's dictionary costs 1–2 s; it is loaded once per process and copied (tens of ms) into
    each tokenizer, whose user words then stay private to it. Relies on jieba 0.42's FREQ/total fields
    (the version is pinned).
    """
    global _base
    import jieba

    with _base_lock:
        if _base is None:
            _base = jieba.Tokenizer()
            _base.initialize()
    tok = jieba.Tokenizer()
    tok.FREQ, tok.total, tok.initialized = dict(_base.FREQ), _base.total, True
    return tok


class TitleTokenizer:
    """Callable text -> jieba words (precise mode), lower-cased Latin, punctuation and spaces dropped."""

    def __init__(self, userdict_lines: Sequence[str] | None = None) -> None:
        self.userdict_lines = userdict_lines
        self._jieba: Any = None
        self._lock = threading.Lock()

    def _tokenizer(self) -> Any:
        with self._lock:
            if self._jieba is None:
                tok = _fresh_jieba()
                lines = lexicon_lines() if self.userdict_lines is None else self.userdict_lines
                for line in lines:
                    parts = line.split()
                    if not parts:
                        continue
                    freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                    tok.add_word(parts[0], freq, parts[2] if len(parts) > 2 else None)
                self._jieba = tok
            return self._jieba

    def __call__(self, text: str) -> list[str]:
        """The words of `text`."""
        return [w.lower() for w in self._tokenizer().lcut(str(text), HMM=True) if _WORDLIKE.search(w)]

    def __getstate__(self) -> dict[str, Any]:
        # The jieba prefix dictionary is large and rebuilt on demand; only the settings travel.
        return {"userdict_lines": self.userdict_lines}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["userdict_lines"])


class KeywordVectors:
    """TF-IDF over jieba words of product titles (optionally with the category path as extra words).

    fit(titles) learns the vocabulary and idf; transform(titles) gives an L2-normalised float32 CSR
    matrix, one row per title; `top_keywords` lists the heaviest words of each row.
    """

    def __init__(self, tokenizer: TitleTokenizer | None = None, min_df: int = 1, max_features: int | None = 200_000,
                 sublinear_tf: bool = True) -> None:
        self.tokenizer = tokenizer
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf

    def fit(self, titles: Iterable[str]) -> "KeywordVectors":
        """Learn vocabulary and idf from `titles`; returns self."""
        self.fit_transform(titles)
        return self

    def fit_transform(self, titles: Iterable[str]) -> sp.csr_matrix:
        """Fit on `titles` and return their vectors."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer_ = TfidfVectorizer(
            tokenizer=self.tokenizer or TitleTokenizer(), lowercase=False, token_pattern=None,
            min_df=self.min_df, max_features=self.max_features, sublinear_tf=self.sublinear_tf,
            dtype=np.float32, norm="l2",
        )
        matrix = self.vectorizer_.fit_transform([str(t) for t in titles]).tocsr()
        self.vocabulary_ = self.vectorizer_.get_feature_names_out()
        return matrix

    def transform(self, titles: Iterable[str]) -> sp.csr_matrix:
        """Vectors of `titles` in the fitted vocabulary (unknown words are ignored)."""
        return self.vectorizer_.transform([str(t) for t in titles]).tocsr()

    def top_keywords(self, matrix: sp.csr_matrix, k: int = 5) -> list[list[str]]:
        """The k heaviest words of each row of `matrix`, heaviest first (ties by word)."""
        out: list[list[str]] = []
        matrix = matrix.tocsr()
        # One small sort per row: rows hold a title's dozen words, not the vocabulary.
        for start, end in zip(matrix.indptr[:-1], matrix.indptr[1:]):
            cols, weights = matrix.indices[start:end], matrix.data[start:end]
            words = self.vocabulary_[cols]
            order = np.lexsort((words, -weights))[:k]
            out.append([str(w) for w in words[order]])
        return out


def keyword_vectors(titles: Sequence[str], categories: Sequence[str] | None = None,
                    tokenizer: TitleTokenizer | None = None) -> tuple[sp.csr_matrix, KeywordVectors]:
    """Fit TF-IDF keyword vectors on a catalogue: (matrix, fitted model). Category paths, when given,
    are appended to the titles with "/" as a space so that products of a category share words."""
    texts = list(map(str, titles))
    if categories is not None:
        texts = [f"{t} {str(c).replace('/', ' ')}" for t, c in zip(texts, categories)]
    model = KeywordVectors(tokenizer=tokenizer)
    return model.fit_transform(texts), model


def most_similar(matrix: sp.csr_matrix, rows: Sequence[int], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """For each product row in `rows`, the k most similar other products by keyword cosine: (indices, scores)."""
    sims = (matrix[list(rows)] @ matrix.T).toarray()
    sims[np.arange(len(rows)), list(rows)] = -np.inf  # a product is not its own neighbour
    k = min(k, matrix.shape[0] - 1)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(sims, top, axis=1)
