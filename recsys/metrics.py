"""Top-K ranking metrics as free functions that check their inputs and mean what their names say.

Conventions: `recommended` is an int array (n_groups, ≥k) of item indices, best first, -1 for an empty slot;
`relevant` is a CSR matrix (n_groups, n_items) whose non-zeros are the items each group ordered in the test
window (a row must not be empty: groups with nothing to find are left out before scoring).
Per-group functions return one value per group; the evaluation averages them per group (every group counts
once) and per test pair (`pair_mean`: every relevant (group, item) pair counts once, so per-pair HR@K is the
share of test pairs found in their group's top K: Σ hits / Σ |relevant|).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import spearmanr


def _check(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Validate shapes, k and non-empty relevance rows; return the top-k slice and relevance as CSR."""
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-d (groups × ranks), got shape {rec.shape}")
    if not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"recommended must hold integer item indices, got {rec.dtype}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if rec.shape[1] < k:
        raise ValueError(f"recommended has {rec.shape[1]} columns, fewer than k={k}")
    rel = sp.csr_matrix(relevant)
    if rel.shape[0] != rec.shape[0]:
        raise ValueError(f"relevant has {rel.shape[0]} rows for {rec.shape[0]} recommendation rows")
    if rec.size and rec.max() >= rel.shape[1]:
        raise ValueError(f"recommended holds item {int(rec.max())} outside 0..{rel.shape[1] - 1}")
    if rec.size and rec.min() < -1:
        raise ValueError("recommended may only use -1 as padding")
    empty = np.flatnonzero(np.diff(rel.indptr) == 0)
    if empty.size:
        raise ValueError(f"{empty.size} group rows have no relevant item (first row {int(empty[0])}); drop them first")
    top = rec[:, :k]
    dup = np.sort(top, axis=1)
    if ((dup[:, 1:] == dup[:, :-1]) & (dup[:, 1:] >= 0)).any():
        raise ValueError("an item appears twice in one recommendation list")
    return top, rel


def hits(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """Boolean (n, k): whether the item at each rank is relevant."""
    top, rel = _check(recommended, relevant, k)
    rows = np.repeat(np.arange(top.shape[0]), k)
    flat = top.ravel()
    out = np.zeros(flat.shape, dtype=bool)
    valid = flat >= 0
    if valid.any():
        out[valid] = np.asarray(rel[rows[valid], flat[valid]]).ravel() != 0
    return out.reshape(top.shape)


def n_relevant(relevant: sp.csr_matrix) -> np.ndarray:
    """Number of relevant items per group."""
    return np.diff(sp.csr_matrix(relevant).indptr)


def recall_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """Hits in the top k over the number of relevant items."""
    h = hits(recommended, relevant, k)
    return h.sum(axis=1) / n_relevant(relevant)


def pair_mean(per_group: np.ndarray, relevant: sp.csr_matrix) -> float:
    """Mean over test pairs of a per-group metric: each group weighted by its number of relevant items.

    On recall@k this is the per-pair hit rate (share of relevant pairs in their group's top k); on ndcg@k each pair
    carries its group's NDCG.
    """
    values = np.asarray(per_group, dtype=np.float64)
    weights = n_relevant(relevant).astype(np.float64)
    if values.shape != weights.shape:
        raise ValueError(f"{values.size} per-group values for {weights.size} relevance rows")
    if not weights.sum():
        return float("nan")
    return float((values * weights).sum() / weights.sum())


def pair_hit_rate_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> float:
    """Share of the relevant (group, item) pairs whose item is in the group's top k."""
    return float(hits(recommended, relevant, k).sum() / n_relevant(relevant).sum())


def precision_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """Hits in the top k over k (empty slots count as misses)."""
    return hits(recommended, relevant, k).sum(axis=1) / k


def hit_rate_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """1 if at least one relevant item is in the top k, else 0."""
    return hits(recommended, relevant, k).any(axis=1).astype(np.float64)


def ndcg_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """Binary-relevance NDCG: Σ hit_r / log2(r + 1) over the ideal DCG of min(|relevant|, k) hits."""
    h = hits(recommended, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * discounts).sum(axis=1)
    ideal_len = np.minimum(n_relevant(relevant), k)
    idcg = np.cumsum(discounts)[ideal_len - 1]
    return dcg / idcg


def average_precision_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """AP@K: Σ_r precision@r · hit_r over min(|relevant|, k)."""
    h = hits(recommended, relevant, k)
    precision = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return (precision * h).sum(axis=1) / np.minimum(n_relevant(relevant), k)


def catalogue_coverage(recommended: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    if n_items < 1:
        raise ValueError("n_items must be positive")
    top = np.asarray(recommended)[:, :k]
    shown = np.unique(top[top >= 0])
    if shown.size and shown.max() >= n_items:
        raise ValueError(f"recommended holds item {int(shown.max())} outside 0..{n_items - 1}")
    return shown.size / n_items


def intra_list_diversity_category(recommended: np.ndarray, item_category: np.ndarray, k: int) -> np.ndarray:
    """Per list: share of item pairs in different categories (lists with fewer than 2 items give NaN)."""
    top = np.asarray(recommended)[:, :k]
    cats = np.asarray(item_category)
    out = np.full(top.shape[0], np.nan)
    for row, items in enumerate(top):
        items = items[items >= 0]
        n = items.size
        if n < 2:
            continue
        _, counts = np.unique(cats[items], return_counts=True)
        same_pairs = (counts * (counts - 1) / 2).sum()
        out[row] = 1.0 - same_pairs / (n * (n - 1) / 2)
    return out


def intra_list_diversity_embedding(recommended: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Per list: mean (1 − cosine) over item pairs of the list (lists with fewer than 2 items give NaN)."""
    top = np.asarray(recommended)[:, :k]
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    out = np.full(top.shape[0], np.nan)
    for row, items in enumerate(top):
        items = items[items >= 0]
        n = items.size
        if n < 2:
            continue
        sims = v[items] @ v[items].T
        mean_sim = (sims.sum() - np.trace(sims)) / (n * (n - 1))
        out[row] = 1.0 - mean_sim
    return out


def realised_commission_at_k(recommended: np.ndarray, relevant: sp.csr_matrix, commission_yuan: np.ndarray, k: int) -> np.ndarray:
    """Per group: Σ over the top k of commission_yuan_i × 1[i ordered in the test window] (yuan)."""
    h = hits(recommended, relevant, k)
    top = np.asarray(recommended)[:, :k]
    c = np.where(top >= 0, np.asarray(commission_yuan)[np.maximum(top, 0)], 0.0)
    return (c * h).sum(axis=1)


def potential_commission_at_k(recommended: np.ndarray, commission_yuan: np.ndarray, k: int) -> np.ndarray:
    """Per group: mean commission_yuan over the items of the top-k list (NaN for an empty list)."""
    top = np.asarray(recommended)[:, :k]
    valid = top >= 0
    c = np.where(valid, np.asarray(commission_yuan)[np.maximum(top, 0)], 0.0)
    counts = valid.sum(axis=1)
    return np.divide(c.sum(axis=1), counts, out=np.full(top.shape[0], np.nan), where=counts > 0)


def mean_spearman(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Spearman rank correlation per row (e.g. a group's category preferences), averaged over rows.

    Rows where either side is constant have no defined correlation and are skipped.
    """
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"predicted {p.shape} and truth {t.shape} must be equal 2-d shapes")
    values = []
    for a, b in zip(p, t):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        values.append(spearmanr(a, b).statistic)
    return float(np.mean(values)) if values else float("nan")
