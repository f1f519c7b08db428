"""Union of candidate sources with per-source provenance, and the tuned linear blend of their scores.

`union_candidates` is the hand-over to the ranker: one row per (group, product) proposed by any source,
with `score__<source>` and `rank__<source>` (1 = best; NaN where the source did not propose it) and
`sources`, the comma-separated names of the sources that proposed it.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData
from recsys.candidates.base import Recommender


def normalise_scores(ids: np.ndarray, scores: np.ndarray, how: str) -> np.ndarray:
    """Per-row scores of a top-N list mapped to (0, 1]: 'rank' = 1 − r/N, 'minmax' over the list; 0 where absent."""
    valid = ids >= 0
    n = ids.shape[1]
    if how == "rank":
        out = np.broadcast_to(1.0 - np.arange(n, dtype=np.float32) / n, ids.shape).copy()
    elif how == "minmax":
        s = np.where(valid, scores, np.nan)
        hi = np.nanmax(np.where(valid.any(axis=1, keepdims=True), s, 0.0), axis=1, keepdims=True)
        lo = np.nanmin(np.where(valid.any(axis=1, keepdims=True), s, 0.0), axis=1, keepdims=True)
        span = np.where(hi > lo, hi - lo, 1.0)
        # Floor at 1/N so the last proposed item still counts more than an absent one.
        out = (1.0 / n + (1.0 - 1.0 / n) * (np.nan_to_num(s, nan=0.0) - lo) / span).astype(np.float32)
        out = np.where(hi > lo, out, 1.0).astype(np.float32)
    else:
        raise ValueError(f"unknown normalisation {how!r}: expected 'rank' or 'minmax'")
    return np.where(valid, out, 0.0).astype(np.float32)


class BlendRecommender(Recommender):
    """The model of issue 3: Σ_s w_s · normalised top-N score of source s, over the union of their candidates."""

    name = "blend"

    def __init__(self, sources: Mapping[str, Recommender], weights: Mapping[str, float] | None = None,
                 per_source: int = 100, normalise: str = "rank", refit_sources: bool = False) -> None:
        self.sources = dict(sources)
        self.weights = dict(weights) if weights is not None else {name: 1.0 for name in sources}
        self.per_source = per_source
        self.normalise = normalise
        self.refit_sources = refit_sources

    def params(self) -> dict[str, object]:
        """Weights, list length and normalisation, plus each source's own parameters."""
        return {
            "weights": dict(self.weights),
            "per_source": self.per_source,
            "normalise": self.normalise,
            "sources": {name: {"class": type(s).__name__, **s.params()} for name, s in self.sources.items()},
        }

    def _fit(self, data: TrainData) -> None:
        unknown = set(self.weights) - set(self.sources)
        if unknown:
            raise ValueError(f"weights name unknown sources: {sorted(unknown)}")
        for source in self.sources.values():
            if self.refit_sources or not source.is_fitted_on(data):
                source.fit(data)
        self.active_ = [name for name, w in self.weights.items() if w != 0]

    def _block_scores(self, group_idx: np.ndarray, exclude: sp.csr_matrix | None, mask: np.ndarray) -> np.ndarray:
        """Blend of the sources' filtered top-N lists; -inf where no active source proposed the item."""
        n = len(group_idx)
        acc = np.zeros((n, self.n_items_), dtype=np.float32)
        proposed = np.zeros((n, self.n_items_), dtype=bool)
        rows = np.repeat(np.arange(n), self.per_source).reshape(n, self.per_source)
        for name in self.active_:
            ids, scores = self.sources[name].recommend(group_idx, self.per_source, exclude, mask)
            norm = normalise_scores(ids, scores, self.normalise)
            valid = ids >= 0
            acc[rows[valid], ids[valid]] += self.weights[name] * norm[valid]
            proposed[rows[valid], ids[valid]] = True
        acc[~proposed] = -np.inf
        return acc

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Blend scores over in-stock items (no exclusions)."""
        return self._block_scores(np.asarray(group_idx), None, self.in_stock_)


def union_candidates(
    sources: Mapping[str, Recommender],
    data: TrainData,
    group_idx: np.ndarray,
    per_source: int = 100,
    union_size: int = 200,
    exclude: sp.csr_matrix | None = None,
    allowed_items: np.ndarray | None = None,
) -> pd.DataFrame:
    """Candidates of every (fitted) source for these groups, with per-source scores, ranks and provenance.

    Rows are ordered per group by the number of sources proposing the item, then its best rank; at most
    `union_size` per group are kept. Columns: group_id, product_id, score__<s>, rank__<s> for each source, sources.
    """
    group_idx = np.asarray(group_idx, dtype=np.int64)
    names = list(sources)
    parts = []
    for name in names:
        ids, scores = sources[name].recommend(group_idx, per_source, exclude, allowed_items)
        rows, cols = np.nonzero(ids >= 0)
        parts.append(pd.DataFrame({
            "g": group_idx[rows], "i": ids[rows, cols], "source": names.index(name),
            "score": scores[rows, cols].astype(np.float64), "rank": (cols + 1).astype(np.float64),
        }))
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["g", "i", "source", "score", "rank"])
    wide_score = long.pivot(index=["g", "i"], columns="source", values="score")
    wide_rank = long.pivot(index=["g", "i"], columns="source", values="rank")
    wide_score = wide_score.reindex(columns=range(len(names)))
    wide_rank = wide_rank.reindex(columns=range(len(names)))
    present = wide_rank.notna().to_numpy()
    out = pd.DataFrame(index=wide_score.index)
    for j, name in enumerate(names):
        out[f"score__{name}"] = wide_score[j].to_numpy()
        out[f"rank__{name}"] = wide_rank[j].to_numpy()
    # One integer per set of proposing sources; only the few distinct sets are joined into text.
    sets = present.astype(np.int64) @ (np.int64(1) << np.arange(len(names), dtype=np.int64)) if len(out) else np.zeros(0, np.int64)
    uniq, inverse = np.unique(sets, return_inverse=True)
    labels = np.array([",".join(n for j, n in enumerate(names) if (int(u) >> j) & 1) for u in uniq], dtype=object)
    out["sources"] = labels[inverse.ravel()]
    out["_n"] = present.sum(axis=1)
    out["_best"] = np.nanmin(wide_rank.to_numpy(), axis=1) if len(out) else []
    out = out.reset_index().sort_values(["g", "_n", "_best", "i"], ascending=[True, False, True, True])
    out = out.groupby("g", sort=False).head(union_size)
    out.insert(0, "group_id", data.groups.id_of(out["g"].to_numpy()))
    out.insert(1, "product_id", data.items.id_of(out["i"].to_numpy()))
    return out.drop(columns=["g", "i", "_n", "_best"]).reset_index(drop=True)
