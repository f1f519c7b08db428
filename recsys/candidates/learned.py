"""A learned blend: LightGBM LambdaRank over the union of the sources' candidates, trained on a validation window.

Each source proposes its top `per_source` items; every (group, item) candidate gets the score, the
row-normalised score and the rank of every source (not only of those that proposed it), plus context that
no single source sees: the item's popularity at several time scales and its trend, its age, price and share
of its category, the group's activity and its affinity to the item's category. The ranker is fitted on a
validation split (sources fitted on the training data minus its last days, labels = what groups bought in
those days); `fit` then refits the sources on the full data and keeps the ranker.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import TrainData
from recsys.candidates.base import Recommender, block_rows, top_k
from recsys.candidates.category import CategoryAffinitySource

CONTEXT = (
    "item_log_pop", "item_log_pop_7d", "item_log_pop_30d", "item_trend", "item_age_days", "item_log_price",
    "item_cat_share", "cat_log_pop", "group_log_orders", "group_log_items", "group_days_since",
    "group_cat_count", "group_cat_share",
)


def _log_buyers(pairs_i: np.ndarray, pairs_age: np.ndarray, n_items: int, half_life: float | None) -> np.ndarray:
    """log(1 + distinct buying groups per item), recency-weighted by each group's latest purchase."""
    w = np.power(0.5, pairs_age / half_life) if half_life else np.ones(len(pairs_i))
    return np.log1p(np.bincount(pairs_i, weights=w, minlength=n_items))


class LearnedBlend(Recommender):
    """LightGBM LambdaRank over candidate features; call `fit_ranker` on a validation split before `fit`."""

    name = "learned"

    def __init__(self, sources: Mapping[str, Recommender], per_source: int = 100, n_estimators: int = 300,
                 learning_rate: float = 0.05, num_leaves: int = 31, min_child_samples: int = 100,
                 objective: str = "lambdarank", threads: int = 1, seed: int = 7) -> None:
        self.sources = dict(sources)
        self.per_source = per_source
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.objective = objective
        self.threads = threads
        self.seed = seed

    def params(self) -> dict[str, Any]:
        """Ranker settings plus each source's own parameters."""
        out = {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_") and k != "sources"}
        out["sources"] = {name: {"class": type(s).__name__, **s.params()} for name, s in self.sources.items()}
        return out

    @property
    def feature_names(self) -> list[str]:
        """Column names of the candidate feature matrix."""
        per_source = [f"{kind}__{name}" for name in self.sources for kind in ("score", "norm", "rank")]
        return per_source + list(CONTEXT)

    # ------------------------------------------------------------------------------------------ context

    def _fit_context(self, data: TrainData) -> None:
        """Item and group tables that the features read, learned from `data`."""
        ev = data.events
        g, i, age = ev["g"].to_numpy(), ev["i"].to_numpy(), ev["age_days"].to_numpy()
        latest = pd.DataFrame({"g": g, "i": i, "age": age}).groupby(["g", "i"], sort=False)["age"].min()
        pi, page = latest.index.get_level_values("i").to_numpy(), latest.to_numpy()
        n = data.n_items
        pop = _log_buyers(pi, page, n, None)
        recent = np.bincount(pi[page < 7], minlength=n)
        month = np.bincount(pi[page < 28], minlength=n)
        first_seen = np.full(n, np.nan)
        oldest = pd.Series(age).groupby(i).max()
        first_seen[oldest.index.to_numpy()] = oldest.to_numpy()
        cat = CategoryAffinitySource().fit(data)
        cat_pop = np.bincount(cat.item_cat_, weights=np.expm1(pop), minlength=len(cat.cat_share_))
        price = data.item_frame["price"].to_numpy(dtype=np.float64)
        self.item_table_ = np.column_stack([
            pop, _log_buyers(pi, page, n, 7.0), _log_buyers(pi, page, n, 30.0), (recent + 1.0) / (month + 4.0),
            first_seen, np.log1p(np.maximum(price, 0.0)), cat.item_score_, np.log1p(cat_pop[cat.item_cat_]),
        ]).astype(np.float32)
        last = pd.Series(age).groupby(g).min()
        days_since = np.full(data.n_groups, np.nan)
        days_since[last.index.to_numpy()] = last.to_numpy()
        self.group_table_ = np.column_stack([
            np.log1p(data.n_orders), np.log1p(np.diff(data.bought.indptr)), days_since,
        ]).astype(np.float32)
        self.category_ = cat

    # ------------------------------------------------------------------------------------------ features

    def candidates(self, group_idx: np.ndarray, exclude: sp.csr_matrix | None, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Union of the sources' top lists for a block of groups: (row, item, features) per candidate."""
        dense = {name: source._block_scores(group_idx, exclude, mask) for name, source in self.sources.items()}
        n = len(group_idx)
        tops = []
        for scores in dense.values():
            ids, _ = top_k(scores, self.per_source)
            rows = np.repeat(np.arange(n), ids.shape[1]).reshape(ids.shape)
            ranks = np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.float32), ids.shape)
            ok = ids >= 0
            tops.append((rows[ok] * self.n_items_ + ids[ok], ranks[ok]))
        key = np.unique(np.concatenate([t[0] for t in tops])) if tops else np.zeros(0, dtype=np.int64)
        row, item = key // self.n_items_, key % self.n_items_
        cols = []
        for scores, (top_key, top_rank) in zip(dense.values(), tops):
            finite = np.where(np.isfinite(scores), scores, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a group the source knows nothing about
                row_max = np.nanmax(np.abs(finite), axis=1)
            s = finite[row, item]
            # Rank within the source's top list; candidates it did not list rank just below it.
            rank = np.full(len(key), self.per_source + 1.0, dtype=np.float32)
            rank[np.searchsorted(key, top_key)] = top_rank
            norm = s / np.where(row_max[row] > 0, row_max[row], 1.0)
            cols += [s, norm, rank]
        aff = self.category_.affinity(group_idx)  # smoothed shares
        counts = np.asarray(self.category_.group_cat_[group_idx].toarray(), dtype=np.float32)
        gi = np.asarray(group_idx)[row]
        item_cat = self.category_.item_cat_[item]
        context = [self.item_table_[item], self.group_table_[gi],
                   np.column_stack([counts[row, item_cat], aff[row, item_cat]])]
        features = np.column_stack(cols + context) if cols else np.column_stack(context)
        return row, item, features.astype(np.float32)

    # ------------------------------------------------------------------------------------------ training

    def fit_ranker(self, data: TrainData, group_idx: np.ndarray, relevant: sp.csr_matrix,
                   exclude: sp.csr_matrix | None = None) -> "LearnedBlend":
        """Fit the sources on `data` and the ranker on their candidates for `group_idx`, labelled by `relevant` rows."""
        import lightgbm as lgb

        Recommender.fit(self, data)
        group_idx = np.asarray(group_idx, dtype=np.int64)
        mask = self.in_stock_
        rows, items, feats = [], [], []
        step = block_rows(self.n_items_)
        for start in range(0, len(group_idx), step):
            stop = min(len(group_idx), start + step)
            block_ex = None if exclude is None else sp.csr_matrix(exclude)[start:stop]
            r, i, f = self.candidates(group_idx[start:stop], block_ex, mask)
            rows.append(r + start)
            items.append(i)
            feats.append(f)
        row, item, x = np.concatenate(rows), np.concatenate(items), np.vstack(feats)
        y = np.asarray(sp.csr_matrix(relevant)[row, item]).ravel() > 0
        # LambdaRank learns nothing from a group whose candidates hold no positive.
        useful = np.bincount(row, weights=y, minlength=len(group_idx)) > 0
        keep = useful[row]
        row, x, y = row[keep], x[keep], y[keep]
        sizes = np.bincount(row, minlength=len(group_idx))
        sizes = sizes[sizes > 0]
        params = dict(objective=self.objective, n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                      num_leaves=self.num_leaves, min_child_samples=self.min_child_samples, subsample=0.8, subsample_freq=1,
                      colsample_bytree=0.8, n_jobs=self.threads, random_state=self.seed, verbose=-1)
        if self.objective == "lambdarank":
            model = lgb.LGBMRanker(**params, lambdarank_truncation_level=20)
            model.fit(x, y.astype(np.int32), group=sizes, feature_name=self.feature_names)
        else:
            model = lgb.LGBMClassifier(**params)
            model.fit(x, y.astype(np.int32), feature_name=self.feature_names)
        self.model_ = model
        self.train_stats_ = {"groups": int(useful.sum()), "candidates": int(len(y)), "positives": int(y.sum()),
                             "recall_of_candidates": float(y.sum() / max(sp.csr_matrix(relevant)[useful].nnz, 1))}
        return self

    def _fit(self, data: TrainData) -> None:
        for source in self.sources.values():
            if not source.is_fitted_on(data):
                source.fit(data)
        self._fit_context(data)

    def fit(self, data: TrainData) -> "LearnedBlend":
        """Refit the sources and context on `data`, keeping the ranker learned by `fit_ranker`."""
        if not hasattr(self, "model_"):
            raise RuntimeError("LearnedBlend needs fit_ranker(validation data, groups, relevant) before fit")
        return super().fit(data)  # type: ignore[return-value]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """Ranker scores (higher is better)."""
        # The booster directly: the sklearn wrapper warns about feature names on plain arrays.
        return self.model_.booster_.predict(x, num_threads=self.threads)

    def _block_scores(self, group_idx: np.ndarray, exclude: sp.csr_matrix | None, mask: np.ndarray,
                      buffer: np.ndarray | None = None) -> np.ndarray:
        """Ranker scores on the candidates; -inf for items no source proposed."""
        out = np.full((len(group_idx), self.n_items_), -np.inf, dtype=np.float32)
        row, item, x = self.candidates(group_idx, exclude, mask)
        if len(row):
            out[row, item] = self._predict(x).astype(np.float32)
        return out

    def score(self, group_idx: np.ndarray) -> np.ndarray:
        """Ranker scores over in-stock items (no exclusions)."""
        return self._block_scores(np.asarray(group_idx), None, self.in_stock_)

    def importances(self) -> dict[str, float]:
        """Gain importance of each feature, largest first."""
        gains = self.model_.booster_.feature_importance("gain")
        order = np.argsort(-gains)
        return {self.feature_names[j]: float(gains[j]) for j in order}
